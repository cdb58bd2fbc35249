"""SineNet (Zhang et al., ICLR 2024): K sequential U-Net "waves", in 1D and 2D.

Layout (hidden ``h``, multiplier ``M``, ``L = num_levels``, level channels
``c_l = int(h * M**l)``, ``l = 0..L``):

* lift: 3x3 conv ``history*channels -> h``;
* ``num_waves`` waves, each ``x <- x + wave(x)`` (``wave_residual``), each wave a U-Net:

  - encoder level ``l = 1..L``: avg-pool(2) the previous level's output, then one conv block
    ``c_{l-1} (+ h) -> c_l`` plus a 1x1 shortcut ``c_{l-1} -> c_l`` of the pooled input. In the
    "disentangled" variant (default) levels ``l >= 2`` also receive the wave input ``x``
    avg-pooled ``l`` times, concatenated (``+ h`` input channels);
  - decoder level ``l = L..1``: interpolate x2 (``interpolation``, see below), concatenate
    with the encoder skip at level ``l-1``, one conv block ``c_l + c_{l-1} -> c_{l-1}`` plus
    a 1x1 shortcut ``c_l -> c_{l-1}`` of the upsampled input;

* conv block: ``[3x3 conv -> GroupNorm(1 group) -> GELU] x 2``;
* projection: 3x3 conv ``h -> future*channels``.

The waves share one structure, so their weights are stacked and the waves run as one
``lax.scan`` (compile time independent of K). ``cond`` is accepted and ignored (this is the
unconditioned SineNet).

Upsampling. The public code (``sinenet_dual.py``) upsamples with torch's
``F.interpolate(scale_factor=2, mode="bicubic")`` (Keys cubic with a = -0.75, half-pixel
alignment); with circular padding it first wrap-pads 2 cells and crops 4 afterwards (periodic
interpolation), with zero padding it interpolates the bare array (torch repeats the border
cells). Here a x2 interpolation is a fixed 2-tap (linear) / 4-tap (cubic) stencil per output
phase and axis, evaluated as shifted slices and weighted sums of the wrap- (``padding=
"circular"``) or edge-padded (``padding="zeros"``) input (:mod:`pdekit.models._upsample`).
``interpolation="cubic"`` is Keys a = -0.5 (``jax.image.resize``'s cubic, this model's
historical choice), ``"cubic_torch"`` is the paper code's a = -0.75. ``upsample_impl=
"resize"`` keeps the former dense ``jax.image.resize`` path (periodic only; for the Lanczos
kernels it is not exactly periodic, its 2-cell halo being narrower than their support).

Padding. ``padding="circular"`` (default; periodic domains) wrap-pads every 3x3 conv and
interpolates periodically; ``padding="zeros"`` zero-pads the convs and repeats the border
cells when interpolating, as the code's ``padding_mode="zeros"`` registry entries
(``sinenet8-dual`` etc.; the ``-circ`` entries are the circular ones). Same parameters.

Parameter counts. Read off the public SineNet code (divelab/AIRS, OpenPDE/SineNet,
``sinenet_dual.py``: channels ``int(h * mult**l)``, torch-style biases, GroupNorm affine), the
PDEArena NavierStokes2D shape (history 4, 3 channels = scalar + 2 velocity, future 1) gives
sinenet8 (M = 1.425): 35,490,219 (the code's stated target), sinenet4 (M = 1.611):
35,493,699, sinenet2 (M = 1.8075): 35,499,989. With circular padding, translation equivariance
holds for shifts by multiples of ``2**L`` cells.
"""


from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from pdekit.models import _upsample
from pdekit.models.base import AbstractModel, ModelSpec
from pdekit.models.conditioning import CondNorm
from pdekit.models.layers import (
    CircularConv,
    GroupNorm,
    PointwiseLinear,
    avg_pool,
    check_divisible,
    circular_upsample,
    gelu,
    stack_modules,
)

_METHODS = tuple(_upsample.KERNELS)  # linear, cubic, cubic_torch, lanczos3, lanczos5
_RESIZE_METHODS = ("cubic", "linear", "lanczos3", "lanczos5")  # jax.image.resize names
_PADDINGS = ("circular", "zeros")
_UPSAMPLE_IMPLS = ("stencil", "resize")


def conv(layer: CircularConv, x: Float[Array, " cin *s"], padding: str
         ) -> Float[Array, " cout *s"]:
    """Apply ``layer``'s kernel and bias with ``padding`` ``"circular"`` (the layer itself) or
    ``"zeros"`` (zero "same" padding, as torch's ``padding=k//2``). Same parameters either way."""
    if padding == "circular":
        return layer(x)
    nd, k = x.ndim - 1, layer.weight.shape[-1]
    y = jax.lax.conv_general_dilated(x[None], layer.weight.astype(x.dtype),
                                     window_strides=(layer.stride,) * nd,
                                     padding=((k // 2, k // 2),) * nd)[0]
    if layer.bias is not None:
        y = y + layer.bias.astype(x.dtype).reshape((-1,) + (1,) * nd)
    return y


def upsample(x: Float[Array, " c *s"], interpolation: str, padding: str, impl: str
             ) -> Float[Array, " c *s_up"]:
    """x2 interpolation of every spatial axis: periodic for ``padding="circular"``, edge-repeat
    (torch's border rule) for ``"zeros"``; ``impl="resize"`` is the dense jax.image.resize."""
    if impl == "resize":
        return circular_upsample(x, 2, interpolation)
    return _upsample.upsample2(x, interpolation, "wrap" if padding == "circular" else "edge")


class ConvBlock(eqx.Module):
    """``[conv3 -> GroupNorm(1) -> GELU] x 2`` (post-norm); convs padded per ``padding``."""

    conv1: CircularConv
    norm1: GroupNorm
    conv2: CircularConv
    norm2: GroupNorm
    padding: str = eqx.field(static=True)

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, *,
                 padding: str = "circular", key: PRNGKeyArray):
        k1, k2 = jax.random.split(key)
        self.conv1 = CircularConv(spatial_dims, in_channels, out_channels, 3, key=k1)
        self.norm1 = GroupNorm(1, out_channels)
        self.conv2 = CircularConv(spatial_dims, out_channels, out_channels, 3, key=k2)
        self.norm2 = GroupNorm(1, out_channels)
        self.padding = padding

    def __call__(self, x: Float[Array, " cin *s"]) -> Float[Array, " cout *s"]:
        h = gelu(self.norm1(conv(self.conv1, x, self.padding)))
        return gelu(self.norm2(conv(self.conv2, h, self.padding)))


class Wave(eqx.Module):
    """One U-Net wave (encoder/decoder with ``num_levels`` levels); returns ``wave(x)``."""

    down: tuple[ConvBlock, ...]
    down_skip: tuple[PointwiseLinear, ...]
    up: tuple[ConvBlock, ...]
    up_skip: tuple[PointwiseLinear, ...]
    disentangle: bool = eqx.field(static=True)
    interpolation: str = eqx.field(static=True)
    padding: str = eqx.field(static=True)
    upsample_impl: str = eqx.field(static=True)

    def __init__(self, spatial_dims: int, level_channels: tuple[int, ...], *, disentangle: bool,
                 interpolation: str, key: PRNGKeyArray, padding: str = "circular",
                 upsample_impl: str = "stencil"):
        ch, n = level_channels, len(level_channels) - 1
        keys = jax.random.split(key, 4 * n)
        extra = [ch[0] if (disentangle and lvl > 0) else 0 for lvl in range(n)]
        self.down = tuple(ConvBlock(spatial_dims, ch[i] + extra[i], ch[i + 1], padding=padding,
                                    key=keys[i]) for i in range(n))
        self.down_skip = tuple(PointwiseLinear(ch[i], ch[i + 1], key=keys[n + i])
                               for i in range(n))
        self.up = tuple(ConvBlock(spatial_dims, ch[i + 1] + ch[i], ch[i], padding=padding,
                                  key=keys[2 * n + i]) for i in reversed(range(n)))
        self.up_skip = tuple(PointwiseLinear(ch[i + 1], ch[i], key=keys[3 * n + i])
                             for i in reversed(range(n)))
        self.disentangle, self.interpolation = disentangle, interpolation
        self.padding, self.upsample_impl = padding, upsample_impl

    def __call__(self, x: Float[Array, " h *s"]) -> Float[Array, " h *s"]:
        skips, h, dx = [x], x, x
        for i, (block, skip) in enumerate(zip(self.down, self.down_skip, strict=True)):
            h = avg_pool(h)
            dx = avg_pool(dx)
            inp = jnp.concatenate([h, dx]) if (self.disentangle and i > 0) else h
            h = block(inp) + skip(h)
            skips.append(h)
        h = skips.pop()
        for block, skip in zip(self.up, self.up_skip, strict=True):
            hu = upsample(h, self.interpolation, self.padding, self.upsample_impl)
            h = block(jnp.concatenate([skips.pop(), hu])) + skip(hu)
        return h


class SineNet(AbstractModel):
    """SineNet: lift, ``num_waves`` residual U-Net waves (run by ``lax.scan``), projection.

    See the module docstring for the layout and the pinned parameter counts.

    Hyperparameters:
        hidden_channels: channels after the lift (``h``, 64 in the paper).
        num_waves: number of sequential waves ``K``.
        channel_multiplier: per-level channel growth ``M``; level ``l`` has ``int(h * M**l)``.
        num_levels: encoder levels per wave (spatial size must be divisible by ``2**num_levels``).
        disentangle: feed the avg-pooled wave input into encoder levels ``>= 2``.
        wave_residual: ``x <- x + wave(x)`` (True) or ``x <- wave(x)``.
        interpolation: x2 upsampling kernel: ``"cubic"`` (Keys a = -0.5, as
            ``jax.image.resize``), ``"cubic_torch"`` (a = -0.75: torch's bicubic, the paper
            code's), ``"linear"``, ``"lanczos3"``, ``"lanczos5"``.
        padding: ``"circular"`` (periodic convs and interpolation) or ``"zeros"`` (zero-padded
            convs, edge-repeating interpolation: the paper's non-periodic setting).
        upsample_impl: ``"stencil"`` (per-phase stencils, default) or ``"resize"`` (the dense
            ``jax.image.resize`` of the wrap-padded input; circular padding and the
            ``jax.image.resize`` method names only). Kept for benchmarking.
    """

    lift: CircularConv
    waves: Wave  # stacked: every array has a leading num_waves axis
    proj: CircularConv
    spec: ModelSpec = eqx.field(static=True)
    stochastic: ClassVar[bool] = False
    num_levels: int = eqx.field(static=True)
    wave_residual: bool = eqx.field(static=True)
    padding: str = eqx.field(static=True)

    def __init__(self, *, spatial_dims: int, history: int, future: int, channels: int,
                 num_cond: int, key: PRNGKeyArray, hidden_channels: int = 64,
                 num_waves: int = 8, channel_multiplier: float = 1.425, num_levels: int = 4,
                 disentangle: bool = True, wave_residual: bool = True,
                 interpolation: str = "cubic", padding: str = "circular",
                 upsample_impl: str = "stencil", cond_norm: CondNorm | None = None):
        self.spec = ModelSpec(spatial_dims=spatial_dims, history=history, future=future,
                              channels=channels, num_cond=num_cond, cond_norm=cond_norm)
        if interpolation not in _METHODS:
            raise ValueError(f"SineNet: unknown interpolation {interpolation!r}; "
                             f"choose one of {_METHODS}.")
        if padding not in _PADDINGS:
            raise ValueError(f"SineNet: unknown padding {padding!r}; choose 'circular' "
                             "(periodic domains) or 'zeros'.")
        if upsample_impl not in _UPSAMPLE_IMPLS:
            raise ValueError(f"SineNet: unknown upsample_impl {upsample_impl!r}; choose "
                             f"one of {_UPSAMPLE_IMPLS}.")
        if upsample_impl == "resize" and (padding != "circular"
                                          or interpolation not in _RESIZE_METHODS):
            raise ValueError(
                f"SineNet: upsample_impl='resize' supports padding='circular' and interpolation "
                f"in {_RESIZE_METHODS} only (got {padding!r}, {interpolation!r}); use "
                "upsample_impl='stencil'.")
        if num_waves < 1 or num_levels < 1:
            raise ValueError(f"SineNet: num_waves and num_levels must be >= 1, got "
                             f"{num_waves}, {num_levels}.")
        ch = tuple(int(hidden_channels * channel_multiplier**lvl) for lvl in range(num_levels + 1))

        lkey, wkey, pkey = jax.random.split(key, 3)
        self.lift = CircularConv(spatial_dims, history * channels, hidden_channels, 3, key=lkey)
        self.waves = stack_modules([
            Wave(spatial_dims, ch, disentangle=disentangle, interpolation=interpolation,
                 padding=padding, upsample_impl=upsample_impl, key=k)
            for k in jax.random.split(wkey, num_waves)])
        self.proj = CircularConv(spatial_dims, hidden_channels, future * channels, 3, key=pkey)
        self.num_levels = num_levels
        self.wave_residual = wave_residual
        self.padding = padding

    def __call__(self, u: Float[Array, " history channels *spatial"],
                 cond: Float[Array, " num_cond"], *, key: PRNGKeyArray | None = None
                 ) -> Float[Array, " future channels *spatial"]:
        self.check_input(u, cond)
        spatial = u.shape[2:]
        check_divisible(spatial, 2**self.num_levels, f"SineNet with num_levels={self.num_levels}")
        x = conv(self.lift, u.reshape(-1, *spatial), self.padding)
        params, static = eqx.partition(self.waves, eqx.is_array)

        def step(x, p):
            y = eqx.combine(p, static)(x)
            return (x + y if self.wave_residual else y), None

        x, _ = jax.lax.scan(step, x, params)
        return conv(self.proj, x, self.padding).reshape(self.future, self.channels, *spatial)
