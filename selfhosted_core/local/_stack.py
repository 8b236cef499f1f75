"""The embedded servers as one unit: tiny chat replicas and MiniLM, and their config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from selfhosted_core.config import Config
from selfhosted_core.local._chat_model import chat_model_path
from selfhosted_core.local._hf_chat_model import hf_chat_model_path
from selfhosted_core.local._minilm import (
    EMBEDDING_DIMENSION,
    embedding_model_dir,
    embedding_model_path,
)
from selfhosted_core.local._server import LlamaServer
from selfhosted_core.local._vllm import VllmServer

if TYPE_CHECKING:
    from types import TracebackType

    from typing_extensions import Self

    from selfhosted_core.local._process import ServerProcess

__all__ = ["CHAT_MODEL", "EMBEDDING_MODEL", "LocalStack"]

CHAT_MODEL = "tiny"
"""The model id the local chat replicas serve."""
EMBEDDING_MODEL = "minilm"
"""The model id the local embedding server serves."""

_CHAT_CONTEXT = 4096
"""Split over the slots: each of the two parallel requests gets 2,048 tokens."""
_CHAT_SLOTS = 2
_VLLM_CONTEXT = _CHAT_CONTEXT // _CHAT_SLOTS
"""vLLM's window is per request: the same 2,048 tokens a llama-server slot has."""
_CHAT_CAPABILITIES = ("chat", "function_call", "structured_output")


class LocalStack:
    """Start the embedded chat replicas and the embedding server together; get their `Config`.

    Every chat replica serves `tiny` (llama-server replicas labelled `chat-1`, `chat-2`, ...,
    vLLM ones `vllm-1`, `vllm-2`, ...); the embedding server serves `minilm` (label
    `embedding`) on llama-server or vLLM. A failed start stops whatever had started.

    Example:
        >>> from selfhosted_core import Provider
        >>> from selfhosted_core.local import LocalStack
        >>> with LocalStack(chat_replicas=2) as stack, Provider(stack.config) as provider:
        ...     [model.id for model in provider.available_models()]
        ['tiny', 'minilm']
    """

    def __init__(
        self,
        *,
        chat_replicas: int = 1,
        vllm_replicas: int = 0,
        embeddings: bool = True,
        embedding_server: Literal["llama.cpp", "vllm"] = "llama.cpp",
        binary: Path | str | None = None,
        python: Path | str | None = None,
        log_dir: Path | str | None = None,
        detach: bool = False,
    ) -> None:
        """Describe the servers; nothing runs until :meth:`start` (or ``with``).

        Args:
            chat_replicas: How many llama-servers of the chat model to run.
            vllm_replicas: How many vLLM servers of the chat model to run beside them (at
                least one chat replica in all).
            embeddings: Also run the MiniLM embedding server.
            embedding_server: Which server runs MiniLM.
            binary: The ``llama-server`` executable; defaults to `find_llama_server`.
            python: A Python with vLLM; defaults to `find_vllm` (installed once).
            log_dir: Where each server's log goes (``<label>.log``); defaults to temporary
                files removed on stop.
            detach: Let the servers outlive this process (`selfhosted local up`).
        """
        if embedding_server not in ("llama.cpp", "vllm"):
            raise ValueError(
                f"embedding_server must be 'llama.cpp' or 'vllm', got {embedding_server!r}"
            )
        if chat_replicas < 0 or vllm_replicas < 0 or chat_replicas + vllm_replicas < 1:
            raise ValueError(
                "at least one chat replica is needed, got chat_replicas="
                f"{chat_replicas} and vllm_replicas={vllm_replicas}"
            )
        logs = self._log_dir = Path(log_dir) if log_dir is not None else None
        self.servers: dict[str, ServerProcess] = {}
        """Each server by its endpoint label, in config order."""
        for number in range(1, chat_replicas + 1):
            label = f"chat-{number}"
            self.servers[label] = LlamaServer(
                chat_model_path(), alias=CHAT_MODEL, ctx_size=_CHAT_CONTEXT,
                parallel=_CHAT_SLOTS, binary=binary, detach=detach,
                log_path=logs / f"{label}.log" if logs else None,
            )  # fmt: skip
        for number in range(1, vllm_replicas + 1):
            label = f"vllm-{number}"
            self.servers[label] = VllmServer(
                hf_chat_model_path(), alias=CHAT_MODEL, max_model_len=_VLLM_CONTEXT,
                max_num_seqs=_CHAT_SLOTS, python=python, detach=detach,
                log_path=logs / f"{label}.log" if logs else None,
            )  # fmt: skip
        log = logs / "embedding.log" if logs else None
        if embeddings and embedding_server == "vllm":
            self.servers["embedding"] = VllmServer(
                embedding_model_dir(), alias=EMBEDDING_MODEL, embeddings=True, python=python,
                detach=detach, log_path=log,
            )  # fmt: skip
        elif embeddings:
            self.servers["embedding"] = LlamaServer(
                embedding_model_path(), alias=EMBEDDING_MODEL, embeddings=True, binary=binary,
                detach=detach, log_path=log,
            )  # fmt: skip

    def __repr__(self) -> str:
        return f"LocalStack({', '.join(f'{k}={v!r}' for k, v in self.servers.items())})"

    def start(self) -> Self:
        """Start every server (those already running are kept) and wait until each is healthy.

        Returns:
            The stack itself, for chaining.

        Raises:
            ServerStartError: A server did not start; the others are stopped again (as on any
                other failure or an interrupt, so no detached server is left behind).
        """
        try:
            if self._log_dir is not None:
                self._log_dir.mkdir(parents=True, exist_ok=True)
            for server in self.servers.values():
                server.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server; safe to call more than once."""
        for server in self.servers.values():
            server.stop()

    def endpoints(self) -> list[dict[str, Any]]:
        """The running servers as `Config` endpoint entries (what `endpoints.yaml` holds)."""
        entries: list[dict[str, Any]] = []
        for label, server in self.servers.items():
            entry: dict[str, Any] = {
                "url": server.base_url,
                "id": server.alias,
                "label": label,
                "server": server.kind.value,
            }
            if server.embeddings:
                entry |= {"capabilities": ["embedding"], "dimension": EMBEDDING_DIMENSION}
            else:
                entry["capabilities"] = list(_CHAT_CAPABILITIES)
            entries.append(entry)
        return entries

    @property
    def config(self) -> Config:
        """A `Config` for the running servers."""
        return Config(endpoints=self.endpoints())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
