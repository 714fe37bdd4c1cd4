"""The interface every generated script shares: its flags, verify's files, the results JSON schema."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Union

# Standard library only: benchmarks/run.py reads it where only the frameworks are installed.

TARGET_NAMES = ("pytorch", "tensorflow", "keras", "mxnet", "cntk")
RUNTIME_NAMES = (
    "pytorch",
    "tensorflow",
    "keras[tensorflow]",
    "keras[jax]",
    "keras[torch]",
    "mxnet",
    "cntk",
)
TRAINING = "training"  # the spec has a train block: the script trains, then evaluates
INFERENCE = "inference"  # it has none: the script times forward passes in evaluation mode
KINDS = (TRAINING, INFERENCE)
BOTH = KINDS

# ---- dlspec verify: the files in DIR and their keys -------------------------------------------
WEIGHTS_FILE = "weights.npz"  # the canonical start weights, by canonical parameter name
BATCHES_FILE = "batches.npz"
# keys of batches.npz: per input, its evaluation batch (EVAL + name) and its training batches
# stacked over the steps (TRAIN + name); the training labels (TRAIN_LABELS)
EVAL = "eval:"
TRAIN = "train:"
TRAIN_LABELS = "train_labels"
# keys of the script's answer, DIR/<--verify-name>.npz: the evaluation batch's output, each
# step's loss and learning rate, and every canonical parameter (PARAM + name) after the steps
FORWARD = "forward"
LOSSES = "losses"
LRS = "lrs"
PARAM = "param:"

# ---- flags ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Constant:
    """A flag default that is one of the script's constants (the spec's value)."""

    name: str


@dataclass(frozen=True)
class Flag:
    """One command-line flag: name, type (int, str, or switch: store_true), default, help."""

    name: str
    type: str
    default: Union[None, int, str, Constant]
    help: str
    choices: tuple[str, ...] = ()
    metavar: str = ""
    # the attribute of the parsed arguments when not the name's (--max-steps -> max_steps)
    attribute: str = ""
    # an int flag's smallest value; its largest is a spec's (limits.MAX_INT), so that a seed
    # plus an epoch count still seeds NumPy
    low: int = 0

    @property
    def dest(self) -> str:
        """The attribute argparse gives it (--max-steps -> max_steps, unless `attribute`)."""
        return self.attribute or self.name[2:].replace("-", "_")

    def argument(self) -> str:
        """The arguments of its parser.add_argument call, as Python source."""
        parts = [repr(self.name)]
        if self.type == "switch":
            parts.append('action="store_true"')
        elif self.type == "int":
            parts.append(f"type=int_from({self.low})")
        if self.choices:
            parts.append(f"choices={self.choices!r}")
        if isinstance(self.default, Constant):
            parts.append(f"default={self.default.name}")
        elif self.default is not None and self.type != "switch":
            parts.append(f"default={self.default!r}")
        if self.metavar:
            parts.append(f"metavar={self.metavar!r}")
        if self.attribute:
            parts.append(f"dest={self.attribute!r}")
        parts.append(f"help={self.help!r}")
        return ", ".join(parts)

    def values_text(self) -> str:
        """The values it takes, as the flags table shows them."""
        if self.choices:
            return "\\|".join(self.choices)
        return f"int >= {self.low}" if self.type == "int" else self.type

    def default_text(self) -> str:
        """The default as the flags table shows it."""
        if isinstance(self.default, Constant):
            return f"the spec's ({self.default.name})"
        if self.type == "switch":
            return "off"
        return "none" if self.default is None else str(self.default).replace("{target}", "<target>")


DEVICES = ("auto", "cpu", "gpu")
# every script accepts these; help texts hold no % (argparse would format them)
# fmt: off
FLAGS: tuple[Flag, ...] = (
    Flag("--epochs", "int", Constant("EPOCHS"), "passes over the training set"),
    Flag("--batch-size", "int", Constant("BATCH_SIZE"), "samples per batch", low=1),
    Flag("--device", "str", "auto", "auto: a GPU when the framework sees one", DEVICES),
    Flag("--data", "str", "synthetic", "synthetic, or the folder of the spec's dataset (npz: the file)"),
    Flag("--max-steps", "int", 0, "stop after this many steps (0: no limit; inference: one pass)"),
    Flag("--warmup", "int", 5, "first steps left out of the timing"),
    Flag("--seed", "int", Constant("SEED"), "seed of the initialisation, shuffling and synthetic data"),
    Flag("--weights-in", "str", None, "start from these canonical weights", metavar="NPZ"),
    Flag("--weights-out", "str", None, "write the canonical weights after the run", metavar="NPZ"),
    Flag("--results", "str", None, "write the results JSON here (default: stdout)", metavar="JSON"),
    Flag("--verify", "str", None, "dlspec verify: run on the files it left in DIR", metavar="DIR"),
    Flag("--verify-name", "str", "result_{target}", "verify's result file in DIR, without .npz"),
    Flag("--verify-precision", "str", "float32", "dlspec verify: the dtype of the model, data and optimiser", ("float32", "float64")),
)
# the flags only one target has
TARGET_FLAGS: dict[str, tuple[Flag, ...]] = {
    "pytorch": (
        Flag("--memory-format", "str", "auto", "memory layout of 4-D weights and activations (auto: channels_last when the model has convolutions)", ("auto", "channels_last", "contiguous")),
        Flag("--no-fused-optimizer", "switch", None, "update parameter by parameter instead of torch.optim's fused update"),
        Flag("--compile", "switch", None, "compile the training forward pass with torch.compile"),
        Flag("--cuda-graphs", "switch", None, "GPU, one process: the whole training step recorded as a CUDA graph and replayed (with --compile, and for inference: torch.compile's reduce-overhead mode)"),
        Flag("--amp", "str", "off", "mixed precision: the forward pass autocast to bf16 or fp16 (fp16: GPU only)", ("off", "bf16", "fp16")),
        Flag("--replica-timeout", "int", 600, "data-parallel runs (torchrun): seconds a replica waits for the others in a shared step before it stops with an error", low=1),
    ),
    "tensorflow": (
        Flag("--xla", "switch", None, "compile the steps with XLA (tf.function jit_compile)"),
        Flag("--data-format", "str", "auto", "image layout (auto: NCHW on a GPU; on the CPU NCHW needs --xla)", ("auto", "NHWC", "NCHW")),
        Flag("--replicas", "int", 1, "data-parallel runs: start this many replicas on this host, each a tf.distribute worker (MultiWorkerMirroredStrategy) with its own TF_CONFIG; where TF_CONFIG is set, this process is one worker of that cluster instead", attribute="start_replicas", low=1),
        Flag("--replica-timeout", "int", 600, "data-parallel runs (tf.distribute): seconds a replica waits for the others in a shared step before it stops with an error", low=1),
    ),
    "keras": (
        Flag("--backend", "str", None, "Keras backend (default: KERAS_BACKEND)", ("tensorflow", "jax", "torch")),
        Flag("--data-format", "str", "auto", "image layout (auto: channels_first on a GPU, and on torch for a model with convolutions)", ("auto", "channels_last", "channels_first")),
        Flag("--jit-compile", "str", "auto", "jit-compile the steps (Keras's model.compile)", ("auto", "true", "false")),
        Flag("--memory-format", "str", "auto", "torch backend, channels_first data: memory layout of the image batches (auto: channels_last when the model has convolutions)", ("auto", "channels_last", "contiguous")),
        Flag("--no-fused-optimizer", "switch", None, "torch backend: update variable by variable instead of torch.optim's fused update (where one computes the spec's form)"),
        Flag("--replicas", "int", 1, "data-parallel runs: start this many replicas on this host (jax backend: each with Keras's distribution environment, KERAS_DISTRIBUTION_*; tensorflow backend: each a tf.distribute worker with its own TF_CONFIG) and stop them all when one fails", low=1),
        Flag("--replica-timeout", "int", 600, "data-parallel runs (tensorflow backend, tf.distribute): seconds a replica waits for the others in a shared step before it stops with an error", low=1),
    ),
    "mxnet": (
        Flag("--no-hybridize", "switch", None, "run the Gluon blocks imperatively (default: hybridized)"),
        Flag("--replicas", "int", 1, "data-parallel runs: start N replicas on this host (a kvstore scheduler, a server and N workers, dist_sync)", low=1),
        Flag("--replica-timeout", "int", 600, "data-parallel runs (dist_sync kvstore): seconds a replica waits for the others in a shared step before it stops with an error", low=1),
    ),
    "cntk": (
        Flag("--replicas", "int", 1, "run as N data-parallel replicas on this host: the script again under Open MPI's mpiexec (under mpiexec already: its process count)", attribute="start_replicas", low=1),
        Flag("--replica-timeout", "int", 600, "data-parallel runs (mpiexec): seconds a replica waits for the others in a shared step before it stops with an error", low=1),
    ),
}
# fmt: on


def flags(target: str) -> tuple[Flag, ...]:
    """The flags `target`'s scripts accept: every script's (a default naming {target} made the
    target's), then the target's own."""
    own = tuple(
        (
            replace(flag, default=flag.default.format(target=target))
            if isinstance(flag.default, str)
            else flag
        )
        for flag in FLAGS
    )
    return own + TARGET_FLAGS[target]


# ---- results ----------------------------------------------------------------------------------
# a field's type: "str", "int", "float" (any JSON number), "bool", or "list[float]"
TYPES = ("str", "int", "float", "bool", "list[float]")


@dataclass(frozen=True)
class Field:
    """One field of the results JSON: its type, meaning, the kinds of spec whose results have it,
    whether it may be null (then the meaning says when), and the values a string may take."""

    type: str
    meaning: str
    kinds: tuple[str, ...] = BOTH
    nullable: bool = False
    choices: tuple[str, ...] = ()


# One flat object for every target. A field is present exactly in the results of the kinds it
# names; a fact only some runtimes can measure is nullable and null elsewhere. Units are in the
# names (seconds, samples). Timed spans have the device synchronised at both ends.
# fmt: off
RESULTS: dict[str, Field] = {
    # -- the run
    "dlspec_version": Field("str", "version of dlspec that generated the script"),
    "model": Field("str", "the spec's model name"),
    "kind": Field("str", "whether the spec has a train block (training) or none (inference)", choices=KINDS),
    "target": Field("str", "the script's target", choices=TARGET_NAMES),
    "runtime": Field("str", "the runtime it ran on, named as `dlspec verify --targets` names them", choices=RUNTIME_NAMES),
    "data": Field("str", "synthetic, or the spec's dataset (read from --data)"),
    "batch_size": Field("int", "samples per batch (--batch-size): the global batch, split evenly over the replicas"),
    "replicas": Field("int", "data-parallel replicas the run was split over (torchrun's WORLD_SIZE, TF_CONFIG's workers, Keras's processes on jax, the kvstore's workers, mpiexec's processes); 1 for one process"),
    "seed": Field("int", "seed of the initialisation, shuffling and synthetic data (--seed)"),
    "parameters": Field("int", "trained parameters (batch norm's running statistics excluded)"),
    # -- the platform
    "framework": Field("str", "the package the script is written against", choices=("torch", "tensorflow", "keras", "mxnet", "cntk")),
    "framework_version": Field("str", "its version"),
    "backend": Field("str", "the package that computes: Keras's backend, else the framework itself", choices=("torch", "tensorflow", "jax", "mxnet", "cntk")),
    "backend_version": Field("str", "its version"),
    "python_version": Field("str", "the interpreter's version"),
    "device": Field("str", "cpu, or the GPU's name"),
    "cpus": Field("int", "CPUs the process may run on"),
    "threads": Field("int", "intra-op CPU threads the backend is set to; null where it chooses at run time and does not say (TensorFlow's default, JAX)", nullable=True),
    "cuda": Field("str", "CUDA version the backend was built with; null on the CPU and where the backend does not say (JAX)", nullable=True),
    "cudnn": Field("str", "cuDNN version; null on the CPU and where the backend does not say (JAX)", nullable=True),
    "cudnn_benchmark": Field("bool", "cuDNN convolution autotuning on; null on the CPU and on JAX (XLA autotunes by itself)", nullable=True),
    "tf32_matmul": Field("bool", "TF32 allowed in float32 matmuls; null on the CPU and on JAX (see matmul_precision)", nullable=True),
    "tf32_cudnn": Field("bool", "TF32 allowed in cuDNN convolutions; null on the CPU and on JAX", nullable=True),
    "matmul_precision": Field("str", "JAX's default matmul precision (keras[jax] on a GPU); null elsewhere", nullable=True),
    "jit_compile": Field("bool", "the steps compiled as graphs by XLA or the backend's jit (TensorFlow --xla; Keras's model.jit_compile as resolved); MXNet: hybridized Gluon blocks; CNTK: always (a static graph); PyTorch: torch.compile (--compile), else false (eager)"),
    "data_format": Field("str", "layout of image activations inside the model", choices=("NCHW", "NHWC")),
    "memory_format": Field("str", "PyTorch: memory layout of 4-D weights and activations; Keras on torch with channels_first data: of the image batches (--memory-format); null elsewhere", nullable=True, choices=("channels_last", "contiguous")),
    "fused_optimizer": Field("bool", "PyTorch and Keras on torch: torch.optim's fused update in use (false with --no-fused-optimizer and for optimisers without one); null elsewhere", nullable=True),
    "mixed_precision": Field("str", "the forward pass autocast to this dtype (PyTorch --amp); off elsewhere", choices=("off", "bf16", "fp16")),
    "cuda_graphs": Field("bool", "PyTorch on a GPU: the steps replayed as CUDA graphs (--cuda-graphs); null on the CPU and elsewhere", nullable=True),
    "device_peak_memory_mb": Field("float", "the most GPU memory the framework's allocator held for tensors at once, in MiB, as the framework counts it (PyTorch, Keras on torch: torch.cuda.max_memory_allocated; TensorFlow, Keras on TensorFlow: get_memory_info's peak; Keras on JAX: the device's peak_bytes_in_use): what the run used, not a pool reserved up front; null on the CPU and where the framework does not count (MXNet, CNTK)", nullable=True),
    # -- timing
    "steps": Field("int", "updates made (training), or batches run forward (inference)"),
    "warmup_steps": Field("int", "first steps left out of the timing (--warmup, at most steps - 1)"),
    "timed_samples": Field("int", "samples in the timed steps (every replica's)"),
    "timed_seconds": Field("float", "wall seconds of the timed steps (0.0 when none ran; with replicas, the first replica's clock)"),
    "timed_until": Field("float", "wall-clock time (Unix seconds, time.time()) just after the timed steps ended: they span [timed_until - timed_seconds, timed_until] (bench averages the GPU's utilisation over it)"),
    "timed_cpu_seconds": Field("float", "CPU seconds the process used in the timed steps, user and system, every thread's (os.times; 0.0 when none ran; with replicas, the first replica's): unlike the wall clock, not counting time other processes took the CPU"),
    "samples_per_second": Field("float", "timed_samples / timed_seconds, every replica together; null when no step was timed", nullable=True),
    "samples_per_second_per_replica": Field("float", "samples_per_second / replicas; null when no step was timed", nullable=True),
    "seconds_per_1000_samples": Field("float", "1000 * timed_seconds / timed_samples; null when no step was timed", (INFERENCE,), nullable=True),
    # -- training and evaluation
    "epochs": Field("int", "epochs run (one cut short by --max-steps counts)", (TRAINING,)),
    "epoch_seconds": Field("list[float]", "wall seconds of each epoch", (TRAINING,)),
    "epoch_losses": Field("list[float]", "mean training loss of each epoch over its samples", (TRAINING,)),
    "final_loss": Field("float", "the last epoch's loss; null when no epoch ran", (TRAINING,), nullable=True),
    "test_loss": Field("float", "mean loss over the test set (synthetic data: its 8 batches), dropout off", (TRAINING,)),
    "test_samples": Field("int", "samples evaluated", (TRAINING,)),
    "test_accuracy": Field("float", "argmax hits / test samples; null unless the loss is softmax_cross_entropy", (TRAINING,), nullable=True),
}
# fmt: on


def result_fields(kind: str) -> list[str]:
    """The fields a `kind` spec's results have, in schema order."""
    return [name for name, field in RESULTS.items() if kind in field.kinds]


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    return type(value).__name__


def _fits(value: Any, type_: str) -> bool:
    """Whether a JSON value has the type (an int is a float: JSON has one number type)."""
    if type_ == "list[float]":
        return isinstance(value, list) and all(_fits(v, "float") for v in value)
    found = _type_of(value)
    return found == type_ or (type_ == "float" and found == "int")


def _problem(name: str, value: Any, field: Field) -> str:
    """'' when `value` is valid for `field`, else what is wrong."""
    if value is None:
        return "" if field.nullable else f"{name}: null, expected {field.type}"
    if not _fits(value, field.type):
        return f"{name}: expected {field.type}, got {_type_of(value)} {value!r:.60}"
    if field.choices and value not in field.choices:
        return f"{name}: {value!r} is not one of {', '.join(field.choices)}"
    return ""


def _consistency(obj: dict[str, Any]) -> list[str]:
    """What the fields say about each other (checked once each field is valid)."""
    problems = []
    if obj["warmup_steps"] > max(obj["steps"] - 1, 0):
        problems.append(f"warmup_steps: {obj['warmup_steps']} of {obj['steps']} steps")
    if obj["kind"] == TRAINING:
        runs = {len(obj["epoch_seconds"]), len(obj["epoch_losses"]), obj["epochs"]}
        if len(runs) > 1:
            problems.append(
                f"epochs: {obj['epochs']}, but {len(obj['epoch_seconds'])} epoch_seconds and "
                f"{len(obj['epoch_losses'])} epoch_losses"
            )
    for name in ("timed_seconds", "timed_cpu_seconds"):
        seconds = obj[name]
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            problems.append(f"{name}: {seconds!r} is not a duration")
    return problems


def validate_results(obj: Any) -> list[str]:
    """The ways `obj` (a parsed results JSON) breaks the schema: missing, unexpected, null or
    mistyped fields, then inconsistent ones; empty when it is valid."""
    if not isinstance(obj, dict):
        return [f"results: expected a JSON object, got {_type_of(obj)}"]
    kind = obj.get("kind")
    known = kind in KINDS
    # a kind of its own decides the fields; without one, only those of every kind are checked
    expected = result_fields(kind) if known else [n for n in RESULTS if RESULTS[n].kinds == BOTH]
    problems = []
    for name in expected:
        if name not in obj:
            problems.append(f"{name}: missing")
        else:
            problems.append(_problem(name, obj[name], RESULTS[name]))
    for name in obj:
        if name not in RESULTS:
            problems.append(f"{name}: not a results field")
        elif known and name not in expected:
            problems.append(f"{name}: a field of {RESULTS[name].kinds[0]} results only")
    problems = [p for p in problems if p]
    if not problems:
        problems = _consistency(obj)
    return problems
