"""Typed training configuration.

The Hydra-composed config is merged onto :class:`TrainRunConfig` (an OmegaConf structured
config), so a misspelt key or a wrong type fails before anything is built, with one line
that names the key. The ``model`` and ``pde`` groups are free-form (``_target_`` + hyper).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from pdekit._io import check_plain_name
from pdekit.data.online import OnlineSettings  # data.source=online (issue 17)
from pdekit.training.data import source_checks  # data.source=online (issue 17)
from pdekit.training.targets import find_targets

OBJECTIVES = ("mse", "unrolled", "pushforward", "refiner")
PRECISIONS = ("fp32", "bf16")
GRAD_REDUCE_DTYPES = ("auto", "float32", "bfloat16")
NORMALIZATIONS = ("zscore", "none")


@dataclass
class DataConfig:
    train_path: str = MISSING
    valid_path: str | None = None
    history: int = 1  # input frames per model step
    future: int = 1  # output frames per model step (temporal bundling when > 1)
    stride: int = 1  # saved frames per model frame
    cond_keys: list[str] = field(default_factory=lambda: ["dt", "dx"])
    ram_budget_bytes: int = 2**31
    valid_trajectories: int = 4  # trajectories used for the validation rollout
    rollout_steps: int = 8  # model steps in the validation rollout
    valid_batches: int = 8  # one-step validation batches (0 = all)
    normalization: str = "zscore"  # zscore (stored per-channel statistics) | none (raw fields)
    #: conditioning scalars are mapped affinely from the training data's [min, max] of each
    #: cond key to [0, cond_span] before the models' sinusoidal features (docs/models.md)
    cond_span: float = 5.0
    #: per-key override of the range mapped to [0, cond_span], e.g. {dt: [0.7, 0.9]}
    cond_range: dict[str, list[float]] = field(default_factory=dict)
    # --- data.source=online (issue 17): pdekit/data/online/, docs/training.md -------------
    source: str = "file"  # file (data.train_path) | online (the pde preset solved on the devices)
    online: OnlineSettings = field(default_factory=OnlineSettings)  # buffer, refresh, total


@dataclass
class TrainConfig:
    steps: int = 1000  # the run's step budget (an upper bound when time_budget_s > 0)
    time_budget_s: float = 0.0  # wall-clock budget of the step loop; 0 = off (see docs/training.md)
    batch_size: int = 32  # global batch, split over all devices
    objective: str = "mse"  # mse | unrolled | pushforward | refiner
    unroll: int = 1  # model steps per training window (unrolled / pushforward)
    predict_difference: bool = False  # wrap the model in Residual(model, difference_scale)
    difference_scale: float = 1.0
    lr: float = 1e-3
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 0
    weight_decay: float = 0.0
    b1: float = 0.9
    b2: float = 0.999
    grad_clip: float = 1.0  # global-norm clipping; 0 disables
    ema_decay: float = 0.999  # 0 disables EMA (EMA = current params)
    ema_warmup: bool = True  # decay min(ema_decay, (1+t)/(10+t)); false: ema_decay from step 0
    precision: str = "fp32"  # fp32 | bf16 (bf16 compute, fp32 master params)
    log_every: int = 50
    valid_every: int = 500
    ckpt_every: int = 500
    keep_last: int = 2
    prefetch: int = 2
    progress: bool = True
    #: optimiser steps per jitted dispatch (a lax.scan over K stacked batches); steps,
    #: log_every, valid_every and ckpt_every must be multiples of it. 1 = one step a call
    micro_steps: int = 1
    #: data-parallel gradient all-reduce: auto (XLA places it) | float32 | bfloat16 (explicit
    #: per-device gradients, all-reduced in that dtype; bfloat16 needs precision=bf16)
    grad_reduce_dtype: str = "auto"
    #: set XLA's GPU latency-hiding scheduler flags (all-reduce overlapped with the backward
    #: pass) before the backend starts; ignored by CPU backends
    xla_gpu_overlap: bool = False


@dataclass
class RunConfig:
    root: str = "runs"
    experiment: str = "custom"
    name: str = "default"


@dataclass
class TrainRunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunConfig = field(default_factory=RunConfig)
    model: Any = MISSING
    pde: Any = None
    seed: int = 0
    #: facts measured from the data when the run starts (spatial_dims, channels, ...);
    #: written by the trainer, read back by :func:`pdekit.training.load_run`.
    derived: Any = None


def _one_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def validate(cfg: DictConfig | dict) -> DictConfig:
    """Merge ``cfg`` onto the schema and check values; raise ``ValueError`` with one line."""
    schema = OmegaConf.structured(TrainRunConfig)
    try:
        user = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)
        user = OmegaConf.masked_copy(user, [k for k in user if k != "hydra"])
        merged = OmegaConf.merge(schema, user)
        names = OmegaConf.to_container(merged.run, resolve=False)
        for key in ("experiment", "name"):  # before interpolation: ${...} is refused
            check_plain_name(names[key], f"run.{key}")
        OmegaConf.resolve(merged)
        # Touch every value so missing mandatory keys fail now, not mid-run.
        OmegaConf.to_container(merged, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        msg = _one_line(err)
        raise ValueError(f"invalid config{f' key {key!r}' if key else ''}: {msg}") from None
    if not isinstance(merged.model, DictConfig) or "_target_" not in merged.model:
        raise ValueError("config key 'model' must name a preset with a _target_ (model=<preset>)")
    check_no_targets(merged)
    t, d = merged.train, merged.data
    checks = [
        (t.objective in OBJECTIVES, f"train.objective must be one of {OBJECTIVES}, got {t.objective!r}"),
        (t.precision in PRECISIONS, f"train.precision must be one of {PRECISIONS}, got {t.precision!r}"),
        (d.normalization in NORMALIZATIONS,
         f"data.normalization must be one of {NORMALIZATIONS}, got {d.normalization!r}"),
        (d.cond_span > 0, f"data.cond_span must be > 0, got {d.cond_span}"),
        (t.steps >= 1, f"train.steps must be >= 1, got {t.steps}"),
        (t.time_budget_s >= 0, f"train.time_budget_s must be >= 0 (0 = off), got {t.time_budget_s}"),
        (t.batch_size >= 1, f"train.batch_size must be >= 1, got {t.batch_size}"),
        (t.unroll >= 1, f"train.unroll must be >= 1, got {t.unroll}"),
        (t.lr > 0, f"train.lr must be > 0, got {t.lr}"),
        (0.0 <= t.ema_decay < 1.0, f"train.ema_decay must be in [0, 1), got {t.ema_decay}"),
        (t.warmup_steps >= 0, f"train.warmup_steps must be >= 0, got {t.warmup_steps}"),
        (t.log_every >= 1 and t.valid_every >= 1 and t.ckpt_every >= 1,
         "train.log_every, train.valid_every and train.ckpt_every must be >= 1"),
        (t.keep_last >= 1, f"train.keep_last must be >= 1, got {t.keep_last}"),
        (d.history >= 1 and d.future >= 1 and d.stride >= 1,
         "data.history, data.future and data.stride must be >= 1"),
        (t.objective != "mse" or t.unroll == 1,
         "train.unroll > 1 needs train.objective=unrolled or pushforward"),
        (t.objective != "refiner" or not t.predict_difference,
         "the refiner scales the difference itself; set train.predict_difference=false"),
        (t.objective not in ("refiner",) or t.unroll == 1, "train.objective=refiner needs train.unroll=1"),
        (t.grad_reduce_dtype in GRAD_REDUCE_DTYPES,
         f"train.grad_reduce_dtype must be one of {GRAD_REDUCE_DTYPES}, got {t.grad_reduce_dtype!r}"),
        (t.grad_reduce_dtype != "bfloat16" or t.precision == "bf16",
         "train.grad_reduce_dtype=bfloat16 needs train.precision=bf16 (an fp32 model reduces "
         "its gradients in float32)"),
    ]
    for ok, msg in checks + _range_checks(merged) + _micro_step_checks(t) + source_checks(merged):
        if not ok:
            raise ValueError(msg)
    return merged


def _micro_step_checks(t: DictConfig) -> list[tuple[bool, str]]:
    """One dispatch runs ``train.micro_steps`` steps, and the host sees only its boundaries:
    every step count it must stop at is a multiple of it."""
    k = t.micro_steps
    if not 1 <= k < INT32:
        return [(False, f"train.micro_steps must be >= 1, got {k}")]
    return [(t[key] % k == 0, f"train.{key}={t[key]} is not a multiple of train.micro_steps={k} "
             f"(one dispatch runs {k} steps); use a multiple of {k}")
            for key in ("steps", "log_every", "valid_every", "ckpt_every")]


#: Steps, batch sizes and seeds are held in 32-bit integers on the device.
INT32 = 2**31


def _finite(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def _range_checks(cfg: DictConfig) -> list[tuple[bool, str]]:
    """Value ranges that would otherwise fail (or silently misbehave) after the run started."""
    t, d = cfg.train, cfg.data
    pairs = [(k, v) for k, v in d.cond_range.items()]
    return [
        (0 <= cfg.seed < 2**32, f"seed must be in [0, 2**32), got {cfg.seed}"),
        (t.steps < INT32, f"train.steps must be < 2**31, got {t.steps}"),
        (t.batch_size < INT32, f"train.batch_size must be < 2**31, got {t.batch_size}"),
        (t.warmup_steps < INT32, f"train.warmup_steps must be < 2**31, got {t.warmup_steps}"),
        (_finite(t.time_budget_s), f"train.time_budget_s must be finite, got {t.time_budget_s}"),
        (_finite(t.lr), f"train.lr must be finite, got {t.lr}"),
        (0.0 <= t.min_lr_ratio <= 1.0, f"train.min_lr_ratio must be in [0, 1], got {t.min_lr_ratio}"),
        (_finite(t.weight_decay) and t.weight_decay >= 0,
         f"train.weight_decay must be finite and >= 0, got {t.weight_decay}"),
        (0.0 <= t.b1 < 1.0 and 0.0 <= t.b2 < 1.0,
         f"train.b1 and train.b2 must be in [0, 1), got {t.b1}, {t.b2}"),
        (_finite(t.grad_clip) and t.grad_clip >= 0,
         f"train.grad_clip must be finite and >= 0 (0 = off), got {t.grad_clip}"),
        (_finite(t.difference_scale) and t.difference_scale != 0,
         f"train.difference_scale must be finite and non-zero, got {t.difference_scale}"),
        (t.prefetch >= 1, f"train.prefetch must be >= 1, got {t.prefetch}"),
        (d.ram_budget_bytes >= 0, f"data.ram_budget_bytes must be >= 0, got {d.ram_budget_bytes}"),
        (d.valid_trajectories >= 1,
         f"data.valid_trajectories must be >= 1, got {d.valid_trajectories}"),
        (d.rollout_steps >= 0, f"data.rollout_steps must be >= 0 (0 = none), got {d.rollout_steps}"),
        (d.valid_batches >= 0, f"data.valid_batches must be >= 0 (0 = all), got {d.valid_batches}"),
        (_finite(d.cond_span), f"data.cond_span must be finite, got {d.cond_span}"),
        (all(isinstance(k, str) and k for k in d.cond_keys),
         f"data.cond_keys must be non-empty names, got {list(d.cond_keys)}"),
        (all(len(v) == 2 and all(map(_finite, v)) and v[0] < v[1] for _, v in pairs),
         f"data.cond_range values must be [low, high] with finite low < high, got "
         f"{ {k: list(v) for k, v in pairs} }"),
    ]


def check_no_targets(cfg: DictConfig) -> None:
    """Refuse a ``_target_`` anywhere but under ``model`` (nothing else is ever built)."""
    plain = OmegaConf.to_container(cfg, resolve=False)
    stray = [p for k, v in plain.items() if k != "model" for p in find_targets(v, str(k))]
    if stray:
        raise ValueError(f"config key {stray[0]!r} holds a _target_; only model.* may name "
                         "classes (docs/safety.md)")


def check_against_data(cfg: DictConfig, memory_bytes: int | None = None) -> None:
    """Checks that need the facts measured from the data (``cfg.derived``), run before the run
    directory is created: the batch against the number of training windows, and the
    parameters, EMA, optimiser moments and gradients (5 float32 copies) against
    ``memory_bytes`` (the device's memory; skipped when ``None``)."""
    derived = cfg.get("derived") or {}
    windows = derived.get("num_windows")
    batch = int(cfg.train.batch_size)
    if windows is not None and batch > int(windows):
        raise ValueError(f"train.batch_size={batch} exceeds the {int(windows)} training windows "
                         "of data.train_path; use a smaller batch or more data")
    params = derived.get("num_params")
    if memory_bytes and params is not None and 5 * 4 * int(params) > memory_bytes:
        raise ValueError(f"the model has {int(params):,} parameters: parameters, EMA, optimiser "
                         f"state and gradients need {20 * int(params) / 2**30:.1f} GiB, more than "
                         f"the device's {memory_bytes / 2**30:.1f} GiB; use a smaller model")


#: Keys that may differ between the saved and the current config of a resumed run.
RESUMABLE_KEYS = ("train.progress", "train.prefetch", "train.xla_gpu_overlap", "derived")

#: Keys added after runs were saved without them: absent means this default, so such a run
#: still resumes when the current config leaves the key at its default.
ADDED_KEYS = {"train.micro_steps": 1, "train.grad_reduce_dtype": "auto",
              "data.source": "file", "data.online": asdict(OnlineSettings())}


def comparable(cfg: DictConfig) -> dict:
    """The part of a config that must match for a run to be resumed."""
    c = OmegaConf.to_container(cfg, resolve=True)
    for dotted in RESUMABLE_KEYS:
        *parents, leaf = dotted.split(".")
        node = c
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    for dotted, default in ADDED_KEYS.items():
        *parents, leaf = dotted.split(".")
        node = c
        for p in parents:
            node = node.get(p, {})
        if node.get(leaf, default) == default:
            node.pop(leaf, None)
    data = c.get("data", {})
    if data.get("source", "file") == "file":  # the online block does not touch a file run
        data.pop("online", None)
    return c
