"""Shared building blocks for the convolutional and spectral models.

Every layer acts on ONE channel-first sample ``(channels, *spatial)`` and works for any
number of spatial dimensions. Domains are periodic, so every convolution pads circularly
(``jnp.pad(mode="wrap")``) and pooling/upsampling commute with periodic shifts by multiples
of their factor.

Stable public names (other model files import them): :func:`circular_pad`,
:class:`CircularConv`, :class:`CircularUpConv`, :class:`PointwiseLinear`, :class:`GroupNorm`,
:func:`sinusoidal_embedding`, :class:`ConditioningEmbedding`, :func:`avg_pool`,
:func:`circular_upsample`, :func:`gelu`, :func:`check_divisible`.
"""


import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from pdekit.models.conditioning import CondNorm
from pdekit.models.conditioning import resolve as resolve_cond_norm


def gelu(x: Array) -> Array:
    """Exact (erf) GELU, as ``torch.nn.GELU()``."""
    return jax.nn.gelu(x, approximate=False)


def check_divisible(spatial: Sequence[int], factor: int, what: str) -> None:
    """Raise a ValueError unless every spatial size is divisible by ``factor``."""
    bad = [n for n in spatial if n % factor]
    if bad:
        raise ValueError(
            f"{what}: spatial size {tuple(spatial)} is not divisible by {factor}; "
            f"use grid sizes that are multiples of {factor} or fewer levels."
        )


def circular_pad(x: Float[Array, " c *spatial"], pad: Sequence[tuple[int, int]]) -> Array:
    """Periodic padding of every spatial axis; ``pad`` holds (left, right) per spatial axis."""
    return jnp.pad(x, ((0, 0), *pad), mode="wrap")


_TRACED = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError)


def uniform_init(key: PRNGKeyArray, shape: Sequence[int], bound: float, center: float = 0.0
                 ) -> Array:
    """float32 samples of ``U(center - bound, center + bound)`` with the given shape.

    With a concrete key the numbers are drawn on the host by NumPy's PCG64, seeded with the
    key's data: no XLA program is compiled, which on CPU makes building a model seconds
    instead of minutes (each distinct ``jax.random`` shape costs one compilation). When the
    key is abstract (the model is built under ``jit``, ``vmap`` or ``eval_shape``) the draw
    uses ``jax.random.uniform`` instead. Both are deterministic functions of the key, but
    the two paths give different (identically distributed) numbers.
    """
    shape = tuple(int(n) for n in shape)
    try:
        seed = np.asarray(jax.random.key_data(key)).ravel()
    except _TRACED:  # built under jit / vmap / eval_shape
        return center + jax.random.uniform(key, shape, minval=-bound, maxval=bound)
    rng = np.random.default_rng([int(v) for v in seed])
    return jnp.asarray(rng.uniform(center - bound, center + bound, size=shape).astype(np.float32))


def constant_init(shape: Sequence[int], value: float) -> Array:
    """float32 array filled with ``value`` (built on the host; no compilation)."""
    return jnp.asarray(np.full(tuple(shape), value, np.float32))


def zero_params(module: eqx.Module) -> eqx.Module:
    """Return ``module`` with every floating-point array replaced by zeros."""
    return jax.tree.map(
        lambda a: jnp.asarray(np.zeros(a.shape, a.dtype)) if eqx.is_inexact_array(a) else a,
        module)


def stack_modules(modules: Sequence[eqx.Module]) -> eqx.Module:
    """Stack structurally identical modules into one whose arrays have a leading axis
    (for ``lax.scan`` over layers)."""

    def stack(*xs):
        try:
            return jnp.asarray(np.stack([np.asarray(x) for x in xs]))
        except _TRACED:
            return jnp.stack(xs)

    arrays = [eqx.filter(m, eqx.is_array) for m in modules]
    static = eqx.filter(modules[0], eqx.is_array, inverse=True)
    return eqx.combine(jax.tree.map(stack, *arrays), static)


class CircularConv(eqx.Module):
    """Convolution with circular ("same") padding on a periodic domain.

    ``y = conv(wrap_pad(x)) + b`` with a ``(cout, cin, k, ..., k)`` kernel (cross-correlation,
    as torch/``eqx.nn.Conv``). Odd kernels pad ``k // 2`` on both sides (torch's
    ``padding=k//2, padding_mode="circular"``); with ``stride=s`` and spatial size divisible by
    ``s`` the output has size ``N / s``. Init: ``U(+-1/sqrt(fan_in))`` like torch.
    """

    weight: Float[Array, " cout cin *kernel"]
    bias: Float[Array, " cout"] | None
    stride: int = eqx.field(static=True)

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        use_bias: bool = True,
        key: PRNGKeyArray,
    ):
        if kernel_size % 2 != 1:
            raise ValueError(f"CircularConv needs an odd kernel_size, got {kernel_size}.")
        wkey, bkey = jax.random.split(key)
        bound = 1.0 / math.sqrt(in_channels * kernel_size**spatial_dims)
        self.weight = uniform_init(
            wkey, (out_channels, in_channels) + (kernel_size,) * spatial_dims, bound)
        self.bias = uniform_init(bkey, (out_channels,), bound) if use_bias else None
        self.stride = stride

    def __call__(self, x: Float[Array, " cin *spatial"]) -> Float[Array, " cout *spatial_out"]:
        nd = x.ndim - 1
        k = self.weight.shape[-1]
        xp = circular_pad(x, ((k // 2, k // 2),) * nd)
        y = jax.lax.conv_general_dilated(xp[None], self.weight.astype(x.dtype),
                                         window_strides=(self.stride,) * nd, padding="VALID")[0]
        if self.bias is not None:
            y = y + self.bias.astype(x.dtype).reshape((-1,) + (1,) * nd)
        return y


class CircularUpConv(eqx.Module):
    """Periodic transposed convolution that upsamples every axis by ``stride``.

    The circular analogue of ``ConvTranspose(k, stride=s, padding=p)`` with ``k = s + 2p``
    (PDEArena's upsampler is ``k=4, s=2, p=1``): the output ``y`` of length ``s N`` is
    ``y[j] = sum_{i,t} w[t] x[i]`` over ``(s i + t - p) mod sN = j``. Implemented as a
    correlation of the zero-interleaved input (``lhs_dilation``) with the stored kernel,
    after wrap-padding the input, so no zero-stuffed array is materialised by hand. Same
    parameter count as the torch layer: ``cin * cout * k**d + cout``.
    """

    weight: Float[Array, " cout cin *kernel"]
    bias: Float[Array, " cout"]
    stride: int = eqx.field(static=True)
    padding: int = eqx.field(static=True)

    def __init__(
        self,
        spatial_dims: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 4,
        *,
        stride: int = 2,
        padding: int = 1,
        key: PRNGKeyArray,
    ):
        if kernel_size != stride + 2 * padding:
            raise ValueError(
                f"CircularUpConv needs kernel_size == stride + 2*padding for an exact x{stride} "
                f"upsampling; got kernel_size={kernel_size}, stride={stride}, padding={padding}."
            )
        wkey, bkey = jax.random.split(key)
        bound = 1.0 / math.sqrt(out_channels * kernel_size**spatial_dims)
        shape = (out_channels, in_channels) + (kernel_size,) * spatial_dims
        self.weight = uniform_init(wkey, shape, bound)
        self.bias = uniform_init(bkey, (out_channels,), bound)
        self.stride, self.padding = stride, padding

    def __call__(self, x: Float[Array, " cin *spatial"]) -> Float[Array, " cout *spatial_up"]:
        s, p = self.stride, self.padding
        k = self.weight.shape[-1]
        nd = x.ndim - 1
        left = k - 1 - p  # taps reaching back (in upsampled coordinates)
        a, b = -(-left // s), -(-p // s)  # input cells of wrap padding left/right
        xp = circular_pad(x, ((a, b),) * nd)
        y = jax.lax.conv_general_dilated(
            xp[None], self.weight.astype(x.dtype), window_strides=(1,) * nd,
            padding=((0, s - 1),) * nd, lhs_dilation=(s,) * nd,
        )[0]
        start = s * a - left
        idx = tuple(slice(start, start + s * n) for n in x.shape[1:])
        y = y[(slice(None), *idx)]
        return y + self.bias.astype(x.dtype).reshape((-1,) + (1,) * nd)


class PointwiseLinear(eqx.Module):
    """Pointwise (1x1) linear map of the channels at every grid point: ``W x + b``.

    Also serves as a dense layer on a vector ``(cin,)``. Init ``U(+-1/sqrt(cin))``.
    """

    weight: Float[Array, " cout cin"]
    bias: Float[Array, " cout"] | None

    def __init__(self, in_channels: int, out_channels: int, *, use_bias: bool = True,
                 key: PRNGKeyArray):
        wkey, bkey = jax.random.split(key)
        bound = 1.0 / math.sqrt(in_channels)
        self.weight = uniform_init(wkey, (out_channels, in_channels), bound)
        self.bias = uniform_init(bkey, (out_channels,), bound) if use_bias else None

    def __call__(self, x: Float[Array, " cin *spatial"]) -> Float[Array, " cout *spatial"]:
        y = jnp.tensordot(self.weight.astype(x.dtype), x, axes=(1, 0))
        if self.bias is not None:
            y = y + self.bias.astype(x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
        return y


class GroupNorm(eqx.Module):
    """Group normalisation of one channel-first sample with a per-channel affine map.

    Channels are split into ``groups``; each group is normalised by its mean and variance
    over (its channels x all grid points), as ``torch.nn.GroupNorm``. Statistics are taken
    in float32 even for bfloat16 inputs; the output has the input's dtype.
    """

    weight: Float[Array, " channels"]
    bias: Float[Array, " channels"]
    groups: int = eqx.field(static=True)
    eps: float = eqx.field(static=True)

    def __init__(self, groups: int, channels: int, eps: float = 1e-5):
        if channels % groups:
            raise ValueError(f"GroupNorm: {channels} channels cannot be split into {groups} groups.")
        self.weight = constant_init((channels,), 1.0)
        self.bias = constant_init((channels,), 0.0)
        self.groups, self.eps = groups, eps

    def __call__(self, x: Float[Array, " c *spatial"]) -> Float[Array, " c *spatial"]:
        xg = x.astype(jnp.float32).reshape(self.groups, -1)
        mean = xg.mean(axis=1, keepdims=True)
        var = jnp.mean(jnp.square(xg - mean), axis=1, keepdims=True)
        y = ((xg - mean) * jax.lax.rsqrt(var + self.eps)).reshape(x.shape)
        bshape = (-1,) + (1,) * (x.ndim - 1)
        y = y * self.weight.astype(jnp.float32).reshape(bshape) + self.bias.astype(
            jnp.float32).reshape(bshape)
        return y.astype(x.dtype)


def sinusoidal_embedding(t: Float[Array, ""], dim: int, max_period: float = 10000.0
                         ) -> Float[Array, " dim"]:
    """Sinusoidal features of a scalar: ``[cos(t f_i), sin(t f_i)]``, ``f_i = P^(-i/half)``.

    ``half = dim // 2`` frequencies from 1 down to ``1/max_period`` (cosines first, as in
    PDEArena / guided diffusion); a trailing zero is appended when ``dim`` is odd.
    """
    half = dim // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = jnp.asarray(t, jnp.float32) * freqs
    emb = jnp.concatenate([jnp.cos(args), jnp.sin(args)])
    if dim % 2:
        emb = jnp.concatenate([emb, jnp.zeros((1,), jnp.float32)])
    return emb


class ConditioningEmbedding(eqx.Module):
    """Embedding of ``num_cond`` conditioning scalars into one vector of size ``embed_dim``.

    Each scalar ``c_i``, first mapped by ``norm`` (a :class:`pdekit.models.CondNorm`, from the
    training data's range to ``[0, span]``), gets sinusoidal features ``f_i`` of size
    ``features`` and its own MLP ``W2_i GELU(W1_i f_i + b1_i) + b2_i`` (``features -> E -> E``);
    the results are summed (PDEArena's ``time_embed`` + ``pde_emb`` scheme, where the diffusion
    time is one more scalar). The MLPs are stored stacked and applied with one einsum.
    Parameters: ``num_cond * (features*E + E + E*E + E)``. With ``num_cond == 0`` the output is
    zeros.
    """

    w1: Float[Array, " n e f"]
    b1: Float[Array, " n e"]
    w2: Float[Array, " n e e"]
    b2: Float[Array, " n e"]
    norm: CondNorm
    features: int = eqx.field(static=True)

    def __init__(self, num_cond: int, features: int, embed_dim: int, *,
                 norm: CondNorm | None = None, key: PRNGKeyArray):
        self.norm = resolve_cond_norm(norm, num_cond, "ConditioningEmbedding")
        self.features = features
        k1, k2, k3, k4 = jax.random.split(key, 4)
        n, e = num_cond, embed_dim
        self.w1 = uniform_init(k1, (n, e, features), 1.0 / math.sqrt(features))
        self.b1 = uniform_init(k2, (n, e), 1.0 / math.sqrt(features))
        self.w2 = uniform_init(k3, (n, e, e), 1.0 / math.sqrt(e))
        self.b2 = uniform_init(k4, (n, e), 1.0 / math.sqrt(e))

    def features_of(self, cond: Float[Array, " num_cond"]) -> Float[Array, " num_cond features"]:
        """The sinusoidal features of the mapped scalars (before the MLPs)."""
        return jax.vmap(lambda t: sinusoidal_embedding(t, self.features))(self.norm(cond))

    def __call__(self, cond: Float[Array, " num_cond"]) -> Float[Array, " embed_dim"]:
        f = self.features_of(cond).astype(self.w1.dtype)
        h = gelu(jnp.einsum("nef,nf->ne", self.w1, f) + self.b1)
        return (jnp.einsum("nek,nk->ne", self.w2, h) + self.b2).sum(axis=0)


def avg_pool(x: Float[Array, " c *spatial"], factor: int = 2) -> Float[Array, " c *spatial_down"]:
    """Average pooling by ``factor`` along every spatial axis (non-overlapping windows)."""
    check_divisible(x.shape[1:], factor, "avg_pool")
    shape = [x.shape[0]]
    for n in x.shape[1:]:
        shape += [n // factor, factor]
    return x.reshape(shape).mean(axis=tuple(range(2, 2 * x.ndim, 2)))


def circular_upsample(x: Float[Array, " c *spatial"], factor: int = 2, method: str = "cubic",
                      halo: int = 2) -> Float[Array, " c *spatial_up"]:
    """Periodic interpolation by ``factor``: wrap-pad ``halo`` cells, ``jax.image.resize``, crop.

    ``halo=2`` covers the support of the cubic kernel, so the result equals interpolation of
    the periodic extension and commutes with periodic shifts (a shift by ``s`` cells becomes a
    shift by ``factor * s``).
    """
    nd = x.ndim - 1
    xp = circular_pad(x, ((halo, halo),) * nd)
    y = jax.image.resize(xp, (x.shape[0],) + tuple(factor * n for n in xp.shape[1:]),
                         method=method)
    crop = factor * halo
    return y[(slice(None),) + (slice(crop, -crop),) * nd]
