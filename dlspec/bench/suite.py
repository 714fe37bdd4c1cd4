"""The default benchmark suite: the seed benchmarks' specs, found in a dlspec checkout's examples/."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

# the multi-framework notebooks' CIFAR-10 VGG and IMDB GRU, ResNet-50 feature extraction
# (inference), the Keras examples and the three-framework comparison's two models; the first
# seven come first (a GPU session short of time runs the suite in this order)
DEFAULT_SUITE = (
    "cifar_vgg",
    "imdb_gru",
    "resnet50",
    "mnist_mlp",
    "mnist_cnn",
    "keras_cifar10_cnn",
    "comparison_mnist_cnn",
    "mnist_hierarchical_rnn",
    "babi_rnn",
    "daquar_vqa",
)


def examples_folder(cwd: Optional[Path] = None) -> Optional[Path]:
    """examples/ of the checkout dlspec runs from, else of the working folder; None if neither."""
    package_root = Path(__file__).resolve().parents[2]
    for folder in (package_root / "examples", (cwd or Path.cwd()) / "examples"):
        if all((folder / f"{name}.dl").is_file() for name in DEFAULT_SUITE):
            return folder
    return None


def default_specs(cwd: Optional[Path] = None) -> list[str]:
    """The suite's spec paths; an empty list when no examples/ folder holds them all."""
    folder = examples_folder(cwd)
    if folder is None:
        return []
    here = (cwd or Path.cwd()).resolve()
    if folder.resolve().is_relative_to(here):  # as a user in the checkout would name them
        folder = folder.resolve().relative_to(here)
    return [str(folder / f"{name}.dl") for name in DEFAULT_SUITE]
