"""The conditioning map of a run: measured from the training split, stored with the run and
rebuilt from it; raw-field runs store statistics that change nothing."""

import json

import h5py
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TOY, ks_like, tiny_cfg, write_h5

from pdekit.training import load_run
from pdekit.training.loop import train


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """A training file whose trajectories have different dt and dx."""
    d = tmp_path_factory.mktemp("cond_data")
    path = write_h5(d / "train.h5", ks_like(6, 12, seed=3))
    with h5py.File(path, "r+") as f:
        f["params/dt"][...] = np.linspace(0.18, 0.22, 6)
        f["params/dx"][...] = np.linspace(0.30, 0.20, 6)
    return str(path)


def test_cond_range_round_trips_through_a_saved_run(varied, tmp_path):
    files = {"train": varied, "valid": None}
    cfg = tiny_cfg(files, tmp_path, model=TOY, steps=2, log_every=1, ckpt_every=2)
    cfg["data"].update(stride=2, valid_path=None, normalization="none", cond_span=4.0)
    result = train(cfg)
    model, saved, stats = load_run(result.run_dir, which="last")
    # dt is the model step: stride 2 x the saved dt
    assert dict(saved.derived.cond_range) == {"dt": pytest.approx([0.36, 0.44]),
                                              "dx": pytest.approx([0.20, 0.30])}
    norm = model.cond_norm
    assert norm.lo == pytest.approx((0.36, 0.20)) and norm.hi == pytest.approx((0.44, 0.30))
    np.testing.assert_allclose(np.asarray(norm(jnp.array([0.44, 0.25]))), [4.0, 2.0], atol=1e-5)
    # raw fields: identity statistics stored with the run
    assert stats.is_identity
    on_disk = json.loads((result.run_dir / "stats.json").read_text())
    assert on_disk["mean"] == [0.0] and on_disk["std"] == [1.0]


def test_cond_range_override_and_bad_key(varied, tmp_path):
    files = {"train": varied, "valid": None}
    cfg = tiny_cfg(files, tmp_path, model=TOY, steps=1, log_every=1, ckpt_every=1)
    cfg["data"].update(valid_path=None, cond_range={"dt": [0.1, 0.3]})
    model, saved, stats = load_run(train(cfg).run_dir, which="last")
    assert list(saved.derived.cond_range.dt) == [0.1, 0.3]
    assert model.cond_norm.lo[0] == pytest.approx(0.1)
    assert not stats.is_identity  # zscore by default
    cfg["data"]["cond_range"] = {"nu": [0.5, 1.5]}
    cfg["run"]["name"] = "bad"
    with pytest.raises(ValueError, match="data.cond_range names nu"):
        train(cfg)
    assert not (tmp_path / "test" / "bad").exists()
