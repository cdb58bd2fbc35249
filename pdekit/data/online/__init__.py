"""Online training data: trajectories solved on the accelerators while a model trains, no disk.

``data.source=online`` (docs/training.md, "Online data: the solver in the loop")::

    from pdekit.data.online import OnlineSettings, OnlineSource
    src = OnlineSource(build_protocol(pde, "train"), OnlineSettings(buffer_size=64),
                       history=1, future=1, stride=4, cond_keys=("dt", "dx"), window_seed=0)
    batch = src.batch(step, 32)          # {"u_in", "u_out", "cond"} on the devices

:mod:`~pdekit.data.online.schedule` says which trajectory is where at each step (pure
Python); :mod:`~pdekit.data.online.source` solves, buffers and gathers on the devices.
"""

from pdekit.data.online.schedule import SOURCES, OnlineSettings, Schedule
from pdekit.data.online.source import OnlineSource, buffer_bytes

__all__ = ["SOURCES", "OnlineSettings", "OnlineSource", "Schedule", "buffer_bytes"]
