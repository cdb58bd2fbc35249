"""Model wrappers and helpers that keep the standard model interface."""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from pdekit.models.base import ModelSpec, is_stochastic


class Residual(eqx.Module):
    """Predict the change of the last input frame: `u[-1] + scale * model(u, cond)`.

    The last history frame is broadcast over the `future` output frames, so the wrapped model
    learns (scaled) differences to the current state, as for "predict the difference" training
    of ordinary models. Same call signature as every model; it wraps any callable, so it adds
    no I/O contract of its own (the wrapped model's ``spec`` stays at ``.model``). Stochastic
    models are refused: PDE-Refiner predicts scaled differences itself
    (``predict_difference``, ``difference_scale``).
    """

    model: eqx.Module
    scale: float = eqx.field(static=True)

    def __init__(self, model: eqx.Module, scale: float = 1.0):
        if not callable(model):
            raise ValueError(f"Residual needs a callable model, got {type(model).__name__}.")
        if is_stochastic(model):
            raise ValueError(f"Residual wraps deterministic models; {type(model).__name__} is "
                             "stochastic and predicts differences itself (predict_difference).")
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


def residual(model: Callable[..., eqx.Module], *, key: PRNGKeyArray, scale: float = 1.0,
             **spec) -> Residual:
    """Hydra-friendly factory: build ``model`` (a model factory, e.g. a ``_partial_`` of a model
    class) for the :class:`~pdekit.models.ModelSpec` whose fields are ``spec`` and wrap it in
    ``Residual(model, scale)``."""
    return Residual(model(**ModelSpec(**spec).kwargs(), key=key), scale)


def count_params(model: PyTree) -> int:
    """Number of trainable scalars: total size of the inexact (floating/complex) array leaves.

    A complex leaf counts once per element (not twice).
    """
    leaves = jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array))
    return int(sum(jnp.size(x) for x in leaves))
