"""``safexam serve``: the API under uvicorn."""

from __future__ import annotations

import argparse
import os

from safexam.cli.common import Commands, read_settings, require_database


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = read_settings()
    require_database(settings)
    uvicorn.run(
        "safexam.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        # Our own middleware logs one structured access line per request.
        access_log=False,
        log_level=settings.log_level.lower(),
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
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
        "--proxy-headers", action="store_true", help="trust X-Forwarded-* from a reverse proxy"
    )
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    serve.set_defaults(handler=cmd_serve)
