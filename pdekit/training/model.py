"""Building a model from its preset, and splitting it into trainable arrays and the rest."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from omegaconf import DictConfig, OmegaConf

from pdekit.models.base import ModelSpec
from pdekit.models.wrappers import Residual
from pdekit.training import targets
from pdekit.training.data import cond_norm_for


def build_model(cfg, derived, key):
    """Instantiate ``cfg.model`` for the data described by ``derived``.

    ``derived`` holds ``spatial_dims``, ``channels`` and ``num_cond`` measured from the data.
    With ``train.predict_difference`` the model is wrapped in
    ``pdekit.models.wrappers.Residual(model, train.difference_scale)``, so the returned model
    always predicts states (what evaluation rolls out). Only allowed ``_target_``s are
    built (:mod:`pdekit.training.targets`, docs/safety.md); Hydra's instantiate is not used.
    """
    spec = model_spec(cfg.model)
    try:
        model = targets.build(spec, "model", key=key, **io_spec(cfg, derived).kwargs())
    except targets.TargetError:
        raise
    except (TypeError, ValueError) as err:  # bad hyperparameters
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"cannot build model {spec.get('_target_')!r}: {first}") from None
    if cfg.train.predict_difference:
        model = Residual(model, float(cfg.train.difference_scale))
    return model


def io_spec(cfg, derived) -> ModelSpec:
    """The model's I/O contract for the data described by ``derived`` (spatial dims,
    channels, conditioning scalars and their ranges) and ``data.history`` / ``data.future``."""
    return ModelSpec(spatial_dims=int(derived.spatial_dims), history=int(cfg.data.history),
                     future=int(cfg.data.future), channels=int(derived.channels),
                     num_cond=int(derived.num_cond), cond_norm=cond_norm_for(cfg, derived))


def model_spec(model_cfg) -> dict:
    """The model config as plain containers, after the checks of
    :func:`pdekit.training.targets.check_plain_values` (non-finite or negative numbers)."""
    spec = OmegaConf.to_container(model_cfg, resolve=True) if isinstance(
        model_cfg, DictConfig) else dict(model_cfg)
    targets.check_plain_values(spec, "model")
    return spec


def abstract_model(cfg, derived, key):
    """The model with ``jax.ShapeDtypeStruct`` leaves, traced without computing anything.

    Building it runs the constructor's Python code, so bad hyperparameters fail here cheaply.
    When ``derived`` records the data's ``spatial_shape``, one forward call on an input of
    that shape is traced too, so hyperparameters that only fail on the data (e.g. more
    Fourier modes than the grid holds) fail here, before a run directory exists.
    """
    shape = derived.get("spatial_shape") if hasattr(derived, "get") else None
    if shape is None:
        return eqx.filter_eval_shape(lambda k: build_model(cfg, derived, k), key)
    skeleton, out = eqx.filter_eval_shape(lambda k: _build_and_call(cfg, derived, k), key)
    want = (int(cfg.data.future), int(derived.channels), *map(int, shape))
    if tuple(out.shape) != want:
        raise ValueError(f"model {cfg.model.get('_target_')!r} maps the data's input to shape "
                         f"{tuple(out.shape)}, expected (future, channels, *spatial) = {want}")
    return skeleton


def _build_and_call(cfg, derived, key):
    """(model, its output on zeros of the data's shape); traced, never computed."""
    model = build_model(cfg, derived, key)
    u = jnp.zeros((int(cfg.data.history), int(derived.channels), *map(int, derived.spatial_shape)))
    cond = jnp.zeros((int(derived.num_cond),))
    try:
        out = model(u, cond)
    except (TypeError, ValueError, IndexError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ValueError(f"model {cfg.model.get('_target_')!r} does not fit the data (input "
                         f"{tuple(u.shape)}): {first}") from None
    return model, out


def _is_sds(x) -> bool:
    return isinstance(x, jax.ShapeDtypeStruct)


def abstract_split(skeleton):
    """(trainable shapes, static rest) of a skeleton; the static part is ``None`` when the
    model holds non-trainable arrays (e.g. integer indices) that only a real init provides."""
    params = eqx.filter(skeleton, lambda x: _is_sds(x) and jnp.issubdtype(x.dtype, jnp.inexact))
    _, static = eqx.partition(skeleton, _is_sds)
    others = eqx.filter(skeleton, lambda x: _is_sds(x) and not jnp.issubdtype(x.dtype, jnp.inexact))
    return params, (static if not jax.tree.leaves(others) else None)


def init_model(cfg, derived, key, sharding=None, skeleton=None):
    """Build the model in one compiled program (not one dispatch per layer initialiser).

    The arrays come out with ``sharding`` (e.g. replicated over the mesh), the rest of the
    module from the abstract trace. On CPU the one-off init program is compiled without
    backend optimisation, which halves its compile time.
    """
    skeleton = abstract_model(cfg, derived, key) if skeleton is None else skeleton
    _, static = eqx.partition(skeleton, _is_sds)
    fn = jax.jit(lambda k: eqx.filter(build_model(cfg, derived, k), eqx.is_array),
                 out_shardings=sharding)
    opts = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
    arrays = fn.lower(key).compile(compiler_options=opts)(key)
    return eqx.combine(arrays, static)


def split(model):
    """(trainable floating arrays, static rest); ``eqx.combine`` undoes it."""
    return eqx.partition(model, eqx.is_inexact_array)


def cast_floating(tree, dtype):
    """Cast every floating array leaf of ``tree`` to ``dtype`` (others untouched)."""
    def cast(x):
        if isinstance(x, jax.Array | jnp.ndarray) and jnp.issubdtype(x.dtype, jnp.floating):
            return x.astype(dtype)
        return x

    return jax.tree.map(cast, tree)


def count_params(params) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(params) if hasattr(x, "size"))
