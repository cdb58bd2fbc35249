"""Autoregressive rollouts: ``lax.scan`` over model calls, vmapped over trajectories.

A model maps a window of ``history`` frames to ``future`` frames (single sample):
``model(u (H, C, *S), cond (P,), *, key=None) -> (F, C, *S)``. The rollout feeds the last
``history`` frames of (window ++ prediction) back in, so one call advances ``future`` model
steps; ``n_steps`` may exceed the reference horizon (it only needs the initial window).
"""

from __future__ import annotations

import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array, Float


def batch_sharding(batch: int) -> NamedSharding | None:
    """NamedSharding over a 1-axis mesh of all devices, or None when ``batch`` does not divide."""
    devices = jax.devices()
    if len(devices) < 2 or batch % len(devices):
        return None
    return NamedSharding(Mesh(np.asarray(devices), ("batch",)), PartitionSpec("batch"))


def shard_batch(*arrays):
    """Place arrays with the leading batch axis sharded over all devices (when it divides)."""
    sharding = batch_sharding(arrays[0].shape[0])
    if sharding is None:
        return arrays if len(arrays) > 1 else arrays[0]
    out = tuple(jax.device_put(a, sharding) for a in arrays)  # dicts: every leaf sharded
    return out if len(out) > 1 else out[0]


def _rollout_one(model, u0, cond, key, n_calls: int, stochastic: bool):
    history = u0.shape[0]

    def body(window, k):
        out = model(window, cond, key=k if stochastic else None)
        window = jnp.concatenate([window, out.astype(window.dtype)], axis=0)[-history:]
        return window, out.astype(u0.dtype)

    keys = jax.random.split(key, n_calls)
    _, outs = jax.lax.scan(body, u0, keys)  # (n_calls, F, C, *S)
    return outs.reshape(-1, *outs.shape[2:])


@partial(eqx.filter_jit, donate="none")
def _rollout_jit(model, u0, cond, keys, n_steps: int, future: int, stochastic: bool):
    n_calls = math.ceil(n_steps / future)
    fn = lambda u, c, k: _rollout_one(model, u, c, k, n_calls, stochastic)[:n_steps]
    return jax.vmap(fn)(u0, cond, keys)


def rollout(
    model,
    u0: Float[Array, "B H C *S"],
    cond: Float[Array, "B P"],
    n_steps: int,
    *,
    future: int,
    key: Array | None = None,
    stochastic: bool = False,
) -> Float[Array, "B T C *S"]:
    """Roll ``model`` out for ``n_steps`` model steps from the windows ``u0``.

    ``future`` is the number of frames one model call produces. For stochastic models pass
    ``stochastic=True`` and a ``key``: each trajectory and each call gets its own subkey.
    The batch is sharded over all devices when it divides their number.
    """
    if n_steps < 1:
        raise ValueError(f"rollout_steps must be >= 1, got {n_steps}")
    key = jax.random.PRNGKey(0) if key is None else key
    keys = jax.random.split(key, u0.shape[0])
    u0, cond, keys = shard_batch(jnp.asarray(u0), jnp.asarray(cond), keys)
    return _rollout_jit(model, u0, cond, keys, int(n_steps), int(future), bool(stochastic))


def rollout_samples(
    model,
    u0: Float[Array, "B H C *S"],
    cond: Float[Array, "B P"],
    n_steps: int,
    *,
    future: int,
    key: Array,
    num_samples: int,
) -> Float[Array, "N B T C *S"]:
    """``num_samples`` independent stochastic rollouts (sample ``s`` uses ``fold_in(key, s)``)."""
    return jnp.stack(
        [
            rollout(model, u0, cond, n_steps, future=future, key=jax.random.fold_in(key, s), stochastic=True)
            for s in range(num_samples)
        ]
    )
