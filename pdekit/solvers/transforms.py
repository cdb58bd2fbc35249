"""Spectral transforms of the solvers: FFT (default) or DFT by matrix product.

The solvers only ever transform between a real field of shape ``(N,) * spatial_dims`` and its
rfft spectrum (:mod:`pdekit.solvers.grid` layout). :class:`SpectralTransform` does that with
one of two backends:

* ``"fft"`` (default): ``jnp.fft.rfftn`` / ``irfftn`` through :func:`grid.fft` / :func:`grid.ifft`,
  the very same calls as before this module existed (bit-for-bit the same trajectories).
* ``"matmul"``: the real DFT as dense matrix products (one GEMM per axis), which a GPU runs on
  its matrix units and XLA can fuse with neighbouring elementwise work, where small batched FFTs
  are bound by launch latency. 1D: ``rfft(x) = x @ [C | S]`` with ``C = cos(2 pi n k / N)``,
  ``S = -sin(2 pi n k / N)`` (``N x (N//2+1)`` each); the inverse weights the modes by
  ``w_k / N`` with ``w = 1`` for the self-conjugate DC and Nyquist modes (whose imaginary parts
  it ignores, as ``irfft`` does) and ``w = 2`` for the others. 2D: rfft along the last axis, then
  the full complex DFT along the first as real products with ``[cos; -sin]`` stacked
  (``(2N, N)``), so each axis is a single matrix product.

The matrices are built in float64 with numpy (angles reduced exactly as ``(n k) mod N``) and
cast to the working dtype. Float32 products run at ``precision=HIGHEST``: the default GPU
precision rounds the operands to TF32 (10-bit mantissa, ~3 decimal digits fewer than float32),
which would make the transform ~1e-3 accurate instead of ~1e-6. ``precision`` may be any
``jax.lax`` precision or ``DotAlgorithmPreset`` (e.g. ``TF32_TF32_F32_X3``, float32 accuracy on
tensor cores, GPU only); float64 inputs always use ``HIGHEST``.

Two exact savings are available to callers (both are what the solvers use):

* ``dealiased=True``: the caller promises that the spectrum vanishes outside the 2/3 band
  (inverse), or that it discards the result outside it (forward). The matmul backend then
  leaves the dropped modes out of the products (about 1/3 fewer operations per axis); the omitted
  terms are exact zeros. The fft backend ignores the hint.
* :meth:`~SpectralTransform.fft_many` / :meth:`~SpectralTransform.ifft_many`: several fields of
  one shape in one call. With ``stack`` (default: on for matmul, off for fft) they are stacked
  into one batched transform: one GEMM instead of one per field.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array

from pdekit.solvers import grid

#: The available backends.
BACKENDS = ("fft", "matmul")
#: The dealiasing fraction of :func:`grid.dealias_mask` (2/3 rule), which ``dealiased=True`` assumes.
DEALIAS_FRACTION = 2.0 / 3.0


def _kept(n: int, dealiased: bool) -> tuple[int, int]:
    """``(n_pos, n_neg)``: the modes ``0..n_pos-1`` and ``-n_neg..-1`` of a length-``n`` axis
    kept by the 2/3 rule (all of them when not ``dealiased``). They are the first ``n_pos`` and
    the last ``n_neg`` entries of the ``fftfreq`` layout."""
    if not dealiased:
        return n - n // 2, n // 2
    m = np.fft.fftfreq(n, 1.0 / n).round().astype(np.int64)
    keep = np.abs(m) < DEALIAS_FRACTION * n / 2.0
    return int(np.sum(keep & (m >= 0))), int(np.sum(keep & (m < 0)))


@functools.lru_cache(maxsize=64)
def _rdft_matrices(n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 matrices of the rfft of length ``n`` restricted to the modes ``0..k-1``:
    forward ``(n, 2k)`` (``x @ F = [Re | Im]``) and inverse ``(2k, n)`` (``[Re | Im] @ G = x``)."""
    j = np.arange(n)[:, None]
    m = np.arange(k)[None, :]
    theta = 2.0 * np.pi * ((j * m) % n) / n
    c, s = np.cos(theta), -np.sin(theta)
    self_conjugate = (m == 0) | (2 * m == n)  # DC and (even n) Nyquist: real modes
    s = np.where(self_conjugate, 0.0, s)
    w = np.where(self_conjugate, 1.0, 2.0) / n
    forward = np.concatenate([c, s], axis=1)
    inverse = np.concatenate([(w * c).T, (w * s).T], axis=0)
    return forward, inverse


@functools.lru_cache(maxsize=64)
def _cdft_matrices(n: int, n_pos: int, n_neg: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64 matrices of the complex DFT of length ``n`` restricted to the ``p = n_pos + n_neg``
    modes ``0..n_pos-1, n-n_neg..n-1``: forward ``(2p, n)`` = ``[cos; -sin]`` (rows: modes) and
    inverse ``(2n, p)`` = ``[cos; -sin]^T / n`` (rows: grid points)."""
    idx = np.concatenate([np.arange(n_pos), np.arange(n - n_neg, n)])[:, None]
    theta = 2.0 * np.pi * ((idx * np.arange(n)[None, :]) % n) / n
    a, b = np.cos(theta), -np.sin(theta)
    return np.concatenate([a, b], axis=0), np.concatenate([a.T, b.T], axis=0) / n


@functools.lru_cache(maxsize=128)
def _cast(fn, dtype: np.dtype, *args) -> tuple[np.ndarray, ...]:
    return tuple(m.astype(dtype) for m in fn(*args))


@dataclasses.dataclass(frozen=True)
class SpectralTransform:
    """Forward (``fft``) and inverse (``ifft``) real spectral transform of one grid.

    Args:
        backend: ``"fft"`` (default) or ``"matmul"`` (see the module docstring).
        resolution: grid points per axis; ``None`` until a solver binds it (:meth:`bind`).
        spatial_dims: 1 or 2; ``None`` until bound.
        precision: matmul backend, float32 inputs: the ``precision`` of the products
            (default ``HIGHEST``; see the module docstring for why).
        stack: whether :meth:`fft_many` / :meth:`ifft_many` stack their fields into one
            transform; ``None`` means yes for matmul, no for fft (which keeps the default
            solver path unchanged).

    Hashable and immutable: the solvers hold it as a static field, so the matrices are
    compile-time constants and never leaves of a PyTree.
    """

    backend: str = "fft"
    resolution: int | None = None
    spatial_dims: int | None = None
    precision: Any = lax.Precision.HIGHEST
    stack: bool | None = None

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown spectral transform {self.backend!r}; choose from "
                             f"{', '.join(BACKENDS)}")
        if self.spatial_dims not in (None, 1, 2):
            raise ValueError(f"spatial_dims must be 1 or 2, got {self.spatial_dims!r}")
        if self.resolution is not None and (int(self.resolution) != self.resolution
                                            or self.resolution < 2):
            raise ValueError(f"resolution must be an integer >= 2, got {self.resolution!r}")

    def bind(self, resolution: int, spatial_dims: int) -> SpectralTransform:
        """This transform on the grid ``(resolution,) * spatial_dims`` (refused if it is bound
        to another grid)."""
        for name, have, want in (("resolution", self.resolution, resolution),
                                 ("spatial_dims", self.spatial_dims, spatial_dims)):
            if have is not None and have != want:
                raise ValueError(f"the spectral transform has {name}={have}, the solver {want}")
        return dataclasses.replace(self, resolution=int(resolution), spatial_dims=int(spatial_dims))

    @property
    def stacks(self) -> bool:
        return self.backend == "matmul" if self.stack is None else bool(self.stack)

    def _grid(self) -> tuple[int, int]:
        if self.resolution is None or self.spatial_dims is None:
            raise ValueError("this SpectralTransform has no grid yet: pass resolution= and "
                             "spatial_dims=, or call .bind(resolution, spatial_dims)")
        return self.resolution, self.spatial_dims

    def _check_shape(self, shape, expected, what):
        if tuple(shape[len(shape) - len(expected):]) != expected:
            raise ValueError(f"{what} must end in shape {expected}, got {tuple(shape)}")

    def _dot(self, a, b, dtype):
        precision = lax.Precision.HIGHEST if dtype == np.float64 else self.precision
        return jnp.matmul(a, b, precision=precision)

    # -- single fields --------------------------------------------------------------------------
    def fft(self, u: Array, *, dealiased: bool = False) -> Array:
        """rfft over the trailing ``spatial_dims`` axes of a real field (leading axes: batch).

        ``dealiased=True``: only the 2/3 band of the result will be used (matmul returns zeros
        outside it; fft returns the full spectrum)."""
        n, dims = self._grid()
        if self.backend == "fft":
            return grid.fft(u, dims)
        u = jnp.asarray(u)
        if jnp.iscomplexobj(u):
            raise TypeError(f"the forward transform takes a real field, got dtype {u.dtype}")
        if not jnp.issubdtype(u.dtype, jnp.floating):
            u = u.astype(float)
        self._check_shape(u.shape, (n,) * dims, "the field")
        dtype = np.dtype(u.dtype)
        K = n // 2 + 1
        k = _kept(n, dealiased)[0] if dealiased else K
        fr, _ = _cast(_rdft_matrices, dtype, n, k)
        p = self._dot(u, fr, dtype)  # (..., [n,] 2k) = [Re | Im] along the last axis
        if dims == 1:
            out = lax.complex(p[..., :k], p[..., k:])
        else:
            n_pos, n_neg = _kept(n, dealiased)
            rows = n_pos + n_neg
            fc, _ = _cast(_cdft_matrices, dtype, n, n_pos, n_neg)
            q = self._dot(fc, p, dtype)  # (..., 2 rows, 2k)
            out = lax.complex(q[..., :rows, :k] - q[..., rows:, k:],
                              q[..., :rows, k:] + q[..., rows:, :k])
            if rows < n:
                gap = jnp.zeros(out.shape[:-2] + (n - rows, k), out.dtype)
                out = jnp.concatenate([out[..., :n_pos, :], gap, out[..., n_pos:, :]], axis=-2)
        if k < K:
            out = jnp.pad(out, [(0, 0)] * (out.ndim - 1) + [(0, K - k)])
        return out

    def ifft(self, u_hat: Array, *, dealiased: bool = False) -> Array:
        """irfft of a spectrum in the rfft layout back to the real grid (leading axes: batch).

        ``dealiased=True``: ``u_hat`` vanishes outside the 2/3 band (matmul skips those modes)."""
        n, dims = self._grid()
        if self.backend == "fft":
            return grid.ifft(u_hat, n, dims)
        u_hat = jnp.asarray(u_hat)
        K = n // 2 + 1
        self._check_shape(u_hat.shape, (n,) * (dims - 1) + (K,), "the spectrum")
        re, im = jnp.real(u_hat), jnp.imag(u_hat)
        if not jnp.issubdtype(re.dtype, jnp.floating):
            re, im = re.astype(float), im.astype(float)
        dtype = np.dtype(re.dtype)
        k = _kept(n, dealiased)[0] if dealiased else K
        _, gr = _cast(_rdft_matrices, dtype, n, k)
        re, im = re[..., :k], im[..., :k]
        if dims == 2:
            n_pos, n_neg = _kept(n, dealiased)
            rows = n_pos + n_neg
            if rows < n:
                re = jnp.concatenate([re[..., :n_pos, :], re[..., n - n_neg:, :]], axis=-2)
                im = jnp.concatenate([im[..., :n_pos, :], im[..., n - n_neg:, :]], axis=-2)
            _, gc = _cast(_cdft_matrices, dtype, n, n_pos, n_neg)
            q = self._dot(gc, jnp.concatenate([re, im], axis=-1), dtype)  # (..., 2n, 2k)
            re, im = q[..., :n, :k] + q[..., n:, k:], q[..., :n, k:] - q[..., n:, :k]
        return self._dot(jnp.concatenate([re, im], axis=-1), gr, dtype)

    # -- several fields of one shape ----------------------------------------------------------
    def fft_many(self, *fields: Array, dealiased: bool = False) -> tuple[Array, ...]:
        """``tuple(self.fft(f) for f in fields)``, as one stacked transform when :attr:`stacks`."""
        if not self.stacks or len(fields) == 1:
            return tuple(self.fft(f, dealiased=dealiased) for f in fields)
        out = self.fft(jnp.stack(fields), dealiased=dealiased)
        return tuple(out[i] for i in range(len(fields)))

    def ifft_many(self, *spectra: Array, dealiased: bool = False) -> tuple[Array, ...]:
        """``tuple(self.ifft(s) for s in spectra)``, as one stacked transform when :attr:`stacks`."""
        if not self.stacks or len(spectra) == 1:
            return tuple(self.ifft(s, dealiased=dealiased) for s in spectra)
        out = self.ifft(jnp.stack(spectra), dealiased=dealiased)
        return tuple(out[i] for i in range(len(spectra)))


def as_transform(transform: str | SpectralTransform, resolution: int,
                 spatial_dims: int) -> SpectralTransform:
    """A solver's ``transform=`` argument (a backend name or a :class:`SpectralTransform`),
    bound to its grid."""
    if isinstance(transform, str):
        return SpectralTransform(transform, int(resolution), int(spatial_dims))
    if isinstance(transform, SpectralTransform):
        return transform.bind(resolution, spatial_dims)
    raise ValueError(f"transform must be one of {', '.join(BACKENDS)} or a SpectralTransform, "
                     f"got {transform!r}")
