"""Run directories and :func:`load_run`.

``<run.root>/<run.experiment>/<run.name>/`` holds ``config.yaml`` (the resolved config,
including ``derived`` facts about the data), ``stats.json`` (normalisation statistics),
``checkpoints/{last,best}/`` (orbax), ``metrics.jsonl`` and ``tb/`` (TensorBoard, optional).
Files are written to a temporary name and renamed.

Safety (docs/safety.md): process 0 holds an exclusive lock on ``<run dir>/.lock`` from
:func:`prepare_run_dir` until :func:`release_run_lock` or the end of the process, so a second
``pdekit train`` on the same directory refuses in one line. :func:`load_run` builds only
allowed model classes (:mod:`pdekit.training.targets`) and refuses ``_target_``s anywhere
else in a run's config.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import equinox as eqx
import jax
import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pdekit._io import ExclusiveLock, check_plain_name, write_atomic
from pdekit._memory import bytes_limit
from pdekit.data.stats import NormStats
from pdekit.training.checkpoint import Checkpoints
from pdekit.training.config import check_against_data, comparable, validate
from pdekit.training.model import abstract_model, abstract_split, init_model, split
from pdekit.training.optim import make_optimizer
from pdekit.training.state import init_state

#: The lock file inside a run directory (held by the training process 0).
LOCK_NAME = ".lock"
#: Locks this process holds, by resolved run directory (re-entrant within one process).
_HELD: dict[Path, ExclusiveLock] = {}


def run_dir_of(cfg) -> Path:
    """``<run.root>/<run.experiment>/<run.name>``; the two names must be plain."""
    experiment = check_plain_name(cfg.run.experiment, "run.experiment")
    name = check_plain_name(cfg.run.name, "run.name")
    return Path(cfg.run.root) / experiment / name


def lock_run_dir(path: str | Path) -> ExclusiveLock:
    """Hold the exclusive lock of run directory ``path`` (which must exist).

    Re-entrant within a process (a second call returns the held lock); another process gets
    :class:`pdekit._io.LockedError`. Held until :func:`release_run_lock` or process exit.
    """
    key = Path(path).resolve()
    lock = _HELD.get(key)
    if lock is None or not lock.held:
        lock = ExclusiveLock(key / LOCK_NAME, f"run directory {path}").acquire()
        _HELD[key] = lock
    return lock


def release_run_lock(path: str | Path) -> None:
    """Release the lock :func:`prepare_run_dir` took on ``path`` (no-op if not held)."""
    lock = _HELD.pop(Path(path).resolve(), None)
    if lock is not None:
        lock.release()


def _first_difference(a, b, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k, "<absent>") != b.get(k, "<absent>"):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix.rstrip(".") or "<root>"


def device_memory_bytes() -> int | None:
    """Memory of the first local device: its allocator limit, or the host's RAM on CPU."""
    limit = bytes_limit()
    if limit:
        return int(limit)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _has_checkpoints(path: Path) -> bool:
    """Whether anything (a step, even a half-written or quarantined one) lies under
    ``checkpoints/``: such a directory is never reinitialised."""
    return any(any((path / "checkpoints" / which).glob("*"))
               for which in ("last", "best", "corrupt"))


def _saved_config(path: Path):
    """The run's saved config, or ``None`` when ``config.yaml`` is absent or unreadable."""
    try:
        saved = OmegaConf.load(path / "config.yaml")
    except (OSError, yaml.YAMLError, OmegaConfBaseException, ValueError):
        return None
    return saved if isinstance(saved, DictConfig) else None


def _plan(path: Path, cfg: DictConfig) -> str:
    """``"new"``, ``"resume"`` or ``"replace"`` for a run directory, or ``ValueError``.

    A directory whose config is absent, unreadable or different is refused when it holds a
    checkpoint (a resume could not be checked against its config), and replaced otherwise:
    it holds nothing to resume, and refusing would leave a failed first attempt blocking the
    corrected command forever.
    """
    if not path.exists() or not any(p.name != LOCK_NAME for p in path.iterdir()):
        return "new"
    saved = _saved_config(path)
    same = saved is not None and comparable(saved) == comparable(cfg)
    if same:
        return "resume"
    if not _has_checkpoints(path):
        return "replace"
    if saved is None:
        raise ValueError(f"run directory {path} has checkpoints but no readable config.yaml, so "
                         "a resume cannot be checked; restore config.yaml or remove the directory")
    raise ValueError(
        f"run directory {path} holds a run with a different config (key "
        f"{_first_difference(comparable(saved), comparable(cfg))!r}); choose another run.name "
        "or remove the directory")


def _check_stats(path: Path, stats) -> bool:
    """Whether ``stats.json`` must be (re)written; refuse stats that differ from the data's."""
    saved_path = path / "stats.json"
    if not saved_path.exists():
        return True
    try:
        saved = json.loads(saved_path.read_text())
    except (OSError, ValueError):
        return True  # unreadable: rewritten from the same training file
    now = json.loads(json.dumps(stats.to_dict()))
    keys = ("mean", "std", "diff_mean", "diff_std")
    if isinstance(saved, dict) and all(saved.get(k) == now[k] for k in keys):
        return False
    if not isinstance(saved, dict) or not all(k in saved for k in keys):
        return True
    raise ValueError(f"run directory {path}: the training data's normalisation statistics "
                     "differ from its stats.json, so data.train_path changed since the run "
                     "started (data.source=online: the pde preset or its solver); point it at "
                     "the original data or use another run.name")


def prepare_run_dir(cfg: DictConfig, stats) -> Path:
    """Create the run directory (or check that an existing one holds the same run).

    Call only after every input has been validated, so bad input leaves no directory; the
    checks that need the data (:func:`pdekit.training.config.check_against_data`, on
    ``cfg.derived``) run here, first. Process 0 then takes the run directory's lock and
    keeps it (see :func:`release_run_lock`). A directory with a checkpoint is resumed only
    when its config matches; one without a checkpoint is reinitialised. A missing
    ``stats.json`` is rewritten from the data; one that differs from the data is refused.
    """
    check_against_data(cfg, device_memory_bytes())
    path = run_dir_of(cfg)
    if jax.process_index() != 0:
        _plan(path, cfg)  # the same decision as process 0, which does the writing
        return path
    created = [p for p in (path, *path.parents) if not p.exists()]
    path.mkdir(parents=True, exist_ok=True)
    locked = False
    try:
        lock_run_dir(path)
        locked = True
        _initialise(path, cfg, stats)
    except BaseException:
        if created and locked:  # a directory this process made: leave nothing behind
            release_run_lock(path)
            _remove_created(path, created)
        raise
    return path


def _initialise(path: Path, cfg: DictConfig, stats) -> None:
    plan = _plan(path, cfg)
    if plan == "replace":
        print(f"pdekit train: note: {path} held no checkpoint and a different or unreadable "
              "config; starting it afresh", file=sys.stderr)
        for stale in ("metrics.jsonl", "config.yaml", "stats.json"):
            (path / stale).unlink(missing_ok=True)
        shutil.rmtree(path / "tb", ignore_errors=True)
    if _check_stats(path, stats):
        save_stats(stats, path / "stats.json")
    if plan != "resume":
        write_atomic(path / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True).encode())


def _remove_created(path: Path, created: list[Path]) -> None:
    """Undo a fresh run directory whose preparation failed (only what this process made)."""
    for name in ("stats.json", "config.yaml", LOCK_NAME):  # temporaries remove themselves
        (path / name).unlink(missing_ok=True)
    for p in created:  # deepest first
        try:
            p.rmdir()
        except OSError:
            break


def save_stats(stats, path: Path) -> None:
    """Store a ``NormStats`` as JSON (``NormStats.to_dict``)."""
    write_atomic(path, json.dumps(stats.to_dict(), indent=1).encode())


def load_stats(path: Path):
    return NormStats.from_dict(json.loads(Path(path).read_text()))


#: ``derived`` facts a saved run must record for its model to be rebuilt.
DERIVED_KEYS = ("spatial_dims", "channels", "num_cond")


def load_run_config(run_dir: str | Path) -> DictConfig:
    """A run's ``config.yaml``, checked like a new config (``validate``: types, values, no
    ``_target_`` outside ``model``), with one-line errors naming the run and the problem."""
    run_dir = Path(run_dir)
    path = run_dir / "config.yaml"
    if not path.is_file():
        what = "not a directory" if not run_dir.is_dir() else "config.yaml missing"
        raise FileNotFoundError(f"no run at {run_dir} ({what})")
    saved = _saved_config(run_dir)
    if saved is None:
        raise ValueError(f"run {run_dir}: config.yaml is not a readable YAML mapping")
    where = _interpolation(OmegaConf.to_container(saved, resolve=False))
    if where:  # pdekit saves resolved configs; ${oc.env:...} would read this machine's env
        raise ValueError(f"run {run_dir}: config.yaml holds an interpolation at {where!r}; "
                         "pdekit writes resolved configs, so this one was edited")
    try:
        cfg = validate(saved)
    except ValueError as err:
        raise ValueError(f"run {run_dir}: config.yaml: {err}") from None
    derived = cfg.get("derived")
    missing = [k for k in DERIVED_KEYS if not isinstance(derived, DictConfig)
               or not isinstance(derived.get(k), int)]
    if missing:
        raise ValueError(f"run {run_dir}: config.yaml lacks derived.{', derived.'.join(missing)} "
                         "(written by pdekit train when the run starts)")
    return cfg


def _interpolation(node, path: str = "") -> str | None:
    """The dotted key of the first ``${...}`` string in a plain container, if any."""
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return (path or "<root>") if isinstance(node, str) and "${" in node else None
    for k, v in items:
        found = _interpolation(v, f"{path}.{k}" if path else str(k))
        if found:
            return found
    return None


def load_run_stats(run_dir: str | Path):
    """A run's ``stats.json`` as ``NormStats``, with one-line errors."""
    path = Path(run_dir) / "stats.json"
    if not path.is_file():
        raise FileNotFoundError(f"run {run_dir}: stats.json (the normalisation statistics) is "
                                "missing; copy it from the original run directory")
    try:
        return load_stats(path)
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"run {run_dir}: stats.json is unreadable ({err})") from None


def load_run(run_dir: str | Path, which: str = "best", ema: bool = True):
    """Restore a trained model: ``(model, cfg, stats)``.

    ``which="best"`` is the checkpoint with the best validation rollout correlation (the last
    one when the run had no validation split); ``ema`` picks the EMA weights (else the raw
    parameters). ``model`` is the equinox model exactly as training built it (wrapped in
    ``Residual`` when ``train.predict_difference``); ``cfg`` the resolved config.
    """
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    stats = load_run_stats(run_dir)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    key = jax.random.PRNGKey(int(cfg.seed))
    skeleton = abstract_model(cfg, cfg.derived, key)
    params, static = abstract_split(skeleton)
    if static is None:  # the model holds non-trainable arrays: build it for real
        params, static = split(init_model(cfg, cfg.derived, key, device, skeleton))
    part = "ema" if ema else "params"
    ckpts = Checkpoints(run_dir / "checkpoints", read_only=True)
    try:
        if which == "best" and ckpts.latest_step("best") is None:
            which = "last"
        # only the weights are read: the optimiser state's leaves stay on disk
        restored = ckpts.restore_part(_full_target(cfg, params, device), which, part)
    finally:
        ckpts.close()
    if restored is None:
        raise FileNotFoundError(f"run {run_dir} has no {which!r} checkpoint yet")
    weights, _ = restored
    model = eqx.combine(weights, static)
    return model, cfg, stats


def _full_target(cfg, params, device):
    """The training state's abstract skeleton (shapes only: no optimiser state is built)."""
    shapes = jax.eval_shape(lambda p: init_state(p, make_optimizer(cfg.train), int(cfg.seed),
                                                 int(cfg.train.steps)), params)
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), shapes)
