"""The educator's pages: question bank, generation, exam builder, live monitor,
results and regrades. Every page here sits behind the educator guard of the
router in :mod:`safexam.web`, and each service call checks ownership too."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from safexam.web.educator.exams import ExamBuilderController
from safexam.web.educator.generate import GenerateController
from safexam.web.educator.monitor import MonitorPageController
from safexam.web.educator.questions import QuestionBankController
from safexam.web.educator.regrade import RegradeController
from safexam.web.educator.results import ResultsController

__all__ = ["educator_controllers"]


def educator_controllers() -> list[ControllerRouterHandler]:
    """The controllers mounted under ``/educator``."""
    return [
        ExamBuilderController,
        QuestionBankController,
        GenerateController,
        ResultsController,
        RegradeController,
        MonitorPageController,
    ]
