"""``safexam serve``: the API under uvicorn."""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
from typing import Any

from safexam.cli.common import CliError, Commands, read_settings, require_database
from safexam.core.settings import Settings


def proxy_options(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    """Whose forwarded headers uvicorn believes: SAFEXAM_TRUSTED_PROXIES, or the flags.

    Nobody's unless configured: a proxy's address is the deployment's to
    name, and trusting every address lets any client pick its own.
    """
    allowed = args.forwarded_allow_ips or ",".join(settings.trusted_proxies)
    if not allowed:
        return {"proxy_headers": False}
    if "*" in allowed.split(","):
        raise CliError(
            "forwarded headers from any address would let every client choose its own "
            "address; name the proxies in SAFEXAM_TRUSTED_PROXIES (addresses or networks)"
        )
    return {"proxy_headers": True, "forwarded_allow_ips": allowed}


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from safexam.core.logging import configure_logging

    settings = read_settings()
    # Before uvicorn starts, so its own lines are rendered like ours (JSON in
    # production); log_config=None below keeps uvicorn from replacing that.
    configure_logging(settings)
    require_database(settings)
    proxies = proxy_options(settings, args)
    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Set before the workers start (they import the app after): each then
        # writes its HTTP counters where a scrape of any of them finds all.
        folder = tempfile.mkdtemp(prefix="safexam-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
        atexit.register(shutil.rmtree, folder, True)
    uvicorn.run(
        "safexam.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        # Our own middleware logs one structured access line per request.
        access_log=False,
        log_config=None,
        log_level=settings.log_level.lower(),
        **proxies,
        timeout_graceful_shutdown=10,
    )
    return 0


def add_commands(commands: Commands) -> None:
    serve = commands.add_parser("serve", help="run the API (uvicorn)")
    serve.add_argument("--host", help="default: SAFEXAM_HOST")
    serve.add_argument("--port", type=int, help="default: SAFEXAM_PORT")
    serve.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("SAFEXAM_WEB_WORKERS", "1")),
        help="API processes (default: SAFEXAM_WEB_WORKERS or 1)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        help="proxies whose X-Forwarded-* are believed (default: SAFEXAM_TRUSTED_PROXIES, none)",
    )
    serve.set_defaults(handler=cmd_serve)
