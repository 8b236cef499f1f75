"""Chat, streaming, tools and structured output through the core, against a real llama-server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import httpx2
import jsonschema
import pytest

from selfhosted_core import (
    AuthenticationError,
    ChatRequest,
    Config,
    ContextWindowExceededError,
    Message,
    Provider,
    ResponseFormat,
    ServerKind,
    Tool,
)
from selfhosted_core.local import PLAIN_ANSWER_TEXT, REASONING_TEXT, TOOL_RESULT_ANSWER_TEXT
from selfhosted_core.local._chat_tokenizer import REASONING
from selfhosted_core.local._process import ServerProcess
from tests.driver import Driver
from tests.integration.conftest import API_KEY, OVERFLOW_MESSAGES

pytestmark = pytest.mark.servers("llama.cpp", "vllm")

WEATHER = Tool(
    name="get_weather",
    description="Current weather in a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
QUESTION = [Message(role="user", content="What is the weather in Oslo?")]


def ask(**fields: object) -> ChatRequest:
    fields.setdefault("messages", [Message(role="user", content="Say hello")])
    fields.setdefault("max_tokens", 64)
    return ChatRequest(model="tiny", **fields)  # type: ignore[arg-type]


async def test_plain_chat(driver: Driver, server_kind: ServerKind) -> None:
    answer = await driver.chat(ask())
    assert (answer.content, answer.finish_reason) == (PLAIN_ANSWER_TEXT, "stop")
    assert (answer.model, answer.endpoint, answer.server) == ("tiny", "local-chat", server_kind)
    assert answer.usage is not None
    assert answer.usage.completion_tokens > 0
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens
    # Only llama-server reports its timings (prompt and generation speed) with each answer.
    assert (answer.timings is not None) == (server_kind is ServerKind.LLAMA_CPP)
    assert answer.tool_calls == ()


async def test_stream_puts_usage_in_the_last_chunk(driver: Driver) -> None:
    chunks, final = await driver.stream(ask())
    assert "".join(chunk.content or "" for chunk in chunks) == PLAIN_ANSWER_TEXT
    assert len([chunk for chunk in chunks if chunk.content]) > 1
    assert chunks[-1].usage is not None
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert (final.content, final.finish_reason, final.usage) == (
        PLAIN_ANSWER_TEXT,
        "stop",
        chunks[-1].usage,
    )


@pytest.mark.parametrize("choice", ["auto", "required", "get_weather"])
async def test_one_tool_call_when_tools_are_offered(driver: Driver, choice: str) -> None:
    search = Tool(name="search", parameters={"type": "object", "properties": {}})
    answer = await driver.chat(ask(messages=QUESTION, tools=[search, WEATHER], tool_choice=choice))
    (call,) = answer.tool_calls
    assert call.name == "get_weather"
    jsonschema.validate(call.args, WEATHER.parameters)
    assert (answer.finish_reason, answer.content, answer.invalid_tool_calls) == (
        "tool_calls",
        None,
        (),
    )


async def test_streamed_tool_call_assembles_to_the_same_call(driver: Driver) -> None:
    chunks, final = await driver.stream(
        ask(messages=QUESTION, tools=[WEATHER], tool_choice="required")
    )
    pieces = [piece for chunk in chunks for piece in chunk.tool_calls]
    assert {piece.index for piece in pieces} == {0}
    assert pieces[0].name == "get_weather"
    assert pieces[0].id
    (call,) = final.tool_calls
    assert call.arguments == "".join(piece.arguments for piece in pieces)
    assert (call.id, final.finish_reason) == (pieces[0].id, "tool_calls")
    assert final.usage is not None


async def test_full_tool_round_trip(driver: Driver) -> None:
    first = await driver.chat(ask(messages=QUESTION, tools=[WEATHER]))
    (call,) = first.tool_calls
    follow_up = [
        *QUESTION,
        Message(role="assistant", content=first.content, tool_calls=[call]),
        Message(role="tool", content='{"temperature_c": 12}', tool_call_id=call.id),
    ]
    answer = await driver.chat(ask(messages=follow_up, tools=[WEATHER]))
    assert (answer.content, answer.finish_reason, answer.tool_calls) == (
        TOOL_RESULT_ANSWER_TEXT,
        "stop",
        (),
    )


PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "nick": {"type": "string", "minLength": 3},
    },
    "required": ["name", "age", "tags", "nick"],
}


async def test_json_schema_output_is_valid(driver: Driver) -> None:
    fmt = ResponseFormat(type="json_schema", schema=PERSON, name="person")
    answer = await driver.chat(ask(response_format=fmt))
    assert answer.content is not None
    jsonschema.validate(json.loads(answer.content), PERSON)
    _, final = await driver.stream(ask(response_format=fmt))
    assert final.content is not None
    jsonschema.validate(json.loads(final.content), PERSON)


async def test_context_overflow_is_typed(driver: Driver, server_kind: ServerKind) -> None:
    long = [Message(role="user", content="word " * 3000)]
    with pytest.raises(ContextWindowExceededError) as caught:
        await driver.chat(ask(messages=long))
    assert caught.value.status_code == 400
    assert OVERFLOW_MESSAGES[server_kind] in caught.value.message
    with pytest.raises(ContextWindowExceededError):
        await driver.stream(ask(messages=long))


async def test_wrong_key_is_an_authentication_error(driver: Driver, config: Config) -> None:
    endpoint = config.endpoints[0].model_dump()
    endpoint["api_key"] = "wrong-key"
    async with Provider(Config(endpoints=[endpoint])) as provider:
        wrong = Driver(driver.mode, provider)
        with pytest.raises(AuthenticationError) as caught:
            await wrong.chat(ask())
    assert caught.value.status_code == 401
    assert "wrong-key" not in str(caught.value)


async def test_request_after_a_stream_reuses_the_pool(driver: Driver) -> None:
    for _ in range(5):
        _, streamed = await driver.stream(ask())
        answer = await driver.chat(ask())
        assert streamed.content == answer.content == PLAIN_ANSWER_TEXT


async def test_two_requests_at_once_on_two_slots(config: Config) -> None:
    async with Provider(config) as provider:
        answers = await asyncio.gather(*(provider.achat(ask()) for _ in range(2)))
        assert [a.content for a in answers] == [PLAIN_ANSWER_TEXT] * 2
        with ThreadPoolExecutor(2) as pool:
            threaded = list(pool.map(lambda _: provider.chat(ask()), range(2)))
        assert [a.content for a in threaded] == [PLAIN_ANSWER_TEXT] * 2


THINKING = {"chat_template_kwargs": {"enable_thinking": True}}


@pytest.mark.servers("vllm")
async def test_reasoning_round_trip(driver: Driver, config: Config) -> None:
    """With thinking on, vLLM's qwen3 parser returns the think block as `reasoning`, whole
    and streamed; sent back on the assistant message, the template renders it in its turn."""
    endpoint = config.endpoints[0].model_dump()
    endpoint["capabilities"] = ["chat", "reasoning"]
    async with Provider(Config(endpoints=[endpoint])) as provider:
        reasoner = Driver(driver.mode, provider)
        first = await reasoner.chat(ask(extra_body=THINKING))
        assert (first.reasoning, first.content) == (REASONING_TEXT, PLAIN_ANSWER_TEXT)
        assert first.usage is not None
        assert first.usage.reasoning_tokens == len(REASONING)
        chunks, streamed = await reasoner.stream(ask(extra_body=THINKING))
        assert "".join(chunk.reasoning or "" for chunk in chunks) == REASONING_TEXT
        assert (streamed.reasoning, streamed.content) == (REASONING_TEXT, PLAIN_ANSWER_TEXT)
        history = [
            Message(role="user", content="Say hello"),
            Message(role="assistant", content=first.content, reasoning=first.reasoning),
            Message(role="user", content="Again"),
        ]
        plain = [history[0], dataclasses.replace(history[1], reasoning=None), history[2]]
        again = await reasoner.chat(ask(messages=history))
        without = await reasoner.count_tokens("tiny", messages=plain)
        block = await reasoner.count_tokens("tiny", text=f"<think>\n{REASONING_TEXT}\n</think>\n\n")
    assert again.content == PLAIN_ANSWER_TEXT
    assert again.usage is not None
    assert again.usage.prompt_tokens == without + block


async def test_room_for_fewer_tokens_than_max_tokens_is_not_an_error(driver: Driver) -> None:
    """About 1,500 prompt tokens and `max_tokens` 1,000 overflow the 2,048-token window: both
    servers answer (vLLM clamps `max_tokens` to the room left) rather than refuse."""
    near = [Message(role="user", content="word " * 300)]
    count = await driver.count_tokens("tiny", messages=near)
    assert 1_100 < count < 2_048 - 8 < count + 1_000
    answer = await driver.chat(ask(messages=near, max_tokens=1_000))
    assert (answer.content, answer.finish_reason) == (PLAIN_ANSWER_TEXT, "stop")


@pytest.mark.servers("vllm")
def test_vllm_wire_shapes_the_core_smooths_over(
    chat_server: ServerProcess, embedding_server: ServerProcess
) -> None:
    """What vLLM 0.32.0 itself sends, asked without the core: the shapes the README lists."""
    headers = {"authorization": f"Bearer {API_KEY}"}
    tool = {
        "type": "function",
        "function": {"name": WEATHER.name, "parameters": WEATHER.parameters},
    }
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": "Weather?"}],
        "tools": [tool],
        "tool_choice": {"type": "function", "function": {"name": WEATHER.name}},
    }
    reply = httpx2.post(f"{chat_server.base_url}/chat/completions", json=body, headers=headers)
    (choice,) = reply.json()["choices"]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("stop", "")
    assert choice["message"]["tool_calls"][0]["function"]["name"] == WEATHER.name
    load = httpx2.get(f"{chat_server.url}/load", headers=headers).json()
    assert isinstance(load["server_load"], int)
    wrong = httpx2.post(f"{embedding_server.base_url}/chat/completions", json=body)
    assert (wrong.status_code, wrong.json()) == (404, {"detail": "Not Found"})
