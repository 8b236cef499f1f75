"""The proxy harness itself: the real `litellm --config` starts, authenticates and stops."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx2
import pytest

from tests.integration.litellm_selfhosted.proxy_server import HOST, LiteLLMProxy


@pytest.mark.timeout(240)
def test_proxy_starts_authenticates_and_stops(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model_list: []\n", encoding="utf-8")

    with LiteLLMProxy(config) as proxy:
        assert proxy.base_url == f"http://{HOST}:{proxy.port}"
        assert proxy.master_key.startswith("sk-")
        with httpx2.Client(base_url=proxy.base_url, timeout=10.0, trust_env=False) as client:
            assert client.get("/health/liveliness").status_code == 200

            models = client.get(
                "/v1/models", headers={"Authorization": f"Bearer {proxy.master_key}"}
            )
            assert models.status_code == 200, models.text
            assert models.json()["data"] == []

            assert client.get("/v1/models").status_code == 401
            # Without a database, a key that is not the master key is looked up as a virtual
            # key and refused with 400 "No connected db." rather than 401; either way, refused.
            wrong_key = {"Authorization": f"Bearer sk-{'0' * 48}"}
            assert client.get("/v1/models", headers=wrong_key).status_code in (400, 401)

        process = proxy.process
        assert process is not None
        port = proxy.port
        proxy.stop()
        proxy.stop()  # idempotent

    assert process.poll() is not None
    assert not proxy.is_running()
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)
    with pytest.raises(ConnectionRefusedError), socket.create_connection((HOST, port), timeout=2):
        pass
    assert proxy.log_path.parent == tmp_path
    assert "Uvicorn running on" in proxy.log_tail()


@pytest.mark.timeout(240)
def test_proxy_that_exits_raises_with_the_log_tail(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("model_list: [\n", encoding="utf-8")  # not YAML

    proxy = LiteLLMProxy(config)
    with pytest.raises(RuntimeError, match=r"exit code \d+; last lines of") as raised:
        proxy.start()
    assert str(proxy.log_path) in str(raised.value)
    assert not proxy.is_running()
