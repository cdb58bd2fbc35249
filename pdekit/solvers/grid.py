"""Spectral grid utilities for periodic domains.

Conventions
-----------
* Grids exclude the right endpoint: ``x_j = j L / N`` for ``j = 0..N-1``.
* A state has shape ``(N,)`` (1D) or ``(N, N)`` (2D, axis 0 is x, axis 1 is y). Its spectrum is
  ``jnp.fft.rfftn`` over the spatial axes, shape ``(N//2+1,)`` or ``(N, N//2+1)``.
* Physical wavenumbers are ``k = 2 pi m / L`` with integer ``m``.
* Odd-order derivatives zero the Nyquist mode (its derivative is not representable as a real
  field); even-order derivatives keep it.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float


def check_resolution(resolution: int, *, dealias: bool, minimum: int = 4) -> None:
    """Raise a clear error for grids that cannot be used."""
    if not isinstance(resolution, (int, np.integer)):
        raise ValueError(f"resolution must be an integer number of grid points, got {resolution!r}")
    if resolution < minimum:
        raise ValueError(f"resolution={resolution} is too small: spectral solvers need "
                         f"resolution >= {minimum} grid points")
    if dealias and resolution // 3 < 2:
        raise ValueError(
            f"resolution={resolution} is too coarse for 2/3-rule dealiasing (it would keep only "
            f"|k| <= {resolution // 3}); use resolution >= 6 or dealias=False"
        )


def grid_points(resolution: int, L: float | Array) -> Float[Array, " N"]:
    """Grid ``x_j = j L / N`` (right endpoint excluded)."""
    return jnp.arange(resolution) * (jnp.asarray(L) / resolution)


def integer_wavenumbers(resolution: int, spatial_dims: int) -> tuple[np.ndarray, ...]:
    """Integer wavenumbers of the rfft layout, one broadcastable array per spatial axis."""
    if spatial_dims == 1:
        return (np.arange(resolution // 2 + 1),)
    if spatial_dims == 2:
        mx = np.fft.fftfreq(resolution, 1.0 / resolution).round().astype(np.int64)[:, None]
        my = np.arange(resolution // 2 + 1)[None, :]
        return (mx, my)
    raise ValueError(f"spatial_dims must be 1 or 2, got {spatial_dims}")


def wavenumbers(resolution: int, L: float | Array, spatial_dims: int = 1) -> tuple[Array, ...]:
    """Physical wavenumbers ``2 pi m / L`` in the rfft layout, one array per axis."""
    scale = 2.0 * jnp.pi / jnp.asarray(L)
    return tuple(scale * jnp.asarray(m) for m in integer_wavenumbers(resolution, spatial_dims))


def derivative_operator(resolution: int, L: float | Array, spatial_dims: int, axis: int, order: int = 1):
    """Fourier multiplier of ``d^order / dx_axis^order`` (Nyquist zeroed for odd orders)."""
    k = wavenumbers(resolution, L, spatial_dims)[axis]
    op = (1j * k) ** order
    if order % 2 == 1 and resolution % 2 == 0:
        m = integer_wavenumbers(resolution, spatial_dims)[axis]
        op = jnp.where(jnp.asarray(np.abs(m) == resolution // 2), 0.0, op)
    return op


def laplacian_symbol(resolution: int, L: float | Array, spatial_dims: int) -> Array:
    """Fourier symbol of the Laplacian, ``-|k|^2`` (real)."""
    ks = wavenumbers(resolution, L, spatial_dims)
    return -sum(k**2 for k in ks)


def dealias_mask(resolution: int, spatial_dims: int, fraction: float = 2.0 / 3.0) -> np.ndarray:
    """Boolean mask keeping modes with ``|m| < fraction * N / 2`` on every axis (2/3 rule)."""
    cut = fraction * resolution / 2.0
    ms = integer_wavenumbers(resolution, spatial_dims)
    mask = np.ones(np.broadcast_shapes(*[m.shape for m in ms]), dtype=bool)
    for m in ms:
        mask &= np.abs(m) < cut
    return mask


def _spatial_axes(spatial_dims: int) -> tuple[int, ...]:
    return tuple(range(-spatial_dims, 0))


def fft(u: Array, spatial_dims: int) -> Array:
    return jnp.fft.rfftn(u, axes=_spatial_axes(spatial_dims))


def ifft(u_hat: Array, resolution: int, spatial_dims: int) -> Array:
    return jnp.fft.irfftn(u_hat, s=(resolution,) * spatial_dims, axes=_spatial_axes(spatial_dims))


def resample(u: Float[Array, " ... *spatial"], N_out: int, spatial_dims: int = 1) -> Array:
    """Spectral resampling of a periodic field to ``N_out`` points per axis.

    Downsampling truncates the spectrum; upsampling zero-pads it. The Nyquist mode of the smaller
    grid is dropped (it has no unambiguous real counterpart on the other grid), so the result is
    exact for fields band-limited below the smaller grid's Nyquist frequency.
    """
    N_in = u.shape[-1]
    if any(s != N_in for s in u.shape[-spatial_dims:]):
        raise ValueError(f"resample needs a square grid, got spatial shape {u.shape[-spatial_dims:]}")
    if N_out < 2:
        raise ValueError(f"N_out must be >= 2, got {N_out}")
    if N_out == N_in:
        return u
    n_small = min(N_in, N_out)
    u_hat = fft(u, spatial_dims)
    m_in = integer_wavenumbers(N_in, spatial_dims)
    keep = np.ones(u_hat.shape[-spatial_dims:], dtype=bool)
    for m in m_in:
        keep &= np.abs(m) < n_small / 2.0
    u_hat = jnp.where(keep, u_hat, 0.0)
    out_shape = u.shape[:-spatial_dims] + tuple(
        [N_out] * (spatial_dims - 1) + [N_out // 2 + 1]
    )
    out = jnp.zeros(out_shape, dtype=u_hat.dtype)
    half = n_small // 2 + (n_small % 2)  # number of non-negative kept modes along full axes
    if spatial_dims == 1:
        nk = min(N_in, N_out) // 2 + 1
        out = out.at[..., :nk].set(u_hat[..., :nk])
    else:
        nk = n_small // 2 + 1
        pos = slice(0, half)
        neg_in = slice(N_in - (n_small - half), N_in)
        neg_out = slice(N_out - (n_small - half), N_out)
        out = out.at[..., pos, :nk].set(u_hat[..., pos, :nk])
        if n_small - half > 0:
            out = out.at[..., neg_out, :nk].set(u_hat[..., neg_in, :nk])
    scale = (N_out / N_in) ** spatial_dims
    return ifft(out, N_out, spatial_dims).astype(u.dtype) * scale


def num_shells(nx: int, ny: int) -> int:
    """Number of shells ``[k - 1/2, k + 1/2)`` needed to hold every mode of an nx x ny grid."""
    return int(np.floor(np.hypot(nx // 2, ny // 2) + 0.5)) + 1


def energy_spectrum(u: Float[Array, "*batch *spatial"], spatial_dims: int = 1) -> Float[Array, "*batch K"]:
    """Energy spectrum ``E(k)`` of real periodic fields over the last ``spatial_dims`` axes,
    normalised so that ``sum_k E(k) = mean(u**2)`` (Parseval); leading axes are a batch.

    With ``c_m = fftn(u) / prod(shape)`` over integer mode indices ``m``:
    1D: one-sided, ``E(0) = |c_0|^2``, ``E(k) = 2 |c_k|^2`` for ``0 < k < N/2`` and
    ``E(N/2) = |c_{N/2}|^2`` (even N); ``K = N // 2 + 1``.
    2D (``Nx x Ny``, not necessarily square): ``E(k) = sum_{k - 1/2 <= |m| < k + 1/2} |c_m|^2``;
    the corner shells beyond ``N//2`` are kept so that Parseval holds exactly
    (``K = num_shells(Nx, Ny)``).
    """
    if spatial_dims not in (1, 2):
        raise ValueError(f"energy spectra support 1 or 2 spatial dims, got {spatial_dims}")
    shape = u.shape[u.ndim - spatial_dims:]
    u_hat = jnp.fft.rfftn(u, axes=_spatial_axes(spatial_dims)) / float(np.prod(shape))
    n_last = shape[-1]
    m_last = np.arange(n_last // 2 + 1)
    # rfft keeps half of the modes: the others are conjugates with the same |m|
    weight = np.where((m_last == 0) | ((n_last % 2 == 0) & (m_last == n_last // 2)), 1.0, 2.0)
    power = jnp.abs(u_hat) ** 2 * jnp.asarray(weight, dtype=u_hat.real.dtype)
    if spatial_dims == 1:
        return power
    mx = np.fft.fftfreq(shape[0]) * shape[0]
    shell = np.floor(np.hypot(mx[:, None], m_last[None, :]) + 0.5).astype(np.int64).ravel()
    batch = power.shape[:-2]
    out = jnp.zeros(batch + (num_shells(*shape),), dtype=power.dtype)
    return out.at[..., shell].add(power.reshape(batch + (-1,)))
