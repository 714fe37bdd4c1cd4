"""Where torch's CPU kernels go wrong on a layout, for the targets that compute with torch."""

from __future__ import annotations

from dlspec.ir.model import Layer


def channels_last_breaks(layer: Layer) -> bool:
    """A strided 1x1 convolution reading fewer than 8 channels, which torch 2.13.0's oneDNN CPU
    kernels get wrong on channels-last memory (measured on an AMD EPYC): with 3, 4 or 6 input
    channels the backward can abort with heap corruption, and with 2 to 4 the weight gradient is
    off by half its size; 8 and more channels, 3x3 and unstrided ones agree with the contiguous
    layout. PyTorch's --memory-format auto and Keras's --data-format auto on torch avoid it."""
    if layer.op != "conv2d":
        return False
    small = layer.in_shape[0] < 8
    return small and tuple(layer["kernel"]) == (1, 1) and max(layer["stride"]) > 1
