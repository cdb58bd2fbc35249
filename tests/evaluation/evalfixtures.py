"""Helpers for the evaluation tests: tiny pdekit HDF5 files and a tiny trained run."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def travelling_waves(n_traj: int, frames: int, n: int = 16, seed: int = 0) -> np.ndarray:
    """u(x, t) = sum_k a_k sin(k (x - c t) + phi_k): every frame is the previous one shifted."""
    rng = np.random.default_rng(seed)
    x = np.arange(n) * 2 * np.pi / n
    u = np.zeros((n_traj, frames, 1, n), np.float32)
    for i in range(n_traj):
        for k in (1, 2):
            a, phi = rng.uniform(0.5, 1.0), rng.uniform(0, 2 * np.pi)
            u[i, :, 0] += a * np.sin(k * (x[None] - 0.5 * np.arange(frames)[:, None] * 0.2) + phi)
    return u


def write_h5(path: Path, u: np.ndarray, dt: float = 0.2, pde: str = "ks") -> Path:
    n, frames, _, nx = u.shape
    with h5py.File(path, "w") as f:
        f.attrs.update(pde=pde, dt=dt, spatial_dims=1, schema_version=1, config="{}",
                       created_by="tests", complete=True, completed_trajectories=n)
        f.create_dataset("u", data=u, chunks=(1, *u.shape[1:]))
        f["t"] = np.arange(frames) * dt
        f["x"] = np.arange(nx) * 2 * np.pi / nx
        f["params/dt"] = np.full(n, dt)
        f["params/dx"] = np.full(n, 2 * np.pi / nx)
        f["params/L"] = np.full(n, 2 * np.pi)
    return path


def make_trained_run(d: Path, root: Path, *, name: str = "tiny", steps: int = 4,
                     lr: float = 3e-3, test_trajectories: int = 4, model: dict | None = None,
                     validate: bool = True) -> Path:
    """A real (tiny) `pdekit train` run on data in ``d``, which also gets a test.h5; ``model``
    replaces the default ``eval_toy.TinyConv`` config; ``validate=False`` trains without a
    validation split (faster: no validation rollout to compile)."""
    from pdekit.training.loop import train

    files = {"train": str(write_h5(d / "train.h5", travelling_waves(8, 20, seed=1))),
             "valid": str(write_h5(d / "valid.h5", travelling_waves(4, 20, seed=2)))}
    write_h5(d / "test.h5", travelling_waves(test_trajectories, 25, seed=3))
    every = max(2, steps // 4)
    cfg = {
        "seed": 0,
        "run": {"root": str(root), "experiment": "evaltest", "name": name},
        "data": {"train_path": files["train"], "valid_path": files["valid"] if validate else None, "history": 1,
                 "future": 1, "stride": 2, "cond_keys": ["dt", "dx"], "valid_trajectories": 2,
                 "rollout_steps": 2, "valid_batches": 1},
        "train": dict(steps=steps, batch_size=8, lr=lr, warmup_steps=1, ema_decay=0.9,
                      log_every=every, valid_every=every, ckpt_every=every, progress=False,
                      prefetch=1),
        "model": model or {"_target_": "eval_toy.TinyConv"},
    }
    return train(cfg).run_dir
