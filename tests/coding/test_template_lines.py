"""A question's template never reaches the student through compiler output or tracebacks.

The outputs come from the real compilers and interpreters in the real
sandbox, so a change in how they quote source lines shows up here.
"""

from __future__ import annotations

import pytest

from safexam.coding.compare import HIDDEN_LINE, hide_template_lines, render_program
from safexam.coding.execution import TestCase
from safexam.coding.sandbox import bwrap_path
from tests.coding.sandbox_helpers import LIMITS, make_runner

pytestmark = [
    pytest.mark.skipif(bwrap_path() is None, reason="bubblewrap is not installed"),
    pytest.mark.timeout(60),
]

SECRET = "secret_harness_42"

C_TEMPLATE = (
    "#include <stdio.h>\n"
    "{{ SOURCE }}\n"
    f'int main(void) {{ int {SECRET} = solve(7); printf("%d\\n", {SECRET}); return 0; }}\n'
)
PY_TEMPLATE = f"{{{{ SOURCE }}}}\n{SECRET} = solve(7)\nprint({SECRET} // 2)\n"


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


async def test_a_compile_error_in_the_template_hides_its_line() -> None:
    source = "void solve(int x) { (void)x; }\n"  # wrong return type: main's line fails
    result = await make_runner().judge(
        "c", render_program(C_TEMPLATE, source), [TestCase(name="t", stdin="")], LIMITS
    )
    assert result.verdict == "compile_error"
    # The compiler does quote the template's line ...
    assert SECRET in result.compile_output
    shown = hide_template_lines(result.compile_output, C_TEMPLATE, source)
    # ... and the student sees the error, not the line.
    assert SECRET not in shown
    assert HIDDEN_LINE in shown
    assert "void value not ignored" in shown


async def test_a_traceback_through_the_template_hides_its_lines() -> None:
    source = "def solve(x):\n    return None\n"
    result = await make_runner().judge(
        "python", render_program(PY_TEMPLATE, source), [TestCase(name="t", stdin="")], LIMITS
    )
    assert result.tests[0].verdict == "runtime_error"
    stderr = result.tests[0].stderr
    assert f"print({SECRET} // 2)" in stderr
    shown = hide_template_lines(stderr, PY_TEMPLATE, source)
    assert f"print({SECRET} // 2)" not in shown
    assert "TypeError" in shown


def test_the_students_own_lines_stay_visible() -> None:
    template = "int helper(void);\n{{ SOURCE }}\nint main(void) { return helper(); }\n"
    source = "int helper(void);\nint helper(void) { return oops; }\n"
    output = (
        "prog.c:3:34: error: 'oops' undeclared\n"
        "    3 | int helper(void) { return oops; }\n"
        "    1 | int helper(void);\n"
        "    4 | int main(void) { return helper(); }\n"
    )
    shown = hide_template_lines(output, template, source)
    assert "int helper(void) { return oops; }" in shown
    # Also in the template, but the student wrote it too: nothing to hide.
    assert "    1 | int helper(void);" in shown
    assert f"    4 | {HIDDEN_LINE}" in shown
    assert hide_template_lines(output, None, source) == output


async def test_a_compiled_program_cannot_read_its_template_back() -> None:
    """After the compile the source (template included) is gone from the box."""
    template = "#include <stdio.h>\n/* secret_marker_77 */\n{{ SOURCE }}\n"
    source = (
        "int main(void) {\n"
        '  FILE *f = fopen("/box/main.c", "r");\n'
        '  if (!f) { puts("no source"); return 0; }\n'
        "  int c; while ((c = fgetc(f)) != EOF) putchar(c);\n"
        "  return 0;\n}\n"
    )
    result = await make_runner().judge(
        "c",
        render_program(template, source),
        [TestCase(name="t", stdin="", expected_output="no source\n")],
        LIMITS,
    )
    assert "secret_marker_77" not in result.tests[0].stdout
    assert result.verdict == "accepted", result.tests[0].stdout
