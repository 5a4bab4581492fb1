"""The language-model layer: an OpenAI-compatible chat client, the session
summarizer and the user-profile extractor.

Stored text (messages, summaries, profiles) reaches a prompt only as quoted
JSON data inside delimited blocks, with an instruction that it is data; model
output is parsed against a pydantic schema and never stored half-parsed.
"""

from __future__ import annotations

from engram.llm.client import LLMClient
from engram.llm.profiles import ProfileExtractor
from engram.llm.summarizer import Summarizer

__all__ = ["LLMClient", "ProfileExtractor", "Summarizer"]
