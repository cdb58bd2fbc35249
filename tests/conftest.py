"""Shared fixtures. Float64 checks run inside ``jax.enable_x64`` (never flipped globally)."""

import jax
import pytest


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield
