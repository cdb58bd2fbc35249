"""Residual wrapper and parameter counting."""

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from pdekit.models.wrappers import Residual, count_params


class PointwiseLinear(eqx.Module):
    """Interface-obeying toy model: out[f] = sum_h w[f, h] * u[h] + cond[0]."""

    w: jax.Array

    def __init__(self, *, spatial_dims, history, future, channels, num_cond, key, cond_norm=None):
        self.w = jr.normal(key, (future, history))

    def __call__(self, u, cond, *, key=None):
        return jnp.einsum("fh,hc...->fc...", self.w, u) + cond[0]


def test_residual_adds_last_frame_broadcast_over_future():
    inner = PointwiseLinear(spatial_dims=2, history=3, future=4, channels=2, num_cond=1,
                            key=jr.key(0))
    u = jr.normal(jr.key(1), (3, 2, 5, 6))
    cond = jnp.array([0.25])
    out = eqx.filter_jit(lambda m, v, c: m(v, c))(Residual(inner, scale=0.3), u, cond)
    w, un, ref = np.asarray(inner.w), np.asarray(u), np.empty((4, 2, 5, 6))
    for f in range(4):  # independent loop reference
        ref[f] = un[-1] + 0.3 * (sum(w[f, h] * un[h] for h in range(3)) + 0.25)
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(eqx.filter_jit(lambda m, v, c: m(v, c))(Residual(inner), u, cond)[2],
                               un[-1] + sum(w[2, h] * un[h] for h in range(3)) + 0.25, atol=1e-6)


def test_residual_rejects_mismatched_output():
    bad = PointwiseLinear(spatial_dims=1, history=2, future=1, channels=1, num_cond=1,
                          key=jr.key(0))
    wrapped = Residual(lambda u, c, key=None: jnp.zeros((1, 1, 7)))
    with pytest.raises(ValueError, match="does not match"):
        wrapped(jnp.zeros((2, 1, 8)), jnp.zeros(1))
    with pytest.raises(ValueError, match="callable"):
        Residual(bad.w)


def test_residual_factory_through_hydra():
    cfg = {"_target_": "pdekit.models.wrappers.residual", "scale": 0.5,
           "model": {"_target_": f"{__name__}.PointwiseLinear", "_partial_": True}}
    model = hydra.utils.instantiate(cfg, spatial_dims=1, history=2, future=3, channels=1,
                                    num_cond=1, key=jr.key(2))
    assert isinstance(model, Residual) and model.scale == 0.5
    assert model.model.w.shape == (3, 2)


def test_count_params_counts_inexact_leaves_only():
    assert count_params(eqx.nn.Linear(3, 4, key=jr.key(0))) == 3 * 4 + 4
    mlp = eqx.nn.MLP(5, 2, 7, 2, key=jr.key(0))  # 5->7->7->2 with biases
    assert count_params(mlp) == (5 * 7 + 7) + (7 * 7 + 7) + (7 * 2 + 2)
    tree = {"w": jnp.ones((2, 3)), "z": jnp.ones(4, jnp.complex64), "i": jnp.arange(10),
            "s": 3.0, "name": "x", "b": jnp.ones(5, jnp.bfloat16)}
    assert count_params(tree) == 6 + 4 + 5  # ints and Python scalars are not parameters
    inner = PointwiseLinear(spatial_dims=1, history=2, future=3, channels=1, num_cond=1,
                            key=jr.key(0))
    assert count_params(Residual(inner, 2.0)) == 6  # the static scale is not a parameter
