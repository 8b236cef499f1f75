"""Session setup: the real llama-server and both models are made ready before any test runs.

The first build takes minutes; doing it here keeps it out of every test's timeout, and it
happens only when tests that need a real server were collected. A failure stops the run with
the reason; nothing is skipped.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

import pytest
from hypothesis import settings

# litellm fetches its cost map from the internet at import unless told not to; there is no
# internet here, and the tests must not depend on it anywhere.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# Hypothesis keeps caches (constants it found in the source, Unicode tables), by default in
# `.hypothesis/` of the working directory: outside the checkout instead.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "selfhosted-llm-hypothesis")
)
# The property tests (`@given`): bounded so that all of them together stay well under a minute
# of `make test`. No example database: a failure is kept as an explicit `@example` instead.
# CI draws the same examples every run (`derandomize`), so a red build can be replayed;
# elsewhere each run explores new ones. `pytest --hypothesis-show-statistics` shows how often
# each property's examples were answered and refused (its `event`s).
settings.register_profile(
    "selfhosted",
    max_examples=300,
    deadline=None,  # a shared 2-core machine makes per-example timings meaningless
    database=None,
    derandomize=os.environ.get("CI") == "true",
    print_blob=True,
)
# `HYPOTHESIS_PROFILE=explore pytest ...` searches twenty times as long, for a hunt by hand.
settings.register_profile("explore", parent=settings.get_profile("selfhosted"), max_examples=2000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "selfhosted"))

_NEEDS_SERVER = ("tests/integration/", "tests/local/", "tests/notebooks/")


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any(item.nodeid.startswith(_NEEDS_SERVER) for item in session.items):
        return
    from selfhosted_core.local import (  # noqa: PLC0415 - numpy only when servers are needed
        LocalSetupError,
        chat_model_path,
        embedding_model_path,
        find_llama_server,
    )

    # The real stderr: pytest captures sys.stderr, and a first build should show its progress.
    terminal = sys.__stderr__ or sys.stderr
    started = time.perf_counter()
    try:
        binary = find_llama_server(progress=terminal)
        models = [chat_model_path(), embedding_model_path()]
    except LocalSetupError as exc:
        pytest.exit(f"cannot prepare the local llama-server: {exc}", returncode=1)
    names = ", ".join(path.name for path in models)
    terminal.write(
        f"local llama-server ready in {time.perf_counter() - started:.1f} s: {binary} ({names})\n"
    )
    if any(_server_kind(item) == "vllm" for item in session.items):
        _prepare_vllm(terminal)


def _server_kind(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    kind: str | None = callspec.params.get("server_kind") if callspec else None
    return kind


def _prepare_vllm(terminal: TextIO) -> None:
    """Install vLLM once (a few minutes, cached) and make the Hugging Face models.

    Failing to is fatal: the vLLM suites are part of `make test`, and a run that quietly
    left them out would pass without them.
    """
    from selfhosted_core.local import (  # noqa: PLC0415 - numpy only when servers are needed
        LocalSetupError,
        embedding_model_dir,
        find_vllm,
        hf_chat_model_path,
    )

    started = time.perf_counter()
    try:
        python = find_vllm(progress=terminal)
        models = [hf_chat_model_path(), embedding_model_dir()]
    except LocalSetupError as exc:
        pytest.exit(f"cannot prepare vLLM for the suites that run on it: {exc}", returncode=1)
    names = ", ".join(path.name for path in models)
    terminal.write(f"vLLM ready in {time.perf_counter() - started:.1f} s: {python} ({names})\n")
