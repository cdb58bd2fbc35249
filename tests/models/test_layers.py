"""Shared layers against independent NumPy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.models.conditioning import CondNorm
from pdekit.models.layers import (
    CircularConv,
    CircularUpConv,
    ConditioningEmbedding,
    GroupNorm,
    avg_pool,
    circular_upsample,
    sinusoidal_embedding,
)

KEY = jax.random.key(0)


def _circ_corr_1d(x, w, b, stride=1):
    """Reference: y[o, j] = b[o] + sum_{i,t} w[o,i,t] x[i, (s j + t - k//2) mod N]."""
    cin, n = x.shape
    cout, _, k = w.shape
    y = np.zeros((cout, n // stride))
    for j in range(n // stride):
        for t in range(k):
            y[:, j] += w[:, :, t] @ x[:, (stride * j + t - k // 2) % n]
    return y + b[:, None]


@pytest.mark.parametrize("stride", [1, 2])
def test_circular_conv_matches_numpy(stride):
    conv = CircularConv(1, 3, 4, 3, stride=stride, key=KEY)
    x = np.asarray(jax.random.normal(jax.random.key(1), (3, 12)))
    ref = _circ_corr_1d(x, np.asarray(conv.weight), np.asarray(conv.bias), stride)
    np.testing.assert_allclose(np.asarray(conv(jnp.asarray(x))), ref, atol=1e-5)


def test_circular_up_conv_is_periodic_transposed_conv():
    """y[(2i + t - 1) mod 2N] += W_t x[i] (torch ConvTranspose1d(k=4, s=2, p=1), wrapped);
    the stored kernel is the correlation (flipped) form, W_t = weight[..., 3 - t]."""
    up = CircularUpConv(1, 3, 2, key=KEY)
    x = np.asarray(jax.random.normal(jax.random.key(2), (3, 8)))
    w = np.asarray(up.weight)
    ref = np.zeros((2, 16))
    for i in range(8):
        for t in range(4):
            ref[:, (2 * i + t - 1) % 16] += w[:, :, 3 - t] @ x[:, i]
    ref += np.asarray(up.bias)[:, None]
    np.testing.assert_allclose(np.asarray(up(jnp.asarray(x))), ref, atol=1e-5)
    # 2D: a shift by s cells becomes a shift by 2s cells.
    up2 = CircularUpConv(2, 3, 2, key=KEY)
    x2 = jax.random.normal(jax.random.key(3), (3, 8, 4))
    y2 = up2(x2)
    assert y2.shape == (2, 16, 8)
    err = jnp.abs(up2(jnp.roll(x2, (1, 3), (1, 2))) - jnp.roll(y2, (2, 6), (1, 2))).max()
    assert err < 1e-5


def test_group_norm_matches_formula():
    x = np.asarray(jax.random.normal(KEY, (6, 5, 4))) * 3 + 1
    gn = GroupNorm(2, 6)
    xg = x.reshape(2, -1)
    ref = ((xg - xg.mean(1, keepdims=True)) / np.sqrt(xg.var(1, keepdims=True) + 1e-5))
    np.testing.assert_allclose(np.asarray(gn(jnp.asarray(x))), ref.reshape(x.shape), atol=1e-5)
    with pytest.raises(ValueError, match="groups"):
        GroupNorm(4, 6)


def test_sinusoidal_embedding_values():
    t = 3.7
    half = 5
    f = np.exp(-np.log(10000.0) * np.arange(half) / half)
    ref = np.concatenate([np.cos(t * f), np.sin(t * f), [0.0]])
    np.testing.assert_allclose(np.asarray(sinusoidal_embedding(jnp.asarray(t), 11)), ref,
                               atol=1e-6)


def test_conditioning_embedding_count_and_value():
    norm = CondNorm([0.7, 0.2], [0.9, 0.3], [5.0, 5.0])
    emb = ConditioningEmbedding(2, 8, 16, norm=norm, key=KEY)
    n_params = sum(a.size for a in (emb.w1, emb.b1, emb.w2, emb.b2))
    assert n_params == 2 * (8 * 16 + 16 + 16 * 16 + 16) == 832
    cond = np.array([0.8, 0.25])
    out = np.zeros(16)
    for i, c in enumerate([(0.8 - 0.7) / 0.2 * 5.0, (0.25 - 0.2) / 0.1 * 5.0]):  # 2.5, 2.5
        f = np.asarray(sinusoidal_embedding(jnp.asarray(c), 8))
        h = np.asarray(emb.w1[i]) @ f + np.asarray(emb.b1[i])
        h = np.asarray(jax.nn.gelu(jnp.asarray(h), approximate=False))
        out += np.asarray(emb.w2[i]) @ h + np.asarray(emb.b2[i])
    np.testing.assert_allclose(np.asarray(emb(jnp.asarray(cond))), out, atol=1e-5)
    with pytest.raises(ValueError, match="maps 2 scalars but num_cond=3"):
        ConditioningEmbedding(3, 8, 16, norm=norm, key=KEY)


def test_pool_and_periodic_upsample():
    x = jnp.arange(16.0).reshape(1, 4, 4)
    np.testing.assert_allclose(np.asarray(avg_pool(x))[0], [[2.5, 4.5], [10.5, 12.5]])
    with pytest.raises(ValueError, match="divisible"):
        avg_pool(jnp.ones((1, 6, 5)))
    # Cubic x2 interpolation of a well-resolved periodic sine (cell centres at j + 1/2).
    n = 32
    z = jnp.sin(2 * jnp.pi * jnp.arange(n) / n)[None]
    fine = jnp.sin(2 * jnp.pi * (jnp.arange(2 * n) / 2 - 0.25) / n)
    assert jnp.abs(circular_upsample(z)[0] - fine).max() < 2e-3
    # Shift by 3 coarse cells == shift by 6 fine cells (no boundary effects).
    y = circular_upsample(jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8))))
    ys = circular_upsample(jnp.roll(jnp.asarray(np.random.default_rng(0).normal(size=(2, 8, 8))),
                                    3, axis=1))
    assert jnp.abs(ys - jnp.roll(y, 6, axis=1)).max() < 1e-5
