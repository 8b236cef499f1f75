"""Per-server quirks as data: what each server accepts on the way in.

Response-side quirks (arguments as objects, missing ids, reasoning fields, odd streams) are
repaired for every server alike, because the repair is harmless where the quirk is absent; see
`selfhosted_core._repair`. Request-side quirks cannot be applied blindly, so each server kind has
a `ServerProfile`. An endpoint uses the profile of its configured `server`, or of the kind
`Provider.health()` detected, or `GENERIC`, whose choices work on every server listed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Literal

__all__ = ["PROFILES", "ServerKind", "ServerProfile", "detect_server_kind", "profile_for"]


class ServerKind(str, Enum):
    """The inference server software behind an endpoint."""

    GENERIC = "generic"
    LLAMA_CPP = "llama.cpp"
    VLLM = "vllm"
    OLLAMA = "ollama"
    LMSTUDIO = "lmstudio"
    LOCALAI = "localai"
    SGLANG = "sglang"
    TGI = "tgi"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerProfile:
    """What a server kind accepts in a chat request, and which tokenizer API it offers.

    Attributes:
        kind: The server this profile describes.
        named_tool_choice: The server honours `tool_choice: {"type": "function", ...}`. When
            False the request sends only the named tool with `tool_choice: "required"`, which
            yields that tool's call everywhere: llama-server silently falls back to `auto` on
            the named form (ggml-org/llama.cpp#26535) and LM Studio rejects it outright
            (lmstudio-ai/lmstudio-bug-tracker#670).
        json_object_format: The server accepts `response_format: {"type": "json_object"}`.
            When False, JSON mode is sent as a json_schema allowing any object (LM Studio
            rejects `json_object`: lmstudio-ai/lmstudio-bug-tracker#189).
        response_format_style: `openai` sends `{"type": "json_schema", "json_schema": {...}}`;
            `tgi` sends `{"type": "json", "value": schema}`, the form text-generation-inference
            documents for its guidance feature.
        reasoning_field: The assistant-message field the server reads earlier reasoning from,
            sent only to endpoints that declare the `reasoning` capability.
            `reasoning_content`: llama-server (common/chat.cpp
            `common_chat_msgs_parse_oaicompat` reads it and hands it to the template as
            `message.reasoning_content`) and SGLang (`ChatCompletionMessageGenericParam` in
            python/sglang/srt/entrypoints/openai/protocol.py). `reasoning`: Ollama
            (openai/openai.go `Message.Reasoning`, passed on as `api.Message.Thinking`) and
            vLLM (vllm/entrypoints/chat_utils.py `_parse_chat_message_content` reads
            `message.get("reasoning")` and gives the template both `reasoning` and
            `reasoning_content`; input reasoning arrived with vllm-project/vllm#28531, and
            current vLLM takes `reasoning_content` only as a deprecated alias renamed in chat
            requests, chat_completion/protocol.py `_normalize_messages_before`, not in
            `/tokenize`, so a count would miss it).
        tokenize: The server's own tokenizer API, so tokens are counted by the model's real
            tokenizer and nothing is downloaded. `llama.cpp`: `POST /tokenize`
            `{"content"}` -> `{"tokens"}`, and `POST /apply-template` `{"messages"}` ->
            `{"prompt"}` for chat messages (tools/server/README.md). `vllm`: `POST /tokenize`
            `{"model", "prompt"}` or `{"model", "messages"}` -> `{"count", "tokens",
            "max_model_len"}` (vllm/entrypoints/serve/tokenize/protocol.py, formerly
            entrypoints/openai/protocol.py). `sglang`: vLLM's text form only
            (python/sglang/srt/entrypoints/openai/serving_tokenize.py; its `TokenizeRequest`
            has no `messages`). None: no such API (Ollama, LM Studio, LocalAI and TGI
            document none).
        closes_after_stream: The server closes the connection after a streamed reply
            without saying so (no `Connection: close`): llama-server does (its HTTP layer,
            cpp-httplib under tools/server/server-http.cpp, ends the connection once a chunked
            stream is done; measured with the llama.cpp that llama-cpp-python bundles). A
            client that pools that connection finds it dead on its next request ("Server
            disconnected", "Can not write request body"), each such request a needless
            failure. When True, stream requests ask for `Connection: close`, so neither side
            keeps the connection.
    """

    kind: ServerKind
    named_tool_choice: bool = False
    json_object_format: bool = True
    response_format_style: Literal["openai", "tgi"] = "openai"
    reasoning_field: Literal["reasoning_content", "reasoning"] = "reasoning_content"
    tokenize: Literal["llama.cpp", "vllm", "sglang"] | None = None
    closes_after_stream: bool = False


PROFILES: Mapping[ServerKind, ServerProfile] = {
    ServerKind.GENERIC: ServerProfile(kind=ServerKind.GENERIC),
    ServerKind.LLAMA_CPP: ServerProfile(
        kind=ServerKind.LLAMA_CPP, tokenize="llama.cpp", closes_after_stream=True
    ),
    ServerKind.VLLM: ServerProfile(
        kind=ServerKind.VLLM, named_tool_choice=True, reasoning_field="reasoning", tokenize="vllm"
    ),
    ServerKind.OLLAMA: ServerProfile(kind=ServerKind.OLLAMA, reasoning_field="reasoning"),
    ServerKind.LMSTUDIO: ServerProfile(kind=ServerKind.LMSTUDIO, json_object_format=False),
    ServerKind.LOCALAI: ServerProfile(kind=ServerKind.LOCALAI),
    ServerKind.SGLANG: ServerProfile(
        kind=ServerKind.SGLANG, named_tool_choice=True, tokenize="sglang"
    ),
    ServerKind.TGI: ServerProfile(kind=ServerKind.TGI, response_format_style="tgi"),
}


def profile_for(kind: ServerKind | None) -> ServerProfile:
    """The profile of `kind`, or the generic one when the kind is unknown."""
    return PROFILES[kind or ServerKind.GENERIC]


_OWNED_BY: Mapping[str, ServerKind] = {
    "llamacpp": ServerKind.LLAMA_CPP,
    "vllm": ServerKind.VLLM,
    "sglang": ServerKind.SGLANG,
    "library": ServerKind.OLLAMA,
}
"""`owned_by` values that name the server: llama-server (tools/server README), vLLM and SGLang
(their `ModelCard` defaults), Ollama (the model's namespace, `library` for library models,
ollama/ollama openai/openai.go). TGI answers the model id, and LocalAI's and LM Studio's values
are unconfirmed, so these three must be declared with `server:` in the config."""


def detect_server_kind(headers: Mapping[str, str], owners: Iterable[str]) -> ServerKind | None:
    """Recognise the server from `/v1/models`, or None when nothing gives it away.

    Decides from the entries' `owned_by`, then from the `Server: llama.cpp` header
    llama-server sends (tools/server/server-http.cpp).
    """
    for owner in owners:
        kind = _OWNED_BY.get(owner.lower())
        if kind is not None:
            return kind
    if "llama.cpp" in headers.get("server", "").lower():
        return ServerKind.LLAMA_CPP
    return None
