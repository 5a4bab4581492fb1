"""Blob-store benchmark: put and get throughput vs plain ``shutil.copyfile`` on the same disk.

    .venv/bin/python bench/blobs.py              # 1 KB, 1 MB and 100 MB files
    .venv/bin/python bench/blobs.py --quick      # smoke run (1 KB and 1 MB, few reps)
    .venv/bin/python bench/blobs.py --backend database   # blobs in SQLite rows instead of files

Everything lives under ``--workdir`` (default ``bench/.data/blobs``, removed after unless
``--keep``): the source files, the baseline's copies and the blob store, so both sides use
the same disk. For each size, engram and the baseline alternate rep by rep (load from other
processes hits both alike) and the medians are compared:

* put: ``memory.blobs.put(path)`` (read, SHA-256, write a temp file, rename, write the ref),
  the blob deleted outside the timer before the next rep so every put stores its bytes,
  vs ``shutil.copyfile(src, fresh_dst)``;
* get: ``memory.blobs.save(id, fresh_file)`` (what ``engram blob get -o`` does: a temp file
  beside it, then a rename; the local backend copies in the kernel) vs ``shutil.copyfile``
  of the stored file to a fresh file; ``get()`` (bytes in memory) is shown beside it.

Target (issue 12): engram <= 1.5x the copy for 1 MB and up, on wall-clock medians. Throughput
is MB/s of the median. The CPU columns give the medians of this process's CPU time (all its
threads, kernel time included) for the same calls: on a loaded machine wall time mostly
measures waiting for a core, CPU time what the work costs. ``--strict`` exits 1 when a target
is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from engram import Memory, load_settings
from engram.blobs.store import BlobStore

REPO = Path(__file__).resolve().parent.parent
SIZES = {"1KB": 1000, "1MB": 1_000_000, "100MB": 100_000_000}
REPS = {"1KB": 300, "1MB": 60, "100MB": 7}
TARGET = 1.5
console = Console(stderr=True)


CPU: dict[str, list[float]] = {}  # the same timings as CPU time of this process (every thread)


def timed(fn: Callable[..., object], *args: object, key: str = "") -> float:
    cpu, start = time.process_time(), time.perf_counter()
    fn(*args)
    elapsed = time.perf_counter() - start
    CPU.setdefault(key, []).append(time.process_time() - cpu)
    return elapsed


def _put_into(blobs: BlobStore, src: Path, refs: list[object]) -> None:
    refs.append(blobs.put(src))


def bench_size(memory: Memory, label: str, size: int, reps: int, work: Path) -> dict[str, list[float]]:
    src = work / f"src-{label}.bin"
    with src.open("wb") as f:  # random bytes in 1 MiB pieces: never the whole 100 MB in memory
        left = size
        while left:
            piece = min(left, 1 << 20)
            f.write(os.urandom(piece))
            left -= piece
    out = work / "out"
    out.mkdir(exist_ok=True)
    times: dict[str, list[float]] = {k: [] for k in ("put", "copy_put", "get_file", "copy_get", "get_bytes")}
    blobs = memory.blobs
    CPU.clear()
    for rep in range(reps):
        dst = out / f"copy-{rep}"
        times["copy_put"].append(timed(shutil.copyfile, src, dst, key="copy_put"))
        dst.unlink()
        refs: list[object] = []
        times["put"].append(timed(_put_into, blobs, src, refs, key="put"))
        ref = refs[0]
        stored = blobs.path(ref) if blobs.backend.has_files else src
        times["get_file"].append(timed(blobs.save, ref, out / "got", key="get_file"))
        (out / "got").unlink()
        times["copy_get"].append(timed(shutil.copyfile, stored, out / "copied", key="copy_get"))
        (out / "copied").unlink()
        if size <= 1_000_000 or rep < 3:
            times["get_bytes"].append(timed(blobs.get, ref, key="get_bytes"))
        blobs.delete(ref)  # the next put stores its bytes again
    times.update({f"cpu_{k}": v for k, v in CPU.items()})
    src.unlink()
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 KB and 1 MB only, few reps")
    ap.add_argument("--backend", choices=["local", "database"], default="local")
    ap.add_argument("--workdir", type=Path, default=REPO / "bench" / ".data" / "blobs")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    settings = load_settings(
        database_url=f"sqlite:///{work / 'engram.db'}",
        embedder="none",
        storage={"blob_store": {"type": args.backend, "store_path": str(work / "blobs"), "max_blob_size": 200_000_000}},
    )
    sizes = {k: v for k, v in SIZES.items() if not (args.quick and k == "100MB")}
    table = Table(title=f"blob store ({args.backend}) vs shutil.copyfile, medians")
    for col in ("size", "op", "engram", "copyfile", "ratio", "MB/s", "CPU engram", "CPU copy", "CPU ratio", "target"):
        table.add_column(col, justify="right")
    missed = []
    try:
        with Memory(settings=settings) as memory:
            for label, size in sizes.items():
                reps = max(3, REPS[label] // (5 if args.quick else 1))
                console.print(f"{label}: {reps} reps")
                t = bench_size(memory, label, size, reps, work)
                for op, ours, base in (("put", "put", "copy_put"), ("get (to a file)", "get_file", "copy_get")):
                    mine, theirs = statistics.median(t[ours]), statistics.median(t[base])
                    ratio = mine / theirs
                    target = f"<= {TARGET}x" if size >= 1_000_000 else "-"
                    if size >= 1_000_000 and ratio > TARGET:
                        missed.append(f"{label} {op}: {ratio:.2f}x")
                    cpu_mine, cpu_theirs = statistics.median(t[f"cpu_{ours}"]), statistics.median(t[f"cpu_{base}"])
                    table.add_row(label, op, f"{mine * 1000:.3f} ms", f"{theirs * 1000:.3f} ms", f"{ratio:.2f}x",
                                  f"{size / mine / 1e6:.0f}", f"{cpu_mine * 1000:.3f} ms", f"{cpu_theirs * 1000:.3f} ms",
                                  f"{cpu_mine / max(cpu_theirs, 1e-9):.2f}x", target)  # fmt: skip
                table.add_row(label, "get() bytes", f"{statistics.median(t['get_bytes']) * 1000:.3f} ms",
                              *[""] * 3, f"{statistics.median(t['cpu_get_bytes']) * 1000:.3f} ms", *[""] * 3)  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    Console(width=200).print(table)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if missed:
        print("targets missed: " + "; ".join(missed))
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
