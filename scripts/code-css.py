"""Write the token colours of the code highlighting into static/css/code.css.

Run by ``make code-css`` after changing ``CODE_STYLE`` in web/markdown.py; the
rest of code.css is written by hand and kept as it is. A test checks that the
committed file holds what this script writes.
"""

from __future__ import annotations

import sys

from safexam.web.markdown import CODE_CSS, with_token_rules


def main() -> int:
    text = CODE_CSS.read_text(encoding="utf-8")
    CODE_CSS.write_text(with_token_rules(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
