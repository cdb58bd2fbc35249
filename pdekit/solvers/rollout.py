"""Trajectories: ETDRK rollouts in Fourier space, and an adaptive diffrax path."""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from pdekit.solvers.stepper import SpectralStepper


def _check_counts(num_frames: int, inner_steps: int) -> None:
    if int(num_frames) != num_frames or num_frames < 1:
        raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
    if int(inner_steps) != inner_steps or inner_steps < 1:
        raise ValueError(f"inner_steps must be a positive integer, got {inner_steps!r}")


def trajectory(stepper: SpectralStepper, u0: Float[Array, "*spatial"], num_frames: int,
               inner_steps: int = 1, t0=0.0, unroll: int = 1) -> Float[Array, " num_frames *spatial"]:
    """Roll ``stepper`` out from ``u0``; return ``num_frames`` frames saved every ``inner_steps`` steps.

    Frame 0 is ``u0`` (at time ``t0``), frame ``i`` is at ``t0 + i * inner_steps * dt``. The
    state stays in Fourier space inside a nested ``lax.scan``; only saved frames are transformed
    back, in one batched inverse FFT at the end. Batch over initial conditions and parameters
    with ``jax.vmap`` (build the stepper inside the vmapped function for per-trajectory
    parameters). ``unroll`` unrolls the outer scan (lets XLA fuse across saved frames on GPUs).
    """
    _check_counts(num_frames, inner_steps)
    u_hat0 = stepper.to_fourier(u0)
    t_start = jnp.asarray(t0, dtype=stepper.dt.dtype)

    def inner(carry, _):
        u_hat, t = carry
        return (stepper.step_hat(u_hat, t), t + stepper.dt), None

    def outer(carry, _):
        carry, _ = jax.lax.scan(inner, carry, None, length=inner_steps, unroll=inner_steps <= 4)
        return carry, carry[0]

    _, saved = jax.lax.scan(outer, (u_hat0, t_start), None, length=num_frames - 1, unroll=unroll)
    saved = jnp.concatenate([u_hat0[None], saved], axis=0)
    return stepper.from_fourier(saved)


def trajectory_diffrax(stepper: SpectralStepper, u0: Float[Array, "*spatial"], num_frames: int,
                       save_every: float, *, rtol: float = 1e-8, atol: float = 1e-8,
                       solver: diffrax.AbstractSolver | None = None, t0: float = 0.0,
                       max_steps: int = 1_000_000) -> Float[Array, " num_frames *spatial"]:
    """Integrate the same semi-discrete system with an adaptive diffrax solver.

    The right-hand side is ``stepper.rhs`` (linear + nonlinear parts, identical to what the
    ETDRK path integrates), the step size is controlled to ``rtol``/``atol`` by a PID controller,
    and frames are saved every ``save_every`` time units. The default solver is ``Kvaerno5``, a
    5th-order L-stable implicit (ESDIRK) method suited to the stiff linear part. Use this for
    validation, or when error control matters more than speed.
    """
    _check_counts(num_frames, 1)
    if not save_every > 0:
        raise ValueError(f"save_every must be > 0, got {save_every!r}")
    solver = diffrax.Kvaerno5() if solver is None else solver
    ts = t0 + save_every * jnp.arange(num_frames, dtype=u0.dtype)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, u, args: stepper.rhs(t, u)),
        solver,
        t0=ts[0],
        t1=ts[-1],
        dt0=None,
        y0=u0,
        saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        max_steps=max_steps,
    )
    return sol.ys
