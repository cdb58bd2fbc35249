"""Use a Flax NNX module as a pdekit model (an `equinox.Module`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, PRNGKeyArray

from pdekit.models.conditioning import CondNorm


class NNXAdapter(eqx.Module):
    """Wraps a `flax.nnx.Module` with the model call signature `(u, cond) -> future frames`.

    The module is split (`nnx.split`) into a static graph definition and a state pytree; the
    state is an ordinary leaf of this equinox module, so `eqx.filter_grad`, optax, `jit`, `vmap`
    and checkpointing treat its parameters like those of any built-in model. `__call__` merges
    the two and calls the module.

    The call is functional: in-place updates the module makes to its own state during the call
    (e.g. BatchNorm running statistics, RNG counters of Dropout) are discarded, so use modules
    whose forward pass is a pure function of the parameters (or run them in eval mode).

    ``cond_norm`` (a :class:`pdekit.models.CondNorm`, default none) maps ``cond`` before the
    module sees it, as the built-in models do.
    """

    graphdef: Any = eqx.field(static=True)
    state: Any
    cond_norm: CondNorm | None = None

    def __init__(self, module: nnx.Module, cond_norm: CondNorm | None = None):
        if not isinstance(module, nnx.Module):
            raise ValueError(
                f"NNXAdapter wraps a flax.nnx.Module, got {type(module).__name__}. For Linen "
                "modules, port them to NNX first (flax.nnx.bridge)."
            )
        self.graphdef, self.state = nnx.split(module)
        self.cond_norm = cond_norm

    @property
    def module(self) -> nnx.Module:
        """A fresh NNX module holding this adapter's current state."""
        return nnx.merge(self.graphdef, self.state)

    def __call__(
        self,
        u: Float[Array, "history channels *spatial"],
        cond: Float[Array, " num_cond"],
        *,
        key: PRNGKeyArray | None = None,
    ) -> Float[Array, "future channels *spatial"]:
        if self.cond_norm is not None:
            cond = self.cond_norm(cond).astype(cond.dtype)
        return nnx.merge(self.graphdef, self.state)(u, cond)


def from_nnx(
    module_factory: Callable[..., nnx.Module],
    *,
    spatial_dims: int,
    history: int,
    future: int,
    channels: int,
    num_cond: int,
    key: PRNGKeyArray,
    cond_norm: CondNorm | None = None,
) -> NNXAdapter:
    """Build an NNX module and wrap it; usable as a Hydra `_target_`.

    `module_factory` (e.g. a Hydra `_partial_: true` config of an NNX class) is called as
    `module_factory(rngs=nnx.Rngs(key), spatial_dims=..., history=..., future=..., channels=...,
    num_cond=...)`.
    """
    if not callable(module_factory):
        raise ValueError(
            f"module_factory must be callable (a _partial_ of an NNX class), got {module_factory!r}."
        )
    if not jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    module = module_factory(
        rngs=nnx.Rngs(key),
        spatial_dims=spatial_dims,
        history=history,
        future=future,
        channels=channels,
        num_cond=num_cond,
    )
    return NNXAdapter(module, cond_norm)
