"""`litellm.completion` / `acompletion` / `embedding` on `selfhosted/...` against real servers."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import litellm
import pytest
from litellm.exceptions import ContextWindowExceededError, Timeout

from litellm_selfhosted import SelfHostedLLM
from selfhosted_core import Config, EndpointTimeoutError, Message, Provider, ServerKind
from selfhosted_core.local import PLAIN_ANSWER_TEXT
from tests.integration.conftest import OVERFLOW_MESSAGES
from tests.litellm_driver import LLDriver, model

pytestmark = [pytest.mark.usefixtures("registered"), pytest.mark.servers("llama.cpp", "vllm")]

HELLO = [{"role": "user", "content": "Hello"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


async def test_completion_answers_with_the_server_usage(
    ll: LLDriver, server_kind: ServerKind
) -> None:
    response = await ll.complete(model=model("tiny"), messages=HELLO)
    choice = response.choices[0]
    assert choice.message.content == PLAIN_ANSWER_TEXT
    assert choice.finish_reason == "stop"
    assert response.model == "tiny"
    usage = response.usage
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert response._hidden_params["selfhosted"]["server"] == server_kind.value
    assert response._hidden_params["response_cost"] == 0.0


async def test_completion_returns_a_tool_call(ll: LLDriver) -> None:
    response = await ll.complete(model=model("tiny"), messages=HELLO, tools=[WEATHER])
    (call,) = response.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "a"}
    assert call.id
    assert response.choices[0].finish_reason == "tool_calls"


async def test_tool_result_round_trip(ll: LLDriver) -> None:
    first = await ll.complete(model=model("tiny"), messages=HELLO, tools=[WEATHER])
    message = first.choices[0].message
    call = message.tool_calls[0]
    history = [
        *HELLO,
        message,
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await ll.complete(model=model("tiny"), messages=history, tools=[WEATHER])
    assert second.choices[0].message.content
    assert not second.choices[0].message.tool_calls


async def test_stream_delivers_text_and_the_server_usage(
    ll: LLDriver, registered: SelfHostedLLM
) -> None:
    long_prompt = [{"role": "user", "content": "word " * 100}]
    # One replica: `tiny`'s two may run different servers, whose templates differ.
    first = registered.provider.config.replicas("tiny")[0]
    chunks = await ll.stream(
        model=model("tiny"),
        messages=long_prompt,
        stream_options={"include_usage": True},
        api_base=first.api_base,
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == PLAIN_ANSWER_TEXT
    finishes = [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices]
    assert finishes[-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens > 0
    # The server's count of the templated prompt, not LiteLLM's recount of the text.
    core_messages = [Message(role="user", content="word " * 100)]
    with Provider(Config(endpoints=[first.model_dump()])) as alone:
        assert usage.prompt_tokens == alone.count_tokens("tiny", messages=core_messages)
    # The server's count, not LiteLLM's recount of the text: the server also reports how much
    # of the prompt came from its cache (vLLM with `--enable-prompt-tokens-details`).
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens is not None


async def test_stream_delivers_a_tool_call(ll: LLDriver) -> None:
    chunks = await ll.stream(model=model("tiny"), messages=HELLO, tools=[WEATHER])
    built: Any = litellm.stream_chunk_builder(chunks)
    assert built is not None
    (call,) = built.choices[0].message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "a"}
    assert built.choices[0].finish_reason == "tool_calls"


async def test_structured_output_follows_the_json_schema(ll: LLDriver) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    response = await ll.complete(
        model=model("tiny"),
        messages=HELLO,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": schema},
        },
    )
    assert json.loads(response.choices[0].message.content) == {"name": "a", "age": 0}


@pytest.mark.parametrize("texts", ["one text", ["one text", "another text", "a third"]])
async def test_embedding_returns_one_vector_per_text(ll: LLDriver, texts: str | list[str]) -> None:
    response = await ll.embed(model=model("minilm"), input=texts)
    expected = 1 if isinstance(texts, str) else len(texts)
    assert [item["index"] for item in response.data] == list(range(expected))
    assert all(len(item["embedding"]) == 384 for item in response.data)
    assert response.usage.prompt_tokens > 0


async def test_embedding_matches_the_core(ll: LLDriver, registered: SelfHostedLLM) -> None:
    from selfhosted_core import EmbeddingRequest  # noqa: PLC0415

    direct = registered.provider.embed(EmbeddingRequest(model="minilm", input=["same text"]))
    response = await ll.embed(model=model("minilm"), input=["same text"])
    assert response.data[0]["embedding"] == pytest.approx(direct.embeddings[0], abs=1e-6)


def test_model_info_comes_from_the_config_and_the_servers() -> None:
    info = litellm.get_model_info(model("tiny"))
    assert info["mode"] == "chat"
    assert info["max_input_tokens"] == 2048
    assert info["supports_function_calling"] is True
    assert info["supports_response_schema"] is True
    assert info["supports_vision"] is False
    embedding = litellm.get_model_info(model("minilm"))
    assert embedding["mode"] == "embedding"
    assert embedding["output_vector_size"] == 384


async def test_health_check_finds_the_provider(litellm_config: object) -> None:
    healthy = await litellm.ahealth_check(
        model_params={"model": model("tiny"), "messages": HELLO}, mode="chat"
    )
    assert "error" not in healthy
    broken = await litellm.ahealth_check(
        model_params={"model": model("nope"), "messages": HELLO}, mode="chat"
    )
    assert "unknown model 'nope'" in str(broken["error"])


@pytest.mark.parametrize("streaming", [False, True])
async def test_context_overflow_is_litellms_class(
    ll: LLDriver, registered: SelfHostedLLM, streaming: bool, server_kind: ServerKind
) -> None:
    provider: Provider = registered.provider
    prompt = "word " * 600
    assert provider.count_tokens("tiny", text=prompt) > 2048
    first = provider.config.replicas("tiny")[0]
    call = ll.stream if streaming else ll.complete
    with pytest.raises(ContextWindowExceededError) as caught:
        await call(
            model=model("tiny"),
            messages=[{"role": "user", "content": prompt}],
            api_base=first.api_base,
        )
    assert OVERFLOW_MESSAGES[server_kind] in str(caught.value)
    assert caught.value.status_code == 400


async def test_timeout_is_enforced_as_litellms_timeout(ll: LLDriver) -> None:
    """LiteLLM hands custom handlers the timeout without enforcing it; the handler does."""
    with socket.socket() as stalled:
        # Listening but never accepting: the connection opens and no byte ever comes back.
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(8)
        host, port = stalled.getsockname()
        handler = SelfHostedLLM(Config(endpoints=[{"url": f"http://{host}:{port}", "id": "slow"}]))
        litellm.custom_provider_map = [{"provider": "selfhosted", "custom_handler": handler}]
        started = time.monotonic()
        with pytest.raises(Timeout) as caught:
            await ll.complete(model=model("slow"), messages=HELLO, timeout=0.5)
        elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert elapsed < 10
    assert isinstance(caught.value.__cause__, EndpointTimeoutError)
