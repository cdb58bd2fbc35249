"""The numerical baseline re-solves the data's own equation, scheme and clock (float64).

Tiny files come from the real generator (`generate_dataset`) with `precision=float64` and the
solve grid equal to the stored grid, so the stored frames are the solver's own states: a
re-solve with the file's settings must reproduce them to round-off, and other settings must not.
"""

import json

import jax
import numpy as np
import pytest
import yaml

from pdekit.configs import package_dir
from pdekit.data import generate_dataset, open_trajectories
from pdekit.evaluation.baseline import read_solver_spec, run_baseline, solver_spec
from pdekit.solvers import stepper_for, trajectory


def _generate(tmp_path_factory, name: str, **overrides):
    pde = yaml.safe_load((package_dir() / "pde" / f"{name}.yaml").read_text())
    pde.update(overrides)
    out = tmp_path_factory.mktemp(name) / "test.h5"
    generate_dataset(dict(pde=pde, split="test", num_trajectories=2, output=str(out), seed=0,
                          batch_size=2, overwrite=False, precision="float64",
                          solve_precision="float64"), progress=False)
    return out


@pytest.fixture(scope="module")
def burgers_file(tmp_path_factory):
    """Forced Burgers at N = 32 with a non-default scheme (ETDRK3, no dealiasing), 9 frames."""
    return _generate(tmp_path_factory, "burgers_forced", solve_resolution=32, resolution=32,
                     frames=9, final_time=0.4, inner_steps=2, order=3, dealias=False)


@pytest.fixture(scope="module")
def ns2d_file(tmp_path_factory):
    """Kolmogorov flow at 32², 6 frames every 0.1 (8 steps per frame from the CFL bound)."""
    return _generate(tmp_path_factory, "ns2d_kolmogorov", solve_resolution=32, resolution=32,
                     final_time=0.5, warmup=0.0)


def _read(path):
    with open_trajectories(path) as tr:
        t = np.asarray(tr.t[()])
        t = t if t.ndim == 2 else np.broadcast_to(t, (tr.num_trajectories, t.size))
        return np.asarray(tr.u[()]), dict(tr.params), t, dict(tr.attrs)


def _rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_catalogue_rebuilds_the_generators_stepper(burgers_file):
    u, params, t, attrs = _read(burgers_file)
    assert (attrs["equation"], attrs["order"], bool(attrs["dealias"])) == ("burgers", 3, False)
    assert json.loads(attrs["forcing"])["terms"] == 5
    n, inner = int(attrs["solve_resolution"]), int(attrs["inner_steps"])

    def resolve(order: int, dealias: bool):
        def one(row, u0, t0):
            stepper = stepper_for(attrs["equation"], row, resolution=n, dt=row["dt"] / inner,
                                  order=order, dealias=dealias)
            return trajectory(stepper, u0, u.shape[1], inner_steps=inner, t0=t0)

        return np.asarray(jax.jit(jax.vmap(one))(params, u[:, 0, 0], t[:, 0]))

    with jax.enable_x64(True):
        own = resolve(int(attrs["order"]), bool(attrs["dealias"]))
        default = resolve(4, True)  # what a rebuild ignoring the attributes would solve
    assert np.abs(u[:, -1] - u[:, 0]).max() > 0.1  # the field moved
    assert _rel(own, u[:, :, 0]) < 1e-12  # measured 3e-16
    assert _rel(default, u[:, :, 0]) > 1e-4  # measured 4e-3


def test_old_files_fall_back_to_the_config(burgers_file):
    *_, attrs = _read(burgers_file)
    spec = solver_spec(attrs)
    assert (spec.equation, spec.order, spec.dealias) == ("burgers", 3, False)
    old = {k: v for k, v in attrs.items() if k not in ("equation", "order", "dealias", "forcing")}
    assert solver_spec(old) == spec  # from the config attribute
    assert solver_spec({"pde": "ks", "config": "{}"}) == solver_spec({"pde": "pdearena"})
    assert (solver_spec({"pde": "ks"}).order, solver_spec({"pde": "ks"}).dealias) == (4, True)
    assert solver_spec({"pde": "x", "config": "pde: {equation: ns2d, order: 2}"}).order == 2
    with pytest.raises(ValueError, match=r"^f\.h5: cannot tell which equation .*baseline\.pde="):
        solver_spec({"pde": "ks_conditional", "config": "{}"}, where="f.h5")
    with pytest.raises(ValueError, match="unknown equation 'kdv'"):
        solver_spec(attrs, equation="kdv")


def test_forced_burgers_baseline_uses_the_files_scheme_and_clock(burgers_file):
    u, params, t, _ = _read(burgers_file)
    spec = read_solver_spec(burgers_file)
    assert (spec.equation, spec.order, spec.dealias) == ("burgers", 3, False)
    with jax.enable_x64(True):
        out, info = run_baseline(spec, u[:, 2], params, params["dt"], 5, resolution=32,
                                 inner_steps=2, t0=t[:, 2])
        early, _ = run_baseline(spec, u[:, 2], params, params["dt"], 5, resolution=32,
                                inner_steps=2, t0=np.zeros(2))
    assert out.shape == (2, 5, 1, 32) and out.dtype == np.float64
    assert (info["equation"], info["order"], info["dealias"]) == ("burgers", 3, False)
    assert _rel(out, u[:, 3:8]) < 1e-12  # measured 3e-16 (ETDRK4 instead: 2e-6)
    assert _rel(early, u[:, 3:8]) > 1e-3  # the forcing clock starts at t0 (measured 6e-3)


def test_ns2d_baseline_reproduces_the_data_at_its_resolution(ns2d_file):
    u, params, t, attrs = _read(ns2d_file)
    assert u.shape == (2, 6, 1, 32, 32) and int(attrs["stride"]) == 1
    inner = int(attrs["inner_steps"])  # the data's own solver steps per model step
    assert inner == 8  # from the CFL bound 0.5 at max speed 7
    spec = read_solver_spec(ns2d_file)
    assert json.loads(spec.forcing) == {"type": "kolmogorov", "wavenumber": 4, "amplitude": 1.0}
    with jax.enable_x64(True):
        own, info = run_baseline(spec, u[:, 1], params, params["dt"], 4, resolution=32,
                                 inner_steps=inner, t0=t[:, 1])
        coarse, _ = run_baseline(spec, u[:, 1], params, params["dt"], 4, resolution=16,
                                 inner_steps=inner, t0=t[:, 1])
    assert own.shape == (2, 4, 1, 32, 32) and info["equation"] == "ns2d"
    assert _rel(u[:, 5], u[:, 1]) > 0.05  # the flow evolved
    assert _rel(own, u[:, 2:]) < 1e-12  # measured 6e-16
    assert _rel(coarse, u[:, 2:]) > 0.1  # measured 0.66


def test_baseline_refuses_what_it_cannot_solve():
    with pytest.raises(ValueError, match="no numerical baseline for pde 'ks_conditional'"):
        run_baseline("ks_conditional", np.zeros((1, 1, 16)), {"L": [1.0]}, [0.1], 2,
                     resolution=16)
    with pytest.raises(ValueError, match=r"ns2d baseline needs 1-channel 2D states"):
        run_baseline("ns2d", np.zeros((1, 1, 16)), {"L": [1.0], "nu": [0.1]}, [0.1], 2,
                     resolution=16)
    with pytest.raises(ValueError, match="needs the per-trajectory parameter 'nu'"):
        run_baseline("burgers", np.zeros((1, 1, 16)), {"L": [1.0]}, [0.1], 2, resolution=16)
    with pytest.raises(ValueError, match=r"params\['L'\] must have one row per state \(2\)"):
        run_baseline("ks", np.zeros((2, 1, 16)), {"L": [1.0]}, [0.1], 2, resolution=16)
