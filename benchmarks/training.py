"""Training throughput of each model preset: samples/s (fp32 and bf16) and data-wait time.

Runs the real train step (``pdekit.training.state.make_train_step``: AdamW, clipping, EMA,
donated buffers) fed by the real background prefetcher, on synthetic in-memory batches, so
the figure is the trainer's, not a hand-written loop's. With ``--devices 1,2,4`` the same
per-device batch is run data-parallel on the first d devices and the per-device rate and
scaling efficiency are reported. Each row is printed (and the JSON rewritten) as soon as it
is measured, so an interrupted run keeps what it measured.

``--ablate`` instead measures, per preset and precision, on the same model, batch and device
and in one process, where the trainer's time goes, by taking pieces away one at a time:

    bare            minimal loop as benchmarks/models.py: value_and_grad + optax.adam(1e-4),
                    params/opt state/key donated, no EMA/clip/schedule/accumulator/
                    out_shardings, fixed batch (same objective function as the trainer)
    trainer         the normal mode: real step fed by the Prefetcher (fresh host batch/step)
    fixed-batch     real step, one batch already on the device, reused (no prefetcher)
    no-ema          ABLATION copy of the real step without the EMA update (fixed batch)
    no-clip         ABLATION copy without global-norm clipping and without the separate
                    fp32 grad-norm (optimizer built with grad_clip=0; fixed batch)
    no-ema-no-clip  both removed (fixed batch)

Every variant starts from a fresh copy of the same initial parameters.

Timing: ``--warmup`` steps (the first one compiles), then blocks of ``--steps`` steps, each
closed by ``jax.block_until_ready``; the median of up to 3 blocks (only 1 when a block takes
longer than ``--cheap-s``). ``dispatch`` is the fraction of a block the host spent issuing
the steps before it waited for the device. Well below 1 means the device is the bottleneck.
Near 1 means the host could not run ahead: either the host is the bottleneck or the runtime
limits how many steps can be queued (on an H200 every variant of unetmod1d_64 read 0.99), so
it is a hint, not proof. ``mem GB`` / ``peak_mem_gb`` is the process-wide peak so far, and it
includes compile-time autotuning scratch (75 GB on an H200 in a cold process), not only the
step's own memory.

``--scaling`` is the data-parallel mode. For unetmod1d_64, fno1d, mppde1d and fno2d
(``--small``: unetmod1d_small for unetmod1d_64, 2D grids of 32^2) it runs 1, 2 and 4 devices
(the first d of ``jax.devices()``) at a fixed per-device batch, each with
``train.micro_steps`` K = 1 and 4 (``--micro-steps``). Per row: samples/s per device; the
efficiency ``(samples/s per device on d) / (on 1)`` at the same K and precision; the
speed-up of K over the first K on the same devices; the time spent waiting on data (fraction
of the block, ms per step); and what the compiled step moves per step through each
collective (AR all-reduce, AG all-gather, RS reduce-scatter, A2A, CP collective-permute) by
dtype, read from its optimised HLO. With ``auto`` XLA's SPMD partitioner may all-gather
activations rather than all-reduce weight gradients: for the FNOs it all-gathers the global
batch around every FFT. ``--grad-reduce auto,float32,bfloat16`` adds rows of
``train.grad_reduce_dtype`` (bfloat16 only for bf16 rows; one device reduces nothing, so it
runs the first choice only). On CPU XLA performs a bf16 all-reduce in f32 (the column then
reads ``AR f32``); on GPU the column shows whether the compiled step keeps bf16. The mode
sets XLA's GPU overlap flags (``pdekit._mesh.GPU_OVERLAP_FLAGS``, the latency-hiding
scheduler) before the backend starts; ``--no-xla-gpu-overlap`` leaves them out, to measure
what they do. ``--scan-unroll U`` unrolls the micro-step loop U iterations per trip
(``lax.scan(unroll=U)``, longer compiles), to compare a rolled loop with an unrolled one.
``--simulate N`` runs on N simulated CPU devices (they share the host's cores: no scaling
figure there).

Cost: each variant compiles its own step (``1st call s``; ``fixed-batch`` reuses the
trainer's), about 20-30 s each for unetmod1d_64 on an H200, plus about 35 s to build that
model. A full unetmod1d_64 ablation therefore needs about 4 minutes. Setting
``JAX_COMPILATION_CACHE_DIR`` lets a later run reuse the compiled steps.

    python benchmarks/training.py --small                 # CPU smoke run, tiny sizes
    python benchmarks/training.py                         # GPU: batch 128 (1D, N=256), 32 (2D, 64^2)
    python benchmarks/training.py --presets unetmod1d_64 --devices 1,2,4
    python benchmarks/training.py --ablate --presets unetmod1d_64,fno1d --precision fp32
    python benchmarks/training.py --scaling --presets fno1d --precision fp32,bf16 \
        --grad-reduce auto,bfloat16                       # 1, 2, 4 GPUs; K = 1 and 4
    python benchmarks/training.py --scaling --small --simulate 4   # CPU smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
import warnings
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pdekit._mesh import GPU_OVERLAP_FLAGS, DataParallel, add_xla_flags  # noqa: E402
from pdekit.configs import compose, package_dir  # noqa: E402
from pdekit.training.config import TrainConfig  # noqa: E402
from pdekit.training.data import Prefetcher  # noqa: E402
from pdekit.training.loop import stacked_sampler  # noqa: E402
from pdekit.training.model import cast_floating, count_params, init_model, split  # noqa: E402
from pdekit.training.objectives import make_objective  # noqa: E402
from pdekit.training.optim import ema_update, lr_schedule, make_optimizer, scale_updates  # noqa: E402
from pdekit.training.state import init_acc, init_state, make_train_step  # noqa: E402

warnings.filterwarnings("ignore", message=".*donated buffers.*")

# preset -> (spatial_dims, history, future, objective)
PRESETS = {
    "fno1d": (1, 1, 1, "mse"), "unetmod1d_64": (1, 1, 1, "mse"),
    "unetmod1d_small": (1, 1, 1, "mse"), "mppde1d": (1, 25, 25, "mse"),
    "pderefiner": (1, 1, 1, "refiner"), "pderefiner_small": (1, 1, 1, "refiner"),
    "fno2d": (2, 1, 1, "mse"), "unetmod2d_64": (2, 4, 1, "mse"),
    "sinenet8": (2, 4, 1, "mse"), "sinenet4": (2, 4, 1, "mse"), "sinenet2": (2, 4, 1, "mse"),
}
SMALL = ["fno1d", "unetmod1d_small", "pderefiner_small", "mppde1d"]
SCALING = ["unetmod1d_64", "fno1d", "mppde1d", "fno2d"]
SCALING_SMALL = ["unetmod1d_small", "fno1d", "mppde1d", "fno2d"]
VARIANTS = ["bare", "trainer", "fixed-batch", "no-ema", "no-clip", "no-ema-no-clip"]


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


def _setup(preset, *, precision, horizon, **train):
    """(model, train config, objective, synthetic source) of a preset."""
    dims, history, future, objective = PRESETS[preset]
    mcfg = compose("train", [f"model={preset}"]).model  # composes Hydra defaults (refiner backbone)
    tcfg = OmegaConf.merge(OmegaConf.structured(TrainConfig),
                           {"steps": horizon, "objective": objective, "precision": precision,
                            **train})
    cfg = OmegaConf.create({"model": mcfg, "train": tcfg,
                            "data": {"history": history, "future": future}})
    derived = OmegaConf.create({"spatial_dims": dims, "channels": 1, "num_cond": 2})
    return cfg, derived, tcfg, make_objective(tcfg, future)


def _mem_gb(dp):
    mem = (dp.mesh.devices.flat[0].memory_stats() or {}).get("peak_bytes_in_use")
    return None if mem is None else mem / 2**30


_SHAPE = re.compile(r"\b(bf16|f16|f32|f64|s32|u32|pred)\[([\d,]*)\]")
_BYTES = {"bf16": 2, "f16": 2, "f32": 4, "f64": 8, "s32": 4, "u32": 4, "pred": 1}


_COLLECTIVES = {"all-reduce": "AR", "all-gather": "AG", "reduce-scatter": "RS",
                "all-to-all": "A2A", "collective-permute": "CP"}
_OP = re.compile(r"= (.*?) (" + "|".join(_COLLECTIVES) + r")(-done)?\(")


def collectives(hlo_text: str) -> dict:
    """``{"AR bf16": bytes, "AG f32": bytes, ...}``: what one step of a compiled step's
    optimised HLO moves through each kind of collective, by result dtype (an async one
    counted at its ``-done``; the body of a micro-step scan counts once); empty on one
    device."""
    out: dict = {}
    for line in hlo_text.splitlines():
        line = re.sub(r"/\*.*?\*/", "", line)  # /*index=5*/ comments in tuple types
        m = _OP.search(line)
        if m is None:
            continue
        for dtype, dims in _SHAPE.findall(m.group(1)):
            size = int(np.prod([int(d) for d in dims.split(",") if d])) if dims else 1
            key = f"{_COLLECTIVES[m.group(2)]} {dtype}"
            out[key] = out.get(key, 0) + size * _BYTES[dtype]
    return out


class Models:
    """Each preset's parameters built once (the first mesh) and copied onto later meshes."""

    def __init__(self):
        self.built = {}

    def get(self, preset, cfg, derived, dp):
        if preset not in self.built:
            model = init_model(cfg, derived, jax.random.PRNGKey(0), dp.replicated)
            params, static = split(model)
            self.built[preset] = (jax.device_get(params), static)
        host, static = self.built[preset]
        return dp.put_global(host), static


def measure(preset, *, batch, shape, precision, dp, steps, warmup, micro_steps=1,
            grad_reduce="auto", models=None, scan_unroll=1):
    """One row: ``warmup`` steps (the first compiles), then ``steps`` timed ones, both rounded
    up to whole dispatches of ``micro_steps`` steps."""
    dims, history, future, _ = PRESETS[preset]
    k = micro_steps
    n_warm, n_timed = -(-warmup // k), -(-steps // k)  # dispatches
    horizon = (n_warm + n_timed) * k
    cfg, derived, tcfg, objective = _setup(preset, precision=precision, horizon=horizon)
    if models is None:
        params, static = split(init_model(cfg, derived, jax.random.PRNGKey(0), dp.replicated))
    else:
        params, static = models.get(preset, cfg, derived, dp)
    opt = make_optimizer(tcfg)
    state = jax.jit(lambda p: init_state(p, opt, 0, horizon), out_shardings=dp.replicated)(params)
    step_fn = make_train_step(static, objective, opt, lr_schedule(tcfg), ema_decay=0.999,
                              precision=precision, replicated=dp.replicated, micro_steps=k,
                              grad_reduce=grad_reduce, scan_unroll=scan_unroll)
    acc = jax.jit(init_acc, out_shardings=dp.replicated)()
    src = Synthetic(batch, history, future, shape)
    sample = lambda s: src.sample_batch(s, batch)  # noqa: E731
    if k == 1:
        pre = Prefetcher(sample, lambda b: dp.put_local_batch(b, batch), 0, horizon, depth=2)
    else:
        pre = Prefetcher(stacked_sampler(sample, k), lambda b: dp.put_local_stack(b, batch), 0,
                         n_warm + n_timed, depth=2)
    t0 = wait0 = compiled = None
    tc = time.perf_counter()
    first_s = None
    try:
        for i, b in pre:
            if compiled is None:  # compiled ahead of time: its HLO says what is all-reduced
                compiled = step_fn.lower(state, b, acc).compile()
            if i == n_warm:
                jax.block_until_ready(state)
                t0, wait0 = time.perf_counter(), pre.wait_s
            state, acc = compiled(state, b, acc)
            if i == 0:
                jax.block_until_ready(state)
                first_s = time.perf_counter() - tc
        jax.block_until_ready((state, acc))
        elapsed = time.perf_counter() - t0
    finally:
        pre.close()
    timed = n_timed * k
    loss = float(jax.device_get(acc)["loss"]) / horizon
    wait = pre.wait_s - wait0
    return {"preset": preset, "precision": precision, "devices": dp.num_devices, "batch": batch,
            "shape": list(shape), "params": count_params(params), "micro_steps": k,
            "grad_reduce": grad_reduce, "scan_unroll": scan_unroll, "steps": timed, "warmup": n_warm * k,
            "steps_per_s": timed / elapsed, "samples_per_s": timed * batch / elapsed,
            "data_wait_frac": wait / elapsed, "data_wait_ms_per_step": 1e3 * wait / timed,
            "collective_bytes": collectives(compiled.as_text()), "first_step_s": first_s,
            "peak_mem_gb": _mem_gb(dp), "mean_loss": loss}


def scaling(presets, *, small, devices, precisions, micro_steps, reduces, steps, warmup, writer,
            scan_unroll=1):
    """The ``--scaling`` table (module docstring): one row per preset, precision, K,
    all-reduce and device count, fixed per-device batch."""
    print(f"{'preset':<16}{'prec':<6}{'K':>3}{'reduce':>9}{'dev':>4}{'batch':>6}{'samples/s':>11}"
          f"{'per dev':>10}{'eff':>6}{'vs K=1':>7}{'wait':>6}{'wait ms':>8}{'1st s':>7}"
          "  collectives/step", flush=True)
    models = Models()
    base, k1 = {}, {}
    for preset in presets:
        dims = PRESETS[preset][0]
        # 2D --small: 32^2, not 16^2 (fno2d's 12 modes need a grid of at least 24)
        shape = ((64,) if small else (256,)) if dims == 1 else ((32, 32) if small else (64, 64))
        per_dev = 8 if small else (128 if dims == 1 else 32)
        for n in devices:
            if n > jax.device_count():
                print(f"skip {n} devices: only {jax.device_count()}", file=sys.stderr)
                continue
            dp = DataParallel(Mesh(np.asarray(jax.devices()[:n]), ("data",)))
            for precision in precisions:
                for reduce in reduces:
                    if (n == 1 and reduce != reduces[0]) or (reduce == "bfloat16"
                                                             and precision != "bf16"):
                        continue  # one device reduces nothing; bf16 reduce needs bf16
                    for k in micro_steps:
                        key = (preset, precision, k)
                        try:
                            r = measure(preset, batch=per_dev * n, shape=shape,
                                        precision=precision, dp=dp, steps=steps, warmup=warmup,
                                        micro_steps=k, grad_reduce=reduce, models=models,
                                        scan_unroll=min(scan_unroll, k))
                        except Exception as err:  # noqa: BLE001 (one failure must not end the run)
                            msg = f"{type(err).__name__}: {(str(err).strip() or ' ').splitlines()[0]}"
                            print(f"{preset:<16}{precision:<6}{k:>3}{reduce:>9}{n:>4} FAILED {msg}",
                                  flush=True)
                            writer.add({"preset": preset, "precision": precision, "devices": n,
                                        "micro_steps": k, "grad_reduce": reduce, "error": msg})
                            continue
                        per = r["samples_per_s"] / n
                        if n == 1:
                            base[key] = per
                        if k == micro_steps[0]:
                            k1[(*key[:2], reduce, n)] = r["samples_per_s"]
                        r["samples_per_s_per_device"] = per
                        r["efficiency"] = per / base[key] if key in base else None
                        ref = k1.get((*key[:2], reduce, n))
                        r["vs_k1"] = r["samples_per_s"] / ref if ref else None
                        eff = "" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
                        vk = "" if r["vs_k1"] is None else f"{r['vs_k1']:.2f}"
                        ar = " ".join(f"{d}:{b / 2**20:.2f}MB" for d, b in
                                      sorted(r["collective_bytes"].items())) or "-"
                        print(f"{preset:<16}{precision:<6}{k:>3}{reduce:>9}{n:>4}{r['batch']:>6}"
                              f"{r['samples_per_s']:>11.1f}{per:>10.1f}{eff:>6}{vk:>7}"
                              f"{r['data_wait_frac']:>6.2f}{r['data_wait_ms_per_step']:>8.2f}"
                              f"{r['first_step_s']:>7.1f}  {ar}", flush=True)
                        writer.add(r)


# --------------------------------------------------------------------------------- ablation
def make_ablation_step(static, objective, optimizer, lr_at, *, ema_decay: float, precision: str,
                       replicated, ema: bool = True, gnorm: bool = True):
    """ABLATION ONLY, not the trainer's step: a copy of
    ``pdekit.training.state.make_train_step``'s ``step_fn`` with the EMA update (``ema=False``:
    the EMA leaf is passed through untouched, donated and aliased) and/or the separate fp32
    grad-norm (``gnorm=False``: 0 is accumulated) taken out. Clipping itself is removed by
    passing an optimizer built with ``grad_clip=0``. Keep in step with state.py."""
    compute = jnp.bfloat16 if precision == "bf16" else None

    def loss_fn(params, batch, key):
        if compute is not None:
            params, batch = cast_floating(params, compute), cast_floating(batch, compute)
        return objective(eqx.combine(params, static), batch, key)

    def step_fn(state, batch, acc):
        key = jax.random.fold_in(state["key"], state["step"])
        loss, grads = jax.value_and_grad(loss_fn)(state["params"], batch, key)
        if gnorm:
            gn = jnp.sqrt(sum(jnp.sum(jnp.square(g.astype(jnp.float32)))
                              for g in jax.tree.leaves(grads)))
        else:
            gn = jnp.zeros((), jnp.float32)
        updates, opt_state = optimizer.update(grads, state["opt_state"], state["params"])
        lr = lr_at(state["step"], state["horizon"])
        params = optax.apply_updates(state["params"], scale_updates(updates, lr))
        new_ema = ema_update(state["ema"], params, state["step"], ema_decay) if ema else state["ema"]
        new = {"params": params, "opt_state": opt_state, "ema": new_ema,
               "step": state["step"] + 1, "horizon": state["horizon"], "key": state["key"]}
        ok = jnp.isfinite(loss) & jnp.isfinite(gn)
        acc = {"lr": lr.astype(jnp.float32),
               "loss": acc["loss"] + loss.astype(jnp.float32),
               "gnorm": acc["gnorm"] + gn.astype(jnp.float32),
               "n": acc["n"] + 1, "finite": acc["finite"] & ok}
        return new, acc

    return jax.jit(step_fn, donate_argnums=(0, 2), out_shardings=replicated)


def make_bare_step(static, objective, optimizer, precision: str):
    """The minimal step of benchmarks/models.py: ``(params, opt_state, key, batch) ->
    (params, opt_state, key, loss)``, params/opt state/key donated, nothing else."""
    compute = jnp.bfloat16 if precision == "bf16" else None

    def loss_fn(params, batch, key):
        if compute is not None:
            params, batch = cast_floating(params, compute), cast_floating(batch, compute)
        return objective(eqx.combine(params, static), batch, key)

    def step(params, opt_state, key, batch):
        key, sub = jax.random.split(key)
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, sub)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, key, loss

    return jax.jit(step, donate_argnums=(0, 1, 2))


def _time_blocks(call, batches, sync, *, steps, warmup, repeats, cheap_s):
    """Warm up (the first call compiles), then up to ``repeats`` blocks of ``steps`` calls,
    stopping after the first when it took longer than ``cheap_s``.

    Returns (first-call seconds, [block seconds], [dispatch fraction per block])."""
    t0 = time.perf_counter()
    call(next(batches))
    sync()
    first = time.perf_counter() - t0
    for _ in range(warmup - 1):
        call(next(batches))
    sync()
    blocks, dispatch = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            call(next(batches))
        t1 = time.perf_counter()
        sync()
        t2 = time.perf_counter()
        blocks.append(t2 - t0)
        dispatch.append((t1 - t0) / (t2 - t0))
        if r == 0 and blocks[0] > cheap_s:
            break
    return first, blocks, dispatch


def _repeat(x):
    while True:
        yield x


def ablate(preset, *, batch, shape, precision, dp, steps, warmup, repeats, cheap_s,
           variants, emit):
    """Measure every variant of one preset/precision; ``emit(row)`` is called per variant."""
    dims, history, future, _ = PRESETS[preset]
    horizon = warmup + repeats * steps
    cfg, derived, tcfg, objective = _setup(preset, precision=precision, horizon=horizon)
    _, _, tcfg_noclip, _ = _setup(preset, precision=precision, horizon=horizon, grad_clip=0.0)
    rep = dp.replicated
    t0 = time.perf_counter()
    params, static = split(init_model(cfg, derived, jax.random.PRNGKey(0), rep))
    build_s = time.perf_counter() - t0
    n_params = count_params(params)
    lr_at = lr_schedule(tcfg)
    src = Synthetic(batch, history, future, shape)
    fixed = dp.put_local_batch(src.sample_batch(0, batch), batch)
    jax.block_until_ready(fixed)
    copy = jax.jit(lambda p: jax.tree.map(jnp.copy, p), out_shardings=rep)  # params get donated
    real_step = {}  # trainer and fixed-batch share one jitted step (one compile)

    for variant in variants:
        t_start = time.perf_counter()
        pre = None
        if variant == "bare":
            opt = optax.adam(1e-4)
            step = make_bare_step(static, objective, opt, precision)
            p = copy(params)
            st = [p, jax.jit(opt.init, out_shardings=rep)(p), jax.random.PRNGKey(1)]

            def call(b, st=st, step=step):
                p, o, k, _ = step(st[0], st[1], st[2], b)
                st[:] = [p, o, k]
        else:
            clip = variant not in ("no-clip", "no-ema-no-clip")
            opt = make_optimizer(tcfg if clip else tcfg_noclip)
            if variant in ("trainer", "fixed-batch"):
                if "step" not in real_step:
                    real_step["step"] = make_train_step(static, objective, opt, lr_at,
                                                        ema_decay=0.999, precision=precision,
                                                        replicated=rep)
                    real_step["opt"] = opt
                step, opt = real_step["step"], real_step["opt"]
            else:
                step = make_ablation_step(static, objective, opt, lr_at, ema_decay=0.999,
                                          precision=precision, replicated=rep,
                                          ema=variant not in ("no-ema", "no-ema-no-clip"),
                                          gnorm=clip)
            state = jax.jit(lambda p, opt=opt: init_state(p, opt, 0, horizon),
                            out_shardings=rep)(copy(params))
            st = [state, jax.jit(init_acc, out_shardings=rep)()]

            def call(b, st=st, step=step):
                st[0], st[1] = step(st[0], b, st[1])
        if variant == "trainer":
            pre = Prefetcher(lambda s: src.sample_batch(s, batch),
                             lambda b: dp.put_local_batch(b, batch), 0, horizon, depth=2)
            batches = (b for _, b in pre)
        else:
            batches = _repeat(fixed)
        try:
            first, blocks, disp = _time_blocks(call, batches, lambda st=st: jax.block_until_ready(st),
                                               steps=steps, warmup=warmup, repeats=repeats,
                                               cheap_s=cheap_s)
        finally:
            if pre is not None:
                pre.close()
        med = statistics.median(blocks)
        emit({"preset": preset, "precision": precision, "variant": variant,
              "devices": dp.num_devices, "batch": batch, "shape": list(shape),
              "params": n_params, "steps": steps, "warmup": warmup, "repeats": len(blocks),
              "block_s": blocks, "steps_per_s": steps / med,
              "steps_per_s_min": steps / max(blocks), "steps_per_s_max": steps / min(blocks),
              "ms_per_step": 1e3 * med / steps, "dispatch_frac": statistics.median(disp),
              "first_call_s": first, "variant_wall_s": time.perf_counter() - t_start,
              "build_s": build_s, "peak_mem_gb": _mem_gb(dp)})
        del st, call, step


# --------------------------------------------------------------------------------- output
class Writer:
    """Rewrite the JSON after every row (an interrupted run keeps its rows)."""

    def __init__(self, path, meta):
        self.path, self.meta, self.rows = Path(path), meta, []
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def add(self, row):
        self.rows.append(row)
        self.flush()

    def flush(self):
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"meta": self.meta, "rows": self.rows}, indent=1))
        os.replace(tmp, self.path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="CPU sizes (N=64, 16^2, batch 8)")
    ap.add_argument("--presets", default=None, help="comma-separated presets")
    ap.add_argument("--precision", default="fp32,bf16")
    ap.add_argument("--devices", default=None,
                    help="comma-separated device counts, e.g. 1,2,4 (default 1; --scaling 1,2,4)")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 200; --small 5)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default 5; --small 2)")
    ap.add_argument("--ablate", action="store_true",
                    help="per preset/precision: trainer vs fixed-batch, no-ema, no-clip, bare")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="--ablate variants to run")
    ap.add_argument("--repeats", type=int, default=3, help="--ablate: timed blocks (median)")
    ap.add_argument("--cheap-s", type=float, default=2.0,
                    help="--ablate: only one block when a block takes longer than this")
    ap.add_argument("--scaling", action="store_true",
                    help="data-parallel scaling: 1,2,4 devices x micro-steps 1,4 (docstring)")
    ap.add_argument("--micro-steps", default="1,4",
                    help="--scaling: comma-separated train.micro_steps values (first = base)")
    ap.add_argument("--grad-reduce", default="auto",
                    help="--scaling: comma-separated train.grad_reduce_dtype values")
    ap.add_argument("--scan-unroll", type=int, default=1,
                    help="--scaling: lax.scan unroll of the micro-step loop (1 = a rolled loop)")
    ap.add_argument("--xla-gpu-overlap", action=argparse.BooleanOptionalAction, default=None,
                    help="set pdekit._mesh.GPU_OVERLAP_FLAGS (default: on with --scaling)")
    ap.add_argument("--simulate", type=int, default=0,
                    help="N simulated CPU devices (XLA_FLAGS before the backend starts)")
    ap.add_argument("--out", default=None,
                    help="JSON (default benchmarks/results/training[_ablate|_scaling].json)")
    args = ap.parse_args()
    # XLA reads XLA_FLAGS when the backend starts: nothing above has started one
    if args.simulate:
        add_xla_flags([f"--xla_force_host_platform_device_count={args.simulate}"])
    if args.xla_gpu_overlap or (args.xla_gpu_overlap is None and args.scaling):
        add_xla_flags(GPU_OVERLAP_FLAGS)
    default_presets = ((SCALING_SMALL if args.small else SCALING) if args.scaling
                       else (SMALL if args.small else list(PRESETS)))
    presets = args.presets.split(",") if args.presets else default_presets
    steps = args.steps or (5 if args.small else 200)
    warmup = args.warmup or (2 if args.small else 5)
    mode = "ablate" if args.ablate else "scaling" if args.scaling else "presets"
    out = args.out or f"benchmarks/results/training{'' if mode == 'presets' else '_' + mode}.json"
    meta = {"device": jax.devices()[0].device_kind, "jax": jax.__version__,
            "date": time.strftime("%Y-%m-%d"), "command": " ".join(sys.argv),
            "mode": mode, "steps": steps, "warmup": warmup,
            "xla_flags": os.environ.get("XLA_FLAGS", ""), "device_count": jax.device_count()}
    writer = Writer(out, meta)
    missing = [p for p in presets if not (package_dir() / "model" / f"{p}.yaml").exists()]
    for p in missing:
        print(f"skip {p}: no pdekit/configs/model/{p}.yaml", file=sys.stderr)
    presets = [p for p in presets if p not in missing]

    if args.scaling:
        scaling(presets, small=args.small,
                devices=[int(d) for d in (args.devices or "1,2,4").split(",")],
                precisions=args.precision.split(","), reduces=args.grad_reduce.split(","),
                micro_steps=[int(k) for k in args.micro_steps.split(",")], steps=steps,
                warmup=warmup, writer=writer, scan_unroll=args.scan_unroll)
        writer.flush()
        print(f"wrote {out}", flush=True)
        return

    if args.ablate:
        variants = args.variants.split(",")
        unknown = [v for v in variants if v not in VARIANTS]
        if unknown:
            ap.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
        meta.update(repeats=args.repeats, cheap_s=args.cheap_s)
        print(f"{'preset':<18}{'prec':<6}{'variant':<16}{'steps/s':>9}{'ms/step':>9}"
              f"{'min..max steps/s':>19}{'rep':>4}{'vs bare':>9}{'vs trainer':>11}"
              f"{'dispatch':>9}{'1st call s':>11}", flush=True)
        seen = {}

        def emit(r):
            seen[(r["preset"], r["precision"], r["variant"])] = r["steps_per_s"]
            bare = seen.get((r["preset"], r["precision"], "bare"))
            trn = seen.get((r["preset"], r["precision"], "trainer"))
            r["vs_bare"] = None if bare is None else r["steps_per_s"] / bare
            r["vs_trainer"] = None if trn is None else r["steps_per_s"] / trn
            spread = f"{r['steps_per_s_min']:.1f}..{r['steps_per_s_max']:.1f}"
            vb = "" if r["vs_bare"] is None else f"{r['vs_bare']:.2f}"
            vt = "" if r["vs_trainer"] is None else f"{r['vs_trainer']:.2f}"
            print(f"{r['preset']:<18}{r['precision']:<6}{r['variant']:<16}"
                  f"{r['steps_per_s']:>9.2f}{r['ms_per_step']:>9.3f}{spread:>19}"
                  f"{r['repeats']:>4}{vb:>9}{vt:>11}{r['dispatch_frac']:>9.2f}"
                  f"{r['first_call_s']:>11.1f}", flush=True)
            writer.add(r)

    else:
        print(f"{'preset':<18}{'prec':<6}{'dev':>4}{'batch':>7}{'params':>12}{'steps/s':>10}"
              f"{'samples/s':>12}{'per dev':>10}{'eff':>7}{'wait':>7}{'mem GB':>8}{'1st s':>7}",
              flush=True)
        base = {}

    for preset in presets:
        dims = PRESETS[preset][0]
        shape = ((64,) if args.small else (256,)) if dims == 1 else \
            ((16, 16) if args.small else (64, 64))
        per_dev = 8 if args.small else (128 if dims == 1 else 32)
        for n in (int(d) for d in (args.devices or "1").split(",")):
            if n > jax.device_count():
                print(f"skip {n} devices: only {jax.device_count()}", file=sys.stderr)
                continue
            dp = DataParallel(Mesh(np.asarray(jax.devices()[:n]), ("data",)))
            for precision in args.precision.split(","):
                try:
                    if args.ablate:
                        ablate(preset, batch=per_dev * n, shape=shape, precision=precision, dp=dp,
                               steps=steps, warmup=warmup, repeats=args.repeats,
                               cheap_s=args.cheap_s, variants=variants, emit=emit)
                        continue
                    r = measure(preset, batch=per_dev * n, shape=shape, precision=precision,
                                dp=dp, steps=steps, warmup=warmup)
                except Exception as err:  # noqa: BLE001 (one failing preset must not end the run)
                    msg = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
                    print(f"{preset:<18}{precision:<6}FAILED {msg}", flush=True)
                    writer.add({"preset": preset, "precision": precision, "devices": n,
                                "error": msg})
                    continue
                if n == 1:
                    base[(preset, precision)] = r["samples_per_s"]
                per = r["samples_per_s"] / r["devices"]
                one = base.get((preset, precision))
                r["efficiency"] = None if one is None else per / one
                eff = "" if one is None else f"{r['efficiency']:.2f}"
                mem = "" if r["peak_mem_gb"] is None else f"{r['peak_mem_gb']:.2f}"
                print(f"{r['preset']:<18}{r['precision']:<6}{r['devices']:>4}{r['batch']:>7}"
                      f"{r['params']:>12,}{r['steps_per_s']:>10.2f}{r['samples_per_s']:>12.1f}"
                      f"{per:>10.1f}{eff:>7}{r['data_wait_frac']:>7.2f}{mem:>8}"
                      f"{r['first_step_s']:>7.1f}", flush=True)
                writer.add(r)
    writer.flush()
    print(f"wrote {out}", flush=True)


if __name__ == "__main__":
    main()
