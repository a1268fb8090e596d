"""Input the API cannot read or the database cannot store is refused at the door.

A JSON body that is not UTF-8 or is nested deeper than the decoder can follow
is a malformed request (400), and text holding a NUL character, which
PostgreSQL can store neither in ``text`` nor in ``jsonb``, is refused with a
422 naming the field (or the query parameter), instead of failing inside a
query as a 500.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from safexam.core.errors import ApiError, Unprocessable

__all__ = ["NUL_ESCAPE", "ApiRequest", "refuse_nul_in_url"]

NUL = "\x00"
# The only way a NUL reaches decoded JSON text: raw control characters are invalid JSON.
NUL_ESCAPE = b"\\u0000"
NUL_MESSAGE = "Text must not contain NUL (\\u0000) characters"


def nul_path(value: Any, path: str = "") -> str | None:
    """Where in a decoded JSON value a string (or key) holds a NUL, as ``a.b[2]``; else None."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if NUL in str(key):
                return here
            found = nul_path(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


class ApiRequest(Request[Any, Any, Any]):
    """The app's request: its JSON body is UTF-8, of bounded depth and free of NUL."""

    async def json(self) -> Any:
        try:
            value = await super().json()
        except UnicodeDecodeError:
            raise ApiError("The request body is not valid UTF-8", code="malformed_json") from None
        except RecursionError:
            # msgspec follows nesting with the interpreter's recursion limit (about 1000).
            raise ApiError(
                "The request body is nested too deeply to be read", code="malformed_json"
            ) from None
        # A cheap test of the raw bytes first: the walk runs only for a body that has the escape.
        if NUL_ESCAPE in await self.body():
            field = nul_path(value)
            if field is not None:
                raise Unprocessable(NUL_MESSAGE, field=field or None)
        return value


async def refuse_nul_in_url(request: Request[Any, Any, Any]) -> None:
    """``before_request``: no path or query value may carry a NUL either."""
    if NUL in request.scope["path"]:
        raise Unprocessable(f"{NUL_MESSAGE} in the path", field="path")
    if b"%00" in request.scope["query_string"]:
        for name, value in request.query_params.multi_items():
            if NUL in name or NUL in value:
                raise Unprocessable(NUL_MESSAGE, field=name.replace(NUL, "") or "query")
