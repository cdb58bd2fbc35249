"""Benchmark: time to generate the KS train split (PDE-Refiner protocol), solve vs write.

Full size (one GPU): 2048 trajectories x 500 saved frames (4 ETDRK4 steps each, float64
solve), the last 140 frames stored as float32 at N = 256, plus normalisation statistics.
``--small`` runs 64 trajectories (sized for a CPU).

    python benchmarks/generate.py            # full split, GPU
    python benchmarks/generate.py --small    # 64 trajectories, CPU

Reported, median over ``--repeats`` runs after compiling once: ``solve`` = the batched
compiled solves including the device-to-host copy, ``write`` = HDF5 writes and flushes,
``stats`` = the normalisation-statistics pass, ``total`` = the whole ``generate_dataset``
call. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
import yaml

from pdekit.configs import package_dir
from pdekit.data import build_protocol, generate_dataset, make_batch_solver, split_seed
from pdekit.data.writer import auto_batch_size, x64

CONFIG = package_dir() / "pde" / "ks.yaml"


def _config(n: int, out: Path, batch) -> dict:
    return dict(pde=yaml.safe_load(CONFIG.read_text()), split="train", num_trajectories=n,
                output=str(out), seed=0, batch_size=batch, overwrite=True,
                precision="float32", solve_precision="float64", progress=False)


def _warm_up(p, seed: int, batch: int) -> float:
    """Compile the batched solver (the cache is shared with ``generate_dataset``)."""
    start = time.perf_counter()
    with x64(True):
        make_batch_solver(p, seed)(np.zeros(batch, dtype=np.int64))
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="64 trajectories (CPU-sized)")
    ap.add_argument("--trajectories", type=int, default=None)
    ap.add_argument("--batch-size", default="auto")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="generate_benchmark.json", help="where to write results")
    args = ap.parse_args()
    n = args.trajectories or (64 if args.small else 2048)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "train.h5"
        cfg = _config(n, out, args.batch_size)
        p = build_protocol(cfg["pde"], "train", n)
        batch = auto_batch_size(p) if args.batch_size == "auto" else int(args.batch_size)
        cfg["batch_size"] = batch
        seed = split_seed("ks", "train", 0)
        compile_s = _warm_up(p, seed, batch)
        runs = []
        for _ in range(args.repeats):
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            generate_dataset(cfg, progress=False, timings=timings)
            runs.append({**timings, "total": time.perf_counter() - t0})
        size_mb = out.stat().st_size / 2**20
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    solve_s, total_s = med["solve"], med["total"]
    result = {
        "benchmark": "generate ks train split",
        "device": str(jax.devices()[0].device_kind), "platform": jax.default_backend(),
        "jax": jax.__version__, "date": time.strftime("%Y-%m-%d"),
        "trajectories": n, "frames_solved": p.frames, "frames_stored": p.keep,
        "inner_steps": p.inner_steps, "N": p.solve_resolution, "batch_size": batch,
        "solve_precision": "float64", "stored": "float32", "repeats": args.repeats,
        "compile_s": compile_s, "solve_s": solve_s, "write_s": med["write"],
        "stats_s": med["stats"], "total_s": total_s, "trajectories_per_s": n / total_s,
        "file_MiB": size_mb, "runs": runs,
    }
    rows = [("device", result["device"]), ("trajectories", n), ("batch size", batch),
            ("compile (s)", f"{compile_s:.2f}"), ("solve (s)", f"{solve_s:.3f}"),
            ("write (s)", f"{med['write']:.3f}"), ("stats (s)", f"{med['stats']:.3f}"),
            ("total (s)", f"{total_s:.3f}"),
            ("trajectories / s", f"{result['trajectories_per_s']:.1f}"),
            ("file (MiB)", f"{size_mb:.1f}")]
    width = max(len(k) for k, _ in rows)
    print(f"KS train split: {p.frames} frames x {p.inner_steps} ETDRK4 steps, keep {p.keep}, "
          f"N={p.solve_resolution}, float64 solve / float32 stored")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    Path(args.json).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
