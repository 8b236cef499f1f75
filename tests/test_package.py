from __future__ import annotations

import importlib
import inspect
import json
import logging
import subprocess
import sys

import pytest

import selfhosted_core

PUBLIC_MODULES = [
    "selfhosted_core",
    "selfhosted_core.config",
    "selfhosted_core.errors",
    "selfhosted_core.openai_input",
    "selfhosted_core.profiles",
    "selfhosted_core.prometheus",
    "selfhosted_core.provider",
    "selfhosted_core.routing",
    "selfhosted_core.streams",
    "selfhosted_core.types",
]


def isort_style(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then functions."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


@pytest.mark.parametrize("name", [*PUBLIC_MODULES, "selfhosted_core.local", "selfhosted_cli"])
def test_all_is_sorted_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=isort_style)
    assert len(set(exported)) == len(exported)
    for symbol in exported:
        assert hasattr(module, symbol), f"{name}.{symbol} is in __all__ but missing"


MODULE_ONLY = {
    "Affinity",
    "CONTENT_TYPE",
    "PROFILES",
    "Pick",
    "Router",
    "StatsSource",
    "detect_server_kind",
    "messages_from_openai",
    "profile_for",
    "response_format_from_openai",
    "stats_from_text",
    "tool_choice_from_openai",
    "tools_from_openai",
}
"""Public in their own modules, for advanced use, but not re-exported at the top."""


def test_package_exports_every_public_name_of_its_modules() -> None:
    public = {
        symbol for name in PUBLIC_MODULES[1:] for symbol in importlib.import_module(name).__all__
    }
    assert public - MODULE_ONLY == set(selfhosted_core.__all__)


CLASSES = [
    name for name in selfhosted_core.__all__ if inspect.isclass(getattr(selfhosted_core, name))
]


@pytest.mark.parametrize("symbol", CLASSES)
def test_every_exported_class_is_documented(symbol: str) -> None:
    assert getattr(selfhosted_core, symbol).__doc__


def loaded_by(statement: str, packages: set[str]) -> list[str]:
    """Which of `packages` a fresh interpreter has imported after running `statement`."""
    code = (
        f"import sys, json; {statement}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {packages!r})))"
    )
    loaded: list[str] = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    return loaded


def test_core_logger_is_silent_until_the_application_configures_logging() -> None:
    handlers = logging.getLogger("selfhosted_core").handlers
    assert [type(handler) for handler in handlers] == [logging.NullHandler]


def test_core_imports_no_framework() -> None:
    # OpenTelemetry is imported by the application, never by the core (`_telemetry`).
    frameworks = {
        "langchain",
        "langchain_core",
        "litellm",
        "openai",
        "httpx",
        "rich",
        "opentelemetry",
    }
    assert loaded_by("import selfhosted_core", frameworks) == []


def test_cli_help_loads_no_framework() -> None:
    statement = "from selfhosted_cli._app import _parser; _parser()"
    heavy = {"langchain", "langchain_core", "litellm", "numpy", "openai"}
    assert loaded_by(statement, heavy) == []


LANGCHAIN_MODULES = [
    "langchain_selfhosted",
    "langchain_selfhosted.chat_models",
    "langchain_selfhosted.embeddings",
]


@pytest.mark.parametrize("name", LANGCHAIN_MODULES)
def test_langchain_all_is_sorted_and_documented(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert exported == sorted(exported, key=isort_style)
    assert module.__doc__
    for symbol in exported:
        value = getattr(module, symbol)
        assert value.__doc__, f"{name}.{symbol} has no docstring"
        for attribute, member in vars(value).items():
            if callable(member) and not attribute.startswith("_"):
                assert member.__doc__, f"{name}.{symbol}.{attribute} has no docstring"


def test_langchain_package_exports_its_modules() -> None:
    public = {
        symbol for name in LANGCHAIN_MODULES[1:] for symbol in importlib.import_module(name).__all__
    }
    assert public == set(importlib.import_module("langchain_selfhosted").__all__)


def test_langchain_integration_imports_neither_litellm_nor_openai() -> None:
    others = {"litellm", "openai", "tiktoken", "langchain_openai"}
    assert loaded_by("import langchain_selfhosted", others) == []


def test_litellm_all_is_sorted_and_documented() -> None:
    module = importlib.import_module("litellm_selfhosted")
    exported = module.__all__
    assert exported == sorted(exported, key=isort_style)
    assert module.__doc__
    assert isinstance(module.handler, module.SelfHostedLLM)
    for symbol in exported:
        value = getattr(module, symbol)
        if not (inspect.isclass(value) or inspect.isfunction(value)):
            continue
        assert value.__doc__, f"litellm_selfhosted.{symbol} has no docstring"
        for attribute, member in vars(value).items():
            if callable(member) and not attribute.startswith("_"):
                assert member.__doc__, f"litellm_selfhosted.{symbol}.{attribute} has no docstring"


def test_litellm_is_imported_only_by_its_integration() -> None:
    code = (
        "import sys, json, selfhosted_core, selfhosted_core.openai_input, langchain_selfhosted; "
        "before = sorted(m for m in sys.modules if m.split('.')[0] == 'litellm'); "
        "import litellm_selfhosted; "
        "print(json.dumps([before, 'litellm' in sys.modules]))"
    )
    before, after = json.loads(subprocess.check_output([sys.executable, "-c", code], text=True))
    assert before == []
    assert after is True
