"""pdekit's Hydra config tree, shipped inside the package, and the user's own config directories.

The YAML files beside this module are the presets (``pde/``, ``data/``, ``model/``, ``train/``,
``experiment/``) and the primary configs of the subcommands (``generate.yaml``,
``train.yaml``, ``evaluate.yaml``). They are package data, so a plain ``pip install`` has them.

Your own presets and experiments live in directories of your own with the same group layout
(``<dir>/model/my_net.yaml``, ``<dir>/experiment/my_study.yaml``). Name them in the
environment variable ``PDEKIT_CONFIG_PATH`` (several joined by ``os.pathsep``) or pass
``--config-dir DIR`` to ``pdekit``; library calls take ``config_dirs=[...]``. A preset of yours
may not reuse the name of a shipped one (Hydra would silently pick the shipped file): such a
clash is refused with a one-line error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

#: Environment variable listing extra config directories (``os.pathsep``-separated).
ENV = "PDEKIT_CONFIG_PATH"
#: The config groups that hold presets.
GROUPS = ("pde", "data", "model", "train", "experiment")
#: The primary configs (one per subcommand).
PRIMARY = ("generate", "train", "evaluate")


def package_dir() -> Path:
    """The shipped config tree (``pdekit/configs``)."""
    return Path(str(resources.files(__name__)))


def user_dirs(config_dirs: Sequence[str | os.PathLike] = ()) -> list[Path]:
    """``config_dirs`` followed by those of ``$PDEKIT_CONFIG_PATH``, each checked to exist."""
    env = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    out: list[Path] = []
    for raw in [*config_dirs, *env]:
        path = Path(raw).expanduser().resolve()
        if not path.is_dir():
            where = f"${ENV}" if str(raw) in env else "config_dirs / --config-dir"
            raise FileNotFoundError(f"config directory {raw} (from {where}) does not exist")
        if path != package_dir().resolve() and path not in out:
            out.append(path)
    return out


def presets(group: str, config_dirs: Sequence[str | os.PathLike] = ()) -> list[str]:
    """Preset names of ``group`` in the shipped tree and the user directories."""
    names = set()
    for root in (package_dir(), *user_dirs(config_dirs)):
        names.update(p.stem for p in (root / group).glob("*.yaml"))
    return sorted(names)


def _check_clashes(dirs: list[Path]) -> None:
    shipped = {g: {p.stem for p in (package_dir() / g).glob("*.yaml")} for g in GROUPS}
    for root in dirs:
        for group in GROUPS:
            for p in sorted((root / group).glob("*.yaml")):
                if p.stem in shipped[group]:
                    raise ValueError(f"{p} has the name of a shipped {group} preset "
                                     f"({group}={p.stem}); rename it")


def search_path_override(config_dirs: Sequence[str | os.PathLike] = ()) -> list[str]:
    """The Hydra override that adds the user directories to the search path (or none)."""
    dirs = user_dirs(config_dirs)
    _check_clashes(dirs)
    if not dirs:
        return []
    return ["hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]"]


def compose(primary: str, overrides: Sequence[str] = (),
            config_dirs: Sequence[str | os.PathLike] = ()) -> DictConfig:
    """Compose the ``primary`` config (``generate``, ``train`` or ``evaluate``) with Hydra
    overrides, the user directories on the search path. Bad input raises ``ValueError`` with
    one line (an unknown preset lists the known ones)."""
    if primary not in PRIMARY:
        raise ValueError(f"unknown primary config {primary!r}; choose from {', '.join(PRIMARY)}")
    check_group_overrides(overrides, config_dirs)
    try:
        with initialize_config_dir(config_dir=str(package_dir()), version_base=None):
            return hydra_compose(config_name=primary, overrides=[
                *search_path_override(config_dirs), *overrides])
    except (HydraException, OmegaConfBaseException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        unknown = re.match(r"Could not override '([^']+)'", first)
        if unknown:
            first = f"unknown key {unknown.group(1)!r}"
        raise ValueError(f"bad overrides: {first}") from None


def check_group_overrides(overrides: Sequence[str],
                          config_dirs: Sequence[str | os.PathLike] = ()) -> None:
    """``group=name`` overrides must name a preset; one line listing the known ones if not."""
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or value in ("", "null"):
            continue
        known = presets(key, config_dirs)
        for name in value.split(","):  # a sweep lists several
            if name not in known:
                raise ValueError(f"unknown {key} preset {name!r}; choose from "
                                 f"{', '.join(known) or '(none)'}")
