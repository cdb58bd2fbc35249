"""Layout and padding variants of the U-Net's residual block, measured before choosing one.

Issue 15 asks for the modern U-Net to be profiled and its layout chosen by measurement. This
script times the training step (forward + backward + an SGD update, donated buffers) of a
stack of ``--blocks`` residual blocks ``x + conv(gelu(gn(conv(gelu(gn(x))))))`` (kernel 3,
periodic) at the shapes of ``unetmod1d_64``'s levels (batch 128; C x N = 64 x 256, 128 x 128,
256 x 64, 512 x 32), fp32 and bf16, in four variants:

* ``ncw_pad`` (pdekit today): channel-first, ``jnp.pad(mode="wrap")`` then a VALID convolution;
* ``nwc_pad``: channels-last, the same wrap pad and a VALID ``NWC/WIO`` convolution;
* ``ncw_fold``: channel-first, a zero-padded ("SAME") convolution that cuDNN pads itself, plus
  the two wrap-around taps added back at the boundary cells (exactly the circular result);
* ``ncw_pad_gn16``: as ``ncw_pad`` but GroupNorm statistics accumulated from the compute dtype
  (``jnp.mean(..., dtype=float32)`` on bf16 data) instead of an upcast copy.

For each it reports the median step time, samples/s, and the optimized HLO's op counts
(fusions, convolutions, transposes, copies), so a faster variant can be traced to the kernels
it removes. Each variant is checked against ``ncw_pad`` (same weights, same input) before it
is timed. ``--small``: tiny shapes for a CPU smoke run.

    python benchmarks/unet_layout.py --out unet_layout.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

VARIANTS = ("ncw_pad", "nwc_pad", "ncw_fold", "ncw_pad_gn16")
LEVELS = ((64, 256), (128, 128), (256, 64), (512, 32))


def group_norm(x, w, b, axis_c: int, stats16: bool, groups: int = 1, eps: float = 1e-5):
    """GroupNorm of one batch; ``axis_c`` is the channel axis (1: NCW, 2: NWC)."""
    xs = jnp.moveaxis(x, axis_c, 1)
    shape = xs.shape
    xg = xs.reshape(shape[0], groups, -1)
    if stats16:
        mean = jnp.mean(xg, axis=2, keepdims=True, dtype=jnp.float32)
        var = jnp.mean(jnp.square(xg.astype(jnp.float32) - mean), axis=2, keepdims=True)
        y = ((xg - mean.astype(x.dtype)) * jax.lax.rsqrt(var + eps).astype(x.dtype))
    else:
        xf = xg.astype(jnp.float32)
        mean = xf.mean(axis=2, keepdims=True)
        var = jnp.mean(jnp.square(xf - mean), axis=2, keepdims=True)
        y = ((xf - mean) * jax.lax.rsqrt(var + eps)).astype(x.dtype)
    y = jnp.moveaxis(y.reshape(shape), 1, axis_c)
    bshape = [1, 1, 1]
    bshape[axis_c] = -1
    return y * w.astype(x.dtype).reshape(bshape) + b.astype(x.dtype).reshape(bshape)


def conv(x, w, variant: str):
    """Periodic kernel-3 convolution; ``w`` is (Cout, Cin, 3) in every variant."""
    w = w.astype(x.dtype)
    if variant == "nwc_pad":
        xp = jnp.pad(x, ((0, 0), (1, 1), (0, 0)), mode="wrap")
        return jax.lax.conv_general_dilated(xp, jnp.transpose(w, (2, 1, 0)), (1,), "VALID",
                                            dimension_numbers=("NWC", "WIO", "NWC"))
    if variant == "ncw_fold":
        y = jax.lax.conv_general_dilated(x, w, (1,), ((1, 1),))
        first = jnp.einsum("oi,bi->bo", w[:, :, 0], x[:, :, -1])  # tap reaching x[-1] from y[0]
        last = jnp.einsum("oi,bi->bo", w[:, :, 2], x[:, :, 0])  # tap reaching x[0] from y[-1]
        return y.at[:, :, 0].add(first).at[:, :, -1].add(last)
    xp = jnp.pad(x, ((0, 0), (0, 0), (1, 1)), mode="wrap")
    return jax.lax.conv_general_dilated(xp, w, (1,), "VALID")


def block_stack(params, x, variant: str):
    axis_c = 2 if variant == "nwc_pad" else 1
    stats16 = variant == "ncw_pad_gn16"
    for p in params:
        h = conv(jax.nn.gelu(group_norm(x, p["g1"], p["b1"], axis_c, stats16)), p["w1"], variant)
        h = conv(jax.nn.gelu(group_norm(h, p["g2"], p["b2"], axis_c, stats16)), p["w2"], variant)
        x = x + h
    return x


def init(key, c: int, blocks: int):
    out = []
    for k in jax.random.split(key, blocks):
        k1, k2 = jax.random.split(k)
        s = 1.0 / np.sqrt(3 * c)
        out.append({"w1": jax.random.uniform(k1, (c, c, 3), minval=-s, maxval=s),
                    "w2": jax.random.uniform(k2, (c, c, 3), minval=-s, maxval=s),
                    "g1": jnp.ones(c), "b1": jnp.zeros(c), "g2": jnp.ones(c), "b2": jnp.zeros(c)})
    return out


def hlo_counts(compiled) -> dict:
    text = compiled.as_text()
    return {"fusions": len(re.findall(r"^\s*\S+ = \S+ fusion\(", text, re.M)),
            "convolutions": len(re.findall(r"cudnn\$conv|convolution\(", text)),
            "transposes": len(re.findall(r" transpose\(", text)),
            "copies": len(re.findall(r" copy\(", text))}


def measure(variant, dtype, c, n, batch, blocks, min_time, repeats):
    cdt = jnp.bfloat16 if dtype == "bf16" else jnp.float32
    params = init(jax.random.key(0), c, blocks)
    x = jax.random.normal(jax.random.key(1), (batch, c, n), jnp.float32)
    xin = jnp.transpose(x, (0, 2, 1)) if variant == "nwc_pad" else x

    def loss(p, u):
        pc = jax.tree.map(lambda a: a.astype(cdt), p)
        return jnp.mean(jnp.square(block_stack(pc, u.astype(cdt), variant).astype(jnp.float32)))

    def step(p, u):
        val, g = jax.value_and_grad(loss)(p, u)
        return jax.tree.map(lambda a, b: a - 1e-3 * b, p, g), val

    # correctness against today's variant before timing (same weights, same input)
    ref = jax.jit(lambda p, u: block_stack(p, u, "ncw_pad"))(params, x)
    got = jax.jit(lambda p, u: block_stack(p, u, variant))(params, xin)
    if variant == "nwc_pad":
        got = jnp.transpose(got, (0, 2, 1))
    err = float(jnp.max(jnp.abs(got - ref)) / jnp.max(jnp.abs(ref)))
    if err > 1e-3:
        raise SystemExit(f"unet_layout: {variant} differs from ncw_pad by {err:.2e} (C={c}, N={n})")
    t0 = time.perf_counter()
    fn = jax.jit(step, donate_argnums=(0,)).lower(params, xin).compile()
    compile_s = time.perf_counter() - t0
    counts = hlo_counts(fn)
    state = [params]

    def run(r):
        for _ in range(r):
            state[0], val = fn(state[0], xin)
        jax.block_until_ready(val)

    run(2)
    t0 = time.perf_counter()
    run(5)
    per = (time.perf_counter() - t0) / 5
    reps = max(5, int(min_time / max(per, 1e-9)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(reps)
        times.append((time.perf_counter() - t0) / reps)
    s = statistics.median(times)
    return dict(variant=variant, dtype=dtype, channels=c, n=n, batch=batch, blocks=blocks,
                step_s=s, samples_per_s=batch / s, compile_s=compile_s, max_rel_diff=err,
                **counts)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="CPU smoke sizes")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--min-time", type=float, default=0.3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    levels, batch = (((8, 32), (16, 16)), 4) if args.small else (LEVELS, args.batch)
    rows = []
    dev = jax.devices()[0]
    print(f"{'variant':<14}{'dtype':<6}{'C x N':>10}{'step ms':>9}{'samp/s':>11}"
          f"{'fus':>5}{'conv':>5}{'tr':>4}{'cp':>4}")
    for c, n in levels:
        for dtype in args.dtypes.split(","):
            for v in args.variants.split(","):
                r = measure(v, dtype, c, n, batch, args.blocks,
                            0.01 if args.small else args.min_time, args.repeats)
                rows.append(r)
                print(f"{v:<14}{dtype:<6}{f'{c}x{n}':>10}{1e3 * r['step_s']:>9.3f}"
                      f"{r['samples_per_s']:>11,.0f}{r['fusions']:>5}{r['convolutions']:>5}"
                      f"{r['transposes']:>4}{r['copies']:>4}", flush=True)
    if args.out is not None:
        tmp = args.out.with_name(args.out.name + ".tmp")
        tmp.write_text(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                                   "device": dev.device_kind, "jax": jax.__version__,
                                   "rows": rows}, indent=1))
        tmp.replace(args.out)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
