"""Properties of requests built by hand: any `ChatRequest` or `EmbeddingRequest` a caller builds
is either sent as well-formed JSON or refused before any I/O.

The dataclasses check nothing when built; the provider checks them before it sends. A refusal is
`InvalidRequestError`, `NotSupportedError`, `CapabilityError`, or `UnknownModelError` for a model
no endpoint serves, and the fake server then has seen no request at all.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import httpx2
from hypothesis import event, example, given
from hypothesis import strategies as st

from selfhosted_core import (
    CapabilityError,
    ChatRequest,
    Config,
    EmbeddingRequest,
    ImagePart,
    InvalidRequestError,
    Message,
    NotSupportedError,
    Provider,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
    UnknownModelError,
)
from tests.core.harness import ENDPOINTS, FakeServer, Route, chat_reply, strict_json
from tests.strategies import Opaque, junk, one_in

REFUSALS = (InvalidRequestError, NotSupportedError, CapabilityError, UnknownModelError)
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
NAN = float("nan")


Fields = dict[str, tuple[st.SearchStrategy[Any], tuple[Any, ...]]]
"""Each field's valid values, and its near misses (junk is always a candidate too)."""


def built(cls: type[Any], fields: Fields, *, rarity: int) -> st.SearchStrategy[Any]:
    """`cls` from valid fields; one time in `rarity`, one field holds a near miss or junk.

    Breaking one field at a time keeps most examples valid enough to reach the server, and
    shows which field a refusal is about.
    """

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        values = {name: draw(valid) for name, (valid, _) in fields.items()}
        if draw(one_in(rarity)):
            name = draw(st.sampled_from(sorted(fields)))
            near_misses = fields[name][1]
            values[name] = draw(st.sampled_from(near_misses) | junk if near_misses else junk)
        return cls(**values)

    return build()


def one_of(*values: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(values)


texts = one_of("Hi", "", "two\nlines", "ünïcode")
maybe_texts = st.none() | texts
IMAGE = ImagePart("https://x/cat.png")
text_parts = built(TextPart, {"text": (texts, (None,))}, rarity=8)
tool_calls = built(
    ToolCall,
    {
        "id": (one_of("call_1", ""), (None,)),
        "name": (one_of("get_weather"), (None,)),
        "arguments": (one_of('{"city": "Paris"}', "{}"), ({"city": "Paris"},)),
        "args": (st.just({}), ()),
    },
    rarity=8,
)
contents = st.one_of(maybe_texts, st.lists(text_parts, min_size=1, max_size=2))
messages = built(
    Message,
    {
        "role": (one_of("system", "developer", "user", "assistant", "tool"), ("bot", "")),
        # Images need a vision model, which the fake config has none of.
        "content": (contents, ([IMAGE], [ImagePart("https://x/cat.png", "max")], [None], "")),  # type: ignore[arg-type]
        "name": (maybe_texts, ()),
        "tool_calls": (st.just(()) | st.lists(tool_calls, max_size=2), (None, "call_1")),
        "tool_call_id": (maybe_texts, ()),
        "reasoning": (maybe_texts, ()),
    },
    rarity=8,
)
SCHEMA = {"type": "object", "properties": {}}
NOT_JSON = ({"x": NAN}, {"x": [math.inf]}, {"x": {"y": -math.inf}})
tools = built(
    Tool,
    {
        "name": (one_of("get_weather", "now"), (None,)),
        "description": (maybe_texts, ()),
        "parameters": (st.just(SCHEMA), (None, "object", *NOT_JSON)),
        "strict": (one_of(None, True, False), ("yes",)),
    },
    rarity=8,
)
response_formats = built(
    ResponseFormat,
    {
        "type": (one_of("json_schema", "json_object"), ("xml", "text")),
        "schema": (st.just(SCHEMA), ("object", *NOT_JSON)),
        "name": (one_of("Person"), (None,)),
        "description": (maybe_texts, ()),
        "strict": (one_of(None, True), ("yes",)),
    },
    rarity=8,
)
NUMBER_MISSES = (NAN, math.inf, -math.inf, True, "0.5")
numbers = st.none() | st.floats(0, 2) | st.integers(0, 2)
BODY_MISSES = ({"x": NAN}, {"x": (1, NAN)}, {"x": b"\xff"}, {"x": Opaque()}, "cache_prompt")
bodies = st.none() | one_of({}, {"cache_prompt": True})


def routing_fields(*replicas: str) -> Fields:
    """The routing fields of a request to the model whose replicas are named `replicas`."""
    return {
        "timeout": (st.none() | one_of(5, 0.5), (0, -1, NAN, math.inf, "5", True)),
        "endpoint": (one_of(None, *replicas), ("nope", "", 1)),
        # Strict needs an endpoint to keep to: without one it is a near miss.
        "strict_endpoint": (st.just(False), (True, None, 1)),
        "max_attempts": (one_of(None, 1, 2), (0, True, 1.5)),
        "resend_unsafe": (one_of(None, True, False), (1,)),
    }


chat_requests = built(
    ChatRequest,
    {
        "model": (st.just("tiny"), ("minilm", "nope", "", None)),
        "messages": (st.lists(messages, min_size=1, max_size=3), ([], "Hi", [None])),
        "tools": (st.just(()) | st.lists(tools, min_size=1, max_size=2), (None, "now")),
        "tool_choice": (one_of(None, "auto", "none"), ("required", "now", "x", 1)),
        "parallel_tool_calls": (one_of(None, True), ("yes",)),
        "response_format": (st.none() | response_formats, ("json_object",)),
        "temperature": (numbers, NUMBER_MISSES),
        "top_p": (numbers, NUMBER_MISSES),
        "max_tokens": (one_of(None, 1, 64), (0, -1, True, 1.5)),
        "stop": (one_of(None, ["\n"], ("END", "STOP"), "END"), ([1], [None], b"END")),
        "seed": (one_of(None, 7), (True, 1.5)),
        "frequency_penalty": (numbers, NUMBER_MISSES),
        "presence_penalty": (numbers, NUMBER_MISSES),
        "extra_body": (bodies, BODY_MISSES),
        "server_sampling": (
            one_of(None, {}, {"top_k": 40}, {"min_p": None}),
            ({"bogus": 1}, {"top_k": NAN}, "top_k"),
        ),
        **routing_fields("chat-a", "http://chat.test:8080"),
    },
    rarity=2,
)
embedding_requests = built(
    EmbeddingRequest,
    {
        "model": (st.just("minilm"), ("tiny", "nope", None)),
        "input": (one_of("one", ["one", "two"], ("one",), []), ([1, 2], [b"x"], 3, None)),
        "extra_body": (bodies, BODY_MISSES),
        **routing_fields("http://embed.test:8081", "http://embed.test:8081/v1"),
    },
    rarity=2,
)


def vectors(request: httpx2.Request) -> Route:
    """One vector for each text asked for."""
    texts = json.loads(request.content)["input"]
    data = [{"index": index, "embedding": [0.5, 0.5]} for index in range(len(texts))]
    return 200, json.dumps({"object": "list", "model": "minilm", "data": data}).encode(), {}


async def send_chat(provider: Provider, request: ChatRequest, how: str) -> None:
    if how == "chat":
        provider.chat(request)
    elif how == "achat":
        await provider.achat(request)
    elif how == "stream":
        with provider.stream(request) as stream:
            stream.final_response()
    else:
        async with provider.astream(request) as astream:
            await astream.final_response()


def hello(**fields: Any) -> ChatRequest:
    return ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")], **fields)


def embed(**fields: Any) -> EmbeddingRequest:
    return EmbeddingRequest(**{"model": "minilm", "input": "one", **fields})


@given(chat_requests, st.sampled_from(["chat", "achat", "stream", "astream"]))
@example(hello(), "chat")
# Each found raising a bare TypeError, AttributeError or ValueError from deep inside:
@example(ChatRequest(model="tiny", messages=[Message(role="user", content=5)]), "chat")  # type: ignore[arg-type]
@example(hello(response_format="json_object"), "chat")
@example(hello(extra_body="cache_prompt"), "chat")
@example(hello(endpoint=1), "chat")
@example(hello(timeout="5"), "chat")
# Each found sent as a body no server reads, or sent when it could not succeed:
@example(hello(extra_body={"x": NAN}), "chat")
@example(hello(temperature=NAN), "astream")
@example(hello(timeout=0), "chat")
def test_any_chat_request_is_sent_as_json_or_refused_before_any_io(
    request: ChatRequest, how: str
) -> None:
    server = FakeServer()
    server.on("POST", CHAT, chat_reply)
    provider = Provider(
        Config(endpoints=ENDPOINTS), transport=server.transport, async_transport=server.transport
    )
    try:
        asyncio.run(send_chat(provider, request, how))
    except REFUSALS as exc:
        event(f"refused: {type(exc).__name__}")
        assert server.requests == []
        return
    finally:
        provider.close()
    event("sent")
    (sent,) = server.requests
    payload = strict_json(sent.content)
    assert payload["messages"]
    for message in payload["messages"]:
        assert message["role"] in {"system", "developer", "user", "assistant", "tool"}
        assert message["content"] is None or isinstance(message["content"], str | list)


@given(embedding_requests, st.booleans())
@example(embed(input=3), False)
@example(embed(extra_body={"x": NAN}), False)
@example(embed(endpoint=b""), True)
def test_any_embedding_request_is_sent_as_json_or_refused_before_any_io(
    request: EmbeddingRequest, use_async: bool
) -> None:
    server = FakeServer()
    server.on("POST", EMBEDDINGS, vectors)
    provider = Provider(
        Config(endpoints=ENDPOINTS), transport=server.transport, async_transport=server.transport
    )
    try:
        if use_async:
            asyncio.run(provider.aembed(request))
        else:
            provider.embed(request)
    except REFUSALS as exc:
        event(f"refused: {type(exc).__name__}")
        assert server.requests == []
        return
    finally:
        provider.close()
    event("sent")
    for sent in server.requests:
        assert all(isinstance(text, str) for text in strict_json(sent.content)["input"])
