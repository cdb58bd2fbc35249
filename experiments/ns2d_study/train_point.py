"""``pdekit train <overrides>`` in this process, then the device's peak memory into a JSON file.

    python experiments/ns2d_study/train_point.py <memory.json> experiment=ns2d_sinenet ...

After training (also when it stops on a signal or an error) the first device's
``memory_stats()["peak_bytes_in_use"]`` of this process is appended to ``<memory.json>`` as one
session (``None`` on a CPU, which keeps no such statistic); ``peak_bytes_in_use`` at the top is
the largest over the sessions of a run that was resumed. The exit status is ``pdekit train``'s.
With ``XLA_PYTHON_CLIENT_PREALLOCATE=false`` (run.sh sets it) the peak is what the run used;
with preallocation it is at least the preallocated pool.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def record(path: Path, started: float, status) -> None:
    import jax

    from pdekit.evaluation.runner import peak_bytes_in_use

    dev = jax.local_devices()[0]
    try:
        limit = (dev.memory_stats() or {}).get("bytes_limit")
    except Exception:  # noqa: BLE001 - backends without memory stats
        limit = None
    old = json.loads(path.read_text()) if path.exists() else {"sessions": []}
    old["sessions"].append({"peak_bytes_in_use": peak_bytes_in_use(dev), "bytes_limit": limit,
                            "device": str(dev.device_kind), "wall_s": time.time() - started,
                            "exit": status})
    peaks = [s["peak_bytes_in_use"] for s in old["sessions"] if s["peak_bytes_in_use"] is not None]
    old["peak_bytes_in_use"] = max(peaks) if peaks else None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(old, indent=1))
    tmp.replace(path)


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit("usage: train_point.py <memory.json> [pdekit train overrides ...]")
    out, argv = Path(sys.argv[1]), sys.argv[2:]
    from pdekit.cli.train import main as train

    started, status = time.time(), 0
    try:
        train(argv)
    except SystemExit as err:
        status = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BaseException:
        status = 1
        raise
    finally:
        try:
            record(out, started, status)
        except Exception as err:  # noqa: BLE001 - never hide the training's own outcome
            print(f"train_point: peak memory not recorded ({err})", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
