"""The operator's pages (admins only): queues, dead jobs, workers and users."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

__all__ = ["operator_controllers"]


def operator_controllers() -> list[ControllerRouterHandler]:
    """The controllers mounted under ``/operator``."""
    return []
