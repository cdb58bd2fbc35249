"""The conditioning map: training range -> [0, span] before the sinusoidal features."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.models.conditioning import CondNorm
from pdekit.models.layers import ConditioningEmbedding, sinusoidal_embedding

KS_DT, KS_DX = (0.72, 0.88), (0.225, 0.275)  # the KS protocol's model dt and dx ranges


def test_affine_map_endpoints_and_constant_scalar():
    norm = CondNorm.from_ranges([KS_DT, KS_DX, (2.0, 2.0)], span=5.0)
    out = np.asarray(norm(jnp.array([0.72, 0.275, 2.0])))
    np.testing.assert_allclose(out, [0.0, 5.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(norm(jnp.array([0.8, 0.25, 2.0]))), [2.5, 2.5, 0.0],
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(CondNorm.identity(2)(jnp.array([0.3, -7.0]))),
                               [0.3, -7.0], atol=1e-6)
    with pytest.raises(ValueError, match="lo <= hi"):
        CondNorm([1.0], [0.0], [5.0])
    with pytest.raises(ValueError, match="span > 0"):
        CondNorm([0.0], [1.0], [0.0])


def test_features_of_the_data_extremes_differ_by_a_margin():
    """Across the KS data's dt range, the 64 sinusoidal features move by |f(max) - f(min)| >= 2
    (Euclidean; the fastest feature alone moves by 2 sin(5/2) = 1.20), where unscaled they
    moved by 0.24 (dt) and 0.08 (dx); hand-computed from the features' definition."""
    features = 64
    half = features // 2
    freqs = np.exp(-np.log(10000.0) * np.arange(half) / half)

    def dist(a, b):
        fa = np.concatenate([np.cos(a * freqs), np.sin(a * freqs)])
        fb = np.concatenate([np.cos(b * freqs), np.sin(b * freqs)])
        return float(np.linalg.norm(fa - fb))

    emb = ConditioningEmbedding(2, features, 8, norm=CondNorm.from_ranges([KS_DT, KS_DX]),
                                key=jax.random.PRNGKey(0))
    lo, hi = emb.features_of(jnp.array([0.72, 0.225])), emb.features_of(jnp.array([0.88, 0.275]))
    moved = np.linalg.norm(np.asarray(hi - lo), axis=1)
    np.testing.assert_allclose(moved, [dist(0.0, 5.0)] * 2, rtol=1e-5)
    assert moved.min() >= 2.0
    raw = np.linalg.norm(np.asarray(sinusoidal_embedding(jnp.float32(0.88), features)
                                    - sinusoidal_embedding(jnp.float32(0.72), features)))
    assert raw == pytest.approx(dist(0.72, 0.88), rel=1e-4) and raw < 0.25
