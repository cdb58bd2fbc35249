"""Window advance and autoregressive rollout: the one implementation of both.

A model maps a window of ``history`` frames to ``future`` frames (single sample):
``model(u (H, C, *S), cond (P,), *, key=None) -> (F, C, *S)``. :func:`advance` keeps the last
``history`` frames of (window ++ prediction); :func:`unroll` repeats call + advance in one
``lax.scan``; :func:`rollout_batch` vmaps it over trajectories. These three are pure and
traceable: validation and the unrolled / pushforward objectives (``pdekit.training``) call
them inside their own jitted functions. :func:`rollout` and :func:`rollout_samples` are the
jitted, batch-sharded entry points of evaluation.

Keys: the rollout of trajectory ``b`` of sample ``s`` uses
``trajectory_keys(fold_in(key, s), B)[b]``, split once more per model call. Deterministic
models ignore their key; validation uses sample 0 of ``key = PRNGKey(0)``, as ``pdekit
evaluate`` with ``seed=0`` does, so both roll out exactly the same trajectories.
"""

from __future__ import annotations

import math
from functools import partial

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding
from jaxtyping import Array, Float, PRNGKeyArray

from pdekit._mesh import DataParallel


def batch_sharding(batch: int) -> NamedSharding | None:
    """The batch sharding of the one device mesh (:class:`pdekit.training.sharding.DataParallel`:
    all devices, axis ``"data"``), or None on one device or when ``batch`` does not divide."""
    dp = DataParallel.create()
    if dp.num_devices < 2 or batch % dp.num_devices:
        return None
    return dp.batch


def shard_batch(*arrays):
    """Place arrays with the leading batch axis sharded over all devices (when it divides)."""
    sharding = batch_sharding(arrays[0].shape[0])
    if sharding is None:
        return arrays if len(arrays) > 1 else arrays[0]
    out = tuple(jax.device_put(a, sharding) for a in arrays)  # dicts: every leaf sharded
    return out if len(out) > 1 else out[0]


def advance(window: Float[Array, "H C *S"], out: Float[Array, "F C *S"]
            ) -> Float[Array, "H C *S"]:
    """The next input window: the last ``H`` frames of ``window ++ out`` (in ``window``'s dtype)."""
    return jnp.concatenate([window, out.astype(window.dtype)], axis=0)[-window.shape[0]:]


def unroll(model, u0: Float[Array, "H C *S"], cond: Float[Array, " P"], key: PRNGKeyArray,
           num_calls: int) -> Float[Array, "num_calls*F C *S"]:
    """``num_calls`` autoregressive model calls from the window ``u0`` (one ``lax.scan``); call
    ``i`` gets ``split(key, num_calls)[i]``. Returns the predicted frames in order, in
    ``u0``'s dtype."""

    def body(window, k):
        out = model(window, cond, key=k)
        return advance(window, out), out.astype(u0.dtype)

    _, outs = jax.lax.scan(body, u0, jax.random.split(key, num_calls))  # (num_calls, F, C, *S)
    return outs.reshape(-1, *outs.shape[2:])


def trajectory_keys(key: PRNGKeyArray, batch: int) -> PRNGKeyArray:
    """One key per trajectory: ``split(key, batch)``."""
    return jax.random.split(key, batch)


def rollout_batch(model, u0: Float[Array, "B H C *S"], cond: Float[Array, "B P"],
                  keys: PRNGKeyArray, rollout_steps: int, *, future: int) -> Float[Array, "B T C *S"]:
    """:func:`unroll` over a batch (``vmap``), truncated to ``rollout_steps`` frames; ``keys`` holds
    one key per trajectory (:func:`trajectory_keys`). Pure: call it inside ``jit``."""
    if rollout_steps < 1:
        raise ValueError(f"rollout_steps must be >= 1, got {rollout_steps}")
    num_calls = math.ceil(rollout_steps / future)
    return jax.vmap(lambda u, c, k: unroll(model, u, c, k, num_calls)[:rollout_steps])(u0, cond, keys)


@partial(eqx.filter_jit, donate="none")
def _rollout_jit(model, u0, cond, keys, rollout_steps: int, future: int):
    # lax.map: the samples run one after the other inside the program (memory of one sample)
    return jax.lax.map(lambda k: rollout_batch(model, u0, cond, k, rollout_steps, future=future), keys)


def _sample_keys(key: PRNGKeyArray, num_samples: int, batch: int):
    """(num_samples, batch) keys: sample ``s`` is ``trajectory_keys(fold_in(key, s), batch)``."""
    return jax.vmap(lambda s: trajectory_keys(jax.random.fold_in(key, s), batch))(
        jnp.arange(num_samples))


def rollout_samples(
    model,
    u0: Float[Array, "B H C *S"],
    cond: Float[Array, "B P"],
    rollout_steps: int,
    *,
    future: int,
    key: PRNGKeyArray,
    num_samples: int,
) -> Float[Array, "N B T C *S"]:
    """``num_samples`` rollouts of ``rollout_steps`` model steps from the windows ``u0``, in one
    compiled call (sample ``s`` uses ``fold_in(key, s)``; see the module docstring). They
    differ only for stochastic models. ``future`` is the number of frames one model call
    produces. The batch is sharded over all devices when it divides their number."""
    if rollout_steps < 1:
        raise ValueError(f"rollout_steps must be >= 1, got {rollout_steps}")
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    u0, cond = jnp.asarray(u0), jnp.asarray(cond)
    keys = _sample_keys(key, int(num_samples), u0.shape[0])
    u0, cond = shard_batch(u0, cond)
    return _rollout_jit(model, u0, cond, keys, int(rollout_steps), int(future))


def rollout(
    model,
    u0: Float[Array, "B H C *S"],
    cond: Float[Array, "B P"],
    rollout_steps: int,
    *,
    future: int,
    key: PRNGKeyArray | None = None,
) -> Float[Array, "B T C *S"]:
    """One rollout: sample 0 of :func:`rollout_samples` (``key`` defaults to ``PRNGKey(0)``)."""
    key = jax.random.PRNGKey(0) if key is None else key
    return rollout_samples(model, u0, cond, rollout_steps, future=future, key=key, num_samples=1)[0]
