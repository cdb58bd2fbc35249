"""Training: objectives, optimiser, data parallelism, checkpoints and the loop.

Public API::

    from pdekit.training import train, load_run
    result = train(cfg)                          # cfg: composed config (see docs/training.md)
    model, cfg, stats = load_run("runs/ks_fno/default", which="best", ema=True)
"""

from pdekit.training.config import validate
from pdekit.training.loop import NonFiniteLossError, TrainResult, train
from pdekit.training.run import load_run

__all__ = ["NonFiniteLossError", "TrainResult", "load_run", "train", "validate"]
