"""A LangChain agent's calls under affinity routing: every call of a run, and every run of a
thread, reaches one real replica."""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from langchain_selfhosted import ChatSelfHosted
from selfhosted_core import Message
from selfhosted_core._affinity import named_key, prefix_key
from selfhosted_core.local import LlamaServer
from tests.integration.conftest import affinity_config, home_label


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"It is sunny in {city}."


def served_by(messages: list[object]) -> list[str]:
    return [m.response_metadata["endpoint"] for m in messages if isinstance(m, AIMessage)]


def test_an_agents_tool_round_trip_stays_on_one_replica(
    affinity_replicas: tuple[LlamaServer, LlamaServer],
) -> None:
    model = ChatSelfHosted(model="tiny", config=affinity_config(affinity_replicas))
    agent = create_agent(model, tools=[get_weather])
    for city in ("Paris", "Oslo", "Lima", "Kyiv", "Quito", "Accra"):
        result = agent.invoke({"messages": [HumanMessage(f"What is the weather in {city}?")]})
        endpoints = served_by(result["messages"])
        assert len(endpoints) == 2, "the tool call, then the answer from its result"
        assert len(set(endpoints)) == 1, endpoints
    stats = model._provider.stats()
    assert sum(entry.affinity_hits for entry in stats) == 12
    assert sum(entry.cached_prompt_tokens for entry in stats) > 0


async def test_a_threads_runs_go_to_the_replica_its_thread_id_names(
    affinity_replicas: tuple[LlamaServer, LlamaServer],
) -> None:
    config = affinity_config(affinity_replicas)
    agent = create_agent(
        ChatSelfHosted(model="tiny", config=config),
        tools=[get_weather],
        checkpointer=InMemorySaver(),
    )
    # Threads whose home is not where their prompt's prefix alone would go: only the thread id
    # can have sent them there.
    by_prefix = home_label(
        config,
        prefix_key(
            [Message(role="user", content="Weather in Paris?")], ["get_weather"], limit=2048
        ),
    )
    names = (f"thread-{number}" for number in range(100))
    threads = [name for name in names if home_label(config, named_key(name)) != by_prefix][:2]
    for thread in threads:
        run: RunnableConfig = {"configurable": {"thread_id": thread}}
        first = await agent.ainvoke({"messages": [HumanMessage("Weather in Paris?")]}, run)
        second = await agent.ainvoke({"messages": [HumanMessage("And in Oslo?")]}, run)
        endpoints = served_by(second["messages"])
        assert served_by(first["messages"]) == endpoints[:2]
        # The checkpointed thread holds both runs' calls; every one went to the thread's home.
        assert len(endpoints) >= 3
        assert set(endpoints) == {home_label(config, named_key(thread))}
