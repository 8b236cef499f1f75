"""LangChain integration for self-hosted inference servers: chat models and embeddings.

Example:
    >>> from langchain_selfhosted import ChatSelfHosted
    >>> model = ChatSelfHosted(model="qwen3", config="endpoints.yaml")  # doctest: +SKIP
    >>> model.invoke("Hi!").content  # doctest: +SKIP
    'Hello! How can I help?'
"""

from __future__ import annotations

from langchain_selfhosted.chat_models import ChatSelfHosted
from langchain_selfhosted.embeddings import SelfHostedEmbeddings

__all__ = ["ChatSelfHosted", "SelfHostedEmbeddings"]
