"""Incompressible Navier–Stokes in 2D, vorticity–stream-function form."""

from __future__ import annotations

from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

from pdekit.solvers import grid
from pdekit.solvers.stepper import SpectralStepper, check_scalar
from pdekit.solvers.transforms import SpectralTransform

#: Extent of each ETDRK scheme's explicit stability region along the imaginary axis (the
#: advective eigenvalues are imaginary). RK3: sqrt(3), RK4: 2 sqrt(2); orders 1–2 are not
#: stable on the imaginary axis at all, and rely on viscosity: we allow a conservative 1.0.
IMAGINARY_STABILITY = {1: 1.0, 2: 1.0, 3: float(np.sqrt(3.0)), 4: float(2.0 * np.sqrt(2.0))}


def max_stable_cfl(order: int, dealias: bool) -> float:
    """Largest advective CFL number ``u_max dt / dx`` inside the explicit stability region.

    The largest advective eigenvalue is ``u_max * k_max`` with ``k_max = pi / dx`` (times 2/3
    when dealiased), so ``dt u_max k_max <= beta`` gives ``CFL <= beta / (pi * fraction)``.
    """
    fraction = 2.0 / 3.0 if dealias else 1.0
    return IMAGINARY_STABILITY[order] / (np.pi * fraction)


def kolmogorov_forcing(resolution: int, L=2 * np.pi, wavenumber: int = 4, amplitude=1.0,
                       ) -> Float[Array, "N N"]:
    """Vorticity forcing of the body force ``amplitude * sin(wavenumber y) x-hat``.

    Its curl is ``-amplitude * wavenumber * cos(wavenumber y)`` (axis 1 is y).
    """
    y = grid.grid_points(resolution, L)
    k = 2.0 * jnp.pi * wavenumber / jnp.asarray(L)
    f = -amplitude * k * jnp.cos(k * y)
    return jnp.broadcast_to(f[None, :], (resolution, resolution))


def fno_forcing(resolution: int, L=1.0) -> Float[Array, "N N"]:
    """The FNO paper's torus forcing ``0.1 (sin 2 pi (x + y) + cos 2 pi (x + y))`` (unit torus)."""
    x = grid.grid_points(resolution, L)
    s = 2.0 * jnp.pi * (x[:, None] + x[None, :]) / jnp.asarray(L)
    return 0.1 * (jnp.sin(s) + jnp.cos(s))


class NavierStokes2D(SpectralStepper):
    r"""2D incompressible Navier–Stokes for the vorticity ``omega`` on ``[0, L)^2``.

    .. math:: \omega_t + \nabla\cdot(\mathbf{u}\,\omega) = \nu \Delta\omega - \alpha\,\omega + f,
              \qquad \mathbf{u} = (\psi_y, -\psi_x), \quad -\Delta\psi = \omega

    (the divergence form equals ``u . grad omega`` since ``div u = 0``, and conserves the mean
    exactly). Split: linear ``-nu |k|^2 - alpha``; nonlinear advection (dealiased) plus the
    steady forcing ``f`` (a vorticity field of shape ``(N, N)``, e.g. :func:`kolmogorov_forcing`).
    States are ``(N, N)`` arrays indexed ``[x, y]``.

    ``max_velocity`` (optional) is an estimate of the largest speed the flow will reach; when
    given, the advective CFL number ``max_velocity * dt / dx`` is checked against the explicit
    stability limit of the chosen scheme before any work is done.

    ``transform``: ``"fft"`` (default) or ``"matmul"`` (the DFT as matrix products; see
    :class:`~pdekit.solvers.transforms.SpectralTransform`). The forcing spectrum is computed
    once with the FFT either way.
    """

    spatial_dims: ClassVar[int] = 2
    nu: Array
    drag: Array
    forcing_hat: Complex[Array, "N K"] | None

    def __init__(self, *, L=2 * np.pi, resolution: int = 64, dt=1e-3, nu=1e-3, drag=0.0, forcing=None,
                 max_velocity=None, order: int = 4, dealias: bool = True,
                 transform: str | SpectralTransform = "fft"):
        check_scalar("nu", nu, nonnegative=True)
        check_scalar("drag", drag, nonnegative=True)
        self._setup_common(resolution=resolution, L=L, dt=dt, order=order, dealias=dealias,
                           transform=transform)
        self.nu = jnp.asarray(nu, dtype=self.dt.dtype)
        self.drag = jnp.asarray(drag, dtype=self.dt.dtype)
        if forcing is not None:
            forcing = jnp.asarray(forcing)
            if forcing.shape != (resolution, resolution):
                raise ValueError(f"forcing must have shape {(resolution, resolution)}, got {forcing.shape}")
            self.forcing_hat = self.mask * grid.fft(forcing, 2)
        else:
            self.forcing_hat = None
        if max_velocity is not None and not any(
            isinstance(v, jax.core.Tracer) for v in (max_velocity, dt, L)
        ):
            cfl = float(np.max(np.asarray(max_velocity) * np.asarray(dt) * resolution / np.asarray(L)))
            limit = max_stable_cfl(order, dealias)
            if cfl > limit:
                raise ValueError(
                    f"unstable time step: advective CFL {cfl:.3g} exceeds {limit:.3g}, the stable "
                    f"limit of ETDRK{order}; use dt <= {limit * float(np.min(L)) / resolution / float(np.max(max_velocity)):.3g}"
                )
        self._setup_integrator()

    def linear_operator(self) -> Array:
        return self.nu * grid.laplacian_symbol(self.resolution, self.L, 2) - self.drag

    def velocity_hat(self, omega_hat: Complex[Array, "N K"]):
        """Velocity ``(u, v)`` in Fourier space from the vorticity spectrum."""
        lap = grid.laplacian_symbol(self.resolution, self.L, 2)
        psi_hat = jnp.where(lap == 0, 0.0, -omega_hat / jnp.where(lap == 0, 1.0, lap))
        return self.derivative(1) * psi_hat, -self.derivative(0) * psi_hat

    def velocity(self, omega: Float[Array, "N N"]):
        """Physical velocity ``(u, v)`` of a vorticity field."""
        u_hat, v_hat = self.velocity_hat(self.to_fourier(omega))
        return self.from_fourier(u_hat), self.from_fourier(v_hat)

    def nonlinear(self, omega_hat: Complex[Array, "N K"], t) -> Complex[Array, "N K"]:
        w_hat = self.mask * omega_hat
        u_hat, v_hat = self.velocity_hat(w_hat)
        # three inverse and two forward transforms, each set in one call (one GEMM per axis
        # with the matmul backend; the fft backend does them one by one, as it always has)
        w, u, v = self.transform.ifft_many(w_hat, u_hat, v_hat, dealiased=self.dealias)
        uw, vw = self.transform.fft_many(u * w, v * w, dealiased=self.dealias)
        out = -(self.mask * (self.derivative(0) * uw + self.derivative(1) * vw))
        if self.forcing_hat is not None:
            out = out + self.forcing_hat
        return out
