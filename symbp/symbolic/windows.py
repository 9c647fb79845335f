"""Window layer kinds: 1-D and 2-D convolution, max and average pooling (``symbp.spec.windows`` for the spec).

Each sample's input is a flat row read as (channels, *spatial); so is each layer's output, channels first, as
PyTorch lays out ``conv1d``/``conv2d``/``max_pool``/``avg_pool`` outputs. Gathering every window of the input
into the columns of a patch matrix ``P`` (im2col, a fixed linear map) makes each kind a matrix expression whose
pullbacks SymPy's matrix calculus derives, as for the dense layer:

- convolution: ``P`` has a column per sample and output position and a row per channel and window offset;
  with the kernels as rows of ``V`` (one per filter), the pre-activations by position are ``V P + b^T 1^T``
  (a row per filter), so dL/dV = G P^T, dL/db = (G 1)^T and dL/dP = V^T G, G the error term by position;
- pooling: ``P`` has a column per sample, channel and position, and a row per window offset; average pooling is
  ``1^T P / k``, max pooling ``1^T (M o P)`` with ``M`` the first arg-max of each column, piecewise constant in
  ``P``, so dL/dP = M o (1 G): the error goes to the first largest entry of each window, as PyTorch sends it.

A row of ``P`` is one window offset over the whole batch, one strided slice of the input: the generated code
builds ``P`` in one copy, adds its gradient back with a loop over the offsets alone, and multiplies whole
matrices with no transposed copy of ``P``.

The error reaching the layer below is dL/dP carried back through im2col's adjoint: each window's gradient added
onto the input entries it read. In index form (``symbp.derivation.windows``) each kind writes one output entry in
its own indices, filter or channel, positions and window offsets (``index_definition``); the worksheet works the
first window layer made small (``symbp.worksheet.windows``); the check's oracle differentiates the expanded loss
written through ``expanded_preactivation``, one parameter at a time.
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
from symbp.symbolic import quantities as q
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
    """d/dX tr(G^T (V P + b^T 1^T)) for X = P, V, b, on matrices of symbolic shape."""
    columns, width, filters = sp.symbols("columns width filters", integer=True, positive=True)
    generic = {"patches": MatrixSymbol("P", width, columns), "kernels": MatrixSymbol("V", filters, width),
               "delta": MatrixSymbol("G", filters, columns)}
    by_position = generic["kernels"] * generic["patches"]
    if bias:
        generic["bias"] = MatrixSymbol("b", 1, filters)
        by_position = by_position + generic["bias"].T * OneMatrix(1, columns)
    pairing = Trace(generic["delta"].T * by_position)
    return {role: pairing.diff(matrix) for role, matrix in generic.items() if role != "delta"}, generic


@cache
def _pooling_rule(maximum: bool) -> tuple[sp.MatrixExpr, sp.MatrixExpr, dict[str, MatrixSymbol]]:
    """The pooled row of a patch matrix, and d/dP tr(G^T pooled): average (1^T P / k) or max (1^T (M o P))."""
    columns, width = sp.symbols("columns width", integer=True, positive=True)
    generic = {"patches": MatrixSymbol("P", width, columns), "mask": MatrixSymbol("M", width, columns),
               "delta": MatrixSymbol("G", 1, columns), "width": width}
    if maximum:
        pooled = OneMatrix(1, width) * HadamardProduct(generic["mask"], generic["patches"])
    else:
        pooled = OneMatrix(1, width) * generic["patches"] / width
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
        raise SymbpError(f"layer {self.index} ({self.kind}): a window layer is written in its own indices "
                         "(channel, position, offset), not as a dense layer's units")

    # -- a dense layer's index form: a window layer has none (its own follows)
    def index_preactivation(self, j, summed=None) -> sp.Expr:
        self._refused()

    def index_parameters(self) -> list[tuple[sp.Indexed, sp.Expr]]:
        self._refused()

    def index_input_partial(self, k, j) -> sp.Expr:
        self._refused()

    # -- index form in the layer's own indices (what symbp.derivation.windows and the worksheet read)
    @property
    def dims(self) -> int:
        return len(self.geometry.window)

    def _axes(self, role: str, primes: int = 0) -> tuple[sp.Symbol, ...]:
        names = (role, f"{role}2")[:self.dims]
        return tuple(q.window_index(self.index, name, primes) for name in names)

    def output_channel(self, primes: int = 0) -> sp.Symbol:
        """The index over the output's channels: a convolution's filters, or a pooling layer's channels."""
        return q.window_index(self.index, "channel" if self.pooling else "filter", primes)

    @property
    def pooling(self) -> bool:
        return self.window.pooling

    def positions_index(self, primes: int = 0) -> tuple[sp.Symbol, ...]:
        return self._axes("position", primes)

    def offsets_index(self) -> tuple[sp.Symbol, ...]:
        return self._axes("offset")

    def sources_index(self) -> tuple[sp.Symbol, ...]:
        """The input's positions, one index per axis."""
        return self._axes("source")

    def index_extent(self, symbol: sp.Symbol) -> int:
        """How many values an index of this layer takes (1 to the extent)."""
        role = q.INDEX_ROLES[symbol].relation.rstrip("'")
        g = self.geometry
        axis = 1 if role.endswith("2") else 0
        per_axis = {"position": g.positions, "offset": g.window, "source": g.spatial}
        base = role.removesuffix("2")
        if base in per_axis:
            return per_axis[base][axis]
        return self.window.filters if base == "filter" else g.channels

    def read_positions(self, positions, offsets) -> tuple[sp.Expr, ...]:
        """The input position that window offset ``offsets`` of output position ``positions`` reads, counted from 1:
        s (p - 1) + t - padding along each axis (a padding position lies outside 1..n)."""
        g = self.geometry
        return tuple(stride * (p - 1) + t - pad for p, t, stride, pad in zip(positions, offsets, g.stride, g.padding))

    def index_output(self, what: str = "pre", primes: int = 0) -> sp.Indexed:
        """One entry of the layer's output (``pre``, ``act``, ``delta`` or ``incoming``) at its generic indices."""
        base = {"pre": q.pre, "act": q.act, "delta": q.delta, "incoming": q.incoming}[what](self.index)
        return base[(self.output_channel(primes), *self.positions_index())]

    def index_input(self, channel, positions) -> sp.Indexed:
        """An entry of the layer's input, a^(l-1)_{c, r} (the data for the first layer)."""
        return q.act(self.index - 1)[(channel, *positions)]

    def _offset_limits(self) -> list[tuple]:
        return [(t, 1, size) for t, size in zip(self.offsets_index(), self.geometry.window)]

    def flat_unit(self, channel, positions) -> sp.Expr:
        """The 1-based unit of the flat output that channel ``channel`` at ``positions`` is (channels first)."""
        sizes = (self.units // math.prod(self.geometry.positions), *self.geometry.positions)
        flat = sp.Integer(0)
        for index, size in zip((channel, *positions), sizes):
            flat = flat * size + (index - 1)
        return flat + 1

    def index_route_sum(self, expr: sp.Expr) -> sp.Sum:
        """``expr`` summed over the window offsets."""
        return sp.Sum(expr, *self._offset_limits())

    def index_positions_sum(self, expr: sp.Expr, primes: int = 0) -> sp.Sum:
        """``expr`` summed over the output positions."""
        return sp.Sum(expr, *[(p, 1, size) for p, size in zip(self.positions_index(primes), self.geometry.positions)])
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

    # -- index form
    def index_kernel(self, filter_index=None) -> sp.Indexed:
        """w^(l)_{f, c, t}: filter f's weight on channel c at window offset t."""
        f = self.output_channel() if filter_index is None else filter_index
        return q.weight(self.index)[(f, q.window_index(self.index, "channel"), *self.offsets_index())]

    def index_definition(self, primes: int = 0) -> sp.Expr:
        """z^(l)_{f,p} = sum_c sum_t w^(l)_{f,c,t} a^(l-1)_{c, s (p - 1) + t - padding} + b^(l)_f."""
        f, c = self.output_channel(primes), q.window_index(self.index, "channel")
        read = self.read_positions(self.positions_index(), self.offsets_index())
        total = sp.Sum(self.index_kernel(f) * self.index_input(c, read), (c, 1, self.geometry.channels),
                       *self._offset_limits())
        return total + q.bias(self.index)[f] if self.bias else total

    def index_gradients(self) -> list[tuple[Parameter, sp.Indexed, sp.Expr]]:
        """dl/dw_{f,c,t} = sum_p delta_{f,p} a_{c, s (p - 1) + t - padding} and dl/db_f = sum_p delta_{f,p}."""
        delta = self.index_output("delta")
        read = self.read_positions(self.positions_index(), self.offsets_index())
        c = q.window_index(self.index, "channel")
        forms = [(self.parameters[0], self.index_kernel(),
                  self.index_positions_sum(delta * self.index_input(c, read)))]
        if self.bias:
            forms.append((self.parameters[1], q.bias(self.index)[self.output_channel()],
                          self.index_positions_sum(delta)))
        return forms

    @cached_property
    def weight(self) -> MatrixSymbol:
        """The kernels as rows: V, (filters, channels * window)."""
        return MatrixSymbol(f"kernels{self.index}", self.filters, self.width)

    @cached_property
    def bias_row(self) -> MatrixSymbol | None:
        return MatrixSymbol(f"b{self.index}", 1, self.filters) if self.bias else None

    @cached_property
    def patches(self) -> MatrixSymbol:
        return MatrixSymbol(f"patches{self.index}", self.width, n_samples * self.positions)

    @cached_property
    def by_position(self) -> MatrixSymbol:
        return MatrixSymbol(f"by_position{self.index}", self.filters, n_samples * self.positions)

    @cached_property
    def delta_by_position(self) -> MatrixSymbol:
        return MatrixSymbol(f"delta_by_position{self.index}", self.filters, n_samples * self.positions)

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
        product = self.weight * self.patches
        return product + self.bias_row.T * OneMatrix(1, self.patches.shape[1]) if self.bias else product

    def _channels_first(self, by_position) -> sp.Expr:
        """(filters, samples * positions) -> (samples, filters * positions)."""
        per_filter = Reshaped(by_position, _tuple((self.filters, -1, self.positions)))
        return Reshaped(Transposed(per_filter, _tuple((1, 0, 2))), _tuple((-1, self.units)))

    @cached_property
    def preactivation(self) -> sp.Expr:
        """Z over the patch matrix P = Patches(A) (``forward_steps`` computes P first)."""
        return self._channels_first(self._by_position_expr)

    @cached_property
    def forward_steps(self) -> tuple[CodeStep, ...]:
        stored = self.parameters[0].name
        return (
            CodeStep(self.patches, Patches(self.inputs, *_geometry_args(self.geometry)), {},
                     "every window of the input, a column per sample and output position (im2col)"),
            CodeStep(self.weight, Reshaped(MatrixSymbol(stored, *self.weight.shape), _tuple((self.filters, -1))),
                     {}, f"the kernels of {stored} as rows, one per filter"),
            CodeStep(self.by_position, self._by_position_expr, {},
                     "each position's pre-activations, a row per filter: V P + b^T 1^T"),
            CodeStep(self.preactivation_symbol, self._channels_first(self.by_position), {},
                     "laid out channels first, as the next layer reads them"),
        )

    @cached_property
    def backward_steps(self) -> tuple[CodeStep, ...]:
        per_sample = Reshaped(self.delta, _tuple((-1, self.filters, self.positions)))
        by_position = Reshaped(Transposed(per_sample, _tuple((1, 0, 2))), _tuple((self.filters, -1)))
        steps = (CodeStep(self.delta_by_position, by_position, {},
                          f"dL/dZ{self.index} by position: a row per filter, a column per sample and position"),)
        if self.index == 1:
            return steps  # the data needs no error term
        return (*steps, CodeStep(self.delta_patches, self._rule("patches"), {},
                                 f"dL/dP{self.index} = V^T G: each window's share of the error"))

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

    # -- index form
    def index_window(self, primes: int = 0) -> list[sp.Indexed]:
        """The entries of channel c's window at output position p, one per offset (row-major): pooling has no
        padding, so every one is inside the input."""
        c = self.output_channel(primes)
        positions = self.positions_index()
        return [self.index_input(c, self.read_positions(positions, offsets))
                for offsets in itertools.product(*(range(1, w + 1) for w in self.geometry.window))]

    def index_definition(self, primes: int = 0) -> sp.Expr:
        """z^(l)_{c,p}: the largest entry of the window, or the window's sum over offsets divided by its size."""
        if self.maximum:
            return sp.Max(*self.index_window(primes))
        c = self.output_channel(primes)
        read = self.read_positions(self.positions_index(), self.offsets_index())
        return sp.Mul(sp.Rational(1, self.width), self.index_route_sum(self.index_input(c, read)), evaluate=False)

    def index_selected(self, primes: int = 0) -> sp.Expr:
        """Max pooling as the sum of the window's entries weighted by the first arg-max's indicator chi^(l)_{c,p,t}:
        equal to the maximum on every input, and linear in the entries where the arg-max does not move."""
        c = self.output_channel(primes)
        read = self.read_positions(self.positions_index(), self.offsets_index())
        chi = q.first_max(self.index)[(c, *self.positions_index(), *self.offsets_index())]
        return self.index_route_sum(chi * self.index_input(c, read))

    def index_gradients(self) -> list:
        return []

    @cached_property
    def maximum(self) -> bool:
        return self.kind.startswith("max")

    @cached_property
    def width(self) -> int:
        return math.prod(self.geometry.window)

    @cached_property
    def columns(self) -> sp.Expr:
        return n_samples * self.geometry.channels * self.positions

    @cached_property
    def patches(self) -> MatrixSymbol:
        return MatrixSymbol(f"patches{self.index}", self.width, self.columns)

    @cached_property
    def mask(self) -> MatrixSymbol:
        return MatrixSymbol(f"first_max{self.index}", self.width, self.columns)

    @cached_property
    def delta_by_window(self) -> MatrixSymbol:
        return MatrixSymbol(f"delta_by_window{self.index}", 1, self.columns)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return ()

    def _ours(self) -> tuple[sp.MatrixExpr, sp.MatrixExpr]:
        pooled, pullback, generic = _pooling_rule(self.maximum)
        ours = {generic["patches"]: self.patches, generic["mask"]: self.mask, generic["delta"]: self.delta_by_window,
                generic["width"]: self.width}
        return pooled.xreplace(ours), pullback.xreplace(ours)

    def _patch_source(self):
        """Each channel read as a sample of one channel: its windows are the columns of its patches."""
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
                          "every window of each channel, a column per sample, channel and position")]
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
        steps = (CodeStep(self.delta_by_window, Reshaped(self.delta, _tuple((1, -1))), {},
                          f"dL/dZ{self.index} as a row, a column per sample, channel and position"),)
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


def refuse_window_output(spec, where: str) -> None:
    """One line when the output layer is a convolution or pooling layer: its error term would need a loss over
    channels and positions, which ``where`` does not write."""
    last = spec.layers[-1]
    if getattr(last, "window", None) is not None:
        raise SymbpError(f"layers[{len(spec.layers) - 1}].kind: {where} needs a dense output layer after the "
                         f"{last.window.kind} layer; add one, e.g. [[layers]] units = 1")
