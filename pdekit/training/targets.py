"""Building a model from its config without running code the config names.

A run's ``config.yaml`` (and any ``model.*`` override) may come from someone else, so the
``_target_`` strings in it are never handed to ``hydra.utils.instantiate``: Hydra imports and
calls whatever a string names (``pathlib.Path.write_text`` writes a file). Here a
``_target_`` is resolved only when it names a class or function defined under
``pdekit.models``, or one the user allows with the environment variable
:data:`ALLOW_ENV` (never a config key: a config cannot vouch for itself). See
``docs/safety.md``.

Supported: ``_target_`` (the callable) and ``_partial_: true`` (a ``functools.partial`` of
it), nested at any depth inside the model config. Other Hydra keys (``_args_``,
``_recursive_``, ``_convert_``) are refused.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import os
import re
from collections.abc import Mapping
from typing import Any

#: Comma- (or space-) separated extra targets a user trusts: ``pkg.mod.Name`` allows one
#: class or function, ``pkg.*`` everything defined in ``pkg`` and its submodules.
ALLOW_ENV = "PDEKIT_ALLOWED_TARGETS"
#: pdekit's own model classes and factories.
BUILTIN = ("pdekit.models.*",)
_SUPPORTED = {"_target_", "_partial_"}
_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


class TargetError(ValueError):
    """A ``_target_`` that is malformed, not allowed, or cannot be imported."""


def allowed_patterns() -> tuple[str, ...]:
    """The built-in pattern plus those listed in ``$PDEKIT_ALLOWED_TARGETS``."""
    extra = re.split(r"[,\s]+", os.environ.get(ALLOW_ENV, "").strip())
    return BUILTIN + tuple(p for p in extra if p)


def _matches(name: str, pattern: str) -> bool:
    if pattern.endswith(".*"):
        root = pattern[:-2]
        return name == root or name.startswith(root + ".")
    return name == pattern


def _refuse(where: str, target: str, why: str) -> TargetError:
    return TargetError(
        f"{where}: _target_ {target!r} {why}; only pdekit.models classes are built unless "
        f"you trust more with {ALLOW_ENV}=pkg.mod.Class (or pkg.*), see docs/safety.md")


def resolve_target(target: Any, where: str = "model"):
    """The class or function ``target`` names, if it is allowed (else ``ValueError``).

    The name is checked before anything is imported; after the import, the object must be
    a class or a plain function whose defining module is allowed too (so a re-exported
    ``os.system`` or ``numpy.save`` reached through an allowed module is refused).
    """
    if not isinstance(target, str) or not _DOTTED.fullmatch(target):
        raise TargetError(f"{where}: _target_ must be a dotted name like pdekit.models.fno.FNO, "
                         f"got {target!r}")
    patterns = allowed_patterns()
    if not any(_matches(target, p) for p in patterns):
        raise _refuse(where, target, "is not allowed")
    module_name, _, attr = target.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise TargetError(f"{where}: cannot import {module_name!r} for _target_ {target!r} "
                         f"({err})") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise TargetError(f"{where}: module {module_name!r} has no {attr!r} (_target_ {target!r})")
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        raise _refuse(where, target, "is not a class or function")
    origin = f"{obj.__module__}.{obj.__qualname__}"
    exact = any(p == target for p in patterns)
    if not exact and not any(_matches(origin, p) for p in patterns if p.endswith(".*")):
        raise _refuse(where, target, f"is {origin}, defined outside the allowed modules")
    return obj


def find_targets(node: Any, path: str = "") -> list[str]:
    """Dotted config paths of every mapping in ``node`` that holds a ``_target_``."""
    found = []
    if isinstance(node, Mapping):
        if "_target_" in node:
            found.append(path or "<root>")
        for k, v in node.items():
            found += find_targets(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            found += find_targets(v, f"{path}[{i}]")
    return found


def check_plain_values(node: Any, where: str = "model") -> None:
    """Refuse non-finite floats and negative integers among model hyperparameters.

    No pdekit model has a meaningful negative size, count or index, and a NaN or infinite
    hyperparameter only fails (or silently misbehaves) later.
    """
    if isinstance(node, Mapping):
        for k, v in node.items():
            if k not in _SUPPORTED:
                check_plain_values(v, f"{where}.{k}")
    elif isinstance(node, list | tuple):
        for i, v in enumerate(node):
            check_plain_values(v, f"{where}[{i}]")
    elif isinstance(node, bool) or node is None or isinstance(node, str):
        return
    elif isinstance(node, int) and node < 0:
        raise ValueError(f"{where}={node} must be >= 0")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ValueError(f"{where}={node} must be a finite number")


def build(node: Any, where: str = "model", **runtime):
    """Build ``node`` (a plain container, e.g. ``OmegaConf.to_container(cfg.model)``).

    Mappings with a ``_target_`` are called with their other keys as keyword arguments (the
    top one also with ``runtime``, which wins over config keys, as in Hydra) or, with
    ``_partial_: true``, turned into a ``functools.partial``. Other values are passed as
    they are, lists as lists and mappings as dicts.
    """
    if isinstance(node, Mapping):
        if "_target_" not in node:
            if runtime:
                raise ValueError(f"{where} must be a mapping with a _target_")
            return {k: build(v, f"{where}.{k}") for k, v in node.items()}
        fn = resolve_target(node["_target_"], where)
        special = sorted(k for k in node if str(k).startswith("_") and str(k).endswith("_"))
        unsupported = [k for k in special if k not in _SUPPORTED]
        if unsupported:
            raise TargetError(f"{where}: {', '.join(unsupported)} not supported (only _target_ "
                              "and _partial_)")
        kwargs = {k: build(v, f"{where}.{k}") for k, v in node.items() if k not in _SUPPORTED}
        kwargs.update(runtime)
        if node.get("_partial_", False):
            return functools.partial(fn, **kwargs)
        return fn(**kwargs)
    if isinstance(node, list | tuple):
        return [build(v, f"{where}[{i}]") for i, v in enumerate(node)]
    return node
