"""Shared helpers for the data and CLI tests: a tiny KS config and a PDEArena-layout writer."""

from __future__ import annotations

import h5py
import numpy as np
import yaml

from pdekit.configs import package_dir

CONFIGS = package_dir()
#: The real KS train protocol (500 frames, keep 140, T ~ U(90, 110), L ~ U(57.6, 70.4)) at a
#: small grid: solved at N = 64, stored at N = 32.
TINY_KS_OVERRIDES = ["pde.solve_resolution=64", "pde.resolution=32", "batch_size=2",
                     "progress=false"]


def ks_preset() -> dict:
    return yaml.safe_load((CONFIGS / "pde" / "ks.yaml").read_text())


def tiny_ks_config(output, *, num_trajectories: int = 5, **overrides) -> dict:
    """A resolved ``generate`` config for the KS train split at N = 64 -> 32."""
    pde = ks_preset()
    pde.update(solve_resolution=64, resolution=32)
    cfg = dict(pde=pde, split="train", num_trajectories=num_trajectories, output=str(output),
               seed=0, batch_size=2, overwrite=False, precision="float32",
               solve_precision="float64", progress=False)
    cfg.update(overrides)
    return cfg


def write_pdearena(path, *, sizes=None, nt: int = 12, nx: int = 16, with_v: bool = True,
                   seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Write a file in the PDEArena/LPSDA KS layout; return the arrays written per split."""
    sizes = sizes or {"train": 6, "valid": 3}
    rng = np.random.default_rng(seed)
    out = {}
    with h5py.File(path, "w") as f:
        for split, n in sizes.items():
            g = f.create_group(split)
            L = rng.uniform(57.6, 70.4, n)
            dt = rng.uniform(0.18, 0.22, n)
            arrays = {
                f"pde_{nt}-{nx}": rng.normal(1.0, 2.0, (n, nt, nx)).astype(np.float32),
                "x": (np.arange(nx)[None] * (L / nx)[:, None]),
                "t": np.arange(nt)[None] * dt[:, None],
                "dx": L / nx,
                "dt": dt,
            }
            if with_v:
                arrays["v"] = rng.uniform(0.5, 1.5, n)
            for name, value in arrays.items():
                g.create_dataset(name, data=value)
            out[split] = arrays
    return out
