"""Choosing the endpoint for a request: the model's replicas, capability-checked, round robin."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from selfhosted_core.config import Capability, Config
from selfhosted_core.errors import CapabilityError, InvalidRequestError, UnknownModelError

__all__ = ["Router"]


class Router:
    """Picks one of a model's replicas; fails before any I/O when none can serve the request.

    Example:
        >>> router = Router(config)  # doctest: +SKIP
        >>> router.select("qwen3", frozenset({Capability.CHAT}))  # doctest: +SKIP
        0
    """

    def __init__(self, config: Config) -> None:
        self._pools: dict[str, list[int]] = {}
        for index, endpoint in enumerate(config.endpoints):
            self._pools.setdefault(endpoint.id, []).append(index)
        self._capabilities = {
            model: config.endpoints[pool[0]].capabilities for model, pool in self._pools.items()
        }
        self._turns: dict[str, Iterator[int]] = {
            model: itertools.cycle(pool) for model, pool in self._pools.items()
        }
        self._listing = {
            model: [config.endpoints[index].api_base for index in pool]
            for model, pool in self._pools.items()
        }
        self._names: dict[tuple[str, str], int] = {}
        for index, endpoint in enumerate(config.endpoints):
            for name in endpoint.names:
                self._names.setdefault((endpoint.id, name), index)

    def select(
        self, model: str, needs: frozenset[Capability], *, endpoint: str | None = None
    ) -> int:
        """The index (in `config.endpoints`) of the endpoint to use next for `model`.

        `endpoint` pins the request to one replica, named by its URL (with or without `/v1`)
        or its label; an unknown name raises `InvalidRequestError` listing the replicas.
        """
        self.check(model, needs)
        if endpoint is None:
            return next(self._turns[model])
        slot = self._names.get((model, endpoint.rstrip("/")))
        if slot is None:
            raise InvalidRequestError(
                f"no replica of model {model!r} is named {endpoint!r}; "
                f"its replicas: {', '.join(self._listing[model])}",
                model=model,
            )
        return slot

    def check(self, model: str, needs: frozenset[Capability]) -> None:
        """Raise unless `model` exists and declares every capability in `needs`."""
        declared = self.capabilities(model)
        missing = needs - declared
        if missing:
            names = ", ".join(sorted(capability.value for capability in missing))
            listing = ", ".join(sorted(capability.value for capability in declared))
            raise CapabilityError(
                f"model {model!r} lacks {names} (declared: {listing})", model=model
            )

    def capabilities(self, model: str) -> frozenset[Capability]:
        """The capabilities `model` declares; `UnknownModelError` for an unknown id."""
        if model not in self._capabilities:
            raise UnknownModelError(model, known=list(self._pools))
        return self._capabilities[model]
