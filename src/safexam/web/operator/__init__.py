"""The operator's pages.

Queues, dead jobs, workers, organizations and onboarding requests are the
deployment's operators'; users, the audit trail and the organization's settings are each
organization's admins'.
"""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from safexam.web.operator.audit import OperatorAuditController
from safexam.web.operator.onboarding import OperatorOnboardingController
from safexam.web.operator.organization import OperatorOrganizationController
from safexam.web.operator.organizations import OperatorOrganizationsController
from safexam.web.operator.queues import OperatorQueuesController
from safexam.web.operator.users import OperatorUsersController

__all__ = ["operator_controllers"]


def operator_controllers() -> list[ControllerRouterHandler]:
    """The controllers mounted under ``/operator``."""
    return [
        OperatorQueuesController,
        OperatorOrganizationsController,
        OperatorUsersController,
        OperatorAuditController,
        OperatorOrganizationController,
        OperatorOnboardingController,
    ]
