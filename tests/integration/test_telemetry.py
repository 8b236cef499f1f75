"""OpenTelemetry spans and metrics of calls to real llama-servers, with the real SDK."""

from __future__ import annotations

from typing import Any

import pytest

from selfhosted_core import ChatRequest, Config, EmbeddingRequest, Message, Provider
from selfhosted_core import _telemetry as names
from selfhosted_core.local import LlamaServer
from tests import faults
from tests.driver import Driver
from tests.faults import FaultProxy
from tests.integration.conftest import API_KEY
from tests.telemetry import Recorded, attributes, events, installed, text_of

PROMPT = "Tell me about the secret lighthouse 5e2a."


@pytest.fixture
def recorded() -> Recorded:
    return installed()


def chat(**fields: Any) -> ChatRequest:
    return ChatRequest(
        model="tiny", messages=[Message(role="user", content=PROMPT)], max_tokens=8, **fields
    )


def served_by(server: LlamaServer, label: str) -> dict[str, Any]:
    return {
        names.PROVIDER: "selfhosted",
        names.SERVER_ADDRESS: "127.0.0.1",
        names.SERVER_PORT: server.port,
        names.ENDPOINT: label,
        names.ATTEMPTS: 1,
    }


def chat_attributes(found: dict[str, Any]) -> dict[str, Any]:
    """The attributes whose values the model decides, checked for their shape and removed."""
    assert isinstance(found.pop(names.RESPONSE_MODEL), str)
    assert found.pop(names.INPUT_TOKENS) > 0
    assert found.pop(names.OUTPUT_TOKENS) > 0
    assert found.pop(names.CACHED_INPUT_TOKENS) >= 0
    assert found.pop(names.FINISH_REASONS)[0] in ("stop", "length")
    return found


async def test_a_chat_on_a_real_server_is_one_span_with_exactly_the_conventions_attributes(
    driver: Driver, recorded: Recorded, chat_server: LlamaServer
) -> None:
    await driver.chat(chat(temperature=0.0))
    [span] = recorded.finished()
    assert span.name == "chat tiny"
    assert chat_attributes(attributes(span)) == {
        **served_by(chat_server, "local-chat"),
        names.OPERATION: "chat",
        names.REQUEST_MODEL: "tiny",
        names.REQUEST_MAX_TOKENS: 8,
        names.REQUEST_TEMPERATURE: 0.0,
        names.SERVER: "llama.cpp",
    }
    assert [e[names.ATTEMPT_OUTCOME] for _, e in events(span)] == ["ok"]
    [duration] = recorded.points()[names.DURATION]
    assert dict(duration.attributes)[names.SERVER_PORT] == chat_server.port


async def test_a_stream_on_a_real_server_has_its_time_to_first_chunk(
    driver: Driver, recorded: Recorded, chat_server: LlamaServer
) -> None:
    await driver.stream(chat())
    [span] = recorded.finished()
    found = attributes(span)
    assert found.pop(names.FIRST_CHUNK) > 0
    assert chat_attributes(found) == {
        **served_by(chat_server, "local-chat"),
        names.OPERATION: "chat",
        names.REQUEST_MODEL: "tiny",
        names.REQUEST_MAX_TOKENS: 8,
        names.SERVER: "llama.cpp",
    }
    assert len(recorded.points()[names.TIME_TO_FIRST_CHUNK]) == 1


async def test_embeddings_on_a_real_server_are_one_span(
    driver: Driver, recorded: Recorded, embedding_server: LlamaServer
) -> None:
    await driver.embed(EmbeddingRequest(model="minilm", input=["a lighthouse", "a harbour"]))
    [span] = recorded.finished()
    found = attributes(span)
    assert found.pop(names.INPUT_TOKENS) > 0
    assert found == {
        **served_by(embedding_server, f"minilm@127.0.0.1:{embedding_server.port}"),
        names.OPERATION: "embeddings",
        names.REQUEST_MODEL: "minilm",
        names.RESPONSE_MODEL: found[names.RESPONSE_MODEL],
    }


async def test_a_failover_between_real_replicas_shows_its_attempts_as_events(
    mode: str, recorded: Recorded, chat_proxy: FaultProxy, chat_server: LlamaServer
) -> None:
    chat_proxy.inject(faults.DROP, times=None)
    config = Config(
        endpoints=[
            {"url": url, "id": "tiny", "label": label, "api_key": API_KEY, "weight": weight}
            for url, label, weight in (
                (chat_proxy.url, "dropping", 2.0),
                (chat_server.url, "direct", 1.0),
            )
        ]
    )
    async with Provider(config) as provider:
        answer = await Driver(mode, provider).chat(chat())
    assert answer.endpoint == "direct"
    [span] = recorded.finished()
    outcomes = [(e[names.ENDPOINT], e[names.ATTEMPT_OUTCOME]) for _, e in events(span)]
    # A dropped connection is first taken for a stale pooled one, and sent once more at once.
    assert outcomes[-1] == ("direct", "ok")
    assert {outcome for _, outcome in outcomes[:-1]} == {"EndpointConnectionError"}
    assert {endpoint for endpoint, _ in outcomes[:-1]} == {"dropping"}
    found = attributes(span)
    assert (found[names.ENDPOINT], found[names.ATTEMPTS]) == ("direct", len(outcomes))
    for secret in (API_KEY, PROMPT):
        assert secret not in text_of(span)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)
