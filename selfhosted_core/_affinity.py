"""Affinity: which replica a request belongs to, decided alike in every process.

A request's key is the caller's name for what it belongs to (a session, a thread, a user), or
else a hash of the prompt's leading prefix: the tools' names, the system messages and the
first message after them, cut at a number of characters. The turns of one conversation and
the calls of one agent share those, and so share a key, however long the conversation grows.

`Rendezvous` orders a model's replicas for a key by highest random weight: each replica scores
`-weight / ln(u)` with `u` drawn from a hash of the key and the replica's URL, and the highest
score comes first. Every process with the same replicas computes the same order with no shared
state (the hash is BLAKE2b, not Python's per-process `hash`), a replica's share of the keys is
its share of the weight, and removing a replica moves only the keys it was first for.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence

from selfhosted_core.types import ChatRequest, Message

__all__ = ["Rendezvous", "named_key", "prefix_key", "request_key"]

_DIGEST = 16
_SPAN = float(2**53)


def named_key(name: str) -> bytes:
    """The key of a caller-given name (a session or thread id)."""
    return hashlib.blake2b(b"name\0" + _utf8(name), digest_size=_DIGEST).digest()


def prefix_key(messages: Sequence[Message], tool_names: Sequence[str], *, limit: int) -> bytes:
    """The key of a prompt's leading prefix, at most `limit` characters of it.

    The prefix is the tools' names, the system (and developer) messages that open the
    conversation, and the first message after them; text parts only.
    """
    digest = hashlib.blake2b(b"prefix\0", digest_size=_DIGEST)
    left = limit
    for piece in _leading(messages, tool_names, limit):
        taken = piece[:left]
        digest.update(_utf8(taken))
        left -= len(taken)
        if left <= 0:
            break
    return digest.digest()


def request_key(request: ChatRequest, *, limit: int) -> bytes:
    """The key of a chat request: its `affinity` when given, else its prefix's."""
    if request.affinity is not None:
        return named_key(request.affinity)
    return prefix_key(request.messages, [tool.name for tool in request.tools], limit=limit)


class Rendezvous:
    """The replicas of one model in a key's order of preference.

    Args:
        names: Each replica's stable identity (its API root URL), in slot order.
        weights: Each replica's `weight`, in the same order.

    Example:
        >>> ring = Rendezvous(["http://a:8080/v1", "http://b:8080/v1"], [1.0, 1.0])
        >>> sorted(ring.order(named_key("session-1")))
        [0, 1]
    """

    def __init__(self, names: Sequence[str], weights: Sequence[float]) -> None:
        self._names = [b"\0" + _utf8(name) for name in names]
        self._weights = list(weights)

    def order(self, key: bytes) -> list[int]:
        """Indices into `names`, the key's first choice first."""
        scores = [
            -weight
            / math.log(((int.from_bytes(_draw(key + name).digest(), "big") >> 11) + 0.5) / _SPAN)
            for name, weight in zip(self._names, self._weights, strict=True)
        ]
        return sorted(range(len(scores)), key=scores.__getitem__, reverse=True)


def _draw(data: bytes) -> hashlib.blake2b:
    # `u` from the top 53 bits (what a float holds exactly), strictly inside (0, 1), so that
    # -weight / ln(u) is finite and positive for every key.
    return hashlib.blake2b(data, digest_size=8)


def _leading(messages: Sequence[Message], tool_names: Sequence[str], limit: int) -> Iterator[str]:
    """The prefix's pieces; each text is cut to what the limit leaves, before it is joined."""
    left = limit
    if tool_names:
        piece = "tools\0" + "\0".join(tool_names) + "\1"
        left -= len(piece)
        yield piece
    for message in messages:
        if left <= 0:
            return
        text = _text(message, left)
        left -= len(text) + len(message.role) + 2
        yield f"{message.role}\0{text}\1"
        if message.role not in ("system", "developer"):
            return


def _text(message: Message, limit: int) -> str:
    content = message.content
    if content is None or isinstance(content, str):
        return (content or "")[:limit]
    texts = []
    for part in content:
        text = getattr(part, "text", "")[:limit]
        texts.append(text)
        limit -= len(text)
        if limit <= 0:
            break
    return "".join(texts)


def _utf8(text: str) -> bytes:
    # A lone surrogate cannot be UTF-8; it still hashes, as what it is.
    return text.encode("utf-8", "surrogatepass")
