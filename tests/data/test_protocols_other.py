"""Burgers and Navier–Stokes presets at tiny sizes: parameters, forcing, frames, finiteness."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from pdekit_datafixtures import CONFIGS

from pdekit.data import build_protocol, make_batch_solver, split_seed
from pdekit.data.writer import x64
from pdekit.solvers import SineForcing, resample


def preset(name, **overrides):
    cfg = yaml.safe_load((CONFIGS / "pde" / f"{name}.yaml").read_text())
    cfg.update(overrides)
    return cfg


def test_burgers_forced_protocol():
    pde = preset("burgers_forced", solve_resolution=64, resolution=16, frames=12, final_time=0.5)
    p = build_protocol(pde, "train", 3)
    real = build_protocol(preset("burgers_forced"), "train")
    assert (real.num_trajectories, real.frames, real.keep, real.resolution) == (2048, 250, 250, 100)
    assert real.solve_resolution == 1024 and real.cond_keys == ("dt", "dx", "nu")
    with x64(True):
        u, params, t = make_batch_solver(p, split_seed("burgers_forced", "train", 0))(
            np.arange(3))
    assert u.shape == (3, 12, 1, 16) and np.isfinite(u).all()
    assert np.all((params["nu"] >= 0.05) & (params["nu"] <= 0.2))
    np.testing.assert_allclose(params["dt"], 0.5 / 11)
    np.testing.assert_allclose(t[0], np.arange(12) * 0.5 / 11)
    assert params["forcing_amplitude"].shape == (3, 5)
    assert np.isin(params["forcing_wavenumber"], [1.0, 2.0, 3.0]).all()
    assert np.abs(params["forcing_omega"]).max() <= 0.4
    assert np.abs(params["forcing_amplitude"]).max() <= 0.5
    # u0 = delta(0, x): the stored first frame is the forcing at t = 0 on the solve grid,
    # spectrally truncated to the stored grid
    with jax.enable_x64(True):
        x = jnp.arange(64) * 16.0 / 64
        for i in range(3):
            f = SineForcing(params["forcing_amplitude"][i], params["forcing_omega"][i],
                            params["forcing_wavenumber"][i], params["forcing_phase"][i], 16.0)
            ref = np.asarray(resample(f(0.0, x), 16, 1))
            np.testing.assert_allclose(u[i, 0, 0], ref, atol=1e-6)
    assert not np.allclose(u[:, -1], u[:, 0])  # it evolved


@pytest.mark.slow
@pytest.mark.parametrize("name, overrides, shape", [
    ("ns2d_kolmogorov", dict(solve_resolution=32, resolution=16, final_time=1.0, warmup=0.5),
     (6, 1, 16, 16)),
    ("ns2d_fno", dict(solve_resolution=32, resolution=16, final_time=3.0), (4, 1, 16, 16)),
    ("burgers_fno", dict(solve_resolution=256, resolution=64, frames=5, final_time=0.04),
     (5, 1, 64)),
])
def test_other_presets_solve(name, overrides, shape):
    p = build_protocol(preset(name, **overrides), "train", 2)
    with x64(True):
        u, params, t = make_batch_solver(p, split_seed(name, "train", 0))(np.arange(2))
    assert u.shape == (2, *shape) and np.isfinite(u).all()
    assert params["dt"][0] == pytest.approx(t[0, 1] - t[0, 0])
    if p.spatial_dims == 2:  # the vorticity mean is conserved (zero for these ICs)
        assert np.abs(u.mean(axis=(-1, -2))).max() < 1e-5 * np.abs(u).max()


def test_ns_preset_numbers():
    k = build_protocol(preset("ns2d_kolmogorov"), "train")
    assert (k.frames, k.keep, k.burn_in, k.resolution, k.solve_resolution) == (301, 201, 100, 64,
                                                                               512)
    # CFL 0.5 at max speed 7 on a 512^2 grid of [0, 2 pi): dt <= 8.8e-4, frames every 0.1
    dt = 0.1 / k.inner_steps
    assert 7 * dt / (2 * np.pi / 512) <= 0.5 < 7 * (0.1 / (k.inner_steps - 1)) / (2 * np.pi / 512)
    f = build_protocol(preset("ns2d_fno"), "test")
    assert (f.frames, f.keep, f.num_trajectories) == (51, 51, 200)
    b = build_protocol(preset("burgers_fno"), "train")
    assert (b.frames, b.resolution, b.solve_resolution, b.num_trajectories) == (101, 1024, 8192,
                                                                                1000)
