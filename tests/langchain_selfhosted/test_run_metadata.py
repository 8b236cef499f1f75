"""What a LangSmith run (any callback handler) is told: provider, model, and the endpoint."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, LLMResult

from langchain_selfhosted import ChatSelfHosted
from tests.core.harness import FakeServer, chat_reply


class Runs(BaseCallbackHandler):
    """Records each chat run's metadata at its start and its result at its end."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []
        self.results: list[LLMResult] = []

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.metadata.append(dict(metadata or {}))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.results.append(response)


def served_by(result: LLMResult) -> str:
    generation = result.generations[0][0]
    assert isinstance(generation, ChatGeneration)
    assert isinstance(generation.message, AIMessage)
    return str(generation.message.response_metadata["endpoint"])


@pytest.mark.parametrize("streaming", [False, True])
def test_a_run_names_the_provider_the_model_and_the_endpoint_that_served(
    chat: ChatSelfHosted, server: FakeServer, streaming: bool
) -> None:
    server.on("POST", "/v1/chat/completions", chat_reply)
    runs = Runs()
    chat.streaming = streaming
    chat.invoke("Hi", config={"callbacks": [runs]})
    [metadata] = runs.metadata
    assert (metadata["ls_provider"], metadata["ls_model_name"]) == ("selfhosted", "tiny")
    assert metadata["ls_model_type"] == "chat"
    [result] = runs.results
    assert served_by(result) == "chat-a"
    if not streaming:
        assert result.llm_output is not None
        assert result.llm_output["endpoint"] == "chat-a"


async def test_an_async_run_is_told_the_same(chat: ChatSelfHosted, server: FakeServer) -> None:
    server.on("POST", "/v1/chat/completions", chat_reply)
    runs = Runs()
    await chat.ainvoke("Hi", config={"callbacks": [runs]})
    assert runs.metadata[0]["ls_provider"] == "selfhosted"
    assert served_by(runs.results[0]) == "chat-a"
