"""Exams and enrollments, as one import: the names of the modules that hold them.

Authoring and publishing live in :mod:`safexam.exams.authoring`, enrollments
in :mod:`safexam.exams.enrollments`, the API's view of an exam in
:mod:`safexam.exams.views`, and the lookups other domains use
(:func:`get_owned_exam`, :func:`get_exam_items`, :func:`exam_max_score`,
:func:`load_exam_max_score`, :func:`get_enrollment`) in
:mod:`safexam.exams.lookups`. Importing from here keeps working.
"""

from __future__ import annotations

from safexam.exams.authoring import (
    FIRST_YEAR,
    LAST_YEAR,
    create_exam,
    delete_exam,
    list_exams,
    publish_exam,
    update_exam,
)
from safexam.exams.enrollments import list_enrollments, remove_enrollment, upsert_enrollments
from safexam.exams.lookups import (
    exam_max_score,
    get_enrollment,
    get_exam_items,
    get_owned_exam,
    load_exam_max_score,
)
from safexam.exams.views import exam_out, exams_out

__all__ = [
    "FIRST_YEAR",
    "LAST_YEAR",
    "create_exam",
    "delete_exam",
    "exam_max_score",
    "exam_out",
    "exams_out",
    "get_enrollment",
    "get_exam_items",
    "get_owned_exam",
    "list_enrollments",
    "list_exams",
    "load_exam_max_score",
    "publish_exam",
    "remove_enrollment",
    "update_exam",
    "upsert_enrollments",
]
