"""An OpenAI-compatible chat-completions client over httpx.

``POST {base_url}/chat/completions`` with a Bearer key. Transient failures
(timeouts, connection errors, 408/409/429/5xx) are retried with exponential
backoff and jitter, honouring ``Retry-After``; then, like every other failure,
they raise :class:`~engram.errors.LLMError`. :meth:`LLMClient.chat_json`
parses the reply against a pydantic schema, asks again when it does not
match, and raises :class:`~engram.errors.LLMOutputError` when it never does.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from engram.errors import ConfigError, LLMError, LLMOutputError

if TYPE_CHECKING:
    from engram.config import Settings

T = TypeVar("T", bound=BaseModel)
ChatMessage = dict[str, Any]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL)


class LLMClient:
    """Chat completions against any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, ...).

    Args:
        base_url: the API root, e.g. ``https://api.openai.com/v1``.
        model: the model name sent with every request.
        api_key: sent as ``Authorization: Bearer ...`` when given.
        timeout: seconds for one HTTP request.
        max_retries: retries of a transient failure (so ``max_retries + 1`` tries).
        backoff: first delay in seconds; doubles each retry, capped at ``max_backoff``.
        output_retries: how often ``chat_json`` asks again after output that does not parse.
        json_mode: send ``response_format={"type": "json_object"}`` from ``chat_json``.
        transport: an httpx transport (tests, proxies).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        output_retries: int = 2,
        json_mode: bool = True,
        transport: httpx.BaseTransport | None = None,
    ):
        if not base_url or "://" not in base_url:
            raise ConfigError(f"llm_base_url must be a URL such as https://api.openai.com/v1, got {base_url!r}")
        if not model:
            raise ConfigError("llm_model must name a chat model")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.output_retries = output_retries
        self.json_mode = json_mode
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers, transport=transport)
        self._sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, settings: "Settings", **overrides: Any) -> "LLMClient":
        """Build from ``llm_base_url``, ``llm_model``, ``llm_api_key``, ``llm_timeout``, ``llm_max_retries``.

        Raises:
            ConfigError: base URL or model is not set.
        """
        if not settings.llm_base_url or not settings.llm_model:
            raise ConfigError(
                "no language model configured: set llm_base_url and llm_model "
                "(ENGRAM_LLM_BASE_URL, ENGRAM_LLM_MODEL, and ENGRAM_LLM_API_KEY if the server needs one)"
            )
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        options: dict[str, Any] = {"api_key": key, "timeout": settings.llm_timeout, "max_retries": settings.llm_max_retries}
        return cls(settings.llm_base_url, settings.llm_model, **{**options, **overrides})

    def __enter__(self) -> "LLMClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"LLMClient({self.base_url!r}, model={self.model!r})"  # never the key

    # -- plain chat ------------------------------------------------------------------
    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            retry_after = response.headers.get("retry-after")
            try:
                if retry_after is not None:
                    return min(max(float(retry_after), 0.0), self.max_backoff)
            except ValueError:
                pass
        delay = min(self.backoff * (2**attempt), self.max_backoff)
        return delay * (0.5 + random.random() / 2)  # jitter: callers that failed together retry apart

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        problem = "no attempt"
        for attempt in range(self.max_retries + 1):
            response: httpx.Response | None = None
            try:
                response = self._http.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                problem = f"timed out after {self._http.timeout.read}s"
            except httpx.TransportError as exc:
                problem = f"could not be reached ({type(exc).__name__}: {exc})"
            else:
                if response.status_code < 300:
                    try:
                        data = response.json()
                    except ValueError:
                        raise LLMError(f"the LLM at {self.base_url} answered with a body that is not JSON") from None
                    if not isinstance(data, dict):
                        raise LLMError(f"the LLM at {self.base_url} answered with JSON that is not an object")
                    return data
                detail = response.text[:300].replace("\n", " ")
                problem = f"answered HTTP {response.status_code}: {detail}"
                if response.status_code not in RETRY_STATUSES:
                    raise LLMError(f"the LLM at {self.base_url} {problem}")
            if attempt < self.max_retries:
                self._sleep(self._delay(attempt, response))
        raise LLMError(f"the LLM at {self.base_url} {problem} (after {self.max_retries + 1} tries)")

    def chat(
        self,
        messages: Sequence[ChatMessage],
        *,
        temperature: float | None = 0.0,
        max_tokens: int | None = None,
        response_format: dict[str, Any] | None = None,
    ) -> str:
        """Send chat messages; returns the text of the first choice.

        Raises:
            LLMError: unreachable, refused, timed out after retries, or a reply without text.
        """
        body: dict[str, Any] = {"model": self.model, "messages": list(messages)}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if response_format is not None:
            body["response_format"] = response_format
        data = self._post(body)
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise LLMError(f"the LLM at {self.base_url} answered without choices[0].message.content") from None
        if not isinstance(content, str):
            raise LLMError(f"the LLM at {self.base_url} answered with no text content")
        return content

    # -- structured output -------------------------------------------------------------
    def chat_json(
        self,
        messages: Sequence[ChatMessage],
        schema: type[T],
        *,
        check: Callable[[T], None] | None = None,
        max_tokens: int | None = None,
    ) -> T:
        """Ask for a JSON object and parse it as ``schema``; retry with the error when it does not fit.

        Args:
            check: further validation of the parsed object; raises ValueError to reject it.
        Raises:
            LLMOutputError: no reply matched the schema within ``output_retries`` retries.
            LLMError: the call itself failed.
        """
        conversation = list(messages)
        error = ""
        for _ in range(self.output_retries + 1):
            text = self.chat(
                conversation,
                max_tokens=max_tokens,
                response_format={"type": "json_object"} if self.json_mode else None,
            )
            try:
                parsed = schema.model_validate(json.loads(_unfence(text)))
                if check is not None:
                    check(parsed)
                return parsed
            except json.JSONDecodeError as exc:
                error = f"not valid JSON ({exc.msg} at position {exc.pos})"
            except ValidationError as exc:
                error = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'object'}: {e['msg']}" for e in exc.errors()[:5]
                )
            except ValueError as exc:
                error = str(exc)
            conversation = [
                *messages,
                {"role": "assistant", "content": text[:2000]},
                {
                    "role": "user",
                    "content": f"That reply was rejected: {error}. Answer again with only one JSON object "
                    f"that follows the requested format exactly.",
                },
            ]
        raise LLMOutputError(
            f"the LLM's output did not match the {schema.__name__} schema after "
            f"{self.output_retries + 1} tries; last problem: {error}"
        )


def _unfence(text: str) -> str:
    """Models often wrap JSON in a ```json fence despite being asked not to."""
    m = _FENCE.match(text)
    return m.group(1) if m else text.strip()
