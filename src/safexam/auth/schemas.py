"""Wire shapes of the auth endpoints."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

import msgspec

#: The roles inside an organization ("admin" is the organization's administrator).
Role = Literal["student", "educator", "admin"]
#: Any account's role: the organization's roles and the deployment's operator.
AccountRole = Literal["student", "educator", "admin", "operator"]
Email = Annotated[str, msgspec.Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]


class LoginRequest(msgspec.Struct, forbid_unknown_fields=True):
    email: Email
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class UserOut(msgspec.Struct):
    id: uuid.UUID
    email: str
    name: str
    role: AccountRole
    organization_id: uuid.UUID


class CsrfOut(msgspec.Struct):
    csrf_token: str
