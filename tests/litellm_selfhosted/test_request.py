"""What LiteLLM hands the handler, as core requests: only named parameters reach the server."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from litellm.constants import SESSION_ID_FROM_TRACE_ID_PARAM_KEY, SESSION_ID_GENERATED_METADATA_KEY

from litellm_selfhosted._request import (
    call_affinity,
    call_timeout,
    chat_request,
    embedding_request,
)
from selfhosted_core import (
    ChatRequest,
    EmbeddingRequest,
    InvalidRequestError,
    Message,
    NotSupportedError,
    ResponseFormat,
    Tool,
)
from selfhosted_core._checks import check_chat, check_embedding

HELLO = [{"role": "user", "content": "Hi"}]


def build(
    options: dict[str, Any], *, api_base: str | None = None, timeout: float | None = None
) -> ChatRequest:
    return chat_request("tiny", HELLO, options, api_base=api_base, timeout=timeout)


def warnings_about(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "litellm_selfhosted"
        and record.levelno == logging.WARNING
        and repr(name) in record.getMessage()
    ]


def test_messages_and_model_become_the_core_request() -> None:
    request = build({})
    assert (request.model, request.messages) == ("tiny", [Message(role="user", content="Hi")])
    assert (request.tools, request.tool_choice, request.response_format) == ([], None, None)
    assert (request.max_tokens, request.stop, request.extra_body, request.endpoint) == (
        None,
        None,
        None,
        None,
    )
    assert request.server_sampling is None


def test_openai_sampling_parameters_are_mapped() -> None:
    request = build(
        {
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 7,
            "frequency_penalty": 0.1,
            "presence_penalty": 0.3,
            "max_tokens": 64,
            "parallel_tool_calls": True,
        }
    )
    assert (request.temperature, request.top_p, request.seed) == (0.2, 0.9, 7)
    assert (request.frequency_penalty, request.presence_penalty) == (0.1, 0.3)
    assert (request.max_tokens, request.parallel_tool_calls) == (64, True)
    assert request.extra_body is None


def test_max_completion_tokens_becomes_max_tokens() -> None:
    assert build({"max_completion_tokens": 32}).max_tokens == 32


def test_max_tokens_wins_over_max_completion_tokens() -> None:
    assert build({"max_tokens": 16, "max_completion_tokens": 32}).max_tokens == 16


@pytest.mark.parametrize(
    ("stop", "expected"), [("END", ["END"]), (["a", "b"], ["a", "b"]), (None, None)]
)
def test_stop_string_becomes_a_list(stop: Any, expected: list[str] | None) -> None:
    assert build({"stop": stop}).stop == expected


def test_tools_tool_choice_and_response_format_are_converted() -> None:
    request = build(
        {
            "tools": [{"type": "function", "function": {"name": "get_weather"}}],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "response_format": {"type": "json_object"},
        }
    )
    assert request.tools == [Tool(name="get_weather")]
    assert request.tool_choice == "get_weather"
    assert request.response_format == ResponseFormat(type="json_object")


def test_server_sampling_parameters_are_kept_apart_from_the_callers_extra_body() -> None:
    request = build(
        {
            "top_k": 40,
            "min_p": 0.05,
            "typical_p": 0.9,
            "repetition_penalty": 1.1,
            "repeat_penalty": 1.2,
            "reasoning_effort": "low",
            "extra_body": {"cache_prompt": True, "top_k": 10},
        }
    )
    assert request.server_sampling == {
        "top_k": 40,
        "min_p": 0.05,
        "typical_p": 0.9,
        "repetition_penalty": 1.1,
        "repeat_penalty": 1.2,
        "reasoning_effort": "low",
    }
    assert request.extra_body == {"cache_prompt": True, "top_k": 10}  # the core sends it last


ROUTER_KEYS = {
    "label": "gpu-1",
    "token_modifier": 2.0,
    "max_retries": 3,
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "ann",
    "capabilities": ["chat"],
    "dimension": 2,
    "context_window": 4096,
    "served_model": "qwen3",
    "server": "llama.cpp",
    "headers": {"x": "y"},
    "id": "tiny",
    "url": "http://gpu-1:8080",
}


def test_router_deployment_keys_never_reach_the_payload_and_are_not_warned(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="litellm_selfhosted"):
        request = build(dict(ROUTER_KEYS))
    assert request == build({})
    assert caplog.records == []


def test_an_unknown_key_is_dropped_and_warned_once_by_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = "zz_request_test_unknown_once"
    with caplog.at_level(logging.WARNING, logger="litellm_selfhosted"):
        first = build({name: 1})
        second = build({name: 2})
    assert first == second == build({})
    (warning,) = warnings_about(caplog, name)
    assert warning.startswith(
        f"ignored parameter {name!r}: not a chat parameter selfhosted endpoints take"
    )
    assert "extra_body" in warning


def test_each_unknown_key_is_warned_separately(caplog: pytest.LogCaptureFixture) -> None:
    names = ["zz_request_test_first_typo", "zz_request_test_second_typo"]
    with caplog.at_level(logging.WARNING, logger="litellm_selfhosted"):
        build(dict.fromkeys(names, 1))
    assert [len(warnings_about(caplog, name)) for name in names] == [1, 1]


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"logprobs": True}, "['logprobs']"),
        ({"top_logprobs": 2, "logprobs": True}, "['logprobs', 'top_logprobs']"),
        ({"functions": [{"name": "f"}]}, "['functions']"),
        ({"function_call": "auto"}, "['function_call']"),
        ({"audio": {"voice": "alloy"}}, "['audio']"),
    ],
)
def test_features_the_core_does_not_return_are_refused(options: dict[str, Any], named: str) -> None:
    with pytest.raises(NotSupportedError) as caught:
        build(options)
    assert str(caught.value) == (
        f"parameter(s) {named} are not supported by selfhosted endpoints (model='tiny')"
    )


def test_n_above_one_is_refused_and_n_one_accepted() -> None:
    with pytest.raises(NotSupportedError, match=r"^n > 1 is not supported; make several calls"):
        build({"n": 2})
    assert build({"n": 1}) == build({})


def test_malformed_messages_are_refused_before_any_io() -> None:
    with pytest.raises(InvalidRequestError, match=r"^messages\[0\]\.role: "):
        chat_request("tiny", [{"role": "bot"}], {}, api_base=None, timeout=None)


def test_api_base_pins_the_endpoint_and_timeout_is_kept() -> None:
    request = build({}, api_base="http://gpu-2:8080/v1", timeout=12.5)
    assert (request.endpoint, request.timeout) == ("http://gpu-2:8080/v1", 12.5)


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (2.5, 2.5),
        (7, 7.0),
        (None, None),
        (httpx.Timeout(10.0, read=42.0), 42.0),
        (httpx.Timeout(5), 5.0),
        (httpx.Timeout(None), None),
    ],
)
def test_call_timeout_reads_numbers_and_httpx_timeouts(
    timeout: Any, expected: float | None
) -> None:
    result = call_timeout(timeout, configured=None)
    assert result == expected
    assert result is None or type(result) is float


@pytest.mark.parametrize(
    ("timeout", "configured", "expected"),
    [(600.0, 60.0, 60.0), (5.0, 60.0, 5.0), (None, 60.0, 60.0), (httpx.Timeout(90), 60.0, 60.0)],
)
def test_call_timeout_is_the_shorter_of_the_call_and_the_endpoint(
    timeout: Any, configured: float, expected: float
) -> None:
    assert call_timeout(timeout, configured=configured) == expected


# --- embeddings -------------------------------------------------------------------------------------


def embed(
    texts: str | list[Any],
    options: dict[str, Any],
    *,
    api_base: str | None = None,
    timeout: float | None = None,
) -> EmbeddingRequest:
    return embedding_request("minilm", texts, options, api_base=api_base, timeout=timeout)


def test_a_bare_string_is_one_text() -> None:
    request = embed("hello world", {})
    assert request == EmbeddingRequest(model="minilm", input=["hello world"])


def test_a_list_of_texts_keeps_its_order_extra_body_and_pin() -> None:
    request = embed(
        ["a", "b"], {"extra_body": {"truncate": True}}, api_base="http://emb:1", timeout=3.0
    )
    assert request == EmbeddingRequest(
        model="minilm",
        input=["a", "b"],
        extra_body={"truncate": True},
        timeout=3.0,
        endpoint="http://emb:1",
    )


@pytest.mark.parametrize(
    ("texts", "named"), [([[1, 2, 3]], "input[0] is list"), (["ok", 7], "input[1] is int")]
)
def test_token_ids_are_refused_naming_the_input(texts: list[Any], named: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        embed(texts, {})
    assert str(caught.value) == f"{named}; embeddings take text (model='minilm')"


@pytest.mark.parametrize("key", ["model", "messages", "stream", "tools"])
def test_extra_body_may_not_replace_the_requests_own_fields(key: str) -> None:
    """Else a caller could reach a model the operator never configured, with its key."""
    request = build({"extra_body": {key: "other"}})
    with pytest.raises(InvalidRequestError, match=rf"extra_body may not set {key}: "):
        check_chat(request)  # the core's check, which every call passes before any I/O


@pytest.mark.parametrize("key", ["model", "input", "encoding_format"])
def test_an_embeddings_extra_body_may_not_replace_its_own_fields(key: str) -> None:
    request = embed(["one"], {"extra_body": {key: "other"}})
    with pytest.raises(InvalidRequestError, match=rf"extra_body may not set {key}: "):
        check_embedding(request)


@pytest.mark.parametrize("texts", [5, b"one", None])
def test_input_that_is_neither_a_text_nor_a_list_is_refused(texts: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        embed(texts, {})
    assert caught.value.message == (
        f"input must be a text or a list of texts, not {type(texts).__name__}"
    )


@pytest.mark.parametrize("body", ["cache_prompt", b"\x00", 5])
def test_an_extra_body_that_is_not_a_mapping_is_refused(body: Any) -> None:
    for call in (lambda: build({"extra_body": body}), lambda: embed(["a"], {"extra_body": body})):
        with pytest.raises(InvalidRequestError) as caught:
            call()
        assert caught.value.message == f"extra_body must be a mapping, not {type(body).__name__}"


def test_logit_bias_goes_to_the_server() -> None:
    assert build({"logit_bias": {"15": -100}}).server_sampling == {"logit_bias": {"15": -100}}


@pytest.mark.parametrize(
    ("optional", "litellm_params", "expected"),
    [
        ({"affinity": "a1"}, {"litellm_session_id": "ls1"}, "a1"),
        ({}, {"litellm_session_id": "ls1", "metadata": {"session_id": "s1"}}, "ls1"),
        ({}, {"metadata": {"session_id": "s1", "thread_id": "t1"}}, "s1"),
        ({}, {"metadata": {"thread_id": 42}}, "42"),
        ({"user": "u1"}, {"metadata": None}, None),
        ({}, None, None),
        ({"affinity": ""}, {"metadata": {"thread_id": True}}, None),
        # What the proxy makes per request (`missing_session_id: generate`, a trace id
        # promoted to a session): never a conversation.
        (
            {},
            {"litellm_session_id": "uuid-1", "metadata": {SESSION_ID_GENERATED_METADATA_KEY: True}},
            None,
        ),
        ({}, {"litellm_session_id": "trace-1", SESSION_ID_FROM_TRACE_ID_PARAM_KEY: True}, None),
    ],
)
def test_the_call_names_its_affinity_by_argument_session_or_metadata(
    optional: dict[str, Any], litellm_params: Any, expected: str | None
) -> None:
    assert call_affinity(optional, litellm_params) == expected


def test_an_affinity_argument_is_routing_intent_not_a_payload_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = chat_request(
        "tiny", [{"role": "user", "content": "Hi"}], {"affinity": "a1"}, api_base=None,
        timeout=None, affinity="a1",
    )  # fmt: skip
    assert request.affinity == "a1"
    assert request.extra_body is None
    assert "ignored parameter" not in caplog.text
