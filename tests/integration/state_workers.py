"""Worker processes for the shared-state tests: each one a `Provider` of its own, one config.

Run with the `spawn` start method, so each is a fresh interpreter, as a LiteLLM proxy worker
or an app's pod is. A worker warms up until both replicas have answered it, waits at the
barrier, sends chat requests one after another from `go` until `stop`, and reports what its
provider saw of each endpoint over that run.
"""

from __future__ import annotations

import logging
import multiprocessing.synchronize
from multiprocessing.queues import Queue
from typing import Any

from selfhosted_core import ChatRequest, Config, Message, Provider, SelfHostedError

_WARM_UP_REQUESTS = 40


class _Counter(logging.Handler):
    """Counts the breaker's log lines of this process."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.restored = 0
        self.restored_elsewhere = 0
        self.store_lost = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.restored += "restored (circuit closed)" in message
        self.restored_elsewhere += "restored by another process's probe" in message
        self.store_lost += "did not answer" in message


def run(
    config: dict[str, Any],
    ready: multiprocessing.synchronize.Barrier,
    go: multiprocessing.synchronize.Event,
    stop: multiprocessing.synchronize.Event,
    results: Queue[dict[str, Any]],
) -> None:
    """One worker's life (the target of a spawned process)."""
    counter = _Counter()
    logger = logging.getLogger("selfhosted_core")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    request = ChatRequest(model="tiny", messages=[Message(role="user", content="Hi")], max_tokens=1)
    with Provider(Config(**config)) as provider:
        for _ in range(_WARM_UP_REQUESTS):
            if all(entry.requests > 0 for entry in provider.stats()):
                break
            provider.chat(request)
        ready.wait()
        go.wait()
        before = provider.stats()
        sent = failed = 0
        errors: list[str] = []
        while not stop.is_set():
            sent += 1
            try:
                provider.chat(request)
            except SelfHostedError as exc:
                failed += 1
                errors.append(f"{type(exc).__name__}: {exc}")
        after = provider.stats()
    results.put(
        {
            "sent": sent,
            "failed": failed,
            "errors": errors[:5],
            "attempts": {
                entry.endpoint: entry.requests - was.requests
                for was, entry in zip(before, after, strict=True)
            },
            "failures": {
                entry.endpoint: entry.errors - was.errors
                for was, entry in zip(before, after, strict=True)
            },
            "circuits": {entry.endpoint: entry.circuit.value for entry in after},
            "restored": counter.restored,
            "restored_elsewhere": counter.restored_elsewhere,
            "store_lost": counter.store_lost,
        }
    )
