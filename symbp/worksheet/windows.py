"""The worksheet's exercise on a convolution or pooling layer: one forward and one backward pass through it, by hand.

The layer is the spec's first window layer, made small enough to work on paper: one input channel of 5 entries
(6 for pooling, so that its windows tile it) or a 4 x 4 image, one filter, a window of at most 3 (1-D) or 2 x 2
(2-D), and the layer's stride and padding where they fit (stride at most 2, padding at most 1); its kind is kept.
The sheet gives the layer's input, its kernel and bias, and the derivative of the loss L at each of its outputs
(as the layer above would hand it down); the student computes the outputs, the kernel's and the bias's gradients,
and the error passed back to each input entry (pooling: the outputs and the error routed to the first largest
entry of each window, or shared equally for the average).

The answers are the layer's pullbacks, worked on the windows it reads (``_WindowBase._windows``, the im2col map
the generated code uses), in exact arithmetic; each is checked, while the sheet is made, against SymPy's
derivative of the layer's definition written out on symbols (``expanded_preactivation``), paired with the
derivatives given.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, replace

import sympy as sp

from symbp.spec.schema import Spec, load_spec
from symbp.spec.windows import identity_activation, spatial_dims
from symbp.symbolic import quantities as q
from symbp.symbolic.network import network_of

LENGTH = 5  # a 1-D convolution's input
POOLED_LENGTH = 6  # a 1-D pooling layer's: windows of 2 or 3 tile it
SIDE = 4  # a 2-D layer's input is SIDE x SIDE
MOST_WINDOW = {1: 3, 2: 2}
MOST_STRIDE = 2  # a convolution's; pooling keeps windows that tile the input tiling it
MOST_PADDING = 1
_INPUTS = (-3, -2, -1, 1, 2, 3)
# Max pooling's inputs are all different, so that each window has one largest entry (its derivative is defined).
_DISTINCT_INPUTS = tuple(range(-9, 10))
_KERNEL = (-2, -1, 1, 2)
_BIASES = (-1, sp.Rational(-1, 2), sp.Rational(1, 2), 1)
_UPSTREAM = (-2, -1, sp.Rational(-1, 2), sp.Rational(1, 2), 1, 2)


@dataclass(frozen=True)
class WindowExercise:
    """One window layer on one small sample, forward and back, with every answer by its quantity."""

    layer: int  # the layer's number in the spec
    kind: str
    input_shape: tuple[int, ...]  # (channels, *spatial) of the small layer
    window: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    output_shape: tuple[int, ...]  # (filters or channels, *positions)
    inputs: dict  # the input's quantity a^(l-1)_{c,r} -> value
    kernel: dict  # w^(l)_{f,c,t} -> value (empty for pooling)
    bias: dict  # b^(l)_f -> value (empty for pooling or a convolution without bias)
    upstream: dict  # dL/dz^(l)_{f,p} -> value
    forward: dict  # z^(l)_{f,p} -> value
    backward: dict  # dL/dw, dL/db, dL/da^(l-1) -> value

    @property
    def pooling(self) -> bool:
        return "pool" in self.kind

    @property
    def maximum(self) -> bool:
        return self.kind.startswith("max")

    @property
    def dims(self) -> int:
        return len(self.window)

    def given(self) -> list[tuple[sp.Basic, sp.Expr]]:
        """What the sheet hands the student: the input, the kernel and bias, and the derivatives from above."""
        return [*self.inputs.items(), *self.kernel.items(), *self.bias.items(), *self.upstream.items()]


def _clipped(values: tuple[int, ...], most: int) -> tuple[int, ...]:
    return tuple(min(v, most) for v in values)


def small_window_spec(spec: Spec, position: int) -> Spec:
    """The spec's window layer at ``position`` (0-based) alone on a small input of one channel, with one filter,
    its kind kept, and a dense output after it (the layer's own network, as the generated module writes it)."""
    layer = spec.layers[position]
    window = layer.window
    dims = spatial_dims(window.kind)
    size = _clipped(window.geometry.window, MOST_WINDOW[dims])
    stride = _clipped(window.geometry.stride, MOST_STRIDE)
    if window.pooling:
        # Windows that tile the input (a stride of the window's size, the default) still tile it, made small.
        stride = tuple(small if step >= large else min(step, small) for step, small, large
                       in zip(window.geometry.stride, size, window.geometry.window))
    spatial = ((POOLED_LENGTH if window.pooling else LENGTH),) if dims == 1 else (SIDE, SIDE)
    table: dict = {"kind": window.kind, "stride": list(stride)}
    if window.pooling:
        table["pool_size"] = list(size)
    else:
        table.update(kernel_size=list(size), padding=list(_clipped(window.geometry.padding, MOST_PADDING)),
                     filters=1, activation=identity_activation(), bias=layer.bias)
    return load_spec({"name": f"{spec.name}_window", "input_shape": [1, *spatial],
                      "layers": [table, {"units": 1, "activation": "linear"}],
                      "loss": {"name": "squared_error", "scale": 0.5, "reduction": "sum"}})


def first_window_position(spec: Spec) -> int | None:
    return next((i for i, layer in enumerate(spec.layers) if layer.window is not None), None)


def _draw_inputs(rng: random.Random, count: int, distinct: bool) -> list[sp.Expr]:
    if distinct:
        return [sp.Integer(v) for v in rng.sample(_DISTINCT_INPUTS, count)]
    return [sp.Integer(rng.choice(_INPUTS)) for _ in range(count)]


def window_exercise(spec: Spec, rng: random.Random) -> WindowExercise | None:
    """The exercise on the spec's first window layer; None when the spec has none."""
    position = first_window_position(spec)
    if position is None:
        return None
    index = position + 1
    small = network_of(small_window_spec(spec, position)).layers[0]
    g = small.geometry
    pooling = small.pooling
    maximum = pooling and small.maximum
    channels, spatial = g.channels, g.spatial
    outputs = small.units
    out_channels = channels if pooling else small.filters
    positions = list(_multi(g.positions))
    sources = list(_multi(spatial))
    x = _draw_inputs(rng, small.fan_in, maximum)
    window_size = math.prod(g.window)
    width = channels * window_size
    kernel = sp.Matrix(out_channels, width, [rng.choice(_KERNEL) for _ in range(out_channels * width)]) \
        if not pooling else None
    bias = sp.Matrix(1, out_channels, [rng.choice(_BIASES) for _ in range(out_channels)]) \
        if not pooling and small.bias else None
    upstream = [sp.sympify(rng.choice(_UPSTREAM)) for _ in range(outputs)]

    def input_quantity(flat: int) -> sp.Indexed:
        c, r = divmod(flat, math.prod(spatial))
        return q.act(index - 1)[(c + 1, *(i + 1 for i in sources[r]))]

    def output_quantity(flat: int) -> sp.Indexed:
        f, p = divmod(flat, len(positions))
        return q.pre(index)[(f + 1, *(i + 1 for i in positions[p]))]

    offsets = list(_multi(g.window))

    def kernel_quantity(f: int, column: int) -> sp.Indexed:
        c, t = divmod(column, window_size)
        return q.weight(index)[(f + 1, c + 1, *(i + 1 for i in offsets[t]))]

    # Forward, and the pullbacks: each window's output, its error to the kernel (times what each weight read) and
    # to each input entry the window read (times the weight there, its share 1/k, or all of it at the first max).
    forward, kernel_gradient = {}, sp.zeros(out_channels, width)
    input_gradient = [sp.Integer(0)] * small.fan_in
    for f in range(out_channels):
        for p, reads in enumerate(small._windows):
            flat = f * len(positions) + p
            delta = upstream[flat]
            if pooling:
                read = reads[f]  # pooling keeps each channel: its windows read that channel alone
                entries = [x[i] for i in read]
                if maximum:
                    top = entries.index(max(entries))
                    forward[output_quantity(flat)] = entries[top]
                    input_gradient[read[top]] += delta
                else:
                    forward[output_quantity(flat)] = sp.Add(*entries) / window_size
                    for i in read:
                        input_gradient[i] += delta / window_size
                continue
            total = bias[0, f] if bias is not None else sp.Integer(0)
            for c, read in enumerate(reads):
                for t, i in enumerate(read):
                    if i is None:
                        continue  # the padding: a zero, and no input entry to pass the error to
                    column = c * window_size + t
                    total += kernel[f, column] * x[i]
                    kernel_gradient[f, column] += delta * x[i]
                    input_gradient[i] += delta * kernel[f, column]
            forward[output_quantity(flat)] = total
    backward = {}
    if kernel is not None:
        backward.update({q.Partial(q.LOSS, kernel_quantity(f, column)): kernel_gradient[f, column]
                         for f in range(out_channels) for column in range(width)})
    if bias is not None:
        backward.update({q.Partial(q.LOSS, q.bias(index)[f + 1]):
                         sp.Add(*upstream[f * len(positions):(f + 1) * len(positions)]) for f in range(out_channels)})
    backward.update({q.Partial(q.LOSS, input_quantity(i)): input_gradient[i] for i in range(small.fan_in)})
    exercise = WindowExercise(
        index, small.kind, tuple(g.input_shape), tuple(g.window), tuple(g.stride), tuple(g.padding),
        (out_channels, *g.positions),
        {input_quantity(i): x[i] for i in range(small.fan_in)},
        {} if kernel is None else {kernel_quantity(f, column): kernel[f, column]
                                   for f in range(out_channels) for column in range(width)},
        {} if bias is None else {q.bias(index)[f + 1]: bias[0, f] for f in range(out_channels)},
        {q.Partial(q.LOSS, output_quantity(flat)): upstream[flat] for flat in range(outputs)},
        forward, backward)
    _check_against_definition(small, exercise, x, kernel, bias, upstream)
    return exercise


def _multi(shape) -> list[tuple[int, ...]]:
    """Every index of an array of ``shape``, row-major, from 0."""
    return list(itertools.product(*(range(n) for n in shape)))


def _check_against_definition(small, exercise: WindowExercise, x, kernel, bias, upstream) -> None:
    """The outputs must be the layer's definition on the numbers given, and each gradient SymPy's derivative of
    sum_p dL/dz_p z_p, the layer written out on symbols (its input, kernel and bias), at those numbers."""
    inputs = sp.symbols(f"x1:{small.fan_in + 1}", real=True)
    symbols = small.expanded_symbols()
    z = small.expanded_preactivation(list(inputs), symbols)
    values = dict(zip(inputs, x))
    named = [(quantity, symbol) for quantity, symbol in zip(exercise.inputs, inputs)]
    if kernel is not None:
        matrix = symbols[small.parameters[0].name]
        values.update({matrix[i]: kernel[i] for i in range(len(kernel))})
        named += [(quantity, matrix[i]) for i, quantity in enumerate(exercise.kernel)]
    if bias is not None:
        row = symbols[small.bias_row.name]
        values.update({row[i]: bias[i] for i in range(len(bias))})
        named += [(quantity, row[i]) for i, quantity in enumerate(exercise.bias)]
    for quantity, expr in zip(exercise.forward, z):
        if sp.simplify(expr.xreplace(values) - exercise.forward[quantity]) != 0:
            raise ArithmeticError(f"worksheet: the window layer's output {quantity} disagrees with its definition")
    pairing = sp.Add(*(d * each for d, each in zip(upstream, z)))
    for quantity, symbol in named:
        expected = sp.diff(pairing, symbol).xreplace(values)
        if sp.simplify(expected - exercise.backward[q.Partial(q.LOSS, quantity)]) != 0:
            raise ArithmeticError(f"worksheet: the window layer's gradient of {quantity} disagrees with SymPy's "
                                  "derivative of its definition")


def without_windows(spec: Spec) -> Spec:
    """The spec with a dense layer of as many units in place of each window layer (a pooling layer's linear, with
    a bias): the network that the worksheet's other exercises work, on a flat input."""
    if first_window_position(spec) is None:
        return spec
    layers = tuple(replace(layer, window=None, bias=True, weights=None, biases=None) if layer.window is not None
                   else layer for layer in spec.layers)
    return replace(spec, name=f"{spec.name}_dense", layers=layers, input_shape=())
