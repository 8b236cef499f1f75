"""The assembler on one whole reply: what it keeps of the server's informational fields."""

from __future__ import annotations

import json

from selfhosted_core._assemble import Assembler
from selfhosted_core.profiles import ServerKind


def assembler() -> Assembler:
    return Assembler(model="m", endpoint="e", server=ServerKind.GENERIC, token_modifier=1.0)


def test_timings_holding_nan_or_infinity_at_any_depth_are_dropped() -> None:
    body = (
        b'{"choices":[{"index":0,"message":{"content":"Hi."},"finish_reason":"stop"}],'
        b'"timings":{"n":3,"per_token":[1.5,NaN],"slots":{"ms":1e999},"prompt_ms":Infinity}}'
    )
    final = assembler().feed_response(body)
    assert final.timings == {"n": 3}
    json.dumps(final.timings, allow_nan=False)
