"""Initial-condition samplers for the data protocols (``../shared/specs/protocols.md``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from pdekit.solvers import grid


def sine_sum(key: PRNGKeyArray, *, resolution: int, L, num_terms: int = 10, amplitude=0.5,
             wavenumbers=(1, 2)) -> Float[Array, " N"]:
    r"""``u0(x) = sum_{i=1}^{n} A_i sin(2 pi l_i x / L + phi_i)`` (KS / LPSDA protocol).

    ``A_i ~ U(-amplitude, amplitude)``, ``l_i`` uniform over ``wavenumbers``,
    ``phi_i ~ U(0, 2 pi)``.
    """
    ka, kl, kp = jax.random.split(key, 3)
    dtype = jnp.asarray(L, dtype=float).dtype
    A = jax.random.uniform(ka, (num_terms,), dtype, -amplitude, amplitude)
    ls = jnp.asarray(wavenumbers, dtype=dtype)[jax.random.randint(kl, (num_terms,), 0, len(wavenumbers))]
    phi = jax.random.uniform(kp, (num_terms,), dtype, 0.0, 2.0 * jnp.pi)
    x = grid.grid_points(resolution, L)
    return jnp.sum(A[:, None] * jnp.sin(2 * jnp.pi * ls[:, None] * x[None, :] / L + phi[:, None]), 0)


def gaussian_random_field(key: PRNGKeyArray, *, resolution: int, L=1.0, dims: int = 1, scale=1.0, tau=1.0,
                          alpha=2.0) -> Float[Array, "*spatial"]:
    r"""A mean-zero sample of ``N(0, scale (-Laplacian + tau^2 I)^(-alpha))`` on ``[0, L)^dims``.

    The coefficient of each orthonormal Fourier mode ``exp(i k.x) / L^(dims/2)`` has variance
    ``scale (|k|^2 + tau^2)^(-alpha)`` with physical wavenumbers ``k = 2 pi m / L``; the mean
    (``k = 0``) is set to zero. FNO Burgers: ``scale=625, tau=5, alpha=2``; FNO Navier–Stokes:
    ``scale=7**1.5, tau=7, alpha=2.5``.
    """
    dtype = jnp.asarray(L, dtype=float).dtype
    white = jax.random.normal(key, (resolution,) * dims, dtype)
    ks = grid.wavenumbers(resolution, L, dims)
    k2 = sum(k**2 for k in ks)
    gain = jnp.sqrt(scale * (k2 + tau**2) ** (-alpha) * resolution**dims / jnp.asarray(L) ** dims)
    gain = jnp.where(k2 == 0, 0.0, gain)
    return grid.ifft(grid.fft(white, dims) * gain, resolution, dims)


def random_vorticity(key: PRNGKeyArray, *, resolution: int, L=2 * np.pi, peak_wavenumber=4.0,
                     max_speed=7.0) -> Float[Array, "N N"]:
    r"""Vorticity of a random incompressible velocity field with a spectral peak and max speed.

    The stream function is filtered white noise whose velocity energy spectrum is
    ``E(k) ~ k^4 exp(-2 (k/k0)^2)`` (peak at ``k0 = peak_wavenumber``, in units of ``2 pi / L``);
    the velocity is then scaled so that ``max |u| = max_speed`` and its vorticity returned.
    """
    dtype = jnp.asarray(L, dtype=float).dtype
    white = jax.random.normal(key, (resolution, resolution), dtype)
    mx, my = grid.integer_wavenumbers(resolution, 2)
    m = np.sqrt(mx**2 + my**2)
    filt = np.where(m == 0, 0.0, np.sqrt(m) * np.exp(-((m / peak_wavenumber) ** 2)))
    filt = filt * grid.dealias_mask(resolution, 2)
    psi_hat = grid.fft(white, 2) * filt
    lap = grid.laplacian_symbol(resolution, L, 2)
    u = grid.ifft(grid.derivative_operator(resolution, L, 2, 1) * psi_hat, resolution, 2)
    v = grid.ifft(-grid.derivative_operator(resolution, L, 2, 0) * psi_hat, resolution, 2)
    speed = jnp.sqrt(u**2 + v**2).max()
    omega = grid.ifft(-lap * psi_hat, resolution, 2)
    return omega * (max_speed / speed)
