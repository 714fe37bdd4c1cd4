"""What the generated PyTorch scripts do when they run (needs torch; marked `framework`).

Every example trains a few steps in a subprocess and reports the contract's JSON; exported
weights come back identical; the written-out optimisers compute their documented formulas; the
F.pad and exclude-padding pooling code equals a direct NumPy computation; the loaders feed real
files to the script; and mnist_mlp learns real MNIST in one epoch.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import math
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from dataset_files import write_cifar, write_imdb, write_pm25
from example_specs import TRAINED, reports_accuracy

from dlspec.backends.pytorch import PyTorchBackend
from dlspec.codegen.compile import compile_model
from dlspec.codegen.contract import SYNTHETIC_POOL_BATCHES
from dlspec.codegen.interface import validate_results
from dlspec.frontend.load import build, build_file
from dlspec.ir.model import Model

torch = pytest.importorskip(
    "torch", reason="torch cannot be imported (pip install torch==2.13.0 for the CPU build)"
)

pytestmark = pytest.mark.framework

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.dl"))
MNIST_DIR = ROOT / ".cache" / "mnist"


# ---- helpers ---------------------------------------------------------------------------------


def write_script(model: Model, folder: Path) -> Path:
    """Compile `model` for PyTorch into folder/<model>_pytorch.py."""
    compiled = compile_model(model, "pytorch")
    path = folder / compiled.filename
    path.write_text(compiled.source, encoding="utf-8")
    return path


def spec_script(text: str, folder: Path) -> Path:
    return write_script(build(text, "<test>").model, folder)


def import_script(path: Path) -> types.ModuleType:
    """Import a generated script as a module (its main() does not run)."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(script: Path, cwd: Path, *args: str, results: str = "r.json") -> dict[str, Any]:
    """Run a script in a fresh interpreter on the CPU; return its results JSON."""
    command = [sys.executable, str(script), "--device", "cpu", "--results", results, *args]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stderr}"
    return json.loads((cwd / results).read_text())


def train_steps(module: types.ModuleType, optimizer: Any, model: Any, steps: int) -> None:
    """The script's own training loop for `steps` updates on its synthetic data."""
    args = module.parse_args(["--data", "synthetic", "--max-steps", str(steps), "--warmup", "0"])
    data, _ = module.load_data("synthetic", args.seed)
    args.device = torch.device("cpu")  # as the script's setup() resolves --device
    args.replicas, args.rank, args.lr_scale = 1, 0, 1  # as main() and setup() for one process
    args.record_steps = False  # as setup() without --cuda-graphs
    history = module.train(model, data, args, optimizer)
    assert history["steps"] == steps


def max_param_diff(a: Any, b: Any) -> float:
    pairs = zip(a.parameters(), b.parameters(), strict=True)
    return max(float((p - q).detach().abs().max()) for p, q in pairs)


# ---- every example ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", TRAINED, ids=[p.stem for p in TRAINED])
def test_example_trains_and_weights_round_trip(spec: Path, tmp_path: Path) -> None:
    model = build_file(str(spec)).model
    script = write_script(model, tmp_path)
    steps = ["--data", "synthetic", "--max-steps", "2", "--warmup", "1"]
    first = run_script(script, tmp_path, *steps, "--weights-out", "w.npz")
    assert validate_results(first) == []
    assert first["steps"] == 2 and first["warmup_steps"] == 1
    assert first["framework"] == "torch" and first["target"] == "pytorch"
    assert first["model"] == model.name and first["device"] == "cpu"
    assert first["device_peak_memory_mb"] is None  # counted on a GPU only
    assert first["parameters"] == model.param_count  # `dlspec summary`'s total
    assert len(first["epoch_losses"]) == 1 and math.isfinite(first["final_loss"])
    assert first["samples_per_second"] > 0
    assert first["test_samples"] == SYNTHETIC_POOL_BATCHES * model.train.batch
    assert math.isfinite(first["test_loss"]) and reports_accuracy(model, first)

    weights = np.load(tmp_path / "w.npz")
    assert {k: weights[k].shape for k in weights.files} == {p.name: p.shape for p in model.params}

    # the trained weights, loaded into a fresh run that does not train, evaluate identically
    again = run_script(script, tmp_path, *steps, "--weights-in", "w.npz", "--epochs", "0")
    assert again["steps"] == 0
    assert again["test_loss"] == first["test_loss"]
    assert again["test_accuracy"] == first["test_accuracy"]


def test_weights_in_process_and_their_errors(tmp_path: Path) -> None:
    module = import_script(
        write_script(build_file(str(ROOT / "examples/mnist_cnn.dl")).model, tmp_path)
    )
    torch.manual_seed(1)
    trained = module.Net()
    with torch.no_grad():
        for p in trained.parameters():
            p.normal_()
    module.save_weights(trained, tmp_path / "w.npz")
    fresh = module.Net()
    module.init_parameters(fresh)
    x = torch.randn(4, *module.INPUT_SHAPE)
    assert not torch.equal(fresh.eval()(x), trained.eval()(x))
    module.load_weights(fresh, tmp_path / "w.npz")
    assert torch.equal(fresh.eval()(x), trained.eval()(x))

    arrays = dict(np.load(tmp_path / "w.npz"))
    name = module.PARAMETERS[0][0]
    np.savez(tmp_path / "short.npz", **{k: v for k, v in arrays.items() if k != name})
    with pytest.raises(SystemExit, match=f"missing \\['{name}'\\], unexpected \\[\\]"):
        module.load_weights(fresh, tmp_path / "short.npz")
    np.savez(tmp_path / "bad.npz", **{**arrays, name: arrays[name][:1]})
    with pytest.raises(SystemExit, match=f"{name} has shape"):
        module.load_weights(fresh, tmp_path / "bad.npz")


# ---- the written-out optimiser ---------------------------------------------------------------

OPT_SPEC = """
model opt {{
    input x: float32[6]
    dense(5) -> tanh
    dense(3)
}}
train {{
    optimizer = {optimizer}
    schedule  = {schedule}
    batch     = 8
    epochs    = 1
    data      = synthetic(train_size=64, test_size=16)
}}
"""
SGD_UPDATE = "sgd(lr=0.1, momentum=0.9, momentum_form=update)"


def opt_module(tmp_path: Path, optimizer: str, schedule: str = "constant") -> types.ModuleType:
    text = OPT_SPEC.format(optimizer=optimizer, schedule=schedule)
    return import_script(spec_script(text, tmp_path))


def twin_models(module: types.ModuleType) -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = module.Net()
    module.init_parameters(model)
    return model, copy.deepcopy(model)


@pytest.mark.parametrize(
    "schedule,agrees",
    [("constant", True), ("step(every=2, gamma=0.1, unit=step)", False)],
    ids=["constant", "step-schedule"],
)
def test_sgd_update_form_against_torch_sgd(tmp_path: Path, schedule: str, agrees: bool) -> None:
    """v = mu*v - lr*g; w += v equals torch's v = mu*v + g; w -= lr*v only while lr is constant."""
    module = opt_module(tmp_path, SGD_UPDATE, schedule)
    ours, theirs = twin_models(module)
    start = copy.deepcopy(ours)
    optimizer = module.make_optimizer(ours)
    assert type(optimizer).__name__ == "CanonicalOptimizer"
    train_steps(module, optimizer, ours, 5)
    train_steps(module, torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9), theirs, 5)
    assert max_param_diff(ours, start) > 0.05  # five steps really moved the weights
    diff = max_param_diff(ours, theirs)
    if agrees:
        assert diff < 1e-6
    else:
        assert diff > 1e-2  # the velocity keeps the old learning rate: the IR's whole point


def test_adam_decoupled_equals_adamw(tmp_path: Path) -> None:
    """weight_decay_mode=decoupled is AdamW's w *= 1 - lr*wd beside the Adam step."""
    optimizer = "adam(lr=0.01, weight_decay=0.1, weight_decay_mode=decoupled)"
    module = opt_module(tmp_path, optimizer)
    ours, theirs = twin_models(module)
    train_steps(module, module.make_optimizer(ours), ours, 5)
    adamw = torch.optim.AdamW(theirs.parameters(), lr=0.01, eps=1e-8, weight_decay=0.1)
    train_steps(module, adamw, theirs, 5)
    assert max_param_diff(ours, theirs) < 1e-6


# the learning rate changes between steps, as under a schedule: the forms differ only then
LRS = [0.01, 0.01, 0.003, 0.02, 0.001]
Update = Callable[[np.ndarray, list[np.ndarray]], np.ndarray]


def adam_uncorrected(w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """TF1/Keras 2 Adam: eps added to sqrt(v) before the bias correction folded into lr."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, (lr, g) in enumerate(zip(LRS, grads, strict=True), start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        w = w - lr * math.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (np.sqrt(v) + 1e-3)
    return w


def rmsprop_inside(w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """RMSprop with eps inside the square root; momentum buffer on the scaled step, then lr."""
    v, buf = np.zeros_like(w), np.zeros_like(w)
    for lr, g in zip(LRS, grads, strict=True):
        v = 0.9 * v + 0.1 * g * g
        buf = 0.5 * buf + g / np.sqrt(v + 1e-3)
        w = w - lr * buf
    return w


def sgd_update_decoupled(w: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """Keras-style SGD (v = mu*v - lr*g; w += v) beside decoupled decay w -= lr*wd*w."""
    v = np.zeros_like(w)
    for lr, g in zip(LRS, grads, strict=True):
        v = 0.9 * v - lr * g
        w = w - lr * 0.5 * w + v
    return w


CANONICAL: dict[str, tuple[str, Update]] = {
    "adam-uncorrected": ("adam(lr=0.01, eps=1e-3, eps_placement=uncorrected)", adam_uncorrected),
    "rmsprop-inside": (
        "rmsprop(lr=0.01, rho=0.9, eps=1e-3, momentum=0.5, eps_placement=inside)",
        rmsprop_inside,
    ),
    "sgd-update-decoupled": (
        "sgd(lr=0.01, momentum=0.9, momentum_form=update, weight_decay=0.5,"
        " weight_decay_mode=decoupled)",
        sgd_update_decoupled,
    ),
}


@pytest.mark.parametrize("case", list(CANONICAL))
def test_canonical_optimizer_formula(tmp_path: Path, case: str) -> None:
    """The written-out update on fixed gradients equals the formula in float64 NumPy."""
    optimizer, reference = CANONICAL[case]
    module = opt_module(tmp_path, optimizer)
    rng = np.random.RandomState(0)
    w0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in LRS]
    w = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float32))
    opt = module.CanonicalOptimizer([w])
    for lr, g in zip(LRS, grads, strict=True):
        opt.param_groups[0]["lr"] = lr  # as the training loop sets it
        w.grad = torch.tensor(g, dtype=torch.float32)
        opt.step()
    expected = reference(w0, grads)
    assert np.abs(expected - w0).max() > 1e-2  # the steps really moved the weights
    np.testing.assert_allclose(w.detach().numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", [SGD_UPDATE, *(opt for opt, _ in CANONICAL.values())])
def test_canonical_optimizer_script_runs(tmp_path: Path, case: str) -> None:
    module = opt_module(tmp_path, case)
    assert "CanonicalOptimizer(" in Path(module.__file__).read_text()
    module.main(
        [
            "--data",
            "synthetic",
            "--max-steps",
            "3",
            "--warmup",
            "1",
            "--device",
            "cpu",
            "--results",
            str(tmp_path / "r.json"),
        ]
    )
    results = json.loads((tmp_path / "r.json").read_text())
    assert results["steps"] == 3 and math.isfinite(results["final_loss"])


# ---- explicit padding ------------------------------------------------------------------------

PAD_SPEC = """
model pad {{
    input x: float32[2, 7, 8]
    {layer}
}}
train {{
    loss = mse
}}
"""


def windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """(N, C, OH, OW, KH, KW) views of every window of an already padded NCHW array."""
    view = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1]]


def nan_pad(x: np.ndarray, pads: tuple[tuple[int, int], tuple[int, int]]) -> np.ndarray:
    return np.pad(x, ((0, 0), (0, 0), *pads), constant_values=np.nan)


Pads = tuple[tuple[int, int], tuple[int, int]]
Reference = Callable[[np.ndarray, Any], np.ndarray]


def conv(pads: Pads, kernel: int, stride: int) -> Reference:
    """Cross-correlation of the zero-padded input with conv2d_1's weight, plus its bias."""

    def reference(x: np.ndarray, net: Any) -> np.ndarray:
        padded = np.pad(x, ((0, 0), (0, 0), *pads))
        weight = net.conv2d_1.weight.detach().double().numpy()
        bias = net.conv2d_1.bias.detach().double().numpy()
        view = windows(padded, (kernel, kernel), (stride, stride))
        return np.einsum("nchwij,ocij->nohw", view, weight) + bias[None, :, None, None]

    return reference


def pool(pads: Pads, kernel: int, stride: int, reduce: Callable[..., np.ndarray]) -> Reference:
    """`reduce` over every window; padded cells are NaN, so nanmean/nanmax skip them."""

    def reference(x: np.ndarray, net: Any) -> np.ndarray:
        return reduce(windows(nan_pad(x, pads), (kernel, kernel), (stride, stride)), axis=(4, 5))

    return reference


def ceil_pool(
    pads: Pads,
    overhang: tuple[int, int],
    kernel: int,
    reduce: Callable[..., np.ndarray],
    pad_value: float = np.nan,
) -> Reference:
    """A ceil-rounded pool at stride 2: padded cells hold `pad_value` (0 when they count, NaN
    when skipped), the `overhang` (rows, columns) past the padding is NaN (never counted), and
    the windows round down over the whole."""

    def reference(x: np.ndarray, net: Any) -> np.ndarray:
        padded = np.pad(x, ((0, 0), (0, 0), *pads), constant_values=pad_value)
        padded = nan_pad(padded, ((0, overhang[0]), (0, overhang[1])))
        return reduce(windows(padded, (kernel, kernel), (2, 2)), axis=(4, 5))

    return reference


PAD_CASES: dict[str, tuple[str, Reference]] = {
    "conv-asymmetric": (
        "conv2d(3, kernel=3, stride=2, padding=[[0, 2], [1, 0]])",
        conv(((0, 2), (1, 0)), 3, 2),
    ),
    # TensorFlow's `same` rule: out = ceil(7/2) = 4 rows need 3 padded rows, the extra one after
    "conv-same-stride-2": (
        "conv2d(3, kernel=4, stride=2, padding=same)",
        conv(((1, 2), (1, 1)), 4, 2),
    ),
    "avgpool-exclude-pad-asymmetric": (
        "avgpool2d(2, stride=1, padding=[[1, 0], [0, 1]], count_pad=false)",
        pool(((1, 0), (0, 1)), 2, 1, np.nanmean),
    ),
    "avgpool-exclude-pad-3x3-stride-2": (
        "avgpool2d(3, stride=2, padding=[[2, 1], [0, 2]], count_pad=false)",
        pool(((2, 1), (0, 2)), 3, 2, np.nanmean),
    ),
    "avgpool-exclude-pad-symmetric": (
        "avgpool2d(3, stride=2, padding=1, count_pad=false)",
        pool(((1, 1), (1, 1)), 3, 2, np.nanmean),
    ),
    "avgpool-count-pad-asymmetric": (
        "avgpool2d(2, stride=1, padding=[[1, 0], [0, 1]], count_pad=true)",
        pool(((1, 0), (0, 1)), 2, 1, lambda v, axis: np.nan_to_num(v, nan=0.0).mean(axis=axis)),
    ),
    "maxpool-asymmetric": (
        "maxpool2d(2, padding=[[0, 1], [1, 0]])",
        pool(((0, 1), (1, 0)), 2, 2, np.nanmax),
    ),
    "zeropad-asymmetric": (
        "zeropad2d([[1, 0], [0, 2]])",
        lambda x, net: np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 2))),
    ),
    # ceil rounding over padding nn.MaxPool2d/AvgPool2d do not take (overhang by hand)
    "maxpool-ceil-asymmetric": (
        "maxpool2d(3, stride=2, padding=[[1, 0], [0, 1]], rounding=ceil)",
        ceil_pool(((1, 0), (0, 1)), (1, 0), 3, np.nanmax),
    ),
    # the ceil window that would start in the after-padding is dropped: 4 columns, not 5
    "maxpool-ceil-no-window-in-padding": (
        "maxpool2d(3, stride=2, padding=[[0, 0], [0, 2]], rounding=ceil)",
        ceil_pool(((0, 0), (0, 2)), (0, 0), 3, np.nanmax),
    ),
    "avgpool-ceil-count-pad-over-half": (
        "avgpool2d(3, stride=2, padding=[[2, 1], [2, 0]], rounding=ceil, count_pad=true)",
        ceil_pool(((2, 1), (2, 0)), (1, 1), 3, np.nanmean, pad_value=0.0),
    ),
    "avgpool-ceil-exclude-pad-over-half": (
        "avgpool2d(3, stride=2, padding=[[2, 1], [2, 0]], rounding=ceil, count_pad=false)",
        ceil_pool(((2, 1), (2, 0)), (1, 1), 3, np.nanmean),
    ),
    "avgpool-ceil-count-pad-asymmetric": (
        "avgpool2d(2, stride=2, padding=[[0, 1], [1, 0]], rounding=ceil, count_pad=true)",
        ceil_pool(((0, 1), (1, 0)), (0, 1), 2, np.nanmean, pad_value=0.0),
    ),
}


@pytest.mark.parametrize("case", list(PAD_CASES))
def test_explicit_padding_matches_numpy(tmp_path: Path, case: str) -> None:
    layer, reference = PAD_CASES[case]
    model_ir = build(PAD_SPEC.format(layer=layer), "<test>").model
    module = import_script(write_script(model_ir, tmp_path))
    torch.manual_seed(0)
    net = module.Net()
    module.init_parameters(net)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_()  # zero biases would hide a bias bug
    x = np.random.RandomState(0).standard_normal((2, 2, 7, 8))
    with torch.no_grad():
        got = net.eval()(torch.tensor(x, dtype=torch.float32)).double().numpy()
    expected = reference(x, net)
    assert got.shape == (2, *model_ir.output_shape) == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# ---- real files through the script -----------------------------------------------------------


def test_cifar_vgg_reads_cifar_batches(tmp_path: Path) -> None:
    write_cifar(tmp_path / "data" / "cifar-10-batches-py", np.random.RandomState(0))
    script = write_script(build_file(str(ROOT / "examples/cifar_vgg.dl")).model, tmp_path)
    results = run_script(script, tmp_path, "--data", "data", "--epochs", "1", "--batch-size", "4")
    assert results["data"] == "cifar10"
    assert results["steps"] == 3  # 10 training images in batches of 4
    assert results["test_samples"] == 3 and math.isfinite(results["test_loss"])


def test_imdb_gru_reads_imdb_npz(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    write_imdb(tmp_path / "data", [[1, 2, 3], [4] * 200, [29999, 5]], [[7, 8], [9]])
    script = write_script(build_file(str(ROOT / "examples/imdb_gru.dl")).model, tmp_path)
    results = run_script(script, tmp_path, "--data", "data", "--epochs", "2", "--batch-size", "2")
    assert results["data"] == "imdb"
    assert results["steps"] == 4 and len(results["epoch_losses"]) == 2
    assert results["test_samples"] == 2 and math.isfinite(results["test_loss"])


def test_pm25_lstm_reads_its_npz_in_order(tmp_path: Path) -> None:
    """The user's arrays (10 training hours, 5 test hours) in batches of 4: 3 updates an epoch.
    shuffle = false: two runs from the same weights with different seeds train identically."""
    write_pm25(tmp_path / "pm25.npz", 10, 5, np.random.RandomState(0))
    script = write_script(build_file(str(ROOT / "examples/pm25_lstm.dl")).model, tmp_path)
    common = ["--data", "pm25.npz", "--epochs", "2", "--batch-size", "4", "--warmup", "0"]
    first = run_script(script, tmp_path, *common, "--weights-out", "w.npz")
    assert first["data"] == "npz" and first["test_accuracy"] is None
    assert first["steps"] == 6 and len(first["epoch_losses"]) == 2
    assert first["test_samples"] == 5 and math.isfinite(first["test_loss"])
    seeds = [
        run_script(script, tmp_path, *common, "--weights-in", "w.npz", "--seed", seed)
        for seed in ("1", "2")
    ]
    assert seeds[0]["epoch_losses"] == seeds[1]["epoch_losses"]


RESET_BEFORE = """
model reset_before {
    input frames: float32[40, 3]
    gru(4, layers=2, reset_after=false, recurrent_bias=true, readout=sequence)
    flatten
    dense(2)
}
train { batch = 4 }
"""


def _backward_nodes(tensor: Any) -> list[str]:
    """The names of the autograd nodes `tensor` was computed through."""
    seen, names, todo = set(), [], [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.append(type(node).__name__)
        todo.extend(next_node for next_node, _ in node.next_functions)
    return names


def test_reset_before_gru_reads_its_steps_through_one_split(tmp_path: Path) -> None:
    """GRUResetBefore splits each layer's input projection into its steps once (unbind), so the
    backward stacks the steps' gradients: indexing x[:, t] per step would add a zero-filled
    gradient of the whole projection for every step (time quadratic in the sequence length)."""
    module = import_script(spec_script(RESET_BEFORE, tmp_path))
    gru = module.GRUResetBefore(3, 4, num_layers=2, bias=True, recurrent_bias=True)
    steps, _ = gru(torch.randn(2, 40, 3))
    nodes = _backward_nodes(steps)
    assert nodes.count("UnbindBackward0") == 2  # one per layer
    assert nodes.count("SelectBackward0") == 0


def test_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    script = write_script(build_file(str(ROOT / "examples/mnist_mlp.dl")).model, tmp_path)
    command = [sys.executable, str(script), "--device", "cpu", "--data", "nowhere"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "--data nowhere: no such folder" in done.stderr
    assert "expected there: mnist.pkl.gz or the idx files" in done.stderr


# ---- real MNIST ------------------------------------------------------------------------------


def test_mnist_mlp_learns_real_mnist_in_one_epoch(tmp_path: Path) -> None:
    if not (MNIST_DIR / "mnist.pkl.gz").is_file():
        pytest.skip("no MNIST in .cache/mnist: run `make .cache/mnist/mnist.pkl.gz`")
    script = write_script(build_file(str(ROOT / "examples/mnist_mlp.dl")).model, tmp_path)
    start = time.perf_counter()
    results = run_script(script, tmp_path, "--data", str(MNIST_DIR), "--epochs", "1")
    seconds = time.perf_counter() - start
    print(f"mnist_mlp, 1 epoch on CPU: accuracy {results['test_accuracy']:.4f} in {seconds:.1f} s")
    assert results["data"] == "mnist"
    assert results["steps"] == 469  # ceil(60000 / 128)
    assert results["test_samples"] == 10000
    accuracy = results["test_accuracy"]
    assert accuracy >= 0.95, f"accuracy {accuracy:.4f} after one epoch"


# ---- names a layer's attribute must not take -------------------------------------------------


def _public(names: set[str]) -> set[str]:
    """The names a layer label could equal (labels never start with "_")."""
    return {name for name in names if not name.startswith("_")}


def test_reserved_names_cover_nn_module_and_the_generated_net(tmp_path: Path) -> None:
    """Every attribute of a fresh nn.Module (instance and class) and of the generated Net (its
    layers' aside) is in the static list the backend escapes labels from: a new torch attribute
    fails here."""
    reserved = PyTorchBackend.RESERVED_NAMES
    module = torch.nn.Module()
    assert _public(set(dir(module)) | set(vars(module))) <= reserved
    net = import_script(spec_script(EVERY_MODULE_KIND, tmp_path)).Net()
    layers = {name for name, _ in net.named_children()}
    assert _public(set(dir(net)) | set(vars(net))) - layers <= reserved


def test_reserved_labels_train_and_round_trip_canonical_weights(tmp_path: Path) -> None:
    """Labels equal to nn.Module attributes become other attributes; the npz keeps the labels."""
    spec = build(RESERVED_LABELS, "<test>").model
    script = write_script(spec, tmp_path)
    steps = ["--data", "synthetic", "--max-steps", "1", "--warmup", "0"]
    first = run_script(script, tmp_path, *steps, "--weights-out", "w.npz")
    with np.load(tmp_path / "w.npz") as weights:
        assert sorted(weights.files) == sorted(p.name for p in spec.params)
    again = run_script(script, tmp_path, "--weights-in", "w.npz", "--epochs", "0", results="2.json")
    assert math.isclose(again["test_loss"], first["test_loss"], rel_tol=1e-6)


EVERY_MODULE_KIND = """
model every_kind {
    input image: float32[2, 6, 6]
    conv2d(3, kernel=2) -> relu
    avgpool2d(2, padding=[[0, 1], [0, 1]])
    flatten
    dense(4)
}
train {
    batch = 4
}
"""
RESERVED_LABELS = """
model reserved {
    input x: float32[6]
    forward: dense(5) -> relu
    training: dropout(0.5)
    to: dense(4)
    forward_: dense(3)
}
train {
    batch = 4
    data = synthetic(train_size=8, test_size=8)
}
"""


# ---- performance switches --------------------------------------------------------------------
SWITCH_SPEC = """
model switches {
    input image: float32[3, 12, 12]
    conv2d(6, kernel=3, padding=same) -> relu
    maxpool2d(2)
    conv2d(8, kernel=3) -> relu
    flatten
    dense(10)
}
train {
    loss = softmax_cross_entropy
    optimizer = sgd(lr=0.05, momentum=0.9)
    batch = 16
    epochs = 1
    seed = 3
}
"""


def _switch_run(script: Path, folder: Path, name: str, *flags: str) -> tuple[dict, dict]:
    """Eight steps on synthetic data with `flags`: the results and the trained weights."""
    results = run_script(
        script, folder, "--data", "synthetic", "--max-steps", "8", "--warmup", "2",
        "--weights-out", f"{name}.npz", *flags, results=f"{name}.json",
    )  # fmt: skip
    with np.load(folder / f"{name}.npz") as weights:
        return results, {k: weights[k] for k in weights.files}


def test_switches_are_recorded_and_train_the_same_model(tmp_path: Path) -> None:
    """Channels-last and the fused optimiser (the defaults for a convolutional model) train the
    same weights as contiguous memory and the per-parameter loop, to float32 rounding; bf16
    autocast trains near them, not equal; each run's results say what was in force."""
    script = spec_script(SWITCH_SPEC, tmp_path)
    fast, w_fast = _switch_run(script, tmp_path, "default")
    plain, w_plain = _switch_run(
        script, tmp_path, "plain", "--memory-format", "contiguous", "--no-fused-optimizer"
    )
    bf16, w_bf16 = _switch_run(script, tmp_path, "bf16", "--amp", "bf16")
    assert (fast["memory_format"], fast["fused_optimizer"], fast["mixed_precision"]) == (
        "channels_last",
        True,
        "off",
    )
    assert (plain["memory_format"], plain["fused_optimizer"]) == ("contiguous", False)
    assert bf16["mixed_precision"] == "bf16" and not fast["jit_compile"]
    for r in (fast, plain, bf16):
        assert validate_results(r) == []
    moved = max(float(np.abs(w_fast[k] - w_plain[k]).max()) for k in w_fast)
    _, w_one = _switch_run(script, tmp_path, "one", "--max-steps", "1")
    trained = max(float(np.abs(w_plain[k] - w_one[k]).max()) for k in w_plain)  # steps 2 to 8
    off_bf16 = max(float(np.abs(w_bf16[k] - w_plain[k]).max()) for k in w_fast)
    assert moved < 1e-5, moved
    # bf16 really ran, and still trained the same model: its weights stay within a quarter of
    # the distance steps 2 to 8 moved them (SGD: an update proportional to the gradient; Adam's
    # normalised steps turn bf16's rounding of near-zero gradients into whole steps)
    assert 1e-5 < off_bf16 < 0.25 * trained, (off_bf16, trained)  # measured: 0.13


def test_amp_fp16_refuses_the_cpu(tmp_path: Path) -> None:
    script = spec_script(SWITCH_SPEC, tmp_path)
    command = [sys.executable, str(script), "--device", "cpu", "--amp", "fp16", "--max-steps", "1"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "--amp fp16 needs a GPU" in done.stderr


def test_cuda_graphs_refuse_the_cpu(tmp_path: Path) -> None:
    """--cuda-graphs records GPU kernels: on the CPU the script stops at once with the reason
    (exit 1, no results written)."""
    script = spec_script(SWITCH_SPEC, tmp_path)
    command = [sys.executable, str(script), "--device", "cpu", "--cuda-graphs", "--max-steps", "1"]
    command += ["--results", "r.json"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "--cuda-graphs needs a GPU" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r.json").exists()


# Adam (capturable: its step count on the GPU), batch norm's running statistics, and a learning
# rate halved every 6 updates: a recorded run drops its graph twice and records again (the batch
# norm after the convolution's ReLU: a bias just before it would have a gradient of rounding
# noise, which Adam's normalised step turns into whole steps that differ between two runs)
RECORDED_SPEC = """
model recorded {
    input image: float32[3, 12, 12]
    conv2d(6, kernel=3, padding=same) -> relu
    maxpool2d(2) -> batchnorm
    flatten
    dense(10)
}
train {
    loss = softmax_cross_entropy
    optimizer = adam(lr=0.01)
    schedule = step(every=6, gamma=0.5, unit=step)
    batch = 16
    epochs = 1
    seed = 3
}
"""
# cuDNN's GRU under a graph, and RMSprop's capturable update (its foreach form)
RECORDED_RNN_SPEC = """
model recorded_rnn {
    input tokens: int32[10]
    embedding(30, 8)
    gru(6, readout=last)
    dense(3)
}
train {
    loss = softmax_cross_entropy
    optimizer = rmsprop(lr=0.01)
    batch = 16
    epochs = 1
    seed = 3
}
"""
NO_GPU = "no CUDA GPU here: --cuda-graphs runs only on a GPU"


def test_cuda_graphs_refuse_an_optimizer_counting_steps_in_python(tmp_path: Path) -> None:
    """A written-out optimiser with a step count cannot be recorded: --cuda-graphs alone stops
    with the reason and the way out (before it asks for a GPU), no traceback, no results."""
    text = SWITCH_SPEC.replace(
        "sgd(lr=0.05, momentum=0.9)", "adam(lr=0.01, eps_placement=uncorrected)"
    )
    script = spec_script(text, tmp_path)
    command = [sys.executable, str(script), "--device", "cpu", "--cuda-graphs", "--max-steps", "1"]
    command += ["--results", "r.json"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "counts its steps in Python" in done.stderr, done.stderr
    assert "use --compile --cuda-graphs" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "r.json").exists()


def _recorded_run(script: Path, folder: Path, name: str, *flags: str) -> tuple[dict, dict]:
    """16 steps on the GPU: the results and the trained weights."""
    results = run_script(
        script, folder, "--device", "gpu", "--data", "synthetic", "--max-steps", "16",
        "--warmup", "2", "--weights-out", f"{name}.npz", *flags, results=f"{name}.json",
    )  # fmt: skip
    with np.load(folder / f"{name}.npz") as weights:
        return results, {k: weights[k] for k in weights.files}


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
@pytest.mark.parametrize(
    "spec",
    [SWITCH_SPEC, RECORDED_SPEC, RECORDED_RNN_SPEC],
    ids=["sgd", "adam-batchnorm-step", "gru-rmsprop"],
)
def test_recorded_steps_train_the_same_weights_as_eager_on_a_gpu(tmp_path: Path, spec: str) -> None:
    """On a GPU, --cuda-graphs records the whole step (3 eager steps, then replays; again after
    each change of the learning rate) and trains eager's weights to float32 rounding (Adam's
    capturable bias correction rounds in float32 on the GPU); the results say so."""
    script = spec_script(spec, tmp_path)
    eager, w_eager = _recorded_run(script, tmp_path, "eager")
    graphs, w_graphs = _recorded_run(script, tmp_path, "graphs", "--cuda-graphs")
    assert graphs["cuda_graphs"] and not graphs["jit_compile"] and eager["cuda_graphs"] is False
    assert validate_results(graphs) == []
    # torch's own count of the tensors' GPU memory at its peak: the weights at least
    assert graphs["device_peak_memory_mb"] > 0 and eager["device_peak_memory_mb"] > 0
    _, w_three = _recorded_run(script, tmp_path, "three", "--max-steps", "3")
    trained = max(float(np.abs(w_eager[k] - w_three[k]).max()) for k in w_eager)
    off = max(float(np.abs(w_graphs[k] - w_eager[k]).max()) for k in w_eager)
    assert off < 1e-4 and trained > 1e-3, (off, trained)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_compiled_cuda_graphs_train_the_same_weights_as_eager_on_a_gpu(tmp_path: Path) -> None:
    """On a GPU, --compile --cuda-graphs (torch.compile's reduce-overhead mode) trains the eager
    weights to float32 rounding and says so in the results."""
    script = spec_script(SWITCH_SPEC, tmp_path)
    eager, w_eager = _switch_run(script, tmp_path, "eager", "--device", "gpu")
    flags = ("--device", "gpu", "--compile", "--cuda-graphs")
    graphs, w_graphs = _switch_run(script, tmp_path, "graphs", *flags)
    assert graphs["cuda_graphs"] and graphs["jit_compile"] and eager["cuda_graphs"] is False
    assert validate_results(graphs) == []
    assert max(float(np.abs(w_graphs[k] - w_eager[k]).max()) for k in w_eager) < 1e-4


def test_compile_trains_the_same_weights_as_eager(tmp_path: Path) -> None:
    """--compile (torch.compile with inductor, a C++ compiler on the CPU) runs the training
    forward compiled: the results say so, and the weights equal eager's to float32 rounding."""
    script = spec_script(SWITCH_SPEC, tmp_path)
    eager, w_eager = _switch_run(script, tmp_path, "eager")
    compiled, w_compiled = _switch_run(script, tmp_path, "compiled", "--compile")
    assert compiled["jit_compile"] and not eager["jit_compile"]
    assert max(float(np.abs(w_compiled[k] - w_eager[k]).max()) for k in w_eager) < 1e-5
