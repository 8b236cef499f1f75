"""One client in its own process: checked once, then timed on the runner's command.

`python -m benchmarks.worker NAME BASE_URL` reads one JSON command per line from stdin and
answers one JSON line on stdout. Measuring in a process of its own keeps each client's
imports, threads and garbage out of every other client's CPU figures.

Once its client is built it says {"ready": true, "modes": [the modes the client offers]}.

Commands:
    {"op": "check", "mode": M}         two requests, their answers compared with the canned one
    {"op": "run", "mode": M, "n": N}   N requests: {"cpu": seconds, "wall": seconds}
    {"op": "rss"}                      {"rss": bytes} of this process now
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks import payloads
from benchmarks.clients import CLIENTS, Answer, Client

CONCURRENCY = 64
MODES = ("chat", "stream", "embed", "achat")


def expected(mode: str) -> Answer:
    """The answer every client must give in `mode`."""
    if mode == "stream":
        return payloads.STREAM_TEXT
    if mode == "embed":
        return payloads.EMBEDDING_ROWS_DATA
    return payloads.CHAT_TEXT


def same(answer: Answer, wanted: Answer) -> bool:
    """Whether a client's answer is the canned one (vectors to float precision)."""
    if isinstance(wanted, str) or isinstance(answer, str):
        return answer == wanted
    return len(answer) == len(wanted) and all(
        len(row) == len(other)
        and all(math.isclose(a, b, rel_tol=1e-6) for a, b in zip(row, other, strict=True))
        for row, other in zip(answer, wanted, strict=True)
    )


class Worker:
    """Runs one client's requests on command, with a persistent event loop for `achat`."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(client.astart())

    def modes(self) -> list[str]:
        """The modes the client offers, in `MODES` order."""
        return [mode for mode in MODES if mode in self.client.modes]

    def sync_request(self, mode: str) -> Callable[[], Answer]:
        """The client's one-request function for a sync mode."""
        if mode not in self.client.modes or mode == "achat":
            raise ValueError(f"{self.client.name} has no {mode} mode")
        request: Callable[[], Answer] = getattr(self.client, mode)
        return request

    def close(self) -> None:
        """Close the client's async resources inside their loop, then the loop, as `asyncio.run`."""
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _batch(self, count: int, keep: list[Answer] | None) -> None:
        remaining = count

        async def lane() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                answer = await self.client.achat()
                if keep is not None:
                    keep.append(answer)

        await asyncio.gather(*(lane() for _ in range(min(CONCURRENCY, count))))

    def requests(self, mode: str, count: int, keep: list[Answer] | None = None) -> None:
        """Do `count` requests in `mode`, async ones `CONCURRENCY` at a time.

        Answers are appended to `keep` when given. A timed run keeps none: holding hundreds of
        embedding lists would charge the client for the runner's page faults and garbage
        collection, more the more requests its run has, and swell its RSS.
        """
        if mode == "achat":
            self.loop.run_until_complete(self._batch(count, keep))
            return
        request = self.sync_request(mode)
        for _ in range(count):
            answer = request()
            if keep is not None:
                keep.append(answer)

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        """The reply to one command."""
        if command["op"] == "rss":
            with open("/proc/self/statm") as statm:
                pages = int(statm.read().split()[1])
            return {"rss": pages * os.sysconf("SC_PAGE_SIZE")}
        mode = command["mode"]
        if command["op"] == "check":
            answers: list[Answer] = []
            self.requests(mode, 2, answers)
            wrong = [a for a in answers if not same(a, expected(mode))]
            if wrong:
                return {"error": f"{self.client.name} {mode} answered {str(wrong[0])[:200]!r}"}
            return {"ok": True}
        count = int(command["n"])
        cpu, wall = time.process_time(), time.perf_counter()
        self.requests(mode, count)
        return {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall}


def main() -> None:
    """Serve the runner's commands until stdin closes."""
    name, base_url = sys.argv[1], sys.argv[2]
    # The replies get the real stdout to themselves: a client library printing to stdout (litellm
    # does, on errors) would otherwise break the protocol, so its chatter goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    worker = Worker(CLIENTS[name](base_url))
    print(json.dumps({"ready": True, "modes": worker.modes()}), file=replies, flush=True)
    for line in sys.stdin:
        try:
            reply = worker.handle(json.loads(line))
        except Exception as exc:  # reported to the runner, which names the client
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        print(json.dumps(reply), file=replies, flush=True)
    worker.close()


if __name__ == "__main__":
    main()
