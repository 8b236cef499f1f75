"""Core answers as LiteLLM's `ModelResponse`, stream chunks and `EmbeddingResponse`."""

from __future__ import annotations

from typing import Any

import pytest
from litellm.types.utils import (
    ChatCompletionMessageToolCall,
    Choices,
    EmbeddingResponse,
    GenericStreamingChunk,
    Message,
    ModelResponse,
    ModelResponseStream,
    Usage,
)

from litellm_selfhosted._response import (
    closing_piece,
    embedding_response,
    model_response,
    stream_pieces,
)
from selfhosted_core import (
    ChatChunk,
    ChatResponse,
    InvalidToolCall,
    ServerKind,
    ToolCall,
    ToolCallChunk,
)
from selfhosted_core import EmbeddingResponse as CoreEmbeddingResponse
from selfhosted_core import Usage as CoreUsage

TIMINGS = {"prompt_n": 9, "prompt_ms": 1.5, "predicted_n": 2, "predicted_ms": 0.8}


def answer(**fields: Any) -> ChatResponse:
    defaults: dict[str, Any] = {"id": "chatcmpl-1", "model": "qwen3", "content": "Paris."}
    return ChatResponse(**{**defaults, **fields})


def fill(response: ChatResponse) -> ModelResponse:
    return model_response(ModelResponse(), response, model="tiny")


def message_of(response: ModelResponse) -> Message:
    choice = response.choices[0]
    assert isinstance(choice, Choices)
    return choice.message


def usage_of(response: ModelResponse) -> Usage:
    usage = response.usage  # type: ignore[attr-defined]  # litellm sets it dynamically
    assert isinstance(usage, Usage)
    return usage


def calls_of(response: ModelResponse) -> list[ChatCompletionMessageToolCall]:
    calls = message_of(response).tool_calls or []
    assert all(isinstance(call, ChatCompletionMessageToolCall) for call in calls)
    return [call for call in calls if isinstance(call, ChatCompletionMessageToolCall)]


def test_model_response_carries_content_finish_id_and_the_configured_model() -> None:
    response = fill(
        answer(finish_reason="length", created=1760000000, system_fingerprint="b6000-abc")
    )
    message = message_of(response)
    assert (message.content, message.role, message.tool_calls) == ("Paris.", "assistant", None)
    assert response.choices[0].finish_reason == "length"
    assert (response.id, response.created) == ("chatcmpl-1", 1760000000)
    assert (response.model, response.system_fingerprint) == ("tiny", "b6000-abc")


def test_a_missing_finish_reason_is_stop() -> None:
    assert fill(answer(finish_reason=None)).choices[0].finish_reason == "stop"


def test_reasoning_becomes_reasoning_content() -> None:
    message = message_of(fill(answer(reasoning="The capital of France.")))
    assert message.reasoning_content == "The capital of France."


def test_valid_and_invalid_tool_calls_are_returned_with_their_text() -> None:
    response = fill(
        answer(
            content=None,
            finish_reason="tool_calls",
            tool_calls=(
                ToolCall(id="call_1", name="read", arguments='{"path":"a"}', args={"path": "a"}),
            ),
            invalid_tool_calls=(
                InvalidToolCall(id="call_2", name="write", arguments='{"path": ', error="bad"),
                InvalidToolCall(id="call_3", name=None, arguments="{}", error="no name"),
            ),
        )
    )
    calls = calls_of(response)
    assert [(c.id, c.type, c.function.name, c.function.arguments) for c in calls] == [
        ("call_1", "function", "read", '{"path":"a"}'),
        ("call_2", "function", "write", '{"path": '),
        ("call_3", "function", "", "{}"),
    ]
    assert message_of(response).content is None
    assert response.choices[0].finish_reason == "tool_calls"


def test_usage_carries_cached_and_reasoning_details() -> None:
    usage = CoreUsage(
        prompt_tokens=40,
        completion_tokens=12,
        total_tokens=52,
        cached_prompt_tokens=32,
        reasoning_tokens=5,
    )
    got = usage_of(fill(answer(usage=usage)))
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (40, 12, 52)
    assert got.prompt_tokens_details is not None
    assert got.prompt_tokens_details.cached_tokens == 32
    assert got.completion_tokens_details is not None
    assert got.completion_tokens_details.reasoning_tokens == 5


def test_usage_without_details_has_no_cached_tokens() -> None:
    usage = CoreUsage(prompt_tokens=9, completion_tokens=2, total_tokens=11)
    got = usage_of(fill(answer(usage=usage)))
    assert (got.prompt_tokens, got.completion_tokens, got.total_tokens) == (9, 2, 11)
    details = got.prompt_tokens_details
    assert details is None or not details.cached_tokens


def test_hidden_params_tell_where_the_answer_came_from() -> None:
    response = fill(answer(endpoint="chat-a", server=ServerKind.LLAMA_CPP, timings=TIMINGS))
    assert response._hidden_params["selfhosted"] == {
        "endpoint": "chat-a",
        "server": "llama.cpp",
        "timings": TIMINGS,
    }


@pytest.mark.parametrize(("modifier", "billed"), [(2.0, {"billed_tokens": 22.0}), (1.0, {})])
def test_billed_tokens_only_when_the_modifier_is_not_one(
    modifier: float, billed: dict[str, float]
) -> None:
    usage = CoreUsage(
        prompt_tokens=9, completion_tokens=2, total_tokens=11, token_modifier=modifier
    )
    response = fill(answer(usage=usage, endpoint="chat-a"))
    assert response._hidden_params["selfhosted"] == {
        "endpoint": "chat-a",
        "server": "generic",
        **billed,
    }


# --- stream pieces ------------------------------------------------------------------------------


def test_reasoning_is_a_model_response_stream_delta() -> None:
    (piece,) = stream_pieces(ChatChunk(reasoning="Two and two."))
    assert isinstance(piece, ModelResponseStream)
    assert piece.choices[0].delta.reasoning_content == "Two and two."
    assert piece.choices[0].delta.content is None


def test_text_is_a_generic_chunk_that_does_not_finish() -> None:
    (piece,) = stream_pieces(ChatChunk(content="Hello"))
    assert isinstance(piece, dict)
    assert (piece["text"], piece["is_finished"], piece["tool_use"]) == ("Hello", False, None)
    assert piece["usage"] is None


def test_each_tool_call_piece_is_its_own_generic_chunk_with_its_index() -> None:
    pieces = stream_pieces(
        ChatChunk(
            tool_calls=(
                ToolCallChunk(index=0, id="call_a", name="get_weather", arguments='{"ci'),
                ToolCallChunk(index=1, id="call_b", name="get_time", arguments=""),
            )
        )
    )
    assert [piece["tool_use"] for piece in pieces if isinstance(piece, dict)] == [
        {
            "id": "call_a",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"ci'},
            "index": 0,
        },
        {
            "id": "call_b",
            "type": "function",
            "function": {"name": "get_time", "arguments": ""},
            "index": 1,
        },
    ]
    assert len(pieces) == 2
    assert all(isinstance(piece, dict) and piece["text"] == "" for piece in pieces)


def test_a_chunk_with_everything_gives_reasoning_then_text_then_calls() -> None:
    pieces = stream_pieces(
        ChatChunk(
            reasoning="think",
            content="say",
            tool_calls=(ToolCallChunk(index=0, arguments="}"),),
        )
    )
    kinds = ["stream" if isinstance(p, ModelResponseStream) else p["text"] for p in pieces]
    assert kinds == ["stream", "say", ""]


def test_an_empty_chunk_gives_nothing() -> None:
    assert stream_pieces(ChatChunk(finish_reason="stop")) == []


def test_closing_piece_carries_the_finish_reason_and_the_server_usage() -> None:
    usage = CoreUsage(prompt_tokens=9, completion_tokens=2, total_tokens=11, cached_prompt_tokens=4)
    piece: GenericStreamingChunk = closing_piece(answer(finish_reason="tool_calls", usage=usage))
    assert (piece["is_finished"], piece["finish_reason"], piece["text"]) == (
        True,
        "tool_calls",
        "",
    )
    assert piece["usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 2,
        "total_tokens": 11,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_closing_piece_tells_where_the_answer_came_from() -> None:
    piece = closing_piece(answer(endpoint="chat-a", server=ServerKind.VLLM))
    assert piece["provider_specific_fields"] == {
        "selfhosted": {"endpoint": "chat-a", "server": "vllm"}
    }


def test_closing_piece_without_usage_or_reason_is_a_plain_stop() -> None:
    piece = closing_piece(answer(finish_reason=None))
    assert (piece["is_finished"], piece["finish_reason"], piece["usage"]) == (True, "stop", None)


# --- embeddings -------------------------------------------------------------------------------------

VECTORS = CoreEmbeddingResponse(
    model="minilm",
    embeddings=[[1.0, 0.5], [0.25, -2.0]],
    usage=CoreUsage(prompt_tokens=4, completion_tokens=0, total_tokens=4),
    endpoint="emb-a",
)


def test_embedding_response_keeps_input_order_usage_and_origin() -> None:
    response = embedding_response(EmbeddingResponse(), VECTORS, model="minilm")
    assert [(item.index, item.embedding) for item in response.data] == [
        (0, [1.0, 0.5]),
        (1, [0.25, -2.0]),
    ]
    assert response.model == "minilm"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.total_tokens) == (4, 4)
    assert response._hidden_params["selfhosted"] == {"endpoint": "emb-a"}
