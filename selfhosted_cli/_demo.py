"""`selfhosted demo`: the whole product, end to end, on embedded local servers.

It starts two replicas of the tiny chat model and the MiniLM embedding server, then runs a
LangChain agent that calls a tool, a LiteLLM Router spreading calls over both replicas, a
structured output, and a MiniLM similarity ranking, printing what happened; it stops the
servers at the end, also when a step fails.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rich.panel import Panel
from rich.table import Table

from selfhosted_cli._local import prepare, start_stack
from selfhosted_cli._terminal import CommandError, Terminal
from selfhosted_cli._views import cosine_matrix

if TYPE_CHECKING:
    import argparse

    from selfhosted_core import Config

__all__ = ["DemoReport", "demo", "run_demo"]

ROUTER_CALLS = 16
"""Calls spread by the Router; LiteLLM shuffles at random, so every replica gets one with
probability 1 - 2**-15."""
QUERY = "How do I keep API keys out of my logs?"
DOCUMENTS = (
    "An endpoint's key is never printed in reprs, logs or error messages.",
    "llama-server is built once from source and cached for later runs.",
    "Replicas of one model share an id and requests are spread over them.",
    "MiniLM turns a sentence into a vector of 384 numbers.",
    "The tiny chat model answers the same way every time.",
)
_INTRO = (
    "[bold]tiny[/] is a 1.6 MB chat model with hand-set weights: it answers deterministically "
    "(a fixed reply, one tool call when tools are offered, schema-valid JSON), so this demo "
    "shows the plumbing, not intelligence. [bold]minilm[/] is the real all-MiniLM-L6-v2."
)


@dataclass(frozen=True, slots=True)
class DemoReport:
    """What the demo observed, for the printed summary and for tests."""

    tool_calls: list[dict[str, Any]]
    tool_results: list[str]
    agent_answer: str
    spread: dict[str, int]
    structured: dict[str, Any]
    ranking: list[tuple[float, str]]


def demo(args: argparse.Namespace, term: Terminal) -> int:
    """The `demo` command: prepare, start, run every step, stop."""
    from selfhosted_core.local import LocalStack  # noqa: PLC0415 - numpy stays off other commands

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no cost-map download
    _require_extras()
    started = time.perf_counter()
    term.out.print(Panel(_INTRO, title="selfhosted-llm demo", expand=False))
    stack = LocalStack(chat_replicas=2, binary=prepare(term))
    try:
        start_stack(term, stack)
        run_demo(stack.config, term)
    finally:
        stack.stop()
    term.out.print(f"servers stopped; demo finished in {time.perf_counter() - started:.1f} s")
    return 0


def run_demo(config: Config, term: Terminal) -> DemoReport:
    """Run the four steps against `config` (two `tiny` replicas and `minilm`) and print them."""
    tool_calls, tool_results, answer = _agent(config, term)
    spread = _router(config, term)
    structured = _structured(config, term)
    ranking = _ranking(config, term)
    return DemoReport(tool_calls, tool_results, answer, spread, structured, ranking)


def _require_extras() -> None:
    needed = ("langchain", "langchain_core", "litellm", "numpy")
    missing = [module for module in needed if importlib.util.find_spec(module) is None]
    if missing:
        raise CommandError(
            f"`selfhosted demo` needs {', '.join(missing)}: pip install 'selfhosted-llm[demo]'"
        )


def _agent(config: Config, term: Terminal) -> tuple[list[dict[str, Any]], list[str], str]:
    from langchain.agents import create_agent  # noqa: PLC0415 - optional extra
    from langchain_core.messages import AIMessage, ToolMessage  # noqa: PLC0415
    from langchain_core.tools import tool  # noqa: PLC0415

    from langchain_selfhosted import ChatSelfHosted  # noqa: PLC0415

    @tool
    def get_weather(city: Literal["Oslo", "Paris", "Tokyo"]) -> str:
        """Get the current weather in one of the cities we have a station in."""
        return f"{city}: sunny, 21 °C"

    term.out.rule("1. LangChain agent with a tool (langchain.agents.create_agent)")
    agent = create_agent(ChatSelfHosted(model="tiny", config=config), tools=[get_weather])
    question = "What is the weather in Oslo?"
    messages = agent.invoke({"messages": [("user", question)]})["messages"]
    calls = [call for m in messages if isinstance(m, AIMessage) for call in m.tool_calls]
    results = [str(m.content) for m in messages if isinstance(m, ToolMessage)]
    answer = str(messages[-1].content)
    term.out.print(f"user:   {question}", markup=False)
    for call in calls:
        term.out.print(f"agent → tool call {call['name']}({call['args']})", markup=False)
    for result in results:
        term.out.print(f"tool   → {result}", markup=False)
    term.out.print(f"agent:  {answer}", markup=False)
    if not calls or not results:
        raise CommandError("the agent answered without calling its tool")
    return [{"name": c["name"], "args": c["args"]} for c in calls], results, answer


def _router(config: Config, term: Terminal) -> dict[str, int]:
    from litellm.router import Router  # noqa: PLC0415 - optional extra

    from litellm_selfhosted import register, router_model_list  # noqa: PLC0415

    term.out.rule(f"2. LiteLLM Router: {ROUTER_CALLS} calls over two replicas")
    register(config)
    router = Router(model_list=router_model_list(config))
    served: Counter[str] = Counter()
    for number in range(ROUTER_CALLS):
        response = router.completion(
            model="tiny", messages=[{"role": "user", "content": f"Hello #{number}"}]
        )
        served[response._hidden_params["selfhosted"]["endpoint"]] += 1
    table = Table("replica", "url")
    table.add_column("calls served", justify="right")
    for endpoint in config.replicas("tiny"):
        table.add_row(endpoint.display_name, endpoint.api_base, str(served[endpoint.display_name]))
    term.out.print(table)
    return dict(served)


def _structured(config: Config, term: Terminal) -> dict[str, Any]:
    from pydantic import BaseModel  # noqa: PLC0415

    from langchain_selfhosted import ChatSelfHosted  # noqa: PLC0415

    class Forecast(BaseModel):
        city: Literal["Oslo", "Paris", "Tokyo"]
        temperature_c: int
        summary: str

    term.out.rule("3. Structured output (with_structured_output, json_schema)")
    chat = ChatSelfHosted(model="tiny", config=config).with_structured_output(Forecast)
    forecast = chat.invoke("Give me tomorrow's forecast for Oslo.")
    if not isinstance(forecast, Forecast):
        raise CommandError(f"structured output gave {type(forecast).__name__}, not a Forecast")
    term.out.print(f"{type(forecast).__name__} validated: {forecast!r}", markup=False)
    return forecast.model_dump()


def _ranking(config: Config, term: Terminal) -> list[tuple[float, str]]:
    from langchain_selfhosted import SelfHostedEmbeddings  # noqa: PLC0415

    term.out.rule("4. Similarity ranking with MiniLM (SelfHostedEmbeddings)")
    embeddings = SelfHostedEmbeddings(model="minilm", config=config)
    vectors = [embeddings.embed_query(QUERY), *embeddings.embed_documents(list(DOCUMENTS))]
    scores = cosine_matrix(vectors)[0][1:]
    ranking = sorted(zip(scores, DOCUMENTS, strict=True), reverse=True)
    term.out.print(f"query: {QUERY}", markup=False)
    table = Table("rank", "cosine", "document")
    for rank, (score, document) in enumerate(ranking, start=1):
        table.add_row(str(rank), f"{score:.3f}", document)
    term.out.print(table)
    return ranking
