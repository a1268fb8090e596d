"""The educator's pages: question bank, generation, exam builder, live monitor,
results and regrades. Every page here sits behind the educator guard of the
router in :mod:`safexam.web`, and each service call checks ownership too."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from safexam.web.educator.monitor import MonitorPageController

__all__ = ["educator_controllers"]


def educator_controllers() -> list[ControllerRouterHandler]:
    """The controllers mounted under ``/educator``."""
    return [MonitorPageController]
