"""Use a Flax NNX module as a pdekit model (an `equinox.Module`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Float, PRNGKeyArray

from pdekit.models.base import AbstractModel, ModelSpec


class NNXAdapter(AbstractModel):
    """Wraps a `flax.nnx.Module` with the model call signature `(u, cond) -> future frames`.

    The module is split (`nnx.split`) into a static graph definition and a state pytree; the
    state is an ordinary leaf of this equinox module, so `eqx.filter_grad`, optax, `jit`, `vmap`
    and checkpointing treat its parameters like those of any built-in model. `__call__` merges
    the two and calls the module.

    The call is functional: in-place updates the module makes to its own state during the call
    (e.g. BatchNorm running statistics, RNG counters of Dropout) are discarded, so use modules
    whose forward pass is a pure function of the parameters (or run them in eval mode).

    ``spec`` (a :class:`pdekit.models.ModelSpec`) is the module's I/O contract: inputs are
    checked against it, and its ``cond_norm`` maps ``cond`` before the module sees it, as the
    built-in models do. The module's output is not checked: it is the user's code.
    """

    graphdef: Any = eqx.field(static=True)
    state: Any
    spec: ModelSpec = eqx.field(static=True)
    stochastic: ClassVar[bool] = False

    def __init__(self, module: nnx.Module, spec: ModelSpec):
        if not isinstance(module, nnx.Module):
            raise ValueError(
                f"NNXAdapter wraps a flax.nnx.Module, got {type(module).__name__}. For Linen "
                "modules, port them to NNX first (flax.nnx.bridge)."
            )
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"NNXAdapter needs a pdekit.models.ModelSpec, got "
                            f"{type(spec).__name__}")
        self.graphdef, self.state = nnx.split(module)
        self.spec = spec

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
        self.check_input(u, cond)
        cond = self.cond_norm(cond).astype(cond.dtype)
        return nnx.merge(self.graphdef, self.state)(u, cond)


def from_nnx(module_factory: Callable[..., nnx.Module], *, key: PRNGKeyArray,
             **spec) -> NNXAdapter:
    """Build an NNX module for the :class:`~pdekit.models.ModelSpec` whose fields are
    ``spec`` and wrap it; usable as a Hydra ``_target_``.

    ``module_factory`` (e.g. a Hydra ``_partial_: true`` config of an NNX class) is called as
    ``module_factory(rngs=nnx.Rngs(key), spatial_dims=..., history=..., future=...,
    channels=..., num_cond=...)``; the ``cond_norm`` stays with the adapter.
    """
    if not callable(module_factory):
        raise ValueError(
            f"module_factory must be callable (a _partial_ of an NNX class), got {module_factory!r}."
        )
    spec = ModelSpec(**spec)
    if not jnp.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    sizes = {k: v for k, v in spec.kwargs().items() if k != "cond_norm"}
    return NNXAdapter(module_factory(rngs=nnx.Rngs(key), **sizes), spec)
