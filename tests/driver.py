"""Run one behaviour through the sync or the async API of a provider: the parity harness."""

from __future__ import annotations

from collections.abc import Sequence

from selfhosted_core import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    HealthReport,
    Message,
    Provider,
)


class Driver:
    """Runs the same behaviour through the sync or the async API of one provider."""

    def __init__(self, mode: str, provider: Provider) -> None:
        self.mode = mode
        self.provider = provider

    async def chat(self, request: ChatRequest) -> ChatResponse:
        if self.mode == "sync":
            return self.provider.chat(request)
        return await self.provider.achat(request)

    async def stream(self, request: ChatRequest) -> tuple[list[ChatChunk], ChatResponse]:
        if self.mode == "sync":
            with self.provider.stream(request) as stream:
                chunks = list(stream)
                return chunks, stream.final_response()
        async with self.provider.astream(request) as astream:
            chunks = [chunk async for chunk in astream]
            return chunks, await astream.final_response()

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        if self.mode == "sync":
            return self.provider.embed(request)
        return await self.provider.aembed(request)

    async def health(self) -> HealthReport:
        if self.mode == "sync":
            return self.provider.health()
        return await self.provider.ahealth()

    async def count_tokens(
        self, model: str, *, text: str | None = None, messages: Sequence[Message] | None = None
    ) -> int:
        if self.mode == "sync":
            return self.provider.count_tokens(model, text=text, messages=messages)
        return await self.provider.acount_tokens(model, text=text, messages=messages)
