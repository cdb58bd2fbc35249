"""Fourier Neural Operator (Li et al., ICLR 2021) in 1D and 2D (any number of axes).

Mode convention (``modes = m``), for a grid ``(N_1, ..., N_d)``:

* the LAST axis uses the real FFT and keeps the one-sided frequencies ``0 .. m-1``;
* every OTHER axis keeps ``m`` non-negative and ``m`` negative frequencies,
  ``0 .. m-1`` and ``-m .. -1`` (``2m`` entries).

So a spectral weight has shape ``(in, out, 2m, ..., 2m, m)`` complex; for 2D this is the
original FNO's two ``(in, out, m, m)`` blocks. Every axis needs ``m <= N // 2``, checked at call
time, so the same weights run at any resolution that resolves the kept modes. FFTs use the
default "backward" normalisation, which makes the layer a fixed operator on functions: on a
finer grid holding the spectral interpolation of the same signal, it returns the spectral
interpolation of the coarse output.
"""


from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from pdekit.models.base import AbstractModel, ModelSpec
from pdekit.models.conditioning import CondNorm
from pdekit.models.layers import PointwiseLinear, gelu, uniform_init


class SpectralConv(eqx.Module):
    """Spectral convolution: ``y = irfft( W(k) . rfft(x)(k) )`` on the kept low modes, zero above.

    For each kept wavevector ``k``, ``Y[o, k] = sum_i X[i, k] W[i, o, k]`` (complex), with
    ``in_channels != out_channels`` allowed. Weights are stored as real and imaginary parts
    (initialised uniform in ``[0, 1/(in*out))`` like the original code). The FFT part runs
    in float32 whatever the input dtype; the output is cast back to the input dtype.
    """

    weight_real: Float[Array, " cin cout *modes"]
    weight_imag: Float[Array, " cin cout *modes"]
    modes: int = eqx.field(static=True)

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, modes: int, *,
                 key: PRNGKeyArray):
        if modes < 1:
            raise ValueError(f"SpectralConv: modes must be >= 1, got {modes}.")
        shape = (in_channels, out_channels) + (2 * modes,) * (spatial_dims - 1) + (modes,)
        scale = 1.0 / (in_channels * out_channels)
        rkey, ikey = jax.random.split(key)
        self.weight_real = uniform_init(rkey, shape, 0.5 * scale, center=0.5 * scale)
        self.weight_imag = uniform_init(ikey, shape, 0.5 * scale, center=0.5 * scale)
        self.modes = modes

    def __call__(self, x: Float[Array, " cin *spatial"]) -> Float[Array, " cout *spatial"]:
        spatial = x.shape[1:]
        nd = len(spatial)
        m = self.modes
        if nd != self.weight_real.ndim - 2:
            raise ValueError(f"SpectralConv built for {self.weight_real.ndim - 2} spatial dims, "
                             f"got input of shape {x.shape}.")
        if any(m > n // 2 for n in spatial):
            raise ValueError(f"SpectralConv: modes={m} needs every spatial size >= {2 * m}, got "
                             f"{spatial}; use a finer grid or fewer modes.")
        axes = tuple(range(1, nd + 1))
        xf = jnp.fft.rfftn(x.astype(jnp.float32), axes=axes)
        for ax, n in enumerate(spatial):  # keep 0..m-1 (last axis) or 0..m-1, -m..-1 (others)
            low = jax.lax.slice_in_dim(xf, 0, m, axis=ax + 1)
            if ax < nd - 1:
                low = jnp.concatenate([low, jax.lax.slice_in_dim(xf, n - m, n, axis=ax + 1)],
                                      axis=ax + 1)
            xf = low
        w = (self.weight_real.astype(jnp.float32) + 1j * self.weight_imag.astype(jnp.float32))
        yf = jnp.einsum("i...,io...->o...", xf, w)
        for ax, n in enumerate(spatial):  # scatter back into the full spectrum
            if ax == nd - 1:
                pad = [(0, 0)] * yf.ndim
                pad[ax + 1] = (0, n // 2 + 1 - m)
                yf = jnp.pad(yf, pad)
            else:
                lo, hi = jnp.split(yf, 2, axis=ax + 1)
                zshape = list(yf.shape)
                zshape[ax + 1] = n - 2 * m
                yf = jnp.concatenate([lo, jnp.zeros(zshape, yf.dtype), hi], axis=ax + 1)
        y = jnp.fft.irfftn(yf, s=spatial, axes=axes)
        return y.astype(x.dtype)


class FourierLayer(eqx.Module):
    """One FNO layer ``x -> spectral(x) + W x + b`` (activation applied by the caller)."""

    spectral: SpectralConv
    pointwise: PointwiseLinear

    def __init__(self, spatial_dims: int, width: int, modes: int, *, key: PRNGKeyArray):
        skey, pkey = jax.random.split(key)
        self.spectral = SpectralConv(spatial_dims, width, width, modes, key=skey)
        self.pointwise = PointwiseLinear(width, width, key=pkey)

    def __call__(self, x: Float[Array, " w *spatial"]) -> Float[Array, " w *spatial"]:
        return self.spectral(x) + self.pointwise(x)


class FNO(AbstractModel):
    """Fourier Neural Operator mapping ``history`` frames to ``future`` frames.

    ``(history*channels) --lift--> width --[FourierLayer, GELU] x num_layers--> width
    --Linear, GELU, Linear--> future*channels``, all pointwise except the spectral convs.
    As in the original code the last Fourier layer has no activation after it. Unlike the
    original, no grid coordinates are appended to the input (that would break periodic
    translation equivariance), so the 1D Burgers preset has ``549,569 - 64 = 549,505``
    parameters for history = future = channels = 1.

    Conditioning: ``cond`` is accepted (shape-checked) and ignored; the FNO is unconditioned
    (``cond_norm`` is accepted and checked for the interface, and unused).

    Hyperparameters:
        width: channels of the Fourier layers.
        modes: kept Fourier modes per axis (see module docstring for the convention).
        num_layers: number of Fourier layers.
        projection_channels: hidden width of the pointwise projection MLP.
    """

    lift: PointwiseLinear
    layers: tuple[FourierLayer, ...]
    proj_hidden: PointwiseLinear
    proj_out: PointwiseLinear
    spec: ModelSpec = eqx.field(static=True)
    stochastic: ClassVar[bool] = False

    def __init__(self, *, spatial_dims: int, history: int, future: int, channels: int,
                 num_cond: int, key: PRNGKeyArray, width: int = 64, modes: int = 16,
                 num_layers: int = 4, projection_channels: int = 128,
                 cond_norm: CondNorm | None = None):
        self.spec = ModelSpec(spatial_dims=spatial_dims, history=history, future=future,
                              channels=channels, num_cond=num_cond, cond_norm=cond_norm)
        keys = jax.random.split(key, num_layers + 3)
        self.lift = PointwiseLinear(history * channels, width, key=keys[0])
        self.layers = tuple(FourierLayer(spatial_dims, width, modes, key=k)
                            for k in keys[3:])
        self.proj_hidden = PointwiseLinear(width, projection_channels, key=keys[1])
        self.proj_out = PointwiseLinear(projection_channels, future * channels, key=keys[2])

    def __call__(self, u: Float[Array, " history channels *spatial"],
                 cond: Float[Array, " num_cond"], *, key: PRNGKeyArray | None = None
                 ) -> Float[Array, " future channels *spatial"]:
        self.check_input(u, cond)
        spatial = u.shape[2:]
        x = self.lift(u.reshape(-1, *spatial))
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = gelu(x)
        x = self.proj_out(gelu(self.proj_hidden(x)))
        return x.reshape(self.future, self.channels, *spatial)

