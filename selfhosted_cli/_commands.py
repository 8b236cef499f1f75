"""`check`, `models`, `stats`, `chat`, `embed`: the configured endpoints, through `Provider`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from pathlib import Path

import httpx2
from rich.live import Live
from rich.table import Table
from rich.text import Text

from selfhosted_cli._terminal import CommandError, Terminal
from selfhosted_cli._views import (
    cosine_matrix,
    embeddings_table,
    health_table,
    models_table,
    similarity_table,
    stats_table,
    usage_line,
)
from selfhosted_core import (
    Capability,
    ChatRequest,
    ChatResponse,
    Config,
    ConfigurationError,
    EmbeddingRequest,
    HealthReport,
    HealthStatus,
    Message,
    Provider,
    SelfHostedError,
)
from selfhosted_core._status import endpoint_secrets
from selfhosted_core.prometheus import stats_from_text

__all__ = ["chat", "check", "embed", "load_config", "models", "run_dir", "stats"]

_FAILING = (HealthStatus.DOWN, HealthStatus.UNAUTHORIZED)


def run_dir(given: Path | None = None) -> Path:
    """The folder `selfhosted local up` keeps its state in (default: `<cache>/run`)."""
    if given is not None:
        return given
    from selfhosted_core.local import cache_root  # noqa: PLC0415 - numpy stays off other commands

    return cache_root() / "run"


def load_config(path: Path | None) -> Config:
    """The config: `-c PATH`, else the environment, else the one `selfhosted local up` wrote."""
    if path is not None:
        return Config.load(path)
    if os.environ.get("SELFHOSTED_CONFIG") or os.environ.get("SELFHOSTED_BASE_URL"):
        return Config.from_env()
    local = run_dir() / "endpoints.yaml"
    if local.is_file():
        return Config.load(local)
    raise ConfigurationError(
        "no endpoints configured: pass -c endpoints.yaml, set SELFHOSTED_CONFIG, or start "
        "the local servers with `selfhosted local up`"
    )


def check(args: argparse.Namespace, term: Terminal) -> int:
    """Health-check every endpoint at once; exit 1 when any is down or refuses its key.

    An endpoint that answers but says something worth knowing (it does not list the model, a
    model is loading) is reported on stderr without failing the check.
    """
    report = asyncio.run(_health(_configured(args, term), args.timeout))
    # A detail is the server's own text (a 503's message), which may quote the credentials.
    report = HealthReport(
        tuple(
            replace(entry, detail=term.redact(entry.detail)) if entry.detail else entry
            for entry in report.endpoints
        )
    )
    if args.json:
        term.out.print_json(data=[asdict(entry) for entry in report.endpoints])
    else:
        term.out.print(health_table(report))
    for entry in report.endpoints:
        if entry.detail or entry.status in _FAILING:
            style = "red" if entry.status in _FAILING else "yellow"
            line = Text.assemble(
                (entry.endpoint, style),
                f" ({entry.url}) is {entry.status.value}: {entry.detail or 'no detail'}",
            )
            term.err.print(line, soft_wrap=True)
    return 1 if any(entry.status in _FAILING for entry in report.endpoints) else 0


def _configured(args: argparse.Namespace, term: Terminal) -> Config:
    """The config, its secrets handed to the terminal, which then never prints them."""
    config = load_config(args.config)
    term.hide(secret for endpoint in config.endpoints for secret in endpoint_secrets(endpoint))
    return config


async def _health(config: Config, timeout: float) -> HealthReport:
    async with Provider(config) as provider:
        return await provider.ahealth(timeout=timeout)


def stats(args: argparse.Namespace, term: Terminal) -> int:
    """Show every endpoint's stats live, refreshed every `--interval` seconds.

    The config's endpoints are health-checked at each refresh, or, with `--url`, a serving
    process's `/metrics` (`serve_metrics`) is read. `--count N` stops after N refreshes
    (1: print the table once); Ctrl-C stops it cleanly.
    """
    with contextlib.suppress(KeyboardInterrupt):
        if args.url is not None:
            asyncio.run(_watch_url(args.url, args, term))
        else:
            asyncio.run(_watch(_configured(args, term), args, term))
    return 0


async def _watch(config: Config, args: argparse.Namespace, term: Terminal) -> None:
    async with Provider(config) as provider:

        async def table() -> Table:
            report = await provider.ahealth(timeout=args.timeout)
            shown = [
                replace(entry, last_error=term.redact(entry.last_error))
                if entry.last_error
                else entry
                for entry in provider.stats()
            ]
            return stats_table(shown, report)

        await _refreshing(table, args, term)


async def _watch_url(url: str, args: argparse.Namespace, term: Terminal) -> None:
    async with httpx2.AsyncClient(timeout=args.timeout) as client:

        async def table() -> Table:
            try:
                reply = await client.get(url)
            except httpx2.HTTPError as exc:
                raise CommandError(f"cannot read {url}: {exc}") from exc
            if reply.status_code != 200:
                raise CommandError(f"{url} answered {reply.status_code}, not the metrics")
            return stats_table(stats_from_text(reply.text))

        await _refreshing(table, args, term)


async def _refreshing(
    table: Callable[[], Awaitable[Table]], args: argparse.Namespace, term: Terminal
) -> None:
    """Show `table()`, made anew every `args.interval` seconds, `args.count` times at most."""
    shown = 1
    with Live(await table(), console=term.out, auto_refresh=False) as live:
        while args.count is None or shown < args.count:
            await asyncio.sleep(args.interval)
            live.update(await table(), refresh=True)
            shown += 1


def models(args: argparse.Namespace, term: Terminal) -> int:
    """List the configured models; no request is sent."""
    with Provider(_configured(args, term)) as provider:
        listing = provider.available_models()
    if args.json:
        term.out.print_json(data=[asdict(model) for model in listing], default=sorted)
    else:
        term.out.print(models_table(listing))
    return 0


def chat(args: argparse.Namespace, term: Terminal) -> int:
    """Send one prompt; stream the answer to stdout, then usage to stderr."""
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    with Provider(_configured(args, term)) as provider:
        model = args.model or _only_model(provider, Capability.CHAT, "chat")
        messages = [Message(role="system", content=args.system)] if args.system else []
        request = ChatRequest(
            model=model,
            messages=[*messages, Message(role="user", content=prompt)],
            max_tokens=args.max_tokens,
            temperature=args.temperature,
            endpoint=args.endpoint,
            # An operator naming a replica is checking that server: no sibling stands in.
            strict_endpoint=args.endpoint is not None,
        )
        started = time.perf_counter()
        if args.no_stream:
            answer = provider.chat(request)
            _write(term, answer.content or "")
        else:
            with provider.stream(request) as stream:
                printed = False
                try:
                    for chunk in stream:
                        if chunk.reasoning:
                            term.err.print(chunk.reasoning, style="dim", end="", markup=False)
                        if chunk.content:
                            _write(term, chunk.content)
                            printed = True
                except SelfHostedError:
                    if printed:  # the partial answer stays printed; the error line follows
                        _write(term, "\n")
                    raise
                answer = stream.final_response()
    _write(term, "\n")
    _show_tool_calls(term, answer)
    elapsed = time.perf_counter() - started
    term.err.print(usage_line(answer, elapsed), style="dim", soft_wrap=True)
    return 0


def embed(args: argparse.Namespace, term: Terminal) -> int:
    """Embed the texts; print sizes and similarities, or the vectors as JSON."""
    with Provider(_configured(args, term)) as provider:
        model = args.model or _only_model(provider, Capability.EMBEDDING, "embedding")
        response = provider.embed(EmbeddingRequest(model=model, input=args.texts))
    if args.json:
        term.out.print_json(data={"model": model, "embeddings": response.embeddings})
        return 0
    term.out.print(embeddings_table(args.texts, response.embeddings))
    if len(args.texts) > 1:
        term.out.print(similarity_table(args.texts, cosine_matrix(response.embeddings)))
    term.err.print(f"{model} via {response.endpoint}", style="dim", markup=False, soft_wrap=True)
    return 0


def _only_model(provider: Provider, capability: Capability, kind: str) -> str:
    ids = [m.id for m in provider.available_models() if capability in m.capabilities]
    if len(ids) == 1:
        return ids[0]
    listing = ", ".join(ids) or "none"
    raise CommandError(f"choose the {kind} model with -m (configured {kind} models: {listing})")


def _write(term: Terminal, text: str) -> None:
    term.out.file.write(text)
    term.out.file.flush()


def _show_tool_calls(term: Terminal, answer: ChatResponse) -> None:
    for call in answer.tool_calls:
        term.out.print(f"tool call: {call.name}({call.arguments})", markup=False)
    for invalid in answer.invalid_tool_calls:
        term.out.print(f"invalid tool call: {invalid.name}: {invalid.error}", markup=False)
