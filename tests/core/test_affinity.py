"""Affinity keys and rendezvous order: the same in every process, and stable as replicas change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from selfhosted_core import ChatRequest, Message, TextPart, Tool
from selfhosted_core._affinity import Rendezvous, named_key, prefix_key, request_key

URLS = [f"http://gpu-{n}.test:8080/v1" for n in range(4)]
KEYS = [named_key(f"session-{n}") for n in range(2000)]

_ORDERS_IN_A_CHILD = """
import json, sys
from selfhosted_core._affinity import Rendezvous, named_key, prefix_key
from selfhosted_core import Message
urls = json.loads(sys.argv[1])
ring = Rendezvous(urls, [1.0] * len(urls))
named = [ring.order(named_key(f"session-{n}")) for n in range(50)]
prefixed = [
    ring.order(prefix_key([Message(role="system", content=f"You are agent {n}.")], [], limit=64))
    for n in range(50)
]
print(json.dumps([named, prefixed]))
"""


def orders_here(urls: list[str]) -> list[list[list[int]]]:
    ring = Rendezvous(urls, [1.0] * len(urls))
    named = [ring.order(named_key(f"session-{n}")) for n in range(50)]
    prefixed = [
        ring.order(
            prefix_key([Message(role="system", content=f"You are agent {n}.")], [], limit=64)
        )
        for n in range(50)
    ]
    return [named, prefixed]


@pytest.mark.parametrize("seed", ["0", "1", "12345"])
def test_the_order_is_the_same_in_another_process_whatever_its_hash_seed(seed: str) -> None:
    child = subprocess.run(
        [sys.executable, "-c", _ORDERS_IN_A_CHILD, json.dumps(URLS)],
        env={**os.environ, "PYTHONHASHSEED": seed},
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(child.stdout) == orders_here(URLS)


def test_keys_spread_over_the_replicas_in_proportion_to_their_weight() -> None:
    ring = Rendezvous(URLS[:2], [1.0, 3.0])
    firsts = Counter(ring.order(key)[0] for key in KEYS)
    # 2,000 draws of p = 0.75: the standard deviation is 19 keys.
    assert 1400 <= firsts[1] <= 1600
    assert firsts[0] + firsts[1] == len(KEYS)


def test_removing_a_replica_moves_only_the_keys_it_was_first_for() -> None:
    before = Rendezvous(URLS, [1.0] * 4)
    after = Rendezvous([URLS[0], URLS[1], URLS[3]], [1.0] * 3)
    kept = {0: 0, 1: 1, 3: 2}  # old slot -> new slot
    moved = 0
    for key in KEYS:
        old = before.order(key)
        new = after.order(key)
        if old[0] == 2:
            moved += 1
            assert new[0] == kept[old[1]], "a removed replica's key goes to its second choice"
        else:
            assert new[0] == kept[old[0]], "every other key stays where it was"
    assert 400 <= moved <= 600  # about a quarter of them


def test_adding_a_replica_takes_keys_only_for_itself() -> None:
    before = Rendezvous(URLS[:3], [1.0] * 3)
    after = Rendezvous(URLS, [1.0] * 4)
    for key in KEYS:
        new_first = after.order(key)[0]
        assert new_first in (before.order(key)[0], 3)


def conversation(system: str, *turns: str) -> list[Message]:
    messages = [Message(role="system", content=system)]
    for number, text in enumerate(turns):
        messages.append(Message(role="user", content=text))
        if number < len(turns) - 1:
            messages.append(Message(role="assistant", content=f"answer {number}"))
    return messages


def test_the_turns_of_one_conversation_share_a_key() -> None:
    first = prefix_key(conversation("Be brief.", "Hi"), [], limit=2048)
    later = prefix_key(conversation("Be brief.", "Hi", "And then?", "Why?"), [], limit=2048)
    assert first == later


def test_another_system_prompt_or_first_message_is_another_key() -> None:
    base = prefix_key(conversation("Be brief.", "Hi"), [], limit=2048)
    assert prefix_key(conversation("Be long.", "Hi"), [], limit=2048) != base
    assert prefix_key(conversation("Be brief.", "Hello"), [], limit=2048) != base


def test_prompts_sharing_the_first_limit_characters_share_a_key() -> None:
    shared = "x" * 100
    one = prefix_key(conversation(shared + "one", "a"), [], limit=60)
    two = prefix_key(conversation(shared + "two", "b"), [], limit=60)
    assert one == two
    assert prefix_key(conversation(shared + "one", "a"), [], limit=200) != prefix_key(
        conversation(shared + "two", "b"), [], limit=200
    )


def test_the_tools_offered_are_part_of_the_prefix() -> None:
    messages = conversation("Be brief.", "Hi")
    assert prefix_key(messages, ["search"], limit=2048) != prefix_key(messages, [], limit=2048)
    assert prefix_key(messages, ["search"], limit=2048) == prefix_key(
        messages, ["search"], limit=2048
    )


def test_a_named_request_is_keyed_by_its_name_not_its_prompt() -> None:
    one = ChatRequest(model="m", messages=conversation("A", "x"), affinity="thread-7")
    two = ChatRequest(model="m", messages=conversation("B", "y"), affinity="thread-7")
    assert request_key(one, limit=2048) == request_key(two, limit=2048) == named_key("thread-7")


def test_an_unnamed_request_is_keyed_by_its_tools_and_prefix() -> None:
    tool = Tool(name="search", description="Search.", parameters={"type": "object"})
    request = ChatRequest(model="m", messages=conversation("A", "x"), tools=[tool])
    assert request_key(request, limit=2048) == prefix_key(
        conversation("A", "x"), ["search"], limit=2048
    )


def test_text_parts_and_lone_surrogates_make_keys_too() -> None:
    parts = [Message(role="user", content=[TextPart(text="Hi"), TextPart(text=" there")])]
    assert prefix_key(parts, [], limit=64) == prefix_key(
        [Message(role="user", content="Hi there")], [], limit=64
    )
    assert prefix_key([Message(role="user", content="\ud800")], [], limit=64) != prefix_key(
        [Message(role="user", content="")], [], limit=64
    )
