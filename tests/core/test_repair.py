from __future__ import annotations

import re

import pytest

from selfhosted_core import InvalidToolCall, ModelEndpoint, ServerKind, ToolCall, Usage
from selfhosted_core._calls import CallPlan
from selfhosted_core._repair import (
    ThinkSplitter,
    arguments_text,
    cached_from_timings,
    embedding_vector,
    finish_reason,
    finish_tool_call,
    new_tool_call_id,
    usage,
)
from selfhosted_core._wire import WireUsage
from tests.core import payloads


def test_object_arguments_become_json_text() -> None:
    assert arguments_text({"path": "/etc/hosts", "n": 1}) == '{"path":"/etc/hosts","n":1}'
    assert arguments_text('{"a":1}') == '{"a":1}'
    assert arguments_text(None) == ""


def test_empty_arguments_mean_no_arguments() -> None:
    assert finish_tool_call("id1", "ping", "") == ToolCall(
        id="id1", name="ping", arguments="{}", args={}
    )


def test_invalid_arguments_are_kept_with_the_error() -> None:
    call = finish_tool_call("id1", "search", '{"q": "trunc')
    assert isinstance(call, InvalidToolCall)
    assert call.arguments == '{"q": "trunc'
    assert call.error.startswith("arguments are not JSON")


@pytest.mark.parametrize("number", ["1e999", "-1e999", "NaN", "Infinity"])
def test_arguments_no_json_writer_could_write_back_are_invalid(number: str) -> None:
    call = finish_tool_call("id1", "f", f'{{"n": {number}}}')
    assert isinstance(call, InvalidToolCall)
    assert call.error.startswith("arguments are not JSON: ")


def test_arguments_python_will_not_read_are_invalid_not_a_crash() -> None:
    call = finish_tool_call("id1", "f", '{"n": ' + "1" * 5_000 + "}")
    assert isinstance(call, InvalidToolCall)
    # The same words on every Python (3.10 words its own ValueError differently).
    assert call.error == (
        "arguments are not JSON: an integer of 5000 digits is past Python's limit of 4300 digits"
    )


def test_arguments_must_be_an_object() -> None:
    call = finish_tool_call("id1", "f", "[1, 2]")
    assert isinstance(call, InvalidToolCall)
    assert call.error == "arguments are a list, not an object"


def test_a_call_without_name_is_invalid() -> None:
    assert finish_tool_call("id1", None, "{}") == InvalidToolCall(
        id="id1", name=None, arguments="{}", error="missing name"
    )


def test_generated_ids_have_the_mistral_shape() -> None:
    ids = {new_tool_call_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[A-Za-z0-9]{9}", tool_id) for tool_id in ids)


@pytest.mark.parametrize(
    ("raw", "has_calls", "expected"),
    [
        ("stop", True, "tool_calls"),
        ("tool_calls", False, "stop"),
        ("tool", False, "stop"),
        ("tool", True, "tool_calls"),
        ("eos", False, "stop"),
        ("end", False, "stop"),
        ("eos_token", False, "stop"),
        ("length", False, "length"),
        ("content_filter", False, "content_filter"),
        (None, True, None),
    ],
)
def test_finish_reason_comes_from_the_data(raw: str | None, has_calls: bool, expected: str) -> None:
    assert finish_reason(raw, has_tool_calls=has_calls) == expected


def test_zero_or_missing_usage_is_unknown() -> None:
    assert usage(None, 1.0) is None
    assert usage(WireUsage(prompt_tokens=0, completion_tokens=0, total_tokens=0), 1.0) is None


@pytest.mark.parametrize(
    "counts",
    [
        {"prompt_tokens": 3, "completion_tokens": 10**400},
        {"prompt_tokens": -3, "completion_tokens": 5},
        {"total_tokens": 2**53 + 1},
    ],
)
def test_counts_no_answer_could_have_are_unknown(counts: dict[str, int]) -> None:
    # 10**400 tokens made `billed_tokens` raise OverflowError wherever it was read.
    assert usage(WireUsage.model_validate(counts), 2.0) is None


def test_absurd_details_are_unknown_and_the_counts_kept() -> None:
    wire = WireUsage.model_validate(
        {
            "prompt_tokens": 4,
            "completion_tokens": 2,
            "total_tokens": 6,
            "prompt_tokens_details": {"cached_tokens": -1},
            "completion_tokens_details": {"reasoning_tokens": 10**400},
        }
    )
    counted = usage(wire, 1.0)
    assert counted is not None
    assert (counted.total_tokens, counted.cached_prompt_tokens, counted.reasoning_tokens) == (
        6,
        None,
        None,
    )


def test_usage_keeps_cached_tokens_and_bills_with_the_modifier() -> None:
    wire = WireUsage.model_validate(
        {
            "prompt_tokens": 40,
            "completion_tokens": 12,
            "prompt_tokens_details": {"cached_tokens": 32},
        }
    )
    counted = usage(wire, 1.5)
    assert counted is not None
    assert (counted.total_tokens, counted.cached_prompt_tokens, counted.billed_tokens) == (
        52,
        32,
        78.0,
    )


def test_base64_embeddings_decode_as_little_endian_float32() -> None:
    assert embedding_vector("AACAPwAAAD8=") == [1.0, 0.5]
    assert embedding_vector([0.25]) == [0.25]
    with pytest.raises(ValueError, match="not a multiple of 4"):
        embedding_vector("AAA=")


def split(pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    reasoning = content = ""
    for piece in pieces:
        think, text = splitter.feed(piece)
        reasoning, content = reasoning + think, content + text
    think, text = splitter.flush()
    return reasoning + think, content + text


TEXT = "<think>Let me think.\nOK.</think>\n\nThe answer is 4."


def test_think_block_moves_to_reasoning() -> None:
    assert split([TEXT]) == ("Let me think.\nOK.", "The answer is 4.")


def test_think_block_split_at_every_character() -> None:
    assert split(list(TEXT)) == ("Let me think.\nOK.", "The answer is 4.")


def test_think_later_in_the_answer_is_content() -> None:
    text = "Use the <think> tag like this: <think>x</think>"
    assert split(list(text)) == ("", text)


def test_unfinished_think_block_is_reasoning() -> None:
    assert split(["<think>still thinking"]) == ("still thinking", "")


def test_partial_opening_tag_at_the_end_is_content() -> None:
    assert split(["<thi"]) == ("", "<thi")


def test_an_older_llama_server_reports_its_cached_tokens_in_timings() -> None:
    plan = CallPlan.post(
        slot=0,
        endpoint=ModelEndpoint(url="http://h:1", id="qwen3"),
        model="qwen3",
        server=ServerKind.LLAMA_CPP,
        path="/chat/completions",
        payload={},
    )
    answer = plan.assembler().feed_response(payloads.LLAMA_CACHE_IN_TIMINGS)
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.cached_prompt_tokens) == (1500, 1472)


def test_usage_with_its_own_cached_count_keeps_it_over_timings() -> None:
    own = Usage(prompt_tokens=40, completion_tokens=1, total_tokens=41, cached_prompt_tokens=32)
    assert cached_from_timings(own, {"cache_n": 7}) is own


@pytest.mark.parametrize("cache_n", [None, "12", True, -1, 1.5])
def test_a_cache_n_that_is_not_a_count_is_ignored(cache_n: object) -> None:
    plain = Usage(prompt_tokens=40, completion_tokens=1, total_tokens=41)
    assert cached_from_timings(plain, {"cache_n": cache_n}).cached_prompt_tokens is None  # type: ignore[union-attr]


def test_cache_n_never_exceeds_the_prompt() -> None:
    plain = Usage(prompt_tokens=40, completion_tokens=1, total_tokens=41)
    repaired = cached_from_timings(plain, {"cache_n": 90})
    assert repaired is not None
    assert repaired.cached_prompt_tokens == 40
