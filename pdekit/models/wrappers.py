"""Model wrappers and helpers that keep the standard model interface."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree


class Residual(eqx.Module):
    """Predict the change of the last input frame: `u[-1] + scale * model(u, cond)`.

    The last history frame is broadcast over the `future` output frames, so the wrapped model
    learns (scaled) differences to the current state, as for "predict the difference" training
    of ordinary models. Same call signature as every model.
    """

    model: eqx.Module
    scale: float = eqx.field(static=True)

    def __init__(self, model: eqx.Module, scale: float = 1.0):
        if not callable(model):
            raise ValueError(f"Residual needs a callable model, got {type(model).__name__}.")
        self.model = model
        self.scale = float(scale)

    def __call__(
        self,
        u: Float[Array, "history channels *spatial"],
        cond: Float[Array, " num_cond"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "future channels *spatial"]:
        delta = self.model(u, cond, key=key)
        if delta.shape[1:] != u.shape[1:]:
            raise ValueError(
                f"Residual: the wrapped model returned shape {delta.shape}, which does not match "
                f"the per-frame input shape {u.shape[1:]}; it must return (future, *{u.shape[1:]})."
            )
        return u[-1][None] + self.scale * delta


def residual(
    model: Callable[..., eqx.Module],
    *,
    scale: float = 1.0,
    spatial_dims: int,
    history: int,
    future: int,
    channels: int,
    num_cond: int,
    key: PRNGKeyArray,
    cond_norm=None,
) -> Residual:
    """Hydra-friendly factory: build `model` (a `_partial_` of a model class) with the runtime
    arguments and wrap it in `Residual(model, scale)`."""
    inner = model(
        spatial_dims=spatial_dims,
        history=history,
        future=future,
        channels=channels,
        num_cond=num_cond,
        key=key,
        cond_norm=cond_norm,
    )
    return Residual(inner, scale)


def count_params(model: PyTree) -> int:
    """Number of trainable scalars: total size of the inexact (floating/complex) array leaves.

    A complex leaf counts once per element (not twice).
    """
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return int(sum(jnp.size(x) for x in leaves))
