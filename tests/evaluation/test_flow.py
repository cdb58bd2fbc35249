"""2D flow diagnostics against closed forms and an independent velocity computation.

omega = cos(k K x) cos(m K y) on [0, L)^2 (k, m integer mode numbers, K = 2 pi / L):
<omega^2> = 1/4, so Z = 1/8; psi = omega / ((k^2 + m^2) K^2) and <|grad psi|^2> =
(k^2 + m^2) K^2 <psi^2>, so E = 1 / (8 (k^2 + m^2) K^2).
"""

import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.evaluation import compute_metrics, summarize_metrics
from pdekit.evaluation.flow import (
    FlowFields,
    enstrophy,
    field_names,
    flow_fields,
    invariants,
    kinetic_energy,
    velocity_from_vorticity,
    vorticity_from_velocity,
)
from pdekit.evaluation.report import render_markdown


def _grid(n, L):
    x = np.arange(n) * L / n
    return np.meshgrid(x, x, indexing="ij")  # [x, y]


@pytest.mark.parametrize("k,m,L", [(1, 1, 2 * np.pi), (3, 2, 1.0), (4, 0, 2 * np.pi)])
def test_enstrophy_and_energy_of_cos_cos(k, m, L):
    X, Y = _grid(32, L)
    K = 2 * np.pi / L
    omega = np.cos(k * K * X) * np.cos(m * K * Y)
    z_want = 0.125 if m else 0.25  # cos(kx) alone: <omega^2> = 1/2
    e_want = z_want / ((k * k + m * m) * K * K)
    assert float(enstrophy(jnp.asarray(omega))) == pytest.approx(z_want, rel=1e-5)
    assert float(kinetic_energy(jnp.asarray(omega), L)) == pytest.approx(e_want, rel=1e-5)


def test_energy_via_psi_equals_the_analytic_velocity():
    """psi = sin(2x) cos(3y) + 0.5 cos(x + y): u = psi_y, v = -psi_x in closed form; the
    spectral energy of omega = -Lap psi equals 1/2 <u^2 + v^2> of those fields on the grid."""
    X, Y = _grid(32, 2 * np.pi)
    psi_u = -3 * np.sin(2 * X) * np.sin(3 * Y) - 0.5 * np.sin(X + Y)  # psi_y
    psi_v = -(2 * np.cos(2 * X) * np.cos(3 * Y) - 0.5 * np.sin(X + Y))  # -psi_x
    omega = 13 * np.sin(2 * X) * np.cos(3 * Y) + 2 * 0.5 * np.cos(X + Y)  # -Lap psi
    direct = 0.5 * np.mean(psi_u**2 + psi_v**2)
    assert float(kinetic_energy(jnp.asarray(omega))) == pytest.approx(direct, rel=1e-5)
    u, v = velocity_from_vorticity(jnp.asarray(omega))
    np.testing.assert_allclose(u, psi_u, atol=1e-5)
    np.testing.assert_allclose(v, psi_v, atol=1e-5)
    np.testing.assert_allclose(vorticity_from_velocity(jnp.asarray(psi_u), jnp.asarray(psi_v)),
                               omega, atol=1e-4)


def test_flow_fields_from_the_file_attribute():
    assert field_names(np.array([b"vorticity"])) == ("vorticity",)
    assert flow_fields(field_names(np.array(["vorticity"])), 2) == FlowFields("vorticity", (0,))
    assert flow_fields(("smoke", "vx", "vy"), 2) == FlowFields("velocity", (1, 2))
    assert flow_fields(("u", "v"), 2) == FlowFields("velocity", (0, 1))
    assert flow_fields(("vorticity",), 1) is None and flow_fields(("u",), 2) is None
    assert flow_fields(None, 2) is None


def test_ratios_in_metrics_summary_and_report():
    """pred = a * ref scales both invariants by a^2 (through compute_metrics, the summary and
    the markdown); a velocity-channel file gives the invariants of the vorticity it holds."""
    rng = np.random.default_rng(0)
    X, Y = _grid(16, 2 * np.pi)
    base = np.cos(2 * X) * np.sin(Y) + 0.3 * np.sin(3 * X + Y)
    amp = 1.0 + 0.1 * rng.standard_normal((3, 7))  # (B, T'): trajectories, frames
    omega = (amp[:, :, None, None, None] * base).astype(np.float32)  # (3, 7, 1, 16, 16)
    direct = invariants(jnp.asarray(2.0 * omega[:, 1:]), jnp.asarray(omega[:, 1:]),
                        FlowFields("vorticity", (0,)), jnp.full(3, 2 * np.pi))
    np.testing.assert_allclose(direct["enstrophy_ratio"], 4.0, rtol=1e-5)
    np.testing.assert_allclose(direct["energy_ratio"], 4.0, rtol=1e-5)
    # the same flow stored as velocity (u = psi_y, v = -psi_x of each frame), as a "smoke"
    # file would hold it
    u, v = velocity_from_vorticity(jnp.asarray(omega[:, :, 0]))
    vel = np.stack([np.zeros_like(u), np.asarray(u), np.asarray(v)], axis=2)
    fields = flow_fields(("smoke", "vx", "vy"), 2)
    raw = compute_metrics(2.0 * vel[:, 1:], vel, np.full(3, 0.1), history=1, spatial_dims=2,
                          flow=fields)
    for key in ("enstrophy_ref", "energy_ref", "energy_ratio"):
        np.testing.assert_allclose(raw["invariants"][key], direct[key], rtol=1e-4)
    summary = summarize_metrics(raw, np.full(3, 0.1), rollout_steps=6, bootstrap_resamples=20)
    summary["timing"] = {"rollout_wall_s": 0.0}
    inv = summary["invariants"]
    assert inv["field"].startswith("vorticity from the stored velocity")
    assert len(inv["curves"]["time"]) == 6
    assert inv["at_steps"]["6"]["energy_ratio"]["mean"] == pytest.approx(4.0, rel=1e-4)
    z_ref = 0.5 * np.mean(omega[:, 1:, 0] ** 2, axis=(-2, -1)).mean(axis=0)
    np.testing.assert_allclose(inv["curves"]["enstrophy_ref"]["mean"], z_ref, rtol=1e-4)
    report = {"title": "t", "split": "test", "data": "x.h5", "num_trajectories": 3,
              "dt": summary["dt"], "rollout_steps": 6, "compared_steps": 6,
              "entries": {"m": summary}}
    md = render_markdown(report)
    assert "## Enstrophy and energy" in md and "4 [4, 4]" in md


def test_eval_data_reads_the_fields_attribute(tmp_path):
    """load_eval_data takes the channel names from the file: NS2D files say "vorticity"."""
    import h5py

    from pdekit.data import NormStats
    from pdekit.evaluation.runner import load_eval_data

    n, frames, nx = 2, 5, 8
    path = tmp_path / "ns.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(pde="ns2d_kolmogorov", dt=0.1, spatial_dims=2, schema_version=1,
                       config="{}", created_by="tests", complete=True, completed_trajectories=n,
                       fields=np.array(["vorticity"], dtype=h5py.string_dtype()))
        f["u"] = np.random.default_rng(0).standard_normal((n, frames, 1, nx, nx)).astype(np.float32)
        f["t"] = np.arange(frames) * 0.1
        f["x"] = f["y"] = np.arange(nx) * 2 * np.pi / nx
        for k, v in (("dt", 0.1), ("dx", 2 * np.pi / nx), ("L", 3.0)):
            f[f"params/{k}"] = np.full(n, v)
    data = load_eval_data(path, stats=NormStats.identity(1, 2), history=1, future=1, stride=1,
                          cond_keys=["dt", "dx"])
    assert data.fields == ("vorticity",)
    assert data.flow == FlowFields("vorticity", (0,))
    np.testing.assert_array_equal(data.domain_length, [3.0, 3.0])
