"""A `redis-server` child for the client that shares routing state (`CoreShared`).

Started by the client's worker on a free loopback port, stopped when the worker exits. Its
CPU is its own process's, so the worker's figures are the client's alone.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time

_STARTUP_SECONDS = 10.0


def start() -> str:
    """Start one and return its URL; raise RuntimeError when there is none to start."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(_stop, process)
    deadline = time.monotonic() + _STARTUP_SECONDS
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start (exit status {process.poll()})")
        time.sleep(0.02)
    return f"redis://127.0.0.1:{port}/0"


def _stop(process: subprocess.Popen[bytes]) -> None:
    # Waited for, so it leaves no zombie and its Popen no "still running" warning at exit.
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False
