"""Provenance speed: manifests of 1M and 10M rows, against ``sha256sum`` of the same file, and
the ledger's appends and full verify.

Run ``python benchmarks/trace.py`` (``--rows 100000`` for a quick look; ``--big 0`` skips the
10M-row file). Every manifest runs in a child process, so its wall time includes start-up and
its peak RSS is its own. Data files are generated once (seeded) under ``--cache``. Prints the
tables and writes them to ``benchmarks/results/trace.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from poisonguard.evaluation import markdown_table, publish

RESULTS = Path(__file__).resolve().parent / "results" / "trace.md"
COLUMNS = 20
CHUNK = 500_000


def make_file(path: Path, n: int, fmt: str) -> Path:
    """``n`` rows: a shuffled string id, a source, 20 float columns and an integer label."""
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    tmp = path.with_name(path.name + ".part")
    writer: Any = None
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        df = pd.DataFrame(rng.normal(size=(m, COLUMNS)).round(6),
                          columns=[f"f{j:02d}" for j in range(COLUMNS)])
        df.insert(0, "id", [f"row-{i}" for i in range(start, start + m)])
        df.insert(1, "source", rng.choice(["vendor-a", "vendor-b", "crowd"], m))
        df["label"] = rng.integers(0, 5, m)
        if fmt == "csv":
            df.to_csv(tmp, index=False, header=start == 0, mode="w" if start == 0 else "a")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
    if writer is not None:
        writer.close()
    tmp.rename(path)
    return path


def child_manifest(data: str, out: str) -> None:
    """In a child process: one manifest; print JSON with seconds and peak RSS."""
    from poisonguard.provenance import manifest as mf

    t0 = time.perf_counter()
    built, rows = mf.build(data, id_col="id", source_col="source")
    mf.write(built, rows, out)
    print(json.dumps({"seconds": time.perf_counter() - t0,
                      "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def run_manifest(data: Path, out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    got = subprocess.run([sys.executable, __file__, "--child", str(data), str(out)], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    wall = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run(["sha256sum", str(data)], check=True, capture_output=True)
    sha = time.perf_counter() - t0
    res = json.loads(got)
    return {"wall s": wall, "manifest s": res["seconds"], "peak MiB": res["peak_mib"],
            "sha256sum s": sha}


def section_manifests(rows: int, big: int, cache: Path) -> list[dict[str, Any]]:
    cases = [(rows, "csv"), (rows, "parquet")] + ([(big, "csv")] if big else [])
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, fmt in cases:
            data = make_file(cache / f"trace-{n}.{fmt}", n, fmt)
            got = run_manifest(data, Path(tmp) / f"m-{n}-{fmt}.json")
            mib = data.stat().st_size / 2**20
            if n <= 1_000_000:
                target, ok = "<= 30 s", got["manifest s"] <= 30
            else:
                target, ok = "<= 1024 MiB", got["peak MiB"] <= 1024
            out.append({"rows": n, "format": fmt, "file MiB": f"{mib:.0f}",
                        "manifest s": f"{got['manifest s']:.1f}", "wall s": f"{got['wall s']:.1f}",
                        "rows/s": f"{n / got['manifest s']:,.0f}",
                        "MiB/s": f"{mib / got['manifest s']:.0f}",
                        "sha256sum s": f"{got['sha256sum s']:.2f}",
                        "x sha256sum": f"{got['manifest s'] / got['sha256sum s']:.0f}",
                        "peak MiB": f"{got['peak MiB']:.0f}", "target": target,
                        "met": "met" if ok else "FAIL"})
            print(out[-1], flush=True)
    return out


def section_ledger(appends: int) -> list[dict[str, Any]]:
    from poisonguard.provenance import keys
    from poisonguard.provenance.ledger import Ledger

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for signed in (False, True):
            key = None
            if signed:
                priv, _ = keys.generate(Path(tmp) / "key")
                key = keys.load_private_key(priv)
            path = Path(tmp) / f"ledger-{signed}.db"
            ledger = Ledger.init(path, public_key=None if key is None else key.public_key())
            t0 = time.perf_counter()
            for i in range(appends):
                payload = json.dumps({"version": i, "root": f"{i:064x}"}).encode()
                ledger.append("manifest", f"data-v{i}.csv", payload, key=key)
            append_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = ledger.verify()
            verify_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            proof = ledger.prove(appends // 2)
            prove_s = time.perf_counter() - t0
            out.append({"entries": appends, "signed checkpoints": signed,
                        "appends s": f"{append_s:.1f}",
                        "per append ms": f"{1000 * append_s / appends:.2f}",
                        "full verify s": f"{verify_s:.2f}", "verify ok": result.ok,
                        "inclusion proof ms": f"{1000 * prove_s:.1f}",
                        "proof hashes": len(proof.path),
                        "file MiB": f"{path.stat().st_size / 2**20:.1f}"})
            print(out[-1], flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=10_000_000)
    parser.add_argument("--appends", type=int, default=10_000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "pg-bench")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_manifest(*args.child)
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    parts = [f"# Trace benchmark\n\n`python benchmarks/trace.py {' '.join(argv or sys.argv[1:])}`"
             f" — Python {platform.python_version()}, {platform.machine()}, "
             f"{__import__('os').cpu_count()} CPUs.\n",
             "## Manifests (20 float columns, id, source, label; child process)\n",
             markdown_table(pd.DataFrame(section_manifests(args.rows, args.big, args.cache))),
             "## Ledger (SQLite, one process)\n",
             markdown_table(pd.DataFrame(section_ledger(args.appends))),
             f"\nTotal wall time {(time.perf_counter() - start) / 60:.1f} min.\n"]
    text = "\n".join(parts)
    publish(text, args.out)


if __name__ == "__main__":
    main()
