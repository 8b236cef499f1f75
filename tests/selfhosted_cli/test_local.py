"""Getting the local servers ready: the first-time build shows progress and its expected time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from selfhosted_cli._local import prepare
from selfhosted_core.local import LLAMA_SERVER_ENV_VAR, LlamaServerBuildError
from tests.cli_terminal import Run


def test_first_build_shows_a_progress_bar_and_the_expected_duration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built = tmp_path / "llama-server"
    seen: list[bool] = []

    def find(*, build: bool = True, on_percent: Callable[[int], object] | None = None) -> Path:
        seen.append(build)
        if not build:
            raise LlamaServerBuildError("has not been built yet")
        assert on_percent is not None
        for percent in (10, 55, 100):
            on_percent(percent)
        return built

    monkeypatch.setattr("selfhosted_core.local.find_llama_server", find)
    monkeypatch.setattr("selfhosted_core.local.chat_model_path", lambda: tmp_path / "a")
    monkeypatch.setattr("selfhosted_core.local.embedding_model_path", lambda: tmp_path / "b")
    run = Run()
    assert prepare(run.terminal) == built
    assert seen == [False, True]
    assert "llama-server build" in run.err
    assert "100%" in run.err
    assert run.out == ""


def test_cached_binary_builds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def find(*, build: bool = True, **_: object) -> Path:
        assert not build
        return tmp_path / "llama-server"

    monkeypatch.setattr("selfhosted_core.local.find_llama_server", find)
    monkeypatch.setattr("selfhosted_core.local.chat_model_path", lambda: tmp_path / "a")
    monkeypatch.setattr("selfhosted_core.local.embedding_model_path", lambda: tmp_path / "b")
    run = Run()
    assert prepare(run.terminal) == tmp_path / "llama-server"
    assert "build" not in run.err


def test_a_wrong_binary_override_is_reported_without_a_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LLAMA_SERVER_ENV_VAR, str(tmp_path / "missing"))
    run = Run()
    with pytest.raises(LlamaServerBuildError, match="is not an executable file"):
        prepare(run.terminal)
    assert run.err == ""
