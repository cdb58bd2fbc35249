"""Fixtures for the training tests: tiny KS-like HDF5 files and tiny configs."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # makes `toy_models` importable as a Hydra _target_
    sys.path.insert(0, str(HERE))


def ks_like(n_traj: int, frames: int, n: int = 32, seed: int = 0) -> np.ndarray:
    """Damped travelling waves on a periodic grid: smooth, chaotic-looking, learnable."""
    rng = np.random.default_rng(seed)
    x = np.arange(n) * 2 * np.pi / n
    t = np.arange(frames)[:, None] * 0.2
    u = np.zeros((n_traj, frames, 1, n), np.float32)
    for i in range(n_traj):
        for k in (1, 2, 3):
            a, phi, c = rng.uniform(-1, 1), rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
            u[i, :, 0] += a * np.exp(-0.05 * k * k * t) * np.sin(k * (x - c * t) + phi)
    return u


def ns_like(n_traj: int, frames: int, n: int = 16, seed: int = 0) -> np.ndarray:
    """2D analogue of :func:`ks_like`: damped travelling plane waves on a periodic square."""
    rng = np.random.default_rng(seed)
    x = np.arange(n) * 2 * np.pi / n
    xx, yy = np.meshgrid(x, x, indexing="ij")
    u = np.zeros((n_traj, frames, 1, n, n), np.float32)
    for i in range(n_traj):
        for kx, ky in ((1, 0), (0, 1), (1, 1)):
            a, phi, c = rng.uniform(-1, 1), rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
            for t in range(frames):
                u[i, t, 0] += a * np.exp(-0.01 * t) * np.sin(kx * xx + ky * yy - c * 0.2 * t + phi)
    return u


def write_h5(path: Path, u: np.ndarray, dt: float = 0.2, pde: str = "ks") -> Path:
    """A complete file in the pdekit HDF5 layout (docs/data.md)."""
    n, frames, _, nx = u.shape[:4]
    dims = u.ndim - 3
    with h5py.File(path, "w") as f:
        f.attrs.update(pde=pde, dt=dt, spatial_dims=dims, schema_version=1, config="{}",
                       created_by="tests", complete=True, completed_trajectories=n)
        f.create_dataset("u", data=u, chunks=(1, *u.shape[1:]))
        f["t"] = np.arange(frames) * dt
        for name in ("x", "y")[:dims]:
            f[name] = np.arange(nx) * 2 * np.pi / nx
        f["params/dt"] = np.full(n, dt)
        f["params/dx"] = np.full(n, 2 * np.pi / nx)
        f["params/L"] = np.full(n, 2 * np.pi)
    return path


@pytest.fixture(scope="session")
def ks_files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("ks_data")
    return {"train": str(write_h5(d / "train.h5", ks_like(16, 24, seed=1))),
            "valid": str(write_h5(d / "valid.h5", ks_like(4, 24, seed=2)))}


@pytest.fixture(scope="session")
def ns_files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("ns_data")
    return {"train": str(write_h5(d / "train.h5", ns_like(6, 12, seed=1), pde="ns2d")),
            "valid": str(write_h5(d / "valid.h5", ns_like(2, 12, seed=2), pde="ns2d"))}


TOY = {"_target_": "toy_models.ToyConv", "width": 8}


def tiny_cfg(files: dict, root, *, model=None, **train) -> dict:
    """A complete config dict (what `pdekit train` composes) for a few CPU steps."""
    t = dict(steps=12, batch_size=8, lr=3e-3, warmup_steps=2, ema_decay=0.9, log_every=4,
             valid_every=6, ckpt_every=6, progress=False, prefetch=2)
    t.update(train)
    return {
        "seed": 0,
        "run": {"root": str(root), "experiment": "test", "name": "default"},
        "data": {"train_path": files["train"], "valid_path": files["valid"], "history": 1,
                 "future": 1, "stride": 1, "cond_keys": ["dt", "dx"],
                 "valid_trajectories": 2, "rollout_steps": 4, "valid_batches": 2},
        "train": t,
        "model": dict(model or TOY),
    }
