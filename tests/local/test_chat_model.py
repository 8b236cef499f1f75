"""The tiny programmed chat model: the GGUF it writes, a numpy forward pass, a real llama-server."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gguf
import httpx2
import numpy as np
import pytest
from tokenizers import Tokenizer

from selfhosted_core.local import LlamaServer
from selfhosted_core.local._chat_model import (
    CHAT_MODEL_VERSION,
    CONTEXT_LENGTH,
    HEAD_DIM,
    N_HEAD,
    PLAIN_ANSWER_TEXT,
    REASONING_TEXT,
    RMS_EPS,
    ROPE_FREQ_BASE,
    TOOL_RESULT_ANSWER_TEXT,
    chat_model_path,
    chat_model_tensors,
    write_chat_model,
)
from selfhosted_core.local._chat_tokenizer import CHAT_TEMPLATE, ChatVocab, build_vocab
from selfhosted_core.local._hf_chat_model import write_hf_chat_model

# A first run may build llama-server (5-15 minutes on 2 cores) inside the fixture.
pytestmark = pytest.mark.timeout(1800)

Array = np.ndarray[Any, np.dtype[np.float64]]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {
        "name": "search",
        "description": "Search the web.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
    },
}
USER = [{"role": "user", "content": "What is the weather in Paris? ünïcödé 日本"}]
ROUND_TRIP = [
    *USER,
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 C"},
]
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "ok": {"type": "boolean"},
        "nick": {"type": "string", "minLength": 3},
        "note": {"type": "string"},
    },
    "required": ["name", "age", "tags", "ok", "nick"],
}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return chat_model_path(root=tmp_path_factory.mktemp("chat-cache"))


# --- the file ---------------------------------------------------------------------------------


def test_gguf_round_trips(model_file: Path) -> None:
    reader = gguf.GGUFReader(model_file)
    vocab = build_vocab()

    def field(key: str) -> Any:
        return reader.fields[key].contents()

    assert field("general.architecture") == "llama"
    assert field("llama.context_length") == CONTEXT_LENGTH
    assert field("llama.block_count") == 1
    assert field("llama.attention.head_count") == N_HEAD
    assert field("llama.rope.freq_base") == pytest.approx(ROPE_FREQ_BASE)
    assert field("tokenizer.ggml.model") == "gpt2"
    assert field("tokenizer.ggml.pre") == "qwen2"
    assert field("tokenizer.ggml.tokens") == list(vocab.tokens)
    assert field("tokenizer.ggml.token_type") == list(vocab.types)
    assert field("tokenizer.ggml.merges") == list(vocab.merges)
    assert field("tokenizer.ggml.eos_token_id") == vocab.id("<|im_end|>")
    assert field("tokenizer.ggml.add_bos_token") is False
    assert field("tokenizer.chat_template") == CHAT_TEMPLATE

    expected = chat_model_tensors(vocab)
    assert [t.name for t in reader.tensors] == list(expected)
    for tensor in reader.tensors:
        assert tensor.tensor_type == gguf.GGMLQuantizationType.F32
        np.testing.assert_array_equal(
            np.asarray(tensor.data).reshape(expected[tensor.name].shape), expected[tensor.name]
        )
    assert 1_000_000 < model_file.stat().st_size < 4_000_000


def test_writing_is_byte_identical(tmp_path: Path, model_file: Path) -> None:
    again = write_chat_model(tmp_path / "again.gguf")
    assert again.read_bytes() == model_file.read_bytes()


def test_model_path_is_versioned_and_cached(tmp_path: Path) -> None:
    first = chat_model_path(root=tmp_path)
    assert first.parent == tmp_path / "models"
    assert f"-v{CHAT_MODEL_VERSION}." in first.name
    stamp = first.stat().st_mtime_ns
    assert chat_model_path(root=tmp_path) == first
    assert first.stat().st_mtime_ns == stamp
    assert [p.name for p in first.parent.iterdir() if p.suffix == ".gguf"] == [first.name]


def test_model_path_honours_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert chat_model_path().is_relative_to(tmp_path / "selfhosted-llm" / "models")


def test_vocab_covers_every_byte_and_merges_resolve() -> None:
    vocab = build_vocab()
    assert len(set(vocab.tokens)) == len(vocab.tokens)
    assert all(vocab.id(bytes([b])) == b for b in range(256))
    for merge in vocab.merges:
        left, right = merge.split(" ")
        assert {left, right, left + right} <= set(vocab.tokens)


# --- a numpy forward pass, the same arithmetic llama.cpp does ----------------------------------


def _tokenize(vocab: ChatVocab, text: str) -> list[int]:
    # Tags as whole tokens, everything else byte by byte: merges change no decision here.
    normal = gguf.TokenType.NORMAL
    tags = [t for t, kind in zip(vocab.tokens, vocab.types, strict=True) if kind != normal]
    ids: list[int] = []
    for part in re.split("(" + "|".join(map(re.escape, tags)) + ")", text):
        ids += [vocab.id(part)] if part in tags else [vocab.id(bytes([b])) for b in part.encode()]
    return ids


def _rms(x: Array) -> Array:
    result: Array = x / np.sqrt((x * x).mean(-1, keepdims=True) + RMS_EPS)
    return result


def _rope(x: Array) -> Array:
    pairs = np.arange(HEAD_DIM // 2)
    angle = np.arange(len(x))[:, None, None] * ROPE_FREQ_BASE ** (-2 * pairs / HEAD_DIM)
    even, odd = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = even * np.cos(angle) - odd * np.sin(angle)
    out[..., 1::2] = even * np.sin(angle) + odd * np.cos(angle)
    return out


def _next_logits(w: dict[str, Array], ids: list[int]) -> Array:
    n = len(ids)
    h = w["token_embd.weight"][ids]
    x = _rms(h)
    q, k, v = (
        (x @ w[f"blk.0.attn_{name}.weight"].T).reshape(n, N_HEAD, HEAD_DIM) for name in "qkv"
    )
    scores = np.einsum("ihd,jhd->hij", _rope(q), _rope(k)) / math.sqrt(HEAD_DIM)
    scores += np.triu(np.full((n, n), -np.inf), 1)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    h = h + np.einsum("hij,jhd->ihd", weights, v).reshape(n, -1) @ w["blk.0.attn_output.weight"].T
    x = _rms(h)
    gate, up = x @ w["blk.0.ffn_gate.weight"].T, x @ w["blk.0.ffn_up.weight"].T
    h = h + (gate / (1 + np.exp(-gate)) * up) @ w["blk.0.ffn_down.weight"].T
    logits: Array = _rms(h[-1]) @ w["output.weight"].T
    return logits


def _greedy(prompt: str, limit: int = 40) -> tuple[str, float]:
    """Return the greedy completion and the smallest lead its chosen tokens had, in logits."""
    vocab = build_vocab()
    w = {name: t.astype(np.float64) for name, t in chat_model_tensors(vocab).items()}
    text = {i: raw for raw, i in vocab.ids.items()}
    ids, out, lead = _tokenize(vocab, prompt), b"", math.inf
    for _ in range(limit):
        logits = _next_logits(w, ids)
        second, first = np.argsort(logits)[-2:]
        lead = min(lead, float(logits[first] - logits[second]))
        if first == vocab.eos:
            return out.decode(), lead
        ids.append(int(first))
        out += text[int(first)]
    raise AssertionError(f"no end of turn after {limit} tokens: {out!r}")


def _chatml(*turns: tuple[str, str], tools: bool = False) -> str:
    system = "You are a helpful assistant."
    if tools:
        system += f"\n\n# Tools\n\n<tools>\n{json.dumps(WEATHER)}\n</tools>"
    body = "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in turns)
    return f"<|im_start|>system\n{system}<|im_end|>\n{body}<|im_start|>assistant\n"


@pytest.mark.parametrize(
    ("prompt", "answer"),
    [
        (_chatml(("user", "Hi there")), PLAIN_ANSWER_TEXT),
        (
            _chatml(("user", "Weather?"), tools=True),
            '<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>',
        ),
        (
            _chatml(
                ("user", "Weather?"),
                ("user", "<tool_response>\nsunny\n</tool_response>"),
                tools=True,
            ),
            TOOL_RESULT_ANSWER_TEXT,
        ),
        (
            _chatml(("user", "Hi there")) + "<think>\n",
            f"{REASONING_TEXT}</think>{PLAIN_ANSWER_TEXT}",
        ),
        (_chatml(("user", "Hi there")) + "<think>\n\n</think>\n\n", PLAIN_ANSWER_TEXT),
        (
            _chatml(("user", "Weather?"), tools=True) + "<think>\n",
            f'{REASONING_TEXT}</think><tool_call>\n{{"name": "a", "arguments": {{}}}}\n</tool_call>',
        ),
        (
            _chatml(
                ("user", "Weather?"),
                ("assistant", f"<think>\n{REASONING_TEXT}\n</think>\n\nLooking."),
                ("user", "<tool_response>\nsunny\n</tool_response>"),
                tools=True,
            )
            + "<think>\n",
            TOOL_RESULT_ANSWER_TEXT,
        ),
    ],
    ids=[
        "plain",
        "tools",
        "tool-result",
        "thinking",
        "thinking-off",
        "thinking-then-tools",
        "reasoned-once",
    ],
)
def test_forward_pass_without_grammar(prompt: str, answer: str) -> None:
    # Without llama-server's grammar the tool name is the model's own first choice, "a".
    completion, lead = _greedy(prompt)
    assert completion == answer
    assert lead > 8


# --- a real llama-server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def chat_server(llama_server_binary: Path, model_file: Path) -> Iterator[LlamaServer]:
    with LlamaServer(model_file, alias="tiny", ctx_size=2048, binary=llama_server_binary) as server:
        yield server


def _chat(server: LlamaServer, **body: Any) -> dict[str, Any]:
    response = httpx2.post(
        f"{server.base_url}/chat/completions", json={"model": "tiny", **body}, timeout=60
    )
    assert response.status_code == 200, response.text
    choice: dict[str, Any] = response.json()["choices"][0]
    return choice


def _stream(server: LlamaServer, **body: Any) -> tuple[list[dict[str, Any]], list[str]]:
    deltas: list[dict[str, Any]] = []
    finishes: list[str] = []
    payload = {"model": "tiny", "stream": True, **body}
    with httpx2.stream(
        "POST", f"{server.base_url}/chat/completions", json=payload, timeout=60
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            for choice in json.loads(line[len("data: ") :])["choices"]:
                deltas.append(choice["delta"])
                if choice.get("finish_reason"):
                    finishes.append(choice["finish_reason"])
    return deltas, finishes


def _only_call(message: dict[str, Any]) -> tuple[str, Any]:
    (call,) = message["tool_calls"]
    assert call["type"] == "function"
    return call["function"]["name"], json.loads(call["function"]["arguments"])


def test_server_plain_answer(chat_server: LlamaServer) -> None:
    choice = _chat(chat_server, messages=USER)
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == PLAIN_ANSWER_TEXT
    assert not choice["message"].get("tool_calls")


@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_server_calls_the_first_named_tool_once(chat_server: LlamaServer, tool_choice: str) -> None:
    choice = _chat(chat_server, messages=USER, tools=[SEARCH, WEATHER], tool_choice=tool_choice)
    assert choice["finish_reason"] == "tool_calls"
    # "get_weather" sorts before "search"; the grammar fills its required "city".
    assert _only_call(choice["message"]) == ("get_weather", {"city": "a"})
    assert not choice["message"]["content"]


def test_server_call_without_required_arguments(chat_server: LlamaServer) -> None:
    choice = _chat(chat_server, messages=USER, tools=[SEARCH], parallel_tool_calls=True)
    assert _only_call(choice["message"]) == ("search", {})


def test_server_answers_after_the_tool_result(chat_server: LlamaServer) -> None:
    choice = _chat(chat_server, messages=ROUND_TRIP, tools=[WEATHER])
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["content"] == TOOL_RESULT_ANSWER_TEXT
    assert not choice["message"].get("tool_calls")


def test_server_json_schema(chat_server: LlamaServer) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON}}
    choice = _chat(chat_server, messages=USER, response_format=response_format)
    assert choice["finish_reason"] == "stop"
    document = json.loads(choice["message"]["content"])
    assert document == {"name": "a", "age": 0, "tags": [], "ok": False, "nick": "aaa"}


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "a"),
        ({"type": "array", "items": {"type": "string"}, "minItems": 2}, ["a", "a"]),
        ({"enum": ["", "zed"]}, "zed"),
        ({"type": "string", "pattern": "^[A-Z]*$"}, "A"),
        ({"type": "string", "maxLength": 0}, ""),
    ],
    ids=["string", "array", "enum", "uppercase", "max-length-0"],
)
def test_server_json_schema_strings(
    chat_server: LlamaServer, schema: dict[str, Any], expected: Any
) -> None:
    # A string takes the first character the grammar admits in the order a-z, A-Z, 0-9, _, -.
    response_format = {"type": "json_schema", "json_schema": {"name": "value", "schema": schema}}
    choice = _chat(chat_server, messages=USER, response_format=response_format)
    assert choice["finish_reason"] == "stop"
    assert json.loads(choice["message"]["content"]) == expected


def test_server_json_object(chat_server: LlamaServer) -> None:
    choice = _chat(chat_server, messages=USER, response_format={"type": "json_object"})
    assert json.loads(choice["message"]["content"]) == {}


def test_server_is_deterministic_at_high_temperature(chat_server: LlamaServer) -> None:
    for seed in (1, 2, 3):
        choice = _chat(chat_server, messages=USER, temperature=2.0, seed=seed)
        assert choice["message"]["content"] == PLAIN_ANSWER_TEXT


def test_server_streams_the_plain_answer(chat_server: LlamaServer) -> None:
    deltas, finishes = _stream(chat_server, messages=USER)
    pieces = [d["content"] for d in deltas if d.get("content")]
    assert len(pieces) > 1
    assert "".join(pieces) == PLAIN_ANSWER_TEXT
    assert finishes == ["stop"]


def test_server_streams_the_tool_call(chat_server: LlamaServer) -> None:
    deltas, finishes = _stream(chat_server, messages=USER, tools=[WEATHER], tool_choice="required")
    calls = [call for d in deltas for call in d.get("tool_calls") or []]
    assert {call["index"] for call in calls} == {0}
    assert [call["function"]["name"] for call in calls if "name" in call["function"]] == [
        "get_weather"
    ]
    arguments = "".join(call["function"].get("arguments", "") for call in calls)
    assert json.loads(arguments) == {"city": "a"}
    assert finishes == ["tool_calls"]


@pytest.mark.parametrize(
    "text",
    [
        "Hello! How can I help?",
        "Let me think</think>Done.",
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>',
        "<|im_start|>user\nwörds ünïcode 😀  spaces\n\n<|im_end|>",
    ],
)
def test_hugging_face_tokenizer_splits_text_as_llama_server_does(
    chat_server: LlamaServer, tmp_path: Path, text: str
) -> None:
    """The Hugging Face copy (what vLLM loads) and the GGUF tokenize every text alike."""
    tokenizer = Tokenizer.from_file(str(write_hf_chat_model(tmp_path / "hf") / "tokenizer.json"))
    reply = httpx2.post(
        f"{chat_server.url}/tokenize", json={"content": text, "parse_special": True}
    )
    assert tokenizer.encode(text).ids == reply.json()["tokens"]
    assert tokenizer.decode(tokenizer.encode(text).ids, skip_special_tokens=False) == text
