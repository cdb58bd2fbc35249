"""Energy spectra, banded spectral errors and long-horizon statistics (pure, jit-friendly).

Wavenumbers are integer mode indices (``k`` oscillations per domain length), so spectra of
trajectories on domains of different length ``L`` are directly comparable by index.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from pdekit.solvers import grid
from pdekit.solvers.grid import num_shells  # noqa: F401  (re-exported)

#: Floor applied to spectra before taking logarithms (keeps log10 finite for empty modes).
LOG_FLOOR = 1e-30


def energy_spectrum_1d(u: Float[Array, "*batch C N"]) -> Float[Array, "*batch K"]:
    """One-sided 1D energy spectrum (:func:`pdekit.solvers.energy_spectrum`), ``K = N // 2 + 1``,
    averaged over channels: ``sum_k E(k) = mean(u^2)`` over space and channels."""
    return jnp.mean(grid.energy_spectrum(u, 1), axis=-2)


def energy_spectrum_2d(u: Float[Array, "*batch C Nx Ny"]) -> Float[Array, "*batch K"]:
    """Shell-summed 2D energy spectrum (:func:`pdekit.solvers.energy_spectrum`), averaged over
    channels; ``K = num_shells(Nx, Ny)`` and ``sum_k E(k) = mean(u^2)``."""
    return jnp.mean(grid.energy_spectrum(u, 2), axis=-2)


def energy_spectrum(u: Float[Array, "*batch C *S"], spatial_dims: int) -> Float[Array, "*batch K"]:
    """Dispatch to :func:`energy_spectrum_1d` or :func:`energy_spectrum_2d`."""
    if spatial_dims == 1:
        return energy_spectrum_1d(u)
    if spatial_dims == 2:
        return energy_spectrum_2d(u)
    raise ValueError(f"energy spectra support 1 or 2 spatial dims, got {spatial_dims}")


def resolved_kmax(spatial_shape: tuple[int, ...]) -> int:
    """Largest resolved wavenumber: ``N // 2`` (1D) or ``min(Nx, Ny) // 2`` (2D shells)."""
    return min(spatial_shape) // 2


#: Energy below this fraction of the total counts as empty (dealiased or truncated modes).
EMPTY_FRACTION = 1e-10


def populated_kmax(e_ref, kmax: int, rel: float = EMPTY_FRACTION) -> int:
    """Largest ``k <= kmax`` whose mean reference energy exceeds ``rel`` x the total energy.

    Data solved with the 2/3 rule and stored at the solve resolution hold only round-off
    above ``N/3``; relative errors there measure round-off, so the spectral bands stop at
    the last populated wavenumber (at least 3, one per band). ``e_ref`` is ``(..., K)``."""
    mean = np.asarray(e_ref, np.float64).reshape(-1, np.shape(e_ref)[-1]).mean(axis=0)
    full = mean[1 : kmax + 1]
    live = np.nonzero(full > rel * max(float(full.sum()), np.finfo(float).tiny))[0]
    last = int(live[-1] + 1) if live.size else int(kmax)
    return max(last, min(3, int(kmax)))


def band_slices(kmax: int) -> dict[str, slice]:
    """Split wavenumbers ``1..kmax`` into thirds: low, mid, high (``k = 0`` is excluded)."""
    parts = np.array_split(np.arange(1, kmax + 1), 3)
    return {name: slice(int(p[0]), int(p[-1]) + 1) for name, p in zip(("low", "mid", "high"), parts, strict=True)}


def band_errors(
    e_pred: Float[Array, "*batch K"], e_ref: Float[Array, "*batch K"], kmax: int
) -> dict[str, Float[Array, "*batch"]]:
    """Relative spectral error per band: ``sum_band |E_pred - E_ref| / sum_band E_ref``."""
    out = {}
    for name, sl in band_slices(kmax).items():
        num = jnp.sum(jnp.abs(e_pred[..., sl] - e_ref[..., sl]), axis=-1)
        out[name] = num / jnp.sum(e_ref[..., sl], axis=-1)
    return out


def log_spectrum_distance(
    e_pred: Float[Array, "*batch K"], e_ref: Float[Array, "*batch K"], kmax: int
) -> Float[Array, "*batch"]:
    """Mean over ``k = 1..kmax`` of ``|log10 E_pred(k) - log10 E_ref(k)|`` (floored at 1e-30)."""
    lp = jnp.log10(jnp.maximum(e_pred[..., 1 : kmax + 1], LOG_FLOOR))
    lr = jnp.log10(jnp.maximum(e_ref[..., 1 : kmax + 1], LOG_FLOOR))
    return jnp.mean(jnp.abs(lp - lr), axis=-1)


def long_horizon_stats(
    pred: Float[Array, "B T C *S"], ref: Float[Array, "B Tr C *S"], spatial_dims: int,
    kmax: int | None = None,
) -> dict[str, Array]:
    """Statistics of a rollout segment against the reference climatology, per trajectory.

    ``pred`` is the part of the rollout beyond the reference horizon; ``ref`` is the whole
    reference trajectory. Per trajectory: mean and variance of u over time, space and
    channels for both; the time-averaged spectra; their band errors and log distance.
    """
    kmax = resolved_kmax(pred.shape[3:]) if kmax is None else kmax
    e_pred = jnp.mean(energy_spectrum(pred, spatial_dims), axis=1)
    e_ref = jnp.mean(energy_spectrum(ref, spatial_dims), axis=1)
    flat_p = pred.reshape(pred.shape[0], -1)
    flat_r = ref.reshape(ref.shape[0], -1)
    out = {
        "mean_pred": jnp.mean(flat_p, axis=-1),
        "mean_ref": jnp.mean(flat_r, axis=-1),
        "var_pred": jnp.var(flat_p, axis=-1),
        "var_ref": jnp.var(flat_r, axis=-1),
        "spectrum_pred": e_pred,
        "spectrum_ref": e_ref,
        "log_spectrum_distance": log_spectrum_distance(e_pred, e_ref, kmax),
    }
    out["var_ratio"] = out["var_pred"] / out["var_ref"]
    out.update({f"band_{k}": v for k, v in band_errors(e_pred, e_ref, kmax).items()})
    return out
