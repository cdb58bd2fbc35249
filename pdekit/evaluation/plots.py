"""Report figures (matplotlib, Agg backend, PNG), written via a temporary file and rename.

* ``curves.png``: ρ(t) and nRMSE(t), mean with the bootstrap 95% band, one line per entry;
* ``spectra.png``: trajectory-mean energy spectra of prediction and reference at chosen steps;
* ``spectra_compare.png``: one panel per report step, the reference and every entry's spectrum;
* ``spacetime.png`` (1D): prediction | reference | error of one trajectory over the rollout;
* ``snapshots.png`` (2D): prediction | reference | error of one trajectory at chosen steps;
* ``invariants.png`` (2D flows): enstrophy and energy ratio prediction / reference over time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pdekit._io import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return Path(path)


def _arr(x):
    return np.asarray([np.nan if v is None else v for v in x], dtype=float)


def plot_curves(summaries: dict[str, dict], path: Path) -> Path:
    """ρ(t) and nRMSE(t) of several entries (name -> summary of ``summarize_metrics``)."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, s in summaries.items():
        t = np.asarray(s["curves"]["time"])
        for ax, key in zip(axes, ("rho", "nrmse"), strict=True):
            c = s["curves"][key]
            (line,) = ax.plot(t, _arr(c["mean"]), label=name)
            ax.fill_between(t, _arr(c["lo"]), _arr(c["hi"]), color=line.get_color(), alpha=0.25)
    for c in (0.8, 0.9):
        axes[0].axhline(c, color="grey", lw=0.6, ls=":")
    axes[0].set(xlabel="time", ylabel="correlation ρ", title="correlation (95% CI)")
    axes[1].set(xlabel="time", ylabel="nRMSE", title="nRMSE (95% CI)", yscale="log")
    axes[0].legend(fontsize=8)
    return _save(fig, path)


def plot_spectra(summary: dict, path: Path, name: str = "model") -> Path:
    """Mean spectra of prediction vs reference at the report steps (log-log)."""
    plt = _plt()
    sp = summary["spectra"]
    fig, ax = plt.subplots(figsize=(6, 4))
    cmap = plt.get_cmap("viridis")
    n = max(len(sp["steps"]), 1)
    for i, step in enumerate(sp["steps"]):
        ref, pred = _arr(sp["ref"][i]), _arr(sp["pred"][i])
        k = np.arange(len(ref))
        color = cmap(i / n)
        t = step * summary["dt"]["mean"]
        ax.loglog(k[1:], ref[1:], color=color, lw=1.5, label=f"ref t={t:.3g}")
        ax.loglog(k[1:], pred[1:], color=color, lw=1.0, ls="--", label=f"{name} t={t:.3g}")
    ax.set(xlabel="wavenumber k", ylabel="E(k)", title="energy spectra (dashed: prediction)")
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)


def compare_steps(summaries: dict[str, dict], max_panels: int = 4) -> list[int]:
    """Report steps whose spectra every entry has, the last ``max_panels`` of them."""
    lists = [list(s["spectra"]["steps"]) for s in summaries.values()]
    common = [j for j in lists[0] if all(j in other for other in lists[1:])] if lists else []
    return common[-max_panels:]


def plot_spectra_compare(summaries: dict[str, dict], path: Path, max_panels: int = 4) -> Path:
    """Trajectory-mean spectra of several entries (log-log), one panel per report step that
    all entries have (the last ``max_panels``): the reference (of the first entry) in black,
    each entry's prediction in colour. Needs only the summaries' ``spectra`` sections."""
    plt = _plt()
    steps = compare_steps(summaries, max_panels)
    if not steps:
        raise ValueError("spectra_compare: the entries have no report step in common")
    fig, axes = plt.subplots(1, len(steps), figsize=(4.2 * len(steps), 3.8), squeeze=False)
    first = next(iter(summaries.values()))
    for ax, step in zip(axes[0], steps, strict=True):
        i = first["spectra"]["steps"].index(step)
        ref = _arr(first["spectra"]["ref"][i])
        k = np.arange(len(ref))
        ax.loglog(k[1:], ref[1:], color="black", lw=2.0, label="reference")
        for name, s in summaries.items():
            sp = s["spectra"]
            pred = _arr(sp["pred"][sp["steps"].index(step)])
            ax.loglog(np.arange(len(pred))[1:], pred[1:], lw=1.0, label=name)
        ax.set(xlabel="wavenumber k", title=f"step {step} (t={step * first['dt']['mean']:.3g})")
        ax.xaxis.set_minor_formatter(plt.NullFormatter())
    axes[0][0].set_ylabel("E(k)")
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def _error_triplet(axes, pred, ref, extent=None, aspect="auto"):
    vmax = np.nanmax(np.abs(ref)) if np.isfinite(ref).any() else 1.0
    err = pred - ref
    emax = np.nanmax(np.abs(err)) if np.isfinite(err).any() else 1.0
    for ax, img, title, lim, cmap in ((axes[0], pred, "prediction", vmax, "RdBu_r"),
                                      (axes[1], ref, "reference", vmax, "RdBu_r"),
                                      (axes[2], err, "error", emax, "PuOr")):
        im = ax.imshow(img, cmap=cmap, vmin=-lim, vmax=lim, aspect=aspect, origin="lower",
                       extent=extent, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.figure.colorbar(im, ax=ax, fraction=0.046)


def plot_spacetime(pred, ref, dt: float, path: Path, index: int = 0, channel: int = 0) -> Path:
    """1D: space–time images (x horizontal, time vertical) of one trajectory."""
    plt = _plt()
    t = min(pred.shape[1], ref.shape[1])
    p = np.asarray(pred[index, :t, channel])
    r = np.asarray(ref[index, :t, channel])
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    _error_triplet(axes, p, r, extent=(0, p.shape[-1], dt, t * dt))
    axes[0].set_ylabel("time")
    for ax in axes:
        ax.set_xlabel("grid point")
    return _save(fig, path)


def plot_snapshots(pred, ref, steps, path: Path, index: int = 0, channel: int = 0) -> Path:
    """2D: prediction | reference | error of one trajectory at ``steps`` (1-based)."""
    plt = _plt()
    steps = [s for s in steps if s <= min(pred.shape[1], ref.shape[1])] or [1]
    fig, axes = plt.subplots(len(steps), 3, figsize=(11, 3.2 * len(steps)), squeeze=False)
    for row, s in zip(axes, steps, strict=True):
        _error_triplet(row, np.asarray(pred[index, s - 1, channel]).T,
                       np.asarray(ref[index, s - 1, channel]).T, aspect="equal")
        row[0].set_ylabel(f"step {s}")
    return _save(fig, path)


def plot_invariants(summaries: dict[str, dict], path: Path) -> Path:
    """Enstrophy and kinetic-energy ratios prediction / reference against time (mean and 95%
    band over trajectories), one line per entry that has an ``invariants`` section."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, s in summaries.items():
        inv = s.get("invariants")
        if not inv:
            continue
        t = np.asarray(inv["curves"]["time"])
        for ax, key in zip(axes, ("enstrophy_ratio", "energy_ratio"), strict=True):
            c = inv["curves"][key]
            (line,) = ax.plot(t, _arr(c["mean"]), label=name)
            ax.fill_between(t, _arr(c["lo"]), _arr(c["hi"]), color=line.get_color(), alpha=0.25)
    for ax, what in zip(axes, ("enstrophy Z = ½⟨ω²⟩", "kinetic energy E = ½⟨|u|²⟩"), strict=True):
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set(xlabel="time", ylabel="prediction / reference", title=f"{what} (95% CI)")
    axes[0].legend(fontsize=8)
    return _save(fig, path)
