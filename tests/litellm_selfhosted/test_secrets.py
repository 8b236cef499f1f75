"""Through LiteLLM, an endpoint's secrets never show: not in the handler's repr or the Router and
proxy configs written for it, not in LiteLLM's own debug logging, not in the LiteLLM errors a
failing call raises.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import litellm
import pytest
import yaml
from litellm import exceptions as lx
from litellm.router import Router

from litellm_selfhosted import SelfHostedLLM, proxy_config, register, router_model_list
from selfhosted_core import Config, Provider
from tests.litellm_driver import LLDriver, model
from tests.secrets_canary import (
    EchoServer,
    answer_ok,
    assert_hidden,
    assert_sent,
    chat_endpoint,
    echo_error,
    echo_server,
    echo_stream,
    embedding_endpoint,
    error_text,
    mock_transport,
)

HELLO = [{"role": "user", "content": "Hello"}]
LITELLM_LOGGERS = ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy")
LOGGERS = (*LITELLM_LOGGERS, "litellm", "litellm_selfhosted", "httpx2", "httpcore2", "httpx")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def endpoints(url: str) -> Config:
    return Config(endpoints=[chat_endpoint(url), embedding_endpoint(url)])


# --- reprs and the configs written for LiteLLM -----------------------------------------------


def test_repr_of_the_handler_and_its_configs_hide_secrets() -> None:
    config = endpoints("http://chat.test:8080")
    handler = SelfHostedLLM(config)
    assert_hidden(repr(handler), "repr of a handler not yet used")
    assert handler.provider.config is config  # built now, so the repr below shows it
    assert "tiny" in repr(handler)
    assert_hidden(f"{handler!r} {handler}", "repr of a configured handler")
    assert_hidden(json.dumps(router_model_list(config)), "router_model_list")
    assert_hidden(yaml.safe_dump(proxy_config(config, config_path="e.yaml")), "proxy_config")
    handler.provider.close()


@pytest.mark.usefixtures("litellm_state")
def test_the_registered_handler_and_litellms_registry_hide_secrets() -> None:
    provider = Provider(endpoints("http://chat.test:8080"))
    handler = register(provider=provider)
    assert_hidden(repr(handler), "repr of the registered handler")
    assert_hidden(repr(litellm.custom_provider_map), "litellm.custom_provider_map")
    assert_hidden(json.dumps(litellm.model_cost, default=repr), "litellm.model_cost")


# --- LiteLLM's own logging -------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[EchoServer]:
    yield from echo_server(answer_ok)


@pytest.fixture
def litellm_debug(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """LiteLLM's debug logging on (`_turn_on_debug`, `set_verbose`) for one test."""
    levels = {name: logging.getLogger(name).level for name in LITELLM_LOGGERS}
    monkeypatch.setattr(litellm, "set_verbose", True)
    litellm._turn_on_debug()
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("litellm_state", "litellm_debug")
async def test_litellm_debug_logging_never_shows_secrets(
    server: EchoServer,
    ll: LLDriver,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
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
    async with Provider(config) as provider:
        register(provider=provider)
        answer = await ll.complete(model=model("tiny"), messages=HELLO)
        assert answer.choices[0].message.content == "Hi."
        chunks = await ll.stream(model=model("tiny"), messages=HELLO)
        assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Hi."
        vectors = await ll.embed(model=model("minilm"), input=["a text"])
        assert vectors.data[0]["embedding"] == [0.6, 0.8]
        router = Router(model_list=router_model_list(config))
        routed = await ll.on(router).complete(model="tiny", messages=HELLO)
        assert routed.choices[0].message.content == "Hi."
        with pytest.raises(lx.ServiceUnavailableError) as failed:
            await ll.complete(model=model("gone"), messages=HELLO, num_retries=0)
    assert_hidden(error_text(failed.value), "the connection failure")
    assert_sent(server.seen[0])
    out, err = capfd.readouterr()
    # The capture worked: LiteLLM logged the calls at DEBUG, the HTTP layers their requests.
    names = {record.name for record in caplog.records}
    assert "LiteLLM" in names
    layers = {name.split(".")[0] for name in names}
    # Async calls go through aiohttp, which logs no requests.
    assert "httpcore2" in layers if ll.mode == "sync" else "LiteLLM" in names
    for record in caplog.records:
        assert_hidden(record.getMessage(), f"{record.name}'s message")
        assert_hidden(repr(record.args), f"{record.name}'s args")
    assert_hidden(caplog.text, "the formatted log")
    assert_hidden(out + err, "what LiteLLM printed")


# --- errors ----------------------------------------------------------------------------------


def echoing(method: str, path: str, headers: Any, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Refuses with the status named by the first message, quoting the credentials back;
    "stream" starts a stream that breaks off with an error event quoting them."""
    case = json.loads(body)["messages"][0]["content"]
    if case == "stream":
        return 200, {"content-type": "text/event-stream"}, echo_stream(headers)
    return int(case), {"content-type": "application/json"}, echo_error(headers)


@pytest.fixture
async def refusing(litellm_state: None) -> AsyncIterator[SelfHostedLLM]:
    transport = mock_transport(echoing)
    config = endpoints("http://chat.test:8080")
    async with Provider(config, transport=transport, async_transport=transport) as provider:
        yield register(provider=provider)


@pytest.mark.usefixtures("refusing", "litellm_debug")
@pytest.mark.parametrize(
    ("case", "kind"),
    [
        ("400", lx.BadRequestError),
        ("401", lx.AuthenticationError),
        ("500", lx.InternalServerError),
        ("stream", lx.MidStreamFallbackError),
    ],
)
async def test_errors_quoting_the_secrets_are_redacted(
    ll: LLDriver, case: str, kind: type[Exception], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    call = ll.stream if case == "stream" else ll.complete
    with pytest.raises(kind) as caught:
        await call(model=model("tiny"), messages=[{"role": "user", "content": case}])
    error: BaseException = caught.value
    assert_hidden(error_text(error), type(error).__name__)
    original = getattr(error, "original_exception", None)
    if original is not None:  # LiteLLM's mid-stream wrapper keeps ours here
        assert_hidden(error_text(original), "the wrapped error")
    assert_hidden(caplog.text, "the log")
