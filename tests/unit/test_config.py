"""Settings precedence: arguments > ENGRAM_* environment > YAML config file > defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import engram
from engram.config import Settings, default_data_dir, default_database_url, expand_vars, load_settings
from engram.errors import ConfigError


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    """Write a YAML config file and return its path."""

    def write(text: str, name: str = "engram.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def test_defaults():
    settings = load_settings()
    assert isinstance(settings, Settings)
    assert settings.database_url == default_database_url()
    assert settings.max_content_bytes == 1024 * 1024
    assert settings.async_workers == 4


def test_default_database_is_in_the_user_data_directory():
    url = default_database_url()
    assert url.startswith("sqlite:///")
    assert url.endswith("engram.db")
    assert str(default_data_dir()) in url
    assert "cache" not in str(default_data_dir()).lower()


def test_file_overrides_defaults(config_file):
    path = config_file("database_url: memory://\nmax_content_bytes: 500\n")
    settings = load_settings(path)
    assert settings.database_url == "memory://"
    assert settings.max_content_bytes == 500
    assert settings.async_workers == 4  # not in the file: the default


def test_environment_overrides_file(config_file, monkeypatch):
    path = config_file("max_content_bytes: 500\nasync_workers: 2\n")
    monkeypatch.setenv("ENGRAM_MAX_CONTENT_BYTES", "600")
    settings = load_settings(path)
    assert settings.max_content_bytes == 600
    assert settings.async_workers == 2


def test_arguments_override_environment_and_file(config_file, monkeypatch):
    path = config_file("max_content_bytes: 500\n")
    monkeypatch.setenv("ENGRAM_MAX_CONTENT_BYTES", "600")
    assert load_settings(path, max_content_bytes=700).max_content_bytes == 700


def test_none_arguments_do_not_override(monkeypatch):
    monkeypatch.setenv("ENGRAM_DATABASE_URL", "memory://")
    assert load_settings(database_url=None).database_url == "memory://"


def test_environment_overrides_defaults(monkeypatch):
    monkeypatch.setenv("ENGRAM_DATABASE_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("ENGRAM_ASYNC_WORKERS", "8")
    settings = load_settings()
    assert settings.database_url == "sqlite:///from-env.db"
    assert settings.async_workers == 8


def test_engram_config_names_the_file(config_file, monkeypatch):
    path = config_file("max_content_bytes: 321\n")
    monkeypatch.setenv("ENGRAM_CONFIG", str(path))
    assert load_settings().max_content_bytes == 321


def test_explicit_config_file_wins_over_engram_config(config_file, monkeypatch):
    monkeypatch.setenv("ENGRAM_CONFIG", str(config_file("max_content_bytes: 1\n", "env.yaml")))
    explicit = config_file("max_content_bytes: 2\n", "explicit.yaml")
    assert load_settings(explicit).max_content_bytes == 2


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ("database_url: $URL\n", {"URL": "memory://"}, "memory://"),
        ("database_url: ${URL}\n", {"URL": "memory://"}, "memory://"),
        ("database_url: sqlite:///${DIR}/x.db\n", {"DIR": "/data"}, "sqlite:////data/x.db"),
        ("database_url: sqlite:///$DIR/x.db\n", {"DIR": "/data"}, "sqlite:////data/x.db"),
        ("database_url: ${URL:-memory://}\n", {}, "memory://"),
        ("database_url: ${URL:-memory://}\n", {"URL": "sqlite:///set.db"}, "sqlite:///set.db"),
        ("database_url: ${SCHEME}://${HOST:-}\n", {"SCHEME": "memory"}, "memory://"),
    ],
)
def test_file_expands_environment_variables(config_file, monkeypatch, text, env, expected):
    for name in ("URL", "DIR", "SCHEME", "HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings(config_file(text)).database_url == expected


def test_expanded_values_are_validated_as_their_type(config_file, monkeypatch):
    monkeypatch.setenv("LIMIT", "4096")
    assert load_settings(config_file("max_content_bytes: ${LIMIT}\n")).max_content_bytes == 4096
    monkeypatch.delenv("LIMIT")
    assert load_settings(config_file("max_content_bytes: ${LIMIT:-2048}\n")).max_content_bytes == 2048


def test_unset_variable_without_default_is_a_config_error(config_file, monkeypatch):
    monkeypatch.delenv("ENGRAM_TEST_UNSET", raising=False)
    with pytest.raises(ConfigError, match="ENGRAM_TEST_UNSET.*not set"):
        load_settings(config_file("database_url: ${ENGRAM_TEST_UNSET}\n"))


def test_expand_vars_walks_lists_and_mappings():
    tree = {"a": ["$X", {"b": "${Y:-dflt}"}], "n": 3, "t": True, "z": None}
    assert expand_vars(tree, {"X": "x"}, "test") == {"a": ["x", {"b": "dflt"}], "n": 3, "t": True, "z": None}


def test_expand_vars_leaves_lone_dollars():
    assert expand_vars("cost: $5 and $", {}, "test") == "cost: $5 and $"


def test_unknown_keys_in_the_file_are_an_error(config_file):
    with pytest.raises(ConfigError) as info:
        load_settings(config_file("database_url: memory://\ndatabse_url: typo\n"))
    assert "databse_url" in str(info.value)
    assert "database_url" in str(info.value)  # the known settings are listed


@pytest.mark.parametrize(
    "text, words",
    [
        ("database_url: [unclosed\n", ["not valid YAML"]),
        ("- just\n- a list\n", ["mapping", "list"]),
        ("max_content_bytes: 0\n", ["max_content_bytes"]),
        ("max_content_bytes: lots\n", ["max_content_bytes"]),
        ("database_url: no-scheme.db\n", ["database_url", "URL"]),
        ("async_workers: 1000\n", ["async_workers"]),
    ],
)
def test_bad_config_files(config_file, text, words):
    with pytest.raises(ConfigError) as info:
        load_settings(config_file(text))
    assert isinstance(info.value, ValueError)
    for word in words:
        assert word in str(info.value)


def test_empty_config_file_means_defaults(config_file):
    assert load_settings(config_file("")).max_content_bytes == 1024 * 1024


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "missing.yaml")


def test_bad_environment_value(monkeypatch):
    monkeypatch.setenv("ENGRAM_MAX_CONTENT_BYTES", "many")
    with pytest.raises(ConfigError, match="max_content_bytes"):
        load_settings()


def test_bad_argument():
    with pytest.raises(ConfigError, match="database_url"):
        load_settings(database_url="relative.db")


def test_unknown_argument():
    with pytest.raises(ConfigError, match="colour"):
        load_settings(colour="teal")


def test_yaml_is_data_never_code(config_file):
    with pytest.raises(ConfigError):
        load_settings(config_file("database_url: !!python/object/apply:os.system ['true']\n"))


def test_memory_reads_its_url_from_the_environment(monkeypatch):
    monkeypatch.setenv("ENGRAM_DATABASE_URL", "memory://")
    with engram.Memory() as memory:
        assert memory.url == "memory://"
    with engram.open() as memory:
        assert memory.url == "memory://"


def test_memory_url_argument_beats_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ENGRAM_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    with engram.open("memory://") as memory:
        assert memory.url == "memory://"
    assert not (tmp_path / "env.db").exists()


def test_url_argument_with_explicit_settings(tmp_path):
    settings = load_settings(database_url=f"sqlite:///{tmp_path / 'a.db'}", max_content_bytes=10)
    with engram.Memory("memory://", settings=settings) as memory:
        assert memory.url == "memory://"
        with pytest.raises(engram.ContentTooLarge):
            memory.store("k", "x" * 11)


_ENV_READ = re.compile(r"getenv\(|environ\.get\(|environ\[[^\]]+\](?!\s*=[^=])|in os\.environ|dict\(os\.environ")


def test_only_config_reads_the_environment():
    root = Path(engram.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path.name in ("config.py", "cli.py"):  # config reads it; the CLI is a front end at the edge
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if _ENV_READ.search(line):
                offenders.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize(
    "line, reads",
    [
        ('os.environ.get("X")', True),
        ('os.getenv("X")', True),
        ('value = os.environ["X"]', True),
        ('if "X" in os.environ:', True),
        ("environ = dict(os.environ)", True),
        ('os.environ["X"] = "1"', False),  # setting a variable for a third-party library is no read
        ('os.environ.setdefault("HF_HUB_OFFLINE", "1")', False),
    ],
)
def test_environment_read_detector(line, reads):
    assert bool(_ENV_READ.search(line)) is reads


def test_default_also_replaces_an_empty_variable_as_in_the_shell():
    assert expand_vars("${EMPTY:-fallback}", {"EMPTY": ""}, "test") == "fallback"
    assert expand_vars("[${EMPTY}]", {"EMPTY": ""}, "test") == "[]"
    assert expand_vars("[$EMPTY]", {"EMPTY": ""}, "test") == "[]"
