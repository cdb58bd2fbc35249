"""Tiny models with the pdekit model interface, for fast training tests."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from flax import nnx

from pdekit.models.conditioning import CondNorm


class ToyConv(eqx.Module):
    """Periodic 1D conv net: (history, C, N) -> (future, C, N), conditioned additively."""

    conv1: eqx.nn.Conv1d
    conv2: eqx.nn.Conv1d
    cond: eqx.nn.Linear
    cond_norm: CondNorm
    future: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)

    def __init__(self, *, spatial_dims, history, future, channels, num_cond, key, width=8,
                 cond_norm=None):
        self.cond_norm = CondNorm.identity(num_cond) if cond_norm is None else cond_norm
        assert spatial_dims == 1
        k1, k2, k3 = jax.random.split(key, 3)
        self.conv1 = eqx.nn.Conv1d(history * channels, width, 5, padding=2,
                                   padding_mode="CIRCULAR", key=k1)
        self.conv2 = eqx.nn.Conv1d(width, future * channels, 5, padding=2,
                                   padding_mode="CIRCULAR", key=k2)
        self.cond = eqx.nn.Linear(num_cond, width, key=k3)
        self.future, self.channels = future, channels

    def __call__(self, u, cond, *, key=None):
        c = self.cond_norm(cond).astype(u.dtype)
        h = self.conv1(u.reshape(-1, u.shape[-1])) + self.cond(c)[:, None]
        out = self.conv2(jax.nn.gelu(h))
        return out.reshape(self.future, self.channels, -1)


class ToyNNX(nnx.Module):
    """The same idea as a Flax NNX module, for the adapter test."""

    def __init__(self, *, rngs, spatial_dims, history, future, channels, num_cond, width=8):
        self.conv1 = nnx.Conv(history * channels, width, (5,), padding="CIRCULAR", rngs=rngs)
        self.conv2 = nnx.Conv(width, future * channels, (5,), padding="CIRCULAR", rngs=rngs)
        self.cond = nnx.Linear(num_cond, width, rngs=rngs)
        self.future, self.channels = future, channels

    def __call__(self, u, cond):
        x = jnp.moveaxis(u.reshape(-1, u.shape[-1]), 0, -1)  # (N, H*C)
        h = jax.nn.gelu(self.conv1(x) + self.cond(cond))
        out = jnp.moveaxis(self.conv2(h), -1, 0)
        return out.reshape(self.future, self.channels, -1)
