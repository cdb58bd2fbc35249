"""Fixtures of the data tests: one tiny generated KS file per test session (per worker)."""

import pytest
from pdekit_datafixtures import tiny_ks_config, write_pdearena

from pdekit.data import generate_dataset


@pytest.fixture(scope="session")
def ks_file(tmp_path_factory):
    """5 KS train trajectories (real frame protocol, N = 64 solve, 32 stored), batches of 2."""
    out = tmp_path_factory.mktemp("ks") / "train.h5"
    generate_dataset(tiny_ks_config(out))
    return out


@pytest.fixture
def pdearena_file(tmp_path):
    path = tmp_path / "KS_arena.h5"
    return path, write_pdearena(path)
