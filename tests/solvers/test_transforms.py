"""Spectral transforms: the matmul DFT against numpy's FFT, and matmul-backend solver
trajectories against the default FFT path (float64 and float32)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pdekit.solvers import (
    Burgers,
    KuramotoSivashinsky,
    NavierStokes2D,
    SineForcing,
    SpectralTransform,
    dealias_mask,
    kolmogorov_forcing,
    stepper_for,
    trajectory,
)


def _max_rel(a, ref):
    a, ref = np.asarray(a), np.asarray(ref)
    return float(np.abs(a - ref).max() / np.abs(ref).max())


def _rel(a, ref):
    a, ref = np.asarray(a, np.float64), np.asarray(ref, np.float64)
    return float(np.linalg.norm(a - ref) / np.linalg.norm(ref))


# float32: one length-N dot product has round-off ~ sqrt(N) * 6e-8 relative to the input's norm
# (~1e-6 at N = 256); we measure 1e-7 .. 6e-7 for both the matmul DFT and jnp.fft, so 1e-5
# is 20x above what either does and far below a TF32-rounded product (~1e-3).
TOL = {True: 1e-12, False: 1e-5}


CASES = [(64, 1), (256, 1), (63, 1), (64, 2)]


@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
def test_matmul_dft_matches_numpy(x64):
    """rfft / irfft (and their 2/3-band and stacked variants) against numpy, for each (N, dims)
    of CASES; all in one compiled call."""
    rng = np.random.default_rng(0)
    real, cplx = (np.float64, np.complex128) if x64 else (np.float32, np.complex64)
    inputs, refs = [], []
    for N, dims in CASES:
        axes = tuple(range(-dims, 0))
        x = rng.standard_normal((3,) + (N,) * dims)
        ref = np.fft.rfftn(x, axes=axes)
        # arbitrary imaginary parts everywhere, DC and Nyquist included: irfft ignores those two
        spec = ref + 1j * rng.standard_normal(ref.shape)
        mask = dealias_mask(N, dims)
        inputs.append((x.astype(real), spec.astype(cplx)))
        refs.append((ref, np.fft.irfftn(spec, s=(N,) * dims, axes=axes), mask,
                     np.fft.irfftn(mask * spec, s=(N,) * dims, axes=axes)))

    def transforms(inputs):
        out = []
        for (N, dims), (x, spec) in zip(CASES, inputs, strict=True):
            T = SpectralTransform("matmul", N, dims)
            out.append((T.fft(x), T.ifft(spec), T.fft(x, dealiased=True),
                        T.ifft(dealias_mask(N, dims) * spec, dealiased=True),
                        T.ifft_many(spec[0], spec[1]), (T.ifft(spec[0]), T.ifft(spec[1]))))
        return out

    with jax.enable_x64(x64):
        outs = jax.jit(transforms)(inputs)
    for case, (x, _), (ref, back, mask, band), out in zip(CASES, inputs, refs, outs, strict=True):
        u_hat, u, u_hat_band, u_band, (a, b), (a1, b1) = out
        assert u_hat.dtype == cplx and u_hat.shape == ref.shape, case
        assert _max_rel(u_hat, ref) <= TOL[x64], case
        assert u.dtype == real and u.shape == x.shape, case
        assert _max_rel(u, back) <= TOL[x64], case
        # the 2/3-band shortcuts: modes outside the band are left out of the products
        assert _max_rel(u_hat_band, mask * ref) <= TOL[x64], case
        assert float(np.abs(np.asarray(u_hat_band)[..., ~mask]).max()) == 0.0, case
        assert _max_rel(u_band, band) <= TOL[x64], case
        # several fields in one stacked product: the same as one by one
        assert _max_rel(a, a1) <= TOL[x64] and _max_rel(b, b1) <= TOL[x64], case


def test_default_transform_is_the_fft_path():
    """``transform="fft"`` is the default and calls jnp.fft exactly as the solvers always did."""
    build = jax.eval_shape  # the static fields, without running the setup eagerly
    assert build(lambda: KuramotoSivashinsky(L=22.0, resolution=32, dt=0.1)).transform == \
        SpectralTransform("fft", 32, 1)
    assert build(lambda: NavierStokes2D(resolution=16, dt=0.01, transform="matmul")).transform == \
        SpectralTransform("matmul", 16, 2)
    ks = build(lambda: stepper_for("ks", {"L": 22.0}, resolution=32, dt=0.1, transform="matmul"))
    assert ks.transform.backend == "matmul"
    u = jnp.asarray(np.random.default_rng(0).standard_normal((2, 32)))
    assert np.array_equal(SpectralTransform("fft", 32, 1).fft(u), jnp.fft.rfft(u))
    # stack=True runs several fields as one batched FFT; stack=False (the fft default) one by one
    for stack in (True, False):
        a, b = SpectralTransform("fft", 32, 1, stack=stack).fft_many(u[0], u[1])
        np.testing.assert_allclose(np.stack([a, b]), np.fft.rfft(np.asarray(u)), rtol=0, atol=1e-5)


def test_bad_transforms_are_refused():
    with pytest.raises(ValueError, match="unknown spectral transform 'cufft'; choose from fft, matmul"):
        jax.eval_shape(lambda: KuramotoSivashinsky(L=22.0, resolution=32, dt=0.1, transform="cufft"))
    with pytest.raises(ValueError, match="the spectral transform has resolution=64, the solver 32"):
        jax.eval_shape(lambda: KuramotoSivashinsky(L=22.0, resolution=32, dt=0.1,
                                                   transform=SpectralTransform("matmul", 64)))
    with pytest.raises(ValueError, match="no grid yet"):
        SpectralTransform("matmul").fft(jnp.zeros(8))
    with pytest.raises(ValueError, match=r"the field must end in shape \(16,\)"):
        SpectralTransform("matmul", 16, 1).fft(jnp.zeros(8))


# -- trajectories --------------------------------------------------------------------------------
# float64: the backends agree to ~1e-15 (we assert 1e-10).
# float32: they differ only by transform round-off, ~3e-7 per N = 256 transform (measured as
# above), which the dynamics then carry along: for KS (chaotic) the float32-vs-float64 error of
# either backend grows ~10x over the 10 time units tested (3.9e-6 -> 3.6e-5, that common error
# coming from rounding u0, dt and the ETDRK coefficients to float32). Measured backend
# differences: KS 6e-7 after 50 steps, 1.7e-6 after 200; NS 2e-7 throughout. We assert
# <= 1e-5 (round-off 3e-7 x growth 10 x margin 3), and that the matmul run is as accurate
# against float64 as the FFT run to within a factor 1.5. TF32-rounded products (~1e-3) would
# fail both.
FLOAT32_BACKEND_TOL = 1e-5


def _initial_state(N, dims, seed):
    """A smooth random field (a few low modes, random amplitudes and phases), from numpy."""
    rng = np.random.default_rng(seed)
    x = 2 * np.pi * np.arange(N) / N
    X = np.meshgrid(*[x] * dims, indexing="ij")
    u = np.zeros((N,) * dims)
    for _ in range(6):
        m = rng.integers(1, 5, size=dims)
        u += rng.uniform(-1, 1) * np.sin(sum(mi * Xi for mi, Xi in zip(m, X, strict=True))
                                         + rng.uniform(0, 2 * np.pi))
    return u


FORCING = ([0.5, -0.3], [0.4, -0.2], [1.0, 2.0], [0.3, 1.0], 16.0)


def _1d(u0, with_burgers):
    """KS (L = 64, N = 256, 200 steps of 0.05) with both backends, and optionally forced Burgers
    (which stacks its two forward transforms, u^2 and the forcing), in one compiled call."""
    def ks(transform, v):
        return trajectory(KuramotoSivashinsky(L=64.0, resolution=256, dt=0.05, transform=transform), v, 5, 50)

    def burgers(transform, v):
        return trajectory(Burgers(L=16.0, resolution=256, dt=0.01, nu=0.1, forcing=SineForcing(*FORCING),
                                  transform=transform), v, 5, 10)

    def run(v):
        out = [ks("fft", v), ks("matmul", v)]
        return out + ([burgers("fft", v), burgers("matmul", v)] if with_burgers else [])
    return jax.jit(run)(u0)


def _2d(w0):
    """Kolmogorov-forced NS (64^2, 40 steps of 0.01, ETDRK4) with both backends."""
    def run(transform, v):
        return trajectory(NavierStokes2D(resolution=64, dt=0.01, nu=1e-3, drag=0.1, transform=transform,
                                         forcing=kolmogorov_forcing(64).astype(v.dtype)), v, 5, 10)
    return jax.jit(lambda v: (run("fft", v), run("matmul", v)))(w0)


@pytest.mark.parametrize("dims", [1, 2], ids=["ks", "ns"])
def test_matmul_trajectory_equals_fft_path(dims):
    u0 = _initial_state(256 if dims == 1 else 64, dims, seed=dims)
    with jax.enable_x64(True):
        ref, mm, *burgers = _1d(u0, with_burgers=True) if dims == 1 else _2d(u0)
    for i in range(1, 5):
        assert _rel(mm[i], ref[i]) <= 1e-10, (i, _rel(mm[i], ref[i]))  # measured ~1e-15
    if burgers:
        assert _rel(burgers[1], burgers[0]) <= 1e-10
    u32 = u0.astype(np.float32)
    f32, m32 = _1d(u32, with_burgers=False) if dims == 1 else _2d(u32)
    assert m32.dtype == jnp.float32
    for i in range(1, 5):
        assert _rel(m32[i], f32[i]) <= FLOAT32_BACKEND_TOL, (i, _rel(m32[i], f32[i]))
        assert _rel(m32[i], ref[i]) <= 1.5 * _rel(f32[i], ref[i]), i
