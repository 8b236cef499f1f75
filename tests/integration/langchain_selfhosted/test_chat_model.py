"""`ChatSelfHosted` against the real llama-server: what the standard suite does not pin down."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import ContextOverflowError, ModelAuthenticationError
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from langchain_selfhosted import ChatSelfHosted
from selfhosted_core import APIStatusError, Config, ContextWindowExceededError, ServerKind
from selfhosted_core.local import PLAIN_ANSWER_TEXT
from selfhosted_core.local._process import ServerProcess
from tests.integration.conftest import CONTEXT, SLOTS
from tests.lc_driver import LCDriver, merged

pytestmark = pytest.mark.servers("llama.cpp", "vllm")


class Person(BaseModel):
    name: str
    age: int


def _weather(city: str) -> str:
    """Get the weather in a city."""
    return city


def _alarm(hour: int) -> str:
    """Set an alarm."""
    return str(hour)


async def test_token_count_matches_the_prompt_the_server_bills(
    lc: LCDriver, config: Config
) -> None:
    model = ChatSelfHosted(model="tiny", config=config, max_tokens=8)
    conversation = [SystemMessage("Be brief."), HumanMessage("What is the capital of France?")]
    answer = await lc.invoke(model, conversation)
    assert answer.usage_metadata is not None
    assert model.get_num_tokens_from_messages(conversation) == answer.usage_metadata["input_tokens"]
    assert (
        0
        < model.get_num_tokens("What is the capital of France?")
        < answer.usage_metadata["input_tokens"]
    )


async def test_refresh_profile_reads_the_per_slot_window(config: Config) -> None:
    model = ChatSelfHosted(model="tiny", config=config)
    profile = await model.arefresh_profile()
    assert profile["max_input_tokens"] == CONTEXT // SLOTS
    assert profile["tool_calling"] is True


async def test_named_tool_choice_is_honoured(lc: LCDriver, config: Config) -> None:
    # The tiny model prefers the tool whose name sorts first (_alarm); naming _weather must win.
    model = ChatSelfHosted(model="tiny", config=config).bind_tools(
        [_alarm, _weather], tool_choice="_weather"
    )
    message = await lc.invoke(model, "Hello!")
    assert [call["name"] for call in message.tool_calls] == ["_weather"]
    chunks = await lc.stream(model, "Hello!")
    assert [call["name"] for call in merged(chunks).tool_calls] == ["_weather"]


async def test_structured_output_parses_the_servers_json(lc: LCDriver, config: Config) -> None:
    model = ChatSelfHosted(model="tiny", config=config)
    for method in ("json_schema", "function_calling"):
        person = await lc.invoke(model.with_structured_output(Person, method=method), "Ada, 36")
        assert isinstance(person, Person)


async def test_stream_and_invoke_agree(lc: LCDriver, config: Config) -> None:
    model = ChatSelfHosted(model="tiny", config=config).bind_tools([_weather])
    whole = await lc.invoke(model, "weather?")
    streamed = merged(await lc.stream(model, "weather?"))
    assert isinstance(whole, AIMessage)
    assert [(c["name"], c["args"]) for c in streamed.tool_calls] == [
        (c["name"], c["args"]) for c in whole.tool_calls
    ]
    # cache_read differs: the second request reuses the first one's prompt cache.
    assert streamed.usage_metadata is not None
    assert whole.usage_metadata is not None
    assert streamed.usage_metadata["input_tokens"] == whole.usage_metadata["input_tokens"]
    assert streamed.usage_metadata["output_tokens"] == whole.usage_metadata["output_tokens"]
    assert streamed.response_metadata["finish_reason"] == whole.response_metadata["finish_reason"]


async def test_stream_sends_usage_once_and_metadata_last(
    lc: LCDriver, config: Config, server_kind: ServerKind
) -> None:
    chunks = await lc.stream(ChatSelfHosted(model="tiny", config=config), "Hi")
    assert [chunk.usage_metadata is not None for chunk in chunks].count(True) == 1
    assert [bool(chunk.response_metadata) for chunk in chunks[:-1]] == [False] * (len(chunks) - 1)
    assert chunks[-1].chunk_position == "last"
    full = merged(chunks)
    assert full.content == PLAIN_ANSWER_TEXT
    metadata = full.response_metadata
    assert (metadata["model_name"], metadata["endpoint"], metadata["server"]) == (
        "tiny",
        "local-chat",
        server_kind.value,
    )
    assert metadata["system_fingerprint"]
    assert full.usage_metadata is not None
    if server_kind is ServerKind.LLAMA_CPP:  # only llama-server reports timings
        assert metadata["timings"]["predicted_n"] == full.usage_metadata["output_tokens"]
    else:
        assert "timings" not in metadata


async def test_streaming_flag_makes_invoke_stream(lc: LCDriver, config: Config) -> None:
    tokens: list[str] = []

    class Collect(BaseCallbackHandler):
        def on_llm_new_token(self, token: str | list[str | dict[str, Any]], **kwargs: Any) -> None:
            assert isinstance(token, str)
            tokens.append(token)

    model = ChatSelfHosted(model="tiny", config=config, streaming=True)
    message = await lc.invoke(model, "Hi", config={"callbacks": [Collect()]})
    assert message.content == PLAIN_ANSWER_TEXT
    assert "".join(tokens) == PLAIN_ANSWER_TEXT
    assert len(tokens) > 1
    assert message.usage_metadata is not None


async def test_context_overflow_is_also_langchains_error(lc: LCDriver, config: Config) -> None:
    model = ChatSelfHosted(model="tiny", config=config, max_retries=0)
    with pytest.raises(ContextOverflowError) as caught:
        await lc.invoke(model, "word " * 3000)
    assert isinstance(caught.value, ContextWindowExceededError)
    assert caught.value.endpoint == "local-chat"
    assert isinstance(caught.value.__cause__, ContextWindowExceededError)


async def test_wrong_key_is_langchains_authentication_error(
    lc: LCDriver, chat_server: ServerProcess
) -> None:
    config = Config(endpoints=[{"url": chat_server.base_url, "id": "tiny", "api_key": "wrong-1"}])
    model = ChatSelfHosted(model="tiny", config=config, max_retries=0)
    with pytest.raises(ModelAuthenticationError) as caught:
        await lc.invoke(model, "Hi")
    assert isinstance(caught.value, APIStatusError)
    assert caught.value.status_code == 401
    assert "wrong-1" not in str(caught.value)
    assert "wrong-1" not in repr(caught.value)
