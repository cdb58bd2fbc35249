"""Viscous Burgers equation with optional space–time forcing."""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Complex, Float

from pdekit.solvers.stepper import SpectralStepper, check_scalar
from pdekit.solvers.transforms import SpectralTransform


class SineForcing(eqx.Module):
    r"""``delta(t, x) = sum_j A_j sin(omega_j t + 2 pi l_j x / L + phi_j)`` (MP-PDE "E2" forcing).

    All coefficients are arrays of shape ``(J,)`` (leaves, so they may be sampled per
    trajectory and batched with ``vmap``).
    """

    amplitude: Float[Array, " J"]
    omega: Float[Array, " J"]
    wavenumber: Float[Array, " J"]
    phase: Float[Array, " J"]
    L: Array

    def __init__(self, amplitude, omega, wavenumber, phase, L):
        self.amplitude = jnp.asarray(amplitude, dtype=float)
        self.omega = jnp.asarray(omega, dtype=float)
        self.wavenumber = jnp.asarray(wavenumber, dtype=float)
        self.phase = jnp.asarray(phase, dtype=float)
        self.L = jnp.asarray(L, dtype=float)

    def __call__(self, t, x: Float[Array, " N"]) -> Float[Array, " N"]:
        arg = (self.omega[:, None] * t + 2.0 * jnp.pi * self.wavenumber[:, None] * x[None, :] / self.L
               + self.phase[:, None])
        return jnp.sum(self.amplitude[:, None] * jnp.sin(arg), axis=0)


class Burgers(SpectralStepper):
    r"""Viscous Burgers equation on ``[0, L)``.

    .. math:: u_t + (u^2/2)_x = \nu u_{xx} + \delta(t, x)

    Split: linear ``-nu k^2``; nonlinear ``-(u^2/2)_x`` (conservative, dealiased) plus the
    forcing evaluated at the stage times. ``forcing`` is any callable ``(t, x) -> (N,)``
    that is a PyTree (e.g. :class:`SineForcing`), or ``None``. ``transform``: ``"fft"``
    (default) or ``"matmul"`` (see :class:`~pdekit.solvers.transforms.SpectralTransform`).
    """

    spatial_dims: ClassVar[int] = 1
    nu: Array
    forcing: SineForcing | None

    def __init__(self, *, L=1.0, resolution: int = 256, dt=1e-3, nu=0.1, forcing=None, order: int = 4,
                 dealias: bool = True, transform: str | SpectralTransform = "fft"):
        check_scalar("nu", nu, nonnegative=True)
        self._setup_common(resolution=resolution, L=L, dt=dt, order=order, dealias=dealias,
                           transform=transform)
        self.nu = jnp.asarray(nu, dtype=self.dt.dtype)
        self.forcing = forcing
        self._setup_integrator()

    def linear_operator(self) -> Array:
        (k,) = self.wavenumbers()
        return -self.nu * k**2

    def nonlinear(self, u_hat: Complex[Array, " K"], t) -> Complex[Array, " K"]:
        u = self.transform.ifft(self.mask * u_hat, dealiased=self.dealias)
        if self.forcing is None:
            return self.mask * (-0.5 * self.derivative(0) * self.transform.fft(u * u, dealiased=self.dealias))
        # both forward transforms in one call (one GEMM with the matmul backend)
        uu_hat, f_hat = self.transform.fft_many(u * u, self.forcing(t, self.coordinates()),
                                                dealiased=self.dealias)
        return self.mask * (-0.5 * self.derivative(0) * uu_hat + f_hat)
