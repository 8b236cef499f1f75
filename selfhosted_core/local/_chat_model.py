"""A tiny chat model with hand-set weights, so a real llama-server answers deterministically.

Nothing is trained and nothing is downloaded: the weights of a one-layer llama are written so
that the model behaves like a small program.

- Embeddings are one-hot and the output matrix is a next-token table: each token's row ranks
  every token, so the model spells fixed answers and, when a grammar masks its first choice,
  falls back in an order that ends JSON quickly (``"a"``, ``0``, ``false``, ``[]``, ``{}``
  wherever the schema allows them).
- Two attention heads raise a flag when ``<tools>`` or ``<tool_response>`` is in the prompt;
  a feed-forward unit reads the flags on the newline that opens the assistant turn and picks
  the first token of the answer.

What the served model does (llama-server started with ``--jinja``):

- a plain chat gets :data:`PLAIN_ANSWER_TEXT`, finish reason ``stop``;
- a chat offering tools, ``tool_choice`` ``auto`` or ``required``, gets exactly one call,
  written ``<tool_call>`` + ``{"name": ..., "arguments": ...}`` + ``</tool_call>``. The tool is
  the offered one whose name sorts first (characters compared in the order a-z, A-Z, 0-9,
  ``_``, ``-``; a name before its extensions): llama-server's tool grammar only admits offered
  names and the model prefers characters in that order. The arguments are ``{}``, or when the
  tool requires parameters the smallest object its schema accepts, strings written as below
  (``{"city": "a"}``);
- once a ``role: tool`` message is in the conversation it answers
  :data:`TOOL_RESULT_ANSWER_TEXT` instead of calling again, so agent loops end;
- under a ``json_schema`` ``response_format`` it writes the smallest document the schema's
  grammar accepts, strings written as below (``{"name":"a","age":0}``); under ``json_object``
  it writes ``{}``.

A string value is not left empty: it starts with the first character the grammar admits in the
order a-z, A-Z, 0-9, ``_``, ``-`` and closes as soon as the grammar lets it, so it reads ``"a"``,
``"aaa"`` under ``minLength`` 3 and ``"zed"`` under ``enum: ["", "zed"]``; it is ``""`` only
where the grammar admits none of those characters (``maxLength`` 0, say). Property names come
from the schema and are not affected.

With ``tool_choice: "none"`` the tools are still in the prompt but no grammar applies, so a
call with a made-up name comes back as content; a user message containing the literal text
``<tools>`` also counts as tools being offered. Every runner-up trails by at least eight
logits, and llama-server's default ``top_p`` and ``min_p`` filter before the temperature, so the
answers are the same at any temperature unless a client turns both filters off.
"""

from __future__ import annotations

import itertools
import math
import string
from pathlib import Path

import gguf
import numpy as np

from selfhosted_core.local._cache import cache_root, cached_file
from selfhosted_core.local._chat_tokenizer import (
    PLAIN_ANSWER,
    REASONING,
    TOOL_CALL_ARGS,
    TOOL_CALL_CLOSE,
    TOOL_CALL_NO_ARGS,
    TOOL_CALL_OPEN,
    TOOL_RESULT_ANSWER,
    ChatVocab,
    add_chat_tokenizer,
    build_vocab,
)

__all__ = [
    "CHAT_MODEL_VERSION",
    "PLAIN_ANSWER_TEXT",
    "REASONING_TEXT",
    "TOOL_RESULT_ANSWER_TEXT",
    "chat_model_path",
    "chat_model_tensors",
    "write_chat_model",
]

# Bump whenever the written bytes change: it is part of the cached file name.
CHAT_MODEL_VERSION = 3
PLAIN_ANSWER_TEXT = "".join(PLAIN_ANSWER)
TOOL_RESULT_ANSWER_TEXT = "".join(TOOL_RESULT_ANSWER)
REASONING_TEXT = "".join(REASONING)

CONTEXT_LENGTH = 4096
N_HEAD = 4
HEAD_DIM = 64
N_FF = 64
# High enough that the slowest rotary pair (the one the detector heads use) turns less than
# 0.01 rad over the whole context, so their scores do not depend on distance.
ROPE_FREQ_BASE = 1_000_000.0
RMS_EPS = 1e-5
MODEL_NAME = "selfhosted-tiny-chat"
# Detector score (after llama.cpp's 1/sqrt(head_dim)) of a marker token; every other token
# scores 0, so one marker anywhere takes all of the attention.
_DETECT_SCORE = 50.0
_GATE = 8.0
# How far the feed-forward unit lifts its token above the table's choice for "\n", in units.
_BOOST = 12.0
# Logits per rank of the next-token table: each flag a prompt raises (tools offered, a think
# block) dilutes the normalised token, so this keeps runner-ups eight logits behind even with
# every flag up.
_TABLE_SCALE = 1.25
# Residual channels after the one-hot token: a constant, the four detector flags, then one per
# feed-forward unit.
_CHANNELS = ("const", "tools", "result", "think", "thought", "call", "answer", "reason")
# The characters of tool names, in the order the model prefers them.
_NAME_CHARS = string.ascii_lowercase + string.ascii_uppercase + string.digits + "_-"


def _layout(vocab: ChatVocab) -> dict[str, int]:
    n = len(vocab)
    # Residual dims: one-hot token, then a constant and the flag and feed-forward channels.
    dims = {name: n + index for index, name in enumerate(_CHANNELS)}
    dims["model"] = -(-(n + len(_CHANNELS)) // HEAD_DIM) * HEAD_DIM
    return dims


def _order(vocab: ChatVocab) -> list[int]:
    # Fallback order shared by all rows: the characters of tool names first, lowercase leading
    # (a grammar choosing between names takes the smallest in this alphabet, and a string with a
    # minimum length repeats "a"), other printable bytes, UTF-8 bytes, longer tokens, tags, end
    # of turn; whitespace and control tokens last, so optional JSON whitespace never wins.
    text = _NAME_CHARS.encode()
    printable = [b for b in range(0x21, 0x7F) if b not in text]
    single = [vocab.id(bytes([b])) for b in (*text, *printable, *range(0x80, 0x100))]
    whitespace = [vocab.id(bytes([b])) for b in (*range(0x21), 0x7F)]
    control = [vocab.id("<|im_start|>"), vocab.id("<|endoftext|>")]
    late = {*single, *whitespace, *control, vocab.eos}
    longer = [t for t in range(len(vocab)) if t not in late]
    return [*single, *longer, vocab.eos, *whitespace, *control]


def _next_token_table(vocab: ChatVocab) -> np.ndarray:
    """Return ``table[current, next]``: a strict ranking of every next token, per current one."""
    order = _order(vocab)
    n = len(vocab)
    tok = vocab.id
    eos = vocab.eos
    tool_call = tok("<tool_call>")
    answers = [tok(TOOL_RESULT_ANSWER[0]), tok(REASONING[0])]
    values = [tok(c) for c in '"0{[fnt']
    closers = [tok("}"), tok("]"), tok(",")]
    # Where a value has just ended only closers are allowed, and "}" before "," leaves the
    # optional properties out; inside a string, which would swallow a closer, a letter or
    # the closing quote wins instead.
    default = [tok(TOOL_CALL_ARGS), eos, tok('"'), *order[:26], *closers]
    rows: dict[int, list[int]] = {
        # One token opens and closes strings. After an opening quote a name character beats the
        # closing quote, so a string value gets one (a letter's row then closes it); after a
        # closing quote the grammar masks both and a closer wins as in the default row. No
        # tool-call piece here: after an opening quote it would close an empty string.
        tok('"'): [eos, *order[: len(_NAME_CHARS)], tok('"'), *closers],
        # The newline ending "<|im_start|>assistant\n": the first token of the answer (a
        # feed-forward unit lifts the second, third or fourth), else the start of a JSON
        # document.
        tok("\n"): [tok(PLAIN_ANSWER[0]), tool_call, *answers, eos, *values],
        tok("{"): [eos, tok("}"), tok('"')],
        tok("["): [eos, tok("]"), *values],
        tok(":"): [eos, *values],
        tok(","): [eos, *values],
        # A "}" the grammar let into a string is followed by the quote that ends it.
        tok("}"): [eos, tok(TOOL_CALL_CLOSE), tok('"'), *closers],
        tool_call: [tok(TOOL_CALL_OPEN)],
        # The tool name: the grammar admits only offered names, the order picks one.
        tok(TOOL_CALL_OPEN): order,
        tok(TOOL_CALL_ARGS): [tok(TOOL_CALL_NO_ARGS), tok("{")],
        tok(TOOL_CALL_NO_ARGS): [tok(TOOL_CALL_CLOSE), *default],
        tok(TOOL_CALL_CLOSE): [eos],
    }
    for digit in string.digits:
        # A number ends rather than grows.
        rows[tok(digit)] = [tok(TOOL_CALL_ARGS), eos, tok('"'), *closers]
    for answer in (PLAIN_ANSWER, TOOL_RESULT_ANSWER):
        for word, following in itertools.pairwise(answer):
            rows[tok(word)] = [tok(following), *default]
        # A grammar that still demands a tool call after the answer gets one.
        rows[tok(answer[-1])] = [eos, tool_call, *default]
    # Reasoning is spelled out and closed; what follows "</think>" is chosen as after the
    # newline that opens an answer (the feed-forward units read "</think>" as that newline).
    for word, following in itertools.pairwise((*REASONING, "</think>")):
        rows[tok(word)] = [tok(following), *default]
    rows[tok("</think>")] = rows[tok("\n")]
    table = np.empty((n, n), dtype=np.float32)
    for current in range(n):
        preferred = dict.fromkeys(rows.get(current, default))
        ranking = [*preferred, *(t for t in order if t not in preferred)]
        table[current, ranking] = np.arange(n, 0, -1, dtype=np.float32)
    return table


def chat_model_tensors(vocab: ChatVocab | None = None) -> dict[str, np.ndarray]:
    """Return the model's tensors by GGUF name, shaped as numpy (rows = output features).

    Args:
        vocab: The vocabulary; defaults to :func:`build_vocab`.

    Returns:
        Float32 arrays for ``token_embd``, ``output``, ``output_norm`` and block 0.

    Example:
        >>> chat_model_tensors()["blk.0.attn_q.weight"].shape
        (256, 320)
    """
    vocab = vocab or build_vocab()
    n = len(vocab)
    dims = _layout(vocab)
    d = dims["model"]
    const, tools, result, think, thought, call, answer, reason = (dims[k] for k in _CHANNELS)
    newline = vocab.id("\n")
    think_end = vocab.id("</think>")
    # RMS-normalised value of each non-zero coordinate of an embedding (one-hot + constant).
    unit = math.sqrt(d / 2)

    embed = np.zeros((n, d), dtype=np.float32)
    embed[np.arange(n), np.arange(n)] = 1.0
    embed[:, const] = 1.0

    q = np.zeros((N_HEAD * HEAD_DIM, d), dtype=np.float32)
    k = np.zeros_like(q)
    v = np.zeros_like(q)
    o = np.zeros((d, N_HEAD * HEAD_DIM), dtype=np.float32)
    qk = math.sqrt(_DETECT_SCORE * math.sqrt(HEAD_DIM))
    markers = ("<tools>", "<tool_response>", "<think>", "</think>")
    for head, (marker, flag) in enumerate(
        zip((vocab.id(m) for m in markers), (tools, result, think, thought), strict=True)
    ):
        slow = head * HEAD_DIM + HEAD_DIM - 1
        q[slow, const] = qk / unit
        k[slow, marker] = qk / unit
        v[head * HEAD_DIM, marker] = 1.0 / unit
        o[flag, head * HEAD_DIM] = 1.0

    # Unit 0 fires on "\n" when tools are offered and no tool result came back yet; unit 1
    # on "\n" once a tool result is there; both read "</think>" as "\n" and keep quiet while
    # a think block is open ("<think>" seen, "</think>" not yet). Unit 2 fires on "\n" inside
    # an open think block: the model starts reasoning. silu(gate) * up stays ~0 unless the sum
    # is positive.
    gate = np.zeros((N_FF, d), dtype=np.float32)
    up = np.zeros_like(gate)
    down = np.zeros((d, N_FF), dtype=np.float32)
    closed = [-2 * _GATE, 2 * _GATE]
    gate[0, [newline, think_end, tools, result, think, thought, const]] = [
        _GATE, _GATE, _GATE, -2 * _GATE, *closed, -1.5 * _GATE,
    ]  # fmt: skip
    gate[1, [newline, think_end, result, think, thought, const]] = [
        _GATE, _GATE, _GATE, *closed, -1.5 * _GATE,
    ]  # fmt: skip
    gate[2, [newline, think, thought, const]] = [_GATE, _GATE, -2 * _GATE, -1.5 * _GATE]
    up[[0, 1, 2], const] = 1.0
    # Scaled so each unit writes about 1 into its channel (flags shift the norm a little).
    down[[call, answer, reason], [0, 1, 2]] = 1.0 / (0.5 * _GATE * unit * unit)

    output = np.zeros((n, d), dtype=np.float32)
    output[:, :n] = _TABLE_SCALE * _next_token_table(vocab).T
    output[vocab.id("<tool_call>"), call] = _BOOST
    output[vocab.id(TOOL_RESULT_ANSWER[0]), answer] = _BOOST
    output[vocab.id(REASONING[0]), reason] = _BOOST

    ones = np.ones(d, dtype=np.float32)
    return {
        "token_embd.weight": embed,
        "output_norm.weight": ones,
        "output.weight": output,
        "blk.0.attn_norm.weight": ones,
        "blk.0.attn_q.weight": q,
        "blk.0.attn_k.weight": k,
        "blk.0.attn_v.weight": v,
        "blk.0.attn_output.weight": o,
        "blk.0.ffn_norm.weight": ones,
        "blk.0.ffn_gate.weight": gate,
        "blk.0.ffn_up.weight": up,
        "blk.0.ffn_down.weight": down,
    }


def write_chat_model(path: Path) -> Path:
    """Write the tiny chat model as a GGUF file (1.6 MB, in well under a second).

    The bytes depend only on :data:`CHAT_MODEL_VERSION`: writing twice gives identical files.

    Args:
        path: Where to write; the parent directory must exist.

    Returns:
        ``path``.

    Example:
        >>> from pathlib import Path
        >>> write_chat_model(Path("/tmp/tiny-chat.gguf")).stat().st_size > 1_000_000
        True
    """
    vocab = build_vocab()
    tensors = chat_model_tensors(vocab)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(MODEL_NAME)
    writer.add_context_length(CONTEXT_LENGTH)
    writer.add_embedding_length(_layout(vocab)["model"])
    writer.add_block_count(1)
    writer.add_feed_forward_length(N_FF)
    writer.add_head_count(N_HEAD)
    writer.add_head_count_kv(N_HEAD)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(ROPE_FREQ_BASE)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_vocab_size(len(vocab))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    add_chat_tokenizer(writer, vocab)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def chat_model_path(*, root: Path | None = None) -> Path:
    """Return the tiny chat model's GGUF, writing it on first use.

    Args:
        root: The cache directory; defaults to :func:`cache_root`.

    Returns:
        The path of the GGUF file.

    Example:
        >>> from selfhosted_core.local._chat_model import chat_model_path
        >>> chat_model_path().name
        'selfhosted-tiny-chat-v3.f32.gguf'
    """
    target = (root or cache_root()) / "models" / f"{MODEL_NAME}-v{CHAT_MODEL_VERSION}.f32.gguf"
    return cached_file(target, write_chat_model)
