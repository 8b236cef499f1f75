"""Who owns the HTTP clients, and who closes them when nobody calls `close()`.

LangChain and LiteLLM create models freely and never close them, so the pools clean up after
themselves:

- sync clients are closed when their `Provider` is garbage-collected (`weakref.finalize`);
- async clients belong to one event loop and are closed inside that loop when it shuts down:
  each loop gets a small async generator parked at its first `yield`, and `asyncio.run`,
  `asyncio.Runner` and pytest-asyncio all finish every live async generator
  (`loop.shutdown_asyncgens()`) before closing the loop. Its `finally` then closes the loop's
  clients while the loop can still run their shutdown.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Callable

import httpx2


def _close_all(clients: dict[int, httpx2.Client]) -> None:
    for client in list(clients.values()):
        client.close()
    clients.clear()


class SyncPools:
    """One sync client per endpoint slot, created on first use, closed with the owner."""

    def __init__(self, owner: object, factory: Callable[[int], httpx2.Client]) -> None:
        self._factory = factory
        self._clients: dict[int, httpx2.Client] = {}
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(owner, _close_all, self._clients)

    def get(self, slot: int) -> httpx2.Client:
        """The slot's client (thread-safe; created once)."""
        client = self._clients.get(slot)
        if client is None:
            with self._lock:
                client = self._clients.get(slot)
                if client is None:
                    client = self._clients[slot] = self._factory(slot)
        return client

    def close(self) -> None:
        """Close every client; later calls open new ones."""
        with self._lock:
            _close_all(self._clients)


async def _closer(clients: dict[int, httpx2.AsyncClient]) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await _aclose_all(list(clients.values()))
        clients.clear()


async def _aclose_all(clients: list[httpx2.AsyncClient]) -> None:
    """Close every client; one failing to close does not leave the others open."""
    if not clients:
        return
    try:
        await clients[0].aclose()
    finally:
        await _aclose_all(clients[1:])


class _LoopPools:
    """The async clients of one event loop, and the generator that closes them with it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.clients: dict[int, httpx2.AsyncClient] = {}
        self.closer = _closer(self.clients)
        # Starting the generator registers it with the loop (its asyncgen hooks); it then
        # waits at `yield` until the loop's shutdown finishes it.
        self.started = loop.create_task(_start(self.closer))


async def _start(closer: AsyncGenerator[None, None]) -> None:
    await anext(closer)


class AsyncPools:
    """Async clients per event loop and endpoint slot; never shared across loops."""

    def __init__(self, factory: Callable[[int], httpx2.AsyncClient]) -> None:
        self._factory = factory
        self._loops: dict[asyncio.AbstractEventLoop, _LoopPools] = {}
        # Loops of several threads may arrive at once.
        self._lock = threading.Lock()

    def get(self, slot: int) -> httpx2.AsyncClient:
        """The running loop's client for `slot` (must be called inside that loop)."""
        loop = asyncio.get_running_loop()
        pools = self._loops.get(loop)
        if pools is None:
            with self._lock:
                # A parked generator refers to its loop (through the loop's finalizer hook),
                # so entries of finished loops (each `asyncio.run`) are dropped when a new
                # loop arrives; their shutdown has already closed their clients.
                for finished in [other for other in self._loops if other.is_closed()]:
                    del self._loops[finished]
                pools = self._loops[loop] = _LoopPools(loop)
        client = pools.clients.get(slot)
        if client is None:
            client = pools.clients[slot] = self._factory(slot)
        return client

    async def aclose(self) -> None:
        """Close the running loop's clients now."""
        with self._lock:
            pools = self._loops.pop(asyncio.get_running_loop(), None)
        if pools is not None:
            await pools.started
            await pools.closer.aclose()
