"""Deprecated name of :mod:`safexam.coding.execution` (the code runner interface).

It exists only so that the sandbox package's modules, which import
``safexam.coding.runner``, keep working until they use the new name.
"""

from safexam.coding.execution import *  # noqa: F403
from safexam.coding.execution import __all__ as __all__
