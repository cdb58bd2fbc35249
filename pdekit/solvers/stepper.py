"""Base class shared by the built-in pseudo-spectral ETDRK solvers."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Complex, Float

from pdekit.solvers import grid
from pdekit.solvers.etdrk import SemiLinearPDE, etdrk_coefficients, etdrk_step
from pdekit.solvers.transforms import SpectralTransform, as_transform


def check_scalar(name: str, value, *, positive: bool = False, nonnegative: bool = False) -> None:
    """Validate a parameter when its value is concrete (skipped for tracers under ``vmap``/``jit``)."""
    if isinstance(value, jax.core.Tracer):
        return
    arr = np.asarray(value)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not np.all(arr > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and not np.all(arr >= 0):
        raise ValueError(f"{name} must be >= 0, got {value!r}")


class SpectralStepper(SemiLinearPDE):
    """A semi-linear PDE on a periodic box together with its ETDRK time step.

    Subclasses set ``N, L, dt, order, dealias`` and their own parameters in ``__init__``, then
    call :meth:`_setup_integrator`. States passed to :meth:`step` are physical fields of shape
    ``(N,) * spatial_dims``; :meth:`step_hat` works on rfft spectra and is what rollouts use.

    Every transform between the two goes through ``self.transform``, a static
    :class:`~pdekit.solvers.transforms.SpectralTransform` (``transform="fft"``, the default, or
    ``"matmul"``, the DFT as matrix products), so one solver code serves both backends.
    """

    resolution: int = eqx.field(static=True)
    L: Array
    dt: Array
    order: int = eqx.field(static=True)
    dealias: bool = eqx.field(static=True)
    coefficients: tuple[Array, ...]
    transform: SpectralTransform = eqx.field(static=True)

    def _setup_common(self, *, resolution: int, L, dt, order: int, dealias: bool,
                      transform: str | SpectralTransform = "fft") -> None:
        grid.check_resolution(resolution, dealias=dealias)
        check_scalar("dt", dt, positive=True)
        check_scalar("L", L, positive=True)
        if order not in (1, 2, 3, 4):
            raise ValueError(f"order must be 1, 2, 3 or 4, got {order}")
        self.resolution = int(resolution)
        self.L = jnp.asarray(L, dtype=float)
        self.dt = jnp.asarray(dt, dtype=float)
        self.order = int(order)
        self.dealias = bool(dealias)
        self.transform = as_transform(transform, self.resolution, self.spatial_dims)

    def _setup_integrator(self) -> None:
        self.coefficients = etdrk_coefficients(self.dt * self.linear_operator(), self.dt, self.order)

    # -- grid helpers -------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray | float:
        return grid.dealias_mask(self.resolution, self.spatial_dims) if self.dealias else 1.0

    @property
    def dx(self) -> Array:
        return self.L / self.resolution

    def wavenumbers(self) -> tuple[Array, ...]:
        return grid.wavenumbers(self.resolution, self.L, self.spatial_dims)

    def derivative(self, axis: int, order: int = 1) -> Array:
        return grid.derivative_operator(self.resolution, self.L, self.spatial_dims, axis, order)

    def coordinates(self) -> Float[Array, " N"]:
        """Grid points ``x_j = j L / N`` along one axis."""
        return grid.grid_points(self.resolution, self.L)

    def to_fourier(self, u: Float[Array, "..."]) -> Complex[Array, "..."]:
        return self.transform.fft(u)

    def from_fourier(self, u_hat: Complex[Array, "..."]) -> Float[Array, "..."]:
        return self.transform.ifft(u_hat)

    # -- time stepping ------------------------------------------------------------------------
    def step_hat(self, u_hat: Complex[Array, "..."], t=0.0) -> Complex[Array, "..."]:
        """One ETDRK step in Fourier space from time ``t``."""
        return etdrk_step(self.nonlinear, self.coefficients, self.order, self.dt, u_hat,
                          jnp.asarray(t, dtype=self.dt.dtype))

    def step(self, u: Float[Array, "..."], t=0.0) -> Float[Array, "..."]:
        """One ETDRK step on a physical state."""
        return self.from_fourier(self.step_hat(self.to_fourier(u), t))

    def rhs(self, t, u: Float[Array, "..."]) -> Float[Array, "..."]:
        """Right-hand side of the semi-discrete system in physical space (for diffrax)."""
        u_hat = self.to_fourier(u)
        return self.from_fourier(self.linear_operator() * u_hat + self.nonlinear(u_hat, t))
