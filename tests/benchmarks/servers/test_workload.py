from __future__ import annotations

import itertools
from collections import Counter

import pytest

from benchmarks.servers.workload import (
    build,
    dispatch_order,
    distinct,
    shared,
    system_prompt,
)


def common_prefix(a: str, b: str) -> int:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return size


def prompt_text(messages: tuple[tuple[str, str], ...]) -> str:
    return "".join(f"<{role}>{content}" for role, content in messages)


def test_generation_is_deterministic_and_seeded() -> None:
    assert shared(3, 4, 500) == shared(3, 4, 500)
    assert distinct(3, 4, 500) == build("distinct", 3, 4, 500)
    assert shared(3, 4, 500, seed=1) != shared(3, 4, 500)


def test_system_prompts_have_the_asked_length_and_start_unique() -> None:
    one, two = system_prompt("s0", 1500), system_prompt("s1", 1500)
    assert len(one) == len(two) == 1500
    assert one != two
    assert common_prefix(one, two) < 5
    assert system_prompt("s0", 1500) == one


def test_dispatch_order_covers_every_turn_once_in_rounds() -> None:
    order = dispatch_order(4, 5)
    assert sorted(order) == [(s, t) for s in range(4) for t in range(5)]
    assert [turn for _, turn in order] == [t for t in range(5) for _ in range(4)]
    # A round never starts with the session that ended the previous one.
    for end in range(4, 20, 4):
        assert order[end - 1][0] != order[end][0]
    # Sessions are shuffled, not always in the same order.
    assert len({tuple(s for s, _ in order[r * 4 : r * 4 + 4]) for r in range(5)}) > 1


def test_shared_sessions_extend_their_own_prefix() -> None:
    work = shared(4, 5, 1500)
    assert len(work.requests) == 20
    assert work.sessions == 4
    turns: dict[str, list[tuple[tuple[str, str], ...]]] = {}
    for request in work.requests:
        turns.setdefault(request.session, []).append(request.messages)
        assert request.messages[0][0] == "system"
        assert len(request.messages[0][1]) == 1500
        assert len(request.messages) == 2 * request.turn + 2
    for history in turns.values():
        # Each turn resends the previous one whole, then the reply and one new user message.
        for earlier, later in itertools.pairwise(history):
            assert later[: len(earlier)] == earlier
            assert [role for role, _ in later[len(earlier) :]] == ["assistant", "user"]
    first = [prompt_text(messages[0]) for messages in turns.values()]
    assert max(common_prefix(a, b) for a in first for b in first if a != b) < 20


def test_shared_turns_wait_for_their_previous_turn() -> None:
    work = shared(3, 3, 200)
    for index, request in enumerate(work.requests):
        if request.turn == 0:
            assert request.after is None
        else:
            assert request.after is not None
            assert request.after < index
            before = work.requests[request.after]
            assert (before.session, before.turn) == (request.session, request.turn - 1)


def test_distinct_requests_have_the_same_shapes_and_share_nothing() -> None:
    same, other = shared(4, 5, 1500), distinct(4, 5, 1500)
    assert [(r.turn, len(r.messages), r.chars) for r in same.requests] == [
        (r.turn, len(r.messages), r.chars) for r in other.requests
    ]
    assert other.sessions == 20
    assert all(request.after is None for request in other.requests)
    texts = [prompt_text(r.messages) for r in other.requests]
    assert max(common_prefix(a, b) for a in texts for b in texts if a is not b) < 20


@pytest.mark.parametrize("sessions", [1, 2, 7])
def test_every_session_gets_every_turn(sessions: int) -> None:
    work = shared(sessions, 3, 100)
    assert Counter(r.session for r in work.requests) == {f"s{s}": 3 for s in range(sessions)}
