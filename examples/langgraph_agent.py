"""A LangGraph agent whose memory is engram: long-term in ``EngramStore``, short-term in
``EngramSaver``, with a human approving each memory it wants to save.

The agent answers with an OpenAI-compatible chat model (``--base-url``, ``--model``).
It has one tool, ``save_memory``; before a memory is written the graph pauses
with ``interrupt()`` and the process exits. A later process resumes the same
thread from the database with the human's answer::

    python examples/langgraph_agent.py --db sqlite:///agent.db ask t1 "Remember that I love pizza"
    # -> {"status": "waiting", "question": {"save_memory": "The user loves pizza"}}
    python examples/langgraph_agent.py --db sqlite:///agent.db resume t1 yes
    # -> {"status": "done", "answer": "..."}
    python examples/langgraph_agent.py --db sqlite:///agent.db ask t2 "What food do I like?"

Needs ``pip install 'engram[langgraph,langchain]' langchain-openai``; each command prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.store.base import BaseStore
from langgraph.types import Command, interrupt

from engram import Memory
from engram.integrations.langgraph import EngramSaver, EngramStore


@tool
def save_memory(fact: str) -> str:
    """Save a lasting fact about the user (a preference, a plan, a name) for later conversations."""
    return fact  # the graph's tools node stores it, once a human approves


def build_graph(model: ChatOpenAI, saver: EngramSaver, store: EngramStore) -> Any:
    """agent -> (tools -> agent)* -> end; tools asks a human before saving anything."""
    llm = model.bind_tools([save_memory])

    def agent(
        state: MessagesState, config: RunnableConfig, *, store: BaseStore
    ) -> dict[str, Any]:
        user = config["configurable"].get("user_id", "default")
        question = state["messages"][-1].content if state["messages"] else ""
        found = store.search(("memories", user), query=str(question), limit=5)
        known = (
            "\n".join(f"- {item.value['fact']}" for item in found) or "(nothing yet)"
        )
        system = SystemMessage(
            f"You are a helpful assistant. What you know about the user:\n{known}"
        )
        return {"messages": [llm.invoke([system, *state["messages"]])]}

    def tools(
        state: MessagesState, config: RunnableConfig, *, store: BaseStore
    ) -> dict[str, Any]:
        user = config["configurable"].get("user_id", "default")
        replies = []
        for call in state["messages"][-1].tool_calls:
            fact = call["args"]["fact"]
            answer = interrupt(
                {"save_memory": fact}
            )  # the process may exit here; resume brings the answer
            if str(answer).strip().lower() in ("y", "yes", "ok", "approve"):
                store.put(("memories", user), str(uuid.uuid4()), {"fact": fact})
                replies.append(ToolMessage(f"saved: {fact}", tool_call_id=call["id"]))
            else:
                replies.append(
                    ToolMessage(
                        "the user declined; nothing saved", tool_call_id=call["id"]
                    )
                )
        return {"messages": replies}

    def route(state: MessagesState) -> str:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    graph = StateGraph(MessagesState)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", route, ["tools", END])
    graph.add_edge("tools", "agent")
    return graph.compile(checkpointer=saver, store=store)


def outcome(graph: Any, config: RunnableConfig) -> dict[str, Any]:
    """Where the thread stands: waiting for a human (and on what), or done with an answer."""
    state = graph.get_state(config)
    waiting = [i.value for task in state.tasks for i in task.interrupts]
    if waiting:
        return {"status": "waiting", "question": waiting[0]}
    return {"status": "done", "answer": state.values["messages"][-1].content}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="A LangGraph agent with engram memory and human approval."
    )
    parser.add_argument(
        "--db",
        default="sqlite:///agent.db",
        help="engram URL (sqlite:///..., postgresql://...)",
    )
    parser.add_argument(
        "--base-url",
        default="https://api.openai.com/v1",
        help="OpenAI-compatible API base URL",
    )
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument(
        "--api-key", default="not-needed-locally", help="API key of the chat model"
    )
    parser.add_argument(
        "--user", default="default", help="whose long-term memories to use"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ask = sub.add_parser("ask", help="send a message on a thread")
    ask.add_argument("thread")
    ask.add_argument("message")
    resume = sub.add_parser(
        "resume", help="answer the question a paused thread waits on"
    )
    resume.add_argument("thread")
    resume.add_argument("answer")
    args = parser.parse_args(argv)

    model = ChatOpenAI(
        model=args.model, base_url=args.base_url, api_key=args.api_key, max_retries=0
    )
    with Memory(args.db) as memory:
        graph = build_graph(model, EngramSaver(memory), EngramStore(memory))
        config: RunnableConfig = {
            "configurable": {"thread_id": args.thread, "user_id": args.user}
        }
        if args.command == "ask":
            graph.invoke({"messages": [("user", args.message)]}, config)
        else:
            graph.invoke(Command(resume=args.answer), config)
        print(json.dumps(outcome(graph, config)))


if __name__ == "__main__":
    main()
