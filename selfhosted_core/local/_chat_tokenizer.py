"""Vocabulary, merges and chat template of the tiny programmed chat model.

The tokenizer is byte-level BPE (``tokenizer.ggml.model = "gpt2"``, Qwen2 pre-tokenizer): all
256 byte tokens, so llama.cpp can tokenize any text, a few merges that spell the canned answers,
multi-character tokens the model emits while writing a tool call, the Hermes/Qwen tool tags as
user-defined tokens and the ChatML control tokens.

The chat template is Qwen2.5's, whose tool format (``<tool_call>{"name": ..., "arguments":
...}</tool_call>`` inside ChatML turns) llama.cpp's differential template analyser recognises
when the server runs with ``--jinja``; only the default system prompt differs.
"""

from __future__ import annotations

from dataclasses import dataclass

import gguf

__all__ = [
    "CHAT_TEMPLATE",
    "CONTROL",
    "HF_CHAT_TEMPLATE",
    "PLAIN_ANSWER",
    "QWEN2_SPLIT",
    "REASONING",
    "TOOL_RESULT_ANSWER",
    "ChatVocab",
    "add_chat_tokenizer",
    "build_vocab",
]

PLAIN_ANSWER = ("Hello", "!", " How", " can", " I", " help", "?")
TOOL_RESULT_ANSWER = ("Done", ".")
REASONING = ("Let", " me", " think")
# Tool-call pieces as whole tokens: each gets its own row in the next-token table, so the
# call can be spelled without the model having to count quotes.
TOOL_CALL_OPEN = '\n{"name": "'
TOOL_CALL_ARGS = '", "arguments": '
TOOL_CALL_NO_ARGS = "{}"
TOOL_CALL_CLOSE = "}\n</tool_call>"

USER_DEFINED = (
    "<tool_call>",
    "</tool_call>",
    "<tools>",
    "</tools>",
    "<tool_response>",
    "</tool_response>",
    "<think>",
    "</think>",
)
CONTROL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

CHAT_TEMPLATE = """\
{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n\
You are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and \
arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \
\\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or \
(message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' }}{#- reasoning -#}
        {{- message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}{#- reasoning before calls -#}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}{#- thinking -#}
{%- endif %}
"""

# Qwen3's reasoning, for the Hugging Face copy (vLLM's `qwen3` reasoning parser): reasoning sent
# back on an assistant message is rendered in its turn, and `enable_thinking` (default on, as in
# Qwen3) opens the answer with "<think>\\n", or with an empty think block when off.
_REASONING = """
        {%- if message.role == "assistant" and message.reasoning_content %}
            {{- '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' }}
        {%- endif %}"""
_REASONING_BEFORE_CALLS = """
        {%- if message.reasoning_content %}
            {{- '\\n<think>\\n' + message.reasoning_content + '\\n</think>' }}
        {%- endif %}"""
_THINKING = """
    {%- if enable_thinking is defined and not enable_thinking %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- else %}
        {{- '<think>\\n' }}
    {%- endif %}"""
HF_CHAT_TEMPLATE = (
    CHAT_TEMPLATE.replace("{#- reasoning -#}", _REASONING)
    .replace("{#- reasoning before calls -#}", _REASONING_BEFORE_CALLS)
    .replace("{#- thinking -#}", _THINKING)
)

# Qwen2's pre-tokenizer split (its tokenizer.json), which llama.cpp's "qwen2" pre-tokenizer
# reproduces: the Hugging Face tokenizer cuts text where the GGUF's does.
QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _byte_to_unicode() -> dict[int, str]:
    # GPT-2's reversible byte -> printable character map, which byte-level BPE vocabularies
    # (and llama.cpp's decoder for them) use to spell bytes such as space ("Ġ") and "\n" ("Ċ").
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


@dataclass(frozen=True)
class ChatVocab:
    """The token list as written to the GGUF, with lookups by the text a token stands for.

    Attributes:
        tokens: Token strings as stored (byte-level encoded for ordinary tokens).
        types: ``gguf.TokenType`` value of each token.
        merges: BPE merges, highest priority first.
        ids: Token id by the exact text the token decodes to.
    """

    tokens: tuple[str, ...]
    types: tuple[int, ...]
    merges: tuple[str, ...]
    ids: dict[bytes, int]

    def id(self, text: str | bytes) -> int:
        """Return the id of the token that decodes to ``text``.

        Args:
            text: The decoded text of the token.

        Returns:
            The token id.

        Example:
            >>> build_vocab().id("<|im_end|>") == build_vocab().eos
            True
        """
        return self.ids[text.encode() if isinstance(text, str) else text]

    @property
    def eos(self) -> int:
        """The id of ``<|im_end|>``, which ends every assistant turn."""
        return self.id("<|im_end|>")

    def __len__(self) -> int:
        return len(self.tokens)


def build_vocab() -> ChatVocab:
    """Build the vocabulary: bytes, answer words with their merges, tool-call pieces, tags.

    Returns:
        The vocabulary; the same every time.

    Example:
        >>> vocab = build_vocab()
        >>> vocab.id("Hello") > vocab.id(b"H")
        True
    """
    encode = _byte_to_unicode()
    tokens: list[str] = []
    types: list[int] = []
    ids: dict[bytes, int] = {}
    merges: list[str] = []

    def add(text: bytes, stored: str, token_type: gguf.TokenType) -> None:
        if text not in ids:
            ids[text] = len(tokens)
            tokens.append(stored)
            types.append(int(token_type))

    for b in range(256):
        add(bytes([b]), encode[b], gguf.TokenType.NORMAL)
    for word in (*PLAIN_ANSWER, *TOOL_RESULT_ANSWER, *REASONING):
        raw = word.encode()
        # Left-to-right merges make llama.cpp tokenize each answer word back into one token.
        for end in range(2, len(raw) + 1):
            left = "".join(encode[b] for b in raw[: end - 1])
            merge = f"{left} {encode[raw[end - 1]]}"
            if raw[:end] not in ids:
                merges.append(merge)
            add(raw[:end], "".join(encode[b] for b in raw[:end]), gguf.TokenType.NORMAL)
    for piece in (TOOL_CALL_OPEN, TOOL_CALL_ARGS, TOOL_CALL_NO_ARGS, TOOL_CALL_CLOSE):
        raw = piece.encode()
        add(raw, "".join(encode[b] for b in raw), gguf.TokenType.NORMAL)
    for tag in USER_DEFINED:
        add(tag.encode(), tag, gguf.TokenType.USER_DEFINED)
    for tag in CONTROL:
        add(tag.encode(), tag, gguf.TokenType.CONTROL)
    return ChatVocab(tuple(tokens), tuple(types), tuple(merges), ids)


def add_chat_tokenizer(writer: gguf.GGUFWriter, vocab: ChatVocab) -> None:
    """Write the tokenizer and the chat template of `vocab` into a GGUF being written.

    The vocabulary size and every tensor are the caller's: any llama-architecture model over
    this vocabulary (the programmed chat model, a benchmark's random one) gets the same
    tokenizer, which llama-server accepts.

    Args:
        writer: The GGUF writer, before its key-value data is written.
        vocab: The vocabulary, usually :func:`build_vocab`'s.
    """
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(list(vocab.tokens))
    writer.add_token_types(list(vocab.types))
    writer.add_token_merges(list(vocab.merges))
    writer.add_bos_token_id(vocab.id("<|endoftext|>"))
    writer.add_eos_token_id(vocab.eos)
    writer.add_pad_token_id(vocab.id("<|endoftext|>"))
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)
