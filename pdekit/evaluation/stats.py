"""Summaries over trajectories: mean with a percentile-bootstrap 95% interval, and the
paired-bootstrap interval of a ratio of two means (:func:`paired_ratio_ci`)."""

from __future__ import annotations

import warnings

import numpy as np
from jaxtyping import Float

#: Fixed seed of the bootstrap so that reports are reproducible.
BOOTSTRAP_SEED = 0


def bootstrap_ci(
    values: Float[np.ndarray, " B *rest"],
    seed: int = BOOTSTRAP_SEED,
    bootstrap_resamples: int = 1000,
    level: float = 0.95,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and its percentile-bootstrap interval.

    Trajectories (axis 0) are resampled with replacement ``bootstrap_resamples`` times (a fixed
    ``seed``, so reports are reproducible); the interval is the ``(1 - level)/2`` and
    ``(1 + level)/2`` quantiles of the resampled means. Non-finite entries are left out of
    every mean (mean over the finite ones); a statistic with no finite entry is NaN.
    This runs on the host: the inputs are small per-trajectory summaries, and numpy avoids a
    compilation per shape.
    """
    values = np.asarray(values, dtype=np.float64)
    b = values.shape[0]
    flat = values.reshape(b, -1)
    mask = np.isfinite(flat)
    clean = np.where(mask, flat, 0.0)
    idx = np.random.default_rng(seed).integers(0, b, size=(bootstrap_resamples, b))
    counts = np.zeros((bootstrap_resamples, b))
    np.add.at(counts, (np.arange(bootstrap_resamples)[:, None], idx), 1.0)
    sums = counts @ clean
    ns = counts @ mask
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.where(ns > 0, sums / np.where(ns > 0, ns, 1.0), np.nan)
        alpha = (1.0 - level) / 2.0
        lo = np.nanquantile(means, alpha, axis=0)
        hi = np.nanquantile(means, 1.0 - alpha, axis=0)
        n_all = mask.sum(axis=0)
        mean = np.where(n_all > 0, clean.sum(axis=0) / np.maximum(n_all, 1), np.nan)
    rest = values.shape[1:]
    return mean.reshape(rest), lo.reshape(rest), hi.reshape(rest)


def summarize(values, seed: int = BOOTSTRAP_SEED, bootstrap_resamples: int = 1000) -> dict:
    """``{"mean", "lo", "hi", "median", "n", "n_nonfinite"}`` of per-trajectory values.

    For a ``(B,)`` input the entries are floats; for ``(B, T)`` they are lists over ``T``.
    """
    a = np.asarray(values, dtype=np.float64)
    mean, lo, hi = bootstrap_ci(a, seed, bootstrap_resamples=bootstrap_resamples)
    finite = np.isfinite(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(np.where(finite, a, np.nan), axis=0)

    def _py(x):
        x = np.asarray(x, dtype=float)
        return _clean(x.tolist()) if x.ndim else _clean(float(x))

    return {
        "mean": _py(mean),
        "lo": _py(lo),
        "hi": _py(hi),
        "median": _py(median),
        "n": int(a.shape[0]),
        "n_nonfinite": int(np.sum(~np.all(finite.reshape(a.shape[0], -1), axis=1))),
    }


def paired_ratio_ci(a, b, bootstrap_resamples: int = 1000, seed: int = BOOTSTRAP_SEED,
                    level: float = 0.95) -> dict:
    """``mean(a) / mean(b)`` with a paired percentile-bootstrap interval.

    ``a`` and ``b`` are per-trajectory values of the SAME trajectories in the same order (e.g.
    τ of a model and of a reference model). Trajectories where either value is non-finite (or
    ``None``, JSON's null) are dropped from both. Each resample draws ``n`` trajectory indices
    with replacement (``numpy.random.default_rng(seed).integers(0, n, (bootstrap_resamples, n))``) and
    uses the same indices for ``a`` and ``b``; the interval is the ``(1 - level)/2`` and
    ``(1 + level)/2`` quantiles of the resampled ratios of means (non-finite ratios, from a
    zero resampled ``mean(b)``, left out). Returns ``{"ratio", "lo", "hi", "n"}`` (``None``
    where undefined, so the result is valid JSON).
    """
    a = np.asarray([np.nan if v is None else v for v in np.ravel(np.asarray(a, object))], np.float64)
    b = np.asarray([np.nan if v is None else v for v in np.ravel(np.asarray(b, object))], np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same length, got {a.size} and {b.size}")
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n == 0:
        return {"ratio": None, "lo": None, "hi": None, "n": 0}
    idx = np.random.default_rng(seed).integers(0, n, size=(int(bootstrap_resamples), n))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = a.mean() / b.mean()
        ratios = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    ratios = ratios[np.isfinite(ratios)]
    alpha = (1.0 - level) / 2.0
    lo, hi = (np.quantile(ratios, [alpha, 1.0 - alpha]) if ratios.size else (np.nan, np.nan))
    return {"ratio": _clean(float(ratio)), "lo": _clean(float(lo)), "hi": _clean(float(hi)), "n": n}


def _clean(x):
    """Replace NaN/inf by None so the result is valid JSON."""
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x if np.isfinite(x) else None
