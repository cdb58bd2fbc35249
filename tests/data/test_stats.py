"""Normalisation statistics against numpy computed by hand."""

import h5py
import numpy as np
import pytest

from pdekit.data import NormStats, compute_stats, open_trajectories, read_stats


def test_stored_stats_equal_numpy(ks_file):
    with h5py.File(ks_file, "r") as f:
        u = f["u"][()].astype(np.float64)
        stats = read_stats(f, spatial_dims=1)
    d = u[:, 4:] - u[:, :-4]  # model stride of the ks preset
    assert stats.diff_stride == 4
    np.testing.assert_allclose(stats.mean, [u.mean()], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats.std, [u.std()], rtol=1e-9)
    np.testing.assert_allclose(stats.diff_mean, [d.mean()], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(stats.diff_std, [d.std()], rtol=1e-9)


@pytest.mark.parametrize("block", [1, 2, None])
def test_streaming_two_channel_stats(block):
    rng = np.random.default_rng(3)
    u = rng.normal(size=(5, 7, 2, 3, 4)) * np.array([1.0, 10.0])[None, None, :, None, None]
    u[:, :, 1] += 100.0  # large offset: catastrophic cancellation would show
    s = compute_stats(u, spatial_dims=2, diff_stride=2, trajectories_per_block=block)
    for c in range(2):
        x = u[:, :, c]
        dx = u[:, 2:, c] - u[:, :-2, c]
        assert s.mean[c] == pytest.approx(x.mean(), rel=1e-12)
        assert s.std[c] == pytest.approx(x.std(), rel=1e-12)
        assert s.diff_mean[c] == pytest.approx(dx.mean(), rel=1e-9, abs=1e-12)
        assert s.diff_std[c] == pytest.approx(dx.std(), rel=1e-12)


def test_normalize_roundtrip_and_dict():
    s = NormStats(mean=[1.0, -2.0], std=[2.0, 0.5], diff_mean=[0.1, 0.0], diff_std=[4.0, 0.0],
                  spatial_dims=1)
    u = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)  # (T, C, X)
    n = s.normalize(u)
    assert n.dtype == np.float32
    np.testing.assert_allclose(n[:, 0], (u[:, 0] - 1.0) / 2.0)
    np.testing.assert_allclose(n[:, 1], (u[:, 1] + 2.0) / 0.5)
    np.testing.assert_allclose(s.denormalize(n), u, rtol=1e-6)
    nd = s.normalize_diff(u)
    np.testing.assert_allclose(nd[:, 0], (u[:, 0] - 0.1) / 4.0, rtol=1e-6)
    np.testing.assert_allclose(nd[:, 1], u[:, 1])  # zero std: divided by 1, not by 0
    np.testing.assert_allclose(s.denormalize_diff(nd), u, rtol=1e-6)
    back = NormStats.from_dict(s.to_dict())
    for k in ("mean", "std", "diff_mean", "diff_std"):
        np.testing.assert_array_equal(getattr(back, k), getattr(s, k))
    with pytest.raises(ValueError, match="lack diff_std"):
        NormStats.from_dict({"mean": [0], "std": [1], "diff_mean": [0]})


def test_pdearena_sidecar_uses_train_split(pdearena_file):
    path, arrays = pdearena_file
    from pdekit.data import load_stats

    with open_trajectories(path, split="valid") as tr:
        s = load_stats(tr, diff_stride=2)
    train = arrays["train"]["pde_12-16"].astype(np.float64)
    d = train[:, 2:] - train[:, :-2]
    np.testing.assert_allclose(s.mean, [train.mean()], rtol=1e-9)
    np.testing.assert_allclose(s.std, [train.std()], rtol=1e-9)
    np.testing.assert_allclose(s.diff_std, [d.std()], rtol=1e-9)
    side = path.with_name(path.name + ".stats.json")
    assert side.exists()
    import json

    data = json.loads(side.read_text())
    assert data["source_split"] == "train" and "2" in data["diff"]
    # second use reads the sidecar (corrupt the data to prove it is not recomputed)
    with h5py.File(path, "r+") as f:
        f["train/pde_12-16"][...] = 0.0
    with open_trajectories(path, split="train") as tr:
        again = load_stats(tr, diff_stride=2)
    np.testing.assert_array_equal(again.mean, s.mean)
