"""Neural PDE surrogates under one interface.

Every model is an ``equinox.Module`` built as
``Model(*, spatial_dims, history, future, channels, num_cond, key, **hyperparameters)`` and
called on one sample ``model(u[history, channels, *spatial], cond[num_cond], *, key=None)``
returning ``(future, channels, *spatial)``; batch with ``jax.vmap``. Presets are Hydra configs in
``configs/model/``. See ``docs/models.md``.
"""

from pdekit.models.conditioning import CondNorm
from pdekit.models.flax_adapter import NNXAdapter, from_nnx
from pdekit.models.fno import FNO, SpectralConv
from pdekit.models.mppde import MPPDE, periodic_neighbors
from pdekit.models.refiner import PUBLISHED_MIN_NOISE_STD, PDERefiner
from pdekit.models.sinenet import SineNet
from pdekit.models.unet import UNetMod
from pdekit.models.wrappers import Residual, count_params, residual

__all__ = [
    "CondNorm", "FNO", "MPPDE", "NNXAdapter", "PDERefiner", "PUBLISHED_MIN_NOISE_STD", "Residual", "SineNet",
    "SpectralConv", "UNetMod", "count_params", "from_nnx", "periodic_neighbors", "residual",
]
