"""Other frameworks' names for dlspec's layers, optimisers, schedules, losses and initialisers:
each points at a name dlspec knows, and an unknown name gets dlspec's spelling in its message."""

from __future__ import annotations

import re

import pytest

from dlspec.frontend.values import plain, suggest
from dlspec.ir import inits, ops, settings

TABLES = [
    ("layer", ops.ELSEWHERE, set(ops.OPS)),
    ("optimizer", settings.OPTIMIZERS_ELSEWHERE, set(settings.OPTIMIZERS)),
    ("schedule", settings.SCHEDULES_ELSEWHERE, set(settings.SCHEDULES)),
    ("loss", settings.LOSSES_ELSEWHERE, set(settings.LOSSES)),
    ("initialiser", inits.ELSEWHERE, set(inits.SCHEMES)),
]


@pytest.mark.parametrize("kind, table, known", TABLES, ids=[t[0] for t in TABLES])
def test_each_name_elsewhere_points_at_a_known_one(
    kind: str, table: dict[str, str], known: set[str]
) -> None:
    plain_known = {plain(name) for name in known}
    for key, written in table.items():
        assert key == plain(key), f"{kind} {key!r}: keys are plain (lower case, no underscores)"
        assert key not in plain_known, f"{kind} {key!r} is dlspec's own name, spelled otherwise"
        assert re.match(r"\w+", written)[0] in known, f"{kind} {key!r} -> {written!r}"


def test_a_name_spelled_alike_is_suggested_before_a_close_one() -> None:
    assert suggest("MaxPool2d", sorted(ops.OPS)) == "; did you mean 'maxpool2d'?"
    assert suggest("LeakyReLU", sorted(ops.OPS)) == "; did you mean 'leaky_relu'?"
    assert suggest("GlobalMaxPool2D", sorted(ops.OPS)) == "; did you mean 'global_maxpool2d'?"
    losses = list(settings.LOSSES)
    assert suggest("BinaryCrossentropy", losses) == "; did you mean 'binary_cross_entropy'?"


def test_a_name_elsewhere_gets_dlspecs_spelling() -> None:
    assert suggest("Linear", sorted(ops.OPS), ops.ELSEWHERE) == "; dlspec writes dense"
    assert suggest("BatchNorm2d", sorted(ops.OPS), ops.ELSEWHERE) == "; dlspec writes batchnorm"
    assert suggest("adamw", sorted(settings.OPTIMIZERS), settings.OPTIMIZERS_ELSEWHERE) == (
        "; dlspec writes adam(weight_decay=..., weight_decay_mode=decoupled)"
    )
    assert suggest("linen", sorted(ops.OPS), ops.ELSEWHERE) == ""


def test_each_attribute_elsewhere_means_attributes_dlspec_has() -> None:
    every = {attr for spec in ops.OPS.values() for attr in spec.attrs}
    for key, meanings in ops.ATTRS_ELSEWHERE.items():
        assert key == plain(key), key
        assert meanings and set(meanings) <= every, (key, meanings)
    assert all(key == plain(key) for key in ops.STATED_ELSEWHERE)


def test_an_attribute_elsewhere_gets_the_ops_own() -> None:
    def hint(op: str, name: str) -> str:
        return suggest(name, list(ops.OPS[op].attrs), ops.attrs_elsewhere(op))

    assert hint("maxpool2d", "kernel_size") == "; dlspec writes pool=..."
    assert hint("conv2d", "kernel_size") == "; dlspec writes kernel=..."
    assert hint("dropout", "p") == "; dlspec writes rate=..."
    assert hint("batchnorm", "affine") == "; dlspec writes scale=..., center=..."
    assert "weight_decay" in hint("dense", "kernel_regularizer")
    assert hint("dropout", "units") == ""  # a name no framework gives dropout


def test_optimizer_and_train_names_elsewhere() -> None:
    every = {arg for table in settings.OPTIMIZERS.values() for arg in table}
    for key, meanings in settings.OPTIMIZER_ARGS_ELSEWHERE.items():
        assert key == plain(key) and set(meanings) <= every, (key, meanings)
    adam = settings.optimizer_args_elsewhere(settings.OPTIMIZERS["adam"])
    assert adam["betas"] == "beta1=..., beta2=..." and "alpha" not in adam
    assert settings.optimizer_args_elsewhere(settings.OPTIMIZERS["rmsprop"])["alpha"] == "rho=..."
    known = {*settings.TRAIN_SETTINGS, "optimizer", "schedule", "data"}
    for key, written in settings.TRAIN_ELSEWHERE.items():
        assert key == plain(key) and key not in {plain(k) for k in known}, key
        named = re.findall(r"(\w+) = ", written)
        assert set(named) <= known | {"optimizer", "verify"}, (key, written)
