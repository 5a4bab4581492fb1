"""The OpenAI-compatible client: requests, retries with backoff, timeouts, typed errors, schema parsing.

Every test here runs against the local fake server of ``conftest.py`` (stdlib
http.server in a thread speaking the chat-completions protocol), except the
last, which uses the real model when ENGRAM_LLM_BASE_URL is set.
"""

from __future__ import annotations

import socket

import pytest
from pydantic import BaseModel

import engram
from engram.llm.client import LLMClient


class Answer(BaseModel):
    answer: int


def test_chat_sends_the_openai_request_and_returns_the_text(fake_llm):
    """Fake server, valid response."""
    fake_llm.reply("Hello!")
    with fake_llm.client() as client:
        assert client.chat([{"role": "user", "content": "hi"}], max_tokens=5) == "Hello!"
    body = fake_llm.requests[0]
    assert body["model"] == "fake-model"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["max_tokens"] == 5 and body["temperature"] == 0.0
    assert fake_llm.headers[0]["Authorization"] == "Bearer sk-test-secret"


def test_transient_errors_are_retried_with_exponential_backoff(fake_llm):
    """Fake server: two HTTP 500/503 responses, then a valid one."""
    fake_llm.reply("boom", status=500).reply("busy", status=503).reply("ok")
    client = fake_llm.client(backoff=0.1, max_backoff=10.0)
    delays: list[float] = []
    client._sleep = delays.append
    assert client.chat([{"role": "user", "content": "x"}]) == "ok"
    assert len(fake_llm.requests) == 3
    assert len(delays) == 2
    assert 0.05 <= delays[0] <= 0.1 and 0.1 <= delays[1] <= 0.2  # doubles, with jitter in [50%, 100%]
    client.close()


def test_retry_after_is_honoured(fake_llm):
    """Fake server: HTTP 429 with Retry-After, then a valid response."""
    fake_llm.reply("slow down", status=429, headers={"Retry-After": "2"}).reply("ok")
    client = fake_llm.client(max_backoff=5.0)
    delays: list[float] = []
    client._sleep = delays.append
    assert client.chat([{"role": "user", "content": "x"}]) == "ok"
    assert delays == [2.0]


def test_retries_run_out_into_an_llm_error(fake_llm):
    """Fake server: HTTP 502 every time."""
    for _ in range(3):
        fake_llm.reply("bad gateway", status=502)
    client = fake_llm.client(max_retries=2)
    client._sleep = lambda s: None
    with pytest.raises(engram.LLMError, match=r"HTTP 502.*after 3 tries"):
        client.chat([{"role": "user", "content": "x"}])
    assert len(fake_llm.requests) == 3


def test_client_errors_are_not_retried_and_never_show_the_key(fake_llm):
    """Fake server: HTTP 401."""
    fake_llm.reply("invalid api key", status=401)
    client = fake_llm.client()
    with pytest.raises(engram.LLMError, match="HTTP 401") as info:
        client.chat([{"role": "user", "content": "x"}])
    assert len(fake_llm.requests) == 1
    assert "sk-test-secret" not in str(info.value) and "sk-test-secret" not in repr(client)


def test_a_slow_server_times_out_into_an_llm_error(fake_llm):
    """Fake server: slow responses (1 s delay) against a 0.2 s timeout, retried, then an LLMError."""
    fake_llm.reply("late", delay=1.0).reply("late", delay=1.0)
    client = fake_llm.client(timeout=0.2, max_retries=1)
    with pytest.raises(engram.LLMError, match="timed out"):
        client.chat([{"role": "user", "content": "x"}])
    assert len(fake_llm.requests) == 2


def test_an_unreachable_server_is_an_llm_error():
    """No server at all: a closed local port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = LLMClient(f"http://127.0.0.1:{port}/v1", "m", max_retries=1, backoff=0.0)
    with pytest.raises(engram.LLMError, match="could not be reached"):
        client.chat([{"role": "user", "content": "x"}])


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"choices": []}', b'{"choices": [{"message": {"content": null}}]}'],
)
def test_malformed_protocol_responses_are_llm_errors(fake_llm, raw):
    """Fake server: HTTP 200 with bodies that break the chat-completions protocol."""
    fake_llm.reply(raw=raw)
    with pytest.raises(engram.LLMError):
        fake_llm.client().chat([{"role": "user", "content": "x"}])


def test_chat_json_parses_against_the_schema(fake_llm):
    """Fake server: a valid JSON reply, then one wrapped in a ```json fence."""
    fake_llm.reply({"answer": 42}).reply('```json\n{"answer": 7}\n```')
    client = fake_llm.client()
    assert client.chat_json([{"role": "user", "content": "q"}], Answer) == Answer(answer=42)
    assert client.chat_json([{"role": "user", "content": "q"}], Answer).answer == 7
    assert fake_llm.requests[0]["response_format"] == {"type": "json_object"}


def test_chat_json_retries_invalid_output_with_the_error(fake_llm):
    """Fake server: invalid output (not JSON, then wrong schema), then valid JSON."""
    fake_llm.reply("forty-two").reply({"answer": "many"}).reply({"answer": 42})
    result = fake_llm.client(output_retries=2).chat_json([{"role": "user", "content": "q"}], Answer)
    assert result.answer == 42
    assert len(fake_llm.requests) == 3
    retry = fake_llm.requests[1]["messages"]
    assert retry[-2] == {"role": "assistant", "content": "forty-two"}
    assert "not valid JSON" in retry[-1]["content"]
    assert "answer" in fake_llm.requests[2]["messages"][-1]["content"]


def test_chat_json_gives_up_with_a_typed_error(fake_llm):
    """Fake server: invalid output every time."""
    fake_llm.always("I cannot answer in JSON, sorry")
    with pytest.raises(engram.LLMOutputError, match="Answer schema after 2 tries"):
        fake_llm.client(output_retries=1).chat_json([{"role": "user", "content": "q"}], Answer)
    assert issubclass(engram.LLMOutputError, engram.LLMError)


def test_chat_json_extra_check_rejects_and_retries(fake_llm):
    """Fake server: a reply that fits the schema but fails the caller's check, then a good one."""
    fake_llm.reply({"answer": -1}).reply({"answer": 1})

    def positive(a: Answer) -> None:
        if a.answer < 0:
            raise ValueError("answer must be positive")

    assert fake_llm.client().chat_json([{"role": "user", "content": "q"}], Answer, check=positive).answer == 1
    assert "answer must be positive" in fake_llm.requests[1]["messages"][-1]["content"]


def test_from_settings_reads_the_llm_settings(monkeypatch, fake_llm):
    """Fake server; settings from ENGRAM_LLM_* environment variables."""
    monkeypatch.setenv("ENGRAM_LLM_BASE_URL", fake_llm.base_url)
    monkeypatch.setenv("ENGRAM_LLM_MODEL", "env-model")
    monkeypatch.setenv("ENGRAM_LLM_API_KEY", "sk-env")
    settings = engram.load_settings(database_url="memory://")
    fake_llm.reply("ok")
    with LLMClient.from_settings(settings) as client:
        assert client.chat([{"role": "user", "content": "x"}]) == "ok"
    assert fake_llm.requests[0]["model"] == "env-model"
    assert fake_llm.headers[0]["Authorization"] == "Bearer sk-env"
    assert "sk-env" not in repr(settings)


def test_from_settings_without_a_model_is_a_config_error():
    """No server needed: the settings are incomplete."""
    with pytest.raises(engram.ConfigError, match="ENGRAM_LLM_BASE_URL"):
        LLMClient.from_settings(engram.load_settings(database_url="memory://"))
    with pytest.raises(engram.ConfigError):
        LLMClient("not a url", "m")


def test_real_model_answers_in_json(real_llm):
    """Real model (only when ENGRAM_LLM_BASE_URL is set): a schema-checked JSON answer."""
    result = real_llm.chat_json(
        [{"role": "user", "content": 'What is 6 times 7? Reply with only {"answer": <number>}.'}], Answer
    )
    assert result.answer == 42
