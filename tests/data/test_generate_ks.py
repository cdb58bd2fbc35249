"""Generated KS files: schema, the PDE-Refiner frame protocol, an independent solve, resume."""

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import yaml
from pdekit_datafixtures import CONFIGS, ks_preset, tiny_ks_config

from pdekit.data import (
    SCHEMA_VERSION,
    build_protocol,
    generate_dataset,
    open_trajectories,
    split_seed,
    trajectory_key,
)
from pdekit.solvers import KuramotoSivashinsky, resample, sine_sum, trajectory


def test_real_ks_preset_bookkeeping():
    """The shipped preset encodes the PDE-Refiner numbers (nothing is solved here)."""
    pde = ks_preset()
    tr = build_protocol(pde, "train")
    assert (tr.num_trajectories, tr.frames, tr.keep, tr.burn_in) == (2048, 500, 140, 360)
    assert tr.stored_shape == (140, 1, 256) and tr.solve_resolution == 256
    assert tr.inner_steps == 4 and tr.stride == 4 and tr.cond_keys == ("dt", "dx")
    assert tr.final_time == (90.0, 110.0)
    assert 0.9 * 100 / 499 < 0.2 < 1.1 * 100 / 499  # dt_save ~ 0.2
    for split in ("valid", "test"):
        p = build_protocol(pde, split)
        assert (p.num_trajectories, p.frames, p.keep) == (128, 1000, 640)
        assert p.final_time == (180.0, 220.0)  # same dt rule: T / 999 ~ 0.2
    cond = build_protocol(yaml.safe_load((CONFIGS / "pde" / "ks_conditional.yaml").read_text()),
                          "train")
    assert cond.options["nu"] == [0.5, 1.5] and cond.cond_keys == ("dt", "dx", "nu")


def test_schema_complete(ks_file):
    with h5py.File(ks_file, "r") as f:
        for attr in ("pde", "dt", "spatial_dims", "schema_version", "config", "created_by"):
            assert attr in f.attrs, attr
        assert f.attrs["pde"] == "ks" and f.attrs["spatial_dims"] == 1
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        assert f.attrs["created_by"].startswith("pdekit ")
        assert f.attrs["complete"] and f.attrs["completed_trajectories"] == 5
        cfg = yaml.safe_load(f.attrs["config"])
        assert cfg["pde"]["name"] == "ks" and cfg["split"] == "train"
        u = f["u"]
        assert u.shape == (5, 140, 1, 32) and u.dtype == np.float32
        assert u.chunks == (1, 140, 1, 32)  # one trajectory per chunk
        assert f["t"].shape == (5, 140) and f["x"].shape == (5, 32)
        assert set(f["params"]) == {"L", "nu", "dx", "dt", "final_time"}
        assert all(f["params"][k].shape == (5,) for k in f["params"])
        assert set(f["stats"]) == {"mean", "std", "diff_mean", "diff_std"}
        assert f.attrs["dt"] == pytest.approx(f["params/dt"][()].mean())
        assert np.isfinite(u[()]).all()


def test_ks_protocol_numbers(ks_file):
    with open_trajectories(ks_file) as tr:
        p = tr.params
        T = p["final_time"]
        assert np.all((T >= 90) & (T <= 110))
        np.testing.assert_allclose(p["dt"], T / 499, rtol=1e-12)
        assert np.all((p["dt"] > 0.18) & (p["dt"] < 0.221))
        assert np.all((p["L"] >= 57.6) & (p["L"] <= 70.4)) and np.ptp(p["L"]) > 0
        np.testing.assert_allclose(p["dx"], p["L"] / 32, rtol=1e-12)
        np.testing.assert_array_equal(p["nu"], 1.0)
        t = tr.t[()]
        np.testing.assert_allclose(t[:, 0], 360 * p["dt"], rtol=1e-12)  # burn-in dropped
        np.testing.assert_allclose(t[:, -1], T, rtol=1e-12)  # last frame at T
        np.testing.assert_allclose(tr.coords["x"][()], np.arange(32) * p["L"][:, None] / 32)
        assert tr.attrs["split_seed"] == split_seed("ks", "train", 0)


def test_kept_frames_match_an_independent_solve(ks_file):
    """Trajectory 3 (second batch) equals frames 360..499 of a plain 500-frame rollout."""
    with open_trajectories(ks_file) as tr:
        u = tr.u[3, :, 0]
        L, dt = tr.params["L"][3], tr.params["dt"][3]
    with jax.enable_x64(True):
        key = jax.random.split(trajectory_key(split_seed("ks", "train", 0), 3), 8)
        u0 = sine_sum(key[3], resolution=64, L=jnp.float64(L), num_terms=10, amplitude=0.5,
                      wavenumbers=(1, 2))
        ks = KuramotoSivashinsky(L=L, resolution=64, dt=dt / 4, nu=1.0)
        ref = resample(trajectory(ks, u0, 500, inner_steps=4)[360:], 32, 1)
    ref = np.asarray(ref)
    assert np.abs(ref).max() > 0.5  # a developed chaotic state, not a decayed one
    np.testing.assert_allclose(u, ref, atol=2e-5 * np.abs(ref).max(), rtol=0)


def test_resume_after_interruption_gives_identical_bytes(ks_file, tmp_path):
    out = tmp_path / "resumed.h5"
    tmp = tmp_path / "resumed.h5.tmp"

    class Killed(Exception):
        pass

    def kill(done):
        raise Killed(done)

    with pytest.raises(Killed):
        generate_dataset(tiny_ks_config(out), on_batch=kill)
    assert not out.exists() and tmp.exists()
    with h5py.File(tmp, "r") as f:
        assert f.attrs["completed_trajectories"] == 2 and not f.attrs["complete"]
    with pytest.raises(ValueError, match="unfinished file \\(2 of 5"):
        open_trajectories(tmp)
    with pytest.raises(ValueError, match="different configuration"):
        generate_dataset(tiny_ks_config(out, seed=1))
    seen = []
    generate_dataset(tiny_ks_config(out), on_batch=seen.append)
    assert seen == [4, 5]  # the first batch was not solved again
    assert not tmp.exists()
    with h5py.File(out, "r") as a, h5py.File(ks_file, "r") as b:
        assert a["u"][()].tobytes() == b["u"][()].tobytes()
        for k in b["params"]:
            np.testing.assert_array_equal(a["params"][k][()], b["params"][k][()])


def test_existing_output_is_refused(ks_file):
    before = ks_file.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=true"):
        generate_dataset(tiny_ks_config(ks_file))
    assert ks_file.read_bytes() == before


def test_split_seeds_are_distinct():
    names = ["ks", "ks_conditional", "burgers_fno", "burgers_forced", "ns2d_kolmogorov",
             "ns2d_fno"]
    seeds = {(n, s, k): split_seed(n, s, k) for n in names for s in ("train", "valid", "test")
             for k in range(20)}
    assert len(set(seeds.values())) == len(seeds)
    assert split_seed("ks", "train", 0) == split_seed("ks", "train", 0)
    assert all(0 <= s < 2**31 for s in seeds.values())


@pytest.mark.parametrize("override, message", [
    ({"split": "bogus"}, "split 'bogus' is not defined"),
    ({"num_trajectories": 0}, "num_trajectories must be >= 1"),
    ({"precision": "float16"}, "precision='float16' is not supported"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
])
def test_bad_settings_fail_before_writing(tmp_path, override, message):
    out = tmp_path / "bad.h5"
    with pytest.raises(ValueError, match=message):
        generate_dataset(tiny_ks_config(out, **override))
    assert list(tmp_path.iterdir()) == []


def test_impossible_preset_numbers():
    pde = ks_preset()
    pde["splits"]["train"]["keep"] = 600
    with pytest.raises(ValueError, match="keep=600 frames is impossible with frames=500"):
        build_protocol(pde, "train")
    pde = ks_preset()
    pde["resolution"] = 512
    with pytest.raises(ValueError, match="exceeds pde.solve_resolution"):
        build_protocol(pde, "train")
    pde = ks_preset()
    pde["domain_length"] = [70.0, 60.0]
    with pytest.raises(ValueError, match="low 70.0 is larger than high 60.0"):
        build_protocol(pde, "train")
