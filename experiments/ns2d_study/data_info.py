"""Describe the study's data files as JSON (stdout): per split the stored array, the protocol's
solve grid, time steps, burn-in and the generation wall time (the sum of the attempts in
``<logs>/generate_<split>.walls``, which run.sh writes).

    python experiments/ns2d_study/data_info.py datasets/ns2d_kolmogorov runs/ns2d_study/logs
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from pdekit.data import open_trajectories

ATTRS = ("pde", "equation", "order", "dealias", "forcing", "solve_resolution", "inner_steps",
         "frames_solved", "burn_in_frames", "stride", "split_seed")


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return [_plain(x) for x in v.tolist()] if v.dtype == object else v.tolist()
    return v


def describe(path: Path, logs: Path | None = None) -> dict:
    with open_trajectories(path) as tr:
        attrs = {k: _plain(tr.attrs[k]) for k in ATTRS if k in tr.attrs}
        t = np.asarray(tr.t[()], np.float64)
        params = {k: sorted({round(float(x), 12) for x in np.ravel(np.asarray(v))})[:4]
                  for k, v in tr.params.items() if k in ("nu", "drag", "L", "dt", "dx")}
        out = {"file": str(path), "bytes": path.stat().st_size,
               "u_shape": list(tr.u.shape), "u_dtype": str(tr.u.dtype),
               "fields": _plain(tr.attrs.get("fields")),
               "saved_dt": float(np.mean(tr.dt)), "t_first": float(np.ravel(t)[0]),
               "t_last": float(t[..., -1].max()), "params": params, **attrs}
    if attrs.get("inner_steps") and out["saved_dt"]:
        out["solver_dt"] = out["saved_dt"] / float(attrs["inner_steps"])
    walls = logs / f"generate_{path.stem}.walls" if logs else None
    if walls is not None and walls.exists():  # "<seconds> <exit status>" per attempt
        attempts = [line.split() for line in walls.read_text().splitlines() if line.strip()]
        out["generate_wall_s"] = sum(int(a[0]) for a in attempts)
        out["generate_attempts"] = len(attempts)
    return out


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: data_info.py <data dir> [<logs dir>]")
    data, logs = Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else None
    print(json.dumps({s: describe(data / f"{s}.h5", logs) for s in ("train", "valid", "test")
                      if (data / f"{s}.h5").exists()}, indent=1))


if __name__ == "__main__":
    main()
