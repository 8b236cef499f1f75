"""A real `redis-server` on a free loopback port, for the tests of shared routing state.

`make pytest` installs the Debian package `redis-server` first when it is missing (as root);
a run without it fails with the reason, never skips.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from types import TracebackType

import pytest
from typing_extensions import Self

_STARTUP_SECONDS = 10.0


def redis_binary() -> str:
    """The `redis-server` executable; the test fails (never skips) without one."""
    found = shutil.which("redis-server")
    if found is None:
        pytest.fail(
            "redis-server is not installed: `make pytest` installs it as root "
            "(apt-get install -y redis-server); CI must have it",
            pytrace=False,
        )
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class RedisServer:
    """One `redis-server` child: no persistence, loopback only, optionally a password.

    `kill()` SIGKILLs it; `start()` brings it back on the same port, empty.
    """

    def __init__(self, *, password: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        self._process: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.mkdtemp(prefix="selfhosted-redis-")

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> Self:
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", self._dir]
        if self.password:
            args += ["--requirepass", self.password]
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not self._answers():
            if self._process.poll() is not None:
                pytest.fail(f"redis-server exited with {self._process.returncode}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail("redis-server did not answer PING in time", pytrace=False)
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL: the server vanishes mid-run, as a crash would."""
        if self._process is not None:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None
        shutil.rmtree(self._dir, ignore_errors=True)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                reply = conn.recv(64)
        except OSError:
            return False
        # A password-protected server answers -NOAUTH: it is up all the same.
        return reply.startswith((b"+PONG", b"-NOAUTH"))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
