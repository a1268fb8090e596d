"""Forms on the pages: the API's errors put beside the fields they name.

A page posts an ordinary form, builds the same request struct the JSON route
decodes (``msgspec.convert``), and calls the same service. When that fails,
:func:`field_errors` turns the error into ``{field: message}`` for the
template's ``field`` macros (``components/field.html``), and :func:`form_problem`
says in one sentence what is wrong for the notice at the top of the form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from safexam.core.errors import ApiError, Unprocessable

__all__ = ["convert_form", "field_errors", "form_problem"]

T = TypeVar("T")


def _field_of(detail: Mapping[str, Any]) -> str | None:
    field = detail.get("field")
    if not isinstance(field, str) or not field:
        return None
    return field.removeprefix("$.").removeprefix("body.")


def field_errors(error: ApiError) -> dict[str, str]:
    """``{field: message}`` for every field the error names (dotted paths, as the API)."""
    details = error.details
    if isinstance(details, Mapping):
        details = [details]
    found: dict[str, str] = {}
    if isinstance(details, list):
        for detail in details:
            if not isinstance(detail, Mapping):
                continue
            field = _field_of(detail)
            if field is not None and field not in found:
                found[field] = str(detail.get("message") or error.message)
    return found


def form_problem(error: ApiError) -> str:
    """The sentence for the top of the form: how many fields need attention, or the error."""
    fields = field_errors(error)
    if len(fields) == 1:
        return "One field needs attention: see the message beside it."
    if fields:
        return f"{len(fields)} fields need attention: see the messages beside them."
    return error.message.rstrip(".") + "."


def convert_form(data: Mapping[str, Any], into: type[T]) -> T:
    """``data`` as the request struct the JSON route takes, or a 422 naming the field.

    msgspec reports the path (``Expected `int`, got `str` - at `$.points```);
    the error keeps it as the field so the page can put it in place.
    """
    try:
        return msgspec.convert(data, into, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        field: str | None = None
        if " - at `$." in text:
            text, _, path = text.partition(" - at `$.")
            field = path.rstrip("`")
        elif "`" in text:  # "Object missing required field `title`"
            field = text.split("`")[1]
        raise Unprocessable(text, field=field) from exc
