"""The listening socket, bound before the server says where it serves.

``mmsearch serve`` binds its port first and hands the socket to uvicorn, so a
port that is taken (or an address this machine does not have) is one clear
error before anything is printed, loaded or created.
"""

from __future__ import annotations

import errno
import socket

from mmsearch.server.config import ServerConfigError


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (not yet listening); raises
    :class:`ServerConfigError` saying why it cannot be."""
    if not 0 <= port <= 65535:
        raise ServerConfigError(f"port {port} is not a TCP port (0 to 65535)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a restart may take the port while old connections linger
        # (TIME_WAIT); a port another socket listens on is still refused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ServerConfigError(_why(exc, host, port)) from exc
    return sock


def _why(exc: OSError, host: str, port: int) -> str:
    where = f"port {port} on {host}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where} is in use (another server?); choose another with --port"
    if exc.errno == errno.EACCES:
        return f"{where} needs privileges to listen on; choose a port above 1023 with --port"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"cannot listen on {host}: not an address of this machine (--host)"
    return f"cannot listen on {where}: {exc.strerror or exc}"
