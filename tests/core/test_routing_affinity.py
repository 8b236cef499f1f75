"""The affinity strategy: where a key goes within its load bound, and what it counts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx2
import pytest

from selfhosted_core import (
    Capability,
    ChatRequest,
    Config,
    ConfigurationError,
    InvalidRequestError,
    Message,
    Provider,
    RoutingStrategy,
    routing,
)
from selfhosted_core._affinity import Rendezvous, named_key
from selfhosted_core.routing import Pick, Router
from tests.core import payloads

CHAT = frozenset({Capability.CHAT})
HOSTS = ["gpu-0.test", "gpu-1.test", "gpu-2.test"]


def config(routing: dict[str, Any] | None = None, *, weights: list[float] | None = None) -> Config:
    weights = weights or [1.0] * len(HOSTS)
    return Config(
        endpoints=[
            {"url": f"http://{host}:8080", "id": "tiny", "label": host, "weight": weight}
            for host, weight in zip(HOSTS, weights, strict=True)
        ],
        routing={"strategy": "affinity", **(routing or {})},
    )


def home_of(key: bytes, *, weights: list[float] | None = None) -> list[int]:
    """The key's rendezvous order over the three replicas, as the router computes it."""
    urls = [f"http://{host}:8080/v1" for host in HOSTS]
    return Rendezvous(urls, weights or [1.0] * len(HOSTS)).order(key)


def keyed(router: Router, key: bytes, *, first: bool = True) -> Pick:
    """Pick for a request with `key`, as a `Call` asks for it."""
    return router.pick("tiny", CHAT, affinity=router.affinity("tiny", key), first=first)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_key_goes_to_its_first_replica_every_time() -> None:
    router = Router(config())
    key = named_key("session-1")
    for _ in range(5):
        slot = keyed(router, key).slot
        router.succeeded(slot, latency=0.1)
        assert slot == home_of(key)[0]
    stats = router.stats()
    assert [entry.affinity_hits for entry in stats] == [
        5 if slot == home_of(key)[0] else 0 for slot in range(3)
    ]
    assert sum(entry.affinity_spills for entry in stats) == 0


def test_an_overloaded_replica_spills_to_the_next_and_the_key_follows_it() -> None:
    router = Router(config({"load_factor": 1.0}))
    key = named_key("session-1")
    first, second, _ = home_of(key)
    # With three replicas and factor 1, a replica may hold ceil((load + 1) / 3) requests.
    held = keyed(router, key).slot
    assert held == first
    spilled = keyed(router, key).slot
    assert spilled == second
    assert router.stats()[first].affinity_spills == 1
    router.succeeded(held, latency=0.1)
    router.succeeded(spilled, latency=0.1)
    # The spill prefilled the prefix on the second replica: the key stays there.
    assert keyed(router, key).slot == second
    assert router.stats()[second].affinity_hits == 1


def test_a_higher_load_factor_keeps_more_requests_on_the_first_replica() -> None:
    router = Router(config({"load_factor": 2.0}))
    key = named_key("session-1")
    slots = [keyed(router, key).slot for _ in range(4)]
    # ceil(2 * (n + 1) / 3) for n = 0..3 in flight: 1, 2, 2, 3 -> the third spills, and the
    # fourth follows it.
    first, second, _ = home_of(key)
    assert slots == [first, first, second, second]


def test_a_new_key_takes_the_least_loaded_replica() -> None:
    router = Router(config())
    first, second, third = home_of(named_key("session-1"))
    router.pick("tiny", CHAT, prefer=first, strict=True)
    router.pick("tiny", CHAT, prefer=second, strict=True)
    # Nothing is cached for a key never seen: its home's one request in flight outweighs it.
    assert keyed(router, named_key("session-1")).slot == third
    assert router.stats()[first].affinity_spills == 1


def test_a_new_key_among_equally_loaded_replicas_goes_home() -> None:
    router = Router(config())
    for slot in range(3):
        router.pick("tiny", CHAT, prefer=slot, strict=True)
    key = named_key("session-1")
    assert keyed(router, key).slot == home_of(key)[0]


def test_a_forgotten_key_is_placed_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routing, "_PLACED_KEYS", 1)
    router = Router(config({"load_factor": 1.0}))
    key = named_key("session-1")
    first, second, _ = home_of(key)
    keyed(router, key)
    assert keyed(router, key).slot == second  # spilled: the key now lives on `second`
    router.succeeded(first, latency=0.1)
    router.succeeded(second, latency=0.1)
    other = keyed(router, named_key("session-2"), first=False).slot  # pushes `session-1` out
    router.succeeded(other, latency=0.1)
    assert keyed(router, key).slot == first


def test_an_ejected_first_replica_hands_its_keys_to_the_second() -> None:
    router = Router(config({"failure_threshold": 1}))
    key = named_key("session-1")
    first, second, _ = home_of(key)
    router.failed(router.pick("tiny", CHAT, prefer=first, strict=True).slot, OSError("down"))
    assert keyed(router, key).slot == second
    assert router.stats()[first].affinity_spills == 1


def test_a_retry_is_not_counted_as_a_hit_or_a_spill() -> None:
    router = Router(config())
    key = named_key("session-1")
    keyed(router, key, first=False)
    assert sum(entry.affinity_hits + entry.affinity_spills for entry in router.stats()) == 0


def test_a_fresh_server_report_counts_as_its_load_and_a_stale_one_does_not() -> None:
    clock = Clock()
    router = Router(config({"load_factor": 1.0, "load_signals": "auto"}), clock=clock)
    key = named_key("session-1")
    first, second, _ = home_of(key)
    router.observed(first, 5)  # busy with other processes' requests
    assert router.stats()[first].server_load == 5
    assert keyed(router, key).slot == second
    clock.now += 4 * 0.5 + 0.01  # older than four load intervals
    assert router.stats()[first].server_load is None
    assert keyed(router, key).slot == first


def test_a_report_counts_under_least_in_flight_too() -> None:
    router = Router(config({"strategy": "least_in_flight", "load_signals": "auto"}))
    router.observed(0, 3)
    router.observed(1, 1)
    assert router.pick("tiny", CHAT).slot == 2
    assert router.pick("tiny", CHAT).slot == 1


def test_reports_are_ignored_when_load_signals_are_off() -> None:
    router = Router(config({"strategy": "least_in_flight"}))
    router.observed(0, 3)
    assert router.stats()[0].server_load is None
    assert router.pick("tiny", CHAT).slot == 0


def test_weights_scale_each_replicas_bound() -> None:
    weights = [1.0, 1.0, 4.0]
    router = Router(config({"load_factor": 1.0}, weights=weights))
    key = next(
        k for k in (named_key(f"s{n}") for n in range(100)) if home_of(k, weights=weights)[0] == 2
    )
    # Weight 4 of 6: ceil(4 * (n + 1) / 6) requests for n in flight: 1, 2, 2, 3 ...
    slots = [keyed(router, key).slot for _ in range(3)]
    assert slots[:2] == [2, 2]
    assert slots[2] != 2


def test_a_per_model_choice_replaces_the_policy() -> None:
    cfg = Config(
        endpoints=[
            {"url": "http://a.test:8080", "id": "chat"},
            {"url": "http://b.test:8080", "id": "chat"},
            {"url": "http://c.test:8080", "id": "other"},
        ],
        routing={"load_factor": 1.25, "models": {"chat": {"strategy": "affinity"}}},
    )
    router = Router(cfg)
    assert router.policy("chat").strategy is RoutingStrategy.AFFINITY
    assert router.policy("chat").load_factor == 1.25
    assert router.policy("other").strategy is RoutingStrategy.LEAST_IN_FLIGHT


def test_a_per_model_choice_must_name_a_configured_model() -> None:
    with pytest.raises(ConfigurationError, match=r"routing\.models\.ghost: names no configured"):
        Config(
            endpoints=[{"url": "http://a.test:8080", "id": "chat"}],
            routing={"models": {"ghost": {"strategy": "affinity"}}},
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("load_factor", 0.5, "must be a finite number >= 1"),
        ("affinity_prefix_chars", 0, "must be an integer >= 1"),
        ("load_interval", 0.01, "must be a finite number of seconds >= 0.05"),
        ("strategy", "random", "least_in_flight"),
    ],
)
def test_bad_routing_choices_are_refused_by_name(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"routing\.{field}: .*{message}"):
        config({field: value})


# Provider level: the key comes from the request, and answers report their cached tokens.


def recording(hosts: list[str]) -> httpx2.MockTransport:
    def handle(request: httpx2.Request) -> httpx2.Response:
        hosts.append(request.url.host)
        return httpx2.Response(
            200,
            content=payloads.LLAMA_OBJECT_ARGUMENTS,
            headers={"content-type": "application/json"},
        )

    return httpx2.MockTransport(handle)


def turns(system: str, count: int) -> list[list[Message]]:
    messages = [Message(role="system", content=system)]
    conversation = []
    for turn in range(count):
        messages = [*messages, Message(role="user", content=f"question {turn}")]
        conversation.append(messages)
        messages = [*messages, Message(role="assistant", content=f"answer {turn}")]
    return conversation


def test_every_turn_of_a_conversation_reaches_one_replica() -> None:
    hosts: list[str] = []
    with Provider(config(), transport=recording(hosts)) as provider:
        for system in ("You are A.", "You are B.", "You are C.", "You are D."):
            for messages in turns(system, 4):
                provider.chat(ChatRequest(model="tiny", messages=messages))
    sessions = [hosts[index : index + 4] for index in range(0, 16, 4)]
    assert all(len(set(session)) == 1 for session in sessions), sessions


def test_least_in_flight_ignores_the_key() -> None:
    hosts: list[str] = []
    cfg = config({"strategy": "least_in_flight"})
    with Provider(cfg, transport=recording(hosts)) as provider:
        for _ in range(3):
            provider.chat(ChatRequest(model="tiny", messages=turns("A", 1)[0], affinity="s"))
    assert hosts == HOSTS


def test_a_named_replica_wins_over_the_key() -> None:
    hosts: list[str] = []
    with Provider(config(), transport=recording(hosts)) as provider:
        for host in HOSTS:
            request = ChatRequest(
                model="tiny", messages=turns("A", 1)[0], affinity="s", endpoint=host
            )
            provider.chat(request)
    assert hosts == HOSTS


def test_stats_count_the_prompt_tokens_the_server_took_from_its_cache() -> None:
    hosts: list[str] = []
    with Provider(config(), transport=recording(hosts)) as provider:
        provider.chat(ChatRequest(model="tiny", messages=turns("A", 1)[0], affinity="s"))
        provider.chat(ChatRequest(model="tiny", messages=turns("A", 1)[0], affinity="s"))
        served = next(entry for entry in provider.stats() if entry.endpoint == hosts[0])
    # LLAMA_OBJECT_ARGUMENTS: prompt_tokens 40, prompt_tokens_details.cached_tokens 32.
    assert (served.prompt_tokens, served.cached_prompt_tokens, served.affinity_hits) == (80, 64, 2)


def test_a_stream_reports_its_cached_tokens_too() -> None:
    # The llama-server stream's closing chunk, its cache reuse in `timings.cache_n`.
    body = payloads.LLAMA_STREAM.replace(b'"cache_n":0', b'"cache_n":6')

    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=body, headers={"content-type": "text/event-stream"})

    with Provider(config(), transport=httpx2.MockTransport(handle)) as provider:
        with provider.stream(ChatRequest(model="tiny", messages=turns("A", 1)[0])) as stream:
            final = stream.final_response()
        served = next(entry for entry in provider.stats() if entry.endpoint == final.endpoint)
    assert (served.prompt_tokens, served.cached_prompt_tokens, served.affinity_hits) == (9, 6, 1)


def test_an_affinity_that_is_not_a_string_is_refused_by_name() -> None:
    with (
        Provider(config(), transport=recording([])) as provider,
        pytest.raises(InvalidRequestError, match="affinity must be a non-empty string"),
    ):
        provider.chat(ChatRequest(model="tiny", messages=turns("A", 1)[0], affinity=""))


def sequence_of(run: Callable[[Provider, ChatRequest], Any]) -> list[str]:
    hosts: list[str] = []
    async_hosts: list[str] = []

    async def ahandle(request: httpx2.Request) -> httpx2.Response:
        async_hosts.append(request.url.host)
        return httpx2.Response(
            200,
            content=payloads.LLAMA_OBJECT_ARGUMENTS,
            headers={"content-type": "application/json"},
        )

    provider = Provider(
        config(), transport=recording(hosts), async_transport=httpx2.MockTransport(ahandle)
    )
    for system in ("A", "B", "C", "D", "E", "F"):
        for messages in turns(system, 2):
            run(provider, ChatRequest(model="tiny", messages=messages))
    provider.close()
    return hosts or async_hosts


def test_sync_and_async_calls_pick_the_same_replicas() -> None:
    sync = sequence_of(lambda provider, request: provider.chat(request))
    asynchronous = sequence_of(lambda provider, request: asyncio.run(provider.achat(request)))
    assert sync == asynchronous
    assert len(set(sync)) > 1, "six conversations should not all share one replica"


def test_the_request_payload_does_not_carry_the_affinity() -> None:
    seen: list[dict[str, Any]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(json.loads(request.content))
        return httpx2.Response(
            200,
            content=payloads.LLAMA_OBJECT_ARGUMENTS,
            headers={"content-type": "application/json"},
        )

    with Provider(config(), transport=httpx2.MockTransport(handle)) as provider:
        provider.chat(ChatRequest(model="tiny", messages=turns("A", 1)[0], affinity="secret-ish"))
    assert "affinity" not in seen[0]
    assert "secret-ish" not in json.dumps(seen[0])
