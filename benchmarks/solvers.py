"""Work–precision of pdekit's ETDRK solvers against exponax, measured in one run.

KS (L=64, N=256): B trajectories x F saved frames of dt_save=0.2 from the KS protocol's
initial condition (after a burn-in); each setting's wall time for the whole batch, and its
relative L2 error over the first 50 saved frames (10 time units) against a float64 ETDRK4
reference with dt = 0.2/32 (same semi-discrete system; pdekit and exponax agree to 1e-12).

Kolmogorov flow (256^2, batch 8, 200 steps of dt=0.01): wall time, and error at the end
against each package's own float64 ETDRK4 reference with 8 sub-steps (exponax uses the
opposite stream-function sign convention, so the two systems are mirror images).

pdekit rows name their spectral transform (``SpectralTransform``): ``fft`` (default),
``matmul`` (the DFT as matrix products at precision HIGHEST), ``fft-stacked`` (NS only: the
three inverse and two forward FFTs of each stage as two batched calls) and, on GPUs only,
``matmul-tf32x3`` (matmul with the TF32_TF32_F32_X3 dot algorithm: float32 accuracy on tensor
cores). The float64 references always use the FFT.

    python benchmarks/solvers.py            # GPU sizes
    python benchmarks/solvers.py --small    # CPU-sized smoke run
Writes JSON next to the printed table (``--out``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from pdekit.solvers import (
    KuramotoSivashinsky,
    NavierStokes2D,
    SpectralTransform,
    kolmogorov_forcing,
    random_vorticity,
    sine_sum,
    trajectory,
)


def spectral_transform(name):
    """A benchmark row's transform name -> the solvers' ``transform=`` argument."""
    if name == "fft-stacked":
        return SpectralTransform("fft", stack=True)
    if name == "matmul-tf32x3":
        return SpectralTransform("matmul", precision=jax.lax.DotAlgorithmPreset.TF32_TF32_F32_X3)
    return name


def transforms_to_try(*names):
    """The given transforms, plus the tensor-core matmul variant on GPUs."""
    return list(names) + (["matmul-tf32x3"] if jax.devices()[0].platform == "gpu" else [])


def timed(fn, *args, repeats=3):
    out = jax.block_until_ready(fn(*args))  # compile + warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def rel_err(a, ref):
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    axes = tuple(range(1, a.ndim))
    return float(np.mean(np.linalg.norm((a - ref).reshape(a.shape[0], -1), axis=1)
                         / np.linalg.norm(ref.reshape(ref.shape[0], -1), axis=1))) if axes else 0.0


# ---------------------------------------------------------------------------------------------
def ks_initial_states(B, L, N, dtype):
    keys = jax.random.split(jax.random.PRNGKey(0), B)
    with jax.enable_x64(True):
        u0 = jax.vmap(lambda k: sine_sum(k, resolution=N, L=L))(keys)
        burn = jax.jit(jax.vmap(lambda u: trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=0.05), u, 2, 1000)[-1]))
        return np.asarray(burn(u0)).astype(dtype)


def pdekit_ks(L, N, dt_save, frames, inner, order, unroll=1, transform="fft"):
    dt = dt_save / inner

    @jax.jit
    def run(u0):
        stepper = KuramotoSivashinsky(L=L, resolution=N, dt=dt, order=order,
                                      transform=spectral_transform(transform))
        return jax.vmap(lambda u: trajectory(stepper, u, frames, inner, unroll=unroll))(u0)

    return run


def exponax_ks(L, N, dt_save, frames, inner, order, unroll=1, transform="fft"):
    import exponax as ex

    stepper = ex.stepper.KuramotoSivashinskyConservative(1, L, N, dt_save / inner, order=order)
    if inner > 1:
        stepper = ex.RepeatedStepper(stepper, inner)

    @jax.jit
    def run(u0):
        return jax.vmap(ex.rollout(stepper, frames - 1, include_init=True))(u0[:, None])[:, :, 0]

    return run


def bench_ks(B, frames, n_err, L=64.0, N=256, dt_save=0.2):
    rows = []
    u0 = ks_initial_states(B, L, N, np.float32)
    with jax.enable_x64(True):
        ref = pdekit_ks(L, N, dt_save, n_err, 32, 4)(jnp.asarray(u0[:16], jnp.float64))
    settings = [("pdekit", o, m, 1, "fft") for o, m in [(4, 1), (4, 2), (4, 4), (3, 2), (2, 1), (2, 2), (2, 4)]]
    settings += [("pdekit", 4, 1, 4, "fft"), ("pdekit", 4, 4, 4, "fft"), ("pdekit", 2, 1, 4, "fft")]
    # the DFT by matrix product: ETDRK2, ETDRK4 (scan unrolled or not) and ETDRK4 x 4 sub-steps
    for transform in transforms_to_try("matmul"):
        settings += [("pdekit", o, m, u, transform) for o, m, u in [(2, 1, 1), (2, 1, 4), (4, 1, 1), (4, 1, 4),
                                                                     (4, 4, 1)]]
    try:
        import exponax  # noqa: F401
        settings += [("exponax", o, m, 1, "fft") for o, m in [(4, 1), (4, 4), (2, 1), (2, 2), (2, 4)]]
    except ImportError:
        print("exponax not installed: peer rows skipped")
    for pkg, order, inner, unroll, transform in settings:
        make = pdekit_ks if pkg == "pdekit" else exponax_ks
        try:
            t, _ = timed(make(L, N, dt_save, frames, inner, order, unroll, transform), jnp.asarray(u0))
            short = make(L, N, dt_save, n_err, inner, order, transform=transform)(jnp.asarray(u0[:16]))
        except Exception as e:  # only the optional dot algorithm may be unsupported here
            if transform != "matmul-tf32x3":
                raise
            print(f"skipped {pkg} {transform} ETDRK{order}: {type(e).__name__}: {str(e)[:200]}")
            continue
        rows.append(dict(workload="KS", package=pkg, transform=transform, order=order, inner_steps=inner,
                         unroll=unroll, seconds=t, rel_error=rel_err(short, ref),
                         throughput=f"{B / t:,.0f} traj/s"))
        print(rows[-1], flush=True)
    return rows


# ---------------------------------------------------------------------------------------------
def pdekit_kolmogorov(N, dt, steps, order, inner=1, transform="fft"):
    forcing = kolmogorov_forcing(N)

    @jax.jit
    def run(w0):
        s = NavierStokes2D(resolution=N, dt=dt / inner, nu=1e-3, drag=0.1, forcing=forcing.astype(w0.dtype),
                           order=order, transform=spectral_transform(transform))
        return jax.vmap(lambda w: trajectory(s, w, 2, steps * inner)[-1])(w0)

    return run


def exponax_kolmogorov(N, dt, steps, order, inner=1, transform="fft"):
    import exponax as ex

    s = ex.stepper.KolmogorovFlowVorticity(2, 2 * np.pi, N, dt / inner, diffusivity=1e-3,
                                           drag=-0.1, injection_mode=4, order=order)
    if inner > 1:
        s = ex.RepeatedStepper(s, inner)

    @jax.jit
    def run(w0):
        return jax.vmap(ex.rollout(s, steps, include_init=False))(w0[:, None])[:, -1, 0]

    return run


def bench_kolmogorov(B, N, steps, dt=0.01):
    rows = []
    keys = jax.random.split(jax.random.PRNGKey(1), B)
    w0 = np.asarray(jax.vmap(lambda k: random_vorticity(k, resolution=N, max_speed=1.0))(keys), np.float32)
    peers = {"pdekit": pdekit_kolmogorov}
    try:
        import exponax  # noqa: F401
        peers["exponax"] = exponax_kolmogorov
    except ImportError:
        pass
    for pkg, make in peers.items():
        with jax.enable_x64(True):
            ref = make(N, dt, steps, 4, inner=8)(jnp.asarray(w0, jnp.float64))
        settings = [(4, "fft"), (2, "fft")]
        if pkg == "pdekit":
            settings += [(4, tr) for tr in transforms_to_try("matmul", "fft-stacked")]
        for order, transform in settings:
            try:
                t, out = timed(make(N, dt, steps, order, transform=transform), jnp.asarray(w0))
            except Exception as e:  # only the optional dot algorithm may be unsupported here
                if transform != "matmul-tf32x3":
                    raise
                print(f"skipped {pkg} {transform} ETDRK{order}: {type(e).__name__}: {str(e)[:200]}")
                continue
            rows.append(dict(workload="Kolmogorov", package=pkg, transform=transform, order=order,
                             inner_steps=1, unroll=1, seconds=t, rel_error=rel_err(out, ref),
                             throughput=f"{B * steps / t:,.0f} state-steps/s"))
            print(rows[-1], flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="CPU-sized run")
    p.add_argument("--out", default="benchmarks/results/solvers.json")
    a = p.parse_args()
    if a.small:
        rows = bench_ks(B=32, frames=100, n_err=50) + bench_kolmogorov(B=2, N=64, steps=50)
    else:
        rows = bench_ks(B=2048, frames=500, n_err=50) + bench_kolmogorov(B=8, N=256, steps=200)
    dev = jax.devices()[0]
    meta = dict(device=getattr(dev, "device_kind", str(dev)), platform=dev.platform,
                jax=jax.__version__, date=time.strftime("%Y-%m-%d"))
    print(f"\ndevice: {meta['device']}  jax {meta['jax']}")
    print(f"{'workload':<11}{'package':<9}{'transform':<15}{'order':>6}{'inner':>6}{'unroll':>7}{'seconds':>10}"
          f"{'rel.err':>11}  throughput")
    for r in rows:
        print(f"{r['workload']:<11}{r['package']:<9}{r['transform']:<15}{r['order']:>6}{r['inner_steps']:>6}"
              f"{r['unroll']:>7}{r['seconds']:>10.4f}{r['rel_error']:>11.2e}  {r['throughput']}")
    import os

    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=2)
    os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
