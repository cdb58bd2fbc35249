"""Online data (``data.source=online``): what solving trajectories in the loop costs per step.

For one PDE protocol, one model preset and each refresh setting ``R:E`` (``R`` trajectories
replaced every ``E`` steps), on the devices of this machine:

    fixed    the trainer's step (``pdekit.training.state.make_train_step``) on one batch
             already on the devices: the step alone, no data cost
    online   the same step fed by ``pdekit.training.data.OnlineBatches`` of the real
             ``OnlineSource`` (opened by ``pdekit.training.data.open_data`` from the composed
             config, as ``pdekit train`` does): window gathers every step, a refresh solve
             every ``E`` steps, all dispatched from the loop's thread and interleaved on the
             device with the steps

Reported per setting: ``step ms`` (fixed), ``online ms`` (per step, averaged over whole
refresh periods), ``overhead`` = online / fixed - 1 (the issue's budget: <= 15 % for the KS
protocol and unetmod1d_64 on one H200), ``refresh s`` (one refresh solve alone:
``block_until_ready`` around the batch of a refresh step minus that of a plain step),
``predicted`` = refresh s / (E x step s), ``gather ms`` (a plain step's batch alone),
``start s`` (calibration + first buffer fill, compilation included) and the buffer's MiB per
device. Timing: one warm-up period of each (compiles), then ``--periods`` rounds of one
period of ``E`` steps of each, closed by ``jax.block_until_ready``; medians over the rounds.

    python benchmarks/online.py --small                    # CPU: tiny KS (N 64 -> 32), U-Net small
    python benchmarks/online.py                            # GPU: KS protocol, unetmod1d_64, batch 128
    python benchmarks/online.py --refresh 512:100,256:50,128:25 --buffer 2048 --precision bf16

The table is printed and JSON written to ``--out`` (default
``benchmarks/results/online.json``, ``online_small.json`` with ``--small``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pdekit._mesh import DataParallel  # noqa: E402
from pdekit.configs import compose  # noqa: E402
from pdekit.data.online import buffer_bytes  # noqa: E402
from pdekit.training.config import validate  # noqa: E402
from pdekit.training.data import OnlineBatches, open_data  # noqa: E402
from pdekit.training.model import count_params, init_model, split  # noqa: E402
from pdekit.training.objectives import make_objective  # noqa: E402
from pdekit.training.optim import lr_schedule, make_optimizer  # noqa: E402
from pdekit.training.session import derive  # noqa: E402
from pdekit.training.state import init_acc, init_state, make_train_step  # noqa: E402

#: the tiny KS protocol of --small (as tests/training/test_online.py)
SMALL_PDE = ["pde.solve_resolution=64", "pde.resolution=32", "pde.splits.train.frames=40",
             "pde.splits.train.keep=16", "pde.splits.train.final_time=[9.0,11.0]"]


def config(args, refresh: int, every: int):
    """The composed, validated ``pdekit train`` config of one setting."""
    over = [f"model={args.model}", f"pde={args.pde}", f"data={args.data}", "data.source=online",
            "data.valid_path=null", f"data.online.buffer_size={args.buffer}",
            f"data.online.refresh_count={refresh}", f"data.online.refresh_every={every}",
            f"data.online.solve_precision={args.solve_precision}",
            f"train.batch_size={args.batch}", f"train.precision={args.precision}",
            "train.steps=1000000", "run.root=/nonexistent"]
    if args.small:
        over += SMALL_PDE + ["data.stride=2"]
    return validate(compose("train", over))


def timed(fn) -> float:
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t0


def measure(args, refresh: int, every: int, dp: DataParallel) -> dict:
    cfg = config(args, refresh, every)
    t0 = time.perf_counter()
    src, _ = open_data(cfg, dp)  # calibration: its trajectories solved and copied to the host
    jax.block_until_ready(src.batch(0, args.batch))  # the first buffer fill
    start_s = time.perf_counter() - t0
    derived = OmegaConf.create({**derive(cfg, src), "num_params": 0})
    t = cfg.train
    params, static = split(init_model(cfg, derived, jax.random.PRNGKey(0), dp.replicated))
    opt = make_optimizer(t)
    step_fn = make_train_step(static, make_objective(t, int(cfg.data.future)), opt,
                              lr_schedule(t), ema_decay=float(t.ema_decay), precision=t.precision,
                              replicated=dp.replicated)
    state = jax.jit(lambda p: init_state(p, opt, 0, int(t.steps)), out_shardings=dp.replicated)(params)
    acc = jax.jit(init_acc, out_shardings=dp.replicated)()

    # fixed (one batch on the devices, reused) and online (whole refresh periods, a refresh at
    # each one's first step) alternate, one period of each per round, so that a machine whose
    # load drifts slows both alike; the medians over the rounds are reported
    batch = src.batch(1, args.batch)
    it = iter(OnlineBatches(src, args.batch, every, every * (2 + args.periods)))

    def block(online: bool) -> float:
        nonlocal state, acc
        jax.block_until_ready(state)
        t0 = time.perf_counter()
        for _ in range(every):
            state, acc = step_fn(state, next(it)[1] if online else batch, acc)
        jax.block_until_ready(state)
        return (time.perf_counter() - t0) / every

    block(False), block(True)  # warm-up: compiles the step, the gather and the refresh
    rounds = [(block(False), block(True)) for _ in range(args.periods)]
    fixed_s, online_s = (float(np.median(x)) for x in zip(*rounds, strict=True))

    # one refresh alone, and one plain gather alone (the buffer moves on: steps after the run)
    s0 = every * (2 + args.periods)
    jax.block_until_ready(src.batch(s0 - 1, args.batch))
    refresh_s = timed(lambda: src.batch(s0, args.batch))
    gather_s = min(timed(lambda i=i: src.batch(s0 + 1 + i, args.batch))
                   for i in range(max(1, min(3, every - 1))))
    refresh_s -= gather_s
    src.close()
    return {"pde": args.pde, "model": args.model, "params": count_params(params),
            "precision": args.precision, "solve_precision": args.solve_precision,
            "batch": args.batch, "devices": dp.num_devices, "buffer": args.buffer,
            "refresh_count": refresh, "refresh_every": every, "periods": args.periods,
            "step_ms": 1e3 * fixed_s, "online_step_ms": 1e3 * online_s,
            "overhead": online_s / fixed_s - 1.0, "refresh_s": refresh_s,
            "predicted_overhead": refresh_s / (every * fixed_s), "gather_ms": 1e3 * gather_s,
            "start_s": start_s, "buffer_mib": buffer_bytes(src.protocol, src.settings) / 2**20,
            "trajectories_per_step": refresh / every}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="CPU smoke run, tiny sizes")
    ap.add_argument("--pde", default="ks")
    ap.add_argument("--data", default="ks")
    ap.add_argument("--model", default=None, help="unetmod1d_64 (unetmod1d_small with --small)")
    ap.add_argument("--batch", type=int, default=None, help="128 (8 with --small)")
    ap.add_argument("--buffer", type=int, default=None, help="2048 (16 with --small)")
    ap.add_argument("--refresh", default=None,
                    help="R:E settings, comma-separated (1024:200,512:100; 4:5 with --small)")
    ap.add_argument("--periods", type=int, default=None, help="timed rounds (5; 4 with --small)")
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--solve-precision", default="float64", choices=("float32", "float64"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    small = args.small
    args.model = args.model or ("unetmod1d_small" if small else "unetmod1d_64")
    args.batch = args.batch or (8 if small else 128)
    args.buffer = args.buffer or (16 if small else 2048)
    args.periods = args.periods or (4 if small else 5)
    settings = [tuple(int(v) for v in s.split(":"))
                for s in (args.refresh or ("4:5" if small else "1024:200,512:100")).split(",")]
    out = Path(args.out or ROOT / "benchmarks" / "results" /
               ("online_small.json" if small else "online.json"))
    dp = DataParallel.create()
    dev = jax.devices()[0]
    print(f"{args.pde} / {args.model} / batch {args.batch} / buffer {args.buffer} on "
          f"{dp.num_devices} x {dev.device_kind}", flush=True)
    print(f"{'R:E':>9}{'step ms':>9}{'online ms':>11}{'overhead':>10}{'refresh s':>11}"
          f"{'predicted':>11}{'gather ms':>11}{'start s':>9}{'buf MiB':>9}", flush=True)
    rows = []
    for refresh, every in settings:
        r = measure(args, refresh, every, dp)
        rows.append(r)
        print(f"{f'{refresh}:{every}':>9}{r['step_ms']:>9.2f}{r['online_step_ms']:>11.2f}"
              f"{100 * r['overhead']:>9.1f}%{r['refresh_s']:>11.3f}"
              f"{100 * r['predicted_overhead']:>10.1f}%{r['gather_ms']:>11.2f}"
              f"{r['start_s']:>9.1f}{r['buffer_mib']:>9.1f}", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({
            "benchmark": "online data overhead per step", "device": dev.device_kind,
            "platform": dev.platform, "jax": jax.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d"), "small": small, "rows": rows}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
