"""THE table of a spec's settings besides its layers: optimisers, schedules, losses, datasets,
the train and verify settings and the top-level ones, with their defaults per profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from dlspec.frontend import values as V
from dlspec.ir.attrs import (
    PROFILES,
    AttrSpec,
    named_elsewhere,
    nonneg_int,
    nonneg_real,
    one_of,
    pos_int,
    pos_real,
    unit_open,
)

WEIGHT_DECAY = AttrSpec(nonneg_real, 0.0, "decay coefficient")
WD_MODE = AttrSpec(
    one_of("l2", "decoupled"),
    {"dlspec": "l2", "keras": "decoupled"},
    "l2: g += wd * w before the update; decoupled: w -= lr * wd * w beside it",
)

OPTIMIZERS: dict[str, dict[str, AttrSpec]] = {
    "sgd": {
        "lr": AttrSpec(pos_real, {"dlspec": 0.01, "pytorch": 0.001}, "learning rate"),
        "momentum": AttrSpec(unit_open, 0.0, "momentum coefficient mu"),
        "nesterov": AttrSpec(V.boolean, False, "Nesterov momentum"),
        "momentum_form": AttrSpec(
            one_of("gradient", "update"),
            {"dlspec": "gradient", "keras": "update"},
            "gradient: v = mu*v + g, w -= lr*v; update: v = mu*v - lr*g, w += v",
        ),
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_mode": WD_MODE,
    },
    "adam": {
        "lr": AttrSpec(pos_real, 0.001, "learning rate"),
        "beta1": AttrSpec(unit_open, 0.9, "first-moment decay"),
        "beta2": AttrSpec(unit_open, 0.999, "second-moment decay"),
        "eps": AttrSpec(pos_real, {"dlspec": 1e-8, "keras": 1e-7}, "epsilon"),
        "eps_placement": AttrSpec(
            one_of("corrected", "uncorrected"),
            {"dlspec": "corrected", "keras": "uncorrected"},
            "corrected: w -= lr*mhat/(sqrt(vhat)+eps); uncorrected: eps added to sqrt(v)"
            " before bias correction (TF/Keras 'epsilon hat')",
        ),
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_mode": WD_MODE,
    },
    "rmsprop": {
        "lr": AttrSpec(pos_real, {"dlspec": 0.001, "pytorch": 0.01}, "learning rate"),
        "rho": AttrSpec(unit_open, {"dlspec": 0.9, "pytorch": 0.99}, "decay of E[g^2]"),
        "eps": AttrSpec(pos_real, {"dlspec": 1e-7, "pytorch": 1e-8}, "epsilon"),
        "eps_placement": AttrSpec(
            one_of("outside", "inside"),
            {"dlspec": "outside", "keras": "inside"},
            "outside: g/(sqrt(v)+eps); inside: g/sqrt(v+eps)",
        ),
        "momentum": AttrSpec(unit_open, 0.0, "momentum on the scaled step s = g/(sqrt(v)+eps)"),
        "momentum_form": AttrSpec(
            one_of("gradient", "update"),
            {"dlspec": "gradient", "keras": "update"},
            "gradient: b = mu*b + s, w -= lr*b; update: b = mu*b + lr*s, w -= b",
        ),
        "centered": AttrSpec(V.boolean, False, "subtract the squared mean gradient"),
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_mode": WD_MODE,
    },
    "adadelta": {
        "lr": AttrSpec(pos_real, {"dlspec": 1.0, "keras": 0.001}, "learning rate"),
        "rho": AttrSpec(unit_open, {"dlspec": 0.95, "pytorch": 0.9}, "decay rate"),
        "eps": AttrSpec(pos_real, {"dlspec": 1e-6, "keras": 1e-7}, "epsilon"),
        "weight_decay": WEIGHT_DECAY,
        "weight_decay_mode": WD_MODE,
    },
}

# optimisers and schedules as other frameworks name them (plain spelling), for messages
OPTIMIZERS_ELSEWHERE = {
    "adamw": "adam(weight_decay=..., weight_decay_mode=decoupled)",
    "momentum": "sgd(momentum=...)",
    "nesterov": "sgd(momentum=..., nesterov=true)",
}
# optimiser arguments as other frameworks name them (plain) -> the dlspec arguments meant
OPTIMIZER_ARGS_ELSEWHERE: dict[str, tuple[str, ...]] = {
    "learningrate": ("lr",),
    "betas": ("beta1", "beta2"),
    "epsilon": ("eps",),
    "alpha": ("rho",),
    "centred": ("centered",),
}


def optimizer_args_elsewhere(table: Mapping[str, object]) -> dict[str, str]:
    """For an optimiser's "unknown argument" messages: other frameworks' names (plain) -> how
    dlspec writes them, where the optimiser (its argument `table`) has them."""
    return named_elsewhere(OPTIMIZER_ARGS_ELSEWHERE, table)


# train settings as other frameworks or habits name them (plain) -> where dlspec states them
# (close spellings, batch_size or num_epochs, are difflib's)
TRAIN_ELSEWHERE = {
    **dict.fromkeys(("lr", "learningrate"), "the optimiser's lr: optimizer = sgd(lr=...)"),
    "momentum": "the optimiser's momentum: optimizer = sgd(momentum=...)",
    "weightdecay": "the optimiser's weight decay: optimizer = sgd(weight_decay=...)",
    **dict.fromkeys(("criterion", "lossfunction"), "loss = ..."),
    "randomseed": "seed = ...",
    "device": "the device at launch: the script's --device auto|cpu|gpu",
    **dict.fromkeys(
        ("amp", "mixedprecision"), "mixed precision at launch: the PyTorch script's --amp bf16|fp16"
    ),
    "precision": "verify's dtype as verify = precision(float64); mixed precision at launch: "
    "the PyTorch script's --amp bf16|fp16",
}
SCHEDULES_ELSEWHERE = {
    "steplr": "step(every=..., gamma=...)",
    "inversetimedecay": "inverse_time(decay=...)",
}

# Keras 2's optimiser argument `decay=` meant lr / (1 + decay * updates); it becomes a schedule.
OPTIMIZER_SUGAR = {"decay": AttrSpec(nonneg_real, 0.0, "Keras 2 inverse-time decay per update")}

SCHEDULES: dict[str, dict[str, AttrSpec]] = {
    "constant": {},
    "step": {
        "every": AttrSpec(pos_int, doc="period, in `unit`s"),
        "gamma": AttrSpec(pos_real, 0.1, "factor applied once per period"),
        "unit": AttrSpec(one_of("epoch", "step"), "epoch", "what `every` counts"),
    },
    "inverse_time": {
        "decay": AttrSpec(nonneg_real, doc="lr_t = lr / (1 + decay * t)"),
        "unit": AttrSpec(one_of("epoch", "step"), "step", "what t counts"),
    },
}

LOSSES = ("softmax_cross_entropy", "binary_cross_entropy", "mse", "mae")
# what other frameworks call them (plain spelling: lower case, no underscores), for messages
LOSSES_ELSEWHERE = {
    **dict.fromkeys(
        ("crossentropy", "crossentropyloss", "categoricalcrossentropy"),
        "softmax_cross_entropy (on logits, with integer labels)",
    ),
    "sparsecategoricalcrossentropy": "softmax_cross_entropy (on logits)",
    **dict.fromkeys(
        ("bce", "bceloss", "bcewithlogitsloss"),
        "binary_cross_entropy (on logits: the sigmoid is fused)",
    ),
    **dict.fromkeys(("mseloss", "meansquarederror"), "mse"),
    **dict.fromkeys(("l1", "l1loss", "meanabsoluteerror"), "mae"),
}
# what each loss's targets are: integer class ids, 0/1 per output element, or reals
LOSS_TARGETS = {
    "softmax_cross_entropy": "sparse",
    "binary_cross_entropy": "multi_label",
    "mse": "real",
    "mae": "real",
}


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset provides."""

    attrs: dict[str, AttrSpec]
    classes: int
    train_size: int
    test_size: int
    shape: tuple[int, ...]  # one sample's canonical shape (() : set by the input)
    dtype: str
    doc: str


DATASETS: dict[str, DatasetSpec] = {
    "fashion_mnist": DatasetSpec(
        {}, 10, 60000, 10000, (1, 28, 28), "float32", "Fashion-MNIST idx files, scaled to [0, 1]"
    ),
    "synthetic": DatasetSpec(
        {
            "train_size": AttrSpec(pos_int, 50000, "samples per epoch"),
            "test_size": AttrSpec(pos_int, 10000, "evaluation samples"),
        },
        0,
        0,
        0,
        (),
        "",
        "random inputs of the input's shape and dtype; random labels",
    ),
    "mnist": DatasetSpec(
        {},
        10,
        60000,
        10000,
        (1, 28, 28),
        "float32",
        "MNIST digits, scaled to [0, 1] (pickle or idx files)",
    ),
    "cifar10": DatasetSpec(
        {},
        10,
        50000,
        10000,
        (3, 32, 32),
        "float32",
        "CIFAR-10 python batches, scaled to [0, 1], (3, 32, 32)",
    ),
    "npz": DatasetSpec(
        {},
        0,
        0,
        0,
        (),
        "",
        "the user's arrays from one .npz (--data FILE): x_train, x_test (or x_train_<input>, "
        "x_test_<input> per input), y_train, y_test",
    ),
    "imdb": DatasetSpec(
        {
            "vocab": AttrSpec(pos_int, 20000, "keep ids below this; others become oov_char"),
            "pad": AttrSpec(one_of("pre", "post"), "pre", "where short reviews get zeros"),
            "truncate": AttrSpec(one_of("pre", "post"), "pre", "which end long reviews lose"),
            "start_char": AttrSpec(nonneg_int, 1, "id put before every review"),
            "oov_char": AttrSpec(nonneg_int, 2, "id for words at or above vocab"),
            "index_from": AttrSpec(nonneg_int, 3, "offset added to the stored word ids"),
        },
        2,
        25000,
        25000,
        (),
        "int32",
        "IMDB reviews from imdb.npz (Keras format), length from the input shape",
    ),
}

LR_SCALINGS = ("none", "linear")
TRAIN_SETTINGS: dict[str, AttrSpec] = {
    "loss": AttrSpec(
        one_of(*LOSSES, elsewhere=LOSSES_ELSEWHERE),
        "softmax_cross_entropy",
        "softmax_cross_entropy: logits + integer labels; binary_cross_entropy: logits + 0/1 "
        "targets per output (sigmoid fused, multi-label); mse, mae: real targets",
    ),
    "shuffle": AttrSpec(
        V.boolean, True, "reshuffle the training samples every epoch (false: their stored order)"
    ),
    "batch": AttrSpec(pos_int, 32, "samples per update"),
    "epochs": AttrSpec(pos_int, 1, "passes over the training set"),
    "seed": AttrSpec(nonneg_int, 0, "seed for initialisation, shuffling and synthetic data"),
    # data parallelism: the replica count is a launch-time property (torchrun's WORLD_SIZE), not
    # the spec's; `batch` is the global batch, split evenly over the replicas
    "lr_scaling": AttrSpec(
        one_of(*LR_SCALINGS),
        "none",
        "the learning rate with N data-parallel replicas: none (as stated), linear (times N)",
    ),
    "batchnorm_sync": AttrSpec(
        V.boolean,
        False,
        "with data-parallel replicas, batch norm statistics over the global batch (false: over "
        "each replica's part)",
    ),
}
TRAIN_DEFAULT_OPTIMIZER = "sgd"
TRAIN_DEFAULT_SCHEDULE = "constant"
TRAIN_DEFAULT_DATA = "synthetic"
GLOBAL_INIT_KEYS = ("init", "bias_init", "recurrent_init")
MAX_VERIFY_TOL = 0.1  # a bound above this would prove little


def verify_tol(v: Any, what: str) -> float:
    return V.real(v, what, 0.0, MAX_VERIFY_TOL, low_open=True)


# `verify = tolerance(...)`: a spec's own bounds for `dlspec verify`, each replacing the default
# bound of that check against the oracle (docs/semantics.md, section 10); unstated: the default
VERIFY_TOLERANCES: dict[str, AttrSpec] = {
    "forward": AttrSpec(verify_tol, None, "forward vs oracle (default 1e-5, 1e-4 with an RNN)"),
    "losses": AttrSpec(verify_tol, None, "step losses vs oracle (default 1e-4)"),
    "weights": AttrSpec(
        verify_tol, None, "trained weights vs oracle (default 1e-4, 5e-4 for adaptive optimisers)"
    ),
}
# `verify = precision(float64)`: the dtype verify's training checks run in (docs/semantics.md,
# section 10, "The float64 mode"): each script runs twice, float32 for the forward, float64 for all
VERIFY_PRECISIONS = ("float32", "float64")
# top-level settings (names and meanings; resolve.py reads `defaults`, defaults.py `verify`)
TOP_SETTINGS = {
    "defaults": AttrSpec(one_of(*PROFILES), "dlspec", "what unstated attributes mean"),
    "verify": AttrSpec(
        lambda v, what: v,
        None,
        "the spec's own verify bounds, tolerance(forward=, losses=, weights=), and the dtype "
        "its training checks run in, precision(float64); each at most once",
    ),
}
