"""The LangChain classes never show an endpoint's secrets: not in reprs, in serialised models
(where the key is only ever LangChain's secret marker), in logs, callbacks or debug output, nor
in the errors they raise.
"""

from __future__ import annotations

import json
import logging
import socket
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from langchain_core import exceptions as lcx
from langchain_core._api.beta_decorator import LangChainBetaWarning
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.globals import get_debug, get_verbose, set_debug, set_verbose
from langchain_core.load import dumpd, dumps, load
from langchain_core.outputs import LLMResult
from pydantic import BaseModel

from langchain_selfhosted import ChatSelfHosted, SelfHostedEmbeddings
from selfhosted_core import Config, Provider, SelfHostedError
from selfhosted_core._status import endpoint_secrets
from tests.lc_driver import LCDriver
from tests.secrets_canary import (
    KEY,
    EchoServer,
    answer_echo,
    answer_ok,
    assert_hidden,
    assert_sent,
    chat_endpoint,
    echo_server,
    embedding_endpoint,
    error_text,
    mock_transport,
)

CHAT_URL = "http://chat.test:8080"
EMBED_URL = "http://embed.test:8081"
SECRET_MARKER = {"lc": 1, "type": "secret", "id": ["SELFHOSTED_API_KEY"]}
LOGGERS = (
    "httpx2",
    "httpcore2",
    "langchain",
    "langchain_core",
    "langchain_selfhosted",
    "selfhosted_core",
)

Build = Callable[[pytest.MonkeyPatch], BaseModel]


def endpoints() -> Config:
    return Config(endpoints=[chat_endpoint(CHAT_URL), embedding_endpoint(EMBED_URL)])


def env_chat(monkeypatch: pytest.MonkeyPatch) -> BaseModel:
    monkeypatch.setenv("SELFHOSTED_BASE_URL", CHAT_URL)
    monkeypatch.setenv("SELFHOSTED_API_KEY", KEY)
    return ChatSelfHosted(model="tiny")


def env_embeddings(monkeypatch: pytest.MonkeyPatch) -> BaseModel:
    monkeypatch.setenv("SELFHOSTED_BASE_URL", EMBED_URL)
    monkeypatch.setenv("SELFHOSTED_API_KEY", KEY)
    return SelfHostedEmbeddings(model="minilm", dimension=2)


CHAT_MODELS: dict[str, Build] = {
    "api_key": lambda _: ChatSelfHosted(model="tiny", base_url=CHAT_URL, api_key=KEY),
    "environment": env_chat,
    "config": lambda _: ChatSelfHosted(model="tiny", config=endpoints()),
    "provider": lambda _: ChatSelfHosted(model="tiny", provider=Provider(endpoints())),
}
EMBEDDINGS: dict[str, Build] = {
    "api_key": lambda _: SelfHostedEmbeddings(
        model="minilm", base_url=EMBED_URL, api_key=KEY, dimension=2
    ),
    "environment": env_embeddings,
    "config": lambda _: SelfHostedEmbeddings(model="minilm", config=endpoints()),
    "provider": lambda _: SelfHostedEmbeddings(model="minilm", provider=Provider(endpoints())),
}


def shown(model: BaseModel) -> dict[str, str]:
    """Every way a LangChain model is written out, by name."""
    return {
        "repr": repr(model),
        "str": str(model),
        "dumpd": json.dumps(dumpd(model)),
        "dumps": dumps(model),
        "dumps(pretty=True)": dumps(model, pretty=True),
        "model_dump()": repr(model.model_dump()),
        "model_dump_json()": model.model_dump_json(),
    }


def configured_secrets(model: ChatSelfHosted | SelfHostedEmbeddings) -> set[str]:
    """What the model's endpoints will send: proof there is a secret to hide."""
    return {
        secret
        for endpoint in model._provider.config.endpoints
        for secret in endpoint_secrets(endpoint)
    }


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SELFHOSTED_CONFIG", "SELFHOSTED_BASE_URL", "SELFHOSTED_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# --- reprs and serialisation -----------------------------------------------------------------


@pytest.mark.parametrize("build", CHAT_MODELS.values(), ids=CHAT_MODELS.keys())
def test_chat_model_repr_and_serialisation_hide_secrets(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build(monkeypatch)
    assert isinstance(model, ChatSelfHosted)
    assert KEY in configured_secrets(model)
    for where, text in shown(model).items():
        assert_hidden(text, f"ChatSelfHosted {where}")


@pytest.mark.parametrize("build", EMBEDDINGS.values(), ids=EMBEDDINGS.keys())
def test_embeddings_repr_and_serialisation_hide_secrets(
    build: Build, monkeypatch: pytest.MonkeyPatch
) -> None:
    embeddings = build(monkeypatch)
    assert isinstance(embeddings, SelfHostedEmbeddings)
    assert KEY in configured_secrets(embeddings)
    for where, text in shown(embeddings).items():
        assert_hidden(text, f"SelfHostedEmbeddings {where}")


@pytest.mark.parametrize("source", ["api_key", "environment"])
def test_chat_model_writes_its_key_only_as_a_secret_marker(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = CHAT_MODELS[source](monkeypatch)
    assert dumpd(model)["kwargs"]["api_key"] == SECRET_MARKER
    assert json.loads(dumps(model))["kwargs"]["api_key"] == SECRET_MARKER
    # The marker is LangChain's real mechanism: loading with the secret brings the key back.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LangChainBetaWarning)
        loaded = load(
            dumpd(model),
            secrets_map={"SELFHOSTED_API_KEY": KEY},
            valid_namespaces=["langchain_selfhosted"],
            allowed_objects=[ChatSelfHosted],
        )
    assert isinstance(loaded, ChatSelfHosted)
    assert loaded.api_key is not None
    assert loaded.api_key.get_secret_value() == KEY


# --- logs, debug output, callbacks -----------------------------------------------------------


class Recorder(BaseCallbackHandler):
    """Writes down everything LangChain hands its callbacks."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: Any, *, run_id: UUID, **kwargs: Any
    ) -> None:
        self.seen.append(json.dumps(serialized, default=repr) + repr(messages) + repr(kwargs))

    def on_llm_new_token(self, token: Any, **kwargs: Any) -> None:
        self.seen.append(repr(token) + repr(kwargs))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.seen.append(repr(response) + repr(kwargs))

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.seen.append(error_text(error) + repr(kwargs))


@pytest.fixture
def debug() -> Iterator[None]:
    """LangChain's global debug and verbose output on, for one test."""
    before = get_debug(), get_verbose()
    set_debug(True)
    set_verbose(True)
    yield
    set_debug(before[0])
    set_verbose(before[1])


@pytest.fixture
def server() -> Iterator[EchoServer]:
    yield from echo_server(answer_ok)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.usefixtures("debug")
async def test_logs_debug_output_and_callbacks_never_show_secrets(
    server: EchoServer,
    lc: LCDriver,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    gone = f"http://127.0.0.1:{closed_port()}"
    config = Config(
        endpoints=[
            chat_endpoint(server.url),
            embedding_endpoint(server.url),
            chat_endpoint(gone, id="gone", label="chat-g"),
        ]
    )
    recorder = Recorder()
    chat = ChatSelfHosted(model="tiny", config=config, callbacks=[recorder])
    assert (await lc.invoke(chat, "Hi")).content == "Hi."
    assert "".join(str(chunk.content) for chunk in await lc.stream(chat, "Hi")) == "Hi."
    embeddings = SelfHostedEmbeddings(model="minilm", config=config)
    assert await lc.documents(embeddings, ["a text"]) == [[0.6, 0.8]]
    failing = ChatSelfHosted(model="gone", config=config, max_retries=0, callbacks=[recorder])
    with pytest.raises(lcx.ModelConnectionError):
        await lc.invoke(failing, "Hi")
    assert_sent(server.seen[0])
    out, err = capsys.readouterr()
    assert "[llm/start]" in out  # debug output was on
    assert recorder.seen
    if lc.mode == "sync":
        # The capture worked: the HTTP layer logged its requests. Async calls go through
        # aiohttp, which logs none.
        assert "httpcore2" in {record.name.split(".")[0] for record in caplog.records}
    assert_hidden(out + err, "LangChain's debug output")
    assert_hidden("\n".join(recorder.seen), "the callbacks' arguments")
    for record in caplog.records:
        assert_hidden(record.getMessage(), f"{record.name}'s message")
        assert_hidden(repr(record.args), f"{record.name}'s args")
    assert_hidden(caplog.text, "the formatted log")


# --- errors ----------------------------------------------------------------------------------


@pytest.fixture
async def refusing() -> AsyncIterator[Provider]:
    """A provider whose servers refuse every call with 401, quoting the credentials back."""
    transport = mock_transport(answer_echo(401))
    async with Provider(endpoints(), transport=transport, async_transport=transport) as provider:
        yield provider


async def test_errors_quoting_the_secrets_are_redacted(
    refusing: Provider, lc: LCDriver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    chat = ChatSelfHosted(model="tiny", provider=refusing, max_retries=0)
    embeddings = SelfHostedEmbeddings(model="minilm", provider=refusing, max_retries=0)
    failures: list[BaseException] = []
    with pytest.raises(lcx.ModelAuthenticationError) as invoked:
        await lc.invoke(chat, "Hi")
    failures.append(invoked.value)
    with pytest.raises(lcx.ModelAuthenticationError) as streamed:
        await lc.stream(chat, "Hi")
    failures.append(streamed.value)
    with pytest.raises(SelfHostedError) as embedded:
        await lc.documents(embeddings, ["a text"])
    failures.append(embedded.value)
    for error in failures:
        assert_hidden(error_text(error), f"{type(error).__name__}")
    assert_hidden(caplog.text, "the log")
