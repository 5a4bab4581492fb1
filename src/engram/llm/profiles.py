"""User profiles: traits extracted by an LLM from a user's messages.

Each trait names the ids of the messages it came from; the model may only
cite ids it was shown, so a trait always points at real evidence. ``update``
merges into the stored profile (a null value removes a trait), ``replace``
swaps the profile for what these messages say.

With a ``schema`` (a pydantic model or JSON Schema, see ``_profile_schema``)
each trait must fit its field and names outside it are dropped; with
``dynamic`` the model names its own flat fields, within documented caps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from engram import validation as check
from engram.llm._profile_schema import (
    DYNAMIC_PROMPT,
    MAX_DYNAMIC_FIELDS,
    MAX_DYNAMIC_VALUE_CHARS,
    ProfileSchema,
    check_dynamic_value,
)
from engram.llm._prompt import DATA_RULE, data_block, messages_data
from engram.models import Message, Profile

__all__ = ["MAX_DYNAMIC_FIELDS", "MAX_DYNAMIC_VALUE_CHARS", "ProfileExtractor", "ProfileSchema"]

if TYPE_CHECKING:
    from engram.llm.client import LLMClient
    from engram.memory import Memory

TRAIT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_TRAITS = 50

SYSTEM_PROMPT = (
    "You extract durable facts about a user (name, preferences, goals, skills, constraints, "
    "relationships) from what the user said. Only state what the messages support; do not guess. "
    "Use short snake_case trait names (e.g. preferred_language, home_city). "
    "Each trait cites the ids of the messages it comes from. "
    + DATA_RULE
    + ' Reply with only a JSON object: {"traits": [{"name": "...", "value": <JSON value>, '
    '"source_message_ids": ["..."]}]}. Use value null to mark a known trait as no longer true. '
    'Reply {"traits": []} when the messages reveal nothing about the user.'
)


class TraitOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TRAIT_NAME.pattern)
    value: Any
    source_message_ids: list[str] = Field(min_length=1)


class ProfileOutput(BaseModel):
    """What the model must return."""

    model_config = ConfigDict(extra="forbid")

    traits: list[TraitOutput] = Field(max_length=MAX_TRAITS)


class SchemaTraitOutput(TraitOutput):
    name: str  # any name: those outside the schema are dropped, not refused


class SchemaProfileOutput(ProfileOutput):
    traits: list[SchemaTraitOutput] = Field(max_length=MAX_TRAITS)  # type: ignore[assignment]


class DynamicProfileOutput(ProfileOutput):
    traits: list[TraitOutput] = Field(max_length=MAX_DYNAMIC_FIELDS)


class ProfileExtractor:
    """Updates ``memory.profile(user_id)`` from messages.

    Args:
        mode: ``update`` (merge into the stored profile) or ``replace``.
        schema: a :class:`ProfileSchema`, pydantic model class or JSON Schema the profile must fill.
        dynamic: the model names its own fields (scalars and short strings, capped).
    """

    def __init__(
        self, memory: "Memory", llm: "LLMClient", *, mode: str = "update", schema: Any = None, dynamic: bool = False
    ):
        self.memory = memory
        self.llm = llm
        self.mode = check.choice("mode", mode, ("update", "replace"))
        self.schema = schema if schema is None or isinstance(schema, ProfileSchema) else ProfileSchema.of(schema)
        self.dynamic = bool(dynamic)

    def update(self, user_id: str, messages: Sequence[Message], *, mode: str | None = None) -> Profile | None:
        """Extract traits from ``messages`` (the user's own are used) and store the profile.

        Returns the stored profile, or the current one when no message is the user's.

        Raises:
            LLMError / LLMOutputError: nothing is stored then.
        """
        mode = self.mode if mode is None else check.choice("mode", mode, ("update", "replace"))
        check.name("user_id", user_id)
        own = [m for m in messages if m.role == "user" and m.user_id in (None, user_id)]
        if not own:
            return self.memory.profile(user_id)
        shown = {m.id for m in own}
        current = self.memory.profile(user_id) if mode == "update" else None
        known = {name: t.value for name, t in current.traits.items()} if current else {}

        schema = self.schema
        values: dict[str, Any] = {}  # the checked values of the accepted reply, as stored

        def cites_shown_messages(output: ProfileOutput) -> None:
            values.clear()
            for trait in output.traits:
                unknown = [i for i in trait.source_message_ids if i not in shown]
                if unknown:
                    raise ValueError(
                        f"trait {trait.name!r} cites message ids that were not given: {', '.join(unknown[:3])}"
                    )
                if schema is not None:
                    if trait.name not in schema.checks:
                        continue  # outside the schema: dropped
                    if trait.value is not None:
                        try:
                            values[trait.name] = schema.checks[trait.name](trait.value)
                        except ValueError as exc:
                            raise ValueError(f"trait {trait.name!r} does not fit the profile schema: {exc}") from None
                        continue
                elif self.dynamic:
                    check_dynamic_value(trait.name, trait.value)
                values[trait.name] = trait.value
            names = [t.name for t in output.traits]
            if len(names) != len(set(names)):
                raise ValueError("a trait name appears twice; give each trait once")

        instructions = SYSTEM_PROMPT
        output_schema: type[ProfileOutput] = ProfileOutput
        if schema is not None:
            instructions += schema.prompt()
            output_schema = SchemaProfileOutput
        elif self.dynamic:
            instructions += DYNAMIC_PROMPT
            output_schema = DynamicProfileOutput
        prompt = [
            {"role": "system", "content": instructions},
            {
                "role": "user",
                "content": data_block("known-traits", known)
                + "\n"
                + data_block("user-messages", messages_data(own, with_id=True))
                + "\nReturn the traits these messages add, change or retract.",
            },
        ]
        output = self.llm.chat_json(prompt, output_schema, check=cites_shown_messages)
        traits: dict[str, Any] = {
            t.name: {"value": values[t.name], "source_message_ids": t.source_message_ids}
            for t in output.traits
            if t.name in values
        }
        if self.dynamic and current is not None:
            traits.update(_over_the_cap(current, traits))
        return self.memory.profile_save(
            user_id,
            traits,
            mode=mode,
            schema_name=None if schema is None else schema.name,
            schema_version=None if schema is None else schema.version,
        )


def _over_the_cap(current: Profile, new: dict[str, Any]) -> dict[str, Any]:
    """Removals (value None) that keep a merged dynamic profile within MAX_DYNAMIC_FIELDS:
    the least recently updated traits go first."""
    kept = [n for n, t in new.items() if t["value"] is not None]
    old = sorted(
        ((t.updated_at, n) for n, t in current.traits.items() if n not in new), reverse=True
    )
    room = max(MAX_DYNAMIC_FIELDS - len(kept), 0)
    return {n: {"value": None, "source_message_ids": []} for _, n in old[room:]}
