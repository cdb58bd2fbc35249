"""Rollout overhead: PDE-Refiner (K = 3) scan-compiled rollout vs the pure network time.

GPU target (docs/benchmarks.md): 128 KS trajectories x 160 model steps, N = 256, the
``unetmod1d_64``-shaped backbone; the compiled rollout must cost <= 1.1x the time of the
K + 1 backbone forward passes per step measured alone (one batched forward, jitted, timed
separately and multiplied by (K + 1) x steps). ``--small`` runs a tiny configuration on CPU.

    python benchmarks/rollout.py --small
    python benchmarks/rollout.py --out rollout.json
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import statistics
import time
from datetime import UTC, datetime

import equinox as eqx
import jax
import jax.numpy as jnp


def _median_time(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # warm-up / compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def build_refiner(n: int, hidden: int, mults, k: int, key):
    from pdekit.models.refiner import PDERefiner
    from pdekit.models.unet import UNetMod

    backbone = functools.partial(UNetMod, hidden_channels=hidden, channel_multipliers=mults,
                                 zero_init=False)
    return PDERefiner(spatial_dims=1, history=1, future=1, channels=1, num_cond=2, key=key,
                      backbone=backbone, num_refinement_steps=k)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="tiny CPU configuration")
    p.add_argument("--trajectories", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="rollout_benchmark.json")
    args = p.parse_args(argv)

    from pdekit.evaluation.rollout import rollout, shard_batch

    cfg = (dict(b=8, steps=10, n=64, hidden=8, mults=(1, 2)) if args.small
           else dict(b=128, steps=160, n=256, hidden=64, mults=(1, 2, 2, 4)))
    b = args.trajectories or cfg["b"]
    steps = args.steps or cfg["steps"]
    k = 3
    key = jax.random.PRNGKey(0)
    model = build_refiner(cfg["n"], cfg["hidden"], cfg["mults"], k, key)
    n_params = sum(x.size for x in jax.tree.leaves(model) if hasattr(x, "size"))
    u0 = jax.random.normal(key, (b, 1, 1, cfg["n"]), jnp.float32)
    cond = jnp.tile(jnp.array([[0.8, 0.25]], jnp.float32), (b, 1))

    roll = lambda: rollout(model, u0, cond, steps, future=1, key=key)
    t_roll = _median_time(roll, args.repeats)

    # pure network time: one batched backbone forward on (history + estimate) frames
    x = jnp.concatenate([u0, u0], axis=1)
    c = jnp.concatenate([cond, jnp.full((b, 1), 1000.0 / k)], axis=1)
    x, c = shard_batch(x, c)
    fwd = eqx.filter_jit(lambda m, xs, cs: jax.vmap(lambda xi, ci: m(xi, ci))(xs, cs))
    backbone = model.backbone
    t_fwd = _median_time(lambda: fwd(backbone, x, c), max(args.repeats, 10))
    t_net = t_fwd * (k + 1) * steps
    result = {
        "benchmark": "refiner_rollout", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(jax.devices()[0].device_kind), "num_devices": jax.device_count(),
        "jax": jax.__version__, "host": platform.node(), "small": bool(args.small),
        "trajectories": b, "steps": steps, "N": cfg["n"], "K": k, "params": int(n_params),
        "rollout_s": t_roll, "forward_s": t_fwd, "network_s": t_net,
        "ratio": t_roll / t_net, "target_ratio": 1.1,
    }
    rows = [("rollout (scan, K+1 calls/step)", t_roll), ("one batched forward", t_fwd),
            ("network time (K+1) x steps x forward", t_net)]
    print(f"PDE-Refiner K={k}: {b} trajectories x {steps} steps, N={cfg['n']}, "
          f"{n_params:,} params, {result['device']}")
    for name, t in rows:
        print(f"  {name:<40} {t * 1e3:10.2f} ms")
    print(f"  {'ratio rollout / network':<40} {result['ratio']:10.3f}   (target <= 1.1)")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
