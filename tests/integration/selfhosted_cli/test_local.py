"""`selfhosted local up|down`: detached servers, an endpoints file the core loads, a clean stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selfhosted_core import ChatRequest, Config, EmbeddingRequest, Message, Provider
from selfhosted_core.local import PLAIN_ANSWER_TEXT
from tests.cli_terminal import Run


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_up_writes_endpoints_and_down_stops_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = Run()
    assert run("local", "up", "--dir", str(tmp_path), "--replicas", "2") == 0
    assert f"endpoints file: {tmp_path / 'endpoints.yaml'}" in run.out
    assert f"stop them with: selfhosted local down --dir {tmp_path}" in run.out
    state = json.loads((tmp_path / "servers.json").read_text())
    assert list(state) == ["chat-1", "chat-2", "embedding"]
    pids = [entry["pid"] for entry in state.values()]
    try:
        assert all(alive(pid) for pid in pids)
        config = Config.from_env({"SELFHOSTED_CONFIG": str(tmp_path / "endpoints.yaml")})
        with Provider(config) as provider:
            answers = [
                provider.chat(
                    ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")])
                )
                for _ in range(2)
            ]
            vectors = provider.embed(EmbeddingRequest(model="minilm", input=["a", "b"])).embeddings
        assert [(a.content, a.endpoint) for a in answers] == [
            (PLAIN_ANSWER_TEXT, "chat-1"),
            (PLAIN_ANSWER_TEXT, "chat-2"),
        ]
        assert [len(v) for v in vectors] == [384, 384]
        # The commands find the endpoints `local up` wrote without being told.
        monkeypatch.delenv("SELFHOSTED_CONFIG", raising=False)
        monkeypatch.setattr("selfhosted_cli._commands.run_dir", lambda: tmp_path)
        checked = Run()
        assert checked("check") == 0
        assert checked.out.count("│ ok ") == 3
    finally:
        down = Run()
        assert down("local", "down", "--dir", str(tmp_path)) == 0
    assert "chat-1     stopped" in down.out
    assert not any(alive(pid) for pid in pids)
    assert not (tmp_path / "endpoints.yaml").exists()


def test_up_with_vllm_serves_both_models_and_down_stops_them(tmp_path: Path) -> None:
    run = Run()
    assert run("local", "up", "--dir", str(tmp_path), "--server", "vllm") == 0
    state = json.loads((tmp_path / "servers.json").read_text())
    assert list(state) == ["vllm-1", "embedding"]
    pids = [entry["pid"] for entry in state.values()]
    try:
        config = Config.from_env({"SELFHOSTED_CONFIG": str(tmp_path / "endpoints.yaml")})
        assert [(e.label, e.server) for e in config.endpoints] == [
            ("vllm-1", "vllm"),
            ("embedding", "vllm"),
        ]
        with Provider(config) as provider:
            answer = provider.chat(
                ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")])
            )
            vectors = provider.embed(EmbeddingRequest(model="minilm", input=["a"])).embeddings
        assert (answer.content, answer.endpoint) == (PLAIN_ANSWER_TEXT, "vllm-1")
        assert [len(v) for v in vectors] == [384]
    finally:
        down = Run()
        assert down("local", "down", "--dir", str(tmp_path)) == 0
    assert "vllm-1     stopped" in down.out
    assert not any(alive(pid) for pid in pids)


def test_console_script_without_servers(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("selfhosted")
    result = subprocess.run(
        [str(script), "local", "down", "--dir", str(tmp_path)],
        capture_output=True, text=True, check=False, env={**os.environ},
    )  # fmt: skip
    assert (result.returncode, result.stdout) == (0, "no servers running\n")
