"""Rollout evaluation: rollouts, metrics, numerical baseline, plots and reports.

Metric definitions: ``docs/evaluation.md``. Pure metric functions live in
:mod:`~pdekit.evaluation.metrics` and :mod:`~pdekit.evaluation.spectra`; summaries in
:mod:`~pdekit.evaluation.stats`; :mod:`~pdekit.evaluation.runner` ties a model and a data
split together; :mod:`pdekit.evaluation.jobs` evaluates runs and merges reports (``pdekit evaluate`` parses the command line around it).
"""

from pdekit.evaluation.baseline import baseline_kind, run_baseline
from pdekit.evaluation.flow import (
    enstrophy,
    flow_fields,
    kinetic_energy,
    velocity_from_vorticity,
    vorticity_from_velocity,
)
from pdekit.evaluation.metrics import (
    blowup,
    correlation,
    field_norm,
    first_crossing_time,
    nrmse,
    pdearena_time,
    spread_error,
)
from pdekit.evaluation.pipeline import compute_metrics, summarize_metrics
from pdekit.evaluation.rollout import rollout, rollout_samples
from pdekit.evaluation.spectra import (
    band_errors,
    energy_spectrum,
    energy_spectrum_1d,
    energy_spectrum_2d,
    log_spectrum_distance,
    long_horizon_stats,
)
from pdekit.evaluation.stats import bootstrap_ci, summarize

__all__ = [
    "band_errors", "baseline_kind", "blowup", "bootstrap_ci", "compute_metrics", "correlation",
    "energy_spectrum", "energy_spectrum_1d", "energy_spectrum_2d", "enstrophy", "field_norm",
    "first_crossing_time", "flow_fields", "kinetic_energy", "log_spectrum_distance",
    "long_horizon_stats", "nrmse", "pdearena_time", "rollout", "rollout_samples",
    "run_baseline", "spread_error", "summarize", "summarize_metrics",
    "velocity_from_vorticity", "vorticity_from_velocity",
]
