"""`SelfHostedLLM`: LiteLLM's custom-provider handler, an I/O shell over the core `Provider`.

Every decision is in `_request`, `_response` and `_errors`; each sync method and its async
twin differ only in how they wait. Nothing runs in threads of ours (LiteLLM itself runs the
sync part of `acompletion` in its executor before awaiting the handler).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from os import PathLike
from typing import Any

from litellm.llms.custom_llm import CustomLLM
from litellm.types.utils import EmbeddingResponse, ModelResponse

from litellm_selfhosted import _response
from litellm_selfhosted._errors import mapped_errors
from litellm_selfhosted._request import (
    call_affinity,
    call_timeout,
    chat_request,
    embedding_request,
    warn_once,
)
from litellm_selfhosted._response import StreamPiece
from selfhosted_core import (
    ChatRequest,
    Config,
    EmbeddingRequest,
    Provider,
)

__all__ = ["SelfHostedLLM", "handler"]

logger = logging.getLogger("litellm_selfhosted")


class SelfHostedLLM(CustomLLM):
    """LiteLLM handler for the `selfhosted/` provider: chat, streams and embeddings.

    Requests go through the core `Provider`, so every server quirk is repaired and errors
    become LiteLLM's own classes with the status codes its Router acts on. A Router deployment's
    `api_base` names the replica to prefer: it serves the call when it can take it, and a
    sibling does when it cannot have started it (ejected, refused, loading); without one, the
    provider balances replicas. The core makes every resend; its errors tell a Router not to
    retry (`num_retries = 0`), so one call makes at most the config's `max_attempts` sends.
    Keys come from the endpoint config and go to their endpoint only; an `api_key` given to
    LiteLLM is not used.

    Example:
        >>> import litellm
        >>> from litellm_selfhosted import SelfHostedLLM
        >>> handler = SelfHostedLLM("endpoints.yaml")  # doctest: +SKIP
        >>> litellm.custom_provider_map = [{"provider": "selfhosted", "custom_handler": handler}]
        >>> litellm.completion(model="selfhosted/qwen3", messages=[...])  # doctest: +SKIP

    `register()` does this and also tells LiteLLM about each model.

    Args:
        config: The endpoints: a `Config`, or a path to a YAML/TOML/JSON file. When omitted
            (and no `provider` is given), the environment is read on first use:
            `SELFHOSTED_CONFIG`, or `SELFHOSTED_BASE_URL` with `SELFHOSTED_MODEL`.
        provider: A ready `Provider`; takes precedence over `config`.
    """

    def __init__(
        self,
        config: Config | str | PathLike[str] | None = None,
        *,
        provider: Provider | None = None,
    ) -> None:
        super().__init__()
        self._config = config
        self._provider = provider
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = repr(self._provider) if self._provider is not None else "not yet configured"
        return f"SelfHostedLLM({state})"

    @property
    def provider(self) -> Provider:
        """The core provider, built on first use from the config or the environment."""
        if self._provider is None:
            with self._lock:
                if self._provider is None:
                    self._provider = Provider(_load(self._config))
        return self._provider

    def completion(  # type: ignore[override]
        self,
        model: str,
        messages: list[Any],
        *,
        api_base: str | None,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: Any,
        api_key: str | None,
        logging_obj: Any,
        optional_params: dict[str, Any],
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: Any = None,
        client: Any = None,
    ) -> ModelResponse:
        """Answer one chat call (LiteLLM's `completion`)."""
        request = self._chat(
            model,
            messages,
            optional_params=optional_params,
            litellm_params=litellm_params,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
        )
        with mapped_errors(model):
            answer = self.provider.chat(request)
        return _response.model_response(model_response, answer, model=model)

    async def acompletion(  # type: ignore[override]
        self,
        model: str,
        messages: list[Any],
        *,
        api_base: str | None,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: Any,
        api_key: str | None,
        logging_obj: Any,
        optional_params: dict[str, Any],
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: Any = None,
        client: Any = None,
    ) -> ModelResponse:
        """Async twin of `completion` (LiteLLM's `acompletion`)."""
        request = self._chat(
            model,
            messages,
            optional_params=optional_params,
            litellm_params=litellm_params,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
        )
        with mapped_errors(model):
            answer = await self.provider.achat(request)
        return _response.model_response(model_response, answer, model=model)

    def streaming(  # type: ignore[override]
        self,
        model: str,
        messages: list[Any],
        *,
        api_base: str | None,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: Any,
        api_key: str | None,
        logging_obj: Any,
        optional_params: dict[str, Any],
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: Any = None,
        client: Any = None,
    ) -> Iterator[StreamPiece]:
        """Stream one chat call: text, reasoning and tool-call pieces, then finish and usage."""
        request = self._chat(
            model,
            messages,
            optional_params=optional_params,
            litellm_params=litellm_params,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
        )
        return _pieces(self, request)

    def astreaming(  # type: ignore[override]
        self,
        model: str,
        messages: list[Any],
        *,
        api_base: str | None,
        custom_prompt_dict: dict[str, Any],
        model_response: ModelResponse,
        print_verbose: Callable[..., Any],
        encoding: Any,
        api_key: str | None,
        logging_obj: Any,
        optional_params: dict[str, Any],
        acompletion: Any = None,
        litellm_params: Any = None,
        logger_fn: Any = None,
        headers: Any = None,
        timeout: Any = None,
        client: Any = None,
    ) -> AsyncIterator[StreamPiece]:
        """Async twin of `streaming` (LiteLLM calls it without `await`)."""
        request = self._chat(
            model,
            messages,
            optional_params=optional_params,
            litellm_params=litellm_params,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
        )
        return _apieces(self, request)

    def embedding(  # type: ignore[override]
        self,
        model: str,
        input: list[Any] | str,
        *,
        model_response: EmbeddingResponse,
        print_verbose: Callable[..., Any],
        logging_obj: Any,
        optional_params: dict[str, Any],
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: Any = None,
        litellm_params: Any = None,
    ) -> EmbeddingResponse:
        """Embed texts (LiteLLM's `embedding`); a bare string is one text."""
        request = self._embed(
            model,
            input,
            optional_params=optional_params,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
        )
        with mapped_errors(model):
            vectors = self.provider.embed(request)
        return _response.embedding_response(model_response, vectors, model=model)

    async def aembedding(  # type: ignore[override]
        self,
        model: str,
        input: list[Any] | str,
        *,
        model_response: EmbeddingResponse,
        print_verbose: Callable[..., Any],
        logging_obj: Any,
        optional_params: dict[str, Any],
        api_key: str | None = None,
        api_base: str | None = None,
        timeout: Any = None,
        litellm_params: Any = None,
    ) -> EmbeddingResponse:
        """Async twin of `embedding`."""
        request = self._embed(
            model,
            input,
            optional_params=optional_params,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
        )
        with mapped_errors(model):
            vectors = await self.provider.aembed(request)
        return _response.embedding_response(model_response, vectors, model=model)

    def _chat(
        self,
        model: str,
        messages: Sequence[Any],
        *,
        optional_params: Mapping[str, Any],
        litellm_params: Any,
        api_base: str | None,
        api_key: str | None,
        timeout: Any,
    ) -> ChatRequest:
        _ignore_key(api_key)
        # Anything but a list goes as it came, for `messages_from_openai` to refuse by name.
        given = [_json(message) for message in messages] if isinstance(messages, list) else messages
        with mapped_errors(model):
            return chat_request(
                model,
                given,
                optional_params,
                api_base=api_base,
                timeout=self._timeout(model, timeout),
                affinity=call_affinity(optional_params, litellm_params),
            )

    def _embed(
        self,
        model: str,
        texts: list[Any] | str,
        *,
        optional_params: Mapping[str, Any],
        api_base: str | None,
        api_key: str | None,
        timeout: Any,
    ) -> EmbeddingRequest:
        _ignore_key(api_key)
        with mapped_errors(model):
            return embedding_request(
                model,
                texts,
                optional_params,
                api_base=api_base,
                timeout=self._timeout(model, timeout),
            )

    def _timeout(self, model: str, timeout: Any) -> float | None:
        # Any replica may answer, the preferred one or a sibling: the shortest configured
        # timeout binds them all.
        replicas = self.provider.config.replicas(model)
        return call_timeout(timeout, configured=min((e.timeout for e in replicas), default=None))


handler = SelfHostedLLM()
"""The handler a LiteLLM proxy names in its config (`litellm_selfhosted.handler`).

It reads its endpoints from the environment on its first call (`SELFHOSTED_CONFIG`).
"""


def _pieces(owner: SelfHostedLLM, request: ChatRequest) -> Iterator[StreamPiece]:
    with mapped_errors(request.model), owner.provider.stream(request) as stream:
        for chunk in stream:
            yield from _response.stream_pieces(chunk)
        final = stream.final_response()
    yield _response.closing_piece(final)


async def _apieces(owner: SelfHostedLLM, request: ChatRequest) -> AsyncIterator[StreamPiece]:
    # Opened here, not in `astreaming`: LiteLLM calls that from a worker thread with no loop.
    with mapped_errors(request.model):
        async with owner.provider.astream(request) as stream:
            async for chunk in stream:
                for piece in _response.stream_pieces(chunk):
                    yield piece
            final = await stream.final_response()
    yield _response.closing_piece(final)


def _json(message: Any) -> Mapping[str, Any]:
    """A message as JSON: callers pass dicts, or LiteLLM `Message`s from earlier answers."""
    if isinstance(message, Mapping):
        return message
    dump = getattr(message, "model_dump", None)
    return dump(exclude_none=True) if callable(dump) else message  # type: ignore[no-any-return]


def _ignore_key(api_key: str | None) -> None:
    if api_key:
        warn_once(
            "api_key",
            "an api_key given to LiteLLM is not used: selfhosted endpoints take their key "
            "from the endpoint config",
        )


def _load(config: Config | str | PathLike[str] | None) -> Config:
    if isinstance(config, Config):
        return config
    if config is None:
        return Config.from_env()
    return Config.load(config)
