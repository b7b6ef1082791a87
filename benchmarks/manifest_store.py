"""Manifest store at archive scale: lookup latency with many bindings, and a batch label writing the store.

    python benchmarks/manifest_store.py --quick            # 100,000 bindings, a 200-file batch
    python benchmarks/manifest_store.py --write            # 1,000,000 bindings, a 2,000-file batch
    python benchmarks/manifest_store.py --postgres URL     # the same lookups on PostgreSQL too

Bindings are bulk-inserted straight into the store's tables (the schema ``labeler.provenance.store``
creates), with 1 KB manifests; lookups go through :meth:`SqliteStore.find` (a new connection per
lookup, as ``verify`` does). The batch part runs ``aigc batch label --layers watermark,metadata,c2pa
--manifest-store`` on small generated PNGs with 2 workers and checks that the store holds exactly one
binding per file (nothing lost, nothing twice), then re-runs the batch (resume: nothing new).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results import write_section  # noqa: E402

from labeler.provenance.store import open_store  # noqa: E402

ALG = "aigc-labeler.wm.dct.1"


def fill_sqlite(path: Path, count: int) -> None:
    """``count`` bindings of 8-byte payloads, each with its own 1 KB manifest, in one transaction."""
    open_store(path).count()  # creates the schema
    blob = b"m" * 1024
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA synchronous=OFF")
        for start in range(0, count, 50_000):
            ids = range(start, min(count, start + 50_000))
            conn.executemany("INSERT INTO manifests VALUES (?, 'image/jpeg', ?, NULL, ?)",
                             ((f"urn:c2pa:{i}", blob, float(i)) for i in ids))
            conn.executemany("INSERT INTO bindings VALUES (?, 'k', ?, ?)",
                             ((ALG, i.to_bytes(8, "big"), f"urn:c2pa:{i}") for i in ids))


def fill_postgres(url: str, count: int) -> None:
    import psycopg

    open_store(url).count()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE bindings, manifests")
        with conn.cursor().copy("COPY manifests FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((f"urn:c2pa:{i}", "image/jpeg", b"m" * 1024, None, float(i)))
        with conn.cursor().copy("COPY bindings FROM STDIN") as copy:
            for i in range(count):
                copy.write_row((ALG, "k", i.to_bytes(8, "big"), f"urn:c2pa:{i}"))


def lookups(spec: str, count: int, n: int = 2000) -> dict[str, float]:
    """Latency (ms) of ``n`` lookups, 90 % hits at random places and 10 % misses."""
    store = open_store(spec, readonly=True)
    rng = np.random.default_rng(7)
    keys = rng.integers(0, count, n).tolist()
    times = []
    for index, value in enumerate(keys):
        payload = (value if index % 10 else count + value).to_bytes(8, "big")
        started = time.perf_counter()
        found = store.find(alg=ALG, key_id="k", payload=payload)
        times.append((time.perf_counter() - started) * 1000)
        assert len(found) == (1 if index % 10 else 0)
    times.sort()
    return {"p50": statistics.median(times), "p99": times[int(0.99 * len(times)) - 1], "max": times[-1]}


def batch(files: int, workers: int, folder: Path) -> dict[str, object]:
    """Label ``files`` PNGs with 2 workers into one store; count what the store holds."""
    src, dst = folder / "src", folder / "dst"
    src.mkdir()
    rng = np.random.default_rng(3)
    for i in range(files):
        Image.fromarray(rng.integers(0, 255, (160, 160, 3), dtype=np.uint8)).save(src / f"{i:05d}.png")
    aigc = [sys.executable, "-m", "labeler.cli"]
    subprocess.run([*aigc, "keygen", str(folder / "wm.key")], check=True, capture_output=True)
    subprocess.run([*aigc, "keys", "init", str(folder / "pki")], check=True, capture_output=True)
    store = folder / "store.db"
    cmd = [*aigc, "batch", "label", str(src), str(dst), "--producer", "001191110102MACQD9K64010000",
           "--layers", "watermark,metadata,c2pa", "--key-file", str(folder / "wm.key"), "--sign-cert",
           str(folder / "pki" / "signer-chain.pem"), "--sign-key", str(folder / "pki" / "signer.key.pem"),
           "--manifest-store", str(store), "--workers", str(workers), "--no-progress"]
    started = time.perf_counter()
    first = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    again = subprocess.run(cmd, capture_output=True, text=True)
    with sqlite3.connect(store) as conn:
        bindings = conn.execute("SELECT COUNT(*) FROM bindings").fetchone()[0]
        distinct = conn.execute("SELECT COUNT(DISTINCT payload) FROM bindings").fetchone()[0]
    return {"files": files, "workers": workers, "exit": (first.returncode, again.returncode),
            "bindings": bindings, "distinct": distinct, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true", help="write the table into RESULTS.md")
    parser.add_argument("--postgres", help="also measure a PostgreSQL store at this URL")
    args = parser.parse_args()
    count = 100_000 if args.quick else 1_000_000
    files = 200 if args.quick else 2_000
    rows = []
    with tempfile.TemporaryDirectory(prefix="aigc-store-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        fill_sqlite(folder / "big.db", count)
        fill = time.perf_counter() - started
        lat = lookups(str(folder / "big.db"), count)
        size = os.path.getsize(folder / "big.db") / 2**20
        rows.append(f"| SQLite | {count:,} | {fill:.0f} s ({size:.0f} MiB) | {lat['p50']:.2f} | "
                    f"{lat['p99']:.2f} | {lat['max']:.2f} |")
        if args.postgres:
            started = time.perf_counter()
            fill_postgres(args.postgres, count)
            fill = time.perf_counter() - started
            lat = lookups(args.postgres, count)
            rows.append(f"| PostgreSQL | {count:,} | {fill:.0f} s | {lat['p50']:.2f} | {lat['p99']:.2f} | "
                        f"{lat['max']:.2f} |")
        run = batch(files, 2, folder)
    table = "\n".join([
        "| store | bindings | bulk fill | lookup p50 (ms) | p99 (ms) | max (ms) |",
        "|---|---|---|---|---|---|", *rows, "",
        "| batch label into the store | workers | exit (first, resume) | bindings stored | distinct payloads "
        "| seconds |",
        "|---|---|---|---|---|---|",
        f"| {run['files']} PNGs, watermark+metadata+c2pa | {run['workers']} | {run['exit']} "
        f"| {run['bindings']} | {run['distinct']} | {run['seconds']:.0f} |",
    ])
    print(table)
    ok = run["exit"] == (0, 0) and run["bindings"] == run["distinct"] == run["files"]
    print("batch: nothing lost, nothing twice" if ok else "batch: MISMATCH")
    if args.write:
        write_section("provenance:store", "Manifest store (`benchmarks/manifest_store.py`); a lookup opens "
                      "its own connection, as `verify` does.\n\n" + table)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
