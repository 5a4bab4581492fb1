"""Schemathesis against the app's own OpenAPI schema, in process: every check, no server error.

Bounded (few examples per operation) so it stays well under two minutes. Positive
(schema-valid) requests may still be refused with 400/413/422 where a rule cannot
be written in JSON Schema: the search query language, byte limits of content
and metadata, JSON text in a query parameter.
"""

from __future__ import annotations

import json

import pytest

schemathesis = pytest.importorskip("schemathesis")

from engram import load_settings  # noqa: E402
from engram.server.app import create_app  # noqa: E402
from engram.server.tenancy import Tenancy  # noqa: E402

_tenancy = Tenancy(load_settings(database_url="memory://"))
_admin_key = _tenancy.control.bootstrap().key
_app = create_app(tenancy=_tenancy, max_auth_failures=10**9)
_config = schemathesis.config.SchemathesisConfig.from_str(
    f"""
headers = {{ Authorization = {json.dumps("Bearer " + _admin_key)} }}

[generation]
max-examples = 8

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "413", "422", "429"]
"""
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _app, config=_config)


@schema.parametrize()
def test_api(case) -> None:
    response = case.call_and_validate()
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and case.method != "HEAD":  # a HEAD answer has no body
        body = response.json()
        assert set(body) == {"error"} and set(body["error"]) == {"type", "status", "message", "details"}
