"""Normalisation of the conditioning scalars (``cond``) before a model's features.

A model sees ``cond`` (e.g. ``[dt, dx]``) through sinusoidal features (U-Net family, the
refinement step of PDE-Refiner) or an MLP (MP-PDE). Physical parameters vary over narrow
ranges (KS: dt in [0.72, 0.88], dx in [0.225, 0.275]), so fed unscaled they move the fastest
sinusoidal feature by a fraction of a radian across the whole data set and the model cannot
tell them apart. :class:`CondNorm` maps each scalar affinely from the range it takes in the
training data to ``[0, span]``:

    c_i  ->  (c_i - lo_i) / (hi_i - lo_i) * span_i

The ranges are measured from the training split (``params/*``) when a run starts and stored
with the run (``config.yaml: derived.cond_range``), so evaluation on other data uses the
training mapping. The default span is 5 (``data.cond_span``): the largest round number below
2π, so the fastest feature (frequency 1) stays one-to-one over the range while the slower ones
spread as far as they can; PDEArena's KS code scales dt and dx to spans of about 4 and 5 by
hand. A scalar that is constant in the training data (``lo == hi``) maps to 0.
See ``docs/models.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

DEFAULT_SPAN = 5.0


class CondNorm(eqx.Module):
    """Affine map of ``num_cond`` scalars: ``[lo_i, hi_i] -> [0, span_i]``.

    Build with :meth:`from_ranges` (measured ranges) or :meth:`identity` (leave ``cond`` as it
    is). :meth:`append` adds one scalar (PDE-Refiner adds its refinement step, range ``0..K``).
    """

    lo: tuple[float, ...] = eqx.field(static=True)
    hi: tuple[float, ...] = eqx.field(static=True)
    span: tuple[float, ...] = eqx.field(static=True)

    def __init__(self, lo: Sequence[float], hi: Sequence[float], span: Sequence[float]):
        lo, hi, span = (tuple(float(v) for v in x) for x in (lo, hi, span))
        if not len(lo) == len(hi) == len(span):
            raise ValueError(f"CondNorm: lo, hi and span need one entry per scalar; got "
                             f"{len(lo)}, {len(hi)} and {len(span)}")
        for i, (a, b, s) in enumerate(zip(lo, hi, span, strict=True)):
            if not (math.isfinite(a) and math.isfinite(b) and b >= a):
                raise ValueError(f"CondNorm: scalar {i} needs finite lo <= hi, got [{a}, {b}]")
            if not (math.isfinite(s) and s > 0):
                raise ValueError(f"CondNorm: scalar {i} needs a finite span > 0, got {s}")
        self.lo, self.hi, self.span = lo, hi, span

    @classmethod
    def from_ranges(cls, ranges: Sequence[Sequence[float]],
                    span: float | Sequence[float] = DEFAULT_SPAN) -> CondNorm:
        """From ``[(lo, hi), ...]`` and one span for all scalars (or one each)."""
        ranges = [tuple(r) for r in ranges]
        if any(len(r) != 2 for r in ranges):
            raise ValueError(f"CondNorm: each range must be [lo, hi], got {ranges}")
        spans = ((float(span),) * len(ranges) if isinstance(span, int | float)
                 else tuple(span))
        return cls([r[0] for r in ranges], [r[1] for r in ranges], spans)

    @classmethod
    def identity(cls, num_cond: int) -> CondNorm:
        """``c -> c`` (lo 0, hi 1, span 1)."""
        return cls((0.0,) * num_cond, (1.0,) * num_cond, (1.0,) * num_cond)

    @property
    def num_cond(self) -> int:
        return len(self.lo)

    def append(self, lo: float, hi: float, span: float) -> CondNorm:
        """This map with one more scalar mapped from ``[lo, hi]`` to ``[0, span]``."""
        return CondNorm(self.lo + (lo,), self.hi + (hi,), self.span + (span,))

    def scale(self) -> tuple[float, ...]:
        """``span_i / (hi_i - lo_i)`` (0 for a constant scalar)."""
        return tuple(s / (b - a) if b > a else 0.0
                     for a, b, s in zip(self.lo, self.hi, self.span, strict=True))

    def __call__(self, cond: Float[Array, " num_cond"]) -> Float[Array, " num_cond"]:
        if cond.shape != (self.num_cond,):
            raise ValueError(f"CondNorm maps {self.num_cond} scalars; got cond of shape "
                             f"{cond.shape}")
        lo = jnp.asarray(self.lo, jnp.float32)
        return (jnp.asarray(cond, jnp.float32) - lo) * jnp.asarray(self.scale(), jnp.float32)


def resolve(cond_norm: CondNorm | None, num_cond: int, who: str) -> CondNorm:
    """``cond_norm`` checked against ``num_cond`` (``None``: the identity map)."""
    if cond_norm is None:
        return CondNorm.identity(num_cond)
    if not isinstance(cond_norm, CondNorm):
        raise TypeError(f"{who}: cond_norm must be a pdekit.models.CondNorm, got "
                        f"{type(cond_norm).__name__}")
    if cond_norm.num_cond != num_cond:
        raise ValueError(f"{who}: cond_norm maps {cond_norm.num_cond} scalars but "
                         f"num_cond={num_cond}")
    return cond_norm
