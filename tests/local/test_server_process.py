"""LlamaServer's process management: start, stop, errors, and no orphans."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from selfhosted_core.local import LlamaServer, LlamaServerStartError, _process, stop_detached
from tests.local.conftest import API_KEY

pytestmark = pytest.mark.timeout(1800)


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer runs (a zombie awaiting a reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


def test_lifecycle(llama_server_binary: Path, minilm_gguf: Path) -> None:
    server = LlamaServer(minilm_gguf, embeddings=True, binary=llama_server_binary, parallel=2)
    assert not server.is_running()
    assert "stopped" in repr(server)
    with pytest.raises(RuntimeError, match="not been started"):
        _ = server.base_url
    with server:
        pid = server.pid
        assert pid is not None
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        models = httpx2.get(f"{server.base_url}/models").json()
        assert models["data"][0]["id"] == minilm_gguf.stem
        assert os.getpgid(pid) == pid != os.getpgrp()
        log = server.log_path
        assert log is not None
        assert f"listening on {server.url}" in server.log_tail()
    assert not server.is_running()
    assert server.pid is None
    assert _wait_gone(pid)
    assert not log.exists()
    server.stop()


def test_api_key_stays_off_the_command_line(
    embedding_server: LlamaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert embedding_server.pid is not None
    cmdline = Path(f"/proc/{embedding_server.pid}/cmdline").read_bytes().split(b"\0")
    assert API_KEY.encode() not in b" ".join(cmdline)
    assert b"--alias" in cmdline
    assert b"--embeddings" in cmdline
    assert cmdline[cmdline.index(b"-t") + 1] == b"1"


def test_inherited_llama_env_does_not_leak(
    llama_server_binary: Path, minilm_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMA_API_KEY", "from-the-parent")
    with LlamaServer(minilm_gguf, embeddings=True, binary=llama_server_binary) as server:
        response = httpx2.post(f"{server.base_url}/embeddings", json={"input": "hi"})
        assert response.status_code == 200


def test_startup_failure_carries_the_log_tail(llama_server_binary: Path, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    server = LlamaServer(bogus, binary=llama_server_binary, startup_timeout=60)
    with pytest.raises(LlamaServerStartError) as info:
        server.start()
    message = str(info.value)
    assert "exited with code" in message
    assert str(bogus) in message
    assert "bogus.gguf" in server.log_tail()
    assert server.log_path is not None
    assert server.log_path.exists()
    server.stop()
    assert server.log_path is None


def test_child_dies_with_a_killed_parent(
    llama_server_binary: Path, minilm_gguf: Path, tmp_path: Path
) -> None:
    # A SIGKILLed parent cannot remove its log, so it goes where pytest cleans up.
    script = textwrap.dedent(
        f"""
        import sys, time
        from selfhosted_core.local import LlamaServer
        server = LlamaServer({str(minilm_gguf)!r}, embeddings=True,
                             binary={str(llama_server_binary)!r},
                             log_path={str(tmp_path / "server.log")!r}).start()
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert not _gone(pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    assert _wait_gone(pid), f"llama-server {pid} outlived its killed parent"


def test_child_is_stopped_at_interpreter_exit(llama_server_binary: Path, minilm_gguf: Path) -> None:
    # Started from a worker thread, where the parent-death signal is not armed, so only the
    # atexit hook can stop it.
    script = textwrap.dedent(
        f"""
        import threading
        from selfhosted_core.local import LlamaServer
        server = LlamaServer({str(minilm_gguf)!r}, embeddings=True,
                             binary={str(llama_server_binary)!r})
        worker = threading.Thread(target=server.start)
        worker.start()
        worker.join()
        print(server.pid, flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert _wait_gone(int(done.stdout))


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_taken_before_bind_is_retried(
    llama_server_binary: Path, minilm_gguf: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_port = _process._free_port
    ports = iter([busy_port])
    monkeypatch.setattr(_process, "_free_port", lambda: next(ports, None) or real_free_port())
    with LlamaServer(minilm_gguf, embeddings=True, binary=llama_server_binary) as server:
        assert server.port != busy_port
        assert httpx2.get(f"{server.url}/health").status_code == 200


def test_a_port_always_taken_fails_clearly(
    llama_server_binary: Path, minilm_gguf: Path, busy_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_process, "_free_port", lambda: busy_port)
    server = LlamaServer(minilm_gguf, embeddings=True, binary=llama_server_binary)
    with pytest.raises(LlamaServerStartError, match="could not bind a free port"):
        server.start()
    assert not server.is_running()
    server.stop()


def test_a_requested_port_that_is_taken_fails_naming_it(
    llama_server_binary: Path, minilm_gguf: Path, busy_port: int
) -> None:
    server = LlamaServer(minilm_gguf, embeddings=True, binary=llama_server_binary, port=busy_port)
    with pytest.raises(LlamaServerStartError, match=f"could not bind port {busy_port}"):
        server.start()
    server.stop()


def test_a_killed_server_started_again_keeps_its_port(
    llama_server_binary: Path, minilm_gguf: Path
) -> None:
    with LlamaServer(minilm_gguf, embeddings=True, binary=llama_server_binary) as server:
        port, pid = server.port, server.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert _wait_gone(pid)
        with pytest.raises(httpx2.ConnectError):
            httpx2.get(f"{server.url}/health")
        server.start()
        assert (server.port, server.pid != pid) == (port, True)
        assert httpx2.get(f"{server.url}/health").status_code == 200


def test_stopping_a_group_whose_leader_exited_ends_what_it_left() -> None:
    """A server's own processes (vLLM's engine) outlive a leader that crashed first."""
    process = subprocess.Popen(
        ["sh", "-c", "sleep 300 & echo $!; exit 0"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert process.stdout is not None
    left = int(process.stdout.readline())
    process.wait()
    process.stdout.close()
    assert not _gone(left)
    _process.stop_process_group(process, timeout=5)
    assert _wait_gone(left)


def test_a_detached_server_stopped_by_pid_is_reaped(
    llama_server_binary: Path, minilm_gguf: Path
) -> None:
    """`selfhosted local down` in the process that ran `local up` leaves no zombie behind
    (and no `Popen` that warns "still running" at exit)."""
    server = LlamaServer(minilm_gguf, embeddings=True, binary=llama_server_binary, detach=True)
    server.start()
    pid = server.pid
    assert pid is not None
    assert [p.pid for p in _process._DETACHED if p.pid == pid] == [pid]
    assert stop_detached(pid)
    assert not any(p.pid == pid for p in _process._DETACHED)
    assert not Path(f"/proc/{pid}").exists()
    server.stop()
