"""``python -m safexam.cli``: the same as the ``safexam`` console script."""

import sys

from safexam.cli import main

sys.exit(main())
