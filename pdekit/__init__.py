"""pdekit: a JAX framework for neural PDE surrogates.

Subpackages, in dependency order: :mod:`pdekit.solvers`, :mod:`pdekit.data`,
:mod:`pdekit.models`, :mod:`pdekit.training`, :mod:`pdekit.evaluation`, :mod:`pdekit.cli`.
"""

__version__ = "0.1.0"
