"""The OpenAPI document tells the truth about errors.

Every error the API answers has one JSON shape (see :mod:`safexam.core.errors`),
so the document declares that shape, not Litestar's default one, for each
status an operation can answer: what a client may get is read off the route
itself (its guards, its parameters, its body, whether it writes), and a
handler adds what only it knows (``responses=error_responses(429)``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import MediaType, Response, Router
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute

from safexam.core.errors import error_body

__all__ = [
    "EVENT_STREAM",
    "ErrorBody",
    "ErrorResponsesPlugin",
    "error_responses",
    "openapi_config",
    "text_alternative",
]

_DESCRIPTIONS = {
    400: "The request cannot be read: the body is not JSON, or a parameter does not parse",
    401: "Not signed in, or the session has expired",
    403: "Wrong role for this action, or a missing or invalid X-CSRF-Token header",
    404: "No such object, or it is not yours",
    409: "The object's current state does not allow this",
    413: "The request body is larger than the API accepts",
    415: "The request body is not JSON",
    422: "A value is invalid; the details name the field",
    429: "Too many requests; Retry-After says when to try again",
    503: "A service the API needs (database, Redis) is unavailable; try again shortly",
}
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

#: The media type of server-sent events; SSE handlers declare it so the
#: document does not promise JSON.
EVENT_STREAM = "text/event-stream"


class ErrorInfo(msgspec.Struct):
    code: str
    message: str
    # A list of {"field", "source", "message"} for validation errors; null or an object otherwise.
    details: Any


class ErrorBody(msgspec.Struct):
    """The body of every 4xx and 5xx answer."""

    error: ErrorInfo


def error_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI response declarations, in the one error shape, for ``statuses``."""
    return {
        status: ResponseSpec(
            data_container=ErrorBody,
            description=_DESCRIPTIONS.get(status, "Error"),
            generate_examples=False,
        )
        for status in statuses
    }


def text_alternative(media_type: str, *, status: int = 200) -> type[Operation]:
    """An ``operation_class`` whose ``status`` answer may also come as text in ``media_type``
    (``?format=csv`` beside JSON), which Litestar's one media type per handler cannot say."""

    @dataclass
    class TextAlternative(Operation):
        def __post_init__(self) -> None:
            response = (self.responses or {}).get(str(status))
            if isinstance(response, OpenAPIResponse):
                content = response.content if response.content is not None else {}
                content[media_type] = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                response.content = content

    return TextAlternative


Guard = Callable[..., Any]


class ErrorResponsesPlugin(ReceiveRoutePlugin):
    """Declares, on every route as it is registered, the errors it can answer.

    ``sign_in_guards`` are the guards that only require a signed-in user (401);
    any other guard also checks a role (403).
    """

    __slots__ = ("sign_in_guards",)

    def __init__(self, sign_in_guards: Collection[Guard]) -> None:
        self.sign_in_guards = tuple(sign_in_guards)

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler, kwargs_model in route.route_handler_map.values():
            declared = error_responses(*sorted(self._statuses(handler, kwargs_model)))
            # What the handler declares itself wins over the derived defaults.
            handler.responses = {**declared, **(handler.responses or {})}

    def _statuses(self, handler: HTTPRouteHandler, kwargs_model: Any) -> set[int]:
        statuses = {503}
        has_body = (
            "data" in kwargs_model.expected_reserved_kwargs
            or kwargs_model.expected_form_data is not None
            or kwargs_model.expected_msgpack_data is not None
        )
        has_parameters = bool(
            kwargs_model.expected_query_params
            or kwargs_model.expected_header_params
            or kwargs_model.expected_cookie_params
        )
        has_path_parameters = bool(kwargs_model.expected_path_params)
        writes = bool(handler.http_methods & _WRITES)
        if has_body:
            statuses |= {400, 413, 422}
        if has_parameters:
            statuses |= {400, 422}
        if has_path_parameters:
            # 400 for a path value that parses as the route's type but not as the handler's.
            statuses |= {400, 404}
        guards = handler.resolve_guards()
        if guards:
            statuses.add(401)
        if any(guard not in self.sign_in_guards for guard in guards):
            statuses.add(403)
        if writes and not handler.opt.get("exclude_from_csrf"):
            statuses.add(403)
        if writes and has_path_parameters:
            # A change to an existing object can meet a state that forbids it.
            statuses.add(409)
        return statuses


def _json_not_found(response: Response[Any]) -> Response[Any]:
    # Litestar answers unknown pages of the API reference with an HTML 404.
    if response.status_code != 404 or response.media_type == MediaType.JSON:
        return response
    return Response(
        error_body("not_found", "No such page of the API reference", None),
        status_code=404,
        media_type=MediaType.JSON,
    )


def openapi_config(*, title: str, version: str, path: str = "/schema") -> OpenAPIConfig:
    """The API reference at ``path``, whose unknown pages answer in the one error shape."""
    router = Router(path, route_handlers=[], include_in_schema=False, after_request=_json_not_found)
    return OpenAPIConfig(
        title=title,
        version=version,
        path=path,
        use_handler_docstrings=True,
        openapi_router=router,
    )
