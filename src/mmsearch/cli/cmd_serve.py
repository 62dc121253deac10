"""``mmsearch serve``: the HTTP API and web page over one library."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import TYPE_CHECKING

from mmsearch.cli.main import add_library_args

STARTUP_FAILED = 3
"""Exit status when the app failed to start (uvicorn's own)."""

if TYPE_CHECKING:  # pragma: no cover
    from mmsearch.server.config import ServerConfig


def add_arguments(p: argparse.ArgumentParser) -> None:
    from mmsearch.server.config import DEFAULT_HOST, DEFAULT_PORT, TOKEN_ENV

    add_library_args(p)
    p.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to bind (default {DEFAULT_HOST}; any other needs a token)",
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument(
        "--token",
        default=None,
        help=f"API token every request must carry (default: ${TOKEN_ENV}; prefer the variable, "
        "a command line is visible to other users)",
    )
    p.add_argument(
        "--allow-root",
        action="append",
        default=[],
        metavar="DIR",
        help="folder clients may add server-side paths from (repeatable; default: none)",
    )
    p.add_argument(
        "--cors",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="web origin allowed to call the API from its pages (repeatable; default: none)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="extra Host name served without a token (e.g. a reverse proxy's; default: loopback)",
    )
    p.add_argument("--max-upload-mb", type=float, default=100.0, help="largest request body")
    p.add_argument("--max-pixels", type=int, default=50_000_000, help="largest image accepted")
    p.add_argument(
        "--max-duration",
        type=float,
        default=3 * 3600.0,
        metavar="SECONDS",
        help="longest video or audio upload",
    )
    p.add_argument(
        "--reranker",
        action="append",
        default=[],
        metavar="SPEC",
        help="cross-attention reranker to load at start and offer to searches (repeatable; "
        "e.g. blip:Salesforce/blip-itm-base-coco, cross-encoder:NAME, trained:FOLDER); "
        "clients choose among these by name and can load no other",
    )
    p.add_argument("--readers", type=int, default=0, help="parallel searches (default: 2–4)")
    p.add_argument("--upload-dir", help="where uploads are kept (default: LIBRARY/uploads)")
    p.add_argument("--log-level", default="info", help="uvicorn log level")


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    """The server settings the arguments ask for; refuses an unsafe bind first."""
    from pathlib import Path

    from mmsearch.server.config import TOKEN_ENV, ServerConfig, check_bind

    token = args.token or os.environ.get(TOKEN_ENV) or None
    check_bind(args.host, token)
    return ServerConfig(
        Path(args.library),
        model=args.model,
        token=token,
        allow_roots=[Path(r) for r in args.allow_root],
        cors_origins=list(args.cors),
        allowed_hosts=list(args.allowed_host),
        max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
        max_pixels=args.max_pixels,
        max_duration_s=args.max_duration,
        readers=args.readers,
        rerankers=list(args.reranker),
        upload_dir=Path(args.upload_dir) if args.upload_dir else None,
    )


def run(args: argparse.Namespace) -> int:
    """Bind the port first (a port in use is one clear error, before anything is
    loaded or printed), then build the app and serve on that socket."""
    import uvicorn

    from mmsearch.server.app import create_app
    from mmsearch.server.listen import bind_socket

    config = config_from_args(args)
    sock = bind_socket(args.host, args.port)
    with sock:
        app = create_app(config)
        port = sock.getsockname()[1]
        url = f"http://{_url_host(args.host)}:{port}/"
        print(f"mmsearch: serving {config.library} at {url}", flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level))
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C once stopped
            server.run(sockets=[sock])
    if not server.started:  # the app could not start (uvicorn said why)
        print("mmsearch: error: the server did not start", file=sys.stderr)
        return STARTUP_FAILED
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
