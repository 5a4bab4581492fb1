"""The running summary of a session, updated incrementally by an LLM.

Each update sends the previous summary and only the messages after it (in
chunks), and stores the new summary with the number of messages it covers
and the ``seq`` of the newest one. Messages are quoted as data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from engram.errors import InvalidInput
from engram.llm._prompt import DATA_RULE, data_block, messages_data
from engram.models import Message, Summary
from engram.stores.base import MessageQuery

if TYPE_CHECKING:
    from engram.llm.client import LLMClient
    from engram.memory import Memory

MAX_SUMMARY_CHARS = 8000

SYSTEM_PROMPT = (
    "You maintain the running summary of a conversation between a user and an AI assistant. "
    "You receive the previous summary (possibly empty) and the messages that came after it. "
    "Write an updated summary that keeps every fact, decision, open question and user preference "
    "that may matter later, in plain prose, at most about 300 words. "
    + DATA_RULE
    + ' Reply with only a JSON object: {"summary": "<the updated summary>"}.'
)


class SummaryOutput(BaseModel):
    """What the model must return."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, max_length=MAX_SUMMARY_CHARS)


class Summarizer:
    """Keeps ``memory.summary(session_id)`` up to date.

    Args:
        every: update once this many messages are not yet covered (the cadence).
        chunk: at most this many new messages per LLM call.
    """

    def __init__(self, memory: "Memory", llm: "LLMClient", *, every: int = 10, chunk: int = 50):
        if every < 1 or chunk < 1:
            raise InvalidInput("every and chunk must be at least 1")
        self.memory = memory
        self.llm = llm
        self.every = every
        self.chunk = chunk

    def pending(self, session_id: str) -> int:
        """Stored messages of the session that the summary does not cover yet."""
        current = self.memory.summary(session_id)
        return self.memory.backend.count_messages(session_id, after_seq=current.last_seq if current else 0)

    def maybe_update(self, session_id: str) -> Summary | None:
        """Update when at least ``every`` messages are uncovered; returns the new summary, or None."""
        if self.pending(session_id) < self.every:
            return None
        return self.update(session_id)

    def update(self, session_id: str, messages: Sequence[Message] | None = None) -> Summary | None:
        """Fold new messages into the summary now and store it.

        ``messages`` defaults to the stored messages after the summary's
        ``last_seq``; pass them explicitly when they are not stored (then they
        count towards ``message_count`` but ``last_seq`` only moves with stored
        ones). Returns the stored summary, or the current one (None when there
        is none) when there is nothing new.

        Raises:
            LLMError / LLMOutputError: nothing is stored then; a later update catches up.
        """
        current = self.memory.summary(session_id)
        if messages is None:
            after = current.last_seq if current else 0
            messages = self.memory.backend.list_messages(MessageQuery(session_id=session_id, after_seq=after))
        if not messages:
            return current
        text = current.content if current else ""
        count = current.message_count if current else 0
        last_seq = current.last_seq if current else 0
        for start in range(0, len(messages), self.chunk):
            batch = messages[start : start + self.chunk]
            text = self._fold(text, batch)
            count += len(batch)
            last_seq = max([last_seq, *(m.seq for m in batch)])
        return self.memory.summary_save(session_id, text, message_count=count, last_seq=last_seq)

    def _fold(self, previous: str, messages: Sequence[Message]) -> str:
        prompt = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {
                "role": "user",
                "content": data_block("previous-summary", previous)
                + "\n"
                + data_block("new-messages", messages_data(messages))
                + '\nReturn the updated summary as {"summary": "..."}.',
            },
        ]
        return self.llm.chat_json(prompt, SummaryOutput).summary

