"""`ChatSelfHosted`: LangChain's chat model for operator-run inference servers."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models.base import LangSmithParams, LanguageModelInput

# From its own module, not the package: the package's lazy `__getattr__` route measured ~13 ms
# slower to import (same modules loaded).
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.language_models.model_profile import ModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.output_parsers.openai_tools import (
    JsonOutputKeyToolsParser,
    PydanticToolsParser,
)
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableMap, RunnablePassthrough
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, ConfigDict

from langchain_selfhosted._endpoints import EndpointSettings, model_info
from langchain_selfhosted._errors import mapped_errors
from langchain_selfhosted._messages import (
    PROVIDER,
    final_chunk,
    to_ai_message,
    to_core_messages,
    to_message_chunk,
)
from langchain_selfhosted._request import (
    SAMPLING,
    build_request,
    normalize_tool_choice,
    run_affinity,
)
from selfhosted_core import (
    Capability,
    ChatRequest,
    ChatResponse,
    InvalidRequestError,
    NotSupportedError,
)

if TYPE_CHECKING:
    from langchain_core.tools import BaseTool

__all__ = ["ChatSelfHosted"]

StructuredOutputMethod = Literal["json_schema", "function_calling", "json_mode"]

_Method = TypeVar("_Method", bound=Callable[..., Any])


def _signature_stored(method: _Method) -> _Method:
    """`method`, with its signature computed once and kept where `inspect.signature` looks first.

    LangChain inspects `_generate` / `_agenerate` on every call to learn whether they take
    `run_manager`; building the signature anew each time cost more than converting the request.
    A subclass that overrides the method is inspected as usual.
    """
    method.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return method


class ChatSelfHosted(EndpointSettings, BaseChatModel):
    r"""Chat with models served by llama-server, vLLM, Ollama, LM Studio, LocalAI, SGLang or TGI.

    Requests go through a `selfhosted_core.Provider`: routed to a replica that declares what the
    request needs, with each server's quirks repaired (tool-call arguments sent as objects,
    missing ids, reasoning in any of its three fields, usage in a separate chunk).

    Setup:
        Install the package and point it at your servers, with a config file or one URL.

        ```bash
        pip install "selfhosted-llm[langchain]"
        export SELFHOSTED_CONFIG=endpoints.yaml   # or SELFHOSTED_BASE_URL + SELFHOSTED_MODEL
        ```

    Key init args — endpoints (first match wins; explicit arguments beat the environment):
        model: str
            The model id, as the config names it.
        provider: Provider | None
            A core `Provider` shared by several models (one set of connection pools).
        config: str | Path | Config | None
            A YAML, TOML or JSON config file, or a `Config`; env `SELFHOSTED_CONFIG`.
        base_url: str | None
            One server, with or without `/v1`; env `SELFHOSTED_BASE_URL`.
        api_key: SecretStr | None
            The key for `base_url`; env `SELFHOSTED_API_KEY`. Config endpoints carry their own,
            and each key is only ever sent to its own endpoint.
        capabilities: list[Capability] | None
            What the `base_url` model can do (default chat, function_call, structured_output).
        timeout: float | None
            Seconds to wait for each request (replaces the endpoints' configured timeouts).

    Key init args — completion params:
        temperature, top_p, max_tokens, seed, frequency_penalty, presence_penalty, stop
            Sampling settings; each may also be given per call.
        streaming: bool
            Make `invoke` stream internally (callbacks get every token).
        max_retries: int | None
            Sends after the first, at most, when a call fails before the server can have
            worked on it (refused, 429, 502, 503); the core resends, to another replica when
            one can take it. None keeps the config's `routing.max_attempts`.
        resend_unsafe: bool | None
            Also resend what the server may have worked on (5xx, read timeout); off unless
            the config says otherwise. Output already streamed is never resent.
        extra_body: dict | None
            Server-specific payload fields (e.g. llama-server's `cache_prompt`).

    Instantiate:
        ```python
        from langchain_selfhosted import ChatSelfHosted

        model = ChatSelfHosted(model="qwen3", config="endpoints.yaml", temperature=0)
        # or one server:
        model = ChatSelfHosted(model="qwen3", base_url="http://127.0.0.1:8080", api_key="...")
        ```

    Invoke:
        ```python
        message = model.invoke([("system", "Be brief."), ("human", "Hi!")])
        message.content  # 'Hello! How can I help?'
        message.response_metadata  # model_name, finish_reason, endpoint, server, timings
        ```

    Stream:
        ```python
        for chunk in model.stream("Hi!"):
            print(chunk.text, end="")
        ```

    Async:
        ```python
        await model.ainvoke("Hi!")
        async for chunk in model.astream("Hi!"):
            print(chunk.text, end="")
        await model.abatch(["Hi!", "Hello!"])
        ```

    Tool calling:
        ```python
        def get_weather(city: str) -> str:
            "Get the weather in a city."
            return "sunny"


        with_tools = model.bind_tools([get_weather], tool_choice="get_weather")
        with_tools.invoke("Weather in Paris?").tool_calls
        # [{'name': 'get_weather', 'args': {'city': 'Paris'}, 'id': '...', 'type': 'tool_call'}]
        ```

        A named `tool_choice` yields that tool's call also on servers that ignore the named
        form (llama-server) or reject it (LM Studio). Malformed arguments land in
        `invalid_tool_calls` with the raw text, never "repaired".

    Structured output:
        ```python
        from pydantic import BaseModel


        class Person(BaseModel):
            name: str
            age: int


        model.with_structured_output(Person).invoke("Ada, 36")  # Person(name='Ada', age=36)
        ```

        `method` is `json_schema` (default; grammar-constrained on llama-server and vLLM),
        `function_calling` or `json_mode`; `include_raw=True` returns the raw message too.

    Usage:
        ```python
        model.invoke("Hi!").usage_metadata
        # {'input_tokens': 9, 'output_tokens': 8, 'total_tokens': 17,
        #  'input_token_details': {'cache_read': 0}}
        ```

        Streams carry usage by default, on one chunk.

    Reasoning:
        A reasoning model's thinking (`reasoning_content`, `reasoning` or `<think>` text) is in
        `additional_kwargs["reasoning_content"]`, shows as a reasoning content block, and is
        sent back on the next turn to endpoints that declare the `reasoning` capability.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = None
    """Sampling temperature."""

    top_p: float | None = None
    """Nucleus sampling mass."""

    max_tokens: int | None = None
    """Most tokens to generate (sent as `max_tokens`, which every server accepts)."""

    seed: int | None = None
    """Sampling seed, for servers that honour it."""

    frequency_penalty: float | None = None
    """Penalty on tokens by how often they appeared."""

    presence_penalty: float | None = None
    """Penalty on tokens that appeared at all."""

    stop: list[str] | None = None
    """Sequences that end generation."""

    streaming: bool = False
    """Make `invoke` stream internally, so callbacks and LangGraph see every token."""

    extra_body: dict[str, Any] | None = None
    """Fields merged into every request body, for server-specific parameters."""

    _default_capabilities = (
        Capability.CHAT,
        Capability.FUNCTION_CALL,
        Capability.STRUCTURED_OUTPUT,
    )

    def __init__(self, **data: Any) -> None:
        """Validate, resolve the endpoints, and fill `profile` from what they declare."""
        super().__init__(**data)
        if self.profile is None:
            self.profile = self._profile()

    def _profile(self) -> ModelProfile:
        """The profile from the declared capabilities and the known context window."""
        capabilities = model_info(self._provider, self.model).capabilities
        profile = ModelProfile(
            text_inputs=True,
            text_outputs=True,
            image_inputs=Capability.VISION in capabilities,
            image_url_inputs=Capability.VISION in capabilities,
            tool_calling=Capability.FUNCTION_CALL in capabilities,
            tool_choice=Capability.FUNCTION_CALL in capabilities,
            structured_output=Capability.STRUCTURED_OUTPUT in capabilities,
            reasoning_output=Capability.REASONING in capabilities,
        )
        context = self._provider.context_window(self.model)
        if context is not None:
            profile["max_input_tokens"] = context
        return profile

    def refresh_profile(self) -> ModelProfile:
        """Health-check the servers and rebuild `profile` with the context window they report.

        The context window comes from the config's `context_window` when declared; otherwise
        from the servers (llama-server's `/props`, vLLM's `max_model_len`), which construction
        never contacts. Middleware that trims history reads `profile["max_input_tokens"]`.

        Example:
            >>> model.refresh_profile()["max_input_tokens"]  # doctest: +SKIP
            8192
        """
        self._provider.health()
        self.profile = self._profile()
        return self.profile

    async def arefresh_profile(self) -> ModelProfile:
        """Async twin of `refresh_profile`."""
        await self._provider.ahealth()
        self.profile = self._profile()
        return self.profile

    @property
    def _llm_type(self) -> str:
        return "selfhosted-chat"

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Fields serialisation must never write out, with the variables that hold them."""
        return {"api_key": "SELFHOSTED_API_KEY"}

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """`dumpd` / `load` round-trip this model (keys are written as secrets)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        """The import path LangChain's loader uses."""
        return ["langchain_selfhosted", "chat_models"]

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.model, **self._defaults()}

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # The base class's result, without its route through the deprecated `dict()`: that
        # route swaps the process-wide warnings filters (`catch_warnings`, which is not
        # thread-safe, and `batch` runs calls in threads) and walks the stack, on every call.
        return {**self.asdict(), "stop": stop, **kwargs}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = PROVIDER
        if stop or self.stop:
            params["ls_stop"] = stop or self.stop
        return params

    def _defaults(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SAMPLING}

    def _request(
        self,
        messages: Sequence[BaseMessage],
        stop: list[str] | None,
        kwargs: Mapping[str, Any],
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
    ) -> ChatRequest:
        return build_request(
            messages,
            model=self.model,
            defaults=self._defaults(),
            stop=stop if stop is not None else self.stop,
            extra_body=self.extra_body,
            timeout=self.timeout,
            options=kwargs,
            max_attempts=self._max_attempts,
            resend_unsafe=self.resend_unsafe,
            affinity=run_affinity(run_manager.metadata if run_manager else None),
        )

    def _result(self, response: ChatResponse) -> ChatResult:
        message = to_ai_message(response)
        generation = ChatGeneration(
            message=message, generation_info={"finish_reason": response.finish_reason}
        )
        return ChatResult(
            generations=[generation],
            llm_output={"model_name": response.model, "endpoint": response.endpoint},
        )

    @_signature_stored
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs, run_manager)
        with mapped_errors():
            response = self._provider.chat(request)
        return self._result(response)

    @_signature_stored
    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        request = self._request(messages, stop, kwargs, run_manager)
        with mapped_errors():
            response = await self._provider.achat(request)
        return self._result(response)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs, run_manager)
        with mapped_errors(), self._provider.stream(request) as stream:
            for chunk in stream:
                generation = ChatGenerationChunk(message=to_message_chunk(chunk))
                if run_manager:
                    run_manager.on_llm_new_token(generation.text, chunk=generation)
                yield generation
            final = stream.final_response()
        yield ChatGenerationChunk(
            message=final_chunk(final), generation_info={"finish_reason": final.finish_reason}
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        request = self._request(messages, stop, kwargs, run_manager)
        with mapped_errors():
            async with self._provider.astream(request) as stream:
                async for chunk in stream:
                    generation = ChatGenerationChunk(message=to_message_chunk(chunk))
                    if run_manager:
                        await run_manager.on_llm_new_token(generation.text, chunk=generation)
                    yield generation
                final = await stream.final_response()
        yield ChatGenerationChunk(
            message=final_chunk(final), generation_info={"finish_reason": final.finish_reason}
        )

    def bind_tools(
        self,
        tools: Sequence[Mapping[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | Mapping[str, Any] | None = None,
        parallel_tool_calls: bool | None = None,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer tools to the model.

        Args:
            tools: Functions, `BaseTool`s, Pydantic models, TypedDicts or OpenAI tool dicts.
            tool_choice: `auto`, `none`, `any`/`required`/`True` (call some tool), or a tool's
                name (call that one; works on servers that ignore the named form too).
            parallel_tool_calls: Allow several calls in one answer (sent only when set).
            strict: Ask the server to hold arguments to the schema exactly (sent only when set).
            **kwargs: Further arguments bound to every call.

        Example:
            >>> model.bind_tools([get_weather], tool_choice="get_weather")  # doctest: +SKIP
        """
        formatted = [convert_to_openai_tool(tool, strict=strict) for tool in tools]
        choice = normalize_tool_choice(tool_choice)
        names = [spec["function"]["name"] for spec in formatted]
        if choice not in (None, "auto", "none", "required") and choice not in names:
            raise InvalidRequestError(
                f"tool_choice {choice!r} names no bound tool (tools: {names})", model=self.model
            )
        options: dict[str, Any] = {"tools": formatted}
        if choice is not None:
            options["tool_choice"] = choice
        if parallel_tool_calls is not None:
            options["parallel_tool_calls"] = parallel_tool_calls
        return super().bind(**options, **kwargs)

    def with_structured_output(
        self,
        schema: Mapping[str, Any] | type | None = None,
        *,
        method: StructuredOutputMethod = "json_schema",
        include_raw: bool = False,
        strict: bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Answer with an object matching `schema` instead of a message.

        Args:
            schema: A Pydantic model (v2 or v1), a TypedDict, or a JSON schema; optional only
                with `json_mode`, which then returns plain dicts.
            method: `json_schema` sends the schema as `response_format` (servers with grammars
                enforce it), `function_calling` forces a tool call, `json_mode` asks for any
                JSON object (describe the shape in the prompt).
            include_raw: Return `{"raw": message, "parsed": ..., "parsing_error": ...}`.
            strict: Passed to the server when set; never forced.
            **kwargs: Not accepted; named so a misspelt argument fails loudly.

        Example:
            >>> model.with_structured_output(Person).invoke("Ada, 36")  # doctest: +SKIP
            Person(name='Ada', age=36)
        """
        if kwargs:
            raise InvalidRequestError(f"unexpected arguments {sorted(kwargs)}", model=self.model)
        if method not in ("json_schema", "function_calling", "json_mode"):
            raise InvalidRequestError(
                f"method {method!r} is not json_schema, function_calling or json_mode",
                model=self.model,
            )
        if schema is None and method != "json_mode":
            raise InvalidRequestError(f"method {method!r} needs a schema", model=self.model)
        # Imported here, once per chain built: nothing else needs these parsers' modules, which
        # the chat-model base does not load.
        from langchain_core.output_parsers import (  # noqa: PLC0415
            JsonOutputParser,
            PydanticOutputParser,
        )

        pydantic_schema = isinstance(schema, type) and is_basemodel_subclass(schema)
        traced = {"kwargs": {"method": method, "strict": strict}, "schema": schema}
        llm: Runnable[LanguageModelInput, BaseMessage]
        parser: Runnable[Any, Any]
        if method == "function_calling":
            assert schema is not None, "checked above"
            function = convert_to_openai_tool(schema)["function"]
            llm = self.bind_tools(
                [schema],
                tool_choice=function["name"],
                strict=strict,
                ls_structured_output_format=traced,
            )
            parser = (
                PydanticToolsParser(tools=[schema], first_tool_only=True)
                if pydantic_schema
                else JsonOutputKeyToolsParser(key_name=function["name"], first_tool_only=True)
            )
        else:
            response_format: dict[str, Any] = {"type": "json_object"}
            if method == "json_schema":
                assert schema is not None, "checked above"
                function = convert_to_openai_tool(schema)["function"]
                spec: dict[str, Any] = {"name": function["name"], "schema": function["parameters"]}
                if function.get("description"):
                    spec["description"] = function["description"]
                if strict is not None:
                    spec["strict"] = strict
                response_format = {"type": "json_schema", "json_schema": spec}
            llm = self.bind(response_format=response_format, ls_structured_output_format=traced)
            parser = (
                PydanticOutputParser(pydantic_object=schema)
                if pydantic_schema
                else JsonOutputParser()
            )
        if not include_raw:
            return llm | parser
        parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | parsed.with_fallbacks(
            [fallback], exception_key="parsing_error"
        )

    def get_num_tokens(self, text: str) -> int:
        """Count `text`'s tokens with the server's own tokenizer (`/tokenize`).

        Nothing is downloaded; servers without a tokenize API raise `NotSupportedError`. A
        `custom_get_token_ids` given to the model takes precedence.
        """
        if self.custom_get_token_ids is not None:
            return len(self.custom_get_token_ids(text))
        with mapped_errors():
            return self._provider.count_tokens(self.model, text=text)

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids only from a `custom_get_token_ids`; counts come from `get_num_tokens`.

        LangChain's fallback would download GPT-2's tokenizer, whose ids mean nothing to a
        self-hosted model, so without a custom function this raises `NotSupportedError`.
        """
        if self.custom_get_token_ids is not None:
            return self.custom_get_token_ids(text)
        raise NotSupportedError(
            "token ids need custom_get_token_ids=; get_num_tokens() counts with the server's "
            "tokenizer",
            model=self.model,
        )

    def _get_llm_string(self, stop: list[str] | None = None, **kwargs: Any) -> str:
        # The cache key: models built on a shared `provider` serialise to their id alone, so
        # the servers that answer are part of it (URLs only: keys never leave the config).
        urls = [endpoint.api_base for endpoint in self._provider.config.replicas(self.model)]
        return f"{super()._get_llm_string(stop, **kwargs)}---endpoints={urls}"

    def get_num_tokens_from_messages(
        self,
        messages: list[BaseMessage],
        tools: Sequence[Any] | None = None,
    ) -> int:
        """Count a conversation's prompt tokens as the server's chat template renders it.

        Args:
            messages: The conversation.
            tools: Not counted: servers render tool schemas in model-specific ways; a
                non-empty list raises `NotSupportedError` rather than guess.
        """
        if tools:
            raise NotSupportedError(
                "counting tokens with tools is not supported: the server renders tool schemas "
                "into the prompt its own way",
                model=self.model,
            )
        core = to_core_messages(messages, model=self.model)
        with mapped_errors():
            return self._provider.count_tokens(self.model, messages=core)
