"""Reference solvers: pseudo-spectral, dealiased, exponential time differencing.

Flat public API::

    from pdekit.solvers import KuramotoSivashinsky, Burgers, NavierStokes2D, trajectory
    ks = KuramotoSivashinsky(L=64.0, resolution=256, dt=0.05)
    traj = trajectory(ks, u0, num_frames=500, inner_steps=4)   # (500, 256)
    ks = stepper_for("ks", {"L": 64.0, "nu": 1.0}, resolution=256, dt=0.05)   # the same, by name
    ks = KuramotoSivashinsky(L=64.0, resolution=256, dt=0.05, transform="matmul")  # DFT by GEMM
"""

from pdekit.solvers.burgers import Burgers, SineForcing
from pdekit.solvers.catalogue import EQUATIONS, ns2d_forcing, stepper_for
from pdekit.solvers.etdrk import ETDRK, SemiLinearPDE, etdrk_coefficients, etdrk_step, phi_functions
from pdekit.solvers.grid import (
    dealias_mask,
    derivative_operator,
    energy_spectrum,
    grid_points,
    resample,
    wavenumbers,
)
from pdekit.solvers.initial_conditions import gaussian_random_field, random_vorticity, sine_sum
from pdekit.solvers.ks import KuramotoSivashinsky
from pdekit.solvers.navier_stokes import (
    NavierStokes2D,
    fno_forcing,
    kolmogorov_forcing,
    max_stable_cfl,
)
from pdekit.solvers.rollout import trajectory, trajectory_diffrax
from pdekit.solvers.stepper import SpectralStepper
from pdekit.solvers.transforms import SpectralTransform

__all__ = [
    "EQUATIONS", "ETDRK", "Burgers", "KuramotoSivashinsky", "NavierStokes2D", "SemiLinearPDE", "SineForcing",
    "SpectralStepper", "SpectralTransform", "dealias_mask", "derivative_operator", "energy_spectrum",
    "etdrk_coefficients", "etdrk_step", "fno_forcing", "gaussian_random_field", "grid_points",
    "kolmogorov_forcing", "max_stable_cfl", "ns2d_forcing", "phi_functions", "random_vorticity", "resample",
    "sine_sum", "stepper_for", "trajectory", "trajectory_diffrax", "wavenumbers",
]
