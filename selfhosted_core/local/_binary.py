"""Find a ``llama-server`` binary, building one from the llama-cpp-python sdist if need be.

Resolution order: the ``SELFHOSTED_LLAMA_SERVER`` environment variable, ``llama-server`` on
``PATH``, then a binary built once from the llama.cpp sources vendored in the
``llama-cpp-python`` sdist on PyPI and cached under ``$XDG_CACHE_HOME/selfhosted-llm``.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from selfhosted_core.local._cache import cache_root, pip_download
from selfhosted_core.local._errors import LlamaServerBuildError
from selfhosted_core.local._steps import elapsed, run_logged, say, tail

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import TextIO

__all__ = [
    "CMAKE_FLAGS",
    "LLAMA_CPP_PYTHON_VERSION",
    "binary_cache_key",
    "build_llama_server",
    "cached_binary_path",
    "find_llama_server",
]

ENV_VAR = "SELFHOSTED_LLAMA_SERVER"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
CMAKE_FLAGS: tuple[str, ...] = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    # Static so the cached binary runs without LD_LIBRARY_PATH pointing into a build tree.
    "-DBUILD_SHARED_LIBS=OFF",
    # The cache may be shared across machines (a CI cache, a home directory on NFS), so the
    # binary must not depend on the build host's exact CPU: NATIVE would bake in e.g. AVX-512
    # and crash elsewhere with SIGILL. With NATIVE off ggml still compiles for x86-64-v3
    # (AVX2, FMA, F16C, BMI2), so the cache key needs no CPU flags beyond the architecture.
    "-DGGML_NATIVE=OFF",
)
# Make prints "[ 42%] Building ...", Ninja prints "[123/456] Building ...".
_MAKE_PROGRESS = re.compile(r"^\[\s*(\d+)%\]")
_NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")


def binary_cache_key(
    version: str = LLAMA_CPP_PYTHON_VERSION,
    *,
    flags: Iterable[str] = CMAKE_FLAGS,
    machine: str | None = None,
) -> str:
    """Name the cache slot for one build: sdist version, CPU architecture and cmake flags.

    Args:
        version: The ``llama-cpp-python`` sdist version the sources come from.
        flags: The cmake configure flags; any change yields a different key.
        machine: The CPU architecture; defaults to ``platform.machine()``.

    Returns:
        A file-name-safe key such as ``0.3.36-x86_64-1a2b3c4d5e6f``.

    Example:
        >>> binary_cache_key("0.3.36", flags=["-DX=1"], machine="x86_64")[:14]
        '0.3.36-x86_64-'
    """
    digest = hashlib.sha256("\0".join(flags).encode()).hexdigest()[:12]
    return f"{version}-{machine or platform.machine()}-{digest}"


def cached_binary_path(*, root: Path | None = None) -> Path:
    """Return where the built ``llama-server`` lives (or will live) in the cache.

    Args:
        root: The cache directory; defaults to :func:`cache_root`.

    Returns:
        The path of the cached binary; it may not exist yet.
    """
    return (root or cache_root()) / "bin" / binary_cache_key() / "llama-server"


def find_llama_server(
    *,
    build: bool = True,
    progress: TextIO | None = None,
    on_percent: Callable[[int], object] | None = None,
) -> Path:
    """Locate a ``llama-server`` binary, building and caching one if none is available.

    Args:
        build: Build from source when no binary is found; if false, raise instead.
        progress: Where build progress goes; defaults to ``sys.stderr``.
        on_percent: Called with the build's percentage as cmake reports it (for a progress
            bar); the percentages are then not written to ``progress``.

    Returns:
        The path of an executable ``llama-server``.

    Raises:
        LlamaServerBuildError: ``SELFHOSTED_LLAMA_SERVER`` names no executable, or no binary
            exists and it could not (or may not) be built.

    Example:
        >>> from selfhosted_core.local import find_llama_server
        >>> find_llama_server().name
        'llama-server'
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LlamaServerBuildError(f"{ENV_VAR}={override!r} is not an executable file")
        return path
    on_path = shutil.which("llama-server")
    if on_path:
        return Path(on_path)
    cached = cached_binary_path()
    if _is_executable(cached):
        return cached
    if not build:
        raise LlamaServerBuildError(
            f"no llama-server found: {ENV_VAR} is unset, none is on PATH, and {cached} "
            "has not been built yet"
        )
    return build_llama_server(progress=progress, on_percent=on_percent)


def build_llama_server(
    *,
    root: Path | None = None,
    progress: TextIO | None = None,
    on_percent: Callable[[int], object] | None = None,
) -> Path:
    """Build ``llama-server`` from the llama-cpp-python sdist and install it in the cache.

    A file lock serialises builds across processes; a process that waited for another's build
    returns the finished binary without building again.

    Args:
        root: The cache directory; defaults to :func:`cache_root`.
        progress: Where build progress goes; defaults to ``sys.stderr``.
        on_percent: Called with the build's percentage as cmake reports it (for a progress
            bar); the percentages are then not written to ``progress``.

    Returns:
        The path of the cached binary.

    Raises:
        LlamaServerBuildError: A tool is missing, PyPI is unreachable, or the build failed.
    """
    out = progress or sys.stderr
    root = root or cache_root()
    target = cached_binary_path(root=root)
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(target.parent / "build.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        say(out, "another process is building llama-server; waiting for it to finish")
        lock.acquire()
    try:
        if _is_executable(target):
            return target
        cmake, generator = _require_tools()
        with tempfile.TemporaryDirectory(prefix="build-", dir=target.parent) as tmp:
            work = Path(tmp)
            log_path = target.parent / "build.log"
            say(
                out,
                f"building llama-server {LLAMA_CPP_PYTHON_VERSION} from source, once; this "
                f"takes about 4 minutes on 2 idle cores, longer on busy ones (full log: "
                f"{log_path})",
            )
            source = _fetch_sources(work)
            configure = [cmake, "-S", str(source), "-B", str(work / "build"), *generator]
            built = _compile(
                configure + list(CMAKE_FLAGS),
                work / "build",
                log_path,
                out=out,
                on_percent=on_percent,
            )
            staged = target.with_name(".llama-server.tmp")
            shutil.copy2(built, staged)
            os.replace(staged, target)
    finally:
        lock.release()
    say(out, f"llama-server ready: {target}")
    return target


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _require_tools() -> tuple[str, list[str]]:
    """Return cmake's path and the generator arguments, or say everything that is missing."""
    cmake = shutil.which("cmake")
    compiler = os.environ.get("CXX") or next(
        (c for c in ("c++", "g++", "clang++") if shutil.which(c)), None
    )
    # cmake's default generator on Linux is Unix Makefiles; Ninja is the usual alternative.
    generator = [] if shutil.which("make") else ["-G", "Ninja"] if shutil.which("ninja") else None
    missing = [
        name
        for name, found in (
            ("cmake", cmake is not None),
            ("a C++ compiler (c++, g++ or clang++)", compiler is not None),
            ("make or ninja", generator is not None),
        )
        if not found
    ]
    if cmake is None or generator is None or missing:
        raise LlamaServerBuildError(
            "cannot build llama-server: missing "
            + ", ".join(missing)
            + " on PATH (Debian/Ubuntu: apt-get install cmake g++ make); "
            f"or point {ENV_VAR} at an existing llama-server binary"
        )
    return cmake, generator


def _fetch_sources(work: Path) -> Path:
    """Download and unpack the sdist; return its vendored llama.cpp directory."""
    spec = f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"
    download = pip_download(spec, work, form="sdist")
    archives = sorted(work.glob("llama_cpp_python-*.tar.gz"))
    if download.returncode != 0 or not archives:
        raise LlamaServerBuildError(
            f"could not download the {spec} sdist from PyPI (is the package index reachable? "
            f"pip's index settings apply); pip said:\n{tail(download.stderr.splitlines())}"
        )
    with tarfile.open(archives[0]) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(work, filter="data")
        else:  # Python 3.10 before 3.10.12 has no extraction filters; the sdist is PyPI's own.
            tar.extractall(work)
    vendored = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"), None)
    if vendored is None or not (vendored / "CMakeLists.txt").is_file():
        raise LlamaServerBuildError(f"the {spec} sdist has no vendor/llama.cpp/CMakeLists.txt")
    return vendored


def _compile(
    configure: list[str],
    build_dir: Path,
    log_path: Path,
    *,
    out: TextIO,
    on_percent: Callable[[int], object] | None,
) -> Path:
    started = time.monotonic()
    build = [configure[0], "--build", str(build_dir), "--config", "Release"]
    build += ["--target", "llama-server", "-j", "2"]
    with log_path.open("w", buffering=1) as log:
        report = on_percent or _printer(out, started)
        for step, command in (("cmake configure", configure), ("cmake build", build)):
            run_logged(
                command, log=log, progress=_progress, report=report, started=started,
                step=step, error=LlamaServerBuildError,
            )  # fmt: skip
    built = build_dir / "bin" / "llama-server"
    if not _is_executable(built):
        raise LlamaServerBuildError(f"the build finished but produced no {built}")
    return built


def _printer(out: TextIO, started: float) -> Callable[[int], None]:
    def report(percent: int) -> None:
        say(out, f"llama-server build {percent:3d}% ({elapsed(started)})")

    return report


def _progress(line: str) -> int | None:
    if match := _MAKE_PROGRESS.match(line):
        return int(match.group(1))
    if match := _NINJA_PROGRESS.match(line):
        return 100 * int(match.group(1)) // max(int(match.group(2)), 1)
    return None
