"""The handle of one job worker process: start it, talk to it, signal it, reap it.

Signals go to the process, never to a number that once named it. A child's pid
stays its own until the parent reaps it, but anything in this process that
polls children (``multiprocessing`` does, whenever another process starts) can
reap it at any moment, after which the kernel may give the pid to an unrelated
process. So on Linux the handle holds a pidfd, opened right after the start:
a signal sent through it reaches this process or nobody. Elsewhere, the signal
is sent only while ``is_alive()`` (which reaps an ended child) says the child
still runs, under the handle's lock.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from multiprocessing.context import SpawnContext
from typing import Any

STOP_GRACE_S = 5.0


class WorkerProcess:
    """A spawned process running ``target(*args, conn)``, with a duplex pipe to it."""

    def __init__(
        self, ctx: SpawnContext, target: Callable[..., None], args: tuple[Any, ...], name: str
    ) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=target, args=(*args, child), name=name, daemon=True)
        self._lock = threading.Lock()
        self._pidfd: int | None = None
        self._proc.start()
        child.close()
        pid = self._proc.pid
        if pid is not None and hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
            with contextlib.suppress(OSError):
                self._pidfd = os.pidfd_open(pid)

    @property
    def pid(self) -> int | None:
        return self._proc.pid

    @property
    def exitcode(self) -> int | None:
        return self._proc.exitcode

    def alive(self) -> bool:
        with self._lock:
            return self._proc.is_alive()

    def signal(self, sig: int) -> bool:
        """Send ``sig`` to this process if it still runs; True if it was sent."""
        with self._lock:
            if self._pidfd is not None:
                try:
                    signal.pidfd_send_signal(self._pidfd, sig)
                except ProcessLookupError:
                    return False
                return True
            if not self._proc.is_alive() or self._proc.pid is None:
                return False
            os.kill(self._proc.pid, sig)  # not reaped (is_alive would have): still its pid
            return True

    def interrupt(self) -> bool:
        """SIGINT: the job stops after its current batch, saves, and the process ends."""
        return self.signal(signal.SIGINT)

    def kill(self) -> bool:
        return self.signal(signal.SIGKILL)

    def send(self, message: Any) -> bool:
        """Send ``message``; False if the process is gone."""
        try:
            self.conn.send(message)
        except (OSError, EOFError, ValueError):
            return False
        return True

    def recv(self) -> Any:
        """The next message; raises ``EOFError`` once the process has ended."""
        try:
            return self.conn.recv()
        except OSError as exc:
            raise EOFError(str(exc)) from exc

    def close(self, grace_s: float = STOP_GRACE_S) -> None:
        """Ask the process to stop, kill it if it has not within ``grace_s``, reap it."""
        self.send(("stop", None))
        self._proc.join(grace_s)
        if self.kill():
            self._proc.join(grace_s)
        with self._lock:
            self.conn.close()
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
