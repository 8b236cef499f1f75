"""Affinity routing on two real llama-servers: a session stays on its replica and hits its cache;
the servers' own load is read from `/metrics` and from `/slots`."""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import httpx2
import pytest

from selfhosted_core import ChatRequest, Message, Provider
from selfhosted_core._affinity import named_key, prefix_key
from selfhosted_core._load import Load, from_metrics, from_slots
from selfhosted_core.local import LlamaServer
from tests.integration.conftest import affinity_config, home_label

SESSIONS = 6
TURNS = 3
FILLER = "Answer in one short sentence and stay polite. " * 12


def system_prompt(session: int) -> str:
    return f"You are assistant number {session}. {FILLER}"


def test_each_sessions_turns_stay_on_its_replica_and_reuse_its_prompt_cache(
    affinity_replicas: tuple[LlamaServer, LlamaServer],
) -> None:
    config = affinity_config(affinity_replicas)
    histories = {s: [Message(role="system", content=system_prompt(s))] for s in range(SESSIONS)}
    served: dict[int, list[str]] = defaultdict(list)
    cached: dict[int, list[int]] = defaultdict(list)
    with Provider(config) as provider:
        # Turn by turn across the sessions, as interleaved users would send them.
        for turn in range(TURNS):
            for session, history in histories.items():
                history.append(Message(role="user", content=f"Question {turn} of {session}?"))
                answer = provider.chat(ChatRequest(model="tiny", messages=history, max_tokens=4))
                assert answer.usage is not None
                served[session].append(answer.endpoint)
                cached[session].append(answer.usage.cached_prompt_tokens or 0)
                history.append(Message(role="assistant", content=answer.content or ""))
        stats = {entry.endpoint: entry for entry in provider.stats()}
    for session in range(SESSIONS):
        key = prefix_key(histories[session][:2], [], limit=config.routing.affinity_prefix_chars)
        assert served[session] == [home_label(config, key)] * TURNS, served
        # Each later turn starts with the whole earlier conversation, which the replica holds.
        assert all(tokens > 0 for tokens in cached[session][1:]), cached
    assert sum(entry.affinity_hits for entry in stats.values()) == SESSIONS * TURNS
    assert sum(entry.affinity_spills for entry in stats.values()) == 0
    assert sum(entry.cached_prompt_tokens for entry in stats.values()) == sum(
        sum(tokens) for tokens in cached.values()
    )
    for entry in stats.values():
        if entry.requests:
            assert 0 < entry.cached_prompt_tokens < entry.prompt_tokens


async def test_a_named_session_streams_on_one_replica_sync_and_async(
    affinity_replicas: tuple[LlamaServer, LlamaServer],
) -> None:
    config = affinity_config(affinity_replicas)
    expected = home_label(config, named_key("user-42"))
    async with Provider(config) as provider:
        endpoints = []
        for number in range(3):
            request = ChatRequest(
                model="tiny",
                messages=[Message(role="user", content=f"Topic {number}: say something.")],
                max_tokens=4,
                affinity="user-42",
            )
            with provider.stream(request) as stream:
                endpoints.append(stream.final_response().endpoint)
            async with provider.astream(request) as astream:
                endpoints.append((await astream.final_response()).endpoint)
    assert endpoints == [expected] * 6


def test_the_real_servers_load_reads_as_the_parsers_expect(
    affinity_replicas: tuple[LlamaServer, LlamaServer],
) -> None:
    with_metrics, without = affinity_replicas
    metrics = httpx2.get(f"{with_metrics.url}/metrics", timeout=10)
    assert metrics.status_code == 200
    assert from_metrics(metrics.text) == Load(0, 0)
    assert httpx2.get(f"{without.url}/metrics", timeout=10).status_code == 501
    slots = httpx2.get(f"{without.url}/slots", timeout=10)
    assert from_slots(slots.content) == Load(0, None)


@pytest.mark.timeout(60)
def test_load_signals_see_a_request_running_on_the_server(
    affinity_replicas: tuple[LlamaServer, LlamaServer],
) -> None:
    config = affinity_config(affinity_replicas, load_signals="auto", load_interval=0.05)
    with Provider(config) as provider:
        provider.chat(ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")]))
        # A reading taken while that request still ran says 1: the idle ones follow it.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and [entry.server_load for entry in provider.stats()] != [
            0,
            0,
        ]:
            time.sleep(0.02)
        assert [entry.server_load for entry in provider.stats()] == [0, 0]
        # A long generation on each replica, sent by another client: another process's load.
        seen: dict[str, int] = defaultdict(int)
        done = threading.Event()

        def generate(server: LlamaServer) -> None:
            # Long generations, one after another, until both counts were seen (or 30 s).
            deadline = time.monotonic() + 30
            while not done.is_set() and time.monotonic() < deadline:
                httpx2.post(
                    f"{server.url}/v1/chat/completions",
                    json={
                        "model": "tiny",
                        "messages": [{"role": "user", "content": "Go on."}],
                        "max_tokens": 1800,
                        "ignore_eos": True,
                    },
                    timeout=60,
                )

        workers = [threading.Thread(target=generate, args=(s,)) for s in affinity_replicas]
        for worker in workers:
            worker.start()
        try:
            while any(worker.is_alive() for worker in workers) and not done.is_set():
                for entry in provider.stats():
                    seen[entry.endpoint] = max(seen[entry.endpoint], entry.server_load or 0)
                if all(seen[label] >= 1 for label in ("replica-a", "replica-b")):
                    done.set()
                time.sleep(0.01)
        finally:
            done.set()
            for worker in workers:
                worker.join()
    assert seen["replica-a"] >= 1, "read from llamacpp:requests_processing"
    assert seen["replica-b"] >= 1, "read from the busy entries of /slots"
