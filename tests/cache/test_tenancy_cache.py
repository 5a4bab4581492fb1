"""The server's projects share one cache backend (one Redis pool), each with its own keys."""

from __future__ import annotations

from pathlib import Path

import engram
from engram.server.tenancy import Tenancy


def test_projects_share_the_backend_not_the_keys(tmp_path: Path, redis_cache_settings: dict) -> None:
    settings = engram.load_settings(database_url=f"sqlite:///{tmp_path / 'engram.db'}", storage={"cache": redis_cache_settings})
    with Tenancy(settings) as tenancy:
        a, b = tenancy.control.create_project("alpha"), tenancy.control.create_project("beta")
        alpha, beta = tenancy.memory(a.id), tenancy.memory(b.id)
        assert alpha.caches.backend is beta.caches.backend is tenancy.cache_backend
        alpha.cache.set("k", "alpha's")
        assert beta.cache.get("k") is None
        assert beta.cache.clear() == 0 and alpha.cache.get("k") == "alpha's"
        backend = tenancy.cache_backend
    assert backend._closed  # closed once, by the tenancy that opened it
