"""The OpenAI-compatible JSON the servers send, as lenient types.

One model serves full responses and stream chunks alike (`message` or `delta`), so both paths
share one parser. Fields are optional wherever some server omits them; unknown fields are ignored.
Validation runs in pydantic-core straight from the bytes (`model_validate_json`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue, NonNegativeInt, RootModel


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WireFunction(_Wire):
    name: str | None = None
    arguments: JsonValue = None
    """A JSON string per OpenAI; llama-server, TGI and Ollama may send an object instead."""


class WireToolCall(_Wire):
    index: int | None = None
    id: str | None = None
    type: str | None = None
    function: WireFunction | None = None


class WireMessage(_Wire):
    role: str | None = None
    content: str | None = None
    reasoning_content: str | None = None
    reasoning: str | None = None
    tool_calls: list[WireToolCall] | None = None


class WireChoice(_Wire):
    index: int = 0
    message: WireMessage | None = None
    delta: WireMessage | None = None
    finish_reason: str | None = None


class WirePromptDetails(_Wire):
    cached_tokens: int | None = None


class WireCompletionDetails(_Wire):
    reasoning_tokens: int | None = None


class WireUsage(_Wire):
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_tokens_details: WirePromptDetails | None = None
    completion_tokens_details: WireCompletionDetails | None = None


class WireErrorDetail(_Wire):
    message: str | None = None
    type: str | None = None
    code: int | str | None = None


class WireChatCompletion(_Wire):
    """A chat completion or one stream chunk; `error` is set on mid-stream error events."""

    id: str | None = None
    model: str | None = None
    created: float | None = None
    system_fingerprint: str | None = None
    choices: list[WireChoice] = []
    usage: WireUsage | None = None
    timings: dict[str, Any] | None = None
    error: WireErrorDetail | str | None = None


class WireEmbedding(_Wire):
    index: int | None = None
    embedding: list[float] | str
    """Floats, or base64 of little-endian float32 when a server ignores `encoding_format`."""


class WireEmbeddingList(_Wire):
    data: list[WireEmbedding]
    model: str | None = None
    usage: WireUsage | None = None


class WireErrorBody(_Wire):
    """Error bodies in all the shapes servers use.

    OpenAI, llama-server, newer vLLM: `{"error": {"message", "type", "code"}}`; older vLLM:
    `{"object": "error", "message", "type", "code"}`; TGI: `{"error": "...", "error_type"}`;
    FastAPI validation: `{"detail": ...}`.
    """

    error: WireErrorDetail | str | None = None
    message: str | None = None
    type: str | None = None
    code: int | str | None = None
    error_type: str | None = None
    detail: JsonValue = None


class WireModelMeta(_Wire):
    n_ctx_train: int | None = None


class WireModel(_Wire):
    id: str
    owned_by: str | None = None
    max_model_len: int | None = None
    meta: WireModelMeta | None = None


class WireModelList(_Wire):
    data: list[WireModel] = []


class WireGenerationSettings(_Wire):
    n_ctx: int | None = None


class WireProps(_Wire):
    """llama-server's `/props`: the context size the server actually runs with, and its build.

    `build_info` is `b<build number>-<commit>` (tools/server/server-context.cpp
    `build_info = "b" + std::to_string(LLAMA_BUILD_NUMBER) + "-" + LLAMA_COMMIT`).
    """

    n_ctx: int | None = None
    default_generation_settings: WireGenerationSettings | None = None
    build_info: str | None = None


class WireVersion(_Wire):
    """The `version` field of a server's version reply; every other field is ignored.

    vLLM `GET /version` `{"version": "0.11.0"}` (vllm/entrypoints/serve/instrumentator/basic.py
    `show_version`); Ollama `GET /api/version` `{"version": "0.12.6"}` (docs.ollama.com
    api-reference/get-version); LocalAI `GET /version` `{"version": "v3.6.0 (abc1234)"}`
    (core/http/routes/localai.go); TGI `GET /info` `{"model_id": ..., "version": "3.3.6",
    "sha": ...}` (router/src/lib.rs `Info`); SGLang `GET /get_server_info` `{..., "version":
    "0.5.3"}` (python/sglang/srt/entrypoints/http_server.py). SGLang's reply also holds every
    server argument, its `api_key` included, which is why nothing but `version` is read.
    """

    version: str


class WireTokens(_Wire):
    """llama-server's `/tokenize` reply: the token ids (tools/server/README.md)."""

    tokens: list[int]


class WirePrompt(_Wire):
    """llama-server's `/apply-template` reply: the chat template applied to the messages."""

    prompt: str


class WireTokenCount(_Wire):
    """vLLM's and SGLang's `/tokenize` reply; `count` is the number of tokens."""

    count: NonNegativeInt


class WireSlot(_Wire):
    """One entry of llama-server's `/slots` list.

    From tools/server/server-context.cpp, the slot's `to_json`:
    `{"id": 0, "n_ctx": 2048, "speculative": false, "is_processing": true, ...}`.
    """

    is_processing: bool = False


class WireSlots(RootModel[list[WireSlot]]):
    """llama-server's `/slots`: every slot, busy or idle."""

    model_config = ConfigDict(frozen=True)
