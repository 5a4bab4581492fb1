"""What a user profile may hold: a developer's schema, or fields the model names itself.

``ProfileSchema.of(spec)`` takes a pydantic model class or a JSON Schema
(a dict with ``properties``). Each trait the model returns is checked against
its field: a value that does not fit rejects the reply (the client asks again,
then raises ``LLMOutputError``); a name outside the schema is dropped.

Dynamic profiles (``dynamic_user_profile=True``) let the model name its own
fields, within caps: at most :data:`MAX_DYNAMIC_FIELDS` fields in a reply and
in the stored profile (the least recently updated go first), each a number, a
bool or a string of at most :data:`MAX_DYNAMIC_VALUE_CHARS` characters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from engram.errors import InvalidInput, MissingDependency

MAX_DYNAMIC_FIELDS = 20
MAX_DYNAMIC_VALUE_CHARS = 200


@dataclass(frozen=True)
class ProfileSchema:
    """A profile schema: its name, version, JSON Schema (shown to the model) and field checks."""

    name: str
    version: str
    json_schema: dict[str, Any]
    checks: dict[str, Callable[[Any], Any]]  # field -> value as stored (raises ValueError)

    @classmethod
    def of(cls, spec: Any) -> "ProfileSchema":
        """Build from a pydantic model class or a JSON Schema dict.

        The version is the model's ``schema_version`` attribute (or the JSON
        Schema's ``version``), else a hash of the JSON Schema, so a changed
        schema is told apart from the one a stored profile was filled with.

        Raises:
            InvalidInput: neither a pydantic model class nor a JSON Schema object with properties.
        """
        if isinstance(spec, type) and issubclass(spec, BaseModel):
            return cls._of_model(spec)
        if isinstance(spec, dict):
            return cls._of_json_schema(spec)
        raise InvalidInput(
            "user_profile_schema must be a pydantic model class or a JSON Schema dict with properties, "
            f"not {type(spec).__name__}"
        )

    @classmethod
    def _of_model(cls, model: type[BaseModel]) -> "ProfileSchema":
        schema = model.model_json_schema()
        checks: dict[str, Callable[[Any], Any]] = {}
        for field, info in model.model_fields.items():
            adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, info])  # keeps the field's constraints
            checks[info.alias or field] = _checker(adapter)
        version = getattr(model, "schema_version", None)
        return cls(model.__name__, str(version) if version is not None else _digest(schema), schema, checks)

    @classmethod
    def _of_json_schema(cls, schema: dict[str, Any]) -> "ProfileSchema":
        properties = schema.get("properties")
        if not isinstance(properties, dict) or not properties:
            raise InvalidInput("a JSON Schema user_profile_schema needs an object of properties (the profile's fields)")
        try:
            import jsonschema
        except ImportError:
            raise MissingDependency(
                "a JSON Schema user_profile_schema needs the jsonschema package: pip install 'engram[openai]'"
            ) from None
        validator_class = jsonschema.validators.validator_for(schema)
        try:
            validator_class.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInput(f"user_profile_schema is not a valid JSON Schema: {exc.message}") from None
        # Each field is checked alone against the whole schema ($defs and all), nothing required.
        single = {k: v for k, v in schema.items() if k not in ("required", "version")}
        validator = validator_class({**single, "type": "object"})

        def checker(field: str) -> Callable[[Any], Any]:
            def check(value: Any) -> Any:
                errors = sorted(validator.iter_errors({field: value}), key=lambda e: list(e.path))
                if errors:
                    raise ValueError(errors[0].message)
                return value

            return check

        version = schema.get("version")
        return cls(
            str(schema.get("title") or "profile"),
            str(version) if version is not None else _digest(schema),
            schema,
            {field: checker(field) for field in properties},
        )

    def prompt(self) -> str:
        """The instruction naming the fields to fill (the developer's schema, not user data)."""
        return (
            " Fill only the fields of this JSON Schema, each trait named exactly as a property and with a value "
            f"valid for it; leave out what the messages do not tell: {json.dumps(self.json_schema, ensure_ascii=False)}"
        )


def _checker(adapter: TypeAdapter[Any]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        try:
            return adapter.dump_python(adapter.validate_python(value), mode="json")
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"] for e in exc.errors()[:3])) from None

    return check


def _digest(schema: dict[str, Any]) -> str:
    canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


DYNAMIC_PROMPT = (
    f" Name at most {MAX_DYNAMIC_FIELDS} fields yourself; each value is a number, true/false or a short "
    f"string (at most {MAX_DYNAMIC_VALUE_CHARS} characters), never a list or an object."
)


def check_dynamic_value(name: str, value: Any) -> None:
    """A dynamic field holds a scalar or a short string (None retracts it).

    Raises:
        ValueError: the reason, for the model to correct.
    """
    if value is None or isinstance(value, (bool, int, float)):
        return
    if isinstance(value, str):
        if len(value) > MAX_DYNAMIC_VALUE_CHARS:
            raise ValueError(
                f"trait {name!r} is {len(value)} characters; the limit is {MAX_DYNAMIC_VALUE_CHARS}: shorten it"
            )
        return
    raise ValueError(f"trait {name!r} must be a number, true/false or a short string, not a {type(value).__name__}")
