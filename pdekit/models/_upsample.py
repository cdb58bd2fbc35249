"""Factor-2 interpolation by fixed per-phase stencils (private helper of SineNet).

Upsampling an axis of ``n`` cells by 2 with half-pixel alignment (cell centres; torch's
``align_corners=False``, ``jax.image.resize``) puts fine cell ``j`` at coarse coordinate
``(j + 1/2) / 2 - 1/2``: ``i - 1/4`` for ``j = 2i`` and ``i + 1/4`` for ``j = 2i + 1``. A
separable interpolation kernel ``K`` therefore reduces to two fixed stencils per axis,

    y[2i]     = sum_k K(-1/4 - k) x[i + k],        y[2i + 1] = sum_k K(1/4 - k) x[i + k],

(weights renormalised to sum 1, which only changes the Lanczos kernels), evaluated as a few
shifted slices of the padded input and weighted sums: no dense resize matrix, no matmul (so
no matmul precision setting), cost ``O(taps)`` per output cell. ``boundary="wrap"`` pads
periodically (exact interpolation of the periodic extension, commuting with periodic shifts);
``boundary="edge"`` repeats the edge cells, which is what torch's ``F.interpolate`` does at a
border (``linear`` and the cubic kernels coincide with it exactly).

Kernels: ``linear`` (tent), ``cubic`` (Keys, a = -0.5; ``jax.image.resize``'s ``"cubic"``),
``cubic_torch`` (Keys, a = -0.75; torch's ``mode="bicubic"``, which the public SineNet code
uses), ``lanczos3`` and ``lanczos5`` (``jax.image.resize``'s Lanczos kernels).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def _keys(a: float):
    def kernel(x: float) -> float:
        x = abs(x)
        if x <= 1:
            return (a + 2) * x**3 - (a + 3) * x**2 + 1
        if x < 2:
            return a * x**3 - 5 * a * x**2 + 8 * a * x - 4 * a
        return 0.0

    return kernel, 2


def _lanczos(radius: int):
    def kernel(x: float) -> float:
        if x == 0:
            return 1.0
        if abs(x) >= radius:
            return 0.0
        return radius * math.sin(math.pi * x) * math.sin(math.pi * x / radius) / (math.pi * x) ** 2

    return kernel, radius


#: method -> (kernel, support radius in coarse cells)
KERNELS = {
    "linear": (lambda x: max(0.0, 1.0 - abs(x)), 1),
    "cubic": _keys(-0.5),
    "cubic_torch": _keys(-0.75),
    "lanczos3": _lanczos(3),
    "lanczos5": _lanczos(5),
}
BOUNDARIES = {"wrap": "wrap", "edge": "edge"}


@functools.cache
def phase_taps(method: str) -> tuple[tuple[tuple[int, float], ...], tuple[tuple[int, float], ...]]:
    """The two stencils ``((offset k, weight), ...)`` of the even and odd fine cells."""
    if method not in KERNELS:
        raise ValueError(f"unknown interpolation {method!r}; choose one of {tuple(KERNELS)}.")
    kernel, radius = KERNELS[method]
    phases = []
    for delta in (-0.25, 0.25):
        taps = [(k, kernel(delta - k)) for k in range(-radius, radius + 1)]
        taps = [(k, w) for k, w in taps if w != 0.0]
        total = math.fsum(w for _, w in taps)
        phases.append(tuple((k, w / total) for k, w in taps))
    return phases[0], phases[1]


def halo(method: str) -> int:
    """Cells of padding each side that the stencils of ``method`` read."""
    return max(abs(k) for phase in phase_taps(method) for k, _ in phase)


def _upsample_axis(x: Array, axis: int, method: str, boundary: str) -> Array:
    n, r = x.shape[axis], halo(method)
    pad = [(0, 0)] * x.ndim
    pad[axis] = (r, r)
    xp = jnp.pad(x, pad, mode=BOUNDARIES[boundary])

    def phase(taps):
        terms = [w * jax.lax.slice_in_dim(xp, r + k, r + k + n, axis=axis) for k, w in taps]
        return functools.reduce(jnp.add, terms)

    y = jnp.stack([phase(t) for t in phase_taps(method)], axis=axis + 1)  # (..., n, 2, ...)
    return y.reshape(x.shape[:axis] + (2 * n,) + x.shape[axis + 1:])


def upsample2(x: Float[Array, " c *spatial"], method: str = "cubic", boundary: str = "wrap"
              ) -> Float[Array, " c *spatial_up"]:
    """Separable factor-2 interpolation of every spatial axis (the leading axis is channels).

    Output size ``2 n`` per spatial axis, same dtype as ``x``. ``boundary``: ``"wrap"``
    (periodic) or ``"edge"`` (repeat the border cells, as torch's ``F.interpolate``).
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"unknown boundary {boundary!r}; choose 'wrap' (periodic) or 'edge'.")
    phase_taps(method)  # validates the method
    for axis in range(1, x.ndim):
        x = _upsample_axis(x, axis, method, boundary)
    return x

