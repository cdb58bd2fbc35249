"""Sweeps: one ``key=a,b`` override list -> the jobs of a multirun (Hydra's ``-m`` syntax)."""

from __future__ import annotations

import itertools
import re


def sweep(overrides: list[str]) -> list[list[str]]:
    """Expand ``key=a,b`` overrides into the cartesian product of runs (Hydra's ``-m`` syntax).

    Values in brackets (lists such as ``data.cond_keys=[dt,dx]``) are not split. Each job
    gets its own run directory: the swept values other than ``experiment`` (which names the
    directory above) are appended to ``run.name``, e.g. ``model.width=32,64 run.name=w`` gives
    ``run.name=w_model.width-32`` and ``run.name=w_model.width-64``.
    """
    choices, swept = [], []
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and "," in value and not value.lstrip().startswith(("[", "{")):
            choices.append([f"{key}={v}" for v in value.split(",")])
            swept.append(key.lstrip("+~"))
        else:
            choices.append([o])
    tags = [k for k in swept if k not in ("experiment", "run.name")]
    return [_name_job(list(c), tags) for c in itertools.product(*choices)]


def _name_job(job: list[str], tags: list[str]) -> list[str]:
    if not tags:
        return job
    pairs = [o.partition("=") for o in job]
    values = {k.lstrip("+~"): v for k, _, v in pairs}
    parts = [re.sub(r"[^\w.\-]+", "_", f"{k}-{values[k]}") for k in tags]
    base = values.get("run.name")
    name = "_".join(([base] if base else []) + parts)
    return [o for o in job if o.partition("=")[0].lstrip("+~") != "run.name"] + [f"run.name={name}"]
