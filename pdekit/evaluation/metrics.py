"""Per-trajectory, per-step rollout metrics (pure functions, jit-friendly).

Layout convention: a batched rollout is ``(B, T, C, *S)`` — trajectories, rollout steps,
channels, spatial axes. Step ``j`` (1-based) is the state ``j`` model steps after the last
input frame, at time ``j * dt`` from the start of the rollout; array index ``i`` holds step
``i + 1``. All reductions "over the field" are over channels and space together.

Non-finite predictions propagate as NaN/inf into ``nrmse`` and ``correlation``; the
crossing-time and stability functions treat a non-finite value as a failure.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int


def _flat(u: Float[Array, "B T C *S"]) -> Float[Array, "B T F"]:
    return u.reshape(*u.shape[:2], -1)


def field_norm(u: Float[Array, "B T C *S"]) -> Float[Array, "B T"]:
    """L2 norm of each frame over channels and space: ``sqrt(sum_{c,x} u^2)``."""
    return jnp.sqrt(jnp.sum(_flat(u) ** 2, axis=-1))


def nrmse(pred: Float[Array, "B T C *S"], ref: Float[Array, "B T C *S"]) -> Float[Array, "B T"]:
    """Normalised RMSE ``||pred(t) - ref(t)||_2 / ||ref(t)||_2`` over channels and space."""
    return field_norm(pred - ref) / field_norm(ref)


def correlation(
    pred: Float[Array, "B T C *S"], ref: Float[Array, "B T C *S"]
) -> Float[Array, "B T"]:
    """Pearson correlation between ``pred(t)`` and ``ref(t)`` over channels and space.

    ``rho = sum (p - mean p)(r - mean r) / sqrt(sum (p - mean p)^2 * sum (r - mean r)^2)``.
    Where either centred field has zero variance the correlation is defined as 0.
    """
    p = _flat(pred)
    r = _flat(ref)
    p = p - jnp.mean(p, axis=-1, keepdims=True)
    r = r - jnp.mean(r, axis=-1, keepdims=True)
    num = jnp.sum(p * r, axis=-1)
    den2 = jnp.sum(p * p, axis=-1) * jnp.sum(r * r, axis=-1)
    safe = jnp.where(den2 > 0, den2, 1.0)
    return jnp.where(den2 > 0, num / jnp.sqrt(safe), jnp.where(jnp.isfinite(den2), 0.0, jnp.nan))


def first_crossing_time(
    rho: Float[Array, "B T"], threshold: float, dt: Float[Array, " B"] | float
) -> tuple[Float[Array, " B"], Bool[Array, " B"], Int[Array, " B"]]:
    """High-correlation time tau_c by FIRST crossing.

    For each trajectory, ``tau_c = j* * dt`` where ``j*`` is the first (1-based) step with
    ``rho < c`` (a non-finite rho counts as below). A trajectory that never drops gets the
    rollout length ``T * dt`` and is flagged as censored. Returns ``(tau, censored, steps)``
    where ``steps`` is ``j*`` (``T`` when censored).
    """
    below = ~(rho >= threshold)
    dropped = jnp.any(below, axis=-1)
    first = jnp.argmax(below, axis=-1) + 1
    steps = jnp.where(dropped, first, rho.shape[-1])
    return steps * jnp.asarray(dt), ~dropped, steps


def pdearena_time(
    rho: Float[Array, "B T"], threshold: float, dt: Float[Array, ""] | float
) -> Float[Array, ""]:
    """PDEArena / PDE-Refiner convention: ``dt * #{t : mean_b rho(b, t) > c}``.

    The batch mean is taken first (a non-finite rho makes that step's mean non-finite, which
    does not count); then the steps above ``c`` are counted, not required to be contiguous.
    """
    mean_rho = jnp.mean(rho, axis=0)
    return jnp.sum(mean_rho > threshold) * jnp.asarray(dt)


def blowup(
    pred: Float[Array, "B T C *S"],
    ref_norm_max: Float[Array, " B"],
    dt: Float[Array, " B"] | float,
    factor: float = 10.0,
) -> tuple[Float[Array, " B"], Bool[Array, " B"], Int[Array, " B"]]:
    """Blow-up detection.

    A trajectory blows up at the first (1-based) step ``j`` where the prediction has a
    non-finite value or ``||pred(j)|| > factor * ref_norm_max`` (``ref_norm_max`` = the
    largest frame norm of that trajectory's reference, see :func:`field_norm`). Returns
    ``(time, stable, steps)``; a stable trajectory gets ``T`` steps (the horizon).
    """
    flat = _flat(pred)
    finite = jnp.all(jnp.isfinite(flat), axis=-1)
    norm = jnp.sqrt(jnp.sum(jnp.where(jnp.isfinite(flat), flat, 0.0) ** 2, axis=-1))
    bad = ~finite | ~(norm <= factor * ref_norm_max[:, None])
    blown = jnp.any(bad, axis=-1)
    steps = jnp.where(blown, jnp.argmax(bad, axis=-1) + 1, pred.shape[1])
    return steps * jnp.asarray(dt), ~blown, steps


def _pearson_last(x: Float[Array, "... N"], y: Float[Array, "... N"]) -> Float[Array, "..."]:
    x = x - jnp.mean(x, axis=-1, keepdims=True)
    y = y - jnp.mean(y, axis=-1, keepdims=True)
    den2 = jnp.sum(x * x, axis=-1) * jnp.sum(y * y, axis=-1)
    return jnp.where(den2 > 0, jnp.sum(x * y, axis=-1) / jnp.sqrt(jnp.where(den2 > 0, den2, 1.0)), 0.0)


def spread_error(
    samples: Float[Array, "N B T C *S"], ref: Float[Array, "B T C *S"]
) -> dict[str, Array]:
    """Ensemble spread against the error of the ensemble mean.

    * ``spread(b, t) = sqrt(mean_{c,x} var_s samples)`` with the unbiased (``N - 1``) sample
      variance (0 for a single sample);
    * ``error(b, t) = sqrt(mean_{c,x} (mean_s samples - ref)^2)`` (RMSE of the ensemble mean);
    * ``corr_time(b)``: Pearson correlation of spread and error over the steps of trajectory b;
    * ``corr_traj(t)``: Pearson correlation of spread and error across trajectories at step t;
    * ``nrmse_mean`` and ``rho_mean``: nRMSE and correlation of the ensemble mean.
    """
    n = samples.shape[0]
    mean = jnp.mean(samples, axis=0)
    var = jnp.var(samples, axis=0, ddof=1) if n > 1 else jnp.zeros_like(mean)
    spread = jnp.sqrt(jnp.mean(_flat(var), axis=-1))
    error = jnp.sqrt(jnp.mean(_flat(mean - ref) ** 2, axis=-1))
    return {
        "spread": spread,
        "error": error,
        "corr_time": _pearson_last(spread, error),
        "corr_traj": _pearson_last(spread.T, error.T),
        "nrmse_mean": nrmse(mean, ref),
        "rho_mean": correlation(mean, ref),
    }
