"""``pdekit evaluate run=<run dir> [overrides...]`` (or ``run=[a,b,c]``, or ``merge=[...]``).

Parses the command line, composes the evaluate config and calls
:func:`pdekit.evaluation.jobs.evaluate`; bad input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

from pdekit.cli._common import cli_errors
from pdekit.configs import compose
from pdekit.evaluation.jobs import evaluate


def _help() -> str:
    return "\n".join([
        "usage: pdekit evaluate run=<run dir> [key=value ...]",
        "       pdekit evaluate run=[<run a>,<run b>] comparison_dir=<dir> [reference=<entry>]",
        "       pdekit evaluate merge=[<a>/report.json,<b>/report.json] comparison_dir=<dir>",
        "                       [reference=<entry>] [title=<title>]",
        "",
        "keys: split=test|valid, which=best|last, ema, rollout_steps, num_samples, seed,",
        "      max_trajectories, data_path, report_steps, plots, comparison_dir, title,",
        "      baseline.enabled, baseline.resolutions=[64,128,256], baseline.inner_steps,",
        "      allow_train_split (evaluate on the run's training data: refused by default)",
        "output: <run>/eval/<split or data file stem>-<data fingerprint>/",
        "merge: combine report.json files (or directories holding one) written by separate",
        "      runs of pdekit evaluate on the same data (same data_fingerprint and split, same",
        "      compared horizon in time) into one comparison report; exactly one of run= / merge=",
        "reference: an entry name (e.g. ks_mse_unet/default); adds the τ ratio of every other",
        "      entry vs it (paired bootstrap 95% CI over the same trajectories)",
        "metrics: docs/evaluation.md",
    ])


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(_help())
        return
    with cli_errors("evaluate"):
        evaluate(compose("evaluate", argv))


if __name__ == "__main__":
    main()


if __name__ == "__main__":
    main()
