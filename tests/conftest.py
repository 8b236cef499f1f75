"""Session setup: the real llama-server and both models are made ready before any test runs.

The first build takes minutes; doing it here keeps it out of every test's timeout, and it
happens only when tests that need a real server were collected. A failure stops the run with
the reason; nothing is skipped.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

# litellm fetches its cost map from the internet at import unless told not to; there is no
# internet here, and the tests must not depend on it anywhere.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

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
