"""The model interface: an I/O contract (:class:`ModelSpec`) and the abstract bases.

Every pdekit model maps one sample ``u (history, channels, *spatial)`` and its conditioning
scalars ``cond (num_cond,)`` to ``(future, channels, *spatial)``. :class:`ModelSpec` is that
contract as one frozen value; :class:`AbstractModel` is the base every built-in model derives
from (Equinox's abstract-attribute pattern: the base declares ``spec`` and ``stochastic``,
each concrete class provides them). :class:`AbstractStochasticModel` adds the model's own
training loss (PDE-Refiner).

A *model factory* is any callable taking the spec's fields as keyword arguments plus ``key``
(a class such as :class:`pdekit.models.FNO`, a ``functools.partial`` of one, or a function
like :func:`pdekit.models.residual`). Callers build one with
``factory(**spec.kwargs(), key=key, **hyperparameters)``; a class derived from
:class:`AbstractModel` also offers ``Cls.from_spec(spec, key=key, **hyperparameters)``.
See ``docs/models.md`` (Interface).
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, Scalar

from pdekit.models.conditioning import CondNorm
from pdekit.models.conditioning import resolve as resolve_cond_norm

_COUNTS = (("spatial_dims", 1), ("history", 1), ("future", 1), ("channels", 1), ("num_cond", 0))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """What a model reads and writes, fixed by the data: the I/O contract.

    Attributes:
        spatial_dims: number of spatial axes (1 or 2 for most models).
        history: input frames per call.
        future: output frames per call (``> 1`` is temporal bundling).
        channels: field components per frame.
        num_cond: conditioning scalars per sample (e.g. ``dt, dx``).
        cond_norm: the :class:`~pdekit.models.CondNorm` applied to ``cond`` before a model's
            features; ``None`` becomes the identity map on ``num_cond`` scalars.

    Frozen and hashable, so a model keeps it as a static field.
    """

    spatial_dims: int
    history: int
    future: int
    channels: int
    num_cond: int
    cond_norm: CondNorm | None = None

    def __post_init__(self):
        for name, least in _COUNTS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | jnp.integer) or value < least:
                raise ValueError(f"ModelSpec: {name} must be an int >= {least}, got {value!r}")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "cond_norm",
                           resolve_cond_norm(self.cond_norm, self.num_cond, "ModelSpec"))

    def kwargs(self) -> dict[str, Any]:
        """The spec as the keyword arguments of a model factory (without ``key``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes) -> ModelSpec:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def input_shape(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """``(history, channels, *spatial)``."""
        return (self.history, self.channels, *spatial)

    def output_shape(self, spatial: tuple[int, ...]) -> tuple[int, ...]:
        """``(future, channels, *spatial)``."""
        return (self.future, self.channels, *spatial)

    def check_input(self, u: Array, cond: Array, who: str) -> None:
        """Raise a ``ValueError`` naming ``who`` unless ``u`` and ``cond`` are one sample."""
        if jnp.ndim(u) != 2 + self.spatial_dims or tuple(jnp.shape(u)[:2]) != (
                self.history, self.channels):
            raise ValueError(
                f"{who}: expected one sample of shape (history={self.history}, channels="
                f"{self.channels}, *{self.spatial_dims} spatial), got {tuple(jnp.shape(u))}; "
                "batch with jax.vmap.")
        if tuple(jnp.shape(cond)) != (self.num_cond,):
            raise ValueError(f"{who}: expected cond of shape ({self.num_cond},), got "
                             f"{tuple(jnp.shape(cond))}.")


class AbstractModel(eqx.Module):
    """Base of every pdekit model: ``model(u, cond, *, key=None) -> (future, channels, *S)``.

    Concrete subclasses provide:

    * ``spec``: the :class:`ModelSpec` (a static field);
    * ``stochastic``: a class attribute, ``True`` when the output depends on ``key``
      (then each call needs its own key; deterministic models ignore ``key``);
    * ``__call__`` on one sample, starting with :meth:`check_input`.

    ``spatial_dims``, ``history``, ``future``, ``channels``, ``num_cond`` and ``cond_norm``
    read the spec.
    """

    spec: eqx.AbstractVar[ModelSpec]
    stochastic: eqx.AbstractClassVar[bool]

    @classmethod
    def from_spec(cls, spec: ModelSpec, *, key: PRNGKeyArray, **hyperparameters):
        """Build this model for ``spec``: ``cls(**spec.kwargs(), key=key, **hyperparameters)``."""
        if not isinstance(spec, ModelSpec):
            raise TypeError(f"{cls.__name__}.from_spec needs a pdekit.models.ModelSpec, got "
                            f"{type(spec).__name__}")
        return cls(**spec.kwargs(), key=key, **hyperparameters)

    @abc.abstractmethod
    def __call__(self, u: Float[Array, "history channels *spatial"],
                 cond: Float[Array, " num_cond"], *, key: PRNGKeyArray | None = None
                 ) -> Float[Array, "future channels *spatial"]:
        raise NotImplementedError

    def check_input(self, u: Array, cond: Array) -> None:
        """The interface's shape check of one sample (a ``ValueError`` that says what to do)."""
        self.spec.check_input(u, cond, type(self).__name__)

    @property
    def spatial_dims(self) -> int:
        return self.spec.spatial_dims

    @property
    def history(self) -> int:
        return self.spec.history

    @property
    def future(self) -> int:
        return self.spec.future

    @property
    def channels(self) -> int:
        return self.spec.channels

    @property
    def num_cond(self) -> int:
        return self.spec.num_cond

    @property
    def cond_norm(self) -> CondNorm:
        return self.spec.cond_norm


class AbstractStochasticModel(AbstractModel):
    """A model whose prediction depends on ``key`` and which brings its own training loss
    (``train.objective=refiner``). :class:`pdekit.models.PDERefiner` is one."""

    stochastic: ClassVar[bool] = True
    #: the model casts its network's input to its parameters' dtype itself and keeps the
    #: data, the training targets, the noise and the loss in float32; under bf16 training
    #: (:func:`uses_float32_data`) only its parameters are cast
    float32_data: ClassVar[bool] = False

    @abc.abstractmethod
    def loss(self, u_in: Float[Array, "history channels *spatial"],
             u_out: Float[Array, "future channels *spatial"], cond: Float[Array, " num_cond"],
             *, key: PRNGKeyArray) -> Scalar:
        """Training loss of one sample."""
        raise NotImplementedError


def uses_float32_data(model: Any) -> bool:
    """True when ``model`` wants its batches in float32 under reduced-precision training
    (:attr:`AbstractStochasticModel.float32_data`): the trainer then casts its parameters
    only, not the data."""
    return isinstance(model, AbstractStochasticModel) and bool(model.float32_data)


def is_stochastic(model: Any) -> bool:
    """``model.stochastic`` for a pdekit model; ``False`` for any other callable (a model
    outside :class:`AbstractModel`, e.g. one wrapped by :class:`pdekit.models.Residual`,
    counts as deterministic)."""
    return isinstance(model, AbstractModel) and bool(model.stochastic)

