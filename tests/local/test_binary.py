"""Resolution, caching and failure modes of find_llama_server (no compiler run)."""

from __future__ import annotations

import io
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from filelock import FileLock

from selfhosted_core.local import (
    LLAMA_CPP_PYTHON_VERSION,
    LlamaServerBuildError,
    _binary,
    binary_cache_key,
    build_llama_server,
    cache_root,
    cached_binary_path,
    find_llama_server,
)
from selfhosted_core.local._binary import CMAKE_FLAGS, ENV_VAR, _progress
from selfhosted_core.local._steps import run_logged


def _executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No override, an empty PATH directory, and a private cache; returns the bin directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CXX", raising=False)
    return bin_dir


def test_cache_key_names_version_machine_and_flags() -> None:
    key = binary_cache_key()
    assert key.startswith(f"{LLAMA_CPP_PYTHON_VERSION}-{platform.machine()}-")
    assert key == binary_cache_key(LLAMA_CPP_PYTHON_VERSION, flags=CMAKE_FLAGS)
    assert "/" not in key
    assert " " not in key


def test_cache_key_changes_with_every_input() -> None:
    base = binary_cache_key("1.0", flags=["-DA=1"], machine="x86_64")
    assert binary_cache_key("1.1", flags=["-DA=1"], machine="x86_64") != base
    assert binary_cache_key("1.0", flags=["-DA=2"], machine="x86_64") != base
    assert binary_cache_key("1.0", flags=["-DA=1"], machine="aarch64") != base
    assert binary_cache_key("1.0", flags=["-DA=1", "-DB=1"], machine="x86_64") != base


def test_built_binary_needs_no_library_from_the_build_tree(llama_server_binary: Path) -> None:
    # Static llama/ggml/mtmd: the cached binary must run without LD_LIBRARY_PATH.
    linked = subprocess.run(
        ["ldd", str(llama_server_binary)], capture_output=True, text=True, check=True
    ).stdout
    assert "not found" not in linked
    needed = [line.split()[0] for line in linked.splitlines() if "=>" in line]
    assert needed
    assert not [name for name in needed if name.startswith(("libllama", "libggml", "libmtmd"))]


def test_cache_root_respects_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_root() == tmp_path / "selfhosted-llm"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "selfhosted-llm"


def test_cached_binary_path_is_keyed(tmp_path: Path) -> None:
    path = cached_binary_path(root=tmp_path)
    assert path == tmp_path / "bin" / binary_cache_key() / "llama-server"


def test_env_var_wins(isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _executable(isolated / "llama-server")
    chosen = _executable(tmp_path / "elsewhere" / "my-llama-server")
    monkeypatch.setenv(ENV_VAR, str(chosen))
    assert find_llama_server() == chosen


def test_env_var_must_name_an_executable(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("")
    monkeypatch.setenv(ENV_VAR, str(plain))
    with pytest.raises(LlamaServerBuildError, match=ENV_VAR):
        find_llama_server()


def test_path_before_cache(isolated: Path) -> None:
    _executable(cached_binary_path())
    on_path = _executable(isolated / "llama-server")
    assert find_llama_server() == on_path


def test_cache_hit_builds_nothing(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = _executable(cached_binary_path())

    def no_build(**_: object) -> Path:
        raise AssertionError("a cache hit must not build")

    monkeypatch.setattr(_binary, "build_llama_server", no_build)
    progress = io.StringIO()
    assert find_llama_server(progress=progress) == cached
    assert progress.getvalue() == ""


def test_no_build_allowed(isolated: Path) -> None:
    with pytest.raises(LlamaServerBuildError, match="has not been built yet"):
        find_llama_server(build=False)


def test_missing_cmake_is_named(isolated: Path) -> None:
    for tool in ("c++", "make"):
        os.symlink("/bin/true", isolated / tool)
    with pytest.raises(LlamaServerBuildError) as info:
        find_llama_server(progress=io.StringIO())
    message = str(info.value)
    assert "missing cmake on PATH" in message
    assert "compiler" not in message
    assert ENV_VAR in message


def test_every_missing_tool_is_named(isolated: Path) -> None:
    with pytest.raises(LlamaServerBuildError) as info:
        find_llama_server(progress=io.StringIO())
    message = str(info.value)
    assert "cmake" in message
    assert "C++ compiler" in message
    assert "make or ninja" in message


def test_unreachable_index_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path
) -> None:
    for tool in ("cmake", "c++", "make"):
        os.symlink("/bin/true", isolated / tool)
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    progress = io.StringIO()
    with pytest.raises(LlamaServerBuildError, match="could not download the llama-cpp-python"):
        find_llama_server(progress=progress)
    assert "about 4 minutes on 2 idle cores" in progress.getvalue()
    assert not cached_binary_path().exists()


def test_waiting_build_reuses_the_other_process_result(isolated: Path) -> None:
    target = cached_binary_path()
    target.parent.mkdir(parents=True)
    held = FileLock(str(target.parent / "build.lock"))
    held.acquire()
    progress = io.StringIO()
    result: list[Path] = []
    waiter = threading.Thread(target=lambda: result.append(build_llama_server(progress=progress)))
    waiter.start()
    deadline = time.monotonic() + 5
    while "waiting" not in progress.getvalue() and time.monotonic() < deadline:
        time.sleep(0.01)
    _executable(target)
    held.release()
    waiter.join(timeout=5)
    assert result == [target]
    assert "another process is building" in progress.getvalue()
    assert "from source" not in progress.getvalue()


@pytest.mark.parametrize(
    ("line", "percent"),
    [
        ("[ 42%] Building CXX object common/arg.cpp.o\n", 42),
        ("[100%] Built target llama-server\n", 100),
        ("[123/456] Building CXX object src/llama.cpp.o\n", 26),
        ("-- Configuring done\n", None),
    ],
)
def test_progress_lines(line: str, percent: int | None) -> None:
    assert _progress(line) == percent


def test_build_percentages_reach_the_callback(tmp_path: Path) -> None:
    lines = "-- Configuring done\n[ 42%] Building CXX object a.o\n[ 42%] b.o\n[100%] Built\n"
    command = [sys.executable, "-c", f"print({lines!r}, end='')"]
    seen: list[int] = []
    with (tmp_path / "build.log").open("w") as log:
        run_logged(
            command, log=log, progress=_progress, report=seen.append, started=time.monotonic(),
            step="x", error=LlamaServerBuildError,
        )  # fmt: skip
    assert seen == [42, 100]
    assert (tmp_path / "build.log").read_text() == lines


def test_failed_step_names_itself_and_keeps_the_log_tail(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "print('error: no compiler'); raise SystemExit(3)"]
    with (
        (tmp_path / "build.log").open("w") as log,
        pytest.raises(LlamaServerBuildError, match=r"cmake build failed with exit code 3"),
    ):
        run_logged(
            command, log=log, progress=_progress, report=print, started=time.monotonic(),
            step="cmake build", error=LlamaServerBuildError,
        )  # fmt: skip
