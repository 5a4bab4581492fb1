"""Without the frameworks installed, the integration modules say which extra to install.

Each case runs in a fresh interpreter whose import system refuses the framework's
packages, as a Python without them would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"No module named {{name!r}}")
sys.meta_path.insert(0, Refuse())
import engram  # engram itself never needs them
try:
    import {module}
except ImportError as exc:
    print(exc)
"""


@pytest.mark.parametrize(
    ("module", "blocked", "extra"),
    [
        ("engram.integrations.langgraph", ("langgraph",), "engram[langgraph]"),
        ("engram.integrations.langchain", ("langchain_core",), "engram[langchain]"),
    ],
)
def test_import_names_the_extra(
    module: str, blocked: tuple[str, ...], extra: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", BLOCK.format(module=module, blocked=set(blocked))],
        capture_output=True,
        check=False, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"pip install '{extra}'" in done.stdout
