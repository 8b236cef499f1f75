"""The install matrix's definitions: every extra covered, the README's lines, the proxy config."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from litellm_selfhosted import proxy_config
from selfhosted_core import Config
from tests.conftest import _NEEDS_SERVER
from tests.install.matrix import (
    EXTRAS,
    EXTRAS_PYTHON,
    MAIN_PYTHON,
    PROXY_ENDPOINTS,
    PROXY_MODELS,
    UNIT_PYTHONS,
    UNIT_TEST_ARGS,
    find_python,
    pytest_counts,
)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CHECKOUT_ONLY = {"all", "dev", "bench"}


def test_every_extra_a_user_installs_is_in_the_matrix_once() -> None:
    declared = set(PYPROJECT["project"]["optional-dependencies"]) - CHECKOUT_ONLY
    labels = [extra.label for extra in EXTRAS]
    assert sorted(labels) == sorted({"core", *declared})


def test_the_readme_install_lines_are_the_matrix() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Install\n", 1)[1].split("\n## ", 1)[0]
    lines = re.findall(r"^pip install '?([^' ]+)'?", section, flags=re.MULTILINE)
    assert lines == [*(extra.requirement for extra in EXTRAS), "selfhosted-llm[all]"]


def test_the_readme_and_classifiers_name_the_pythons_run() -> None:
    run = sorted(
        {MAIN_PYTHON, EXTRAS_PYTHON, *UNIT_PYTHONS},
        key=lambda version: tuple(map(int, version.split("."))),
    )
    classifiers = [
        line.removeprefix("Programming Language :: Python :: ")
        for line in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", line)
    ]
    assert classifiers == run
    assert PYPROJECT["project"]["requires-python"] == f">={run[0]}"
    readme = (ROOT / "README.md").read_text()
    assert f"Python {run[0]} to {run[-1]}" in readme


def test_unit_tests_leave_out_exactly_the_suites_needing_servers() -> None:
    ignored = {arg.removeprefix("--ignore=") + "/" for arg in UNIT_TEST_ARGS[1:]}
    assert UNIT_TEST_ARGS[0] == "tests"
    assert ignored == set(_NEEDS_SERVER)


def test_the_proxy_config_lists_the_models_the_smoke_expects(tmp_path: Path) -> None:
    config = Config.model_validate(PROXY_ENDPOINTS)
    document = yaml.safe_load(yaml.safe_dump(proxy_config(config, config_path=tmp_path / "e")))
    assert sorted({entry["model_name"] for entry in document["model_list"]}) == list(PROXY_MODELS)
    assert document["environment_variables"] == {"SELFHOSTED_CONFIG": str(tmp_path / "e")}


def test_only_the_proxy_extra_starts_the_proxy() -> None:
    started = [extra.label for extra in EXTRAS if extra.spec()["proxy_models"] is not None]
    assert started == ["proxy"]


def test_an_extra_is_installed_by_name_from_the_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "selfhosted_llm-0.1.0-py3-none-any.whl"
    proxy = next(extra for extra in EXTRAS if extra.label == "proxy")
    core = next(extra for extra in EXTRAS if extra.label == "core")
    assert proxy.install(wheel) == f"selfhosted-llm[proxy] @ file://{tmp_path}/{wheel.name}"
    assert core.install(wheel) == f"selfhosted-llm @ file://{tmp_path}/{wheel.name}"


def make_python(root: Path, folder: str, version: str) -> Path:
    binary = root / "versions" / folder / "bin" / f"python{version}"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    return binary


def test_find_python_takes_pyenvs_newest_patch_of_that_minor(tmp_path: Path) -> None:
    make_python(tmp_path, "3.10.9", "3.10")
    newest = make_python(tmp_path, "3.10.13", "3.10")
    make_python(tmp_path, "3.100.1", "3.100")
    make_python(tmp_path, "3.10.14-dev", "3.10")
    assert find_python("3.10", pyenv_root=tmp_path) == newest


def test_find_python_falls_back_to_path_and_checks_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, body in (("python3.98", "exit 0"), ("python3.99", "exit 127")):
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}/usr/bin:/bin")
    assert find_python("3.98", pyenv_root=tmp_path) == folder / "python3.98"
    assert find_python("3.99", pyenv_root=tmp_path) is None


@pytest.mark.parametrize(
    ("output", "counts"),
    [
        ("...\n1574 passed, 1 xfailed in 322.25s (0:05:22)\n", {"passed": 1574, "xfailed": 1}),
        (
            "= 3 failed, 10 passed, 2 skipped, 1 error in 4.0s =",
            {"failed": 3, "passed": 10, "skipped": 2, "error": 1},
        ),
        ("12 passed in 1 file\nno summary", {}),
        ("collected 0 items\n\nno tests ran in 0.01s", {}),
    ],
)
def test_pytest_counts_reads_the_last_summary_line(output: str, counts: dict[str, int]) -> None:
    assert pytest_counts(output) == counts
