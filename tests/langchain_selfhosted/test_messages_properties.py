"""Properties of `ChatSelfHosted`'s message conversion: any LangChain message list, with any
content blocks, is sent as well-formed JSON or refused before any I/O.

A refusal is the core's `InvalidRequestError`, `NotSupportedError` (audio, files, video) or
`CapabilityError` (images for a model without vision), and the fake server has then seen
nothing. The messages go in through `_generate`, which LangChain calls with them: `invoke` first
formats them for its tracing, and LangChain refuses some blocks there itself (a `ValueError`:
"mime_type key is required for base64 data"), before the model sees them.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from pydantic import ValidationError

from langchain_selfhosted import ChatSelfHosted
from selfhosted_core import (
    CapabilityError,
    Config,
    InvalidRequestError,
    NotSupportedError,
    Provider,
)
from tests.core.harness import ENDPOINTS, FakeServer, chat_reply, strict_json
from tests.strategies import (
    json_values,
    near,
    openai_response_formats,
    openai_tool_choices,
    openai_tools,
)

REFUSALS = (InvalidRequestError, NotSupportedError, CapabilityError)
CHAT = "/v1/chat/completions"

NAMES = st.text(max_size=6)
"""What LangChain's own fields (names, ids, roles) take: text only, or it refuses the message."""
URLS = near("https://x/cat.png", "data:image/png;base64,iVBORw0KGgo=", "", arbitrary=json_values)
BLOCK_TYPES = [
    "text",
    "image_url",
    "image",
    "file",
    "audio",
    "input_audio",
    "video",
    "thinking",
    "reasoning",
    "redacted_thinking",
    "tool_call",
    "tool_call_chunk",
    "invalid_tool_call",
    "tool_use",
    "server_tool_call",
    "non_standard",
    "text-plain",
    "refusal",
    "",
]
blocks = st.one_of(
    st.text(max_size=6),
    st.fixed_dictionaries({"type": st.just("text"), "text": near("Hi", "", arbitrary=json_values)}),
    st.fixed_dictionaries(
        {
            "type": st.just("image_url"),
            "image_url": st.one_of(
                st.fixed_dictionaries(
                    {"url": URLS}, optional={"detail": near("auto", "low", "max", None)}
                ),
                URLS,
            ),
        }
    ),
    st.fixed_dictionaries(
        {"type": st.just("image")},
        optional={
            "url": URLS,
            "base64": near("iVBORw0KGgo=", "", arbitrary=json_values),
            "data": near("iVBORw0KGgo=", arbitrary=json_values),
            "mime_type": near("image/png", "text/plain", None),
            "source_type": near("url", "base64", "id", "text"),
            "id": near("file-1", None),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.sampled_from(BLOCK_TYPES)},
        optional=dict.fromkeys(
            ("text", "thinking", "reasoning", "id", "name", "args", "value", "url"), json_values
        ),
    ),
    st.dictionaries(st.text(max_size=6), json_values, max_size=3),
)
contents = st.one_of(st.text(max_size=8), st.lists(blocks, max_size=3))
tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "name": near("get_weather", "", arbitrary=NAMES),
            "args": st.dictionaries(st.text(max_size=4), json_values, max_size=2),
            "id": near("call_1", None, arbitrary=NAMES),
        }
    ),
    max_size=2,
)
invalid_tool_calls = st.lists(
    st.fixed_dictionaries(
        {
            "name": near("get_weather", None, arbitrary=NAMES),
            "args": near('{"a": ', None, arbitrary=st.text(max_size=6)),
            "id": near("call_1", None, arbitrary=NAMES),
            "error": near("bad JSON", None, arbitrary=NAMES),
        }
    ),
    max_size=1,
)
extra_kwargs = st.fixed_dictionaries({}, optional={"reasoning_content": json_values})
message_kinds: list[st.SearchStrategy[BaseMessage]] = [
    st.builds(HumanMessage, content=contents, name=near(None, "ann", arbitrary=NAMES)),
    st.builds(SystemMessage, content=contents),
    st.builds(
        AIMessage,
        content=contents,
        tool_calls=tool_calls,
        invalid_tool_calls=invalid_tool_calls,
        additional_kwargs=extra_kwargs,
    ),
    st.builds(ToolMessage, content=contents, tool_call_id=near("call_1", "", arbitrary=NAMES)),
    st.builds(
        ChatMessage,
        content=contents,
        role=near("user", "assistant", "bot", "function", arbitrary=NAMES),
    ),
    st.builds(FunctionMessage, content=contents, name=st.just("get_weather")),
]


@st.composite
def conversations(draw: st.DrawFn) -> list[BaseMessage]:
    """A message list as a LangChain program builds it; what LangChain itself refuses to build
    (its own validation) is left out, as no caller could pass it.
    """
    messages: list[BaseMessage] = []
    for kind in draw(st.lists(st.sampled_from(message_kinds), max_size=4)):
        try:
            messages.append(draw(kind))
        except ValidationError:
            event("LangChain refused to build a message")
    return messages


call_options = st.fixed_dictionaries(
    {},
    optional={
        "temperature": near(0.2, None, math.nan),
        "max_tokens": near(16, 0),
        "stop": near(["\n"], "END", [1]),
        "tools": openai_tools,
        "tool_choice": openai_tool_choices,
        "response_format": openai_response_formats,
        "extra_body": near({"cache_prompt": True}, {"x": math.inf}),
        "top_k": near(40, math.nan),
        "top_kk": near(40),
    },
)
"""What a call may bind or pass along with the messages (`bind_tools`, `invoke(..., **kw)`)."""


@pytest.fixture(scope="module")
def server() -> FakeServer:
    server = FakeServer()
    server.on("POST", CHAT, chat_reply)
    return server


@pytest.fixture(scope="module")
def chat(server: FakeServer) -> ChatSelfHosted:
    provider = Provider(Config(endpoints=ENDPOINTS), transport=server.transport)
    return ChatSelfHosted(model="tiny", provider=provider, max_retries=0)


@given(conversations(), st.just({}) | call_options)
@example([HumanMessage(content=[{"type": "text", "text": 5}])], {})
@example([HumanMessage(content=[{"type": "image", "base64": "iVBORw0KGgo="}])], {})
@example([SystemMessage(content=[{"type": "image"}])], {})
@example([HumanMessage(content="Hi")], {"extra_body": b"\x00"})
@example([HumanMessage(content="Hi")], {"stop": 5})
def test_any_conversation_is_sent_as_json_or_refused_before_any_io(
    server: FakeServer,
    chat: ChatSelfHosted,
    conversation: list[BaseMessage],
    options: dict[str, Any],
) -> None:
    server.requests.clear()
    stop = options.pop("stop", None)
    try:
        result = chat._generate(conversation, stop=stop, **options)
    except REFUSALS as exc:
        event(f"refused: {type(exc).__name__}")
        assert server.requests == []
        return
    event("sent")
    assert isinstance(result.generations[0].message, AIMessage)
    (sent,) = server.requests
    for message in strict_json(sent.content)["messages"]:
        content = message["content"]
        assert (
            content is None
            or isinstance(content, str)
            or all(part["type"] in ("text", "image_url") for part in content)
        )
