"""The command line without servers: config resolution, one-line errors, --verbose, models."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfhosted_core import CircuitState, EndpointConnectionError, EndpointStats, serve_metrics
from tests.cli_terminal import Run

SECRET = "sk-never-printed-0123456789"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def endpoints(tmp_path: Path) -> Path:
    port, other = closed_port(), closed_port()
    path = tmp_path / "endpoints.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "endpoints": [
                    {"url": f"http://127.0.0.1:{port}", "id": "tiny", "label": "gpu-1",
                     "api_key": SECRET, "capabilities": ["chat", "function_call"]},
                    {"url": f"http://127.0.0.1:{other}/v1", "id": "tiny", "label": "gpu-2",
                     "api_key": SECRET, "capabilities": ["chat", "function_call"]},
                    {"url": f"http://127.0.0.1:{port}", "id": "minilm",
                     "capabilities": ["embedding"], "dimension": 384},
                ]
            }
        )
    )  # fmt: skip
    return path


@pytest.fixture
def no_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("SELFHOSTED_CONFIG", "SELFHOSTED_BASE_URL", "SELFHOSTED_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_models_lists_replicas_without_io(endpoints: Path) -> None:
    run = Run()
    assert run("models", "-c", str(endpoints)) == 0
    row = next(line for line in run.out.splitlines() if "│ tiny" in line)
    assert "chat, function_call" in row
    assert "gpu-1, gpu-2" in row
    assert SECRET not in run.out + run.err


def test_stats_once_shows_every_endpoint_checked_down_and_ejected(endpoints: Path) -> None:
    run = Run()
    assert run("stats", "-c", str(endpoints), "--count", "1", "--timeout", "1") == 0
    rows = [line for line in run.out.splitlines() if "│ tiny" in line or "│ minilm" in line]
    assert len(rows) == 3
    assert all("down" in row and "open" in row for row in rows)
    assert SECRET not in run.out + run.err


def test_stats_refreshes_as_often_as_asked(endpoints: Path) -> None:
    run = Run()
    argv = ("stats", "-c", str(endpoints), "--count", "2", "--interval", "0.01")
    assert run(*argv, "--timeout", "1") == 0
    assert "endpoint stats" in run.out
    assert SECRET not in run.out + run.err


def test_stats_of_a_serving_process_are_read_from_its_metrics() -> None:
    class Serving:
        def stats(self) -> list[EndpointStats]:
            return [
                EndpointStats(
                    model="tiny", endpoint="gpu-1", requests=12, errors=2, in_flight=3,
                    circuit=CircuitState.OPEN, consecutive_failures=2, loading=False,
                    resting_for=4.0, last_error=None, latency_p50=0.05, latency_p95=0.2,
                    latency_p99=0.3, prompt_tokens=100, cached_prompt_tokens=80,
                ),
            ]  # fmt: skip

    run = Run()
    with serve_metrics(Serving()) as server:
        assert run("stats", "--url", server.url, "--count", "1") == 0
    [row] = [line for line in run.out.splitlines() if "│ tiny" in line]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[:9] == ["tiny", "gpu-1", "open", "3", "—", "12", "2", "50 ms", "200 ms"]
    assert cells[9] == "80%"
    assert "health" not in run.out


def test_stats_of_an_address_nothing_serves_is_one_error_line() -> None:
    run = Run()
    url = f"http://127.0.0.1:{closed_port()}/metrics"
    assert run("stats", "--url", url, "--count", "1", "--timeout", "1") == 1
    assert run.err.startswith(f"error: cannot read {url}: ")
    assert len(run.err.strip().splitlines()) == 1


def test_models_json(endpoints: Path) -> None:
    run = Run()
    assert run("models", "-c", str(endpoints), "--json") == 0
    listing = json.loads(run.out)
    assert [(m["id"], m["replicas"], m["dimension"]) for m in listing] == [
        ("tiny", 2, None),
        ("minilm", 1, 384),
    ]
    assert listing[0]["capabilities"] == ["chat", "function_call"]


@pytest.mark.usefixtures("no_environment")
def test_no_config_is_one_line_saying_what_to_do() -> None:
    run = Run()
    assert run("models") == 1
    assert run.out == ""
    assert run.err.count("\n") == 1
    assert "no endpoints configured" in run.err
    assert "selfhosted local up" in run.err
    assert "Traceback" not in run.err


@pytest.mark.usefixtures("no_environment")
def test_config_from_the_environment(endpoints: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFHOSTED_CONFIG", str(endpoints))
    run = Run()
    assert run("models") == 0
    assert "minilm" in run.out


def test_bad_config_names_every_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("endpoints:\n  - {url: 'ftp://x', id: a}\n  - {url: 'http://b', id: e, "
                    "capabilities: [embedding]}\n")  # fmt: skip
    run = Run()
    assert run("check", "-c", str(path)) == 1
    assert "endpoints[0].url" in run.err
    assert "endpoints[1].dimension" in run.err


def test_unreachable_endpoint_names_it_and_hides_the_key(endpoints: Path) -> None:
    run = Run()
    assert run("chat", "-c", str(endpoints), "-m", "tiny", "--endpoint", "gpu-2", "Hi") == 1
    (line,) = run.err.splitlines()
    assert line.startswith("error: ")
    assert "endpoint='gpu-2'" in line
    assert "is the server running?" in line
    assert SECRET not in run.out + run.err


def test_verbose_adds_the_traceback(endpoints: Path) -> None:
    run = Run()
    assert run("chat", "-c", str(endpoints), "-m", "tiny", "Hi", "--verbose") == 1
    assert "Traceback" in run.err
    assert "EndpointConnectionError" in run.err
    assert SECRET not in run.err


def test_check_reports_every_endpoint_down_and_fails(endpoints: Path) -> None:
    run = Run()
    assert run("check", "-c", str(endpoints), "--timeout", "2") == 1
    for label in ("gpu-1", "gpu-2"):
        row = next(line for line in run.out.splitlines() if f"│ {label}" in line)
        assert "down" in row
    assert run.err.count("is down") == 3
    assert SECRET not in run.out + run.err


def test_model_must_be_chosen_when_several_could_serve(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("endpoints:\n  - {url: 'http://a', id: a}\n  - {url: 'http://b', id: b}\n")
    run = Run()
    assert run("chat", "-c", str(path), "Hi") == 1
    assert run.err == "error: choose the chat model with -m (configured chat models: a, b)\n"


def test_unknown_model(endpoints: Path) -> None:
    run = Run()
    assert run("embed", "-c", str(endpoints), "-m", "nope", "text") == 1
    assert "unknown model 'nope'; configured models: 'tiny', 'minilm'" in run.err


def test_embedding_with_a_chat_model_is_a_capability_error(endpoints: Path) -> None:
    run = Run()
    assert run("embed", "-c", str(endpoints), "-m", "tiny", "text") == 1
    assert "choose a model that declares it" in run.err


def test_console_script_help() -> None:
    script = Path(sys.executable).with_name("selfhosted")
    result = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, check=False, env={**os.environ}
    )
    assert result.returncode == 0
    assert "check" in result.stdout


def test_an_unexpected_failure_is_still_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> int:
        raise RuntimeError("something odd\nover two lines")

    monkeypatch.setattr("selfhosted_cli._commands.models", broken)
    run = Run()
    assert run("models") == 1
    assert run.err == (
        "error: unexpected RuntimeError: something odd; over two lines — run with --verbose\n"
    )


def test_a_frameworks_error_is_reported_by_our_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrapped(*_: object) -> int:
        cause = EndpointConnectionError("connection failed", model="tiny", endpoint="chat-2")
        raise RuntimeError("litellm.ServiceUnavailableError: ...") from cause

    monkeypatch.setattr("selfhosted_cli._commands.models", wrapped)
    run = Run()
    assert run("models") == 1
    assert run.err.startswith(
        "error: connection failed (model='tiny', endpoint='chat-2') — is the server running?"
    )


def test_a_missing_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(*_: object) -> int:
        raise ModuleNotFoundError("No module named 'numpy'")

    monkeypatch.setattr("selfhosted_cli._local.local_up", missing)
    run = Run()
    assert run("local", "up") == 1
    assert "No module named 'numpy' — install what this command needs: pip install" in run.err


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf", "soon"])
def test_check_timeout_must_be_positive(timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        Run()("check", "--timeout", timeout)
    assert exited.value.code == 2
    assert f"must be a positive number of seconds, got '{timeout}'" in capsys.readouterr().err


def test_a_corrupt_state_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "servers.json").write_text("{not json")
    run = Run()
    assert run("local", "down", "--dir", str(tmp_path)) == 1
    assert f"error: {tmp_path / 'servers.json'} is not a state file" in run.err
    assert run.err.count("\n") == 1


def test_demo_checks_its_extras_before_building_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_langchain(name: str, *args: Any) -> Any:
        return None if name == "langchain" else real(name, *args)

    def no_prepare(*_: object) -> None:
        raise AssertionError("the servers must not be prepared")

    monkeypatch.setattr("importlib.util.find_spec", without_langchain)
    monkeypatch.setattr("selfhosted_cli._demo.prepare", no_prepare)
    run = Run()
    assert run("demo") == 1
    assert run.err == (
        "error: `selfhosted demo` needs langchain: pip install 'selfhosted-llm[demo]'\n"
    )


def test_a_reader_that_went_away_ends_the_command_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def piped(*_: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    redirected: list[int] = []
    monkeypatch.setattr("selfhosted_cli._commands.chat", piped)
    monkeypatch.setattr("os.dup2", lambda _devnull, target: redirected.append(target))
    run = Run()
    assert run("chat", "Hi") == 1
    assert run.err == ""
    assert redirected == [sys.stdout.fileno()]


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["local", "up", "--replicas", "0"], "must be a whole number of at least 1, got '0'"),
        (
            ["local", "down", "--dir", "a\x00b"],
            "no folder can be named 'a\\x00b' (a NUL character)",
        ),
        (["models", "one\ntwo"], "unrecognized arguments: one\\ntwo"),
    ],
)
def test_a_bad_argument_is_one_error_line_after_the_usage(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        Run()(*argv)
    assert exited.value.code == 2
    *_, last = capsys.readouterr().err.removesuffix("\n").split("\n")
    assert last.startswith("selfhosted")
    assert last.endswith(error)


def test_a_config_path_no_file_can_have_is_a_configuration_error() -> None:
    run = Run()
    assert run("models", "-c", "a\x00b") == 1
    assert run.err.startswith("error: 'a\\x00b': cannot read config file: embedded null byte — ")
    assert run.err.count("\n") == 1


def test_version_is_the_installed_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        Run()("--version")
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"selfhosted {importlib.metadata.version('selfhosted-llm')}\n"


def test_version_of_an_uninstalled_checkout_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr("importlib.metadata.version", missing)
    with pytest.raises(SystemExit):
        Run()("--version")
    assert capsys.readouterr().out.startswith("selfhosted unknown (not installed")


@pytest.mark.parametrize("arguments", [["--version"], ["--help"], ["models", "--help"]])
def test_python_dash_m_is_the_selfhosted_command(arguments: list[str]) -> None:
    script = Path(sys.executable).with_name("selfhosted")
    by_script, by_module = (
        subprocess.run([*command, *arguments], capture_output=True, text=True, check=False)
        for command in ([str(script)], [sys.executable, "-m", "selfhosted_cli"])
    )
    assert (by_module.returncode, by_module.stdout, by_module.stderr) == (
        by_script.returncode,
        by_script.stdout,
        by_script.stderr,
    )
    assert by_script.returncode == 0
    assert by_script.stdout.startswith(("selfhosted ", "usage: selfhosted"))
