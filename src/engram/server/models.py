"""Models of the server's control plane and of the REST request bodies.

Responses about memories, sessions and tasks use ``engram.models`` unchanged,
so REST, MCP and the CLI's ``--json`` share one set of field names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from engram.search.context import MAX_CONTEXT_WINDOW
from engram.search.query import MAX_QUERY_CHARS
from engram.validation import MAX_LIMIT, MAX_NAME_CHARS, MAX_TTL_SECONDS

# member: reads and writes its project's data. admin: a project admin (its own project's
# keys, variables, log and data). server_admin: the server administrator (every project,
# users, the whole log); its key belongs to the default project.
Role = Literal["member", "admin", "server_admin"]
ROLES: tuple[str, ...] = ("member", "admin", "server_admin")
ADMIN_ROLES = frozenset({"admin", "server_admin"})
# Keys and namespaces: what engram.validation.name accepts, written as a schema.
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")
]
# Projects, users and variables: short identifiers, safe in URLs and file names.
IDENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]
# The schema states the library's one limit; the library enforces it, so an over-long
# query is a QuerySyntaxError (400) over REST as in every other front end.
QueryText = Annotated[
    str,
    Field(
        description=f'Words, "phrase", a OR b, a AND b, prefix*, -word; at most {MAX_QUERY_CHARS} characters.',
        json_schema_extra={"maxLength": MAX_QUERY_CHARS},
    ),
]
Offset = Annotated[int, Field(ge=0, le=1_000_000_000)]
MAX_VARIABLE_BYTES = 64 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- control plane ------------------------------------------------------------------
class Project(_Model):
    """A tenant: every memory, session, task and variable belongs to exactly one."""

    id: str
    name: str
    created_at: datetime


class User(_Model):
    """A person or service that API keys can be issued to."""

    id: str
    name: str
    created_at: datetime


class ApiKey(_Model):
    """An API key as listed: never the key itself, only its visible prefix."""

    id: str
    prefix: str
    project: str
    role: Role
    user: str | None = None
    name: str | None = None
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class CreatedKey(ApiKey):
    """A new API key; ``key`` is shown this once and never stored."""

    key: str = Field(repr=False)


class VariableInfo(_Model):
    """A variable as listed: its name and times, never its value."""

    name: str
    created_at: datetime
    updated_at: datetime


class Variable(VariableInfo):
    """A variable with its decrypted value (only from an explicit get)."""

    value: str = Field(repr=False)


class Transaction(_Model):
    """One write through the server: who, which project, what, on what, how it ended, how long."""

    id: int
    at: datetime
    key_id: str | None = None
    key_prefix: str | None = None
    user: str | None = None
    project: str | None = None
    operation: str
    target: str | None = None
    outcome: str
    status: int
    duration_ms: float


class Principal(_Model):
    """Who is calling: the key, its project and its role."""

    key_id: str
    key_prefix: str
    project_id: str
    project: str
    role: Role
    user: str | None = None

    @property
    def is_server_admin(self) -> bool:
        """The server administrator: every project, users, the whole transaction log."""
        return self.role == "server_admin"

    @property
    def is_admin(self) -> bool:
        """A project admin of its own project, or the server administrator."""
        return self.role in ADMIN_ROLES


# -- request bodies -------------------------------------------------------------------
class StoreRequest(_Model):
    key: Name
    content: str
    namespace: Name = "default"
    metadata: dict[str, Any] | None = None
    ttl: Annotated[float, Field(gt=0, le=MAX_TTL_SECONDS)] | None = Field(None, description="Seconds until it expires.")
    context: str | None = Field(
        None,
        description="What surrounds the memory (earlier turns, a date, a title): embedded with it and stored as "
        "the entry's context (replaced by each store of the key).",
    )


class StoreManyItem(_Model):
    key: Name
    content: str
    namespace: Name | None = None
    metadata: dict[str, Any] | None = None
    ttl: Annotated[float, Field(gt=0, le=MAX_TTL_SECONDS)] | None = None
    context: str | None = Field(
        None,
        description="What surrounds the memory (earlier turns, a date, a title): embedded with it and stored as "
        "the entry's context (replaced by each store of the key).",
    )


class StoreManyRequest(_Model):
    items: Annotated[list[StoreManyItem], Field(max_length=10_000)]
    namespace: Name = "default"
    context_window: Annotated[int, Field(ge=0, le=MAX_CONTEXT_WINDOW)] = Field(
        0, description="Embed each item with the contents of up to this many items before it (same namespace) as context "
        "(stored as each entry's context)."
    )


class StoreManyResult(_Model):
    stored: int


class SearchRequest(_Model):
    query: QueryText
    namespace: Name | None = None
    limit: Limit = 10
    metadata: dict[str, str | int | float | bool | None] | None = None


class DeletedCount(_Model):
    deleted: int


class SessionStartRequest(_Model):
    metadata: dict[str, Any] | None = None
    user_id: Name | None = Field(None, description="The user whose session this is.")
    agent_id: Name | None = Field(None, description="The agent that runs it.")


class SessionMetadataRequest(_Model):
    metadata: dict[str, Any] = Field(description="Keys to set; a key set to null is removed (unless replace).")
    replace: bool = Field(False, description="Replace the whole metadata instead of merging into it.")


class SessionEndRequest(_Model):
    status: Literal["ended", "error"] = "ended"


class TaskCreateRequest(_Model):
    agent_type: Name
    input: Any = None
    session_id: Name | None = None


class TaskUpdateRequest(_Model):
    status: Literal["pending", "running", "completed", "failed"]
    output: Any = None


class VariableSetRequest(_Model):
    value: Annotated[str, Field(max_length=MAX_VARIABLE_BYTES)]


class ProjectCreateRequest(_Model):
    name: Ident


class UserCreateRequest(_Model):
    name: Ident


class KeyCreateRequest(_Model):
    project: Ident | None = Field(None, description="The key's project (default: the caller's own project).")
    role: Role = "member"
    user: Ident | None = None
    name: Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")] | None = None
    expires_in_days: Annotated[float, Field(gt=0, le=36500)] | None = None


class PruneResult(_Model):
    pruned: int


# -- errors ---------------------------------------------------------------------------
class ErrorDetail(_Model):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(_Model):
    type: str = Field(description="The engram error class, e.g. NotFound, InvalidInput, AuthError.")
    status: int
    message: str
    details: list[ErrorDetail] | None = None


class ErrorResponse(_Model):
    """The one shape of every error the server answers with."""

    error: ErrorBody
