"""The I/O contract (ModelSpec) and the abstract bases; no model is run here."""

from __future__ import annotations

import functools
from typing import ClassVar

import equinox as eqx
import jax
import jax.random as jr
import numpy as np
import pytest

from pdekit.models import (
    FNO,
    AbstractModel,
    CondNorm,
    ModelSpec,
    PDERefiner,
    Residual,
    UNetMod,
    is_stochastic,
    residual,
)

SPEC = ModelSpec(spatial_dims=1, history=2, future=1, channels=1, num_cond=2)
FNO_TINY = {"width": 4, "modes": 2, "num_layers": 1, "projection_channels": 4}


def test_spec_checks_its_fields_and_resolves_cond_norm():
    assert SPEC.cond_norm == CondNorm.identity(2)
    assert SPEC.kwargs() == {"spatial_dims": 1, "history": 2, "future": 1, "channels": 1,
                             "num_cond": 2, "cond_norm": CondNorm.identity(2)}
    assert ModelSpec(**SPEC.kwargs()) == SPEC and hash(ModelSpec(**SPEC.kwargs())) == hash(SPEC)
    assert SPEC.replace(history=3).history == 3
    assert SPEC.input_shape((8,)) == (2, 1, 8) and SPEC.output_shape((8,)) == (1, 1, 8)
    with pytest.raises(ValueError, match="history must be an int >= 1"):
        SPEC.replace(history=0)
    with pytest.raises(ValueError, match="num_cond must be an int >= 0"):
        SPEC.replace(num_cond=-1, cond_norm=None)
    with pytest.raises(ValueError, match="channels must be an int"):
        SPEC.replace(channels=1.5)
    with pytest.raises(ValueError, match="maps 2 scalars but num_cond=3"):
        SPEC.replace(num_cond=3)


def test_from_spec_is_the_keyword_constructor():
    a = FNO.from_spec(SPEC, key=jr.key(0), **FNO_TINY)
    b = FNO(**SPEC.kwargs(), key=jr.key(0), **FNO_TINY)
    assert a.spec == b.spec == SPEC and a.history == 2 and a.num_cond == 2
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    with pytest.raises(TypeError, match="ModelSpec"):
        FNO.from_spec(SPEC.kwargs(), key=jr.key(0))


def test_abstract_attributes_must_be_provided():
    class NoStochastic(AbstractModel):
        spec: ModelSpec = eqx.field(static=True)

        def __call__(self, u, cond, *, key=None):
            return u

    with pytest.raises(TypeError, match="stochastic"):
        NoStochastic(SPEC)

    class Plain(eqx.Module):
        def __call__(self, u, cond, *, key=None):
            return u

    assert not is_stochastic(Plain()) and not is_stochastic(FNO.from_spec(SPEC, key=jr.key(0),
                                                                           **FNO_TINY))


def test_refiner_builds_its_backbone_for_the_backbone_spec():
    backbone = functools.partial(UNetMod, hidden_channels=8, channel_multipliers=(1,),
                                 num_blocks=1)
    refiner = PDERefiner.from_spec(SPEC.replace(history=1), key=jr.key(0), backbone=backbone,
                                   num_refinement_steps=3, step_span=30.0)
    assert is_stochastic(refiner) and PDERefiner.stochastic
    want = SPEC.replace(history=2, num_cond=3, cond_norm=CondNorm(
        (0.0, 0.0, 0.0), (1.0, 1.0, 3.0), (1.0, 1.0, 30.0)))
    assert refiner.backbone.spec == want == refiner.backbone_spec(30.0)
    with pytest.raises(ValueError, match="history=2"):
        PDERefiner.from_spec(SPEC.replace(history=1), key=jr.key(0),
                             backbone=FNO.from_spec(SPEC.replace(history=1), key=jr.key(0),
                                                    **FNO_TINY))
    with pytest.raises(ValueError, match="stochastic"):
        Residual(refiner)


def test_residual_factory_takes_the_spec_fields():
    model = residual(functools.partial(FNO, **FNO_TINY), key=jr.key(0), scale=0.5,
                     **SPEC.kwargs())
    assert isinstance(model, Residual) and model.model.spec == SPEC and model.scale == 0.5


class _Stochastic(AbstractModel):
    spec: ModelSpec = eqx.field(static=True)
    stochastic: ClassVar[bool] = True

    def __call__(self, u, cond, *, key=None):
        return u


def test_stochastic_is_a_class_fact():
    assert is_stochastic(_Stochastic(SPEC)) and _Stochastic.stochastic
