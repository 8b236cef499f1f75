"""The requests of the two workloads, in dispatch order: pure and deterministic.

"shared": `sessions` chat sessions of `turns` turns. Each session has a long system prompt of
its own (about `prefix_tokens` tokens: the benchmark model's tokenizer spends about one token
per ASCII character); each turn resends the whole conversation so far with one more user
message, the previous turns' user messages and assistant replies appended. A replica that
served a session's previous turn holds all of it but the new message in its prompt cache.

"distinct": the same number of requests with the same shape and sizes, but every request has
a system prompt of its own, so no two share more than the chat template's first few tokens.

The assistant replies in the histories are scripted (the benchmark asks for one token, and the
history must not depend on what one run's servers answered): a server's cache holds the prompt
it was sent, and the next turn's prompt extends that prompt whatever the reply was.

Dispatch order: round by round (every session's turn 0, then every session's turn 1, ...),
each round's sessions in a seeded shuffle that never starts with the session that ended the
previous round. So consecutive turns of a session are separated by other sessions' requests,
as when many users chat at once, and a turn's predecessor has normally finished before the
turn is due (the driver waits for it when it has not).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "WORKLOADS",
    "Request",
    "Workload",
    "WorkloadName",
    "build",
    "dispatch_order",
    "distinct",
    "shared",
    "system_prompt",
]

WorkloadName = Literal["shared", "distinct"]
WORKLOADS: tuple[WorkloadName, ...] = ("shared", "distinct")

# Words avoid the few merged tokens of the tiny vocabulary ("Hello", " How", " can", ...), so
# the text costs one token per character.
_WORDS = (
    *("river", "stone", "maple", "orbit", "quartz", "lantern", "meadow", "copper", "violet"),
    *("harbor", "thistle", "ember", "glacier", "saffron", "pebble", "willow", "canyon"),
    *("juniper", "falcon", "marble", "tundra", "cobalt", "nectar", "prairie", "beacon"),
    *("sparrow", "lichen", "summit", "delta", "fjord"),
)
_REPLY = "Noted."
_QUESTION_CHARS = 60


@dataclass(frozen=True)
class Request:
    """One chat request of a workload.

    Attributes:
        session: The conversation it belongs to: the affinity name a client passes.
        turn: Its turn in that conversation, from 0.
        after: Index (in the workload's order) of the request that must have finished before
            this one is sent: the session's previous turn; None when there is none.
        messages: ``(role, content)`` pairs, the system prompt first.
    """

    session: str
    turn: int
    after: int | None
    messages: tuple[tuple[str, str], ...]

    @property
    def chars(self) -> int:
        """Characters of message content (about the prompt's tokens, plus the template's)."""
        return sum(len(content) for _, content in self.messages)


@dataclass(frozen=True)
class Workload:
    """A named list of requests in dispatch order."""

    name: WorkloadName
    requests: tuple[Request, ...]

    @property
    def sessions(self) -> int:
        """How many distinct session names the requests carry."""
        return len({request.session for request in self.requests})


def _words(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = -1
    while size < chars:
        word = rng.choice(_WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)[:chars]


def system_prompt(label: str, chars: int, *, seed: int = 0) -> str:
    """A system prompt of exactly `chars` characters that starts with `label`.

    Args:
        label: What makes it unique (the session, or the session and turn); it comes first,
            so two prompts with different labels differ from their first characters on.
        chars: The length; at least the label's header.
        seed: Varies the filler text.

    Returns:
        The prompt; the same for the same arguments.
    """
    header = f"[{label}] You are the assistant of conversation {label}. Background: "
    rng = random.Random(f"system:{seed}:{label}")
    return (header + _words(rng, max(chars - len(header), 0)))[: max(chars, len(header))]


def _question(session: int, turn: int, seed: int) -> str:
    rng = random.Random(f"question:{seed}:{session}:{turn}")
    head = f"Turn {turn}: "
    return head + _words(rng, _QUESTION_CHARS - len(head))


def dispatch_order(sessions: int, turns: int, *, seed: int = 0) -> list[tuple[int, int]]:
    """The ``(session, turn)`` pairs in dispatch order (see the module's docstring).

    Args:
        sessions: Sessions per round.
        turns: Rounds.
        seed: Seed of the shuffles.

    Returns:
        Every pair once; a session's turns in increasing order.
    """
    rng = random.Random(f"order:{seed}")
    order: list[tuple[int, int]] = []
    for turn in range(turns):
        round_ = list(range(sessions))
        rng.shuffle(round_)
        if order and sessions > 1 and round_[0] == order[-1][0]:
            round_[0], round_[1] = round_[1], round_[0]
        order += [(session, turn) for session in round_]
    return order


def _build(
    name: WorkloadName, sessions: int, turns: int, prefix_tokens: int, seed: int
) -> Workload:
    order = dispatch_order(sessions, turns, seed=seed)
    index = {pair: position for position, pair in enumerate(order)}
    requests: list[Request] = []
    for session, turn in order:
        if name == "shared":
            label, after = f"s{session}", index.get((session, turn - 1))
        else:
            label, after = f"s{session}.t{turn}", None
        history: list[tuple[str, str]] = [
            ("system", system_prompt(label, prefix_tokens, seed=seed))
        ]
        for earlier in range(turn):
            history += [("user", _question(session, earlier, seed)), ("assistant", _REPLY)]
        history.append(("user", _question(session, turn, seed)))
        requests.append(Request(label, turn, after, tuple(history)))
    return Workload(name, tuple(requests))


def shared(sessions: int, turns: int, prefix_tokens: int, *, seed: int = 0) -> Workload:
    """The "shared" workload: each session's turns extend one long prompt of its own."""
    return _build("shared", sessions, turns, prefix_tokens, seed)


def distinct(sessions: int, turns: int, prefix_tokens: int, *, seed: int = 0) -> Workload:
    """The "distinct" workload: the shapes of "shared", every request's prompt its own."""
    return _build("distinct", sessions, turns, prefix_tokens, seed)


def build(
    name: WorkloadName, sessions: int, turns: int, prefix_tokens: int, *, seed: int = 0
) -> Workload:
    """The workload called `name`."""
    return _build(name, sessions, turns, prefix_tokens, seed)
