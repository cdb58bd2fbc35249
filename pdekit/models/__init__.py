"""Neural PDE surrogates under one interface.

Every model derives from :class:`AbstractModel` and holds its I/O contract as a
:class:`ModelSpec` (``spatial_dims``, ``history``, ``future``, ``channels``, ``num_cond``,
``cond_norm``). Build with keywords, ``FNO(spatial_dims=1, history=1, future=1, channels=1,
num_cond=2, key=key, width=32)``, or from a spec, ``FNO.from_spec(spec, key=key, width=32)``.
Call on one sample ``model(u[history, channels, *spatial], cond[num_cond], *, key=None)``
returning ``(future, channels, *spatial)``; batch with ``jax.vmap``. ``model.stochastic`` says
whether the output depends on ``key`` (PDE-Refiner). Presets are Hydra configs in
``configs/model/``. See ``docs/models.md``.
"""

from pdekit.models.base import AbstractModel, AbstractStochasticModel, ModelSpec, is_stochastic
from pdekit.models.conditioning import CondNorm
from pdekit.models.flax_adapter import NNXAdapter, from_nnx
from pdekit.models.fno import FNO, SpectralConv
from pdekit.models.mppde import MPPDE, periodic_neighbors
from pdekit.models.refiner import PUBLISHED_MIN_NOISE_STD, PDERefiner
from pdekit.models.sinenet import SineNet
from pdekit.models.unet import UNetMod
from pdekit.models.wrappers import Residual, count_params, residual

__all__ = [
    "AbstractModel", "AbstractStochasticModel", "CondNorm", "FNO", "MPPDE", "ModelSpec",
    "NNXAdapter", "PDERefiner", "PUBLISHED_MIN_NOISE_STD", "Residual", "SineNet", "SpectralConv",
    "UNetMod", "count_params", "from_nnx", "is_stochastic", "periodic_neighbors", "residual",
]
