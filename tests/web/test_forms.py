"""Form errors from the API's error shape, beside the fields they name."""

from __future__ import annotations

import msgspec
import pytest

from safexam.core.errors import ApiError, Unprocessable
from safexam.web.forms import convert_form, field_errors, form_problem


class Draft(msgspec.Struct):
    title: str
    points: int = 1


def test_a_type_error_names_its_field() -> None:
    with pytest.raises(Unprocessable) as caught:
        convert_form({"title": "Loops", "points": "many"}, Draft)
    assert field_errors(caught.value) == {"points": "Expected `int`, got `str`"}
    assert form_problem(caught.value) == "One field needs attention: see the message beside it."


def test_a_missing_field_is_named_and_numbers_in_text_are_converted() -> None:
    with pytest.raises(Unprocessable) as caught:
        convert_form({"points": "3"}, Draft)
    assert list(field_errors(caught.value)) == ["title"]
    assert convert_form({"title": "Loops", "points": "3"}, Draft) == Draft("Loops", 3)


def test_every_shape_of_details_the_api_uses() -> None:
    listed = ApiError(
        "Invalid value for body.points, items",
        details=[
            {"field": "$.body.points", "message": "must be positive"},
            {"field": "items", "message": "add a question"},
            {"field": None, "message": "ignored"},
        ],
    )
    assert field_errors(listed) == {"points": "must be positive", "items": "add a question"}
    assert form_problem(listed).startswith("2 fields need attention")
    single = ApiError("The window closes before it opens", details={"field": "closes_at"})
    assert field_errors(single) == {"closes_at": "The window closes before it opens"}
    plain = ApiError("Exam is already published", details={"exam_id": "x"})
    assert field_errors(plain) == {}
    assert form_problem(plain) == "Exam is already published."
