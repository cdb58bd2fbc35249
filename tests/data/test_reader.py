"""Opening files: PDEArena layout, and clear errors for corrupt / truncated / foreign files."""

import h5py
import numpy as np
import pytest

from pdekit.data import ChannelView, open_trajectories


def test_pdearena_reader(pdearena_file):
    path, arrays = pdearena_file
    for split, n in (("train", 6), ("valid", 3)):
        a = arrays[split]
        with open_trajectories(path, split=split) as tr:
            assert tr.format == "pdearena" and tr.split == split
            assert tr.u.shape == (n, 12, 1, 16)
            assert (tr.num_trajectories, tr.num_frames, tr.channels) == (n, 12, 1)
            assert tr.spatial_shape == (16,) and tr.spatial_dims == 1
            np.testing.assert_array_equal(np.asarray(tr.u), a["pde_12-16"][:, :, None])
            np.testing.assert_array_equal(tr.dt, a["dt"])
            np.testing.assert_array_equal(tr.params["dx"], a["dx"])
            np.testing.assert_array_equal(tr.params["nu"], a["v"])
            np.testing.assert_allclose(tr.params["L"], a["dx"] * 16)
            np.testing.assert_array_equal(tr.t[()], a["t"])


def test_channel_view_indexing():
    data = np.arange(4 * 5 * 6).reshape(4, 5, 6).astype(np.float32)
    view, ref = ChannelView(data), data[:, :, None]
    for key in [(1,), (slice(1, 3),), (2, slice(1, 4)), (1, 3), (slice(None), 2, 0),
                (0, slice(0, 5, 2), slice(None), slice(1, 3)), (np.array([0, 2]),)]:
        np.testing.assert_array_equal(view[key], ref[key], err_msg=str(key))
    assert view.shape == (4, 5, 1, 6) and len(view) == 4


def test_pdearena_split_required_and_schema(tmp_path, pdearena_file):
    path, _ = pdearena_file
    with pytest.raises(ValueError, match="holds splits train, valid; pass split="):
        open_trajectories(path)
    with pytest.raises(ValueError, match="no split 'test'"):
        open_trajectories(path, split="test")
    with h5py.File(path, "r+") as f:
        del f["valid/dt"]
    with pytest.raises(ValueError, match="valid/dt must have shape \\(3,\\), got missing"):
        open_trajectories(path, split="valid")


def test_missing_corrupt_truncated_foreign(tmp_path, ks_file):
    with pytest.raises(FileNotFoundError, match="no such file"):
        open_trajectories(tmp_path / "absent.h5")
    rnd = tmp_path / "random.h5"
    rnd.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="not a readable HDF5 file .*corrupt or truncated"):
        open_trajectories(rnd)
    cut = tmp_path / "cut.h5"
    data = ks_file.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        open_trajectories(cut)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["images"] = np.zeros((2, 3))
    with pytest.raises(ValueError, match="not a pdekit or PDEArena trajectory file.*images"):
        open_trajectories(foreign)


def test_incomplete_pdekit_schema(tmp_path, ks_file):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(ks_file.read_bytes())
    with h5py.File(bad, "r+") as f:
        del f["params/dx"]
    with pytest.raises(ValueError, match="missing params/dx"):
        open_trajectories(bad)
    with h5py.File(bad, "r+") as f:
        del f.attrs["created_by"]
    with pytest.raises(ValueError, match="missing root attribute\\(s\\) created_by"):
        open_trajectories(bad)
    with pytest.raises(ValueError, match="holds the 'train' split, not 'valid'"):
        open_trajectories(ks_file, split="valid")
