"""Shared fixtures. Float64 checks run inside ``jax.enable_x64`` (never flipped globally)."""

import os

import jax
import pytest

# The toy models of tests/training and tests/evaluation are built from configs; models
# outside pdekit.models are built only when named here (docs/safety.md). Subprocesses inherit it.
os.environ.setdefault("PDEKIT_ALLOWED_TARGETS", "toy_models.*,eval_toy.*")


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield
