"""A server as a managed child process on a free loopback port: the discipline every kind shares.

`ServerProcess` starts a child in its own process group, waits until ``/health`` answers 200,
retries another free port when the bind races, stops the child at interpreter exit (and on
Linux has the kernel kill it if the parent dies), or lets it outlive the parent when detached.
A subclass says only how to run its server (`LlamaServer`, `VllmServer`).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import httpx2

from selfhosted_core.local._errors import ServerStartError
from selfhosted_core.local._steps import LOG_TAIL_LINES
from selfhosted_core.profiles import ServerKind

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["HOST", "ServerProcess", "stop_detached", "stop_process_group"]

HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1
_BIND_ATTEMPTS = 3

_DETACHED: list[subprocess.Popen[bytes]] = []
"""Detached servers stay referenced: a collected `Popen` of a live child warns, and the
server is meant to outlive every object that started it."""


class ServerProcess:
    """One server child process; subclasses give its command line, environment and errors.

    Attributes:
        alias: The model id the API reports and accepts.
        embeddings: Whether the server serves embeddings only.
        startup_timeout: Seconds to wait for ``/health`` to answer 200.
        detach: Whether the server outlives this process.
    """

    program: ClassVar[str] = "server"
    """What the server is called in messages and temporary log names."""
    kind: ClassVar[ServerKind] = ServerKind.GENERIC
    """The server software, as endpoints declare it (`server:`)."""
    start_error: ClassVar[type[ServerStartError]] = ServerStartError
    """The error a failed start raises."""
    bind_failure: ClassVar[str] = "address already in use"
    """Text in the log when the child could not bind its port (another process took it)."""
    sigill_hint: ClassVar[str] = ""
    """What to do when the child dies of SIGILL, after a semicolon."""
    death_signal: ClassVar[signal.Signals] = signal.SIGKILL
    """What the kernel sends the child when its parent dies: SIGKILL for a single process; a
    server that runs processes of its own needs a signal it can catch to stop them."""

    def __init__(
        self,
        model: Path | str,
        *,
        alias: str,
        embeddings: bool,
        port: int | None,
        api_key: str | None,
        startup_timeout: float,
        log_path: Path | str | None,
        detach: bool,
    ) -> None:
        self.model = Path(model)
        self.alias = alias
        self.embeddings = embeddings
        self.startup_timeout = startup_timeout
        self._api_key = api_key
        self._log_path = Path(log_path) if log_path is not None else None
        self._owns_log = log_path is None
        self.detach = detach
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = port

    def __repr__(self) -> str:
        state = f"port={self._port}" if self.is_running() else "stopped"
        return f"{type(self).__name__}(alias={self.alias!r}, model={self.model.name!r}, {state})"

    @property
    def port(self) -> int:
        """The TCP port the server listens on."""
        if self._port is None:
            raise RuntimeError(f"{self!r} has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:PORT`` (``/health`` lives here)."""
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:PORT/v1``."""
        return f"{self.url}/v1"

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs, else ``None``."""
        return self._process.pid if self.is_running() and self._process else None

    @property
    def log_path(self) -> Path | None:
        """The file the server's stdout and stderr go to, once started."""
        return self._log_path

    def is_running(self) -> bool:
        """Return whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """Return the last ``lines`` lines of the server log (empty before the first start).

        Args:
            lines: How many lines to return.

        Returns:
            The log tail as one string.
        """
        if self._log_path is None or not self._log_path.is_file():
            return ""
        with self._log_path.open(encoding="utf-8", errors="replace") as log:
            return "".join(deque(log, maxlen=lines)).rstrip("\n")

    def start(self) -> Self:
        """Start the server and wait until it answers ``/health`` with 200.

        Returns:
            The server itself, for chaining.

        Raises:
            ServerStartError: The process exited or did not become healthy in time (as the
                subclass's own error); the message carries the log tail.
        """
        if self.is_running():
            return self
        self._prepare()
        if self._log_path is None:
            fd, name = tempfile.mkstemp(prefix=f"{self.program}-{self.alias}-", suffix=".log")
            os.close(fd)
            self._log_path = Path(name)
        attempts, fixed = 0, self._port
        while True:
            attempts += 1
            self._port = fixed or _free_port()
            self._spawn()
            try:
                self._wait_healthy()
            except _PortTakenError:
                # Another process took a free port between our probe and the server's bind.
                if fixed is None and attempts < _BIND_ATTEMPTS:
                    continue
                what = f"could not bind port {fixed}" if fixed else "could not bind a free port"
                raise self._startup_error(what) from None
            except BaseException:
                self._terminate()
                raise
            break
        if self.detach:
            assert self._process is not None
            _DETACHED.append(self._process)
        else:
            atexit.register(self.stop)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server: SIGTERM to its process group, then SIGKILL after ``timeout``.

        Safe to call more than once and on a server that never started.

        Args:
            timeout: Seconds to wait after SIGTERM before SIGKILL.
        """
        atexit.unregister(self.stop)
        self._terminate(timeout)
        if self._owns_log and self._log_path is not None:
            self._log_path.unlink(missing_ok=True)
            self._log_path = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _prepare(self) -> None:
        """Make what the command needs ready (a binary, an install); before every spawn."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _child_env(self) -> dict[str, str]:
        raise NotImplementedError

    def _spawn(self) -> None:
        assert self._log_path is not None
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._child_env(),
                start_new_session=True,
                # The hook only calls a prctl resolved before fork, so it takes no lock.
                preexec_fn=None if self.detach else _die_with_parent(self.death_signal),  # noqa: PLW1509
            )

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.05
        with httpx2.Client(timeout=2.0) as client:
            while True:
                assert self._process is not None
                if self._process.poll() is not None:
                    if self.bind_failure in self.log_tail().lower():
                        raise _PortTakenError
                    code = self._process.returncode
                    raise self._startup_error(_describe_exit(code, self.sigill_hint))
                with contextlib.suppress(httpx2.TransportError):
                    if client.get(f"{self.url}/health").status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise self._startup_error(f"was not healthy after {self.startup_timeout:.0f} s")
                time.sleep(delay)
                delay = min(delay * 1.5, 0.5)

    def _startup_error(self, what: str) -> ServerStartError:
        return self.start_error(
            f"{self.program} for {self.model} {what}; last lines of {self._log_path}:\n"
            f"{self.log_tail()}"
        )

    def _terminate(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process, timeout)


def stop_detached(pid: int, *, timeout: float = 10.0) -> bool:
    """Stop a detached server by process id: SIGTERM to its group, then SIGKILL.

    Does nothing unless `pid` still runs a server this package starts (a recycled pid is left
    alone).

    Args:
        pid: The process id recorded when the server was started.
        timeout: Seconds to wait after SIGTERM before SIGKILL.

    Returns:
        Whether a running server was stopped.
    """
    if not _is_server(pid):
        _reap(pid)
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while _is_server(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _is_server(pid):
            break
    _reap(pid)
    return not _is_server(pid)


def _reap(pid: int) -> None:
    """Collect the exit status of a detached server this process started, once it ended.

    Stopped by pid, it stays a zombie until its parent waits for it, and its `Popen`, never
    waited for, warns "still running" when collected at exit.
    """
    for process in list(_DETACHED):
        if process.pid == pid and process.poll() is not None:
            _DETACHED.remove(process)


def _is_server(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    # A pid that no longer runs a server this package starts was recycled and is left alone.
    program = command.split(b"\0", 1)[0]
    server = b"llama-server" in program or b"\0vllm.entrypoints." in command
    # A zombie ("Z") has exited already; only its parent's wait() is missing.
    return server and state != "Z"


class _PortTakenError(Exception):
    """The server could not bind the port picked for it."""


def _describe_exit(returncode: int, sigill_hint: str) -> str:
    if returncode == -signal.SIGILL:
        return (
            f"died of SIGILL: this CPU lacks an instruction the program was built for{sigill_hint}"
        )
    return f"exited with code {returncode}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group a child leads, then SIGKILL what is left after `timeout` s.

    Returns once the whole group is gone, not just its leader: a server may run processes of
    its own (vLLM's engine), which outlive a leader that crashed or exited first.
    """
    if process.poll() is not None and not _group_alive(process.pid):
        return
    _signal_group(process, signal.SIGTERM)
    if not _wait_group(process, timeout):
        _signal_group(process, signal.SIGKILL)
        _wait_group(process, timeout)


def _wait_group(process: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None or _group_alive(process.pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _group_alive(pgid: int) -> bool:
    # Linux reuses no pid while a process group of that id exists, so the id stays this group's.
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # The child leads its own process group, so this also reaches anything it spawned.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """Return a pre-exec hook asking Linux to signal the child (`sig`) when its parent dies.

    The death signal fires when the *thread* that forked the child exits, so it is only armed
    from the main thread; elsewhere the process group and the atexit hook must do.
    """
    if (
        not sys.platform.startswith("linux")
        or threading.current_thread() is not threading.main_thread()
    ):
        return None
    # Resolved before fork: the hook then runs no Python that could take a lock in the child.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()
    kill = int(sig)

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, kill)
        if os.getppid() != parent:
            # The parent died before the death signal was armed.
            os._exit(1)

    return hook
