"""A fake OpenAI chat-completions server for the LLM-dependent tests.

``fake_llm`` is a stdlib ``http.server`` in a thread on 127.0.0.1 that speaks
``POST /v1/chat/completions``. Each test scripts its replies: valid JSON,
invalid output, HTTP errors, or slow answers (a delay before replying).

When ``ENGRAM_LLM_BASE_URL`` is set in the environment that runs pytest, the
``real_llm`` fixture gives a client for that real model (the settings are read
here at import time, before the autouse fixture hides ENGRAM_* variables).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import engram
from engram.llm.client import LLMClient

REAL_LLM = {k: v for k, v in os.environ.items() if k.startswith("ENGRAM_LLM_")}

Responder = Callable[[dict[str, Any]], Any]


@dataclass
class Reply:
    """One scripted answer: ``content`` (str, or a callable of the request body), or a raw body."""

    content: Any = None
    status: int = 200
    delay: float = 0.0
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


class FakeLLM:
    """The scripted server; ``requests`` holds every request body received."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.script: deque[Reply] = deque()
        self.default: Reply | None = None
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with fake._lock:
                    fake.requests.append(body)
                    fake.headers.append(dict(self.headers))
                    reply = fake.script.popleft() if fake.script else fake.default
                if self.path != "/v1/chat/completions" or reply is None:
                    self._send(404, b'{"error": {"message": "no scripted reply"}}', {})
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.raw is not None:
                    payload = reply.raw
                else:
                    content = reply.content(body) if callable(reply.content) else reply.content
                    if reply.status >= 300:
                        payload = json.dumps({"error": {"message": str(content)}}).encode()
                    else:
                        payload = json.dumps(
                            {
                                "id": "chatcmpl-test",
                                "object": "chat.completion",
                                "model": body.get("model"),
                                "choices": [
                                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                                ],
                            }
                        ).encode()
                self._send(reply.status, payload, reply.headers)

            def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a slow reply must not hold up teardown
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def reply(self, content: Any = None, **options: Any) -> "FakeLLM":
        """Queue one reply; ``content`` may be a dict (sent as JSON text) or a callable of the request."""
        if isinstance(content, (dict, list)):
            content = json.dumps(content)
        self.script.append(Reply(content, **options))
        return self

    def always(self, content: Any) -> None:
        """Answer every request not scripted otherwise with ``content``."""
        if isinstance(content, (dict, list)):
            content = json.dumps(content)
        self.default = Reply(content)

    def client(self, **options: Any) -> LLMClient:
        options = {"model": "fake-model", "api_key": "sk-test-secret", "timeout": 5.0, "backoff": 0.0, **options}
        return LLMClient(self.base_url, options.pop("model"), **options)

    def user_prompt(self, index: int = -1) -> str:
        """The last user message of request ``index``."""
        return [m for m in self.requests[index]["messages"] if m["role"] == "user"][-1]["content"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    server = FakeLLM()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def memory() -> Iterator[engram.Memory]:
    with engram.Memory("memory://") as m:
        yield m


@pytest.fixture
def real_llm() -> Iterator[LLMClient]:
    """A client for the real model named by ENGRAM_LLM_* (skipped when ENGRAM_LLM_BASE_URL is unset)."""
    if not REAL_LLM.get("ENGRAM_LLM_BASE_URL"):
        pytest.skip("set ENGRAM_LLM_BASE_URL (and ENGRAM_LLM_MODEL, ENGRAM_LLM_API_KEY) to test against a real model")
    settings = engram.load_settings(
        database_url="memory://", **{k.removeprefix("ENGRAM_").lower(): v for k, v in REAL_LLM.items()}
    )
    with LLMClient.from_settings(settings) as client:
        yield client
