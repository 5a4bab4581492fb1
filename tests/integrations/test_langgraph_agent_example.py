"""examples/langgraph_agent.py end to end, in separate processes: the agent asks to save a
memory, pauses on ``interrupt()`` and its process exits; a second process resumes the
thread from engram (``EngramSaver``) with the human's approval and the memory lands in
``EngramStore``; a third process, on a new thread, answers from that long-term memory.

The chat model is ``langchain-openai``'s ``ChatOpenAI`` talking to a small local HTTP
server, started here, that speaks the OpenAI chat-completions protocol (``POST
/v1/chat/completions``, tool calls included) and answers by a fixed script: a
"remember: X" message gets a ``save_memory`` tool call, a tool result gets "Done: ...",
anything else gets back what the system prompt says is known about the user.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langgraph.graph")
pytest.importorskip("langchain_openai")

from engram import Memory
from engram.integrations.langgraph import EngramStore
from tests.conftest import BACKEND_FACTORIES

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "langgraph_agent.py"


def scripted_reply(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message the script gives for a chat-completions request body."""
    messages = body["messages"]
    last = messages[-1]
    if last["role"] == "tool":
        return {"role": "assistant", "content": f"Done: {last['content']}"}
    text = last.get("content") or ""
    if "remember:" in text.lower():
        fact = text[text.lower().index("remember:") + len("remember:") :].strip()
        call = {"id": "call_1", "type": "function",
                "function": {"name": "save_memory", "arguments": json.dumps({"fact": fact})}}  # fmt: skip
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    system = next(m["content"] for m in messages if m["role"] == "system")
    return {
        "role": "assistant",
        "content": "From memory: " + system.split("user:\n", 1)[1],
    }


@pytest.fixture
def chat_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            received.append(body)
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            message = scripted_reply(body)
            payload = json.dumps({
                "id": f"chatcmpl-{len(received)}", "object": "chat.completion", "created": 0, "model": body["model"],
                "choices": [{"index": 0, "message": message,
                             "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", received
    server.shutdown()
    server.server_close()


def run_example(url: str, base_url: str, *args: str) -> dict[str, Any]:
    """One process of the example; its one JSON line."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--db", url, "--base-url", base_url, "--user", "ann", *args],
        capture_output=True,
        check=False, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"])
def test_agent_pauses_in_one_process_and_resumes_in_another(
    backend: str, tmp_path: Path, chat_server: tuple[str, list[dict[str, Any]]]
) -> None:
    base_url, received = chat_server
    with BACKEND_FACTORIES[backend](tmp_path) as url:
        first = run_example(
            url, base_url, "ask", "t1", "Please remember: the user loves pizza"
        )
        assert first == {
            "status": "waiting",
            "question": {"save_memory": "the user loves pizza"},
        }
        with Memory(url) as memory:
            assert (
                EngramStore(memory).search(("memories", "ann")) == []
            )  # nothing saved before approval

        second = run_example(url, base_url, "resume", "t1", "yes")
        assert second == {
            "status": "done",
            "answer": "Done: saved: the user loves pizza",
        }
        tool_turn = received[-1]["messages"]
        assert [m["role"] for m in tool_turn] == [
            "system",
            "user",
            "assistant",
            "tool",
        ]  # history came from engram

        third = run_example(
            url, base_url, "ask", "t2", "What does the user love to eat?"
        )
        assert third["status"] == "done" and "the user loves pizza" in third["answer"]
        with Memory(url) as memory:
            facts = [
                i.value["fact"] for i in EngramStore(memory).search(("memories", "ann"))
            ]
        assert facts == ["the user loves pizza"]
