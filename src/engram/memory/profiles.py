"""The profiles part of the facade: what is known about a user, trait by trait, with its sources."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from engram import validation as check
from engram._time import utcnow
from engram.errors import InvalidInput
from engram.models import Profile, Trait

if TYPE_CHECKING:
    from engram.stores.base import Store

PROFILE_MODES = ("update", "replace")


class Profiles:
    """User profiles in ``backend``; a profile's JSON up to ``max_bytes``."""

    def __init__(self, backend: "Store", *, max_bytes: int) -> None:
        self.backend = backend
        self.max_bytes = max_bytes

    def profile(self, user_id: str) -> Profile | None:
        """What is known about a user, or None."""
        return self.backend.get_profile(check.name("user_id", user_id))

    def profile_save(
        self,
        user_id: str,
        traits: Mapping[str, Any],
        *,
        mode: str = "update",
        schema_name: str | None = None,
        schema_version: str | None = None,
    ) -> Profile:
        """Merge (``update``) traits into a user's profile, or ``replace`` it.

        ``traits`` maps a name to a :class:`Trait`, or to a dict with ``value``
        and ``source_message_ids``. In ``update`` mode a trait whose value is
        None is removed, and a trait restated with the same value keeps its
        earlier sources too. ``schema_name`` / ``schema_version`` record the
        profile schema the traits fill (None: free-form).
        """
        for field, value in (("schema_name", schema_name), ("schema_version", schema_version)):
            if value is not None:
                check.name(field, value)
        check.name("user_id", user_id)
        check.choice("mode", mode, PROFILE_MODES)
        if not isinstance(traits, Mapping):
            raise InvalidInput(f"traits must be a dict of name -> trait, not {type(traits).__name__}")
        now = utcnow()
        new: dict[str, Trait] = {}
        for name, raw in traits.items():
            check.name("trait name", name)
            if isinstance(raw, Trait):
                value, sources = raw.value, builtins.list(raw.source_message_ids)
            elif isinstance(raw, Mapping) and "value" in raw and set(raw) <= {"value", "source_message_ids", "updated_at"}:
                value, sources = raw["value"], raw.get("source_message_ids") or []
            else:
                raise InvalidInput(f"trait {name!r} must be a Trait or a dict with value and source_message_ids")
            if not isinstance(sources, (list, tuple)) or not all(isinstance(s, str) for s in sources):
                raise InvalidInput(f"source_message_ids of trait {name!r} must be a list of message ids")
            check.json_value(f"trait {name!r}", value, self.max_bytes)
            new[name] = Trait.model_construct(value=value, source_message_ids=builtins.list(sources), updated_at=now)
        merged: dict[str, Trait] = {}
        if mode == "update":
            old = self.backend.get_profile(user_id)
            merged = dict(old.traits) if old else {}
            for name, trait in new.items():
                previous = merged.get(name)
                if trait.value is None:
                    merged.pop(name, None)
                    continue
                if previous is not None and previous.value == trait.value:
                    sources = builtins.list(dict.fromkeys([*previous.source_message_ids, *trait.source_message_ids]))
                    trait = trait.model_copy(update={"source_message_ids": sources})
                merged[name] = trait
        else:
            merged = {n: t for n, t in new.items() if t.value is not None}
        check.json_value("profile", {n: t.model_dump(mode="json") for n, t in merged.items()}, self.max_bytes)
        profile = Profile.model_construct(
            user_id=user_id, traits=merged, updated_at=now, schema_name=schema_name, schema_version=schema_version
        )
        self.backend.put_profile(profile)
        return profile

    def profile_delete(self, user_id: str) -> bool:
        """Delete a user's profile; True when it existed."""
        return self.backend.delete_profile(check.name("user_id", user_id))
