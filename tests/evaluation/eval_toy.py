"""A tiny model with the pdekit model interface, for the evaluation tests."""

from __future__ import annotations

import equinox as eqx
import jax


class TinyConv(eqx.Module):
    """Periodic 1D conv: (history, C, N) -> (future, C, N) plus a conditioning bias."""

    conv: eqx.nn.Conv1d
    cond: eqx.nn.Linear
    future: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)

    def __init__(self, *, spatial_dims, history, future, channels, num_cond, key, width=4,
                 cond_norm=None):
        del width, cond_norm
        k1, k2 = jax.random.split(key)
        self.conv = eqx.nn.Conv1d(history * channels, future * channels, 3, padding=1,
                                  padding_mode="CIRCULAR", key=k1)
        self.cond = eqx.nn.Linear(num_cond, future * channels, key=k2)
        self.future, self.channels = future, channels

    def __call__(self, u, cond, *, key=None):
        out = self.conv(u.reshape(-1, u.shape[-1])) + 0.01 * self.cond(cond)[:, None]
        return out.reshape(self.future, self.channels, -1)
