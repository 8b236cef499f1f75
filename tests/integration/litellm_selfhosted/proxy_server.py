"""Run the real LiteLLM proxy (``litellm --config ...``) as a child process for end-to-end tests.

The in-process tests call ``litellm`` as a library; they cannot show that a config file written
for the proxy actually loads there: that the proxy imports the module a ``model_list`` entry
names, reads its keys from the environment, authenticates with the master key and forwards
requests. :class:`LiteLLMProxy` starts the proxy exactly as a user would, with the ``litellm``
console script of the running interpreter's environment, on a free ``127.0.0.1`` port, and
stops it again.

The child is kept hermetic and offline:

* Its working directory is the config file's directory, not the repository root. The proxy
  appends its working directory to ``sys.path``, so a module named in the config resolves to
  the installed package, never to a stray file next to the config.
* ``LITELLM_LOCAL_MODEL_COST_MAP=True``: without it every import of ``litellm`` fetches the
  model cost map from GitHub, retrying with back-off before falling back to the bundled copy.
* ``LITELLM_MODE=PRODUCTION``: in the default ``DEV`` mode the proxy loads a ``.env`` file
  found by walking up from the installed ``litellm`` package (into the repository and beyond),
  which could inject settings the test did not ask for.
* ``LITELLM_TELEMETRY_DISABLED=true``: vetoes the proxy's usage telemetry (off by default in
  this version; the veto keeps it off whatever else is set).
* ``LITELLM_SUPPRESS_STARTUP_OUTPUT=true`` and ``LITELLM_DONT_SHOW_FEEDBACK_BOX=true``: drop
  the banner and feedback box, so :meth:`LiteLLMProxy.log_tail` shows what matters (startup
  warnings are still printed).
* Inherited ``DATABASE_*`` and ``DIRECT_URL`` variables are removed: the proxy would otherwise
  connect to (and migrate) that database. The proxy runs without one.
* ``127.0.0.1`` and ``localhost`` are added to ``NO_PROXY``, so requests to loopback upstreams
  never go through an HTTP proxy the parent environment may name.

Variables passed as ``env`` are applied last and win over all of the above.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2

from selfhosted_core.local._process import (
    _die_with_parent,
    _free_port,
    _PortTakenError,
    stop_process_group,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from types import TracebackType

    from typing_extensions import Self

__all__ = ["LiteLLMProxy", "LiteLLMProxyStartError"]

HOST = "127.0.0.1"
_POLL_INTERVAL = 0.25
_STOP_TIMEOUT = 10.0
_BIND_ATTEMPTS = 3

_OFFLINE_ENV: dict[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_TELEMETRY_DISABLED": "true",
    "LITELLM_SUPPRESS_STARTUP_OUTPUT": "true",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
}
_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class LiteLLMProxyStartError(RuntimeError):
    """The proxy exited or did not answer ``/health/liveliness`` in time; carries the log tail."""


class LiteLLMProxy:
    """The LiteLLM proxy serving one config file on a free ``127.0.0.1`` port.

    The child runs in its own process group, so a Ctrl-C in the terminal reaches only the
    test run, which then stops it; it is also stopped at interpreter exit and, on Linux,
    killed by the kernel if the thread that started it dies without cleaning up.

    Example:
        >>> with LiteLLMProxy(tmp_path / "config.yaml") as proxy:
        ...     httpx2.get(f"{proxy.base_url}/v1/models",
        ...                headers={"Authorization": f"Bearer {proxy.master_key}"})
    """

    def __init__(
        self,
        config_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        master_key: str | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        """Describe a proxy; nothing runs until :meth:`start` (or ``with``).

        Args:
            config_path: The proxy's YAML config. Its directory becomes the working
                directory and holds the log file.
            env: Extra environment variables for the proxy, applied last.
            master_key: The proxy's ``LITELLM_MASTER_KEY``; defaults to a random strong
                ``sk-`` key. The proxy refuses to start with a weak one.
            startup_timeout: Seconds to wait for ``/health/liveliness`` to answer 200.
        """
        self.config_path = Path(config_path).resolve()
        self.startup_timeout = startup_timeout
        self._extra_env = dict(env or {})
        self._master_key = master_key or f"sk-{secrets.token_hex(24)}"
        self._log_path = self.config_path.parent / f"{self.config_path.stem}.litellm-proxy.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        state = f"port={self._port}" if self.is_running() else "stopped"
        return f"LiteLLMProxy(config={str(self.config_path)!r}, {state})"

    @property
    def port(self) -> int:
        """The TCP port the proxy listens on (known once started)."""
        if self._port is None:
            raise RuntimeError(f"{self!r} has not been started")
        return self._port

    @property
    def base_url(self) -> str:
        """The proxy root, ``http://127.0.0.1:PORT``; OpenAI routes live under ``/v1``."""
        return f"http://{HOST}:{self.port}"

    @property
    def master_key(self) -> str:
        """The bearer key the proxy accepts for every route."""
        return self._master_key

    @property
    def log_path(self) -> Path:
        """The file the proxy's stdout and stderr go to."""
        return self._log_path

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        """The child process while started (kept after it exits on its own), else ``None``."""
        return self._process

    def is_running(self) -> bool:
        """Return whether the proxy process is alive."""
        return self._process is not None and self._process.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        """Return the last ``lines`` lines of the proxy log (empty before the first start).

        Args:
            lines: How many lines to return.

        Returns:
            The log tail as one string.
        """
        if not self._log_path.is_file():
            return ""
        with self._log_path.open(encoding="utf-8", errors="replace") as log:
            return "".join(deque(log, maxlen=lines)).rstrip("\n")

    def start(self) -> Self:
        """Start the proxy and wait until ``/health/liveliness`` answers 200.

        Returns:
            The proxy itself, for chaining.

        Raises:
            LiteLLMProxyStartError: The proxy exited or did not become live in time; the
                message has the exit code and the log tail.
        """
        if self.is_running():
            return self
        if not self.config_path.is_file():
            raise LiteLLMProxyStartError(f"no proxy config at {self.config_path}")
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            self._port = _free_port()
            self._spawn()
            try:
                self._wait_live()
            except _PortTakenError:
                self._terminate()
                if attempt < _BIND_ATTEMPTS:
                    continue
                raise self._startup_error("could not bind a free port") from None
            except BaseException:
                self._terminate()
                raise
            break
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Stop the proxy: SIGTERM to its process group, then SIGKILL after 10 s.

        Safe to call more than once and on a proxy that never started. The log file stays.
        """
        atexit.unregister(self.stop)
        self._terminate()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _command(self) -> list[str]:
        script = Path(sys.executable).parent / "litellm"
        return [
            str(script),
            "--config",
            str(self.config_path),
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--num_workers",
            "1",
        ]

    def _child_env(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("DATABASE_") and name != "DIRECT_URL"
        }
        env.update(_OFFLINE_ENV)
        no_proxy = [part for part in env.get("NO_PROXY", "").split(",") if part]
        no_proxy += [name for name in _LOOPBACK_NAMES if name not in no_proxy]
        env["NO_PROXY"] = env["no_proxy"] = ",".join(no_proxy)
        env["LITELLM_MASTER_KEY"] = self._master_key
        env.update(self._extra_env)
        return env

    def _spawn(self) -> None:
        with self._log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self._command(),
                cwd=self.config_path.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._child_env(),
                start_new_session=True,
                # The hook only calls a prctl resolved before fork, so it takes no lock.
                preexec_fn=_die_with_parent(),  # noqa: PLW1509
            )

    def _wait_live(self) -> None:
        url = f"{self.base_url}/health/liveliness"
        deadline = time.monotonic() + self.startup_timeout
        with httpx2.Client(timeout=2.0, trust_env=False) as client:
            while True:
                process = self._process
                assert process is not None
                code = process.poll()
                if code is not None:
                    if "address already in use" in self.log_tail().lower():
                        raise _PortTakenError
                    raise self._startup_error(f"exited with {_describe_exit(code)}")
                with contextlib.suppress(httpx2.TransportError):
                    if client.get(url).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise self._startup_error(
                        f"did not answer /health/liveliness with 200 within "
                        f"{self.startup_timeout:.0f} s (still running)"
                    )
                time.sleep(_POLL_INTERVAL)

    def _startup_error(self, what: str) -> LiteLLMProxyStartError:
        return LiteLLMProxyStartError(
            f"LiteLLM proxy for {self.config_path} {what}; last lines of {self._log_path}:\n"
            f"{self.log_tail()}"
        )

    def _terminate(self) -> None:
        if self._process is not None:
            stop_process_group(self._process, _STOP_TIMEOUT)


def _describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name} (exit code {code})"
    return f"exit code {code}"
