"""2D incompressible flow diagnostics: vorticity, velocity, enstrophy and kinetic energy.

On a periodic ``[0, L)^2`` grid indexed ``[x, y]`` (the layout of the NS2D solver and files)
with stream function ``psi``, ``-Lap psi = omega``, velocity ``u = psi_y``, ``v = -psi_x`` and
vorticity ``omega = v_x - u_y`` (the convention of :class:`pdekit.solvers.NavierStokes2D`):

* enstrophy ``Z = 1/2 <omega^2>`` (``<.>`` the mean over the grid);
* kinetic energy ``E = 1/2 <u^2 + v^2> = 1/2 sum_{m != 0} |c_m|^2 / |k_m|^2``, with
  ``c = fft2(omega) / (Nx Ny)`` and ``k_m = 2 pi m / L`` (Parseval: ``<|grad psi|^2> =
  sum |k|^2 |psi_m|^2`` and ``psi_m = c_m / |k_m|^2``); the mean mode carries no velocity.

Everything is spectral and jit-friendly; leading axes are a batch. :func:`flow_fields` tells
from a file's ``fields`` attribute which channels hold the vorticity (``("vorticity",)``, the
NS2D presets) or the two velocity components (then the vorticity is computed from them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

#: Channel names read as the vorticity, and as the (x, y) velocity pair.
VORTICITY_NAMES = ("vorticity", "omega", "w")
VELOCITY_PAIRS = (("u", "v"), ("vx", "vy"), ("velocity_x", "velocity_y"), ("ux", "uy"))


@dataclasses.dataclass(frozen=True)
class FlowFields:
    """Where the flow is in the channel axis: ``kind="vorticity"`` with ``channels=(i,)``, or
    ``kind="velocity"`` with ``channels=(i_u, i_v)``. Hashable (a static jit argument)."""

    kind: str
    channels: tuple[int, ...]

    def __post_init__(self):
        want = {"vorticity": 1, "velocity": 2}
        if self.kind not in want or len(self.channels) != want[self.kind]:
            raise ValueError(f"FlowFields: kind must be vorticity (1 channel) or velocity "
                             f"(2 channels), got {self.kind!r} with {self.channels}")

    def describe(self) -> str:
        if self.kind == "vorticity":
            return f"stored vorticity (channel {self.channels[0]})"
        return f"vorticity from the stored velocity (channels {self.channels[0]}, {self.channels[1]})"


def field_names(value) -> tuple[str, ...] | None:
    """A file's ``fields`` attribute as a tuple of lower-case names (bytes decoded), or None."""
    if value is None:
        return None
    items = [value] if isinstance(value, (str, bytes)) else list(np.ravel(np.asarray(value, object)))
    return tuple((v.decode() if isinstance(v, bytes) else str(v)).strip().lower() for v in items)


def flow_fields(names: Sequence[str] | None, spatial_dims: int) -> FlowFields | None:
    """The :class:`FlowFields` of 2D data with channel ``names``; None when the data are not 2D
    or hold neither a vorticity channel nor a velocity pair."""
    if spatial_dims != 2 or not names:
        return None
    names = [str(n).lower() for n in names]
    for i, n in enumerate(names):
        if n in VORTICITY_NAMES:
            return FlowFields("vorticity", (i,))
    for a, b in VELOCITY_PAIRS:
        if a in names and b in names:
            return FlowFields("velocity", (names.index(a), names.index(b)))
    return None


def _wavenumbers(shape: tuple[int, int], L) -> tuple[Array, Array]:
    """Physical wavenumbers ``2 pi m / L`` of a full 2D FFT, broadcast against a batch of
    domain lengths ``L`` (shape ``batch + (1, 1)`` after expansion)."""
    nx, ny = shape
    mx = np.fft.fftfreq(nx, 1.0 / nx)[:, None]
    my = np.fft.fftfreq(ny, 1.0 / ny)[None, :]
    scale = 2.0 * jnp.pi / jnp.asarray(L)[..., None, None]
    return scale * mx, scale * my


def _fft2(f):
    return jnp.fft.fft2(f, axes=(-2, -1))


def _ifft2(f_hat):
    return jnp.real(jnp.fft.ifft2(f_hat, axes=(-2, -1)))


def _zero_nyquist(f_hat, shape):
    """Zero the Nyquist rows/columns of even axes (odd derivatives are ambiguous there)."""
    nx, ny = shape
    keep = np.ones(shape, bool)
    if nx % 2 == 0:
        keep[nx // 2, :] = False
    if ny % 2 == 0:
        keep[:, ny // 2] = False
    return jnp.where(jnp.asarray(keep), f_hat, 0.0)


@jax.jit
def velocity_from_vorticity(omega: Float[Array, "*b Nx Ny"], L=2 * np.pi
                            ) -> tuple[Float[Array, "*b Nx Ny"], Float[Array, "*b Nx Ny"]]:
    """``(u, v) = (psi_y, -psi_x)`` with ``-Lap psi = omega`` (the mean of omega dropped).
    ``L`` is a scalar or one domain length per batch element."""
    shape = omega.shape[-2:]
    L = jnp.broadcast_to(jnp.asarray(L, omega.dtype), omega.shape[:-2])
    kx, ky = _wavenumbers(shape, L)
    k2 = kx**2 + ky**2
    w_hat = _zero_nyquist(_fft2(omega), shape)
    psi_hat = jnp.where(k2 == 0, 0.0, w_hat / jnp.where(k2 == 0, 1.0, k2))
    return _ifft2(1j * ky * psi_hat), _ifft2(-1j * kx * psi_hat)


@jax.jit
def vorticity_from_velocity(u: Float[Array, "*b Nx Ny"], v: Float[Array, "*b Nx Ny"], L=2 * np.pi
                            ) -> Float[Array, "*b Nx Ny"]:
    """``omega = v_x - u_y`` (spectral derivatives, Nyquist modes dropped)."""
    shape = u.shape[-2:]
    L = jnp.broadcast_to(jnp.asarray(L, u.dtype), u.shape[:-2])
    kx, ky = _wavenumbers(shape, L)
    w_hat = 1j * kx * _fft2(v) - 1j * ky * _fft2(u)
    return _ifft2(_zero_nyquist(w_hat, shape))


@jax.jit
def enstrophy(omega: Float[Array, "*b Nx Ny"]) -> Float[Array, "*b"]:
    """``Z = 1/2 <omega^2>`` over the grid."""
    return 0.5 * jnp.mean(omega**2, axis=(-2, -1))


@jax.jit
def kinetic_energy(omega: Float[Array, "*b Nx Ny"], L=2 * np.pi) -> Float[Array, "*b"]:
    """``E = 1/2 <|u|^2>`` of the flow with vorticity ``omega`` on ``[0, L)^2``, computed
    spectrally: ``1/2 sum_{m != 0} |c_m|^2 / |k_m|^2``, ``c = fft2(omega) / (Nx Ny)``."""
    shape = omega.shape[-2:]
    L = jnp.broadcast_to(jnp.asarray(L, omega.dtype), omega.shape[:-2])
    kx, ky = _wavenumbers(shape, L)
    k2 = kx**2 + ky**2
    power = jnp.abs(_fft2(omega) / float(np.prod(shape))) ** 2
    return 0.5 * jnp.sum(jnp.where(k2 == 0, 0.0, power / jnp.where(k2 == 0, 1.0, k2)), axis=(-2, -1))


@partial(jax.jit, static_argnames="fields")
def vorticity_of(u: Float[Array, "*b C Nx Ny"], fields: FlowFields, L=2 * np.pi
                 ) -> Float[Array, "*b Nx Ny"]:
    """The vorticity of the states ``u`` (channels as described by ``fields``)."""
    if fields.kind == "vorticity":
        return u[..., fields.channels[0], :, :]
    iu, iv = fields.channels
    return vorticity_from_velocity(u[..., iu, :, :], u[..., iv, :, :], L)


@partial(jax.jit, static_argnames="fields")
def invariants(pred: Float[Array, "B T C Nx Ny"], ref: Float[Array, "B T C Nx Ny"],
               fields: FlowFields, L: Float[Array, " B"]) -> dict[str, Array]:
    """Per trajectory and step: enstrophy and kinetic energy of prediction and reference and
    their ratios ``pred / ref`` (``L`` one domain length per trajectory)."""
    L_bt = jnp.broadcast_to(jnp.asarray(L, pred.dtype)[:, None], pred.shape[:2])
    wp, wr = vorticity_of(pred, fields, L_bt), vorticity_of(ref, fields, L_bt)
    out = {"enstrophy_pred": enstrophy(wp), "enstrophy_ref": enstrophy(wr),
           "energy_pred": kinetic_energy(wp, L_bt), "energy_ref": kinetic_energy(wr, L_bt)}
    out["enstrophy_ratio"] = out["enstrophy_pred"] / out["enstrophy_ref"]
    out["energy_ratio"] = out["energy_pred"] / out["energy_ref"]
    return out
