"""A run's results with figures of the kind a real run gives (seconds per request, bytes)."""

from __future__ import annotations

from benchmarks.figures import ImportTiming, Machine, Measurement, Results

HTTPX2, AIOHTTP = "httpx2 + json.loads", "aiohttp + json.loads"
CORE, LC, CHAT_OPENAI = "selfhosted_core Provider", "ChatSelfHosted", "ChatOpenAI(base_url)"
MIB = 2**20


def measurement(
    client: str, group: str, mode: str, cpu: tuple[float, ...], wall: tuple[float, ...]
) -> Measurement:
    return Measurement(client, group, mode, 500, cpu, wall, tuple(c / 20 for c in cpu))


def results() -> Results:
    return Results(
        date="2026-11-25",
        machine=Machine("Test CPU", 2, "3.11.7", 0.5, {"httpx2": "2.16.2"}),
        reps=3,
        seconds=0.25,
        measurements=(
            # chat: floor 300 us (median of the three), ours 330 us (1.1x), ChatOpenAI 1.2 ms
            measurement(HTTPX2, "floor", "chat", (300e-6, 290e-6, 310e-6), (400e-6,) * 3),
            measurement(CHAT_OPENAI, "peer", "chat", (1.2e-3, 1.3e-3, 1.1e-3), (1.5e-3,) * 3),
            measurement(CORE, "ours", "chat", (330e-6, 340e-6, 320e-6), (420e-6,) * 3),
            measurement(LC, "ours", "chat", (720e-6, 700e-6, 740e-6), (900e-6,) * 3),
            # stream: ours 1.6x the floor
            measurement(HTTPX2, "floor", "stream", (2e-3, 2e-3, 2e-3), (3e-3,) * 3),
            measurement(CORE, "ours", "stream", (3.2e-3, 3.2e-3, 3.2e-3), (4e-3,) * 3),
            # achat: aiohttp 5,000 requests/s, ours 4,500 (0.9x)
            measurement(AIOHTTP, "floor", "achat", (100e-6, 100e-6, 100e-6), (200e-6,) * 3),
            measurement(CORE, "ours", "achat", (220e-6, 220e-6, 220e-6), (1 / 4500,) * 3),
        ),
        imports=(
            ImportTiming("selfhosted_core", (0.25, 0.35, 0.31), (40 * MIB,) * 3),
            ImportTiming("langchain_selfhosted", (0.60, 0.62, 0.58), (70 * MIB,) * 3),
            ImportTiming("langchain_core", (0.07, 0.07, 0.07), (25 * MIB,) * 3),
            ImportTiming(
                "langchain_core.language_models.chat_models", (0.55, 0.56, 0.54), (40 * MIB,) * 3
            ),
        ),
        bare_rss=(10 * MIB, 11 * MIB, 10 * MIB),
        worker_rss={HTTPX2: 36 * MIB, CORE: 55 * MIB},
    )
