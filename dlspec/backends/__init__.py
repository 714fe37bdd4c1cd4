"""The registry of targets: name -> backend class. Adding a target means adding a line here."""

from __future__ import annotations

from dlspec.backends.base import Backend
from dlspec.backends.cntk import CNTKBackend
from dlspec.backends.keras import KerasBackend
from dlspec.backends.mxnet import MXNetBackend
from dlspec.backends.pytorch import PyTorchBackend
from dlspec.backends.tensorflow import TensorFlowBackend
from dlspec.errors import UsageError

TARGETS: dict[str, type[Backend]] = {
    "pytorch": PyTorchBackend,
    "keras": KerasBackend,
    "tensorflow": TensorFlowBackend,
    "mxnet": MXNetBackend,
    "cntk": CNTKBackend,
}


def get_backend(name: str) -> Backend:
    """An instance of the named target; UsageError for an unknown name."""
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r} (known: {', '.join(TARGETS)})")
    return TARGETS[name]()
