"""`engram serve` says where the API docs and the web dashboard are."""

from __future__ import annotations

from click.testing import CliRunner


def test_serve_prints_the_dashboard_url_beside_the_api_docs(tmp_path, monkeypatch) -> None:
    import uvicorn

    from engram.cli import cli

    monkeypatch.setattr(uvicorn, "run", lambda app, **options: None)  # the network server only: no store is faked
    url = f"sqlite:///{tmp_path / 'engram.db'}"
    for args, base in ((["--port", "8123"], "http://127.0.0.1:8123"), (["--host", "::1", "--port", "9"], "http://[::1]:9")):
        result = CliRunner().invoke(cli, ["--db", url, "serve", *args], env={"ENGRAM_EMBEDDER": "none"})
        assert result.exit_code == 0, result.output
        lines = result.output.splitlines()
        docs = next(i for i, line in enumerate(lines) if line.startswith("API docs:"))
        assert f"{base}/docs" in lines[docs]
        assert lines[docs + 1].startswith("Dashboard:") and f"{base}/ " in lines[docs + 1] + " "
