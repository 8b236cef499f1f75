"""`LocalStack`: replicas and the embedding server together, their config, an all-or-nothing start."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfhosted_core import ChatRequest, Message, Provider
from selfhosted_core.local import (
    PLAIN_ANSWER_TEXT,
    LlamaServer,
    LlamaServerStartError,
    LocalStack,
)


def test_replicas_and_embeddings_in_one_config(llama_server_binary: Path, tmp_path: Path) -> None:
    with LocalStack(chat_replicas=2, binary=llama_server_binary, log_dir=tmp_path) as stack:
        config = stack.config
        assert [(e.label, e.id) for e in config.endpoints] == [
            ("chat-1", "tiny"),
            ("chat-2", "tiny"),
            ("embedding", "minilm"),
        ]
        assert config.endpoints[2].dimension == 384
        with Provider(config) as provider:
            request = ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")])
            answers = {provider.chat(request).endpoint for _ in range(2)}
            assert answers == {"chat-1", "chat-2"}
            assert provider.chat(request).content == PLAIN_ANSWER_TEXT
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            "chat-1.log",
            "chat-2.log",
            "embedding.log",
        ]
    assert not any(server.is_running() for server in stack.servers.values())


@pytest.mark.parametrize(
    "failure", [LlamaServerStartError("llama-server for minilm exited"), KeyboardInterrupt()]
)
def test_a_failed_start_stops_the_servers_already_running(
    llama_server_binary: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: BaseException,
) -> None:
    logs = tmp_path / "not-yet" / "made"
    stack = LocalStack(binary=llama_server_binary, log_dir=logs, detach=True)
    embedding = stack.servers["embedding"]

    def refuse(self: LlamaServer) -> LlamaServer:
        raise failure

    monkeypatch.setattr(embedding, "start", refuse.__get__(embedding))
    with pytest.raises(type(failure)):
        stack.start()
    assert (logs / "chat-1.log").is_file()
    assert not stack.servers["chat-1"].is_running()


def test_at_least_one_chat_replica() -> None:
    with pytest.raises(ValueError, match="got chat_replicas=0 and vllm_replicas=0"):
        LocalStack(chat_replicas=0)
    with pytest.raises(ValueError, match=r"embedding_server must be 'llama\.cpp' or 'vllm'"):
        LocalStack(embedding_server="VLLM")  # type: ignore[arg-type]


def test_vllm_replicas_beside_llama_servers_in_the_config() -> None:
    """The endpoints a mixed stack will give, described before anything starts."""
    stack = LocalStack(chat_replicas=1, vllm_replicas=1, embedding_server="vllm")
    assert [(label, server.kind.value) for label, server in stack.servers.items()] == [
        ("chat-1", "llama.cpp"),
        ("vllm-1", "vllm"),
        ("embedding", "vllm"),
    ]
    assert not any(server.is_running() for server in stack.servers.values())
