"""Kuramoto–Sivashinsky equation."""

from __future__ import annotations

from typing import ClassVar

import jax.numpy as jnp
from jaxtyping import Array, Complex

from pdekit.solvers.stepper import SpectralStepper, check_scalar
from pdekit.solvers.transforms import SpectralTransform


class KuramotoSivashinsky(SpectralStepper):
    r"""Kuramoto–Sivashinsky equation on a periodic interval ``[0, L)``.

    .. math:: u_t + u u_x + u_{xx} + \nu u_{xxxx} = 0

    Split: linear ``k^2 - nu k^4`` (exact, via ETDRK), nonlinear ``-(u^2/2)_x`` in conservative
    form (so the mean is conserved to round-off), 2/3-rule dealiased by default.

    Args:
        L: domain length (array leaf: may differ per trajectory under ``vmap``).
        N: grid points (static).
        dt: internal time step.
        nu: hyper-viscosity (default 1; ``ks_conditional`` samples it per trajectory).
        order: ETDRK order 1–4.
        dealias: apply the 2/3 rule to the nonlinear term.
        transform: ``"fft"`` (default) or ``"matmul"`` (the DFT as matrix products), or a
            :class:`~pdekit.solvers.transforms.SpectralTransform` (static).
    """

    spatial_dims: ClassVar[int] = 1
    nu: Array

    def __init__(self, *, L=64.0, resolution: int = 256, dt=0.25, nu=1.0, order: int = 4,
                 dealias: bool = True, transform: str | SpectralTransform = "fft"):
        check_scalar("nu", nu, nonnegative=True)
        self._setup_common(resolution=resolution, L=L, dt=dt, order=order, dealias=dealias,
                           transform=transform)
        self.nu = jnp.asarray(nu, dtype=self.dt.dtype)
        self._setup_integrator()

    def linear_operator(self) -> Array:
        (k,) = self.wavenumbers()
        return k**2 - self.nu * k**4

    def nonlinear(self, u_hat: Complex[Array, " K"], t) -> Complex[Array, " K"]:
        u = self.transform.ifft(self.mask * u_hat, dealiased=self.dealias)
        return self.mask * (-0.5 * self.derivative(0) * self.transform.fft(u * u, dealiased=self.dealias))
