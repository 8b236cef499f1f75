"""Run inside a fresh venv holding one extra: `python smoke.py SPEC.json`, from any folder.

Imports what the extra promises, runs the `selfhosted` command, and for the proxy starts the
real `litellm --config` on a config written by the installed `proxy_config()` and waits for
`GET /v1/models` to list the models. Only the standard library is imported up front: the rest
is what the extra installed. Prints what it checked; exits non-zero on the first failure.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

PROXY_TIMEOUT = 180.0
"""Seconds for the proxy to answer; its first import compiles many modules."""

OFFLINE = {
    # As in tests/integration/litellm_selfhosted/proxy_server.py: no fetch of the cost map, no
    # `.env` walked up to, no telemetry, no banner.
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_MODE": "PRODUCTION",
    "LITELLM_TELEMETRY_DISABLED": "true",
    "LITELLM_SUPPRESS_STARTUP_OUTPUT": "true",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "true",
    "NO_PROXY": "127.0.0.1,localhost",
}


class SmokeError(Exception):
    """A check failed; the message says which and why."""


def main(argv: list[str]) -> int:
    """Run the checks of the spec file `argv[0]`; 0 when all passed."""
    spec: dict[str, Any] = json.loads(Path(argv[0]).read_text())
    folder = Path(argv[0]).parent
    os.environ.update(OFFLINE)
    endpoints = folder / "endpoints.yaml"
    # JSON is YAML: no yaml import before the core's own.
    endpoints.write_text(json.dumps(spec["endpoints"]))
    try:
        for name in spec["imports"]:
            importlib.import_module(name)
        print(f"imported {len(spec['imports'])} modules")
        for command in spec["commands"]:
            run([part.format(endpoints=endpoints) for part in command])
        if spec["proxy_models"] is not None:
            check_proxy(folder, endpoints, spec["proxy_models"])
    except (SmokeError, ImportError) as exc:
        if isinstance(exc, ImportError):
            traceback.print_exc()
        print(f"FAILED ({spec['label']}): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


def run(command: list[str]) -> str:
    """Run a console script (or `python`) of this venv; its stdout, or SmokeError."""
    program = sys.executable if command[0] == "python" else str(bin_path(command[0]))
    result = subprocess.run(
        [program, *command[1:]], capture_output=True, text=True, check=False, timeout=120
    )
    if result.returncode != 0:
        raise SmokeError(f"{' '.join(command)} exited {result.returncode}: {result.stderr[-2000:]}")
    print(f"ran {' '.join(command)}: {result.stdout.splitlines()[0] if result.stdout else ''}")
    return result.stdout


def bin_path(script: str) -> Path:
    """A console script of the venv this interpreter belongs to."""
    return Path(sys.executable).with_name(script)


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def write_proxy_config(folder: Path, endpoints: Path) -> Path:
    """The proxy's config.yaml, as the installed `proxy_config()` writes it."""
    import yaml  # noqa: PLC0415 - installed by the core, imported only once checked for

    from litellm_selfhosted import proxy_config  # noqa: PLC0415
    from selfhosted_core import Config  # noqa: PLC0415

    config = Config.model_validate(json.loads(endpoints.read_text()))
    path = folder / "proxy.yaml"
    path.write_text(yaml.safe_dump(proxy_config(config, config_path=endpoints)))
    return path


def check_proxy(folder: Path, endpoints: Path, expected: list[str]) -> None:
    """Start `litellm --config`, wait for `GET /v1/models` to list `expected`, stop it."""
    import httpx2  # noqa: PLC0415 - a core dependency, imported once the imports passed

    config = write_proxy_config(folder, endpoints)
    port, key = free_port(), f"sk-{secrets.token_hex(16)}"
    log = folder / "proxy.log"
    started = time.monotonic()
    with log.open("wb") as output:
        proxy = subprocess.Popen(
            [str(bin_path("litellm")), "--config", str(config), "--host", "127.0.0.1",
             "--port", str(port)],
            cwd=folder, stdout=output, stderr=subprocess.STDOUT,
            env={**os.environ, "LITELLM_MASTER_KEY": key},
        )  # fmt: skip
    try:
        while True:
            if proxy.poll() is not None:
                raise SmokeError(f"litellm exited {proxy.returncode}: {log.read_text()[-3000:]}")
            if time.monotonic() - started > PROXY_TIMEOUT:
                raise SmokeError(f"litellm did not answer: {log.read_text()[-3000:]}")
            try:
                reply = httpx2.get(
                    f"http://127.0.0.1:{port}/v1/models",
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=5,
                )
            except httpx2.TransportError:
                time.sleep(0.5)
                continue
            break
        ids = sorted(model["id"] for model in reply.json()["data"])
        if reply.status_code != 200 or ids != expected:
            raise SmokeError(f"GET /v1/models: {reply.status_code} {reply.text[:500]}")
        print(f"litellm --config answered GET /v1/models in {time.monotonic() - started:.1f} s")
    finally:
        proxy.terminate()
        try:
            proxy.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proxy.kill()
            proxy.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
