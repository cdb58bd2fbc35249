"""Modern U-Net ("Unetmod", PDEArena; the PDE-Refiner backbone) in 1D and 2D.

Layout (``L = len(channel_multipliers)`` levels, ``B = num_blocks``, hidden ``h``):

* conditioning: each scalar in ``cond`` -> sinusoidal features (size ``h``) -> its own MLP
  ``h -> 4h -> 4h`` (GELU); the sum ``e`` is injected into every residual block;
* lift: 3x3 (or 1x1) circular conv ``history*channels -> h``;
* down: per level ``i`` B residual blocks to ``c_i = c_{i-1} * mult_i`` (multipliers apply
  cumulatively: 64 -> 64 -> 128 -> 256 -> 1024 for ``(1, 2, 2, 4)``), then a stride-2 3x3
  circular conv on all but the last level;
* middle: two residual blocks at ``c_L``;
* up: per level (deepest first) B residual blocks on ``concat(x, skip)`` keeping ``c_i``, one
  more reducing to ``c_i / mult_i`` (B + 1 blocks, one skip each), then a x2 circular
  transposed conv (kernel 4) on all but the top level;
* out: GroupNorm(8) -> GELU -> zero-initialised 3x3 (or 1x1) circular conv.

Residual block (pre-norm): ``h = conv1(GELU(GN(x)))``; ``h = h + Linear(e)`` (or AdaGN
``GN(h) * (1 + scale) + shift`` with ``use_scale_shift_norm``); ``h = conv2(GELU(GN(h)))``
(``conv2`` zero-initialised); output ``h + shortcut(x)`` (1x1 conv when channels change).
GroupNorm in blocks uses ``norm_groups`` (PDEArena: 1) groups.

Parameter count. This layout, read off PDEArena's ``pdearena/modules/conditioned/oned_unet.py``
``Unet`` (``hidden_channels=64, norm=True, use_scale_shift_norm=False, use1x1=False``,
``time_embed`` + two ``pde_emb`` MLPs), reproduces the published PDE-Refiner KS network:
with 2 input frames, 1 output frame, 1 channel and 3 conditioning scalars (dt, dx, k) it has
exactly 53,924,225 parameters (the refinement step's ``time_embed`` is one of our ``num_cond``
identical embedding MLPs). Translation equivariance holds for shifts by multiples of
``2**(L-1)`` cells (stride-2 downsampling aliases other shifts).
"""


from collections.abc import Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from pdekit.models.base import AbstractModel, ModelSpec
from pdekit.models.conditioning import CondNorm
from pdekit.models.layers import (
    CircularConv,
    CircularUpConv,
    ConditioningEmbedding,
    GroupNorm,
    PointwiseLinear,
    check_divisible,
    gelu,
    zero_params,
)


class ResidualBlock(eqx.Module):
    """Pre-norm wide residual block with conditioning injected between the two convs."""

    norm1: GroupNorm
    conv1: CircularConv
    cond_proj: PointwiseLinear
    norm2: GroupNorm
    conv2: CircularConv
    shortcut: CircularConv | None
    scale_shift: bool = eqx.field(static=True)

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, embed_dim: int,
                 *, norm_groups: int, scale_shift: bool, zero_init: bool, key: PRNGKeyArray):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        self.norm1 = GroupNorm(norm_groups, in_channels)
        self.conv1 = CircularConv(spatial_dims, in_channels, out_channels, 3, key=k1)
        self.cond_proj = PointwiseLinear(embed_dim, out_channels * (2 if scale_shift else 1),
                                        key=k2)
        self.norm2 = GroupNorm(norm_groups, out_channels)
        conv2 = CircularConv(spatial_dims, out_channels, out_channels, 3, key=k3)
        self.conv2 = zero_params(conv2) if zero_init else conv2
        self.shortcut = (CircularConv(spatial_dims, in_channels, out_channels, 1, key=k4)
                         if in_channels != out_channels else None)
        self.scale_shift = scale_shift

    def __call__(self, x: Float[Array, " cin *spatial"], emb: Float[Array, " e"]
                 ) -> Float[Array, " cout *spatial"]:
        h = self.conv1(gelu(self.norm1(x)))
        e = self.cond_proj(emb.astype(self.cond_proj.weight.dtype)).astype(h.dtype)
        e = e.reshape((-1,) + (1,) * (h.ndim - 1))
        if self.scale_shift:
            scale, shift = jnp.split(e, 2)
            h = self.norm2(h) * (1 + scale) + shift
            h = self.conv2(gelu(h))
        else:
            h = self.conv2(gelu(self.norm2(h + e)))
        return h + (x if self.shortcut is None else self.shortcut(x))


class UNetMod(AbstractModel):
    """PDEArena modern U-Net: ``history`` frames (+ conditioning scalars) -> ``future`` frames.

    See the module docstring for the layout and how the 53,924,225-parameter count of the
    PDE-Refiner KS network is reproduced.

    Hyperparameters:
        hidden_channels: channels after the lift (``h``); the embedding MLP width is ``4h``.
        channel_multipliers: per-level multipliers, applied cumulatively.
        num_blocks: residual blocks per down level (up levels get ``num_blocks + 1``).
        norm_groups: GroupNorm groups inside residual blocks (final norm uses 8).
        use_scale_shift_norm: AdaGN conditioning instead of adding the embedding.
        use1x1: 1x1 instead of 3x3 lift / output convs.
        zero_init: zero-initialise the last conv of each block and the output conv (so the
            untrained network outputs zeros); set False for tests of a random network.
        cond_norm: the map of the conditioning scalars to ``[0, span]`` applied before the
            sinusoidal features (a :class:`pdekit.models.CondNorm`; the trainer builds it from
            the training data's ranges; ``None`` leaves ``cond`` as it is).
    """

    embedding: ConditioningEmbedding
    lift: CircularConv
    down: tuple[ResidualBlock | CircularConv, ...]
    middle: tuple[ResidualBlock, ResidualBlock]
    up: tuple[ResidualBlock | CircularUpConv, ...]
    out_norm: GroupNorm
    out_conv: CircularConv
    spec: ModelSpec = eqx.field(static=True)
    stochastic: ClassVar[bool] = False
    num_levels: int = eqx.field(static=True)

    def __init__(self, *, spatial_dims: int, history: int, future: int, channels: int,
                 num_cond: int, key: PRNGKeyArray, hidden_channels: int = 64,
                 channel_multipliers: Sequence[int] = (1, 2, 2, 4), num_blocks: int = 2,
                 norm_groups: int = 1, use_scale_shift_norm: bool = False, use1x1: bool = False,
                 zero_init: bool = True, cond_norm: CondNorm | None = None):
        mults = tuple(int(m) for m in channel_multipliers)
        if not mults or min(mults) < 1:
            raise ValueError(f"UNetMod: channel_multipliers must be positive ints, got {mults}.")
        if hidden_channels % 8:
            raise ValueError(f"UNetMod: hidden_channels={hidden_channels} must be a multiple of 8 "
                             "(the output GroupNorm uses 8 groups).")
        self.spec = ModelSpec(spatial_dims=spatial_dims, history=history, future=future,
                              channels=channels, num_cond=num_cond, cond_norm=cond_norm)
        keys = iter(jax.random.split(key, 8 * len(mults) * (num_blocks + 2) + 8))
        nd, emb = spatial_dims, 4 * hidden_channels
        blk = dict(norm_groups=norm_groups, scale_shift=use_scale_shift_norm,
                   zero_init=zero_init)
        self.embedding = ConditioningEmbedding(num_cond, hidden_channels, emb,
                                               norm=self.spec.cond_norm, key=next(keys))
        k_io = 1 if use1x1 else 3
        self.lift = CircularConv(nd, history * channels, hidden_channels, k_io, key=next(keys))

        down, c = [], hidden_channels
        for i, m in enumerate(mults):
            c_out = c * m
            for _ in range(num_blocks):
                down.append(ResidualBlock(nd, c, c_out, emb, key=next(keys), **blk))
                c = c_out
            if i < len(mults) - 1:
                down.append(CircularConv(nd, c, c, 3, stride=2, key=next(keys)))
        self.down = tuple(down)
        self.middle = (ResidualBlock(nd, c, c, emb, key=next(keys), **blk),
                       ResidualBlock(nd, c, c, emb, key=next(keys), **blk))
        up = []
        for i in reversed(range(len(mults))):
            for _ in range(num_blocks):
                up.append(ResidualBlock(nd, 2 * c, c, emb, key=next(keys), **blk))
            c_out = c // mults[i]
            up.append(ResidualBlock(nd, c + c_out, c_out, emb, key=next(keys), **blk))
            c = c_out
            if i > 0:
                up.append(CircularUpConv(nd, c, c, 4, stride=2, padding=1, key=next(keys)))
        self.up = tuple(up)
        self.out_norm = GroupNorm(8, hidden_channels)
        out_conv = CircularConv(nd, hidden_channels, future * channels, k_io, key=next(keys))
        self.out_conv = zero_params(out_conv) if zero_init else out_conv
        self.num_levels = len(mults)

    def __call__(self, u: Float[Array, " history channels *spatial"],
                 cond: Float[Array, " num_cond"], *, key: PRNGKeyArray | None = None
                 ) -> Float[Array, " future channels *spatial"]:
        self.check_input(u, cond)
        spatial = u.shape[2:]
        check_divisible(spatial, 2 ** (self.num_levels - 1),
                        f"UNetMod with {self.num_levels} levels ({self.num_levels - 1} halvings)")
        emb = self.embedding(cond)
        x = self.lift(u.reshape(-1, *spatial))
        skips = [x]
        for m in self.down:
            x = m(x, emb) if isinstance(m, ResidualBlock) else m(x)
            skips.append(x)
        for m in self.middle:
            x = m(x, emb)
        for m in self.up:
            if isinstance(m, ResidualBlock):
                x = m(jnp.concatenate([x, skips.pop()]), emb)
            else:
                x = m(x)
        x = self.out_conv(gelu(self.out_norm(x)))
        return x.reshape(self.future, self.channels, *spatial)
