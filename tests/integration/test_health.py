"""Health against real servers: ok with what the server tells, loading while it starts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from selfhosted_core import Config, HealthStatus, Provider, ServerKind
from selfhosted_core.local import embedding_model_path
from selfhosted_core.local._process import _free_port
from tests.driver import Driver
from tests.integration.conftest import CONTEXT, MINILM_WINDOWS, SLOTS


@pytest.mark.servers("llama.cpp", "vllm")
async def test_running_servers_are_ok_and_described(
    driver: Driver, server_kind: ServerKind
) -> None:
    """The embedding endpoint declares no server: its kind is detected."""
    report = await driver.health()
    assert report.ok
    chat, embed = report.endpoints
    assert (chat.server, chat.context_window) == (server_kind, CONTEXT // SLOTS)
    assert (embed.server, embed.context_window) == (server_kind, MINILM_WINDOWS[server_kind])
    assert chat.latency_ms is not None
    assert chat.latency_ms > 0


@pytest.mark.servers("llama.cpp", "vllm")
async def test_wrong_key_is_unauthorized(driver: Driver, config: Config) -> None:
    endpoint = config.endpoints[0].model_dump()
    endpoint["api_key"] = "wrong-key"
    async with Provider(Config(endpoints=[endpoint])) as provider:
        report = await Driver(driver.mode, provider).health()
    assert report.endpoints[0].status is HealthStatus.UNAUTHORIZED


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_loading_while_starting_then_ok(binary: Path, mode: str) -> None:
    """llama-server answers 503 "Loading model" for only 0-65 ms with MiniLM on this machine
    (measured), so one start may show no loading phase at all; the server is restarted until
    the phase was seen, at most ten times."""
    model = embedding_model_path()
    for _ in range(10):
        port = _free_port()
        command = [
            str(binary),
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "-t",
            "1",
            "--embeddings",
            "--alias",
            "minilm",
        ]
        config = Config(
            endpoints=[
                {
                    "url": f"http://127.0.0.1:{port}",
                    "id": "minilm",
                    "capabilities": ["embedding"],
                    "dimension": 384,
                }
            ]
        )
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            async with Provider(config) as provider:
                check = Driver(mode, provider)
                seen: list[HealthStatus] = []
                while not seen or seen[-1] is not HealthStatus.OK:
                    assert process.poll() is None, "llama-server exited while starting"
                    seen.append((await check.health()).endpoints[0].status)
        finally:
            process.terminate()
            process.wait(10)
        assert set(seen) <= {HealthStatus.DOWN, HealthStatus.LOADING, HealthStatus.OK}
        assert seen.index(HealthStatus.OK) == len(seen) - 1
        if HealthStatus.LOADING in seen:
            first_loading = seen.index(HealthStatus.LOADING)
            assert HealthStatus.DOWN not in seen[first_loading:]
            return
    raise AssertionError("llama-server never reported loading in ten starts")
