"""Model throughput: forward and training-step rates and peak memory of every model preset,
side by side with pdequinox's nearest architectures, measured in one run on one device.

For each row and dtype a fresh subprocess (this script with ``--one ROW --dtype DT``) builds
the model, times a jitted batched forward pass and a jitted, buffer-donating training step
(optax Adam, lr 1e-4, MSE; PDE-Refiner rows use ``PDERefiner.loss``), and reports
``peak_bytes_in_use`` of its device (a fresh process per configuration, since the peak cannot
be reset). bf16: the forward pass runs on bf16 copies of the parameters and inputs; the
training step keeps fp32 master parameters and Adam state and casts the parameters to bf16
inside the loss (bf16 compute, loss reduced in fp32); the PDE-Refiner rows keep their data,
noise, targets and loss in fp32 and run only the backbone in bf16, as ``pdekit train`` does
(``PDERefiner.float32_data``). MFU: FLOPs of the compiled step / (step time x the device's
dense peak for the dtype, ``benchmarks/_peaks.py``). Timing: compile + one warm-up call, then
the median of 3 repeats of R back-to-back calls (R chosen so a repeat lasts >= --min-time),
``jax.block_until_ready`` at the end of each repeat.

Shapes. 1D: batch 128, N = 256; 2D: batch 32, 64 x 64 (``--small``: batch 4, N = 64 / 16 x 16,
small rows only, fp32 only). I/O per row (history, future, channels, num_cond):
fno1d (1, 1, 1, 2); unetmod1d_64 and unetmod1d_small as the PDE-Refiner KS backbone (2, 1, 1, 3);
mppde1d at the preset's natural temporal bundling (25, 25, 1, 2); pderefiner (1, 1, 1, 2, K = 3,
backbone unetmod1d_64; its forward is one full prediction = K + 1 backbone calls, its training
step one ``loss``, i.e. one backbone call); 2D rows PDEArena-INS-shaped (4, 1, 3, 2).
pdequinox models take ``(channels, *spatial)`` with no conditioning: the history frames are
flattened into channels and ``cond`` is ignored.

    python benchmarks/models.py                        # GPU sizes, fp32 + bf16, with peers
    python benchmarks/models.py --small                # CPU smoke run
    python benchmarks/models.py --presets unetmod1d_64,pderefiner --dtypes fp32
    python benchmarks/models.py --one fno1d --dtype bf16   # one configuration, JSON on stdout
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import equinox as eqx

from pdekit.configs import package_dir

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peaks import mfu  # noqa: E402  (benchmarks/ is not a package)

MARK = "@@RESULT "


@dataclass(frozen=True)
class Row:
    source: str  # "pdekit" (preset under pdekit/configs/model) or "pdequinox" (pdequinox.arch class)
    dims: int
    io: tuple[int, int, int, int]  # history, future, channels, num_cond
    target: str  # preset name or pdequinox.arch class name
    overrides: tuple[str, ...] = ()  # Hydra overrides of the preset
    hyper: dict = field(default_factory=dict)  # pdequinox keyword arguments
    objective: str = "mse"
    no_bf16: str = ""  # reason bf16 cannot run
    small_spatial: tuple[int, ...] | None = None  # --small grid if the default is too coarse


IO_1D, IO_BACKBONE, IO_MPPDE1D, IO_2D = (1, 1, 1, 2), (2, 1, 1, 3), (25, 25, 1, 2), (4, 1, 3, 2)
_NO_BF16_FFT = "pdequinox ClassicFNO calls rfft on the input dtype; XLA's FFT rejects bfloat16"
ROWS = {
    "fno1d": Row("pdekit", 1, IO_1D, "fno1d"),
    "fno1d_m32": Row("pdekit", 1, IO_1D, "fno1d", overrides=("modes=32",)),
    "unetmod1d_64": Row("pdekit", 1, IO_BACKBONE, "unetmod1d_64"),
    "unetmod1d_small": Row("pdekit", 1, IO_BACKBONE, "unetmod1d_small"),
    "mppde1d": Row("pdekit", 1, IO_MPPDE1D, "mppde1d"),
    "pderefiner": Row("pdekit", 1, IO_1D, "pderefiner", objective="refiner"),
    "pderefiner_small": Row("pdekit", 1, IO_1D, "pderefiner_small", objective="refiner"),
    "fno2d": Row("pdekit", 2, IO_2D, "fno2d", small_spatial=(32, 32)),  # 12 modes need >= 24
    "unetmod2d_64": Row("pdekit", 2, IO_2D, "unetmod2d_64"),
    "sinenet8": Row("pdekit", 2, IO_2D, "sinenet8"),
    "sinenet4": Row("pdekit", 2, IO_2D, "sinenet4"),
    "sinenet2": Row("pdekit", 2, IO_2D, "sinenet2"),
    "mppde2d": Row("pdekit", 2, IO_2D, "mppde2d"),
    # the other implementations of a preset (issue 15), timed beside the default in one run:
    # MP-PDE messages by shifted reads (default: gather); SineNet's earlier dense resize
    # upsampling (default: stencils; resize has no PyTorch-convention cubic, so plain cubic)
    "mppde1d_roll": Row("pdekit", 1, IO_MPPDE1D, "mppde1d", overrides=("message_impl=roll",)),
    "mppde2d_roll": Row("pdekit", 2, IO_2D, "mppde2d", overrides=("message_impl=roll",)),
    "sinenet8_resize": Row("pdekit", 2, IO_2D, "sinenet8",
                           overrides=("upsample_impl=resize", "interpolation=cubic")),
    "sinenet8_cubic": Row("pdekit", 2, IO_2D, "sinenet8", overrides=("interpolation=cubic",)),
    "pdeqx_classicfno1d": Row("pdequinox", 1, IO_1D, "ClassicFNO", no_bf16=_NO_BF16_FFT,
                              hyper=dict(hidden_channels=64, num_modes=32, num_blocks=4)),
    "pdeqx_modernunet1d": Row("pdequinox", 1, IO_BACKBONE, "ModernUNet", hyper=dict(
        hidden_channels=64, num_levels=4, boundary_mode="periodic")),
    "pdeqx_modernunet1d_h96": Row("pdequinox", 1, IO_BACKBONE, "ModernUNet", hyper=dict(
        hidden_channels=96, num_levels=4, boundary_mode="periodic")),
    "pdeqx_modernunet2d": Row("pdequinox", 2, IO_2D, "ModernUNet", hyper=dict(
        hidden_channels=64, num_levels=4, boundary_mode="periodic")),
    # --small pair: ClassicFNO with fno1d's width and modes; a tiny ModernUNet (code path only)
    "pdeqx_classicfno1d_m16": Row("pdequinox", 1, IO_1D, "ClassicFNO", no_bf16=_NO_BF16_FFT,
                                  hyper=dict(hidden_channels=64, num_modes=16, num_blocks=4)),
    "pdeqx_modernunet1d_tiny": Row("pdequinox", 1, IO_BACKBONE, "ModernUNet", hyper=dict(
        hidden_channels=8, num_levels=2, boundary_mode="periodic")),
}
FULL = ["fno1d", "fno1d_m32", "unetmod1d_64", "unetmod1d_small", "mppde1d", "pderefiner",
        "fno2d", "unetmod2d_64", "sinenet8", "sinenet4", "sinenet2", "mppde2d"]
SMALL = ["fno1d", "unetmod1d_small", "pderefiner_small", "mppde1d", "fno2d", "mppde2d"]
# (pdekit row, pdequinox row): side-by-side pairs; the first peer of a row is its table ratio.
PAIRS_FULL = [("fno1d_m32", "pdeqx_classicfno1d"), ("fno1d", "pdeqx_classicfno1d"),
              ("unetmod1d_64", "pdeqx_modernunet1d"), ("unetmod1d_64", "pdeqx_modernunet1d_h96"),
              ("unetmod2d_64", "pdeqx_modernunet2d")]
PAIRS_SMALL = [("fno1d", "pdeqx_classicfno1d_m16"), ("unetmod1d_small", "pdeqx_modernunet1d_tiny")]

NOTES = [
    "PyTorch anchor (shared/specs/benchmarks.md, one H200, not measured here): PDE-Refiner KS "
    "backbone = unetmod1d_64 (53,924,225 params), batch 128, N = 256, Adam: eager fp32 20.0 / "
    "torch.compile fp32 29.8 / compile + bf16 autocast 18.4 steps/s. Aim: >= 45 steps/s "
    "(1.5x compiled fp32) for the unetmod1d_64 row on an H200.",
    "pdequinox anchors (same file, H200 fp32, batch 128, N = 256): ClassicFNO (hidden 64, "
    "32 modes, 4 blocks; 1.07 M) 1,171 steps/s; ModernUNet (hidden 64, 4 levels; 24.4 M) 101 "
    "steps/s.",
    "Parameter matching: fno1d (16 modes, 0.55 M) has half the parameters of ClassicFNO "
    "(32 modes, 1.07 M); fno1d_m32 is the same preset with modes=32 (1.07 M) for a matched "
    "pair. pdequinox ModernUNet hidden 64 / 4 levels (4 halvings, 64..1024 channels) has "
    "24.4 M parameters against unetmod1d_64's 53.9 M (3 halvings, cumulative multipliers, "
    "num_blocks + 1 up blocks, conditioning MLPs); hidden 96 (54.9 M) is the matched-count peer.",
    "pderefiner: forward = one prediction (K + 1 = 4 backbone calls in a lax.scan); train = "
    "PDERefiner.loss (one backbone call at a random k).",
    "TFLOP/s: XLA's cost-analysis FLOPs of the compiled training step / step time; left blank "
    "when the program has a while loop (lax.scan: sinenet), whose body XLA counts once, and "
    "FFT FLOPs are not counted.",
]


# --------------------------------------------------------------------------------- one config
def _shapes(row: Row, small: bool) -> tuple[int, tuple[int, ...]]:
    if small and row.small_spatial:
        return 4, row.small_spatial
    if row.dims == 1:
        return (4, (64,)) if small else (128, (256,))
    return (4, (16, 16)) if small else (32, (64, 64))


def _build(row: Row, key):
    import jax

    history, future, channels, num_cond = row.io
    if row.source == "pdekit":
        import hydra.utils
        from hydra import compose, initialize_config_dir

        with initialize_config_dir(config_dir=str(package_dir() / "model"), version_base=None):
            cfg = compose(config_name=row.target, overrides=list(row.overrides))
        return hydra.utils.instantiate(cfg, _convert_="all", spatial_dims=row.dims,
                                       history=history, future=future, channels=channels,
                                       num_cond=num_cond, key=key)

    import pdequinox

    arch = getattr(pdequinox.arch, row.target)

    def make(k):
        return arch(row.dims, history * channels, future * channels, **row.hyper, key=k)

    # one compiled init program instead of one dispatch (and compile) per initialiser
    skeleton = eqx.filter_eval_shape(make, key)
    _, static = eqx.partition(skeleton, lambda x: isinstance(x, jax.ShapeDtypeStruct))
    opts = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
    fn = jax.jit(lambda k: eqx.filter(make(k), eqx.is_array))
    net = eqx.combine(fn.lower(key).compile(compiler_options=opts)(key), static)
    return _Peer(net, future, channels)


class _Peer(eqx.Module):
    """pdekit's model interface around a pdequinox net: (history, C, *S) is flattened to
    (history*C, *S), the net maps it to (future*C, *S), reshaped to (future, C, *S); ``cond``
    is ignored (pdequinox nets are unconditioned)."""

    net: eqx.Module
    future: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)

    def __call__(self, u, cond, *, key=None):
        spatial = u.shape[2:]
        return self.net(u.reshape(-1, *spatial)).reshape(self.future, self.channels, *spatial)


def _bench(fn, min_time: float, repeats: int, max_iters: int) -> tuple[float, int]:
    """Median seconds per call over `repeats` repeats of R back-to-back calls."""
    import jax

    jax.block_until_ready(fn())  # warm-up (already compiled)
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    one = max(time.perf_counter() - t0, 1e-7)
    iters = int(min(max_iters, max(1, math.ceil(min_time / one))))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = None
        for _ in range(iters):
            out = fn()
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) / iters)
    return statistics.median(times), iters


def _has_loop(jaxpr) -> bool:
    """Whether a jaxpr (or any jaxpr nested in its equations) contains a scan or while loop."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("scan", "while"):
            return True
        for value in eqn.params.values():
            for sub in value if isinstance(value, tuple | list) else (value,):
                if hasattr(getattr(sub, "jaxpr", sub), "eqns") and _has_loop(sub):
                    return True
    return False


def _cost(compiled, loops: bool) -> dict:
    """XLA's memory estimate and FLOP count of a compiled program (FLOPs left out when the
    program has a loop: XLA counts a while body once)."""
    out = {"xla_bytes": None, "xla_flops": None}
    try:
        mem = compiled.memory_analysis()
        out["xla_bytes"] = int(mem.argument_size_in_bytes + mem.output_size_in_bytes
                               - mem.alias_size_in_bytes + mem.temp_size_in_bytes)
    except Exception:  # noqa: BLE001 (not every backend implements it)
        pass
    try:
        ca = compiled.cost_analysis()
        ca = ca[0] if isinstance(ca, list | tuple) else ca
        flops = float(ca.get("flops", 0.0)) or None
        out["xla_flops"] = None if loops else flops
    except Exception:  # noqa: BLE001
        pass
    return out


def run_one(name: str, dtype: str, small: bool, min_time: float, repeats: int,
            max_iters: int) -> dict:
    import jax
    import jax.numpy as jnp
    import jax.random as jr
    import numpy as np
    import optax

    from pdekit.models import count_params

    warnings.filterwarnings("ignore", message=".*donated buffers.*")
    row = ROWS[name]
    batch, spatial = _shapes(row, small)
    history, future, channels, num_cond = row.io
    cdt = {"fp32": jnp.float32, "bf16": jnp.bfloat16}[dtype]
    t_build = time.perf_counter()
    model = _build(row, jr.key(0))
    n_params = count_params(model)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    del model
    t_build = time.perf_counter() - t_build

    def cast(tree):
        return jax.tree.map(lambda x: x.astype(cdt) if eqx.is_inexact_array(x) else x, tree)

    rng = np.random.default_rng(0)
    u_in = jnp.asarray(rng.normal(size=(batch, history, channels, *spatial)), cdt)
    u_out = jnp.asarray(rng.normal(size=(batch, future, channels, *spatial)), cdt)
    cond = jnp.asarray(rng.uniform(0.1, 1.0, size=(batch, num_cond)), cdt)

    # forward: bf16 (or fp32) copy of the parameters, inputs in the same dtype
    def forward(p, u, c):
        return jax.vmap(eqx.combine(p, static))(u, c)

    def measure_forward(fparams):
        t0 = time.perf_counter()
        fwd = jax.jit(forward).lower(fparams, u_in, cond).compile()
        compile_s = time.perf_counter() - t0
        return (*_bench(lambda: fwd(fparams, u_in, cond), min_time, repeats, max_iters),
                compile_s)

    t_fwd, r_fwd, c_fwd = measure_forward(cast(params))

    # training step: fp32 master params + Adam; bf16 compute by casting inside the loss
    opt = optax.adam(1e-4)

    def loss_fn(p, key, u, v, c):
        m = eqx.combine(cast(p), static)
        if row.objective == "refiner":
            keys = jr.split(key, batch)
            losses = jax.vmap(lambda a, b, cc, k: m.loss(a, b, cc, key=k))(u, v, c, keys)
            return jnp.mean(losses.astype(jnp.float32))
        pred = jax.vmap(m)(u, c)
        return jnp.mean(jnp.square(pred.astype(jnp.float32) - v.astype(jnp.float32)))

    def train_step(p, opt_state, key, u, v, c):
        key, sub = jr.split(key)
        loss, grads = jax.value_and_grad(loss_fn)(p, sub, u, v, c)
        updates, opt_state = opt.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, key, loss

    state = [params, opt.init(params), jr.key(1)]
    del params
    data = (u_in, u_out, cond)
    if row.objective == "refiner":  # float32 data, bf16 backbone: the trainer's bf16 policy
        data = tuple(x.astype(jnp.float32) for x in data)
    t0 = time.perf_counter()
    step = jax.jit(train_step, donate_argnums=(0, 1, 2)).lower(*state, *data).compile()
    c_train = time.perf_counter() - t0
    losses = []

    def one_step():
        p, o, k, loss = step(*state, *data)
        state[:] = [p, o, k]
        losses.append(loss)
        return p, o, k, loss

    t_step, r_train = _bench(one_step, min_time, repeats, max_iters)
    last_loss = float(losses[-1])
    stats = jax.devices()[0].memory_stats() or {}
    loops = _has_loop(jax.make_jaxpr(train_step)(*state, *data))
    cost = _cost(step, loops)
    dev = jax.devices()[0]
    return dict(
        row=name, source=row.source, target=row.target, overrides=list(row.overrides),
        hyper=row.hyper, dtype=dtype, params=n_params, batch=batch,
        spatial=list(spatial), history=history, future=future, channels=channels,
        num_cond=num_cond, objective=row.objective,
        fwd_s=t_fwd, fwd_samples_per_s=batch / t_fwd, fwd_iters=r_fwd,
        train_s=t_step, train_steps_per_s=1.0 / t_step, train_samples_per_s=batch / t_step,
        train_iters=r_train, loss=last_loss, loss_finite=bool(np.isfinite(last_loss)),
        peak_bytes=stats.get("peak_bytes_in_use"), xla_train_bytes=cost["xla_bytes"],
        xla_train_flops=cost["xla_flops"],
        train_tflops=None if cost["xla_flops"] is None else cost["xla_flops"] / t_step / 1e12,
        train_mfu=mfu(cost["xla_flops"], t_step, dev.device_kind, dtype),
        compile_fwd_s=c_fwd, compile_train_s=c_train, build_s=t_build,
        device_kind=dev.device_kind, platform=dev.platform, jax=jax.__version__,
    )


# --------------------------------------------------------------------------------- driver
def _child(name: str, dtype: str, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--dtype", dtype,
           "--min-time", str(args.min_time), "--repeats", str(args.repeats),
           "--max-iters", str(args.max_iters)] + (["--small"] if args.small else [])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                              cwd=ROOT, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return dict(row=name, dtype=dtype, error=f"timeout after {args.timeout} s")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            res = json.loads(line[len(MARK):])
            res["wall_s"] = time.perf_counter() - t0
            return res
    lines = (proc.stderr or proc.stdout).strip().splitlines() or [""]
    errors = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception)\b", ln)]
    return dict(row=name, dtype=dtype, error=f"exit {proc.returncode}: {(errors or lines)[-1]}",
                stderr_tail=lines[-30:])


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def _ratio(a: dict | None, b: dict | None, key: str):
    if not a or not b or a.get(key) is None or b.get(key) is None:
        return None
    return a[key] / b[key]


def _table(rows: list[dict], pairs: list[tuple[str, str]]) -> list[str]:
    by = {(r["row"], r["dtype"]): r for r in rows}
    first_peer = {}
    for ours, peer in pairs:
        first_peer.setdefault(ours, peer)
    head = (f"{'model':<24}{'params':>13} {'dtype':<5}{'batch x grid':>13}{'fwd samp/s':>12}{'train step/s':>13}"
            f"{'train samp/s':>13}{'TFLOP/s':>9}{'MFU':>6}{'peak MiB':>10}{'XLA MiB':>9}  vs pdequinox")
    lines = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['row']:<24}{'':>13} {r['dtype']:<5}{'':>13}  {r['error']}")
            continue
        peer = first_peer.get(r["row"])
        ratio = _ratio(r, by.get((peer, r["dtype"])), "train_samples_per_s")
        vs = "" if ratio is None else f"{ratio:.2f}x train ({peer})"
        pr = _ratio(r, by.get((peer, r["dtype"])), "params")
        if pr is not None and not 0.8 <= pr <= 1.25:
            vs += f", {pr:.2f}x its params"
        shape = "x".join(str(n) for n in [r["batch"], *r["spatial"]])
        mib = None if r["peak_bytes"] is None else r["peak_bytes"] / 2**20
        xla = None if r["xla_train_bytes"] is None else r["xla_train_bytes"] / 2**20
        lines.append(
            f"{r['row']:<24}{r['params']:>13,} {r['dtype']:<5}{shape:>13}"
            f"{r['fwd_samples_per_s']:>12,.1f}"
            f"{r['train_steps_per_s']:>13,.2f}{r['train_samples_per_s']:>13,.1f}"
            f"{_fmt(r['train_tflops'], '.3g'):>9}{_fmt(r.get('train_mfu'), '.1%'):>6}"
            f"{_fmt(mib, ',.0f'):>10}{_fmt(xla, ',.0f'):>9}"
            f"  {vs}")
    return lines


def _pair_rows(rows: list[dict], pairs: list[tuple[str, str]]) -> list[dict]:
    by = {(r["row"], r["dtype"]): r for r in rows if "error" not in r}
    out = []
    for ours, peer in pairs:
        for dtype in ("fp32", "bf16"):
            a, b = by.get((ours, dtype)), by.get((peer, dtype))
            if a is None or b is None:
                continue
            out.append(dict(pdekit=ours, pdequinox=peer, dtype=dtype, pdekit_params=a["params"],
                            pdequinox_params=b["params"],
                            params_ratio=a["params"] / b["params"],
                            train_ratio=_ratio(a, b, "train_samples_per_s"),
                            fwd_ratio=_ratio(a, b, "fwd_samples_per_s"),
                            peak_ratio=_ratio(a, b, "peak_bytes")))
    return out



def _save(args, argv, dtypes: list[str], rows: list[dict], pairs: list[tuple[str, str]]
          ) -> tuple[list[dict], list[tuple[str, str]]]:
    """Write the JSON of the rows so far (atomically: a temporary name, then a rename); returns
    the pdekit / pdequinox pair rows and the pairs that both ran."""
    ok = [r for r in rows if "error" not in r]
    ran = {r["row"] for r in ok}
    pairs = [pr for pr in dict.fromkeys(pairs + PAIRS_FULL + PAIRS_SMALL) if set(pr) <= ran]
    pair_rows = _pair_rows(rows, pairs)
    meta = dict(
        benchmark="models", date=datetime.now(UTC).isoformat(timespec="seconds"),
        command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if argv is None else argv,
        small=args.small, dtypes=dtypes, min_time=args.min_time, repeats=args.repeats,
        device_kind=ok[0]["device_kind"] if ok else None,
        platform=ok[0]["platform"] if ok else None,
        jax=ok[0]["jax"] if ok else None, python=sys.version.split()[0],
        batch={"1d": 4 if args.small else 128, "2d": 4 if args.small else 32},
        spatial={"1d": [64] if args.small else [256],
                 "2d": [16, 16] if args.small else [64, 64]},
    )
    try:
        from importlib.metadata import version

        meta["versions"] = {p: version(p) for p in ("jax", "jaxlib", "equinox", "optax",
                                                      "pdequinox")}
    except Exception:  # noqa: BLE001
        pass
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(dict(meta=meta, rows=rows, pairs=pair_rows, notes=NOTES), indent=1))
    os.replace(tmp, out)
    return pair_rows, pairs


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true",
                    help="CPU smoke sizes: batch 4, N=64 / 16^2, small rows, fp32")
    ap.add_argument("--presets", default=None, help=f"comma-separated rows of: {', '.join(ROWS)}")
    ap.add_argument("--dtypes", default=None, help="fp32,bf16 (default; --small: fp32)")
    ap.add_argument("--skip-peers", action="store_true",
                    help="no pdequinox rows (naming a pdequinox row in --presets: only those)")
    ap.add_argument("--min-time", type=float, default=None,
                    help="seconds per timed repeat (default 0.2; --small 0.02)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-iters", type=int, default=2000)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    ap.add_argument("--out", default="benchmarks/results/models.json")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="fp32", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.min_time is None:
        args.min_time = 0.02 if args.small else 0.2

    if args.one:  # child: one configuration, one JSON line
        res = run_one(args.one, args.dtype, args.small, args.min_time, args.repeats,
                      args.max_iters)
        print(MARK + json.dumps(res), flush=True)
        return

    pairs = PAIRS_SMALL if args.small else PAIRS_FULL
    names = args.presets.split(",") if args.presets else list(SMALL if args.small else FULL)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        ap.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
    if args.skip_peers:
        names = [n for n in names if ROWS[n].source != "pdequinox"]
    elif not any(ROWS[n].source == "pdequinox" for n in names):  # named peers: exactly those
        ordered = []
        for name in names:  # each pdekit row followed by its peers
            ordered += [n for n in [name] + [pe for o, pe in pairs if o == name]
                        if n not in ordered and (n == name or n not in names)]
        names = ordered
    dtypes = (args.dtypes or ("fp32" if args.small else "fp32,bf16")).split(",")

    rows = []
    for name in names:
        for dtype in dtypes:
            if dtype == "bf16" and ROWS[name].no_bf16:
                rows.append(dict(row=name, dtype=dtype, error="skipped: " + ROWS[name].no_bf16))
                continue
            res = _child(name, dtype, args)
            rows.append(res)
            msg = res.get("error") or (f"{res['train_steps_per_s']:,.2f} steps/s, fwd "
                                       f"{res['fwd_samples_per_s']:,.1f} samples/s, "
                                       f"{res['wall_s']:.0f} s wall")
            print(f"[{name} {dtype}] {msg}", flush=True)
            _save(args, argv, dtypes, rows, pairs)  # after every row: a killed run keeps its rows

    pair_rows, pairs = _save(args, argv, dtypes, rows, pairs)
    ok = [r for r in rows if "error" not in r]
    print()
    print("\n".join(_table(rows, pairs)))
    if pair_rows:
        print("\npdekit / pdequinox (train = samples/s ratio, fwd likewise, params ratio):")
        for p in pair_rows:
            print(f"  {p['pdekit']:<16} vs {p['pdequinox']:<24} {p['dtype']:<5} params "
                  f"{p['pdekit_params']:,} / {p['pdequinox_params']:,} = {p['params_ratio']:.2f}"
                  f"   train {_fmt(p['train_ratio'], '.2f')}x   fwd {_fmt(p['fwd_ratio'], '.2f')}x")
    unet = [r for r in ok if r["row"] == "unetmod1d_64"]
    print("\nNotes:")
    for note in NOTES:
        print("  - " + note)
    for r in unet:
        print(f"  - this run, unetmod1d_64 {r['dtype']} on {r['device_kind']}: "
              f"{r['train_steps_per_s']:.1f} steps/s (target >= 45 on an H200)")

    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
