"""Figures for the "Validation" section of docs/solvers.md (float64, CPU, about a minute).

Usage: python experiments/solver_validation/make_figures.py [--out docs/figures/solvers]

Each figure reproduces one check of ``tests/solvers`` against an analytic or independent
reference and prints its measured numbers on one line:

* etdrk_order.png            ETDRK1-4 on Burgers vs Cole-Hopf; ETDRK4 on chaotic KS vs fine dt
* burgers_colehopf.png       Burgers vs the periodic Cole-Hopf solution, pointwise error
* ks_vs_diffrax.png          KS ETDRK4 vs diffrax Tsit5 (rtol = atol = 1e-10), L = 22, N = 64
* ks_spacetime_spectrum.png  long KS run (L = 64, N = 256, dt = 0.05), spectra of its two halves
* kolmogorov_vorticity.png   Kolmogorov flow vorticity snapshot (128^2) and energy spectrum
"""

from __future__ import annotations

import argparse
import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import diffrax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from pdekit.solvers import (  # noqa: E402
    Burgers,
    KuramotoSivashinsky,
    NavierStokes2D,
    energy_spectrum,
    grid_points,
    kolmogorov_forcing,
    random_vorticity,
    sine_sum,
    trajectory,
    trajectory_diffrax,
)

DPI = 110


def save(fig, out: str, name: str) -> None:
    """Write the PNG under a temporary name, then move it into place atomically."""
    final = os.path.join(out, name)
    tmp = final + ".tmp"
    fig.savefig(tmp, dpi=DPI, format="png", bbox_inches="tight")
    plt.close(fig)
    os.replace(tmp, final)


def cole_hopf(x, t, nu, a=2.0, b=1.0):
    """Periodic Cole-Hopf: phi = a + b exp(-nu t) cos x solves the heat equation, u = -2 nu phi_x / phi."""
    e = b * np.exp(-nu * t)
    return 2 * nu * e * np.sin(x) / (a + e * np.cos(x))


def integrator(build):
    """Jitted ``(u0, dt, n) -> u(n dt)``; ``dt`` and ``n`` are traced, so one compile per scheme."""

    @jax.jit
    def run(u0, dt, n):
        s = build(dt)

        def body(_, carry):
            u_hat, t = carry
            return s.step_hat(u_hat, t), t + s.dt

        u_hat, _ = jax.lax.fori_loop(0, n, body, (s.to_fourier(u0), jnp.zeros_like(s.dt)))
        return s.from_fourier(u_hat)

    return lambda u0, dt, T: run(u0, dt, int(round(T / dt)))


def rel_l2(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def ks_chaotic_state(L, N, burn_in, seed=0):
    u0 = sine_sum(jax.random.PRNGKey(seed), resolution=N, L=L)
    return integrator(lambda dt: KuramotoSivashinsky(L=L, resolution=N, dt=dt))(u0, 0.05, burn_in)


def fig_etdrk_order(out: str) -> None:
    # Burgers vs exact Cole-Hopf (a = 1.5, nu = 0.1, N = 128: spatial error ~1e-17), T = 1
    N, L, nu, T = 128, 2 * np.pi, 0.1, 1.0
    x = np.asarray(grid_points(N, L))
    u0, exact = jnp.asarray(cole_hopf(x, 0.0, nu, a=1.5)), cole_hopf(x, T, nu, a=1.5)
    dts = 0.2 / 2.0 ** np.arange(5)
    fig, ax = plt.subplots(figsize=(7, 6.2), layout="constrained")
    summary = []
    for order, color in zip((1, 2, 3, 4), ("C0", "C1", "C2", "C3"), strict=True):
        run = integrator(lambda dt, o=order: Burgers(L=L, resolution=N, dt=dt, nu=nu, order=o))
        errs = np.array([rel_l2(run(u0, dt, T), exact) for dt in dts])
        orders = np.log2(errs[:-1] / errs[1:])
        summary.append(f"ETDRK{order} {orders[-1]:.2f}")
        ax.loglog(dts, errs, "o-", color=color,
                  label=f"Burgers ETDRK{order}: order {orders[0]:.2f} → {orders[-1]:.2f}")
        ax.loglog(dts, 0.2 * errs[-1] * (dts / dts[-1]) ** order, ":", color=color, lw=1.2)
    # KS ETDRK4 on a chaotic state (L = 64, N = 256, T = 4) vs dt = T / 25600
    Lk, Nk, Tk = 64.0, 256, 4.0
    uc = ks_chaotic_state(Lk, Nk, 100.0)
    run = integrator(lambda dt: KuramotoSivashinsky(L=Lk, resolution=Nk, dt=dt))
    ref = run(uc, Tk / 25600, Tk)
    kdts = 0.2 / 2.0 ** np.arange(6)
    kerrs = np.array([rel_l2(run(uc, dt, Tk), ref) for dt in kdts])
    korders = np.log2(kerrs[:-1] / kerrs[1:])
    ax.loglog(kdts, kerrs, "s--", color="k",
              label="KS ETDRK4 (vs dt = 1.6e-4): order " + " → ".join(f"{o:.2f}" for o in korders))
    ax.plot([], [], ":", color="gray", label="reference slopes dt¹ … dt⁴ (dotted, offset ×0.2)")
    ax.set_xlabel("time step dt (time units)")
    ax.set_ylabel("relative L2 error at final time")
    ax.set_title("ETDRK temporal order (Burgers T = 1, KS T = 4)")
    ax.grid(True, which="both", alpha=0.3)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=8, loc="outside lower center", ncol=1)
    save(fig, out, "etdrk_order.png")
    print("etdrk_order: Burgers dt 0.2->0.0125 final orders " + ", ".join(summary)
          + "; KS ETDRK4 dt 0.2->0.00625 orders " + " -> ".join(f"{o:.2f}" for o in korders))


def fig_burgers_colehopf(out: str) -> None:
    # the test's setting (a = 2, b = 1, nu = 0.1, N = 64, dt = 1e-3), run to t = 10 so the decay shows
    N, L, nu, dt = 64, 2 * np.pi, 0.1, 1e-3
    times = np.array([0.0, 1.0, 2.5, 5.0, 10.0])
    x = np.asarray(grid_points(N, L))
    s = Burgers(L=L, resolution=N, dt=dt, nu=nu)
    frames = np.asarray(jax.jit(lambda u: trajectory(s, u, 41, 250))(jnp.asarray(cole_hopf(x, 0.0, nu))))
    t_all = np.arange(41) * 250 * dt
    abs_err = np.array([np.max(np.abs(f - cole_hopf(x, t, nu))) for f, t in zip(frames, t_all, strict=True)])
    rel = abs_err / np.array([np.max(np.abs(cole_hopf(x, t, nu))) for t in t_all])
    rel_le1 = max(r for r, t in zip(rel, t_all, strict=True) if t <= 1.0 + 1e-9)
    xf = np.linspace(0, L, 400)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, t in enumerate(times):
        j = int(round(t / (250 * dt)))
        a1.plot(xf, cole_hopf(xf, t, nu), "-", color=f"C{i}", lw=1, label=f"t = {t:g}")
        a1.plot(x[::2], frames[j][::2], "o", color=f"C{i}", ms=3.5, mfc="none")
        if t > 0:
            err = np.abs(frames[j] - cole_hopf(x, t, nu))
            a2.semilogy(x, np.maximum(err, 1e-20), "-", color=f"C{i}", lw=1, label=f"t = {t:g}")
    a1.plot([], [], "k-", lw=1, label="Cole–Hopf (exact)")
    a1.plot([], [], "ko", ms=3.5, mfc="none", label="pdekit ETDRK4")
    a1.set(xlabel="x", ylabel="u(x, t)", title=f"Burgers, ν = {nu}, N = {N}, dt = {dt:g}")
    a1.legend(fontsize=8)
    a2.set(xlabel="x", ylabel="|u − u_exact|",
           title=f"pointwise error (max rel. {max(rel):.1e} for t ≤ 10)")
    a2.legend(fontsize=8)
    for a in (a1, a2):
        a.grid(True, alpha=0.3)
    save(fig, out, "burgers_colehopf.png")
    print(f"burgers_colehopf: max rel. error {rel_le1:.2e} for t <= 1, {max(rel):.2e} for t <= 10 "
          f"(max abs. error {abs_err.max():.2e})")


def fig_ks_vs_diffrax(out: str) -> None:
    L, N, T, save_every = 22.0, 64, 10.0, 0.1
    uc = ks_chaotic_state(L, N, 50.0)
    n = int(round(T / save_every)) + 1
    t = np.arange(n) * save_every
    ref = np.asarray(trajectory_diffrax(KuramotoSivashinsky(L=L, resolution=N, dt=0.005), uc, n, save_every,
                                        rtol=1e-10, atol=1e-10, solver=diffrax.Tsit5()))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    line = []
    for dt, c in ((0.02, "C1"), (0.005, "C0"), (0.0025, "C2")):
        ours = np.asarray(trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=dt), uc, n,
                                     int(round(save_every / dt))))
        err = np.linalg.norm(ours - ref, axis=1) / np.linalg.norm(ref, axis=1)
        ax.semilogy(t[1:], err[1:], "-", color=c, label=f"ETDRK4 dt = {dt:g}: max {err.max():.1e}")
        line.append(f"dt={dt:g} max {err.max():.2e}")
    ax.axhline(1e-6, color="k", ls="--", lw=1, label="tolerance asserted by the test (1e-6)")
    ax.set(xlabel="t (time units)", ylabel="‖u_ETDRK4 − u_Tsit5‖ / ‖u_Tsit5‖",
           title="KS (L = 22, N = 64) vs diffrax Tsit5, rtol = atol = 1e-10")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, out, "ks_vs_diffrax.png")
    print("ks_vs_diffrax: rel. L2 difference over t in [0, 10]: " + ", ".join(line))


def fig_ks_spacetime(out: str) -> None:
    L, N, dt, inner, T, t_burn = 64.0, 256, 0.05, 4, 400.0, 100.0
    s = KuramotoSivashinsky(L=L, resolution=N, dt=dt)
    n = int(round(T / (dt * inner))) + 1
    u0 = sine_sum(jax.random.PRNGKey(2), resolution=N, L=L)
    traj = np.asarray(jax.jit(lambda u: trajectory(s, u, n, inner))(u0))
    t = np.arange(n) * dt * inner
    stat = traj[t >= t_burn]
    spec = np.asarray(jax.vmap(energy_spectrum)(jnp.asarray(stat)))
    half = stat.shape[0] // 2
    e1, e2 = spec[:half].mean(0), spec[half:].mean(0)
    k = 2 * np.pi * np.arange(N // 2 + 1) / L
    band = slice(1, 41)
    rel = np.abs(e1[band] - e2[band]) / (0.5 * (e1[band] + e2[band]))
    k_peak = k[np.argmax(e1[1:]) + 1]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.6, 1]})
    vmax = np.abs(traj).max()
    im = a1.imshow(traj.T, aspect="auto", origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                   extent=(t[0], t[-1], 0, L), interpolation="nearest")
    a1.axvline(t_burn, color="k", ls="--", lw=1)
    a1.set(xlabel="t (time units)", ylabel="x",
           title=f"KS, L = {L:g}, N = {N}, dt = {dt:g} (dashed: end of transient)")
    fig.colorbar(im, ax=a1, label="u", pad=0.01)
    t_mid = t[t >= t_burn][half]
    a2.semilogy(k[1:], e1[1:], "-", label=f"t ∈ [{t_burn:g}, {t_mid:g})")
    a2.semilogy(k[1:], e2[1:], "--", label=f"t ∈ [{t_mid:g}, {T:g}]")
    a2.axvline(1 / np.sqrt(2), color="gray", ls=":", lw=1, label="most unstable k = 1/√2")
    a2.axvline(k[N // 3], color="gray", ls="-.", lw=1, label="2/3 dealiasing cutoff")
    a2.set(xlabel="wavenumber k = 2πm/L", ylabel="time-averaged E(k)",
           title=f"spectra of the two halves (median diff. {np.median(rel):.1%})")
    kept = slice(1, N // 3 + 1)
    a2.set_ylim(min(e1[kept].min(), e2[kept].min()) / 10, 5 * max(e1.max(), e2.max()))
    a2.set_xlim(0, 1.05 * k[N // 3])
    a2.grid(True, which="both", alpha=0.3)
    a2.legend(fontsize=8)
    save(fig, out, "ks_spacetime_spectrum.png")
    print(f"ks_spacetime_spectrum: t <= {T:g}, max |u| {np.abs(stat).max():.2f}, spectral peak "
          f"k = {k_peak:.3f}, halves' spectra (m = 1..40) differ by median {np.median(rel):.1%}, "
          f"max {rel.max():.1%}")


def fig_kolmogorov(out: str) -> None:
    N, L, nu, drag, T, dt = 128, 2 * np.pi, 1e-3, 0.1, 10.0, 6.25e-3
    w0 = random_vorticity(jax.random.PRNGKey(0), resolution=N, L=L, peak_wavenumber=4.0, max_speed=7.0)
    s = NavierStokes2D(L=L, resolution=N, dt=dt, nu=nu, drag=drag, forcing=kolmogorov_forcing(N, L),
                       max_velocity=7.0)
    n_steps = int(round(T / dt))
    w = np.asarray(jax.jit(lambda v: trajectory(s, v, 2, n_steps)[-1])(w0))
    u, v = (np.asarray(c) for c in s.velocity(jnp.asarray(w)))
    E = np.asarray(energy_spectrum(jnp.asarray(u), 2) + energy_spectrum(jnp.asarray(v), 2)) / 2
    m = np.arange(E.size)
    speed = float(np.sqrt(u**2 + v**2).max())
    cfl = speed * dt * N / L
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    lim = np.abs(w).max()
    im = a1.imshow(w.T, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim, extent=(0, L, 0, L))
    fig.colorbar(im, ax=a1, label="vorticity ω")
    a1.set(xlabel="x", ylabel="y", title=f"vorticity at t = {T:g}: {N}², ν = {nu:g}, α = {drag:g}, dt = {dt:g}")
    a1.set_aspect("equal")
    a2.loglog(m[1:], E[1:], "-", label="E(k) = ½ Σ_shell |û|²")
    ref_k = np.arange(6, N // 3)
    a2.loglog(ref_k, 2 * E[6] * (ref_k / 6.0) ** -3.0, "k--", lw=1, label="k⁻³ (reference slope)")
    a2.axvline(4, color="gray", ls=":", lw=1, label="forcing k = 4")
    a2.axvline(N // 3, color="gray", ls="-.", lw=1, label="2/3 dealiasing cutoff")
    a2.set(xlabel="integer wavenumber |k|", ylabel="kinetic energy spectrum E(k)",
           title=f"energy spectrum (max |u| = {speed:.2f}, CFL = {cfl:.2f})")
    a2.set_xlim(0.9, N // 2)
    a2.set_ylim(E[N // 3] * 1e-3, E[1:].max() * 5)
    Z = m**2 * E  # enstrophy spectrum: how much is left at the dealiasing cutoff
    z_cut = Z[N // 3] / Z[1:].max()
    a2.grid(True, which="both", alpha=0.3)
    a2.legend(fontsize=8)
    save(fig, out, "kolmogorov_vorticity.png")
    print(f"kolmogorov_vorticity: t = {T:g}, {n_steps} steps, finite {bool(np.isfinite(w).all())}, "
          f"max |u| {speed:.2f} (CFL {cfl:.2f}), energy {E.sum():.3f}, mean vorticity "
          f"{abs(w.mean()):.1e}, spectral peak |k| = {int(m[1:][np.argmax(E[1:])])}, "
          f"enstrophy spectrum at the cutoff / peak {z_cut:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/figures/solvers", help="output folder")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    for fn in (fig_etdrk_order, fig_burgers_colehopf, fig_ks_vs_diffrax, fig_ks_spacetime,
               fig_kolmogorov):
        t0 = time.perf_counter()
        fn(args.out)
        print(f"  ({fn.__name__}: {time.perf_counter() - t0:.1f} s)")
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
