"""Flax NNX adapter: same forward and gradients as the NNX module, jit/vmap, Hydra, training."""

import functools

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import optax
import pytest
from flax import nnx

from pdekit.models import CondNorm, ModelSpec
from pdekit.models.flax_adapter import NNXAdapter, from_nnx

COND = jnp.array([0.3, 0.1])
N = 16
SPEC = ModelSpec(spatial_dims=1, history=2, future=1, channels=1, num_cond=2)


class TinyNNX(nnx.Module):
    """A user's NNX model with the pdekit call signature (1D, circular convs)."""

    def __init__(self, *, rngs, spatial_dims, history, future, channels, num_cond, width=8):
        self.conv = nnx.Conv(history * channels + num_cond, width, (3,), padding="CIRCULAR",
                             rngs=rngs)
        self.out = nnx.Conv(width, future * channels, (3,), padding="CIRCULAR", rngs=rngs)
        self.future, self.channels = future, channels

    def __call__(self, u, cond):
        n = u.shape[-1]
        x = jnp.concatenate([u.reshape(-1, n), jnp.broadcast_to(cond[:, None], (len(cond), n))])
        return self.out(nnx.gelu(self.conv(x.T))).T.reshape(self.future, self.channels, n)


def build(seed=0):
    return TinyNNX(rngs=nnx.Rngs(seed), spatial_dims=1, history=2, future=1, channels=1,
                   num_cond=2)


def data(key, batch):
    u = jr.normal(key, (batch, 2, 1, N))
    return u, 0.5 * u[:, -1:] + 0.5 * jnp.roll(u[:, -1:], 1, axis=-1)  # target: a fixed map


def test_forward_equals_nnx_module_and_jit_vmap_work():
    module = build()
    adapter = NNXAdapter(module, SPEC)
    u, _ = data(jr.key(1), 3)
    direct = module(u[0], COND)
    np.testing.assert_array_equal(np.asarray(adapter(u[0], COND)), np.asarray(direct))
    batched = eqx.filter_jit(jax.vmap(lambda m, v: m(v, COND), in_axes=(None, 0)))(adapter, u)
    assert batched.shape == (3, 1, 1, N)
    np.testing.assert_allclose(batched[0], direct, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(batched[2], module(u[2], COND), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="flax.nnx.Module"):
        NNXAdapter(lambda u, c: u, SPEC)


def test_filter_grad_equals_nnx_grad():
    module = build(3)
    u, y = data(jr.key(2), 4)
    loss = lambda m: jnp.mean(jnp.square(jax.vmap(lambda v: m(v, COND))(u) - y))
    g_nnx = nnx.jit(nnx.grad(loss))(module)
    g_eqx = eqx.filter_jit(eqx.filter_grad(loss))(NNXAdapter(module, SPEC)).state
    flat_nnx = jax.tree_util.tree_leaves_with_path(g_nnx)
    flat_eqx = jax.tree_util.tree_leaves_with_path(g_eqx)
    assert [p for p, _ in flat_nnx] == [p for p, _ in flat_eqx] and len(flat_nnx) == 4
    for (_, a), (_, b) in zip(flat_nnx, flat_eqx, strict=True):
        assert float(jnp.max(jnp.abs(a))) > 0
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)


def test_spec_checks_input_and_maps_cond():
    module = build()
    norm = CondNorm.from_ranges([(0.2, 0.4), (0.0, 0.2)], span=5.0)  # COND -> (2.5, 2.5)
    adapter = NNXAdapter(module, SPEC.replace(cond_norm=norm))
    u = jr.normal(jr.key(5), (2, 1, N))
    np.testing.assert_allclose(adapter(u, COND), module(u, jnp.array([2.5, 2.5])), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="jax.vmap"):
        adapter(jnp.stack([u, u]), COND)
    with pytest.raises(ValueError, match="cond"):
        adapter(u, COND[:1])


def test_hydra_factory_and_end_to_end_training():
    cfg = {"_target_": "pdekit.models.flax_adapter.from_nnx",
           "module_factory": {"_target_": f"{__name__}.TinyNNX", "_partial_": True, "width": 8}}
    model = hydra.utils.instantiate(cfg, spatial_dims=1, history=2, future=1, channels=1,
                                    num_cond=2, key=jr.key(0))
    assert isinstance(model, NNXAdapter) and model.module.conv.out_features == 8
    # the same key gives the same weights as building through functools.partial
    again = from_nnx(functools.partial(TinyNNX, width=8), spatial_dims=1, history=2, future=1,
                     channels=1, num_cond=2, key=jr.key(0))
    for a, b in zip(jax.tree.leaves(model.state), jax.tree.leaves(again.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    opt = optax.adam(1e-2)
    loss = eqx.filter_jit(lambda m, u, y: jnp.mean(jnp.square(jax.vmap(lambda v: m(v, COND))(u) - y)))

    @eqx.filter_jit
    def step(m, state, u, y):
        value, g = eqx.filter_value_and_grad(loss)(m, u, y)
        upd, state = opt.update(g, state, eqx.filter(m, eqx.is_inexact_array))
        return eqx.apply_updates(m, upd), state, value

    state = opt.init(eqx.filter(model, eqx.is_inexact_array))
    u_eval, y_eval = data(jr.key(99), 64)
    before = float(loss(model, u_eval, y_eval))
    for i in range(60):
        model, state, _ = step(model, state, *data(jr.key(i), 16))
    after = float(loss(model, u_eval, y_eval))
    assert after < 0.1 * before, (before, after)
    assert isinstance(model, NNXAdapter)  # still usable as an NNX module afterwards
    np.testing.assert_allclose(model.module(u_eval[0], COND), model(u_eval[0], COND), atol=1e-6)
