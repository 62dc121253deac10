"""``mmsearch serve`` as a user runs it: a real process, a real port, the builtin model.

A port in use is one clear error line and a non-zero exit, before anything is
printed as served; a free port serves (GET and HEAD ``/health``) until SIGINT.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mmsearch.library import Library
from test_server_support import free_port

MAIN = "import sys; from mmsearch.cli.main import main; sys.exit(main())"


@pytest.fixture(scope="module")
def demo_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lib_dir = tmp_path_factory.mktemp("serve") / "lib"
    Library.open(lib_dir, "builtin:demo").close()
    return lib_dir


def serve(lib_dir: Path, port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", MAIN, "serve", "--library", str(lib_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_busy_port_is_one_error_line_before_anything_is_served(demo_library: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = serve(demo_library, port)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "serving" not in out, out
    assert err.strip().splitlines() == [
        f"mmsearch: error: port {port} on 127.0.0.1 is in use (another server?); "
        "choose another with --port"
    ], err


def test_a_free_port_serves_get_and_head_until_interrupted(demo_library: Path) -> None:
    port = free_port()
    proc = serve(demo_library, port)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == f"mmsearch: serving {demo_library} at http://127.0.0.1:{port}/"
        url = f"http://127.0.0.1:{port}/health"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.2)
        head = httpx.head(url)
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(httpx.get(url).content)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
