"""The example specs, and which of them the per-example training and verify tests run.

The zoo examples are ImageNet-sized (224 x 224: ResNet-50 and DenseNet-121 with 53 and 121 batch
norms, AlexNet and VGG-A with 61 and 133 million parameters): one training step takes seconds per
runtime on a CPU, and the float64 oracle's gradients much longer (`dlspec verify` of VGG-A: about
10 CPU minutes, most of them the oracle's), so the tests that train or verify every example leave
them out. They are compiled, linted and checked against generated/ like the others, their
parameter counts are checked against the library models (tests/test_weights_import.py), and
tests/test_weights_import_models.py (ResNet-50, DenseNet-121) and tests/test_zoo_models.py
(AlexNet, VGG-A) prove their evaluation-mode forward with torchvision's weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlspec.ir.model import Model

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))
ZOO = {"resnet50", "densenet121_chexnet", "alexnet", "vgg_a"}
TRAINED = [p for p in EXAMPLES if p.stem not in ZOO]


def reports_accuracy(model: Model, results: dict[str, Any]) -> bool:
    """A classifier's results hold an accuracy in [0, 1]; a regression's (mse, mae) hold null."""
    assert model.train is not None
    if model.train.loss.kind == "softmax_cross_entropy":
        return 0.0 <= results["test_accuracy"] <= 1.0
    return results["test_accuracy"] is None
