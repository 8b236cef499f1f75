"""Properties of the LiteLLM handler: whatever LiteLLM hands it (messages, `optional_params`, a
deployment's `api_base`, a timeout, embedding input), a call is sent as well-formed JSON or
refused before any I/O.

A refusal leaves the handler as LiteLLM's own exception (what LiteLLM passes through to its
caller) whose `selfhosted_error` is the core's `InvalidRequestError`, `NotSupportedError`,
`CapabilityError`, or `UnknownModelError` for a model no endpoint serves; the fake server has
then seen nothing.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from litellm.types.utils import EmbeddingResponse, ModelResponse

from litellm_selfhosted import SelfHostedLLM
from selfhosted_core import (
    CapabilityError,
    Config,
    InvalidRequestError,
    NotSupportedError,
    Provider,
    UnknownModelError,
)
from tests.core.harness import ENDPOINTS, FakeServer, chat_reply, strict_json
from tests.strategies import (
    mostly,
    near,
    openai_messages,
    openai_response_formats,
    openai_tool_choices,
    openai_tools,
)

REFUSALS = (InvalidRequestError, NotSupportedError, CapabilityError, UnknownModelError)
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"

optional_params = st.fixed_dictionaries(
    {},
    optional={
        "temperature": near(0.2, None, math.nan, "hot"),
        "max_tokens": near(16, 0, None),
        "max_completion_tokens": near(16, -1),
        "stop": near("END", ["\n"], [1]),
        "n": near(1, 2, None),
        "tools": openai_tools,
        "tool_choice": openai_tool_choices,
        "response_format": openai_response_formats,
        "parallel_tool_calls": near(True, None, "yes"),
        "extra_body": near({"cache_prompt": True}, {"model": "other"}, {"x": math.inf}, "x"),
        "top_k": near(40, math.nan),
        "logprobs": near(True),
        "stream_options": near({"include_usage": True}),
        "misspelt": near(1),
    },
)
"""What LiteLLM passes on: the OpenAI parameters, a deployment's extras, and whatever else."""


@pytest.fixture(scope="module")
def server() -> FakeServer:
    server = FakeServer()
    server.on("POST", CHAT, chat_reply)
    server.on(
        "POST",
        EMBEDDINGS,
        {"object": "list", "data": [{"index": 0, "embedding": [0.5, 0.5]}]},
    )
    return server


@pytest.fixture(scope="module")
def handler(server: FakeServer) -> SelfHostedLLM:
    transport = server.transport
    provider = Provider(Config(endpoints=ENDPOINTS), transport=transport, async_transport=transport)
    return SelfHostedLLM(provider=provider)


async def complete(handler: SelfHostedLLM, how: str, **call: Any) -> None:
    """One call as LiteLLM makes it; a stream is read to its end."""
    arguments: dict[str, Any] = {
        "custom_prompt_dict": {},
        "model_response": ModelResponse(),
        "print_verbose": print,
        "encoding": None,
        "api_key": None,
        "logging_obj": None,
        **call,
    }
    if how == "completion":
        handler.completion(**arguments)
    elif how == "acompletion":
        await handler.acompletion(**arguments)
    elif how == "streaming":
        for _ in handler.streaming(**arguments):
            pass
    else:
        async for _ in handler.astreaming(**arguments):
            pass


def refused_before_io(exc: Exception, server: FakeServer) -> None:
    """A LiteLLM error carrying a core refusal, and no request sent."""
    core = getattr(exc, "selfhosted_error", None)
    assert isinstance(core, REFUSALS), repr(exc)
    # The caller's mistake, which a Router must not count against the deployment.
    assert getattr(exc, "status_code", None) == (
        404 if isinstance(core, UnknownModelError) else 400
    )
    event(f"refused: {type(core).__name__}")
    assert server.requests == []


HELLO = [{"role": "user", "content": "Hi"}]


@given(
    model=mostly(st.just("tiny"), near("minilm", "nope")),
    messages=mostly(st.just(HELLO), openai_messages, rarity=2),
    params=mostly(st.just({}), optional_params, rarity=2),
    api_base=mostly(
        st.sampled_from([None, "chat-a", "http://chat.test:8080/v1"]), near("http://elsewhere:1")
    ),
    timeout=mostly(st.sampled_from([600.0, None]), near(0, math.nan, "600")),
    how=st.sampled_from(["completion", "acompletion", "streaming", "astreaming"]),
)
@example("tiny", 1.5, {}, None, 600.0, "completion")
@example("tiny", HELLO, {"extra_body": "x"}, None, 600.0, "completion")
def test_any_completion_call_is_sent_as_json_or_refused_before_any_io(
    server: FakeServer,
    handler: SelfHostedLLM,
    model: Any,
    messages: Any,
    params: dict[str, Any],
    api_base: Any,
    timeout: Any,
    how: str,
) -> None:
    server.requests.clear()
    call = {"optional_params": params, "api_base": api_base, "timeout": timeout}
    try:
        asyncio.run(complete(handler, how, model=model, messages=messages, **call))
    except Exception as exc:
        refused_before_io(exc, server)
        return
    event("sent")
    (sent,) = server.requests
    assert strict_json(sent.content)["messages"]


@given(
    model=mostly(st.just("minilm"), near("tiny", "nope")),
    texts=mostly(st.sampled_from(["one", ["one"], []]), near([1], [["token"]], None)),
    params=st.fixed_dictionaries(
        {}, optional={"extra_body": near({"truncate": True}, {"input": []}, {"x": math.nan})}
    ),
    api_base=mostly(st.sampled_from([None, "http://embed.test:8081"])),
    use_async=st.booleans(),
)
@example("minilm", 5, {}, None, False)
@example("minilm", ["one"], {"extra_body": b"\x00"}, None, False)
def test_any_embedding_call_is_sent_as_json_or_refused_before_any_io(
    server: FakeServer,
    handler: SelfHostedLLM,
    model: Any,
    texts: Any,
    params: dict[str, Any],
    api_base: Any,
    use_async: bool,
) -> None:
    server.requests.clear()
    call: dict[str, Any] = {
        "model": model,
        "input": texts,
        "model_response": EmbeddingResponse(),
        "print_verbose": print,
        "logging_obj": None,
        "optional_params": params,
        "api_base": api_base,
        "timeout": 600.0,
    }
    try:
        if use_async:
            asyncio.run(handler.aembedding(**call))
        else:
            handler.embedding(**call)
    except Exception as exc:
        refused_before_io(exc, server)
        return
    event("sent")
    for sent in server.requests:
        assert all(isinstance(text, str) for text in strict_json(sent.content)["input"])
