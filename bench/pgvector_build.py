"""A PostgreSQL 16 install with pgvector built from source for this CPU, for bench/pgvector.py.

The ``pgserver`` wheel bundles pgvector 0.6.2, compiled for any x86-64. A
deployment gets its pgvector from its distribution (0.8 in Debian 13) or
builds it, and pgvector's own build compiles for the CPU it runs on
(``-march=native``). ``native_install("0.8.0")`` copies the wheel's
PostgreSQL 16.2 to ``/tmp/engram-bench-pg16-pgvector-<version>``, fetches
Debian's source of that pgvector version (its ``.orig.tar.gz``, checked
against the sha256 in Debian's ``.dsc``), and builds and installs it there
with PGXS: gcc and make, ~10 s. ``use_install(path)`` points ``pgserver``'s
commands at that copy, so ``pgserver.get_server`` starts it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import urllib.request
from pathlib import Path

DEBIAN_POOL = "http://deb.debian.org/debian/pool/main/p/pgvector"


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:  # a fixed Debian mirror URL
        return response.read()


def native_install(version: str, debian_revision: str = "1") -> Path:
    """The install directory holding PostgreSQL 16 with pgvector ``version`` built here (made once)."""
    import pgserver

    target = Path(f"/tmp/engram-bench-pg16-pgvector-{version}")
    if (target / "lib" / "postgresql" / "vector.so").exists() and (
        target / "share" / "postgresql" / "extension" / f"vector--{version}.sql"
    ).exists():
        return target
    source = Path(pgserver.__file__).parent / "pginstall"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True)
    dsc = _fetch(f"{DEBIAN_POOL}/pgvector_{version}-{debian_revision}.dsc").decode()
    tarball = f"pgvector_{version}.orig.tar.gz"
    want = re.search(rf"^ ([0-9a-f]{{64}}) \d+ {re.escape(tarball)}$", dsc, re.M)
    if want is None:
        raise SystemExit(f"Debian's .dsc for pgvector {version} names no sha256 for {tarball}")
    data = _fetch(f"{DEBIAN_POOL}/{tarball}")
    if hashlib.sha256(data).hexdigest() != want.group(1):
        raise SystemExit(f"{tarball}: sha256 differs from Debian's .dsc")
    build = target / "build"
    build.mkdir()
    (build / tarball).write_bytes(data)
    with tarfile.open(build / tarball) as tar:
        tar.extractall(build, filter="data")
    src = build / f"pgvector-{version}"
    pg_config = f"PG_CONFIG={target / 'bin' / 'pg_config'}"
    for step in (["make", "-j2", pg_config], ["make", "install", pg_config]):
        subprocess.run(step, cwd=src, check=True, capture_output=True)
    shutil.rmtree(build)
    return target


def use_install(install: Path) -> None:
    """Make ``pgserver`` run the binaries of ``install`` instead of its own."""
    import pgserver
    from pgserver import _commands, postgres_server

    _commands.POSTGRES_BIN_PATH = install / "bin"
    postgres_server.POSTGRES_BIN_PATH = install / "bin"
    # the wheel's client programs (psql) find its libpq by a path relative to their own
    libs = Path(pgserver.__file__).parent.parent / "pgserver.libs"
    os.environ["LD_LIBRARY_PATH"] = ":".join(filter(None, [str(libs), os.environ.get("LD_LIBRARY_PATH")]))
