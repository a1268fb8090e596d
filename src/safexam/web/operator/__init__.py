"""The operator's pages (admins only): queues, dead jobs, workers, users and onboarding requests."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from safexam.web.operator.onboarding import OperatorOnboardingController
from safexam.web.operator.queues import OperatorQueuesController
from safexam.web.operator.users import OperatorUsersController

__all__ = ["operator_controllers"]


def operator_controllers() -> list[ControllerRouterHandler]:
    """The controllers mounted under ``/operator``."""
    return [OperatorQueuesController, OperatorUsersController, OperatorOnboardingController]
