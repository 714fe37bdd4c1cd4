"""The convolutional zoo examples are their originals, proven on models built independently of
dlspec: convnet-benchmarks' AlexNet and VGG-A are torchvision's `alexnet` and `vgg11` (the same
layers; torchvision adds dropout, which evaluation leaves out), and the three-framework
comparison's MNIST CNN and DAQUAR VQA model (reconstructions: see their headers) are built here in
Keras 3 from their layer lists. For each, the library model's parameter count is the spec's
(`dlspec summary`'s), and with the library model's weights the float64 oracle reproduces its
evaluation-mode output on a random batch, which also proves the paddings, pools, flatten order
and merge order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from library_models import import_torchvision

from dlspec.frontend.load import build_file
from dlspec.ir.model import Model
from dlspec.oracle import forward as reference
from dlspec.verify.run import errors
from dlspec.weights.library import import_weights, keras_model_source, torchvision_source

pytestmark = pytest.mark.framework

ROOT = Path(__file__).resolve().parent.parent
SEED = 11
TOL = 1e-4  # relative error max|oracle - library| / max|library|, as tests/test_weights_import_models.py
TORCHVISION = {
    "examples/alexnet.dl": ("alexnet", 61_100_840),
    "examples/vgg_a.dl": ("vgg11", 132_863_336),
}


def _spec(path: str) -> Model:
    return build_file(str(ROOT / path)).model


@pytest.mark.parametrize("spec", sorted(TORCHVISION))
def test_torchvision_model_is_the_spec(spec: str) -> None:
    import torch

    torchvision = import_torchvision()
    factory, count = TORCHVISION[spec]
    torch.manual_seed(SEED)
    net = getattr(torchvision.models, factory)(weights=None).eval()
    model = _spec(spec)
    assert sum(p.numel() for p in net.parameters()) == model.param_count == count
    imported = import_weights(model, torchvision_source(net.state_dict(), factory))
    # the spec's layer names are torchvision's module paths with `_` for `.`
    assert all(lib.replace(".", "_") == ours for lib, ours, _ in imported.pairs)
    x = np.random.default_rng(SEED).standard_normal((1, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    abs_err, rel = errors(reference.forward(model, imported.weights, x), expected)
    print(f"{factory}: max abs {abs_err:.2e}, relative error {rel:.2e}")
    assert rel <= TOL
    assert float(np.std(expected)) > 0  # the output depends on the input


@pytest.fixture(scope="module")
def keras() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(SEED)
    return keras


def test_keras_comparison_mnist_cnn_is_the_spec(keras: Any) -> None:
    layers = keras.layers
    net = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(32, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(1024, activation="relu"),
            layers.Dropout(0.5),
            layers.Dense(10),
        ]
    )
    model = _spec("examples/comparison_mnist_cnn.dl")
    assert net.count_params() == model.param_count == 3_274_634
    weights = import_weights(model, keras_model_source(net)).weights
    x = np.random.default_rng(SEED).random((3, 1, 28, 28)).astype(np.float32)
    expected = np.asarray(net(x.transpose(0, 2, 3, 1), training=False))
    abs_err, rel = errors(reference.forward(model, weights, x), expected)
    print(f"comparison_mnist_cnn: max abs {abs_err:.2e}, relative error {rel:.2e}")
    assert rel <= TOL


# the Keras functional-API guide's image tower: (filters, padding) per convolution, None a pool
TOWER = [(64, "same"), (64, "valid"), None, (128, "same"), (128, "valid"), None]
TOWER += [(256, "same"), (256, "valid"), (256, "valid"), None]


def _keras_daquar(keras: Any) -> Any:
    layers = keras.layers
    image = keras.Input((50, 50, 3), name="image")
    question = keras.Input((100,), dtype="int32", name="question")
    x = image
    for conv in TOWER:
        if conv is None:
            x = layers.MaxPooling2D(2)(x)
        else:
            filters, padding = conv
            x = layers.Conv2D(filters, 3, padding=padding, activation="relu")(x)
    encoded_image = layers.Flatten()(x)
    encoded_question = layers.LSTM(256)(layers.Embedding(1427, 256)(question))
    merged = layers.Concatenate()([encoded_question, encoded_image])
    return keras.Model([image, question], layers.Dense(1427)(merged))


def _canonical_daquar(net: Any, model: Model) -> dict[str, np.ndarray]:
    """The Keras model's weights in the spec's canonical names and layouts, by hand: weights
    import does not fill embeddings and LSTMs yet. Keras's LSTM gates (i, f, c, o) are the
    canonical order; the answer layer's image rows come in (H, W, C) order after the question's
    256 and go back to (C, H, W) (docs/semantics.md, 1.4)."""
    convs = [layer for layer in net.layers if type(layer).__name__ == "Conv2D"]
    by_class = {type(layer).__name__: layer for layer in net.layers}
    spec_convs = [layer.name for layer in model.layers if layer.op == "conv2d"]
    weights: dict[str, np.ndarray] = {}
    for name, conv in zip(spec_convs, convs, strict=True):
        kernel, bias = conv.get_weights()
        weights[f"{name}.weight"], weights[f"{name}.bias"] = kernel.transpose(3, 2, 0, 1), bias
    (table,) = by_class["Embedding"].get_weights()
    weights["embedding_1.weight"] = table
    kernel, recurrent, bias = by_class["LSTM"].get_weights()
    weights["encoded_question.weight_ih_l0"] = kernel.T
    weights["encoded_question.weight_hh_l0"] = recurrent.T
    weights["encoded_question.bias_ih_l0"] = bias
    kernel, bias = by_class["Dense"].get_weights()
    rows = kernel.T
    image = rows[:, 256:].reshape(1427, 3, 3, 256).transpose(0, 3, 1, 2).reshape(1427, -1)
    weights["answer.weight"] = np.concatenate([rows[:, :256], image], axis=1)
    weights["answer.bias"] = bias
    assert sorted(weights) == sorted(p.name for p in model.params)
    return weights


def test_keras_daquar_vqa_is_the_spec(keras: Any) -> None:
    net = _keras_daquar(keras)
    model = _spec("examples/daquar_vqa.dl")
    assert net.count_params() == model.param_count == 6_280_659
    rng = np.random.default_rng(SEED)
    image = rng.random((3, 3, 50, 50)).astype(np.float32)
    question = rng.integers(0, 1427, (3, 100)).astype(np.int32)
    expected = np.asarray(net([image.transpose(0, 2, 3, 1), question], training=False))
    x = {"image": image, "question": question}
    abs_err, rel = errors(reference.forward(model, _canonical_daquar(net, model), x), expected)
    print(f"daquar_vqa: max abs {abs_err:.2e}, relative error {rel:.2e}")
    assert rel <= TOL
