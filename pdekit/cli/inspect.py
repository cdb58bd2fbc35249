"""``pdekit inspect FILE [--plot out.png] [--split train]``: summarise and check a data file.

Prints the layout, sizes, parameter ranges and value statistics of a pdekit or PDEArena file,
checks that the schema is complete and every value finite (exit 1 if not), and optionally
writes a PNG: a space-time image per trajectory (1D) or vorticity snapshots (2D). Unreadable,
truncated or foreign files give a one-line error and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from pdekit._io import atomic_path
from pdekit.cli._common import cli_errors


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pdekit inspect", description=__doc__.splitlines()[0])
    p.add_argument("file", help="HDF5 trajectory file (pdekit or PDEArena/LPSDA layout)")
    p.add_argument("--split", default=None,
                   help="PDEArena group to read (default: every split in the file)")
    p.add_argument("--plot", default=None, metavar="PNG", help="write a figure to this path")
    p.add_argument("--trajectories", type=int, default=4,
                   help="number of trajectories (1D) or snapshots (2D) to plot (default 4)")
    return p


def _fmt(v: np.ndarray) -> str:
    return " ".join(f"{x:.6g}" for x in np.atleast_1d(v))


def report(tr) -> bool:
    """Print the summary of one opened file/split; return whether all checks passed."""
    from pdekit.data.stats_io import read_stats
    from pdekit.data.summary import layout, param_ranges, value_summary

    kind = (f"pdekit schema v{tr.attrs.get('schema_version')}, {tr.attrs.get('created_by')}"
            if tr.format == "pdekit" else "PDEArena/LPSDA layout")
    print(f"file: {tr.path} ({kind})")
    print(f"pde: {tr.pde}  split: {tr.split}  spatial_dims: {tr.spatial_dims}  "
          f"channels: {tr.channels}")
    print(f"trajectories: {tr.num_trajectories}  frames: {tr.num_frames}  "
          f"grid: {tr.spatial_shape}  u: {tr.nbytes / 2**20:.2f} MiB "
          f"(file {os.path.getsize(tr.path) / 2**20:.2f} MiB)")
    print("datasets:")
    for name, shape, dtype, chunks in layout(tr):
        print(f"  {name:<24} {str(shape):<22} {dtype:<9} chunks={chunks}")
    print("params (min / max / mean):")
    for name, (lo, hi, mean, shape) in param_ranges(tr).items():
        extra = f"  shape {shape}" if len(shape) > 1 else ""
        print(f"  {name:<20} {lo:<12.6g} {hi:<12.6g} {mean:<12.6g}{extra}")
    vs = value_summary(tr)
    print("values per channel: min " + _fmt(vs.minimum) + " | max " + _fmt(vs.maximum)
          + " | mean " + _fmt(vs.mean) + " | std " + _fmt(vs.std))
    if tr.format == "pdekit":
        st = read_stats(tr.file, tr.spatial_dims)
        if st is None:
            print("stats: MISSING (no stats/ group)")
        else:
            print(f"stats (stored, diff stride {st.diff_stride}): mean {_fmt(st.mean)} "
                  f"std {_fmt(st.std)} diff_mean {_fmt(st.diff_mean)} "
                  f"diff_std {_fmt(st.diff_std)}")
    ok = vs.nonfinite == 0 and (tr.format != "pdekit" or "stats" in tr.file)
    if vs.nonfinite:
        print(f"check: FAILED - {vs.nonfinite} non-finite values in trajectories "
              f"{vs.bad_trajectories[:10]}")
    elif not ok:
        print("check: FAILED - normalisation statistics missing")
    else:
        print("check: OK (schema complete, all values finite)")
    return ok


def plot(tr, path: str, count: int = 4) -> None:
    """Space-time images of the first ``count`` trajectories (1D) or ``count`` snapshots of
    trajectory 0 (2D), written atomically to ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    count = max(1, count)
    if tr.spatial_dims == 1:
        n = min(count, tr.num_trajectories)
        panels = [(f"trajectory {i}", np.asarray(tr.u[i])[:, 0]) for i in range(n)]
        labels = ("x index", "frame")
    else:
        u0 = np.asarray(tr.u[0])[:, 0]
        frames = np.unique(np.linspace(0, tr.num_frames - 1, count).round().astype(int))
        panels = [(f"trajectory 0, frame {k}", u0[k].T) for k in frames]
        labels = ("x index", "y index")
    fig = Figure(figsize=(3.2 * len(panels), 3.4), layout="constrained")
    FigureCanvasAgg(fig)
    for j, (title, img) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), j + 1)
        im = ax.imshow(img, origin="lower", aspect="auto", cmap="RdBu_r")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"{tr.path.name}: {tr.pde} ({tr.split})", fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from pdekit.data import open_trajectories
    from pdekit.data.reader import list_splits

    ok = True
    with cli_errors("inspect"):
        splits = [args.split]
        if args.split is None:
            groups = list_splits(args.file)
            splits = groups if len(groups) > 1 else [None]
        try:
            for k, split in enumerate(splits):
                if k:
                    print()
                with open_trajectories(args.file, split=split) as tr:
                    ok &= report(tr)
                    if args.plot and k == 0:
                        plot(tr, args.plot, args.trajectories)
                        print(f"plot: {args.plot}")
        except BrokenPipeError:  # output piped into `head`: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
