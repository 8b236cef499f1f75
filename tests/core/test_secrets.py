"""An endpoint's secrets (its key and its header values) never show: not in reprs, dumps, logs,
nor in errors, even when a server quotes the request's credentials back in its error text.
"""

from __future__ import annotations

import json
import logging
import socket
import traceback
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from selfhosted_core import (
    APIStatusError,
    ChatRequest,
    Config,
    ConfigurationError,
    EmbeddingRequest,
    EndpointConnectionError,
    EndpointTimeoutError,
    ModelEndpoint,
    Provider,
    ResponseError,
    SelfHostedError,
    ServerKind,
)
from selfhosted_core._assemble import Assembler
from selfhosted_core._status import (
    REDACTED,
    endpoint_secrets,
    error_from_event,
    error_from_status,
    redact,
)
from selfhosted_core._wire import WireErrorDetail
from tests.core.harness import user
from tests.driver import Driver
from tests.secrets_canary import (
    HEADER,
    HEADER_NAME,
    KEY,
    EchoServer,
    answer_echo,
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

CHAT_URL = "http://chat.test:8080"
EMBED_URL = "http://embed.test:8081"
LOGGERS = ("httpx2", "httpcore2", "aiohttp", "selfhosted_core", "asyncio")


def config(chat_url: str = CHAT_URL, embed_url: str = EMBED_URL, **extra: Any) -> Config:
    return Config(endpoints=[chat_endpoint(chat_url, **extra), embedding_endpoint(embed_url)])


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(model="tiny", messages=user(), **fields)


def embedding() -> EmbeddingRequest:
    return EmbeddingRequest(model="minilm", input=["a text"])


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# --- reprs and dumps -------------------------------------------------------------------------


def test_repr_and_dumps_of_endpoint_and_config_hide_secrets() -> None:
    endpoints = config()
    endpoint = endpoints.endpoints[0]
    texts = {
        "repr(ModelEndpoint)": repr(endpoint),
        "str(ModelEndpoint)": str(endpoint),
        "ModelEndpoint.model_dump()": repr(endpoint.model_dump()),
        "repr(Config)": repr(endpoints),
        "str(Config)": str(endpoints),
        "Config.model_dump()": repr(endpoints.model_dump()),
        "Config.model_dump(mode='json')": json.dumps(endpoints.model_dump(mode="json")),
        "Config.model_dump_json()": endpoints.model_dump_json(),
    }
    for where, text in texts.items():
        assert_hidden(text, where)
    # Both fields are written, masked: hiding them is not the same as dropping them.
    dumped = json.loads(endpoints.model_dump_json())["endpoints"][0]
    assert dumped["api_key"] == "**********"
    assert dumped["headers"] == {HEADER_NAME: "**********"}


def test_repr_of_provider_hides_secrets() -> None:
    provider = Provider(config())
    assert_hidden(repr(provider), "repr(Provider)")
    assert_hidden(str(provider), "str(Provider)")
    assert "tiny" in repr(provider)


def refused_config() -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        Config(endpoints=[chat_endpoint(CHAT_URL, api_key=f"{KEY}\n{HEADER}")])
    assert "endpoints[0].api_key" in str(caught.value)
    return caught.value


def shown_text(error: BaseException) -> str:
    """What an error shows when printed or logged (a suppressed `__context__` is not shown)."""
    return f"{error} {error!r} {vars(error)} {''.join(traceback.format_exception(error))}"


def test_config_problems_never_quote_the_secrets() -> None:
    assert_hidden(shown_text(refused_config()), "the configuration error")


def test_config_problems_keep_no_chained_error_quoting_the_secrets() -> None:
    assert_hidden(error_text(refused_config()), "the configuration error's chain")


# --- the redaction itself --------------------------------------------------------------------


def test_endpoint_secrets_are_the_key_its_bearer_value_and_the_header_values() -> None:
    # Surrounding spaces are stripped by the config, as HTTP would (h11 refuses them, quoting).
    endpoint = ModelEndpoint(**chat_endpoint(CHAT_URL, headers={"X-A": f" {HEADER} "}))
    assert endpoint.headers["X-A"].get_secret_value() == HEADER
    assert set(endpoint_secrets(endpoint)) == {f"Bearer {KEY}", KEY, HEADER}
    assert endpoint_secrets(ModelEndpoint(url=CHAT_URL, id="tiny")) == ()


def test_short_header_values_are_not_secrets() -> None:
    # `X-Debug: 1` guards nothing; redacting every "1" would garble every message.
    endpoint = ModelEndpoint(url=CHAT_URL, id="tiny", headers={"X-Debug": "1"})
    assert endpoint_secrets(endpoint) == ()


@pytest.mark.parametrize(
    "key",
    [
        "x",
        "EMPTY",
        "empty",
        "ollama",
        "lm-studio",
        "LMStudio",
        "sk-no-key-required",
        "SK-No-Key-Required",
        "none",
        "not-needed",
        "sk-dummy",
        "1234567",
    ],
)
def test_placeholder_and_short_keys_are_not_secrets(key: str) -> None:
    # What every client of a keyless server sends is no secret, and redacting it garbles text.
    assert endpoint_secrets(ModelEndpoint(url=CHAT_URL, id="tiny", api_key=key)) == ()


@pytest.mark.parametrize("key", ["12345678", "sk-live-0123456789abcdef", "ollama-prod-7f3a"])
def test_a_key_of_eight_characters_that_is_no_placeholder_is_a_secret(key: str) -> None:
    endpoint = ModelEndpoint(url=CHAT_URL, id="tiny", api_key=key)
    assert set(endpoint_secrets(endpoint)) == {f"Bearer {key}", key}


def test_header_values_follow_the_same_rule_as_the_key() -> None:
    long_value = "tenant-0123456789"
    endpoint = ModelEndpoint(
        url=CHAT_URL,
        id="tiny",
        headers={
            "X-Debug": "1",
            "X-Api-Key": "EMPTY",
            "Authorization": "Bearer x",
            "X-Tenant": long_value,
            "X-Upstream-Authorization": "Bearer sk-live-0123456789abcdef",
        },
    )
    assert set(endpoint_secrets(endpoint)) == {long_value, "Bearer sk-live-0123456789abcdef"}
    quoted = json.dumps({"error": {"message": f"debug=1 key=EMPTY Bearer x tenant={long_value}"}})
    error = error_from_status(
        403,
        quoted.encode(),
        retry_after=None,
        model="tiny",
        endpoint="chat-a",
        secrets=endpoint_secrets(endpoint),
    )
    assert error.message == f"debug=1 key=EMPTY Bearer x tenant={REDACTED}"
    assert long_value not in f"{error.body} {error!r}"


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"error": {"message": f"bad key Bearer {KEY}, tenant {HEADER}"}}),
        json.dumps({"error": {"message": f"bad key {KEY}", "type": f"tenant {HEADER}"}}),
        json.dumps({"error": f"bad key Bearer {KEY} for {HEADER}"}),
        json.dumps({"message": f"bad key Bearer {KEY} for {HEADER}"}),
        json.dumps({"detail": [{"msg": f"bad key Bearer {KEY} for {HEADER}"}]}),
        json.dumps(
            {
                "error": {
                    "message": f"maximum context length exceeded for key {KEY} ({HEADER})",
                    "code": "context_length_exceeded",
                }
            }
        ),
        f"<html>401: Bearer {KEY} is not valid here (tenant {HEADER})</html>",
    ],
    ids=["openai", "in-type", "error-string", "message", "detail", "overflow", "plain-text"],
)
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422, 429, 500, 503])
def test_error_from_status_redacts_every_secret(status: int, body: str) -> None:
    endpoint = ModelEndpoint(**chat_endpoint(CHAT_URL))
    error = error_from_status(
        status,
        body.encode(),
        retry_after=None,
        model="tiny",
        endpoint="chat-a",
        secrets=endpoint_secrets(endpoint),
    )
    assert_hidden(error_text(error), f"HTTP {status} error")
    assert REDACTED in f"{error.message} {error.error_type}"


def test_secrets_are_redacted_as_json_escapes_them() -> None:
    key = 'sk-canary/7f3a"q'
    endpoint = ModelEndpoint(**chat_endpoint(CHAT_URL, api_key=key))
    escaped = json.dumps({"error": {"message": f"bad key {key}"}})  # the quote as \"
    slashed = escaped.replace("/", "\\/")  # and PHP's json_encode also writes / as \/
    for body in (escaped, slashed):
        error = error_from_status(
            401,
            body.encode(),
            retry_after=None,
            model="tiny",
            endpoint="chat-a",
            secrets=endpoint_secrets(endpoint),
        )
        assert "canary" not in error.body
        assert "canary" not in error.message


def test_an_excerpt_never_ends_in_half_a_secret() -> None:
    # The plain-text message is cut at 300 characters; the key straddles the cut.
    body = ("x" * 295 + f" Bearer {KEY} " + "y" * 100).encode()
    error = error_from_status(
        401, body, retry_after=None, model="tiny", endpoint="chat-a", secrets=(KEY,)
    )
    assert KEY[:5] not in f"{error.message} {error.body}"


@pytest.mark.parametrize(
    "event",
    [
        f"bad key Bearer {KEY} for {HEADER}",
        WireErrorDetail(message=f"bad key Bearer {KEY}", type=f"tenant {HEADER}", code=401),
    ],
    ids=["text", "detail"],
)
def test_error_from_event_redacts_every_secret(event: str | WireErrorDetail) -> None:
    endpoint = ModelEndpoint(**chat_endpoint(CHAT_URL))
    error = error_from_event(
        event, model="tiny", endpoint="chat-a", partial=None, secrets=endpoint_secrets(endpoint)
    )
    assert_hidden(error_text(error), "the stream's error event")
    assert REDACTED in error.message


def test_without_secrets_the_servers_text_is_kept_verbatim() -> None:
    body = json.dumps({"error": {"message": f"bad key {KEY}"}}).encode()
    error = error_from_status(401, body, retry_after=None, model="tiny", endpoint="chat-a")
    assert error.message == f"bad key {KEY}"
    assert redact(f"bad key {KEY}", ()) == f"bad key {KEY}"


def test_assembler_redacts_error_events_and_malformed_excerpts() -> None:
    assembler = Assembler(
        model="tiny",
        endpoint="chat-a",
        server=ServerKind.GENERIC,
        token_modifier=1.0,
        secrets=(f"Bearer {KEY}", KEY, HEADER),
    )
    event = json.dumps({"message": f"bad key Bearer {KEY}", "type": HEADER}).encode()
    with pytest.raises(APIStatusError) as event_error:
        assembler.feed_event(event, event="error")
    assert_hidden(error_text(event_error.value), "the error event")
    in_data = json.dumps({"error": {"message": f"bad key {KEY} for {HEADER}"}}).encode()
    with pytest.raises(APIStatusError) as data_error:
        assembler.feed_event(in_data)
    assert_hidden(error_text(data_error.value), "the error in a data event")
    with pytest.raises(ResponseError, match="malformed JSON") as malformed:
        assembler.feed_event(f"<html>Bearer {KEY} for {HEADER}</html>".encode())
    # The message quotes the reply, redacted. (Its chained pydantic error still quotes the
    # reply whole: see the report on `_parse`.)
    assert_hidden(f"{malformed.value} {malformed.value!r}", "the malformed-reply error")


# --- errors raised by a failing call ---------------------------------------------------------


@pytest.fixture(params=["sync", "async"])
async def echoing(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Driver, list[Any]]]:
    """A driver on a provider whose chat server quotes the credentials back in every error.

    The status comes from the request's first message: "400", "401", "500", or "stream"
    for a 200 stream that breaks off with an error event.
    """
    seen: list[httpx2.Request] = []

    def answer(
        method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        case = json.loads(body)["messages"][0]["content"]
        if case == "stream":
            return 200, {"content-type": "text/event-stream"}, echo_stream(headers)
        return int(case), {"content-type": "application/json"}, echo_error(headers)

    transport = mock_transport(answer, seen)
    async with Provider(config(), transport=transport, async_transport=transport) as provider:
        yield Driver(request.param, provider), seen


@pytest.mark.parametrize("case", ["400", "401", "500", "stream"])
async def test_provider_errors_quoting_the_secrets_are_redacted(
    echoing: tuple[Driver, list[httpx2.Request]], case: str
) -> None:
    """A server echoing the key and header in its error body or error event: redacted."""
    driver, seen = echoing
    request = ChatRequest(model="tiny", messages=user(case))
    errors: list[APIStatusError] = []
    if case != "stream":  # the error event only comes in a stream
        with pytest.raises(APIStatusError) as answered:
            await driver.chat(request)
        errors.append(answered.value)
    with pytest.raises(APIStatusError) as streamed:
        await driver.stream(request)
    errors.append(streamed.value)
    assert_sent(seen[-1].headers)
    for error in errors:
        assert error.model == "tiny"
        assert_hidden(error_text(error), "the error")
        assert REDACTED in error.message


def test_no_api_key_is_left_for_httpx_to_refuse() -> None:
    """A key httpx would refuse (and quote) cannot be configured: it is trimmed or refused.

    So the `LocalProtocolError` case is reachable only through header values (next test).
    """
    trimmed = ModelEndpoint(url=CHAT_URL, id="tiny", api_key=f"  {KEY}\n").api_key
    assert trimmed is not None
    assert trimmed.get_secret_value() == KEY
    for unsendable in (f"{KEY}\r\nX-Evil: 1", f"{KEY}\x00", f"{KEY}é"):
        with pytest.raises(ConfigurationError) as caught:
            ModelEndpoint(url=CHAT_URL, id="tiny", api_key=unsendable)
        assert_hidden(shown_text(caught.value), "the refused key's error")


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers: requests get as far as sending."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_transport_errors_hide_secrets(silent_port: int, mode: str) -> None:
    unreachable = Config(
        endpoints=[
            chat_endpoint(f"http://127.0.0.1:{closed_port()}"),
            chat_endpoint(f"http://127.0.0.1:{silent_port}", id="slow", label="chat-s"),
        ]
    )
    async with Provider(unreachable) as provider:
        driver = Driver(mode, provider)
        with pytest.raises(EndpointConnectionError) as refused:
            await driver.chat(chat())
        with pytest.raises(EndpointTimeoutError) as timed_out:
            await driver.chat(ChatRequest(model="slow", messages=user(), timeout=0.2))
    for error in (refused.value, timed_out.value):
        assert_hidden(error_text(error), type(error).__name__)


def test_a_header_value_httpx_refuses_leaks_nowhere(
    silent_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    try:
        padded = Config(
            endpoints=[
                chat_endpoint(
                    f"http://127.0.0.1:{silent_port}", headers={HEADER_NAME: f" {HEADER}"}
                )
            ]
        )
    except ConfigurationError as refused:  # one way to fix it: refuse such values
        assert_hidden(error_text(refused), "the refused header's error")
        return
    with Provider(padded) as provider, pytest.raises(SelfHostedError) as caught:
        provider.chat(chat(timeout=5))
    assert_hidden(error_text(caught.value), "the error and its chain")
    assert_hidden(caplog.text, "the log")


@pytest.mark.parametrize("call", ["embed", "chat"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_malformed_reply_quoting_the_secrets_does_not_repeat_them(
    mode: str, call: str
) -> None:
    # Some gateways answer 200 with an error object or page, which is then a malformed reply.
    # (Short, so pydantic's excerpt of the input does not cut the key off.)
    def answer(
        method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        refusal = {"error": f"no {headers['authorization']}"}
        if path.endswith("/embeddings"):
            return 200, {"content-type": "application/json"}, json.dumps(refusal).encode()
        return 200, {"content-type": "text/html"}, f"<p>{refusal}</p>".encode()

    transport = mock_transport(answer)
    async with Provider(config(), transport=transport, async_transport=transport) as provider:
        driver = Driver(mode, provider)
        with pytest.raises(ResponseError) as caught:
            await (driver.embed(embedding()) if call == "embed" else driver.chat(chat()))
    assert_hidden(error_text(caught.value), "the malformed-reply error")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_health_detail_quoting_the_secrets_is_redacted(mode: str) -> None:
    def loading(
        method: str, path: str, headers: Any, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        return 503, {"content-type": "application/json"}, echo_error(headers)

    transport = mock_transport(loading)
    async with Provider(config(), transport=transport, async_transport=transport) as provider:
        report = await Driver(mode, provider).health()
    details = [entry.detail or "" for entry in report.endpoints]
    assert all(details)
    assert_hidden(repr(report), "the health report")


# --- logs ------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[EchoServer]:
    yield from echo_server(answer_ok)


@pytest.fixture
def refusing() -> Iterator[EchoServer]:
    yield from echo_server(answer_echo(401))


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_logs_at_debug_never_show_secrets(
    server: EchoServer, refusing: EchoServer, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    working = Config(
        endpoints=[
            chat_endpoint(server.url),
            embedding_endpoint(server.url),
            chat_endpoint(refusing.url, id="refused", label="chat-r"),
            chat_endpoint(f"http://127.0.0.1:{closed_port()}", id="gone", label="chat-g"),
        ]
    )
    # Async calls go through aiohttp, which logs no requests; httpx2's own transport does.
    transport = httpx2.AsyncHTTPTransport() if mode == "async" else None
    async with Provider(working, async_transport=transport) as provider:
        driver = Driver(mode, provider)
        assert (await driver.chat(chat())).content == "Hi."
        _, final = await driver.stream(chat())
        assert final.content == "Hi."
        assert (await driver.embed(embedding())).embeddings == [[0.6, 0.8]]
        await driver.health()
        for model in ("refused", "gone"):
            with pytest.raises(SelfHostedError):
                await driver.chat(ChatRequest(model=model, messages=user()))
    assert_sent(server.seen[0])
    assert_sent(refusing.seen[0])
    # The capture worked: the HTTP layer logged at DEBUG.
    assert "httpcore2" in {record.name.split(".")[0] for record in caplog.records}
    for record in caplog.records:
        assert_hidden(record.getMessage(), f"{record.name}'s message")
        assert_hidden(repr(record.args), f"{record.name}'s args")
    assert_hidden(caplog.text, "the formatted log")
