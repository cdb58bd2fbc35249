"""Every model preset keeps the model interface (docs/models.md, Interface).

Each preset of the ``model`` config group is composed as ``pdekit train model=<name>`` does,
shrunk to tiny sizes, built through the trainer's path (``pdekit.training.targets.build`` with
a :class:`pdekit.models.ModelSpec`), and run through one compiled probe: the output shape of one
sample and of a ``vmap``ed batch (rows equal to single-sample calls), the keys (a stochastic
model gives different outputs for different keys and equal outputs for equal keys; a
deterministic one ignores its key), bfloat16 parameters and inputs (agreeing with float32 to
``BF16_RTOL``) and a finite, nonzero gradient. 1D presets run on N = 16, 2D ones on 16 x 16.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from omegaconf import OmegaConf

from pdekit.configs import compose, presets
from pdekit.models import FNO, AbstractModel, CondNorm, ModelSpec, is_stochastic
from pdekit.training import targets
from pdekit.training.model import cast_floating

N, BATCH = 16, 3
#: relative L2 error allowed between a bf16 and an fp32 forward pass: bfloat16 keeps 8
#: significant bits (unit roundoff 2**-8 = 3.9e-3), and a tiny network of a few layers
#: accumulates about ten such roundings (measured: 0.003 to 0.015 over the presets).
BF16_RTOL = 4e-2

#: tiny hyperparameters per model class (a refiner's backbone gets its class's entry). The
#: SineNet presets differ in their number of waves and channel multiplier; the waves run as
#: one lax.scan whatever their number, so all three are probed with 2 waves and one
#: multiplier and share one compilation (as do the two 1D U-Nets, and the two refiners).
TINY = {
    "pdekit.models.fno.FNO": {"width": 8, "modes": 4, "num_layers": 2, "projection_channels": 8},
    "pdekit.models.unet.UNetMod": {"hidden_channels": 8, "channel_multipliers": [1],
                                   "num_blocks": 1, "zero_init": False},
    "pdekit.models.sinenet.SineNet": {"hidden_channels": 8, "num_levels": 1, "num_waves": 2,
                                      "channel_multiplier": 1.5},
    "pdekit.models.mppde.MPPDE": {"hidden": 16, "num_layers": 1},
    # sigma_min 0.1: the published 6.3e-4 would leave the last steps' noise below bf16's
    # resolution of the estimate, so the bf16 comparison would test rounding of the noise
    "pdekit.models.refiner.PDERefiner": {"min_noise_std": 0.1},
}
#: in 2D the U-Net keeps two levels, so its strided and transposed convs are probed too
TINY_2D = {"pdekit.models.unet.UNetMod": {"channel_multipliers": [1, 2]}}
#: the I/O contract each preset is probed at: (spatial_dims, history, future, channels)
SHAPES = {"1d": (1, 2, 1, 1), "2d": (2, 2, 1, 2)}
BUNDLED = {"pdekit.models.mppde.MPPDE": 2}  # future frames of temporal-bundling models
NUM_COND = 2


def _tiny(node: dict, dims: str) -> dict:
    target = node["_target_"]
    assert target in TINY, f"add tiny hyperparameters for {target} to TINY"
    out = {**node, **TINY[target], **(TINY_2D.get(target, {}) if dims == "2d" else {})}
    if isinstance(node.get("backbone"), dict):
        out["backbone"] = _tiny(node["backbone"], dims)
    return out


def _dims(name: str) -> str:
    return "2d" if ("2d" in name or "sinenet" in name) else "1d"


def _spec(preset: dict, dims: str) -> ModelSpec:
    spatial_dims, history, future, channels = SHAPES[dims]
    future = BUNDLED.get(preset["_target_"], future)
    norm = CondNorm.from_ranges([(0.7, 0.9), (0.2, 0.3)])  # dt, dx as the KS data's
    return ModelSpec(spatial_dims=spatial_dims, history=history, future=future,
                     channels=channels, num_cond=NUM_COND, cond_norm=norm)


def _inputs(spec: ModelSpec, key):
    ku, kc, kt = jr.split(key, 3)
    spatial = (N,) * spec.spatial_dims
    u = jr.normal(ku, (BATCH, *spec.input_shape(spatial)))
    cond = jnp.array([0.7, 0.2]) + jr.uniform(kc, (BATCH, NUM_COND)) * jnp.array([0.2, 0.1])
    target = jr.normal(kt, (BATCH, *spec.output_shape(spatial)))
    return u, cond, target


def probe_impl(model, u, cond, target, keys):
    """Everything the test checks, in one program per preset: the batch under each key
    (whose first key's MSE against ``target`` is differentiated), one sample alone, and the
    batch with bf16 parameters and inputs."""

    def loss(m):
        outs = jax.vmap(lambda k: jax.vmap(lambda v, c: m(v, c, key=k))(u, cond))(keys)
        return jnp.mean(jnp.square(outs[0].astype(jnp.float32) - target)), outs

    (_, per_key), grad = eqx.filter_value_and_grad(loss, has_aux=True)(model)
    single = model(u[0], cond[0], key=keys[0])
    low = cast_floating(model, jnp.bfloat16)
    bf16 = jax.vmap(lambda v, c: low(v, c, key=keys[0]))(u.astype(jnp.bfloat16),
                                                        cond.astype(jnp.bfloat16))
    return single, per_key, bf16, grad


@functools.cache
def probe():
    """:func:`probe_impl` jitted; presets equal after shrinking share one compilation. On CPU
    the backend's optimisation passes are skipped (they double the compile time of these
    tiny programs and change nothing the test checks beyond rounding)."""
    opts = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else {}
    return eqx.filter_jit(probe_impl, compiler_options=opts)


@pytest.mark.parametrize("name", presets("model"))
def test_preset_keeps_the_model_interface(name):
    dims = _dims(name)
    preset = _tiny(OmegaConf.to_container(compose("train", [f"model={name}"]).model,
                                          resolve=True), dims)
    spec = _spec(preset, dims)
    model = targets.build(preset, "model", key=jr.key(0), **spec.kwargs())
    assert isinstance(model, AbstractModel) and model.spec == spec
    u, cond, target = _inputs(spec, jr.key(1))
    keys = jnp.stack([jr.key(2), jr.key(3)])

    single, per_key, bf16, grad = probe()(model, u, cond, target, keys)
    out_shape = spec.output_shape((N,) * spec.spatial_dims)
    assert single.shape == out_shape and single.dtype == jnp.float32
    assert per_key.shape == (2, BATCH, *out_shape)
    out = np.asarray(per_key[0])
    assert np.isfinite(out).all() and np.abs(out).max() > 0
    # vmap: row 0 of the batch is the single-sample call
    np.testing.assert_allclose(out[0], single, rtol=1e-5, atol=1e-5)

    # keys
    again = np.asarray(probe()(model, u, cond, target, keys)[1])
    np.testing.assert_array_equal(again, per_key)  # the same key gives the same output
    gap = np.abs(np.asarray(per_key[1]) - out).max()
    if is_stochastic(model):
        assert gap > 1e-3 * np.abs(out).max(), "different keys must give different outputs"
    else:
        assert gap == 0.0, "a deterministic model must ignore its key"

    # bf16 parameters and inputs
    assert bf16.dtype == jnp.bfloat16 and bf16.shape == out.shape
    err = np.linalg.norm(np.asarray(bf16, np.float32) - out) / np.linalg.norm(out)
    assert err < BF16_RTOL, f"bf16 relative error {err:.3g}"

    # gradient
    leaves = [np.asarray(g) for g in jax.tree.leaves(eqx.filter(grad, eqx.is_inexact_array))]
    assert leaves and all(np.isfinite(g).all() for g in leaves)
    assert sum(float(np.sum(g**2)) for g in leaves) > 0


def test_input_check_says_to_vmap():
    """The interface's check, shared by every model: a batch passed as one sample."""
    spec = ModelSpec(spatial_dims=1, history=2, future=1, channels=1, num_cond=2)
    model = FNO.from_spec(spec, key=jr.key(0), width=4, modes=2, num_layers=1,
                          projection_channels=4)
    with pytest.raises(ValueError, match="jax.vmap"):
        model(jnp.zeros((BATCH, 2, 1, N)), jnp.zeros(2))
    with pytest.raises(ValueError, match=r"cond of shape \(2,\)"):
        model(jnp.zeros((2, 1, N)), jnp.zeros(3))
