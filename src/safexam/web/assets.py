"""Static files under content-hashed names, served from memory and cached for a year.

``asset("css/app.css")`` in a template gives ``/static/css/app.1f2e3d4c5b.css``:
the name changes whenever the content does, so a browser may keep each file
forever (``immutable``) and still never runs yesterday's script against
today's page. The files are few and small; they are read and compressed once,
at start-up, and a request for any other name is a 404.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from safexam.core.errors import NotFound
from safexam.web.headers import CACHE_IMMUTABLE

__all__ = ["STATIC_DIR", "STATIC_PREFIX", "Assets", "assets", "static_file"]

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"
_HASH_LENGTH = 10
_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
_MODULES = {".js", ".mjs"}
# A relative specifier of a static import or export, a bare import, or a dynamic import().
_IMPORT = re.compile(
    r"(?P<head>\b(?:from|import)\s*\(?\s*)(?P<quote>[\"'])(?P<path>\.{1,2}/[^\"'\s]+)(?P=quote)"
)
# Already compressed formats gain nothing from gzip.
_COMPRESSIBLE = {".css", ".js", ".mjs", ".svg", ".json", ".txt"}


@dataclass(frozen=True)
class _File:
    body: bytes
    gzipped: bytes | None
    media_type: str


class Assets:
    """The files of one static folder, by logical name and by hashed name.

    An ES module's relative imports (``import { x } from "./outbox.js"``) are
    rewritten to the hashed URLs of what they import, so a module's name
    changes when anything it loads changes, and modules need no import map
    (which the Content-Security-Policy would block as inline script).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.urls: dict[str, str] = {}
        self.files: dict[str, _File] = {}
        self._pending: set[str] = set()
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self._add(path.relative_to(root).as_posix())

    def _add(self, logical: str) -> str:
        """Register ``logical`` (after what it imports) and return its URL."""
        if logical in self.urls:
            return self.urls[logical]
        if logical in self._pending:
            raise ValueError(f"static modules import each other in a circle: {logical}")
        self._pending.add(logical)
        path = self.root / logical
        body = path.read_bytes()
        # Vendored bundles are served exactly as built.
        if path.suffix in _MODULES and not logical.startswith("vendor/"):
            body = _IMPORT.sub(lambda found: self._import(logical, found), body.decode()).encode()
        digest = hashlib.sha256(body).hexdigest()[:_HASH_LENGTH]
        stem, dot, suffix = logical.rpartition(".")
        hashed = f"{stem}.{digest}.{suffix}" if dot else f"{logical}.{digest}"
        media_type = _TYPES.get(path.suffix) or (
            mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        )
        gzipped = (
            gzip.compress(body, compresslevel=9, mtime=0) if path.suffix in _COMPRESSIBLE else None
        )
        self.urls[logical] = f"{STATIC_PREFIX}/{hashed}"
        self.files[hashed] = _File(body=body, gzipped=gzipped, media_type=media_type)
        self._pending.discard(logical)
        return self.urls[logical]

    def _import(self, importer: str, found: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(importer), found["path"]))
        if target.startswith("../") or not (self.root / target).is_file():
            raise ValueError(f"{importer} imports {found['path']}, which is not a static file")
        return f"{found['head']}{found['quote']}{self._add(target)}{found['quote']}"

    def url(self, logical: str) -> str:
        """The public URL of ``logical`` (a path below the static folder); KeyError if absent,
        so a template naming a missing file fails its test instead of a student's page."""
        return self.urls[logical]

    def response(self, hashed: str, accept_encoding: str) -> Response[bytes]:
        found = self.files.get(hashed)
        if found is None:
            raise NotFound("No such static file")
        headers = {"Cache-Control": CACHE_IMMUTABLE, "Vary": "Accept-Encoding"}
        body = found.body
        if found.gzipped is not None and "gzip" in accept_encoding:
            body = found.gzipped
            headers["Content-Encoding"] = "gzip"
        return Response(body, media_type=found.media_type, headers=headers)


assets = Assets(STATIC_DIR)


@get(
    f"{STATIC_PREFIX}/{{file_path:path}}",
    include_in_schema=False,
    # A file needs neither the sign-in (a Redis read) nor a CSRF cookie.
    opt={"skip_session": True, "exclude_from_csrf": True},
    sync_to_thread=False,
)
def static_file(request: Request[Any, Any, Any], file_path: FromPath[str]) -> Response[bytes]:
    """One static file by its hashed name."""
    return assets.response(file_path.lstrip("/"), request.headers.get("accept-encoding", ""))
