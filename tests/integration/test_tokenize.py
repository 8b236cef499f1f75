"""Token counting and the context window through the core, against each real server."""

from __future__ import annotations

import httpx2
import pytest

from selfhosted_core import ChatRequest, Config, Message, Provider, ServerKind
from selfhosted_core.local import VllmServer
from selfhosted_core.local._process import ServerProcess
from tests.driver import Driver
from tests.integration.conftest import API_KEY, CONTEXT, MINILM_WINDOWS, SLOTS

pytestmark = pytest.mark.servers("llama.cpp", "vllm")

TEXT = "What is the weather in Oslo? Answer in one short sentence, please."


def server_tokens(server: ServerProcess, text: str, *, key: str | None = None) -> list[int]:
    """The server's own /tokenize answer, asked directly, without special tokens (a BOS):
    llama-server's default, and vLLM's `add_special_tokens` turned off."""
    headers = {"authorization": f"Bearer {key}"} if key else {}
    body: dict[str, object] = {"content": text}
    if isinstance(server, VllmServer):
        body = {"model": server.alias, "prompt": text, "add_special_tokens": False}
    response = httpx2.post(f"{server.url}/tokenize", json=body, headers=headers)
    response.raise_for_status()
    tokens: list[int] = response.json()["tokens"]
    return tokens


async def test_text_is_counted_by_the_servers_tokenizer(
    driver: Driver, chat_server: ServerProcess
) -> None:
    count = await driver.count_tokens("tiny", text=TEXT)
    assert count == len(server_tokens(chat_server, TEXT, key=API_KEY))
    assert 0 < count <= len(TEXT.encode())
    assert await driver.count_tokens("tiny", text="") == 0


async def test_messages_count_is_the_prompt_the_chat_then_reports(driver: Driver) -> None:
    messages = [
        Message(role="system", content="Be brief."),
        Message(role="user", content=TEXT),
    ]
    count = await driver.count_tokens("tiny", messages=messages)
    answer = await driver.chat(ChatRequest(model="tiny", messages=messages, max_tokens=4))
    assert answer.usage is not None
    assert count == answer.usage.prompt_tokens
    # The template wraps the text in turns and adds the generation prompt.
    assert count > await driver.count_tokens("tiny", text=TEXT)


async def test_an_undeclared_server_is_detected_before_counting(
    driver: Driver, embedding_server: ServerProcess
) -> None:
    """The `minilm` endpoint declares no `server:`; the count runs its health check first."""
    count = await driver.count_tokens("minilm", text=TEXT)
    assert count == len(server_tokens(embedding_server, TEXT))


async def test_reasoning_sent_back_is_accepted_and_counted(driver: Driver, config: Config) -> None:
    """Reasoning on an assistant message is accepted (llama-server reads `reasoning_content`,
    common/chat.cpp; vLLM `reasoning`) and the count is the prompt the chat reports, whether the
    template renders it (the tiny model's on vLLM, see test_chat.py) or drops it (its GGUF's)."""
    endpoint = config.endpoints[0].model_dump()
    endpoint["capabilities"] = ["chat", "reasoning"]
    history = [
        Message(role="user", content="Say hello"),
        Message(role="assistant", content="Hello!", reasoning="The user wants a greeting."),
        Message(role="user", content="Again"),
    ]
    async with Provider(Config(endpoints=[endpoint])) as provider:
        reasoner = Driver(driver.mode, provider)
        answer = await reasoner.chat(ChatRequest(model="tiny", messages=history, max_tokens=8))
        count = await reasoner.count_tokens("tiny", messages=history)
    assert answer.usage is not None
    assert count == answer.usage.prompt_tokens


async def test_context_window_is_what_the_health_check_found(
    driver: Driver, server_kind: ServerKind
) -> None:
    provider = driver.provider
    assert provider.context_window("tiny") is None
    await driver.health()
    assert provider.context_window("tiny") == CONTEXT // SLOTS
    assert provider.context_window("minilm") == MINILM_WINDOWS[server_kind]
    assert [info.context_window for info in provider.available_models()] == [
        CONTEXT // SLOTS,
        MINILM_WINDOWS[server_kind],
    ]
