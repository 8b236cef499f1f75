"""Run ``llama-server`` as a managed child process on a free loopback port."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from selfhosted_core.local._binary import find_llama_server
from selfhosted_core.local._errors import LlamaServerStartError
from selfhosted_core.local._process import HOST, ServerProcess, stop_detached
from selfhosted_core.profiles import ServerKind

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["LlamaServer", "stop_detached"]


class LlamaServer(ServerProcess):
    """A ``llama-server`` child process serving one GGUF model on ``127.0.0.1``.

    The child runs in its own process group (a Ctrl-C in a terminal reaches only the parent,
    which then stops it), is stopped at interpreter exit, and on Linux is also killed by the
    kernel if the parent dies without cleaning up.

    Example:
        >>> from selfhosted_core.local import LlamaServer, embedding_model_path
        >>> with LlamaServer(embedding_model_path(), alias="minilm", embeddings=True) as srv:
        ...     srv.base_url.startswith("http://127.0.0.1:")
        True
    """

    program = "llama-server"
    start_error = LlamaServerStartError
    bind_failure = "couldn't bind"
    # The cached build targets x86-64-v3 (AVX2, FMA, F16C); older CPUs cannot run it.
    sigill_hint = "; set SELFHOSTED_LLAMA_SERVER to a llama-server built on this machine"
    kind = ServerKind.LLAMA_CPP

    def __init__(
        self,
        model: Path | str,
        *,
        alias: str | None = None,
        embeddings: bool = False,
        ctx_size: int | None = None,
        parallel: int | None = None,
        port: int | None = None,
        threads: int = 1,
        api_key: str | None = None,
        binary: Path | str | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout: float = 120.0,
        log_path: Path | str | None = None,
        detach: bool = False,
    ) -> None:
        """Describe a server; nothing runs until :meth:`start` (or ``with``).

        Args:
            model: The GGUF file to serve.
            alias: The model id the API reports and accepts; defaults to the file stem.
            embeddings: Serve ``/v1/embeddings`` only (for embedding models).
            ctx_size: Total context (``-c``); ``None`` uses the model's training context.
            parallel: Number of slots (``-np``); ``None`` lets llama-server choose.
            port: The port to listen on; ``None`` picks a free one. Either way a server
                started again after :meth:`stop` (or a crash) listens on the same port, so
                clients configured with its URL find it back.
            threads: CPU threads (``-t``). The default of one is deliberate: two threads on
                two busy cores were measured to collapse generation speed.
            api_key: Require this bearer key on API requests (``/health`` stays open).
            binary: The ``llama-server`` executable; defaults to :func:`find_llama_server`.
            extra_args: More command-line arguments, appended last.
            startup_timeout: Seconds to wait for ``/health`` to answer 200.
            log_path: Where the server's output goes; defaults to a temporary file that is
                removed on a clean stop.
            detach: Let the server outlive this process (for ``selfhosted local up``): no
                parent-death signal, no stop at exit; stop it later with `stop_detached`.
        """
        super().__init__(
            model,
            alias=alias or Path(model).stem,
            embeddings=embeddings,
            port=port,
            api_key=api_key,
            startup_timeout=startup_timeout,
            log_path=log_path,
            detach=detach,
        )
        self.ctx_size = ctx_size
        self.parallel = parallel
        self.threads = threads
        self._binary = Path(binary) if binary is not None else None
        self._extra_args = tuple(extra_args)

    def _prepare(self) -> None:
        self._binary = self._binary or find_llama_server()

    def _command(self) -> list[str]:
        assert self._binary is not None
        args = [str(self._binary), "-m", str(self.model), "--host", HOST, "--port", str(self.port)]
        args += ["-t", str(self.threads), "--jinja", "--alias", self.alias]
        if self.ctx_size is not None:
            args += ["-c", str(self.ctx_size)]
        if self.parallel is not None:
            args += ["-np", str(self.parallel)]
        if self.embeddings:
            args.append("--embeddings")
        # The key travels in the environment (see _child_env), never on the command line.
        return [*args, *self._extra_args]

    def _child_env(self) -> dict[str, str]:
        # llama-server reads LLAMA_ARG_* and LLAMA_API_KEY as option defaults, so inherited
        # ones would silently change this server; the key goes in the environment so it never
        # shows in `ps`.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("LLAMA_ARG_") and k != "LLAMA_API_KEY"
        }
        if self._api_key:
            env["LLAMA_API_KEY"] = self._api_key
        return env
