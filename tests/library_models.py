"""Randomly initialised library models (no download) with realistic batch-norm statistics, for
the `dlspec weights import` proof tests.

A freshly initialised deep network has running means 0 and variances 1 that match nothing its
layers compute, so its evaluation-mode activations blow up or vanish and a comparison proves
little. Trained networks have running statistics that normalise their activations: these
helpers draw random batch-norm scales and shifts, then set every running mean and variance to
the statistics of one calibration batch (one training-mode forward with momentum 1: the batch's
own statistics), so every layer's output is of order one, as in a trained model.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

TORCHVISION = "0.28.0"  # requirements-dev.txt; the release that matches torch 2.13.0
_KEEP: list[Any] = []  # the torch.library.Library that declares torchvision's ops, kept alive


def import_torchvision() -> Any:
    """torchvision, or a skip saying why not.

    PyPI's torchvision 0.28.0 wheel is the CUDA build: its C++ extension links libtorch_cuda.so
    and libc10_cuda.so, which torch's CPU build lacks, so the extension does not load. torchvision
    means to carry on without it, but `_meta_registrations.py` registers a fake kernel for
    `torchvision::nms` unconditionally, and that raises "operator torchvision::nms does not
    exist" (pytorch/vision#8985). The classification models use none of these ops (nms and qnms
    are the two registered unconditionally), so declaring their schemas first lets the import
    finish; calling them would still fail."""
    try:
        import torch
    except ImportError:
        pytest.skip("torch is not installed")
    try:
        import torchvision
    except ImportError:
        pytest.skip(f"torchvision is not installed (requirements-dev.txt pins {TORCHVISION})")
    except RuntimeError as err:
        if "torchvision::nms" not in str(err):
            raise
        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        library = torch.library.Library("torchvision", "DEF")
        library.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        library.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        _KEEP.append(library)
        import torchvision
    return torchvision


def calibrate_torch(model: Any, x: np.ndarray, seed: int) -> Any:
    """Random batch-norm affine parameters, running statistics from batch `x`; eval mode."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for bn in norms:
            bn.weight.copy_(0.5 + torch.rand(bn.weight.shape, generator=generator))
            bn.bias.copy_(0.5 * torch.rand(bn.bias.shape, generator=generator) - 0.25)
            bn.momentum = 1.0  # running = the batch's statistics
        model.train()
        model(torch.from_numpy(x))
        for bn in norms:
            bn.momentum = 0.1
    return model.eval()


def calibrate_keras(model: Any, x_nhwc: np.ndarray, seed: int) -> Any:
    """As calibrate_torch for a Keras model (Keras weighs the old average: momentum 0)."""
    import keras

    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for bn in norms:
        gamma, beta, mean, var = bn.get_weights()
        gamma = (0.5 + rng.random(gamma.shape)).astype(np.float32)
        beta = (0.5 * rng.random(beta.shape) - 0.25).astype(np.float32)
        bn.set_weights([gamma, beta, mean, var])
        bn.momentum = 0.0
    model(x_nhwc, training=True)
    for bn in norms:
        bn.momentum = 0.99
    return model
