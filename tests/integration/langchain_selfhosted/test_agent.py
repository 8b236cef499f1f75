"""A real LangChain agent (`langchain.agents.create_agent`) runs a tool round trip."""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from langchain_selfhosted import ChatSelfHosted
from selfhosted_core import Config
from selfhosted_core.local import TOOL_RESULT_ANSWER_TEXT


@tool
def get_weather(city: str) -> str:
    """Get the weather in a city."""
    return f"It is sunny in {city}."


def _check_round_trip(messages: list[object]) -> None:
    kinds = [type(message) for message in messages]
    assert kinds == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    call_message, tool_message, answer = messages[1], messages[2], messages[3]
    assert isinstance(call_message, AIMessage)
    assert isinstance(tool_message, ToolMessage)
    assert isinstance(answer, AIMessage)
    [call] = call_message.tool_calls
    assert call["name"] == "get_weather"
    assert tool_message.tool_call_id == call["id"]
    assert tool_message.content == f"It is sunny in {call['args']['city']}."
    assert answer.content == TOOL_RESULT_ANSWER_TEXT
    assert answer.usage_metadata is not None
    assert answer.response_metadata["endpoint"] == "local-chat"


def test_agent_calls_the_tool_and_answers(config: Config) -> None:
    agent = create_agent(ChatSelfHosted(model="tiny", config=config), tools=[get_weather])
    result = agent.invoke({"messages": [HumanMessage("What is the weather in Paris?")]})
    _check_round_trip(result["messages"])


async def test_agent_runs_async_and_streams(config: Config) -> None:
    agent = create_agent(ChatSelfHosted(model="tiny", config=config), tools=[get_weather])
    result = await agent.ainvoke({"messages": [HumanMessage("What is the weather in Paris?")]})
    _check_round_trip(result["messages"])
    tokens = [
        chunk
        async for chunk, _ in agent.astream(
            {"messages": [HumanMessage("What is the weather in Paris?")]},
            stream_mode="messages",
        )
    ]
    assert "".join(str(chunk.content) for chunk in tokens if isinstance(chunk, AIMessage)).endswith(
        TOOL_RESULT_ANSWER_TEXT
    )
