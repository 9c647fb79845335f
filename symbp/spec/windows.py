"""Layers that slide a window over a shaped input: 1-D and 2-D convolution, max and average pooling.

A spec gives the input's shape at the top (``input_shape = [channels, length]`` or ``[channels, height,
width]``); each sample is still one flat row of the data, the shape read row-major. Each window layer's output
has a shape again, which the next window layer reads; a dense layer reads it flattened. The semantics are
PyTorch's and Keras's: cross-correlation, weights shaped (filters, channels, *kernel), one bias per filter;
pooling windows of ``pool_size``, a stride that defaults to the window, no padding.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from symbp.errors import SpecError
from symbp.registry.rules import ACTIVATIONS

CONVOLUTIONS = ("conv1d", "conv2d")
POOLINGS = ("max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d")
WINDOW_KINDS = (*CONVOLUTIONS, *POOLINGS)
LAYER_KINDS = ("dense", *WINDOW_KINDS)
_CONV_KEYS = ("kind", "filters", "kernel_size", "stride", "padding", "activation", "bias")
_POOL_KEYS = ("kind", "pool_size", "stride")
MAX_SPATIAL = 4096


def identity_activation() -> str:
    """The registry's identity map, a = z: a pooling layer's activation (it has none of its own)."""
    return next(name for name, activation in ACTIVATIONS.items() if activation.identity)


def spatial_dims(kind: str) -> int:
    """1 for the 1-D kinds, 2 for the 2-D ones."""
    return int(kind[-2])


@dataclass(frozen=True)
class WindowGeometry:
    """Where a window layer's windows fall: its input's shape (channels first), window, stride and padding."""

    input_shape: tuple[int, ...]  # (channels, *spatial)
    window: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]

    @property
    def channels(self) -> int:
        return self.input_shape[0]

    @property
    def spatial(self) -> tuple[int, ...]:
        return self.input_shape[1:]

    @property
    def positions(self) -> tuple[int, ...]:
        """The output's spatial shape: floor((size + 2 padding - window) / stride) + 1 along each axis."""
        return tuple((size + 2 * pad - window) // step + 1
                     for size, pad, window, step in zip(self.spatial, self.padding, self.window, self.stride))


@dataclass(frozen=True)
class WindowLayer:
    """What a window layer of a spec adds to the dense layer's fields (``LayerSpec.window``)."""

    kind: str
    geometry: WindowGeometry
    filters: int = 0  # convolutions: the output's channels; pooling keeps the input's

    @property
    def pooling(self) -> bool:
        return self.kind in POOLINGS

    @property
    def output_shape(self) -> tuple[int, ...]:
        channels = self.geometry.channels if self.pooling else self.filters
        return (channels, *self.geometry.positions)

    @property
    def weight_count(self) -> int:
        return 0 if self.pooling else self.filters * self.geometry.channels * math.prod(self.geometry.window)

    def canonical(self) -> dict[str, Any]:
        g = self.geometry
        out: dict[str, Any] = {"kind": self.kind, "input_shape": list(g.input_shape), "window": list(g.window),
                               "stride": list(g.stride), "padding": list(g.padding)}
        return {**out, "filters": self.filters} if not self.pooling else out


def _positive(value: Any, path: str, low: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or value > MAX_SPATIAL:
        raise SpecError(path, f"expected a whole number from {low} to {MAX_SPATIAL} ({what}), got {value!r}")
    return value


def _per_axis(value: Any, dims: int, path: str, low: int, what: str) -> tuple[int, ...]:
    """One number for every axis, or a list of one per axis."""
    if isinstance(value, list | tuple):
        if len(value) != dims:
            raise SpecError(path, f"expected one number or a list of {dims} (one per axis), got {len(value)}")
        return tuple(_positive(v, f"{path}[{i}]", low, what) for i, v in enumerate(value))
    return (_positive(value, path, low, what),) * dims


def input_shape(value: Any) -> tuple[int, ...]:
    """The top-level input_shape: [channels, length] or [channels, height, width]."""
    if not isinstance(value, list | tuple) or len(value) not in (2, 3):
        raise SpecError("input_shape", "expected [channels, length] or [channels, height, width], "
                                       f"e.g. input_shape = [1, 8, 8], got {value!r}")
    return tuple(_positive(v, f"input_shape[{i}]", 1, "a size") for i, v in enumerate(value))


def layer_kind(table: dict, path: str) -> str:
    """The layer's kind: "dense" unless it names a window kind."""
    kind = table.get("kind", "dense")
    if kind not in LAYER_KINDS:
        raise SpecError(f"{path}.kind", f"expected one of {', '.join(LAYER_KINDS)}, got {kind!r}")
    return kind


def window_layer(table: dict, path: str, shape: tuple[int, ...] | None, previous: str) -> WindowLayer:
    """A window layer's fields, checked against the shape it reads (``None``: a flat vector, after ``previous``)."""
    kind = table["kind"]
    pooling = kind in POOLINGS
    allowed = _POOL_KEYS if pooling else _CONV_KEYS
    for key in table:
        if key not in allowed:
            raise SpecError(f"{path}.{key}", f"is not a key of a {kind} layer; it takes {', '.join(allowed)}")
    dims = spatial_dims(kind)
    if shape is None:
        raise SpecError(f"{path}.kind", f"a {kind} layer reads a shaped input, but {previous} is flat; give "
                                        "input_shape at the top and put window layers before dense ones")
    if len(shape) != dims + 1:
        wanted = "[channels, length]" if dims == 1 else "[channels, height, width]"
        raise SpecError(f"{path}.kind", f"a {kind} layer reads a {wanted} input, but {previous} has shape "
                                        f"{list(shape)}; use the {len(shape) - 1}-D kind")
    size_key = "pool_size" if pooling else "kernel_size"
    if size_key not in table:
        raise SpecError(path, f"a {kind} layer needs {size_key}, e.g. {size_key} = {2 if pooling else 3}")
    window = _per_axis(table[size_key], dims, f"{path}.{size_key}", 1, "the window's size")
    stride = _per_axis(table.get("stride", window if pooling else 1), dims, f"{path}.stride", 1,
                       "the step between windows; 0 would never move")
    padding = _per_axis(table.get("padding", 0), dims, f"{path}.padding", 0, "zeros added on each side")
    for axis, (size, pad, width) in enumerate(zip(shape[1:], padding, window)):
        if width > size + 2 * pad:
            padded = f" (padded: {size + 2 * pad})" if pad else ""
            raise SpecError(f"{path}.{size_key}", f"the window of {width} is larger than the input's "
                                                  f"{size}{padded} along axis {axis}; use a window of at most "
                                                  f"{size + 2 * pad}")
    filters = 0 if pooling else _positive(table.get("filters", None), f"{path}.filters", 1, "output channels")
    return WindowLayer(kind, WindowGeometry(tuple(shape), window, stride, padding), filters)


def parse_window_layer(table: dict, path: str, shape, previous: str,
                       activation: Callable[[Any, str], tuple[str, tuple]]) -> tuple[WindowLayer, str, tuple, bool]:
    """A window layer, its activation (none for pooling: linear) and whether it has biases."""
    window = window_layer(table, path, shape, previous)
    if window.pooling:
        return window, identity_activation(), (), False
    if "activation" not in table:
        raise SpecError(path, 'a convolution needs an activation, e.g. activation = "relu"')
    name, params = activation(table["activation"], f"{path}.activation")
    bias = table.get("bias", True)
    if not isinstance(bias, bool):
        raise SpecError(f"{path}.bias", f"expected true or false, got {bias!r}")
    return window, name, params, bias
