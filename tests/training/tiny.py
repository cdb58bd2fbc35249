"""Data wrappers for the training tests, and a script entry for subprocess runs.

``python tiny.py CONFIG_JSON [--delay S] [--dump OUT.npz]`` trains the config (a dict as
made by ``conftest.tiny_cfg``) and optionally writes the final parameters.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np


class Wrapped:
    """Delegates to a WindowDataset, changing ``sample_batch``."""

    def __init__(self, ds, *, nan_from: int | None = None, delay: float = 0.0):
        self._ds, self._nan_from, self._delay = ds, nan_from, delay

    def __getattr__(self, name):
        return getattr(self._ds, name)

    def sample_batch(self, step, batch_size, **kw):
        batch = self._ds.sample_batch(step, batch_size, **kw)
        if self._delay:
            time.sleep(self._delay)
        if self._nan_from is not None and step >= self._nan_from:
            batch = {**batch, "u_out": np.full_like(batch["u_out"], np.nan)}
        return batch


def open_wrapped(cfg, **kw):
    from omegaconf import OmegaConf

    from pdekit.training.config import validate
    from pdekit.training.data import open_data

    train_ds, valid_ds = open_data(validate(OmegaConf.create(cfg)))
    return Wrapped(train_ds, **kw), valid_ds


def flat_params(run_dir, which="last", ema=False) -> dict:
    import jax

    from pdekit.training import load_run

    model, _, _ = load_run(run_dir, which=which, ema=ema)
    leaves = jax.tree_util.tree_leaves_with_path(model)
    return {jax.tree_util.keystr(p): np.asarray(x) for p, x in leaves if hasattr(x, "dtype")}


def main(argv):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    cfg = json.loads(Path(argv[0]).read_text())
    delay = float(argv[argv.index("--delay") + 1]) if "--delay" in argv else 0.0
    from pdekit.training.loop import train
    from pdekit.training.preemption import TrainingInterrupted

    try:
        res = train(cfg, data=open_wrapped(cfg, delay=delay))
    except ValueError as err:
        print(f"ERROR: {err}")
        sys.exit(2)
    except TrainingInterrupted as err:  # a stop signal, as `pdekit train` reports it
        print(f"pdekit train: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
    if "--dump" in argv:
        np.savez(argv[argv.index("--dump") + 1], **flat_params(res.run_dir))


if __name__ == "__main__":
    main(sys.argv[1:])
