"""The `selfhosted_core` logger: silent by default; attempts, resends, ejections and restores."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest

from selfhosted_core import ChatRequest, Config, EndpointConnectionError, Message, Provider
from tests.core import payloads
from tests.driver import Driver
from tests.secrets_canary import KEY, assert_hidden

PROMPT = "the secret prompt text 91c2"
Answer = Callable[[httpx2.Request], httpx2.Response]


def ok(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, content=payloads.VLLM_REASONING)


def refused(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)


def echoing(request: httpx2.Request) -> httpx2.Response:
    """A 503 quoting the request's key and prompt back, as a careless proxy does."""
    echoed = f"no capacity for {request.headers['authorization']} asking {PROMPT}"
    return httpx2.Response(503, json={"error": {"message": echoed}})


class Hosts:
    """Answers per host from a script; the last answer repeats."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Answer]] = {}

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        answers = self.answers.get(request.url.host, [ok])
        return (answers.pop(0) if len(answers) > 1 else answers[0])(request)


@pytest.fixture
def hosts() -> Hosts:
    return Hosts()


def provider_for(hosts: Hosts, **routing: object) -> Provider:
    transport = httpx2.MockTransport(hosts.handle)
    endpoints = [
        {"url": f"http://{host}.test:8080", "id": "tiny", "label": host, "api_key": KEY}
        for host in ("gpu-1", "gpu-2")
    ]
    config = Config(endpoints=endpoints, routing={"backoff": 5.0, **routing})
    return Provider(config, transport=transport, async_transport=transport)


@pytest.fixture(params=["sync", "async"])
async def driver(request: pytest.FixtureRequest, hosts: Hosts) -> AsyncIterator[Driver]:
    async with provider_for(hosts) as provider:
        yield Driver(request.param, provider)


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(model="tiny", messages=[Message(role="user", content=PROMPT)], **fields)


def lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == "selfhosted_core"
    ]


async def test_each_attempt_is_one_debug_line_and_a_resend_one_warning(
    driver: Driver, hosts: Hosts, caplog: pytest.LogCaptureFixture
) -> None:
    hosts.answers["gpu-1.test"] = [refused]
    caplog.set_level(logging.DEBUG, logger="selfhosted_core")
    answer = await driver.chat(chat(endpoint="gpu-1"))
    assert answer.endpoint == "gpu-2"
    logged = lines(caplog)
    assert [level for level, _ in logged] == [logging.DEBUG, logging.WARNING, logging.DEBUG]
    assert logged[0][1].startswith("tiny: attempt 1 on gpu-1: EndpointConnectionError in ")
    assert logged[0][1].endswith(" ms")
    assert logged[1][1] == (
        "tiny: attempt 1 on gpu-1 failed (EndpointConnectionError); sending again"
    )
    assert logged[2][1].startswith("tiny: attempt 2 on gpu-2: ok in ")


async def test_a_status_error_is_logged_with_its_status(
    driver: Driver, hosts: Hosts, caplog: pytest.LogCaptureFixture
) -> None:
    hosts.answers["gpu-1.test"] = [echoing]
    hosts.answers["gpu-2.test"] = [echoing]
    caplog.set_level(logging.DEBUG, logger="selfhosted_core")
    with pytest.raises(Exception, match="no capacity"):
        await driver.chat(chat(endpoint="gpu-1", max_attempts=2))
    messages = [message for _, message in lines(caplog)]
    assert messages[0].startswith("tiny: attempt 1 on gpu-1: ServerError 503 in ")
    assert messages[-1].startswith("tiny: attempt 2 on gpu-2: ServerError 503 in ")


async def test_no_log_line_shows_a_key_or_the_conversation(
    driver: Driver, hosts: Hosts, caplog: pytest.LogCaptureFixture
) -> None:
    hosts.answers["gpu-1.test"] = [echoing]
    hosts.answers["gpu-2.test"] = [echoing]
    caplog.set_level(logging.DEBUG)
    with pytest.raises(Exception, match="no capacity"):
        await driver.chat(chat(max_attempts=2))
    assert caplog.records
    assert_hidden(caplog.text, "the log")
    assert PROMPT not in caplog.text


def test_an_ejection_and_the_restore_are_warnings_naming_the_endpoint(
    hosts: Hosts, caplog: pytest.LogCaptureFixture
) -> None:
    hosts.answers["gpu-1.test"] = [refused, ok]
    caplog.set_level(logging.WARNING, logger="selfhosted_core")
    with provider_for(hosts, failure_threshold=1, cooldown=0.01) as provider:
        with pytest.raises(EndpointConnectionError):
            provider.chat(chat(endpoint="gpu-1", strict_endpoint=True, max_attempts=1))
        time.sleep(0.02)  # the cooldown (+20% at most): the next request probes it
        assert provider.chat(chat(endpoint="gpu-1", strict_endpoint=True)).endpoint == "gpu-1"
    messages = [message for _, message in lines(caplog)]
    assert len(messages) == 2
    assert messages[0].startswith("endpoint gpu-1 ejected (circuit open; failures in a row: 1)")
    assert messages[1] == "endpoint gpu-1 restored (circuit closed)"
