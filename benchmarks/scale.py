"""Scale: manifests on the local engine and on Dask (``--engine dask``), 1M to 100M rows; scans
of 1M rows in two phases, fitted on every row, on Dask, beside cleanlab.

Run ``python benchmarks/scale.py --only manifest`` (1M and 10M rows; ``--quick``: 1M only;
``--big``: also 100M rows, on Dask only, streamed). Data: a folder of Parquet files of 1M rows
each (20 seeded random float columns, an integer label and a string id; row groups of
``--partition-rows``), generated once under ``--cache`` and linked into one folder per size.
Each manifest (build and write, keyed by id) runs in a child process with
``OMP_NUM_THREADS=1``, so its wall time includes start-up and its peak RSS is its own. Dask
runs on a ``LocalCluster`` of 2 single-threaded workers with ``memory_limit="2GB"`` each,
started in the child (its start-up, with the workers importing the hashing code, is reported
apart); the hashing tasks' compute times come from Dask's task stream, the workers' peak RSS
from each worker process. The local and Dask Merkle roots of the same rows must be identical,
or the run stops.

The 1B-row estimate takes the largest Dask run: rounds of 32 partitions at its median partition
cost, plus the client's serial tail (from the last hashing task's end to the written manifest:
putting rows in id order, the Merkle root, the sidecar) scaled linearly with the rows, and the
client's memory grown by the bytes per row measured between the smallest and the largest run
(the client keeps 32 bytes and the id of every row, as the local engine does). Prints the
tables and writes ``benchmarks/results/scale.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
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

RESULTS = Path(__file__).resolve().parent / "results" / "scale.md"
SECTIONS = ("manifest", "scan")
SCAN_FLIPS = 0.05  # label flips planted in the scan data (the ground truth of its AUROC)
FILE_ROWS = 1_000_000
COLUMNS = 20
WORKERS, MEMORY = 2, "2GB"
TARGET_ROWS, TARGET_WORKERS = 1_000_000_000, 32


def make_files(cache: Path, n_files: int, row_group: int) -> list[Path]:
    """``n_files`` Parquet files of 1M rows (file ``i`` seeded with ``[0, i]``: the same bytes
    whatever the run); made once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    store = cache / f"files-rg{row_group}"
    store.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n_files):
        path = store / f"part-{i:05d}.parquet"
        if not path.exists():
            rng = np.random.default_rng([0, i])
            df = pd.DataFrame(rng.normal(size=(FILE_ROWS, COLUMNS)).round(6),
                              columns=[f"f{j:02d}" for j in range(COLUMNS)])
            df.insert(0, "id", [f"row-{i * FILE_ROWS + k}" for k in range(FILE_ROWS)])
            df["label"] = rng.integers(0, 5, FILE_ROWS)
            tmp = path.with_name(path.name + ".part")
            pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp,
                           row_group_size=row_group)
            tmp.rename(path)
            print(f"made {path}", flush=True)
        out.append(path)
    return out


def data_folder(cache: Path, rows: int, row_group: int) -> Path:
    """A folder of links to the first ``rows / 1M`` files."""
    files = make_files(cache, rows // FILE_ROWS, row_group)
    folder = cache / f"rows-{rows}-rg{row_group}"
    folder.mkdir(exist_ok=True)
    for f in files:
        link = folder / f.name
        if not link.exists():
            link.symlink_to(f)
    return folder


def _peak_kib() -> int:
    """This process's own peak RSS in KiB: ``VmHWM`` of its memory map where Linux has it.
    Not ``ru_maxrss``: that survives ``exec``, so a Dask worker started by a client holding
    3 GB reports 3 GB however little it uses itself."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child(engine: str, data: str, out: str, partition_rows: int) -> None:
    """In a child process: one manifest on ``engine``; print JSON."""
    from poisonguard.engine import DaskEngine, Engine, LocalEngine
    from poisonguard.provenance import manifest as mf

    got: dict[str, Any] = {}
    t0 = time.perf_counter()
    hasher: Engine = LocalEngine() if engine == "local" else DaskEngine(
        n_workers=WORKERS, threads_per_worker=1, memory_limit=MEMORY,
        partition_rows=partition_rows)
    with hasher:
        stream: Any = contextlib.nullcontext()
        if isinstance(hasher, DaskEngine):
            from distributed import get_task_stream

            client = hasher.connect()  # workers import the hashing code before the clock starts
            client.run(importlib.import_module, "poisonguard.provenance.partitions")
            stream = get_task_stream(client)
        got["start s"] = time.perf_counter() - t0
        with stream as tasks:
            t0 = time.perf_counter()
            built, rows = mf.build(data, id_col="id", engine=hasher)
            mf.write(built, rows, out)
            got["seconds"], end = time.perf_counter() - t0, time.time()
        if tasks is not None:
            hashing = [t for t in tasks.data if str(t["key"]).startswith("hash_partition")]
            computes = [[s for s in t["startstops"] if s["action"] == "compute"] for t in hashing]
            got["partitions"] = len(hashing)
            got["task s"] = [sum(s["stop"] - s["start"] for s in c) for c in computes]
            got["tail s"] = end - max(s["stop"] for c in computes for s in c)
            peaks = hasher.connect().run(_peak_kib)
            got["worker peak MiB"] = max(peaks.values()) / 1024
    got["client peak MiB"] = _peak_kib() / 1024
    got["root"], got["rows"] = built.merkle_root, built.rows
    print(json.dumps(got))


def run_child(engine: str, data: Path, out: Path, partition_rows: int) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--child", engine, str(data), str(out),
                           str(partition_rows)], capture_output=True, text=True, env=env)
    if proc.returncode:
        raise SystemExit(f"{engine} manifest of {data} failed:\n{proc.stderr[-3000:]}")
    got: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    got["wall s"] = time.perf_counter() - t0
    return got


def section_manifest(sizes: list[tuple[int, tuple[str, ...]]], cache: Path,
                     partition_rows: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows_out, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n, engines in sizes:
            folder = data_folder(cache, n, partition_rows)
            roots = {}
            for engine in engines:
                got = run_child(engine, folder, Path(tmp) / f"m-{n}-{engine}.json", partition_rows)
                assert got["rows"] == n, got
                roots[engine] = got["root"]
                workers = WORKERS if engine == "dask" else 1
                task_s = got.get("task s") or []
                rows_out.append({
                    "rows": f"{n:,}", "engine": engine, "workers": workers,
                    "partitions": got.get("partitions", "-"),
                    "seconds": f"{got['seconds']:.1f}", "wall s": f"{got['wall s']:.1f}",
                    "cluster start s": f"{got['start s']:.1f}" if engine == "dask" else "-",
                    "rows/s": f"{n / got['seconds']:,.0f}",
                    "rows/s per worker": f"{n / got['seconds'] / workers:,.0f}",
                    "hash s per partition": f"{np.median(task_s):.2f}" if task_s else "-",
                    "client tail s": f"{got['tail s']:.1f}" if "tail s" in got else "-",
                    "client peak MiB": f"{got['client peak MiB']:.0f}",
                    "worker peak MiB": f"{got['worker peak MiB']:.0f}" if engine == "dask" else "-",
                    "root": got["root"][:16],
                })
                print(rows_out[-1], flush=True)
                if task_s:
                    runs.append((n, got))
            if len(set(roots.values())) > 1:
                raise SystemExit(f"{n} rows: the engines' Merkle roots differ: {roots}")
    return rows_out, [estimate(runs, partition_rows)] if runs else []


def estimate(runs: list[tuple[int, dict[str, Any]]], partition_rows: int) -> dict[str, Any]:
    """1B rows on 32 workers from the largest Dask run (module docstring); the client's memory
    from the growth between the smallest and the largest run (bytes per row), or from the one
    run's peak when there is one (an upper bound: it counts the fixed start-up memory too)."""
    n, got = runs[-1]
    per_part = float(np.median(got["task s"]))
    parts = math.ceil(TARGET_ROWS / partition_rows)
    rounds = math.ceil(parts / TARGET_WORKERS)
    hashing = rounds * per_part
    tail = got["tail s"] * TARGET_ROWS / n
    (n0, first), peak = runs[0], got["client peak MiB"] * 2**20
    per_row = (peak - first["client peak MiB"] * 2**20) / (n - n0) if n > n0 else peak / n
    return {"from": f"{n:,} rows on Dask", "partition rows": f"{partition_rows:,}",
            "s per partition (median)": f"{per_part:.2f}", "partitions": f"{parts:,}",
            "rounds on 32 workers": rounds, "hashing min": f"{hashing / 60:.1f}",
            "client tail min (linear)": f"{tail / 60:.1f}",
            "total min": f"{(hashing + tail) / 60:.1f}",
            "client bytes per row": f"{per_row:.0f}",
            "client GiB": f"{(peak + per_row * (TARGET_ROWS - n)) / 2**30:.0f}"}


MANIFEST_NOTE = (
    "Folder of 1M-row Parquet files (20 float columns, int label, string id), keyed by id; "
    "`seconds` = build + write of the manifest after the engine started, `wall s` = the whole "
    "child process. Dask: LocalCluster, 2 workers x 1 thread, memory_limit 2GB each; `hash s "
    "per partition` = median compute time of one partition's hashing task on a worker; `client "
    "tail s` = from the last hashing task's end to the written manifest (id order, Merkle root, "
    "sidecar). `root`: the first 16 hex digits of the Merkle root (the engines must agree).\n")
ESTIMATE_NOTE = (
    "Linear extrapolation from the largest Dask run, not a measurement: rounds of 32 "
    "partitions at its median partition cost, plus its client tail scaled with the rows (the "
    "id sort grows a little faster than linearly); client memory grows by the bytes per row "
    "measured between the smallest and largest runs. The client keeps every row's hash and id "
    "and puts them in id order itself (as the local engine does), so at 1B rows the client's "
    "serial tail and memory, not the workers, are the limit.\n")


def scan_data(n: int) -> tuple[Any, np.ndarray]:
    """``make_classification`` n x 20 (10 informative) with 5 % of the labels flipped."""
    from sklearn.datasets import make_classification

    from poisonguard import Dataset

    X, y = make_classification(n, n_features=COLUMNS, n_informative=10, random_state=0)
    flip = np.random.default_rng(0).random(n) < SCAN_FLIPS
    y[flip] = 1 - y[flip]
    return Dataset(X, y, name=f"make_classification {n}"), flip


def scan_folder(n: int, cache: Path) -> tuple[Path, np.ndarray]:
    """:func:`scan_data` written once as a folder of Parquet files of 1M rows (row groups of
    250,000), and its flips."""
    folder = cache / f"scan-{n}"
    flips = cache / f"scan-{n}-flips.npy"
    if not flips.exists():
        ds, flip = scan_data(n)
        folder.mkdir(parents=True, exist_ok=True)
        for i, begin in enumerate(range(0, n, FILE_ROWS)):
            rows = slice(begin, min(begin + FILE_ROWS, n))
            frame = pd.DataFrame(ds.X[rows], columns=[f"x{j:02d}" for j in range(COLUMNS)])
            frame["label"] = ds.y[rows]
            frame.to_parquet(folder / f"part-{i:05d}.parquet", row_group_size=250_000)
        del ds
        np.save(flips, flip)
    return folder, np.load(flips)


def _scan_numbers(got: dict[str, Any], rep: Any, flip: np.ndarray) -> dict[str, float]:
    """A scan's regime, slow steps and flagged-rows digest into ``got``; its detection metrics."""
    got["regime"] = rep.summary()["regime"]
    got["steps"] = {k: round(v, 1) for k, v in rep.timings.items() if v >= 1}
    got["flagged_digest"] = __import__("hashlib").sha256(
        np.flatnonzero(rep.flagged).tobytes()).hexdigest()[:16]
    out: dict[str, float] = rep.evaluate(flip)
    return out


def scan_child(mode: str, n: int, cache: Path) -> None:
    """In a child process: one scan (``sampled``: the default; ``whole``: fitted on every
    row; ``dask``: the default on a 2-worker LocalCluster; ``partitions``: the default of a
    Parquet folder read as partitions on that cluster) or cleanlab; print JSON."""
    from poisonguard.evaluation.metrics import detection_metrics

    got: dict[str, Any] = {}
    if mode == "partitions":
        from poisonguard.engine import DaskEngine
        from poisonguard.scan_partitions import scan_partitions

        folder, flip = scan_folder(n, cache)
        engine = DaskEngine(n_workers=WORKERS, threads_per_worker=1, memory_limit=MEMORY)
        engine.connect()
        t0 = time.perf_counter()
        rep = scan_partitions(str(folder), engine=engine, random_state=0)
        got["seconds"] = time.perf_counter() - t0
        got["worker peak MiB"] = max(engine.connect().run(_peak_kib).values()) / 1024
        engine.close()
        m = _scan_numbers(got, rep, flip)
        got.update({"auroc": m["auroc"], "f1": m["f1"], "precision": m["precision"],
                    "recall": m["recall"], "peak MiB": _peak_kib() / 1024})
        print(json.dumps(got))
        return
    ds, flip = scan_data(n)
    if mode == "cleanlab":
        from cleanlab.filter import find_label_issues
        from cleanlab.rank import get_label_quality_scores
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import cross_val_predict

        t0 = time.perf_counter()
        proba = cross_val_predict(LogisticRegression(max_iter=1000), ds.X, ds.y, cv=5,
                                  method="predict_proba")
        issues = find_label_issues(ds.y, proba)
        quality = get_label_quality_scores(ds.y, proba)
        got["seconds"] = time.perf_counter() - t0
        m = detection_metrics(flip, -quality, issues)
    else:
        from poisonguard.scan import scan

        engine: Any = None
        if mode == "dask":
            from poisonguard.engine import DaskEngine

            engine = DaskEngine(n_workers=WORKERS, threads_per_worker=1, memory_limit=MEMORY)
            engine.connect()  # the cluster's start is not the scan's time
        t0 = time.perf_counter()
        rep = scan(ds, random_state=0, engine=engine,
                   sample_rows=n if mode == "whole" else None)
        got["seconds"] = time.perf_counter() - t0
        if engine is not None:
            got["worker peak MiB"] = max(engine.connect().run(_peak_kib).values()) / 1024
            engine.close()
        m = _scan_numbers(got, rep, flip)
    got.update({"auroc": m["auroc"], "f1": m["f1"], "precision": m["precision"],
                "recall": m["recall"], "peak MiB": _peak_kib() / 1024})
    print(json.dumps(got))


def section_scan(sizes: list[int], modes: list[str], cache: Path) -> list[dict[str, Any]]:
    rows = []
    for n in sizes:
        for mode in modes:
            env = {**os.environ, "OMP_NUM_THREADS": "2"}
            if mode == "partitions":
                scan_folder(n, cache)  # written before, not in, the timed child
            proc = subprocess.run([sys.executable, __file__, "--scan-child", mode, str(n),
                                   str(cache)], capture_output=True, text=True, env=env)
            if proc.returncode:
                raise SystemExit(f"{mode} scan of {n} rows failed:\n{proc.stderr[-3000:]}")
            got = json.loads(proc.stdout.strip().splitlines()[-1])
            regime = got.get("regime", {})
            rows.append({
                "rows": f"{n:,}", "run": SCAN_RUNS[mode],
                "fitted rows": f"{regime['fitted_rows']:,}" if regime else "-",
                "seconds": f"{got['seconds']:.1f}", "peak MiB (client)": f"{got['peak MiB']:.0f}",
                "worker peak MiB": f"{got['worker peak MiB']:.0f}" if "worker peak MiB" in got else "-",
                "AUROC": f"{got['auroc']:.4f}", "F1": f"{got['f1']:.3f}",
                "precision / recall": f"{got['precision']:.2f} / {got['recall']:.2f}",
                "flagged rows (digest)": got.get("flagged_digest", "-"),
                "steps >= 1 s": ", ".join(f"{k} {v}" for k, v in got.get("steps", {}).items()),
            })
            print(rows[-1], flush=True)
    return rows


SCAN_RUNS = {"sampled": "scan (default: two phases)", "whole": "scan fitted on every row",
             "dask": "scan on Dask (2 workers x 2 GB)",
             "partitions": "scan of a Parquet folder read as partitions on Dask (2 x 2 GB)",
             "cleanlab": "cleanlab find_label_issues"}
SCAN_NOTE = """\
`make_classification` (20 features, 10 informative, seed 0) with 5 % of the labels flipped:
the flips are the ground truth of AUROC, F1, precision and recall. Each run is its own child
process (`OMP_NUM_THREADS=2`; peak RSS its own). *default*: `scan(ds)` — proxies, detector
states and the combination fitted on a 50,000-row stratified sample, the other rows scored in
chunks of 100,000 from that state. *fitted on every row*: `scan(ds, sample_rows=n)`, the one-shot
path every row of which is fitted (what the scan did before). *Dask*: the default scan with the
chunks scored on a `LocalCluster` of 2 single-threaded workers (2 GB each; the cluster's
start is not timed); `flagged rows (digest)` must equal the local default's. *Parquet folder
read as partitions*: the same rows written as Parquet files of 1M rows, scanned with
`scan_partitions` on that cluster: the workers read the partitions (labels, the sample, then
scoring), the client holds labels, ids, scores and the flagged rows' features; peaks are each
process's own (`VmHWM`). *cleanlab*:
5-fold out-of-fold `LogisticRegression` probabilities, `find_label_issues` (flags) and
`get_label_quality_scores` (ranking), timed together.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=list(SECTIONS), choices=list(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="1M rows only")
    parser.add_argument("--big", action="store_true", help="also 100M rows on Dask (streamed)")
    parser.add_argument("--partition-rows", type=int, default=250_000,
                        help="Parquet row group and Dask partition size")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "pg-scale")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scan-child", nargs=3, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--scan-sizes", type=int, nargs="+", default=[1_000_000],
                        help="rows of the scan section")
    parser.add_argument("--scan-runs", nargs="+", default=list(SCAN_RUNS), choices=list(SCAN_RUNS),
                        help="which scan runs (10M rows: dask only, the rest take long)")
    args = parser.parse_args(argv)
    if args.scan_child:
        scan_child(args.scan_child[0], int(args.scan_child[1]), Path(args.scan_child[2]))
        return
    if args.child:
        engine, data, out, partition_rows = args.child
        child(engine, data, out, int(partition_rows))
        return
    args.cache.mkdir(parents=True, exist_ok=True)
    start, load0 = time.perf_counter(), ", ".join(f"{v:.1f}" for v in os.getloadavg())
    both = ("local", "dask")
    sizes = [(1_000_000, both)] + ([] if args.quick else [(10_000_000, both)]) + \
        ([(100_000_000, ("dask",))] if args.big else [])
    parts = [f"# Scale benchmark\n\n`python benchmarks/scale.py {' '.join(argv or sys.argv[1:])}`"
             f" — Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} "
             "CPUs; manifests with OMP_NUM_THREADS=1, scans with 2.\n"]
    if "manifest" in args.only:
        rows, estimates = section_manifest(sizes, args.cache, args.partition_rows)
        parts += ["## Manifest: local engine and Dask\n", MANIFEST_NOTE,
                  markdown_table(pd.DataFrame(rows)),
                  "\n## Estimate: 1B rows on 32 Dask workers\n", ESTIMATE_NOTE,
                  markdown_table(pd.DataFrame(estimates))]
    if "scan" in args.only:
        parts += ["## Scan: two phases, fitted on every row, on Dask, and cleanlab\n", SCAN_NOTE,
                  markdown_table(pd.DataFrame(section_scan(args.scan_sizes, args.scan_runs,
                                                           args.cache)))]
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    parts.append(f"\nTotal wall time {(time.perf_counter() - start) / 60:.1f} min; load average "
                 f"at the start {load0}, at the end {load} (other work on the machine slows "
                 "both engines, Dask's two workers most).\n")
    publish("\n".join(parts), args.out)


if __name__ == "__main__":
    main()
