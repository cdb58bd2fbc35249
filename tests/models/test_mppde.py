"""MP-PDE: periodic graph, locality, translation equivariance, temporal bundling, presets, and
the roll (default) and gather message paths agreeing."""

import functools

import equinox as eqx
import hydra
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from pdekit.configs import package_dir
from pdekit.models.mppde import MPPDE, MessagePassingLayer, neighbor_offsets, periodic_neighbors

CONFIGS = package_dir()
COND = jnp.array([0.3, 0.1])  # (dt, dx)


@eqx.filter_jit
def fwd(model, u, cond):
    """Jitted forward (shared compile cache across tests; eager first calls are slow)."""
    return model(u, cond)


def small(spatial_dims, **kw):
    args = dict(spatial_dims=spatial_dims, history=3, future=2, channels=2, num_cond=2,
                key=jr.key(0), hidden=16, num_layers=2, num_neighbors=2)
    args.update(kw)
    return MPPDE(**args)


@pytest.fixture(scope="module")
def model1d():
    return small(1)


@pytest.fixture(scope="module")
def model2d():
    return small(2)


def brute_force_neighbours(shape, radius):
    """All j != i with wrapped (minimum-image) index distance <= radius, by direct search."""
    coords = np.stack(np.unravel_index(np.arange(np.prod(shape)), shape), -1)
    d = coords[:, None, :] - coords[None, :, :]
    d = (d + np.asarray(shape) // 2) % np.asarray(shape) - np.asarray(shape) // 2
    close = (np.sum(d**2, -1) <= radius**2) & ~np.eye(len(coords), dtype=bool)
    return [set(np.nonzero(row)[0].tolist()) for row in close], d


@pytest.mark.parametrize("shape,radius,degree", [((10,), 2, 4), ((11,), 3, 6), ((6, 7), 2, 12)])
def test_neighbour_lists_wrap_and_match_brute_force(shape, radius, degree):
    idx, disp = periodic_neighbors(shape, radius)
    assert idx.shape == (int(np.prod(shape)), degree)
    ref, d = brute_force_neighbours(shape, radius)
    for i in range(idx.shape[0]):
        assert set(idx[i].tolist()) == ref[i]
        # disp[e] = x_i - x_j with minimum image, in cell units
        np.testing.assert_array_equal(disp, d[i, idx[i]])
    last = int(np.prod(shape)) - 1
    assert last in idx[0]  # cell 0 sees the last cell (wrap-around), and vice versa
    assert 0 in idx[last]


def test_neighbourhood_explicit_1d():
    idx, disp = periodic_neighbors((8,), 2)
    assert sorted(idx[0].tolist()) == [1, 2, 6, 7]
    assert sorted(idx[7].tolist()) == [0, 1, 5, 6]
    assert sorted(disp[:, 0].tolist()) == [-2, -1, 1, 2]


def test_too_large_radius_and_bad_inputs_raise(model1d):
    with pytest.raises(ValueError, match="wrap onto itself"):
        periodic_neighbors((6,), 3)
    with pytest.raises(ValueError, match="dt_index"):
        small(1, num_cond=0)
    model = model1d
    with pytest.raises(ValueError, match="history=3"):
        model(jnp.zeros((2, 2, 16)), COND)
    with pytest.raises(ValueError, match="cond"):
        model(jnp.zeros((3, 2, 16)), COND[:1])


@pytest.mark.parametrize("spatial_dims", [1, 2])
def test_one_layer_sees_exactly_the_wrapped_neighbourhood(spatial_dims):
    """Without instance norm, the output at cell 0 after one layer changes under a perturbation
    of cell j exactly when j is within radius 2 of cell 0 on the periodic grid (so the last
    cells, N-1 and N-2, do and N-3 does not)."""
    model = small(spatial_dims, num_layers=1, instance_norm=False, history=2, future=1,
                  channels=1)
    shape = (12,) if spatial_dims == 1 else (8, 9)
    n = int(np.prod(shape))
    u = jr.normal(jr.key(1), (2, 1, *shape))
    origin = (0, 0) + (0,) * spatial_dims

    @eqx.filter_jit
    def change_at_origin(model, u):
        bumps = jnp.eye(n).reshape(n, 1, 1, *shape)  # perturb history frame 0, one cell each
        outs = jax.vmap(lambda b: model(u + b, COND)[origin])(bumps)
        return jnp.abs(outs - model(u, COND)[origin])

    change = np.asarray(change_at_origin(model, u))
    ref, _ = brute_force_neighbours(shape, 2)
    expected = np.zeros(n, bool)
    expected[list(ref[0] | {0})] = True
    assert np.all(change[expected] > 1e-6), change[expected]
    np.testing.assert_array_equal(change[~expected], 0.0)
    assert change[n - 1] > 1e-6  # cell N-1 (flat) is a neighbour of cell 0


@pytest.mark.parametrize("spatial_dims,shift", [(1, (5,)), (2, (2, 3))])
def test_translation_equivariance(spatial_dims, shift, model1d, model2d):
    model = model1d if spatial_dims == 1 else model2d
    shape = (24,) if spatial_dims == 1 else (10, 12)
    u = jr.normal(jr.key(2), (3, 2, *shape))
    axes = tuple(range(2, 2 + spatial_dims))
    out_of_rolled = fwd(model, jnp.roll(u, shift, axis=axes), COND)
    rolled_out = jnp.roll(fwd(model, u, COND), shift, axis=axes)
    assert float(jnp.max(jnp.abs(out_of_rolled - rolled_out))) < 1e-5
    assert float(jnp.max(jnp.abs(rolled_out - u[-1]))) > 1e-3  # non-trivial output


class FixedDecoder(eqx.Module):
    d: jax.Array

    def __call__(self, h):
        return self.d


def test_temporal_bundling_formula(model1d):
    u = jr.normal(jr.key(3), (3, 2, 24))
    # zeroed last decoder conv => d = 0 => every future frame equals u^k exactly
    zeroed = eqx.tree_at(lambda m: (m.decoder.conv_2.weight, m.decoder.conv_2.bias), model1d,
                         replace_fn=jnp.zeros_like)
    out = fwd(zeroed, u, COND)
    assert out.shape == (2, 2, 24)
    np.testing.assert_array_equal(np.asarray(out), np.broadcast_to(np.asarray(u[-1]), (2, 2, 24)))
    # hand-set decoder output d[l, c] => u^{k+l} = u^k + l * dt * d[l, c], dt = cond[0]
    d = jnp.array([[1.0, -2.0], [0.5, 3.0]])
    fixed = eqx.tree_at(lambda m: m.decoder, model1d, FixedDecoder(d))
    for dt in (0.3, 0.7):
        out = fwd(fixed, u, jnp.array([dt, 0.1]))
        for ell in (1, 2):
            for c in (0, 1):
                ref = u[-1, c] + ell * dt * d[ell - 1, c]
                np.testing.assert_allclose(out[ell - 1, c], ref, rtol=0, atol=1e-6)


def mppde_param_formula(H, C, P, D, h, layers, k1, k2):
    """Independent count: encoder MLP, `layers` x (message MLP + update MLP), conv decoder."""
    enc = (H * C + P) * h + h + h * h + h
    layer = (2 * h + H * C + D + P) * h + h + h * h + h + (2 * h + P) * h + h + h * h + h
    dec = 8 * k1 + 8 + C * 8 * k2 + C
    return enc + layers * layer + dec


@pytest.mark.parametrize(
    "preset,dims,H,F,C,P,pinned,kernels",
    [
        ("mppde1d", 1, 25, 25, 1, 2, 636_281, (16, 14)),  # paper Burgers setting, cond (dt, dx)
        ("mppde2d", 2, 4, 1, 2, 3, 623_546, (16, 11)),  # e.g. 2-channel 2D flow, cond (dt, dx, nu)
    ],
)
def test_preset_param_counts(preset, dims, H, F, C, P, pinned, kernels):
    with initialize_config_dir(config_dir=str(CONFIGS / "model"), version_base=None):
        cfg = compose(config_name=preset)
    build = lambda key: hydra.utils.instantiate(cfg, spatial_dims=dims, history=H, future=F,
                                                channels=C, num_cond=P, key=key)
    model = eqx.filter_eval_shape(build, jr.key(0))  # shapes only: no weights are drawn
    assert isinstance(model, MPPDE) and len(model.layers) == 6
    assert model.layers[0].hidden == 128 and model.num_neighbors == (3 if dims == 1 else 2)
    leaves = jax.tree.leaves(model)
    assert sum(int(np.prod(x.shape)) for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)) \
        == pinned
    assert pinned == mppde_param_formula(H, C, P, dims, 128, 6, *kernels)


def test_bf16_forward_close_to_fp32(model1d):
    model = model1d
    u = jr.normal(jr.key(4), (3, 2, 24))
    ref = fwd(model, u, COND)
    to_bf16 = lambda t: jax.tree.map(lambda x: x.astype(jnp.bfloat16) if eqx.is_inexact_array(x)
                                     else x, t)
    out = fwd(to_bf16(model), to_bf16(u), to_bf16(COND))
    assert out.dtype == jnp.bfloat16
    err = float(jnp.max(jnp.abs(out.astype(jnp.float32) - ref)))
    assert err < 0.03, err  # measured 0.011 with max|ref| = 2.36 (bf16: ~3 significant digits)
    # the learned part (ref - u^k) is what bf16 must resolve; check it relative to its size
    delta_ref = ref - u[-1]
    delta = out.astype(jnp.float32) - u[-1].astype(jnp.bfloat16).astype(jnp.float32)
    assert float(jnp.max(jnp.abs(delta - delta_ref)) / jnp.max(jnp.abs(delta_ref))) < 0.04  # 0.015



@pytest.fixture(scope="module")
def mp_layers():
    """One message-passing layer per spatial_dims (hidden 8, u_features 3, num_cond 2), with
    NumPy-drawn weights (no jax.random compilations)."""
    rng = np.random.default_rng(5)
    draw = lambda s: jnp.asarray(rng.uniform(-0.4, 0.4, s.shape).astype(np.float32))
    return {d: jax.tree.map(draw, eqx.filter_eval_shape(
        lambda k, d=d: MessagePassingLayer(8, 3, d, 2, True, key=k), jr.key(0))) for d in (1, 2)}


def _layer_inputs(shape, dtype=np.float32):
    rng = np.random.default_rng(len(shape) * 100 + shape[0])
    n = int(np.prod(shape))
    return tuple(jnp.asarray(rng.normal(size=s).astype(dtype)) for s in ((n, 8), (n, 3), (2,)))


@functools.partial(jax.jit, static_argnums=(4, 5))
def roll_and_gather(layer, f, u, cond, shape, radius):
    idx, disp = periodic_neighbors(shape, radius)
    roll = layer.messages_roll(f, u, cond, shape, neighbor_offsets(len(shape), radius))
    return roll, layer.messages(f, u, cond, jnp.asarray(idx), jnp.asarray(disp))


@pytest.mark.parametrize("shape,radius", [((12,), 1), ((11,), 3), ((6, 8), 1), ((7, 8), 2)])
def test_roll_messages_equal_gather(shape, radius, mp_layers):
    """The roll path (shifted reads, running sum over offsets) equals the gather path (neighbour
    indices, (nodes, degree, hidden) tensor, mean) on random inputs, odd sizes included."""
    roll, gather = roll_and_gather(mp_layers[len(shape)], *_layer_inputs(shape), shape, radius)
    assert roll.shape == gather.shape == (int(np.prod(shape)), 8)
    np.testing.assert_allclose(np.asarray(roll), np.asarray(gather), rtol=1e-5, atol=1e-6)


def test_roll_messages_equal_gather_float64(x64, mp_layers):
    layer = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64))
                         if eqx.is_inexact_array(a) else a, mp_layers[2])
    roll, gather = roll_and_gather(layer, *_layer_inputs((7, 8), np.float64), (7, 8), 2)
    assert roll.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(roll), np.asarray(gather), rtol=1e-12, atol=1e-13)


@functools.partial(jax.jit, static_argnums=(4, 5))
def roll_and_gather_grads(layer, f, u, cond, shape, radius):
    """Gradients of a random projection of each path's messages with respect to the layer's
    weights and its inputs f and u (the roll path's backward pass recomputes the messages)."""
    idx, disp = periodic_neighbors(shape, radius)
    offsets = neighbor_offsets(len(shape), radius)
    proj = jnp.cos(jnp.arange(f.shape[0] * 8, dtype=f.dtype).reshape(f.shape[0], 8))

    def loss(impl, layer, f, u):
        m = (layer.messages_roll(f, u, cond, shape, offsets) if impl == "roll" else
             layer.messages(f, u, cond, jnp.asarray(idx), jnp.asarray(disp)))
        return jnp.sum(m * proj)

    grads = lambda impl: eqx.filter_grad(lambda a: loss(impl, *a))((layer, f, u))
    return grads("roll"), grads("gather")


def test_roll_gradients_equal_gather_float64(x64, mp_layers):
    """The rematerialised roll path has the gather path's gradients (weights and inputs)."""
    layer = jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64))
                         if eqx.is_inexact_array(a) else a, mp_layers[2])
    f, u, cond = _layer_inputs((7, 8), np.float64)
    roll, gather = roll_and_gather_grads(layer, f, u, cond, (7, 8), 2)
    leaves_r, leaves_g = jax.tree.leaves(roll), jax.tree.leaves(gather)
    assert len(leaves_r) == len(leaves_g)
    # message_1 and message_2 (weights, biases), f and u: 6 leaves with gradients (the update
    # MLP does not enter the messages, its gradients are zero on both paths)
    assert sum(float(jnp.max(jnp.abs(b))) > 0 for b in leaves_g) == 6
    for a, b in zip(leaves_r, leaves_g, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-11, atol=1e-12)


def _params(model):
    """{path: array or ShapeDtypeStruct} of every leaf with a shape (eval_shape'd models too)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(model)
    return {jax.tree_util.keystr(path): a for path, a in leaves if hasattr(a, "shape")}


def _with_impl(model, dims, impl):
    """`model` (built by `small(dims)`) with message_impl `impl`: the same leaves, after checking
    that they have the same names, shapes and dtypes (a checkpoint of one loads into the other)."""
    shapes = eqx.filter_eval_shape(lambda k: small(dims, key=k, message_impl=impl), jr.key(0))
    got, want = _params(model), _params(shapes)
    assert {k: (v.shape, v.dtype) for k, v in got.items()} == {
        k: (v.shape, v.dtype) for k, v in want.items()}
    return jax.tree.unflatten(jax.tree.structure(shapes), jax.tree.leaves(model))


def test_model_roll_equals_gather_same_parameters(model1d, model2d):
    """message_impl changes neither the parameters nor, beyond rounding, the output (checked
    in 1D; the 2D paths are compared layer by layer above)."""
    assert model1d.message_impl == model2d.message_impl == "gather"
    assert _with_impl(model2d, 2, "roll").message_impl == "roll"
    roll = _with_impl(model1d, 1, "roll")
    u = jr.normal(jr.key(2), (3, 2, 24))  # as test_translation_equivariance: compile cached
    np.testing.assert_allclose(np.asarray(fwd(roll, u, COND)), np.asarray(fwd(model1d, u, COND)),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="message_impl"):
        small(1, message_impl="scatter")
