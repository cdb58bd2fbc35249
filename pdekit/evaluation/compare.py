"""Combine evaluation reports and compare entries against a reference entry.

Rollouts of different models may be evaluated in separate processes (or machines); their
``report.json`` files are merged here into one comparison report without the checkpoints:

* :func:`load_report` reads one ``report.json`` (or a directory holding one);
* :func:`merge_reports` checks that the reports describe the same evaluation (same
  ``data_fingerprint`` and ``split``, and the same compared horizon in time units: models
  with different steps, e.g. temporal bundling at stride 1 against single steps at stride 4,
  compare on time) and unions their entries;
* :func:`add_reference_ratios` adds ``ratio_vs_reference`` (paired bootstrap of the ratio of
  mean τ over the same trajectories, :func:`pdekit.evaluation.stats.paired_ratio_ci`).

Duplicate entry names: an entry whose content equals one already merged (ignoring timings,
numbers within a relative 1e-6) is kept once — e.g. the same numerical baseline evaluated in
every run; an entry with different content is kept as ``"<name> [<title of its report>]"``.
"""

from __future__ import annotations

import glob
import json
import math
import re
from pathlib import Path

from pdekit.evaluation.report import TABLE_THRESHOLDS
from pdekit.evaluation.stats import BOOTSTRAP_SEED, paired_ratio_ci

#: Keys that differ between evaluations of the same thing (wall-clock timings).
VOLATILE_KEYS = frozenset({"timing", "wall_s", "compile_s", "first_call_s"})

#: Fields that must agree between merged reports.
MATCH_KEYS = ("data_fingerprint", "split")


def horizon_time(report: dict) -> float:
    """Compared horizon of a report in time units: compared steps x mean model step."""
    return float(report["compared_steps"]) * float(report["dt"]["mean"])


#: ``<label>-<16 hex digits>``: a per-run report directory (``pdekit evaluate``).
_REPORT_SUFFIX = re.compile(r"-[0-9a-f]{16}")


def report_file(path) -> Path:
    """The ``report.json`` that ``path`` names: the file itself, ``<dir>/report.json``, or, for
    ``<run>/eval/<label>`` (no such directory), the one ``<run>/eval/<label>-<fingerprint>``
    holding a report. Several such directories raise a one-line ``ValueError`` listing them;
    none raises ``FileNotFoundError``."""
    path = Path(str(path))
    if path.is_file():
        return path
    if (path / "report.json").is_file():
        return path / "report.json"
    if not path.exists() and path.parent.is_dir():
        found = sorted(p / "report.json" for p in path.parent.glob(f"{glob.escape(path.name)}-*")
                       if _REPORT_SUFFIX.fullmatch(p.name[len(path.name):])
                       and (p / "report.json").is_file())
        if len(found) == 1:
            return found[0]
        if found:
            raise ValueError(f"merge: {path} matches several reports ("
                             + ", ".join(f.parent.name for f in found) + "); name one")
    raise FileNotFoundError(f"merge: {path / 'report.json' if path.is_dir() else path} "
                            "does not exist")


def load_report(path) -> tuple[Path, dict]:
    """``(file, report)`` of ``path`` (see :func:`report_file`).

    A missing file raises ``FileNotFoundError``; unreadable JSON or a file that is not an
    evaluation report raises ``ValueError`` (one line each).
    """
    file = report_file(path)
    try:
        report = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"merge: {file} is not valid JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(report, dict) or not isinstance(report.get("entries"), dict) \
            or not report["entries"]:
        raise ValueError(f"merge: {file} is not an evaluation report (no entries)")
    missing = [k for k in (*MATCH_KEYS, "compared_steps", "dt", "num_trajectories", "rollout_steps")
               if k not in report]
    if missing:
        raise ValueError(f"merge: {file} lacks {', '.join(missing)} (written by an older "
                         "pdekit evaluate; evaluate again)")
    if not report["data_fingerprint"]:
        raise ValueError(f"merge: {file} has no data fingerprint (its entries were evaluated on "
                         "different data); merge per-run reports instead")
    return file, report


def same_content(a, b, rtol: float = 1e-6) -> bool:
    """Equal JSON values, ignoring :data:`VOLATILE_KEYS` and numbers within ``rtol``."""
    if isinstance(a, dict) and isinstance(b, dict):
        ka, kb = set(a) - VOLATILE_KEYS, set(b) - VOLATILE_KEYS
        return ka == kb and all(same_content(a[k], b[k], rtol) for k in ka)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_content(x, y, rtol) for x, y in zip(a, b, strict=True))
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-12)
    return a == b


def _unique(name: str, label: str, taken) -> str:
    new, i = f"{name} [{label}]", 2
    while new in taken:
        new, i = f"{name} [{label} {i}]", i + 1
    return new


def merge_reports(paths, title: str = "comparison") -> dict:
    """One report with the entries of every report in ``paths`` (see the module docstring).

    Reports that disagree on :data:`MATCH_KEYS` raise a one-line ``ValueError`` naming both
    files. Top-level fields (data, dt, rollout length) come from the first report;
    ``sources`` lists the merged files.
    """
    if not paths:
        raise ValueError("merge: no report given")
    loaded = [load_report(p) for p in paths]
    first_file, first = loaded[0]
    for file, rep in loaded[1:]:
        for key in MATCH_KEYS:
            if rep[key] != first[key]:
                raise ValueError(f"merge: {file} and {first_file} differ in {key} "
                                 f"({rep[key]!r} vs {first[key]!r}); they are not comparable")
        tol = max(float(rep["dt"]["max"]), float(first["dt"]["max"]))
        if abs(horizon_time(rep) - horizon_time(first)) > tol:
            raise ValueError(f"merge: {file} and {first_file} differ in the compared horizon "
                             f"({horizon_time(rep):.4g} vs {horizon_time(first):.4g} time units); "
                             "they are not comparable")
    entries: dict[str, dict] = {}
    runs: dict[str, dict] = {}
    sources = []
    for file, rep in loaded:
        label = str(rep.get("title") or file.parent.name)
        renamed = {}
        for name, summary in rep["entries"].items():
            # ratios of an earlier comparison refer to its own reference: recomputed, not kept
            summary = {k: v for k, v in summary.items() if k != "ratio_vs_reference"}
            if name in entries:
                if same_content(entries[name], summary):
                    continue
                renamed[name] = _unique(name, label, entries)
            entries[renamed.get(name, name)] = summary
        for name, meta in rep.get("runs", {}).items():
            runs.setdefault(renamed.get(name, name), meta)
        sources.append({"path": str(file), "title": label, "entries": list(rep["entries"]),
                        "renamed": renamed})
    return {
        "title": title, "split": first["split"], "data": first.get("data", "?"),
        "pde": first.get("pde", "?"), "data_fingerprint": first["data_fingerprint"],
        "num_trajectories": first["num_trajectories"], "dt": first["dt"],
        "rollout_steps": first["rollout_steps"], "compared_steps": first["compared_steps"],
        "entries": entries, "runs": runs, "sources": sources,
    }


def check_reference(reference: str, names) -> None:
    """``ValueError`` (one line, listing the entries) when ``reference`` is not one of ``names``."""
    names = list(names)
    if reference not in names:
        raise ValueError(f"reference={reference!r} is not an entry; available: "
                         + ", ".join(repr(n) for n in names))


def add_reference_ratios(entries: dict[str, dict], reference: str, *,
                         thresholds=TABLE_THRESHOLDS, bootstrap_resamples: int = 1000,
                         seed: int = BOOTSTRAP_SEED) -> dict[str, dict]:
    """Add ``ratio_vs_reference = {c: paired_ratio_ci(τ_entry, τ_reference)}`` to every entry
    other than ``reference`` that has per-trajectory τ ``values``; return ``entries``."""
    check_reference(reference, entries)
    ref = entries[reference]
    missing = [c for c in thresholds if "values" not in ref["tau"].get(c, {})]
    if missing:
        raise ValueError(f"reference={reference!r} has no per-trajectory τ values (a report of "
                         "an older pdekit evaluate); evaluate it again")
    for name, s in entries.items():
        if name == reference or not all("values" in s["tau"].get(c, {}) for c in thresholds):
            continue
        if len(s["tau"][thresholds[0]]["values"]) != len(ref["tau"][thresholds[0]]["values"]):
            raise ValueError(f"{name!r} and reference {reference!r} were evaluated on different "
                             "trajectories; a paired ratio needs the same data")
        s["ratio_vs_reference"] = {
            c: paired_ratio_ci(s["tau"][c]["values"], ref["tau"][c]["values"],
                               bootstrap_resamples=bootstrap_resamples, seed=seed)
            for c in thresholds}
    return entries
