"""The blob store over REST (``/api/v1/blobs``) and MCP (``blob_*`` tools), per project.

A real SQLite store and local blob directory; uploads over real HTTP (uvicorn on
loopback) where streaming and early 413s matter, the in-process test client elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from mcp.client import Client

from engram import load_settings
from engram.server.app import create_app
from engram.server.mcp import Target, build_mcp_server
from engram.server.mcp_blobs import MCP_BLOB_GET_MAX
from engram.server.tenancy import Tenancy

from .conftest import LiveServer

LIMIT = 3 * 1024 * 1024  # the blob limit of these servers


class Server:
    def __init__(self, tmp_path: Path):
        settings = load_settings(
            database_url=f"sqlite:///{tmp_path / 'engram.db'}",
            storage={"blob_store": {"max_blob_size": LIMIT, "store_path": str(tmp_path / "blobs")}},
            max_request_bytes=64 * 1024,  # far below the blob limit: uploads must not be held to it
        )
        self.root = tmp_path / "blobs"
        self.tenancy = Tenancy(settings)
        control = self.tenancy.control
        control.bootstrap()
        control.create_project("alpha")
        control.create_project("beta")
        self.keys = {p: control.create_key(p, "member").key for p in ("alpha", "beta")}
        self.app = create_app(tenancy=self.tenancy)
        self.client = TestClient(self.app)

    def h(self, project: str = "alpha", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[project]}", **extra}

    def files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.is_file())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path)
    with s.client:
        yield s
    s.tenancy.close()


def test_raw_upload_download_head_meta_list_delete(server):
    data = os.urandom(2 * 1024 * 1024 + 3)  # larger than max_request_bytes, under the blob limit
    up = server.client.post("/api/v1/blobs?name=photo.png&source=tool", content=data,
                            headers=server.h(**{"Content-Type": "image/png"}))  # fmt: skip
    assert up.status_code == 201, up.text
    ref = up.json()
    assert ref["id"] == hashlib.sha256(data).hexdigest() and ref["mime_type"] == "image/png" and ref["source"] == "tool"

    down = server.client.get(f"/api/v1/blobs/{ref['id']}", headers=server.h())
    assert down.status_code == 200 and down.content == data
    assert down.headers["content-type"] == "image/png" and down.headers["content-length"] == str(len(data))
    assert down.headers["content-disposition"].startswith("attachment") and down.headers["x-content-type-options"] == "nosniff"
    head = server.client.head(f"/api/v1/blobs/blob:{ref['id']}", headers=server.h())
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data)) and head.content == b""
    assert server.client.get(f"/api/v1/blobs/{ref['id']}/meta", headers=server.h()).json() == ref
    listed = server.client.get("/api/v1/blobs?source=tool", headers=server.h()).json()
    assert [b["id"] for b in listed] == [ref["id"]]
    stats = server.client.get("/api/v1/stats/blobs", headers=server.h()).json()
    assert (stats["count"], stats["total_size"], stats["backend"]) == (1, len(data), "local")

    assert server.client.delete(f"/api/v1/blobs/{ref['id']}", headers=server.h()).status_code == 204
    assert server.client.get(f"/api/v1/blobs/{ref['id']}", headers=server.h()).status_code == 404
    assert server.client.delete(f"/api/v1/blobs/{ref['id']}", headers=server.h()).status_code == 404


def test_multipart_upload_keeps_the_file_name_and_type(server):
    data = b"%PDF-1.7 a small document"
    up = server.client.post("/api/v1/blobs", files={"file": ("report.pdf", data, "application/pdf")}, headers=server.h())
    assert up.status_code == 201, up.text
    assert (up.json()["name"], up.json()["mime_type"], up.json()["size"]) == ("report.pdf", "application/pdf", len(data))
    none = server.client.post("/api/v1/blobs", files={"other": ("x", b"y")}, headers=server.h())
    assert none.status_code in (400, 422) and "file" in none.json()["error"]["message"]


def test_a_project_never_sees_another_projects_blobs(server):
    ref = server.client.post("/api/v1/blobs", content=b"alpha only", headers=server.h("alpha")).json()
    for method, path in (("GET", ""), ("HEAD", ""), ("GET", "/meta"), ("DELETE", "")):
        r = server.client.request(method, f"/api/v1/blobs/{ref['id']}{path}", headers=server.h("beta"))
        assert r.status_code == 404, (method, path)
    assert server.client.get("/api/v1/blobs", headers=server.h("beta")).json() == []
    assert server.client.get(f"/api/v1/blobs/{ref['id']}", headers=server.h("alpha")).content == b"alpha only"
    assert server.client.get("/api/v1/blobs").status_code == 401


@pytest.mark.parametrize("hostile", ["..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a%00b", "x" * 300, "%2E%2E", "blob:..%2Fx"])
def test_hostile_ids_are_4xx_and_touch_no_file(server, hostile, tmp_path):
    server.client.post("/api/v1/blobs", content=b"something", headers=server.h())
    before = server.files()
    for method in ("GET", "HEAD", "DELETE"):
        r = server.client.request(method, f"/api/v1/blobs/{hostile}", headers=server.h())
        assert 400 <= r.status_code < 500, (method, r.status_code)
    assert server.files() == before


def test_over_the_blob_limit_is_413_and_nothing_is_kept(server):
    r = server.client.post("/api/v1/blobs", content=b"x" * (LIMIT + 1), headers=server.h())
    assert r.status_code == 413 and str(LIMIT) in r.json()["error"]["message"]
    assert server.client.get("/api/v1/stats/blobs", headers=server.h()).json()["count"] == 0
    assert list(server.root.rglob("*.part")) == []


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(server):
    """Real HTTP: the headers alone get the 413; the client never sends a byte of the body."""
    with LiveServer(server.app) as live:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
        conn.putrequest("POST", "/api/v1/blobs")
        for name, value in server.h(**{"Content-Length": str(LIMIT + 1)}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413 and str(LIMIT) in response.read().decode()
        conn.close()


def test_a_body_past_the_upload_cap_names_the_blob_setting_not_max_request_bytes(server):
    """Real HTTP: the middleware's 413 for a blob upload says which setting to change."""
    with LiveServer(server.app) as live:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
        conn.putrequest("POST", "/api/v1/blobs")
        for name, value in server.h(**{"Content-Length": str(LIMIT + 2 * 1024 * 1024)}).items():
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        message = json.loads(response.read())["error"]["message"]
        assert response.status == 413 and "storage.blob_store.max_blob_size" in message
        assert "max_request_bytes" not in message
        conn.close()


def test_a_chunked_upload_streams_in_and_one_over_the_limit_stops(server):
    """Real HTTP with chunked transfer encoding (no length up front)."""
    data = os.urandom(LIMIT - 10)

    def chunks(payload: bytes) -> Iterator[bytes]:
        for i in range(0, len(payload), 256 * 1024):
            yield payload[i : i + 256 * 1024]

    with LiveServer(server.app) as live:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
        conn.request("POST", "/api/v1/blobs?name=c.bin", body=chunks(data), headers=server.h(), encode_chunked=True)
        ok = conn.getresponse()
        assert ok.status == 201 and ok.read() and True
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=30)
        conn.request("POST", "/api/v1/blobs", body=chunks(os.urandom(LIMIT + 512 * 1024)), headers=server.h(),
                     encode_chunked=True)  # fmt: skip
        too_big = conn.getresponse()
        assert too_big.status == 413
        conn.close()
    refs = server.client.get("/api/v1/blobs", headers=server.h()).json()
    assert [r["id"] for r in refs] == [hashlib.sha256(data).hexdigest()]
    assert list(server.root.rglob("*.part")) == []


async def test_mcp_blob_tools(tmp_path):
    from engram import Memory

    with Memory(settings=load_settings(database_url=f"sqlite:///{tmp_path / 'm.db'}")) as memory:
        async with Client(build_mcp_server(lambda ctx: Target(memory))) as client:
            data = os.urandom(5000)
            put = await client.call_tool("blob_put", {"content_base64": base64.b64encode(data).decode(), "name": "a.bin"})
            assert not put.is_error, put.content
            ref = put.structured_content
            assert ref["id"] == hashlib.sha256(data).hexdigest() and ref["source"] == "tool"
            got = await client.call_tool("blob_get", {"blob_id": ref["uri"]})
            assert base64.b64decode(got.structured_content["content_base64"]) == data
            listed = await client.call_tool("blob_list", {})
            assert [b["id"] for b in listed.structured_content["blobs"]] == [ref["id"]]

            big = memory.blobs.put(b"b" * (MCP_BLOB_GET_MAX + 1))
            refused = await client.call_tool("blob_get", {"blob_id": big.id})
            assert refused.is_error and f"GET /api/v1/blobs/{big.id}" in refused.content[0].text
            bad = await client.call_tool("blob_put", {"content_base64": "not base64!"})
            assert bad.is_error and "base64" in bad.content[0].text
            hostile = await client.call_tool("blob_get", {"blob_id": "../../etc/passwd"})
            assert hostile.is_error and "not a blob id" in hostile.content[0].text

            assert (await client.call_tool("blob_delete", {"blob_id": ref["id"]})).structured_content == {"deleted": True}
            again = await client.call_tool("blob_delete", {"blob_id": ref["id"]})
            assert again.is_error and again.structured_content["error"]["status"] == 404
