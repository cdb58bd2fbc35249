"""WindowDataset: window contents, sampling determinism, streaming and process sharding."""

import h5py
import numpy as np
import pytest

from pdekit.data import WindowDataset


@pytest.fixture(scope="module")
def raw(ks_file):
    with h5py.File(ks_file, "r") as f:
        return f["u"][()], f["params/dt"][()], f["params/dx"][()]


def test_windows_equal_file_slices(ks_file, raw):
    u, dt, dx = raw
    ds = WindowDataset(ks_file, history=2, future=3, stride=4)
    span = (2 + 3 - 1) * 4 + 1
    assert ds.starts_per_trajectory == 140 - span + 1 == 124
    assert ds.num_windows == 5 * 124 and ds.num_cond == 2 and ds.channels == 1
    np.testing.assert_allclose(ds.model_dt, 4 * dt)
    mean, std = ds.stats.mean[0], ds.stats.std[0]
    # window 129 = trajectory 1, start 5: inputs frames 5, 9; targets 13, 17, 21
    b = ds.batch_of(np.array([129]))
    np.testing.assert_allclose(b["u_in"][0], (u[1, [5, 9]] - mean) / std, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b["u_out"][0], (u[1, [13, 17, 21]] - mean) / std, rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(b["cond"][0], [4 * dt[1], dx[1]], rtol=1e-6)
    batch = ds.sample_batch(3, 16, seed=7)
    assert batch["u_in"].shape == (16, 2, 1, 32) and batch["u_out"].shape == (16, 3, 1, 32)
    assert batch["cond"].shape == (16, 2) and batch["u_in"].dtype == np.float32
    traj, start = ds.window_index(ds.batch_windows(3, 16, seed=7))
    for j in range(16):
        frames = start[j] + 4 * np.arange(5)
        ref = ((u[traj[j], frames] - mean) / std).astype(np.float32)
        np.testing.assert_allclose(batch["u_in"][j], ref[:2], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batch["u_out"][j], ref[2:], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(batch["cond"][j], [4 * dt[traj[j]], dx[traj[j]]], rtol=1e-6)


def test_epochs_cover_every_window_once(ks_file):
    ds = WindowDataset(ks_file, history=1, future=1, stride=4)
    spe = ds.steps_per_epoch(64)
    assert spe == ds.num_windows // 64
    epoch0 = np.concatenate([ds.batch_windows(s, 64, seed=1) for s in range(spe)])
    assert len(np.unique(epoch0)) == spe * 64
    epoch1 = ds.batch_windows(spe, 64, seed=1)
    assert not np.array_equal(epoch1, epoch0[:64])  # a fresh permutation per epoch
    np.testing.assert_array_equal(ds.batch_windows(5, 64, seed=1), epoch0[5 * 64 : 6 * 64])
    assert not np.array_equal(ds.batch_windows(0, 64, seed=2), epoch0[:64])


def test_in_memory_equals_streaming(ks_file):
    kw = dict(history=2, future=2, stride=3, cond_keys=("dt", "dx", "nu", "L"))
    mem = WindowDataset(ks_file, **kw)
    disk = WindowDataset(ks_file, ram_budget_bytes=0, **kw)
    assert mem.in_memory and not disk.in_memory
    for step in (0, 1, 17):
        a, b = mem.sample_batch(step, 32, seed=3), disk.sample_batch(step, 32, seed=3)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    for a, b in zip(mem.iter_eval(100), disk.iter_eval(100), strict=True):
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])
    ua, ca = mem.full_trajectories([4, 0])
    ub, cb = disk.full_trajectories([4, 0])
    np.testing.assert_array_equal(ua, ub)
    np.testing.assert_array_equal(ca, cb)


def test_process_shards_concatenate_to_global_batch(ks_file):
    ds = WindowDataset(ks_file, history=1, future=2, stride=4, ram_budget_bytes=0)
    whole = ds.sample_batch(4, 16, seed=0)
    parts = [ds.sample_batch(4, 16, seed=0, process_index=i, process_count=2) for i in range(2)]
    for k in whole:
        assert parts[0][k].shape[0] == 8
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), whole[k])
    with pytest.raises(ValueError, match="not divisible by process_count=3"):
        ds.sample_batch(0, 16, seed=0, process_index=0, process_count=3)


def test_iter_eval_and_full_trajectories(ks_file, raw):
    u = raw[0]
    ds = WindowDataset(ks_file, history=1, future=1, stride=4)
    batches = list(ds.iter_eval(128))
    assert sum(len(b["u_in"]) for b in batches) == ds.num_windows == 5 * 136
    assert [len(b["u_in"]) for b in batches][-1] == ds.num_windows - 128 * (len(batches) - 1)
    first = ds.batch_of(np.arange(128))
    np.testing.assert_array_equal(batches[0]["u_out"], first["u_out"])
    # window 136 is trajectory 1, start 0
    np.testing.assert_allclose(batches[1]["u_in"][136 - 128, 0],
                               ds.stats.normalize(u[1, 0].astype(np.float32)), rtol=1e-6)
    full, cond = ds.full_trajectories([2])
    assert full.shape == (1, 35, 1, 32) and cond.shape == (1, 2)
    np.testing.assert_allclose(full[0], ds.stats.normalize(u[2, ::4]), rtol=1e-5, atol=1e-6)


def test_window_errors(ks_file):
    with pytest.raises(ValueError, match="spans 141 frames.*only 140"):
        WindowDataset(ks_file, history=10, future=26, stride=4)
    with pytest.raises(ValueError, match="cond key 'beta' is not a per-trajectory scalar"):
        WindowDataset(ks_file, history=1, future=1, cond_keys=("dt", "beta"))
    with pytest.raises(ValueError, match="history must be >= 1"):
        WindowDataset(ks_file, history=0, future=1)
    ds = WindowDataset(ks_file, history=1, future=1)
    with pytest.raises(ValueError, match="batch_size=100000 must be in 1.."):
        ds.sample_batch(0, 100000, seed=0)


def test_pdearena_windows(pdearena_file):
    path, arrays = pdearena_file
    ds = WindowDataset(path, split="valid", history=2, future=1, stride=2,
                       cond_keys=("dt", "dx", "nu"), ram_budget_bytes=0)
    data = arrays["valid"]["pde_12-16"]
    assert ds.num_windows == 3 * (12 - 4)
    b = ds.batch_of(np.array([9]))  # trajectory 1, start 1
    ref = ds.stats.normalize(data[1, [1, 3, 5]][:, None].astype(np.float32))
    np.testing.assert_array_equal(b["u_in"][0], ref[:2])
    np.testing.assert_array_equal(b["u_out"][0], ref[2:])
    np.testing.assert_allclose(b["cond"][0], [2 * arrays["valid"]["dt"][1],
                                              arrays["valid"]["dx"][1], arrays["valid"]["v"][1]],
                               rtol=1e-6)
