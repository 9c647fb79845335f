"""Window layer kinds: 1-D and 2-D convolution, max and average pooling (``symbp.spec.windows`` for the spec).

Each sample's input is a flat row read as (channels, *spatial); so is each layer's output, channels first, as
PyTorch lays out ``conv1d``/``conv2d``/``max_pool``/``avg_pool`` outputs. Gathering every window of the input
into the rows of a patch matrix ``P`` (im2col, a fixed linear map) makes each kind a matrix expression whose
pullbacks SymPy's matrix calculus derives, as for the dense layer:

- convolution: ``P`` has a row per sample and output position and a column per channel and window offset;
  with the kernels as rows of ``V`` (one per filter), the pre-activations by position are ``P V^T + 1 b``, so
  dL/dV = G^T P, dL/db = 1^T G and dL/dP = G V, G the error term by position;
- pooling: ``P`` has a row per sample, channel and position, and a column per window offset; average pooling is
  ``P 1 / k``, max pooling ``(M o P) 1`` with ``M`` the first arg-max of each row, piecewise constant in ``P``,
  so dL/dP = M o (G 1^T): the error goes to the first largest entry of each window, as PyTorch sends it.

The error reaching the layer below is dL/dP carried back through im2col's adjoint: each window's gradient added
onto the input entries it read. The derivation's index form and the worksheets do not cover these kinds yet
(``refuse_windows``); the check's oracle differentiates the expanded loss written through
``expanded_preactivation``, one parameter at a time.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
import sympy as sp
from sympy import HadamardProduct, MatrixSymbol, OneMatrix, Trace

from symbp.errors import SymbpError
from symbp.registry.calculus import ActivationCalculus
from symbp.spec.windows import CONVOLUTIONS, POOLINGS, WindowGeometry, WindowLayer
from symbp.symbolic.layernorm import CodeStep
from symbp.symbolic.layers import LayerSymbols, Parameter, n_samples, register_layer_kind


class Patches(sp.Function):
    """Every window of each sample's input as a row (im2col): Patches(A, shape, window, stride, padding)."""


class PatchesAdjoint(sp.Function):
    """im2col's adjoint: each row's gradient added back onto the input entries its window read."""


class FirstMaxMask(sp.Function):
    """1 at the first largest entry of each row of its argument, 0 elsewhere."""


class Reshaped(sp.Function):
    """Reshaped(X, (rows, cols)): the same entries, row-major, in another shape (-1: as many as needed)."""


class Transposed(sp.Function):
    """Transposed(X, axes): an array's axes permuted."""


def _tuple(values) -> sp.Tuple:
    return sp.Tuple(*(int(v) for v in values))


def _geometry_args(geometry: WindowGeometry, shape=None) -> tuple[sp.Tuple, ...]:
    return (_tuple(shape or geometry.input_shape), _tuple(geometry.window), _tuple(geometry.stride),
            _tuple(geometry.padding))


@cache
def _convolution_rules(bias: bool) -> tuple[dict[str, sp.MatrixExpr], dict[str, MatrixSymbol]]:
    """d/dX tr(G^T (P V^T + 1 b)) for X = P, V, b, on matrices of symbolic shape."""
    rows, width, filters = sp.symbols("rows width filters", integer=True, positive=True)
    generic = {"patches": MatrixSymbol("P", rows, width), "kernels": MatrixSymbol("V", filters, width),
               "delta": MatrixSymbol("G", rows, filters)}
    by_position = generic["patches"] * generic["kernels"].T
    if bias:
        generic["bias"] = MatrixSymbol("b", 1, filters)
        by_position = by_position + OneMatrix(rows, 1) * generic["bias"]
    pairing = Trace(generic["delta"].T * by_position)
    return {role: pairing.diff(matrix) for role, matrix in generic.items() if role != "delta"}, generic


@cache
def _pooling_rule(maximum: bool) -> tuple[sp.MatrixExpr, sp.MatrixExpr, dict[str, MatrixSymbol]]:
    """The pooled column of a patch matrix, and d/dP tr(G^T pooled): average (P 1 / k) or max ((M o P) 1)."""
    rows, width = sp.symbols("rows width", integer=True, positive=True)
    generic = {"patches": MatrixSymbol("P", rows, width), "mask": MatrixSymbol("M", rows, width),
               "delta": MatrixSymbol("G", rows, 1), "width": width}
    if maximum:
        pooled = HadamardProduct(generic["mask"], generic["patches"]) * OneMatrix(width, 1)
    else:
        pooled = generic["patches"] * OneMatrix(width, 1) / width
    return pooled, Trace(generic["delta"].T * pooled).diff(generic["patches"]), generic


@dataclass(frozen=True)
class KernelParameter(Parameter):
    """A convolution's weights, stored (filters, channels, *window) and written as the rows of V (one per filter)."""

    def entries(self) -> list[tuple[int, ...]]:
        return [tuple(int(i) for i in index) for index in np.ndindex(*self.shape)]

    def matrix_entry(self, index: tuple[int, ...]) -> tuple[int, int]:
        return index[0], int(np.ravel_multi_index(index[1:], self.shape[1:]))


@dataclass(frozen=True)
class _WindowBase:
    index: int
    fan_in: int
    units: int
    bias: bool
    calculus: ActivationCalculus
    inputs: MatrixSymbol
    preactivation_symbol: MatrixSymbol
    output: MatrixSymbol
    delta: MatrixSymbol
    window: WindowLayer
    fully_connected: bool = False  # each unit reads one window of its input
    # The check's oracle differentiates the expanded loss one parameter at a time: written whole, every
    # output is a sum over its window of the layer below's sums over theirs.
    expanded_per_parameter: bool = True

    @property
    def kind(self) -> str:
        return self.window.kind

    @property
    def geometry(self) -> WindowGeometry:
        return self.window.geometry

    @cached_property
    def positions(self) -> int:
        return math.prod(self.geometry.positions)

    def _refused(self):
        raise SymbpError(f"layer {self.index} ({self.kind}): the index-form derivation has no window layers yet; "
                         "use symbp generate, check, train or predict for it")

    # -- index form: not written for window layers (the derivation and the worksheet refuse them first)
    def index_preactivation(self, j, summed=None) -> sp.Expr:
        self._refused()

    def index_parameters(self) -> list[tuple[sp.Indexed, sp.Expr]]:
        self._refused()

    def index_input_partial(self, k, j) -> sp.Expr:
        self._refused()

    def index_gradients(self):
        self._refused()

    # -- the windows of one sample, in scalars and on numbers
    @cached_property
    def _windows(self) -> list[list[list[int | None]]]:
        """For each output position (row-major), for each channel, the flat input index each window offset
        reads (None where it falls on the padding)."""
        g = self.geometry
        out = []
        for position in itertools.product(*(range(n) for n in g.positions)):
            per_channel = []
            for channel in range(g.channels):
                read = []
                for offset in itertools.product(*(range(w) for w in g.window)):
                    at = [p * s + o - pad for p, s, o, pad in zip(position, g.stride, offset, g.padding)]
                    inside = all(0 <= a < size for a, size in zip(at, g.spatial))
                    read.append(int(np.ravel_multi_index((channel, *at), g.input_shape)) if inside else None)
                per_channel.append(read)
            out.append(per_channel)
        return out

    def numeric_preactivation(self, previous, params: Mapping):
        previous = np.asarray(previous, dtype=float)
        rows = np.atleast_2d(previous)
        padded = np.concatenate([rows, np.zeros((rows.shape[0], 1))], axis=1)  # index -1: a padding zero
        gathered = np.array([[[i if i is not None else -1 for i in read] for read in channels]
                             for channels in self._windows])  # (positions, channels, window)
        windows = padded[:, gathered]  # (samples, positions, channels, window)
        pre = self._numeric_from_windows(windows, params)
        return pre.reshape(previous.shape[:-1] + (self.units,))


@dataclass(frozen=True)
class ConvolutionLayer(_WindowBase):
    """Z = the pre-activations by position, P V^T + 1 b, laid out channels first."""

    weights_given: tuple | None = None

    @cached_property
    def width(self) -> int:
        """One patch row: every channel's window."""
        return self.geometry.channels * math.prod(self.geometry.window)

    @cached_property
    def filters(self) -> int:
        return self.window.filters

    @cached_property
    def weight(self) -> MatrixSymbol:
        """The kernels as rows: V, (filters, channels * window)."""
        return MatrixSymbol(f"kernels{self.index}", self.filters, self.width)

    @cached_property
    def bias_row(self) -> MatrixSymbol | None:
        return MatrixSymbol(f"b{self.index}", 1, self.filters) if self.bias else None

    @cached_property
    def patches(self) -> MatrixSymbol:
        return MatrixSymbol(f"patches{self.index}", n_samples * self.positions, self.width)

    @cached_property
    def by_position(self) -> MatrixSymbol:
        return MatrixSymbol(f"by_position{self.index}", n_samples * self.positions, self.filters)

    @cached_property
    def delta_by_position(self) -> MatrixSymbol:
        return MatrixSymbol(f"delta_by_position{self.index}", n_samples * self.positions, self.filters)

    @cached_property
    def delta_patches(self) -> MatrixSymbol:
        """dL/dP, the error term at the patch matrix."""
        return MatrixSymbol(f"delta_patches{self.index}", *self.patches.shape)

    @cached_property
    def parameters(self) -> tuple[Parameter, ...]:
        g = self.geometry
        window = math.prod(g.window)
        weight = KernelParameter(f"W{self.index}", "weight", (self.filters, g.channels, *g.window), self.weight,
                                 g.channels * window, self.filters * window, self.index)
        if self.bias_row is None:
            return (weight,)
        return weight, Parameter(self.bias_row.name, "bias", (self.filters,), self.bias_row, g.channels * window,
                                 self.filters * window, self.index)

    def _rule(self, role: str) -> sp.MatrixExpr:
        rules, generic = _convolution_rules(self.bias)
        ours = {generic["patches"]: self.patches, generic["kernels"]: self.weight,
                generic["delta"]: self.delta_by_position}
        if self.bias:
            ours[generic["bias"]] = self.bias_row
        return rules[role].xreplace(ours)

    @cached_property
    def _by_position_expr(self) -> sp.MatrixExpr:
        product = self.patches * self.weight.T
        return product + OneMatrix(self.patches.shape[0], 1) * self.bias_row if self.bias else product

    def _channels_first(self, by_position) -> sp.Expr:
        """(samples * positions, filters) -> (samples, filters * positions)."""
        per_sample = Reshaped(by_position, _tuple((-1, self.positions, self.filters)))
        return Reshaped(Transposed(per_sample, _tuple((0, 2, 1))), _tuple((-1, self.units)))

    @cached_property
    def preactivation(self) -> sp.Expr:
        """Z over the patch matrix P = Patches(A) (``forward_steps`` computes P first)."""
        return self._channels_first(self._by_position_expr)

    @cached_property
    def forward_steps(self) -> tuple[CodeStep, ...]:
        stored = self.parameters[0].name
        return (
            CodeStep(self.patches, Patches(self.inputs, *_geometry_args(self.geometry)), {},
                     "every window of the input, a row per sample and output position (im2col)"),
            CodeStep(self.weight, Reshaped(MatrixSymbol(stored, *self.weight.shape), _tuple((self.filters, -1))),
                     {}, f"the kernels of {stored} as rows, one per filter"),
            CodeStep(self.by_position, self._by_position_expr, {}, "each position's pre-activations: P V^T + 1 b"),
            CodeStep(self.preactivation_symbol, self._channels_first(self.by_position), {},
                     "laid out channels first, as the next layer reads them"),
        )

    @cached_property
    def backward_steps(self) -> tuple[CodeStep, ...]:
        per_sample = Reshaped(self.delta, _tuple((-1, self.filters, self.positions)))
        by_position = Reshaped(Transposed(per_sample, _tuple((0, 2, 1))), _tuple((-1, self.filters)))
        steps = (CodeStep(self.delta_by_position, by_position, {},
                          f"dL/dZ{self.index} by position: a row per sample and position, a column per filter"),)
        if self.index == 1:
            return steps  # the data needs no error term
        return (*steps, CodeStep(self.delta_patches, self._rule("patches"), {},
                                 f"dL/dP{self.index} = G V: each window's share of the error"))

    def gradient(self, parameter: Parameter) -> sp.Expr:
        if parameter.role == "weight":
            return Reshaped(self._rule("kernels"), _tuple(parameter.shape))
        return self._rule("bias")

    @cached_property
    def input_gradient(self) -> sp.Expr:
        return PatchesAdjoint(self.delta_patches, *_geometry_args(self.geometry))

    # -- expanded scalars
    def expanded_symbols(self) -> dict[str, sp.Matrix]:
        """The kernels as V's rows of scalar symbols, under the stored weight's name; the biases as a row."""
        kernel = self.parameters[0]
        matrix = sp.zeros(*self.weight.shape)
        for entry in kernel.entries():
            name = ",".join(str(i + 1) for i in entry)
            matrix[kernel.matrix_entry(entry)] = sp.Symbol(f"w^{self.index}_{{{name}}}", real=True)
        symbols = {kernel.name: matrix}
        if self.bias:
            symbols[self.bias_row.name] = sp.Matrix(1, self.filters,
                                                    lambda _, f: sp.Symbol(f"b^{self.index}_{f + 1}", real=True))
        return symbols

    def expanded_preactivation(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> list[sp.Expr]:
        kernels = values[self.parameters[0].name]
        bias = values[self.bias_row.name] if self.bias else None
        windows = self._windows
        out = []
        for f in range(self.filters):
            for channels in windows:
                total = sp.Add(*(kernels[f, c * len(read) + t] * previous[i]
                                 for c, read in enumerate(channels) for t, i in enumerate(read) if i is not None))
                out.append(total + bias[0, f] if bias is not None else total)
        return out

    def _numeric_from_windows(self, windows, params: Mapping):
        kernels = np.asarray(params[self.parameters[0].name], dtype=float).reshape(self.filters, -1)
        pre = np.einsum("npk,fk->nfp", windows.reshape(*windows.shape[:2], -1), kernels)
        if self.bias:
            pre = pre + np.asarray(params[self.bias_row.name], dtype=float)[:, np.newaxis]
        return pre.reshape(windows.shape[0], -1)


@dataclass(frozen=True)
class PoolingLayer(_WindowBase):
    """Z = each channel's windows reduced: their mean, or their largest entry."""

    @cached_property
    def maximum(self) -> bool:
        return self.kind.startswith("max")

    @cached_property
    def width(self) -> int:
        return math.prod(self.geometry.window)

    @cached_property
    def rows(self) -> sp.Expr:
        return n_samples * self.geometry.channels * self.positions

    @cached_property
    def patches(self) -> MatrixSymbol:
        return MatrixSymbol(f"patches{self.index}", self.rows, self.width)

    @cached_property
    def mask(self) -> MatrixSymbol:
        return MatrixSymbol(f"first_max{self.index}", self.rows, self.width)

    @cached_property
    def delta_by_window(self) -> MatrixSymbol:
        return MatrixSymbol(f"delta_by_window{self.index}", self.rows, 1)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return ()

    def _ours(self) -> tuple[sp.MatrixExpr, sp.MatrixExpr]:
        pooled, pullback, generic = _pooling_rule(self.maximum)
        ours = {generic["patches"]: self.patches, generic["mask"]: self.mask, generic["delta"]: self.delta_by_window,
                generic["width"]: self.width}
        return pooled.xreplace(ours), pullback.xreplace(ours)

    def _patch_source(self):
        """Each channel read as a sample of one channel: its windows are the rows of its patches."""
        g = self.geometry
        rows = Reshaped(self.inputs, _tuple((-1, math.prod(g.spatial))))
        return Patches(rows, *_geometry_args(g, (1, *g.spatial)))

    @cached_property
    def preactivation(self) -> sp.Expr:
        """Z over the patch matrix P and, for max pooling, its mask M (``forward_steps`` computes both first)."""
        return Reshaped(self._ours()[0], _tuple((-1, self.units)))

    @cached_property
    def forward_steps(self) -> tuple[CodeStep, ...]:
        steps = [CodeStep(self.patches, self._patch_source(), {},
                          "every window of each channel, a row per sample, channel and position")]
        if self.maximum:
            steps.append(CodeStep(self.mask, FirstMaxMask(self.patches), {},
                                  "where each window's first largest entry is"))
        how = "largest entry" if self.maximum else "mean"
        steps.append(CodeStep(self.preactivation_symbol, Reshaped(self._ours()[0], _tuple((-1, self.units))), {},
                              f"each window's {how}, channels first"))
        return tuple(steps)

    @cached_property
    def delta_patches(self) -> MatrixSymbol:
        """dL/dP, the error term at the patch matrix."""
        return MatrixSymbol(f"delta_patches{self.index}", *self.patches.shape)

    @cached_property
    def backward_steps(self) -> tuple[CodeStep, ...]:
        share = "its first largest entry" if self.maximum else "an equal share for every entry"
        steps = (CodeStep(self.delta_by_window, Reshaped(self.delta, _tuple((-1, 1))), {},
                          f"dL/dZ{self.index} as a column, a row per sample, channel and position"),)
        if self.index == 1:
            return steps  # the data needs no error term
        return (*steps, CodeStep(self.delta_patches, self._ours()[1], {},
                                 f"dL/dP{self.index}: each window's error to {share}"))

    def gradient(self, parameter: Parameter):
        raise KeyError(parameter.name)

    @cached_property
    def input_gradient(self) -> sp.Expr:
        g = self.geometry
        back = PatchesAdjoint(self.delta_patches, *_geometry_args(g, (1, *g.spatial)))
        return Reshaped(back, _tuple((-1, self.fan_in)))

    def expanded_symbols(self) -> dict[str, sp.Matrix]:
        return {}

    def expanded_preactivation(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> list[sp.Expr]:
        out = []
        for channel in range(self.geometry.channels):
            for channels in self._windows:
                read = [previous[i] for i in channels[channel]]  # pooling has no padding: every offset is inside
                out.append(sp.Max(*read) if self.maximum else sp.Add(*read) / self.width)
        return out

    def _numeric_from_windows(self, windows, params: Mapping):
        pooled = windows.max(axis=-1) if self.maximum else windows.mean(axis=-1)  # (samples, positions, channels)
        return pooled.transpose(0, 2, 1).reshape(windows.shape[0], -1)


def _convolution(symbols: LayerSymbols, layer_spec, calculus: ActivationCalculus) -> ConvolutionLayer:
    return ConvolutionLayer(symbols.index, symbols.fan_in, symbols.units, layer_spec.bias, calculus, symbols.inputs,
                            symbols.preactivation_symbol, symbols.output, symbols.delta, layer_spec.window)


def _pooling(symbols: LayerSymbols, layer_spec, calculus: ActivationCalculus) -> PoolingLayer:
    return PoolingLayer(symbols.index, symbols.fan_in, symbols.units, False, calculus, symbols.inputs,
                        symbols.preactivation_symbol, symbols.output, symbols.delta, layer_spec.window)


for _kind in CONVOLUTIONS:
    register_layer_kind(_kind, _convolution)
for _kind in POOLINGS:
    register_layer_kind(_kind, _pooling)


def window_layers(network) -> tuple:
    return tuple(layer for layer in network.layers if isinstance(layer, _WindowBase))


def refuse_windows(spec, where: str, fix: str = "use the NumPy module (symbp generate, check, train, predict)",
                   ) -> None:
    """One line naming the first convolution or pooling layer, for a product that does not carry them yet."""
    for index, layer_spec in enumerate(spec.layers):
        if getattr(layer_spec, "window", None) is not None:
            raise SymbpError(f"layers[{index}].kind: {where} has no {layer_spec.window.kind} layers yet; {fix}")
