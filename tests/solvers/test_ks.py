"""Kuramoto–Sivashinsky: order, conservation, adaptive cross-check, long runs, exponax, vmap."""

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.solvers import (
    KuramotoSivashinsky,
    energy_spectrum,
    sine_sum,
    trajectory,
    trajectory_diffrax,
)

pytestmark = pytest.mark.usefixtures("x64")


def chaotic_state(L=64.0, N=256, burn_in=100.0, seed=0):
    u0 = sine_sum(jax.random.PRNGKey(seed), resolution=N, L=L)
    steps = int(burn_in / 0.05)
    return trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=0.05), u0, 2, steps)[-1]


def _run(u, L, N, dt, T):
    n = int(round(T / dt))
    return jax.jit(lambda v: trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=dt), v, 2, n)[-1])(u)


def test_etdrk4_temporal_order_on_chaotic_state():
    """Step halving 0.2 -> 0.00625 on a chaotic state (L=64, N=256, T=4) against dt=1.5625e-4.

    Measured here: 2.94, 3.28, 3.54, 3.71, 3.83 (an independent reference reports
    2.7 -> 3.1 -> 3.4 -> 3.7 -> 3.8 for the same range).
    """
    L, N, T = 64.0, 256, 4.0
    uc = chaotic_state(L, N)
    ref = _run(uc, L, N, T / 25600, T)
    dts = [0.2, 0.1, 0.05, 0.025, 0.0125, 0.00625]
    errs = np.array([float(jnp.linalg.norm(_run(uc, L, N, d, T) - ref) / jnp.linalg.norm(ref))
                     for d in dts])
    orders = np.log2(errs[:-1] / errs[1:])
    assert np.all(np.diff(orders) > 0), orders  # approaching the asymptotic order from below
    assert orders[-1] >= 3.5 and orders[-2] >= 3.5, orders
    assert orders[-1] <= 4.3, orders


def test_mean_conserved_to_roundoff():
    L, N = 64.0, 128
    u0 = sine_sum(jax.random.PRNGKey(1), resolution=N, L=L) + 0.7
    traj = trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=0.1), u0, 51, 20)
    np.testing.assert_allclose(traj.mean(axis=1), float(u0.mean()), atol=1e-13)


def test_ks_matches_adaptive_diffrax_over_10_time_units():
    """Same semi-discrete system, Tsit5 with rtol = atol = 1e-10 (L=22, N=64: chaotic, resolved)."""
    L, N = 22.0, 64
    uc = chaotic_state(L, N, burn_in=50.0)
    ours = trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=0.005), uc, 11, 200)
    ref = trajectory_diffrax(KuramotoSivashinsky(L=L, resolution=N, dt=0.005), uc, 11, 1.0, rtol=1e-10,
                             atol=1e-10, solver=diffrax.Tsit5())
    err = np.linalg.norm(ours - ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert np.max(err) <= 1e-6, err


@pytest.mark.slow
def test_ks_matches_adaptive_diffrax_protocol_grid():
    """The protocol's grid (L=64, N=256), 10 time units; measured rel. error ~5e-11."""
    L, N = 64.0, 256
    uc = chaotic_state(L, N)
    ours = trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=0.0025), uc, 11, 400)
    ref = trajectory_diffrax(KuramotoSivashinsky(L=L, resolution=N, dt=0.0025), uc, 11, 1.0, rtol=1e-10,
                             atol=1e-10, solver=diffrax.Tsit5())
    err = np.linalg.norm(ours - ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert np.max(err) <= 1e-6, err


def test_long_run_finite_with_stable_spectrum():
    L, N = 64.0, 256
    u0 = sine_sum(jax.random.PRNGKey(2), resolution=N, L=L)
    traj = jax.jit(lambda u: trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=0.25), u, 1601, 4))(u0)
    assert bool(jnp.all(jnp.isfinite(traj)))
    stat = traj[200:]  # drop the transient (t < 200)
    spec = jax.vmap(energy_spectrum)(stat)
    half = stat.shape[0] // 2
    e1, e2 = spec[:half].mean(0), spec[half:].mean(0)
    # energetic band (k index 1..40 carries >99.9% of the energy): halves agree within 25%
    band = slice(1, 41)
    rel = np.abs(e1[band] - e2[band]) / (0.5 * (e1[band] + e2[band]))
    assert np.median(rel) < 0.15 and np.max(rel) < 0.5, rel
    # energy is where KS puts it: peak near the most unstable wavelength k ~ 1/sqrt(2)
    k_peak = np.argmax(np.asarray(e1[1:])) + 1
    assert abs(2 * np.pi * k_peak / L - 1 / np.sqrt(2)) < 0.3
    # the solution stays bounded at the known amplitude (|u| ~ 3)
    assert 1.5 < float(jnp.abs(stat).max()) < 6.0


def test_vmap_over_domain_length_is_one_compiled_call_matching_loop():
    N = 64
    Ls = jnp.array([57.6, 64.0, 70.4])
    keys = jax.random.split(jax.random.PRNGKey(4), 3)

    def one(L, key):
        return trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=0.1), sine_sum(key, resolution=N, L=L), 5, 10)

    batched = jax.jit(jax.vmap(one))(Ls, keys)
    for i in range(3):
        np.testing.assert_allclose(batched[i], one(Ls[i], keys[i]), atol=1e-12)
    # different L give different dynamics
    assert float(jnp.abs(batched[0] - batched[2]).max()) > 1e-3


def test_agrees_with_exponax_stepper():
    ex = pytest.importorskip("exponax")
    L, N, dt = 64.0, 256, 0.05
    u0 = sine_sum(jax.random.PRNGKey(0), resolution=N, L=L)
    for order in (2, 4):
        theirs = ex.stepper.KuramotoSivashinskyConservative(1, L, N, dt, order=order)
        a = ex.rollout(theirs, 200, include_init=False)(u0[None])[-1, 0]
        b = trajectory(KuramotoSivashinsky(L=L, resolution=N, dt=dt, order=order), u0, 2, 200)[-1]
        assert float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b)) < 1e-10
