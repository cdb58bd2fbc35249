"""Training throughput of each model preset: samples/s (fp32 and bf16) and data-wait time.

Runs the real train step (``pdekit.training.state.make_train_step``: AdamW, clipping, EMA,
donated buffers) fed by the real background prefetcher, on synthetic in-memory batches, so
the figure is the trainer's, not a hand-written loop's. With ``--devices 1,2,4`` the same
per-device batch is run data-parallel on the first d devices and the per-device rate and
scaling efficiency are reported.

    python benchmarks/training.py --small                 # CPU smoke run, tiny sizes
    python benchmarks/training.py                         # GPU: batch 128 (1D, N=256), 32 (2D, 64^2)
    python benchmarks/training.py --presets unetmod1d_64 --devices 1,2,4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pdekit.cli.train import compose_config  # noqa: E402
from pdekit.training.config import TrainConfig  # noqa: E402
from pdekit.training.data import Prefetcher  # noqa: E402
from pdekit.training.model import count_params, init_model, split  # noqa: E402
from pdekit.training.objectives import make_objective  # noqa: E402
from pdekit.training.optim import lr_schedule, make_optimizer  # noqa: E402
from pdekit.training.sharding import DataParallel  # noqa: E402
from pdekit.training.state import init_acc, init_state, make_train_step  # noqa: E402

# preset -> (spatial_dims, history, future, objective)
PRESETS = {
    "fno1d": (1, 1, 1, "mse"), "unetmod1d_64": (1, 1, 1, "mse"),
    "unetmod1d_small": (1, 1, 1, "mse"), "mppde1d": (1, 25, 25, "mse"),
    "pderefiner": (1, 1, 1, "refiner"), "pderefiner_small": (1, 1, 1, "refiner"),
    "fno2d": (2, 1, 1, "mse"), "unetmod2d_64": (2, 4, 1, "mse"),
    "sinenet8": (2, 4, 1, "mse"), "sinenet4": (2, 4, 1, "mse"), "sinenet2": (2, 4, 1, "mse"),
}
SMALL = ["fno1d", "unetmod1d_small", "pderefiner_small", "mppde1d"]


class Synthetic:
    """A ``sample_batch`` source of random normalised windows (a pool, rolled per step)."""

    def __init__(self, batch: int, history: int, future: int, shape: tuple, num_cond: int = 2):
        rng = np.random.default_rng(0)
        pool = 4
        self.u = rng.normal(size=(pool * batch, history + future, 1, *shape)).astype(np.float32)
        self.cond = rng.uniform(0.1, 1.0, size=(pool * batch, num_cond)).astype(np.float32)
        self.history, self.pool = history, pool

    def sample_batch(self, step, batch_size, *, seed=0, process_index=0, process_count=1):
        local = batch_size // process_count
        lo = ((step % self.pool) * batch_size + process_index * local)
        u = self.u[lo : lo + local]
        return {"u_in": u[:, : self.history], "u_out": u[:, self.history :],
                "cond": self.cond[lo : lo + local]}


def measure(preset, *, batch, shape, precision, dp, steps, warmup):
    dims, history, future, objective = PRESETS[preset]
    mcfg = compose_config([f"model={preset}"]).model  # composes Hydra defaults (refiner backbone)
    tcfg = OmegaConf.merge(OmegaConf.structured(TrainConfig),
                           {"steps": steps + warmup, "objective": objective, "precision": precision})
    cfg = OmegaConf.create({"model": mcfg, "train": tcfg,
                            "data": {"history": history, "future": future}})
    derived = OmegaConf.create({"spatial_dims": dims, "channels": 1, "num_cond": 2})
    model = init_model(cfg, derived, jax.random.PRNGKey(0), dp.replicated)
    params, static = split(model)
    opt = make_optimizer(tcfg)
    state = jax.jit(lambda p: init_state(p, opt, 0), out_shardings=dp.replicated)(params)
    step_fn = make_train_step(static, make_objective(tcfg, future), opt, lr_schedule(tcfg),
                              ema_decay=0.999, precision=precision, replicated=dp.replicated)
    acc = jax.jit(init_acc, out_shardings=dp.replicated)()
    src = Synthetic(batch, history, future, shape)
    pre = Prefetcher(lambda s: src.sample_batch(s, batch), lambda b: dp.put_local_batch(b, batch),
                     0, steps + warmup, depth=2)
    t0 = wait0 = None
    for i, b in pre:
        if i == warmup:
            jax.block_until_ready(state)
            t0, wait0 = time.perf_counter(), pre.wait_s
        state, acc = step_fn(state, b, acc)
    jax.block_until_ready((state, acc))
    elapsed = time.perf_counter() - t0
    pre.close()
    loss = float(jax.device_get(acc)["loss"]) / (steps + warmup)
    mem = (dp.mesh.devices.flat[0].memory_stats() or {}).get("peak_bytes_in_use")
    return {"preset": preset, "precision": precision, "devices": dp.num_devices, "batch": batch,
            "shape": list(shape), "params": count_params(params), "steps_per_s": steps / elapsed,
            "samples_per_s": steps * batch / elapsed, "data_wait_frac": (pre.wait_s - wait0) / elapsed,
            "peak_mem_gb": None if mem is None else mem / 2**30, "mean_loss": loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="CPU sizes (N=64, 16^2, batch 8)")
    ap.add_argument("--presets", default=None, help="comma-separated presets")
    ap.add_argument("--precision", default="fp32,bf16")
    ap.add_argument("--devices", default="1", help="comma-separated device counts, e.g. 1,2,4")
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--out", default="benchmarks/results/training.json")
    args = ap.parse_args()
    presets = args.presets.split(",") if args.presets else (SMALL if args.small else list(PRESETS))
    steps = args.steps or (5 if args.small else 50)
    rows = []
    for preset in presets:
        if not (ROOT / "configs" / "model" / f"{preset}.yaml").exists():
            print(f"skip {preset}: no configs/model/{preset}.yaml", file=sys.stderr)
            continue
        dims = PRESETS[preset][0]
        shape = ((64,) if args.small else (256,)) if dims == 1 else \
            ((16, 16) if args.small else (64, 64))
        per_dev = 8 if args.small else (128 if dims == 1 else 32)
        for n in (int(d) for d in args.devices.split(",")):
            if n > jax.device_count():
                print(f"skip {n} devices: only {jax.device_count()}", file=sys.stderr)
                continue
            dp = DataParallel(Mesh(np.asarray(jax.devices()[:n]), ("data",)))
            for precision in args.precision.split(","):
                rows.append(measure(preset, batch=per_dev * n, shape=shape, precision=precision,
                                    dp=dp, steps=steps, warmup=2))
    base = {(r["preset"], r["precision"]): r["samples_per_s"] for r in rows if r["devices"] == 1}
    print(f"{'preset':<18}{'prec':<6}{'dev':>4}{'batch':>7}{'params':>12}{'steps/s':>10}"
          f"{'samples/s':>12}{'per dev':>10}{'eff':>7}{'wait':>7}{'mem GB':>8}")
    for r in rows:
        per = r["samples_per_s"] / r["devices"]
        one = base.get((r["preset"], r["precision"]))
        r["efficiency"] = None if one is None else per / one
        eff = "" if one is None else f"{r['efficiency']:.2f}"
        mem = "" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.2f}"
        print(f"{r['preset']:<18}{r['precision']:<6}{r['devices']:>4}{r['batch']:>7}"
              f"{r['params']:>12,}{r['steps_per_s']:>10.2f}{r['samples_per_s']:>12.1f}"
              f"{per:>10.1f}{eff:>7}{r['data_wait_frac']:>7.2f}{mem:>8}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": jax.devices()[0].device_kind, "jax": jax.__version__,
            "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv)}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
