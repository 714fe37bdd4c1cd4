"""`dlspec weights import` without a framework: the structural mapping, the layout conversions,
every kind of mismatch named in one error, the CLI, and the zoo specs' parameter counts.
(tests/test_weights_import_models.py proves it on real torchvision and Keras models.)"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from dlspec.backends import layouts
from dlspec.cli import main
from dlspec.frontend.load import build, build_file
from dlspec.ir.model import Model
from dlspec.weights.canonical import WeightsError, draw_weights
from dlspec.weights.library import import_weights, read_keras_weights, torchvision_source

ROOT = Path(__file__).resolve().parent.parent

SPEC = """
block unit(width) {
    input x
    c: conv2d(width, 3, padding=1, bias=false)
    n: batchnorm -> relu
}
model small {
    input image: float32[2, 5, 4]
    stem: conv2d(3, 3, padding=1) -> relu
    stem_bn: batchnorm(scale=false)
    s: unit(4) * 2
    flatten
    head: dense(3)
}
"""

# torchvision-style module paths of SPEC's layers, in forward (registration) order
TORCH_NAMES = {
    "stem": "features.0",
    "stem_bn": "features.1",
    "s_1_c": "layer.0.conv",
    "s_1_n": "layer.0.bn",
    "s_2_c": "layer.1.conv",
    "s_2_n": "layer.1.bn",
    "head": "fc",
}


def small() -> Model:
    return build(SPEC, "small.dl").model


def canonical(model: Model) -> dict[str, np.ndarray]:
    """Distinct random values for every tensor (running_var positive)."""
    weights = draw_weights(model, 3)
    rng = np.random.default_rng(4)
    return {
        k: (np.abs(v) + 0.5 if k.endswith("running_var") else v + rng.normal(size=v.shape)).astype(
            np.float32
        )
        for k, v in weights.items()
    }


def state_dict(model: Model, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What torchvision's state_dict() would hold: module paths, plus batch norm's counter."""
    state = {}
    for layer in model.layers:
        for p in layer.params:
            state[f"{TORCH_NAMES[layer.name]}.{p.role}"] = weights[p.name]
        if layer.op == "batchnorm":
            state[f"{TORCH_NAMES[layer.name]}.num_batches_tracked"] = np.array(5, np.int64)
    return state


def problems(model: Model, state: dict[str, np.ndarray]) -> list[str]:
    with pytest.raises(WeightsError) as info:
        import_weights(model, torchvision_source(state, "sd.pt"))
    return [line.strip() for line in str(info.value).splitlines()[1:]]


def test_a_state_dict_imports_by_structure_in_model_order() -> None:
    model = small()
    weights = canonical(model)
    imported = import_weights(model, torchvision_source(state_dict(model, weights), "sd.pt"))
    assert list(imported.weights) == [p.name for p in model.params]
    for name, value in weights.items():
        np.testing.assert_array_equal(imported.weights[name], value)
        assert imported.weights[name].dtype == np.float32
    assert [(lib, ours) for lib, ours, _ in imported.pairs][:3] == [
        ("features.0", "stem"),
        ("layer.0.conv", "s_1_c"),
        ("layer.1.conv", "s_2_c"),
    ]
    assert len(imported.ignored) == 3  # num_batches_tracked
    assert "ignored 3 num_batches_tracked" in imported.summary("torchvision sd.pt", "out.npz")


def test_every_missing_extra_and_misshaped_tensor_is_named_in_one_error() -> None:
    model = small()
    state = state_dict(model, canonical(model))
    del state["layer.1.bn.running_var"]  # missing
    state["layer.0.conv.bias"] = np.zeros(4, np.float32)  # the spec's conv has bias=false
    state["fc.weight"] = state["fc.weight"].T  # mis-shaped
    state["fc.scale"] = np.ones(3, np.float32)  # not a dense, conv or batch norm tensor
    lines = problems(model, state)
    assert "missing s_2_n.running_var: layer.1.bn has no running_var" in lines
    assert "unexpected layer.0.conv.bias: s_1_c has no bias (bias=false there)" in lines
    assert "fc.weight has shape [40, 3], but head.weight is [3, 40]" not in lines  # not a dense now
    assert any(line.startswith("unexpected fc.weight, fc.bias, fc.scale:") for line in lines)
    assert any(line.startswith("missing head.weight, head.bias:") for line in lines)


def test_a_misshaped_tensor_names_both_shapes() -> None:
    model = small()
    state = state_dict(model, canonical(model))
    state["layer.0.conv.weight"] = np.zeros((4, 3, 1, 1), np.float32)
    assert problems(model, state) == [
        "layer.0.conv.weight has shape [4, 3, 1, 1], but s_1_c.weight is [4, 3, 3, 3]"
    ]


def test_a_layer_one_side_lacks_is_named_alone_not_every_layer_after_it() -> None:
    model = small()
    state = state_dict(model, canonical(model))
    for role in ("bias", "running_mean", "running_var", "num_batches_tracked"):
        del state[f"features.1.{role}"]
    assert problems(model, state) == [
        "the spec has 3 batchnorm layers, the torchvision weights 2",
        "missing stem_bn.bias, stem_bn.running_mean, stem_bn.running_var: the weights have no "
        "batchnorm left for it",
    ]


def test_a_layer_the_import_cannot_fill_is_refused() -> None:
    model = build(
        "model m { input t: int32[4] embedding(10, 3) -> gru(2) -> dense(2) }", "m.dl"
    ).model
    state = {"head.weight": np.zeros((2, 2), np.float32), "head.bias": np.zeros(2, np.float32)}
    lines = problems(model, state)
    assert lines[0] == (
        "missing embedding_1.weight: import fills conv2d, batchnorm and dense layers, not "
        "embedding (embedding_1)"
    )
    assert lines[1].startswith("missing gru_1.weight_ih_l0, gru_1.weight_hh_l0")


# ---- Keras ----------------------------------------------------------------------------------

KERAS_SPEC = """
model k {
    input image: float32[2, 6, 5]
    zeropad2d(1)
    CONVS
    n: batchnorm(center=false) -> relu
    flatten
    d: dense(3)
}
"""


def keras_model() -> Model:
    """Eleven convolutions, so Keras's group names run past conv2d_9 (conv2d_10 sorts before
    conv2d_2 as text), and a dense layer after a flatten of a non-square map."""
    convs = "\n".join(
        f"c{i}: conv2d(2, [3, 2], padding=same, bias={str(i % 2 == 0).lower()})" for i in range(11)
    )
    return build(KERAS_SPEC.replace("CONVS", convs), "k.dl").model


def write_keras_h5(path: Path, model: Model, weights: dict[str, np.ndarray]) -> None:
    """A Keras 3 .weights.h5 as model.save_weights() writes it, the layouts made with the Keras
    target's own recipes (dlspec/backends/layouts.py), so the import is checked to invert them."""
    h5py = pytest.importorskip("h5py")
    counters: dict[str, int] = {}
    with h5py.File(path, "w") as f:
        f.create_group("vars")
        for layer in model.layers:
            cls = {"conv2d": "conv2d", "batchnorm": "batch_normalization", "dense": "dense"}.get(
                layer.op, layer.op
            )
            k = counters.get(cls, -1) + 1
            counters[cls] = k
            group = f.create_group(f"layers/{cls}" + (f"_{k}" if k else ""))
            variables = group.create_group("vars")
            variables.attrs["name"] = layer.name
            if layer.op == "conv2d":
                native = [layouts.conv_kernel(layer, "kernel")]
                native += [layouts.same(p.name, "bias", p.shape) for p in layer.params[1:]]
            elif layer.op == "dense":
                native = [layouts.dense_kernel(layer, "kernel")]
                native.append(layouts.same(layer.params[1].name, "bias", layer.params[1].shape))
            elif layer.op == "batchnorm":
                native = layouts.batchnorm_params(layer, layer.name)
            else:
                native = []
            for i, param in enumerate(native):
                variables[str(i)] = eval(param.to_native, {"c": weights, "np": np})  # noqa: S307


def test_keras_weights_import_by_class_order_with_layouts_converted(tmp_path: Path) -> None:
    model = keras_model()
    weights = canonical(model)
    write_keras_h5(tmp_path / "k.weights.h5", model, weights)
    imported = import_weights(model, read_keras_weights(tmp_path / "k.weights.h5"))
    for name, value in weights.items():
        np.testing.assert_array_equal(imported.weights[name], value, err_msg=name)
    assert [lib for lib, _, _ in imported.pairs][:11] == [f"c{i}" for i in range(11)]

    # a .keras archive holds the same file as model.weights.h5
    with zipfile.ZipFile(tmp_path / "k.keras", "w") as archive:
        archive.write(tmp_path / "k.weights.h5", "model.weights.h5")
        archive.writestr("config.json", "{}")
    again = import_weights(model, read_keras_weights(tmp_path / "k.keras"))
    assert all(np.array_equal(again.weights[k], v) for k, v in imported.weights.items())


def test_keras_mismatches_name_the_keras_layer_and_variable(tmp_path: Path) -> None:
    model = keras_model()
    write_keras_h5(tmp_path / "k.weights.h5", model, canonical(model))
    other = build(KERAS_SPEC.replace("CONVS", "c0: conv2d(3, [3, 2], padding=same)"), "o.dl").model
    with pytest.raises(WeightsError) as info:
        import_weights(other, read_keras_weights(tmp_path / "k.weights.h5"))
    text = str(info.value)
    assert "the spec has 1 conv2d layers, the keras weights 11" in text
    assert (
        "c0/kernel (layers/conv2d/vars/0) has shape [3, 2, 2, 2] ([2, 2, 3, 2] in the canonical "
        "layout), but c0.weight is [3, 2, 3, 2]"
    ) in text


# ---- the command line -----------------------------------------------------------------------


def test_cli_writes_the_npz_and_refuses_a_mismatch_writing_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    model = small()
    (tmp_path / "small.dl").write_text(SPEC, encoding="utf-8")
    weights = canonical(model)
    state = {k: torch.from_numpy(np.asarray(v)) for k, v in state_dict(model, weights).items()}
    torch.save(state, tmp_path / "sd.pt")
    spec, out = str(tmp_path / "small.dl"), tmp_path / "w.npz"
    argv = ["weights", "import", spec, "--from", "torchvision", str(tmp_path / "sd.pt")]
    assert main([*argv, "-o", str(out), "--show-map"]) == 0
    captured = capsys.readouterr()
    assert "features.0    ->  stem  (conv2d)" in captured.out
    assert "imported 17 tensors of 7 layers (3 conv2d, 3 batchnorm, 1 dense)" in captured.err
    with np.load(out) as f:
        assert f.files == [p.name for p in model.params]
        assert all(np.array_equal(f[k], weights[k]) for k in f.files)

    del state["fc.bias"]
    torch.save(state, tmp_path / "bad.pt")
    bad = tmp_path / "bad.npz"
    argv[-1] = str(tmp_path / "bad.pt")
    assert main([*argv, "-o", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dlspec: error: the torchvision weights in ")
    assert "missing head.bias: fc has no bias" in err
    assert not bad.exists() and not list(tmp_path.glob(".bad.npz.*"))


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "w.pt").write_bytes(b"not a state dict")
    spec = str(ROOT / "examples" / "resnet50.dl")
    base = ["weights", "import", spec, "-o", str(tmp_path / "o.npz")]
    assert main([*base, "--from", "caffe", str(tmp_path / "w.pt")]) == 2
    assert "unknown library (known: torchvision, keras)" in capsys.readouterr().err
    assert main([*base, "--from", "keras", str(tmp_path / "none.h5")]) == 2
    assert "no such weights file" in capsys.readouterr().err
    assert main([*base, "--from", "keras", str(tmp_path / "w.pt")]) == 1
    assert "dlspec: error: cannot read" in capsys.readouterr().err
    assert not (tmp_path / "o.npz").exists()


# ---- the zoo specs --------------------------------------------------------------------------

ZOO = {
    # spec: (trainable, running statistics), each checked against the library model
    "examples/alexnet.dl": (61_100_840, 0),  # torchvision alexnet
    "examples/resnet50.dl": (23_508_032, 53_120),  # torchvision resnet50 25,557,032 less fc
    "examples/vgg_a.dl": (132_863_336, 0),  # torchvision vgg11
    "examples/densenet121_chexnet.dl": (6_968_206, 83_648),  # densenet121(num_classes=14)
    "tests/fixtures/zoo/densenet121_keras.dl": (7_978_856, 83_648),  # Keras count_params 8,062,504
}


@pytest.mark.parametrize("spec", sorted(ZOO))
def test_zoo_parameter_counts_are_the_library_models(spec: str) -> None:
    model = build_file(str(ROOT / spec)).model
    assert (model.param_count, model.buffer_count) == ZOO[spec]
