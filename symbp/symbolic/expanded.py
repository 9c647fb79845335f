"""The network's expanded scalar view: the loss of a small network with every weight its own SymPy symbol.

This is the independent oracle: it knows nothing of deltas, layers or matrix calculus. It writes
the per-sample loss out in scalars and lets SymPy differentiate it with respect to each weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from symbp.registry.calculus import ActivationCalculus
from symbp.registry.rules import y, yhat, z
from symbp.spec.schema import Spec, load_spec
from symbp.symbolic.layers import activate
from symbp.symbolic.network import loss_coefficient, network_of
from symbp.symbolic.penalties import penalty_of, weight_penalties

# Networks up to this many parameters get the expanded form (in checks and in derivations).
EXPANDED_PARAMETER_LIMIT = 60
# Significant digits of the numbers in ``gradient_at``.
PRECISION = 30


@dataclass(frozen=True)
class ExpandedNetwork:
    spec: Spec
    weights: dict[str, sp.Matrix]  # "W1" -> matrix of scalar symbols w^{(1)}_{i,j}
    inputs: tuple[sp.Symbol, ...]
    targets: tuple[sp.Symbol, ...]
    preactivations: tuple[tuple[sp.Expr, ...], ...]
    activations: tuple[tuple[sp.Expr, ...], ...]
    sample_loss: sp.Expr  # sum over outputs of l(yhat_k, y_k), for one sample
    penalty: sp.Expr = sp.Integer(0)  # the weight penalties, added once to the whole loss (not per sample)
    # Inputs of layers besides the data, one sample's worth (a dropout mask: "M2" -> a row of symbols m^2_i).
    layer_inputs: tuple[tuple[str, sp.Matrix], ...] = ()

    def _layer_input_values(self, masks: dict | None, samples: int) -> list[list[float]]:
        """Each sample's values of the layer inputs' symbols, in ``layer_input_symbols`` order; a mask not
        given is all ones (evaluation mode)."""
        rows = [[] for _ in range(samples)]
        for name, symbols in self.layer_inputs:
            given = None if masks is None else masks.get(name)
            values = np.ones((samples, len(symbols))) if given is None else np.asarray(given, dtype=float)
            for row, sample in zip(rows, values.tolist()):
                row += sample
        return rows

    @property
    def layer_input_symbols(self) -> list[sp.Symbol]:
        return [symbol for _, symbols in self.layer_inputs for symbol in symbols]

    @property
    def parameter_symbols(self) -> list[tuple[str, tuple[int, ...], sp.Symbol]]:
        """(array name, index, symbol) in PARAMS order, row-major within each array."""
        return [(parameter.name, index, self.weights[parameter.name][parameter.matrix_entry(index)])
                for parameter in network_of(self.spec).parameters for index in parameter.entries()]

    @cached_property
    def gradient(self) -> dict[sp.Symbol, sp.Expr]:
        """d(sample loss)/d(each weight), straight from SymPy."""
        return {symbol: sp.diff(self.sample_loss, symbol) for _, _, symbol in self.parameter_symbols}

    def evaluate(self, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                 masks: dict[str, np.ndarray] | None = None) -> tuple[float, dict]:
        """The loss and gradient on data, summed over samples and scaled as the spec says; ``masks`` holds a
        dropout layer's mask (N x fan_in) under its name, and a layer without one is in evaluation mode."""
        symbols = [symbol for _, _, symbol in self.parameter_symbols]
        arguments = [*symbols, *self.inputs, *self.targets, *self.layer_input_symbols]
        # Scalar evaluation, one sample at a time: Piecewise becomes a plain conditional.
        function = sp.lambdify(arguments, [self.sample_loss, *self.gradient.values()], modules="math", cse=True)
        values = [float(params[name][index]) for name, index, _ in self.parameter_symbols]
        extra = self._layer_input_values(masks, X.shape[0])
        per_sample = np.array([function(*values, *x_row, *y_row, *more)
                               for x_row, y_row, more in zip(X.tolist(), Y.tolist(), extra)])
        totals = float(loss_coefficient(self.spec, X.shape[0])) * per_sample.sum(axis=0)
        grads = {parameter.name: np.zeros(parameter.shape) for parameter in network_of(self.spec).parameters}
        for (name, index, _), value in zip(self.parameter_symbols, totals[1:]):
            grads[name][index] = value
        if self.penalty == 0:
            return float(totals[0]), grads
        point = dict(zip(symbols, values))
        for name, index, symbol in self.parameter_symbols:
            grads[name][index] += float(sp.diff(self.penalty, symbol).subs(point))
        return float(totals[0]) + float(self.penalty.subs(point)), grads


def _activate(calculus: ActivationCalculus, preactivations: list[sp.Expr],
              near: list[sp.Expr] | None = None) -> list[sp.Expr]:
    """The activation of each pre-activation; with ``near`` (their values at a point), each piecewise
    activation is replaced by its piece there, which has the same derivative at that point and spares
    SymPy from reasoning about conditions in the unknown."""
    if calculus.rowwise or near is None:
        return activate(calculus, preactivations)
    return [_piece_at(calculus.forward, value).subs(z, pre) for pre, value in zip(preactivations, near)]


def _piece_at(forward: sp.Expr, value: sp.Expr) -> sp.Expr:
    def piece(piecewise: sp.Piecewise) -> sp.Expr:
        return next(expr for expr, condition in piecewise.args if condition.subs(z, value) == sp.true)

    return forward.replace(lambda e: isinstance(e, sp.Piecewise), piece)


def expand_network(spec_source) -> ExpandedNetwork:
    spec = load_spec(spec_source)
    network = network_of(spec)
    inputs = tuple(sp.Symbol(f"x_{i + 1}", real=True) for i in range(spec.inputs))
    targets = tuple(sp.Symbol(f"y_{i + 1}", real=True) for i in range(spec.outputs))
    weights: dict[str, sp.Matrix] = {}
    previous: list[sp.Expr] = list(inputs)
    all_pre, all_act = [], []
    layer_inputs: list[tuple[str, sp.Matrix]] = []
    for layer in network.layers:
        symbols = layer.expanded_symbols()
        weights.update(symbols)
        # A kind may read more than its parameters (a dropout mask): as symbols too, one sample's worth.
        extra = getattr(layer, "expanded_inputs", dict)()
        layer_inputs += extra.items()
        pre = layer.expanded_preactivation(previous, {**symbols, **extra})
        previous = activate(layer.calculus, pre)
        all_pre.append(tuple(pre))
        all_act.append(tuple(previous))
    loss_expr = network.output.loss.expr
    sample_loss = sum(loss_expr.subs({yhat: out, y: target}) for out, target in zip(previous, targets))
    penalty = penalty_of(weight_penalties(network), weights)
    return ExpandedNetwork(spec, weights, inputs, targets, tuple(all_pre), tuple(all_act), sample_loss, penalty,
                           tuple(layer_inputs))


def _number(value):
    # 30 digits rather than exact values: SymPy decides each piece's condition at once.
    return sp.Float(sp.N(value, PRECISION), PRECISION)


def _each_entry(network, params: dict[str, sp.Matrix], fixed: dict[str, sp.Matrix], unknown: sp.Symbol):
    """For each parameter entry: its key (array name, stored index), its value as a number, and the point, every
    entry of ``params`` and ``fixed`` a number but this one, which is ``unknown``."""
    shapes = {parameter.name: parameter.shape for parameter in network.parameters}
    for name, matrix in params.items():
        for i in range(matrix.rows):
            for jj in range(matrix.cols):
                point = {key: value.applyfunc(_number).as_mutable() for key, value in {**fixed, **params}.items()}
                point[name][i, jj] = unknown
                # The stored index: a kernel of shape (filters, channels, *window) is stored unravelled from V's rows.
                index = tuple(int(v) for v in np.unravel_index(i * matrix.cols + jj, shapes[name]))
                yield (name, index), _number(matrix[i, jj]), point


def _linearised(output: sp.Expr, unknown: sp.Symbol, at: sp.Expr) -> sp.Expr:
    """A layer's output as its first-order expansion in ``unknown`` about ``at``: v + d (unknown - at), with v its
    value and d SymPy's derivative there.

    The derivative at ``at`` of whatever the next layers make of it is the same (the chain rule needs no more of
    it), and the next layer gets a line in the unknown rather than the whole expression so far: a layer that mixes
    its units (a normalisation's mean and square root) would otherwise nest every layer's expression in the next.
    """
    if not output.has(unknown):
        return output
    value = _number(output.subs(unknown, at))
    slope = _number(sp.diff(output, unknown).subs(unknown, at))
    return value + slope * (unknown - at)


def gradient_at(spec_source, sample_inputs, sample_targets, params: dict[str, sp.Matrix],
                masks: dict[str, sp.Matrix] | None = None) -> dict[tuple[str, tuple[int, ...]], sp.Expr]:
    """d(sample loss)/d(each weight) at one point, by SymPy, expanding lazily.

    The same scalar forward pass as ``expand_network``, but with every number in place except the one
    weight being differentiated, and each layer's outputs passed on as their first-order expansion in it
    (``_linearised``): the expression stays small at any depth, and the derivative is still SymPy's,
    layer by layer through the chain rule, knowing nothing of deltas. The numbers are carried to ``PRECISION`` digits.
    Keys are (array name, index) as in ``parameter_symbols``;
    ``params`` holds "W1" (fan-in x units) and "b1" (1 x units) matrices of exact numbers; ``masks`` the
    sample's dropout masks ("M2": 1 x fan-in), held fixed (none: evaluation mode).
    """
    network = network_of(load_spec(spec_source))
    unknown = sp.Symbol("t", real=True)
    loss_expr = network.output.loss.expr
    gradient = {}
    for key, at, point in _each_entry(network, params, masks or {}, unknown):
        previous: list[sp.Expr] = [_number(value) for value in sample_inputs]
        for layer in network.layers:
            pre = layer.expanded_preactivation(previous, point)
            previous = [_linearised(out, unknown, at)
                        for out in _activate(layer.calculus, pre, [value.subs(unknown, at) for value in pre])]
        sample_loss = sum(loss_expr.subs({yhat: out, y: target}) for out, target in zip(previous, sample_targets))
        gradient[key] = sp.diff(sample_loss, unknown).subs(unknown, at)
    return gradient


def batch_gradient_at(spec_source, inputs, targets, params: dict[str, sp.Matrix],
                      masks: list[dict[str, sp.Matrix]] | None = None) -> dict[tuple[str, tuple[int, ...]], sp.Expr]:
    """d(batch loss)/d(each weight) at one point, by SymPy: ``gradient_at`` for a batch whose loss is not a sum of
    per-sample losses (batch normalisation while training, each sample's normalised values holding every other
    sample's weighted sums). Every layer's pre-activations are written for all rows of ``inputs`` at once, through
    ``expanded_batch_preactivation`` where the kind has it and sample by sample otherwise; the loss is the sum over
    samples, unscaled. ``masks``: each sample's dropout masks, as ``gradient_at`` takes them.
    """
    network = network_of(load_spec(spec_source))
    masks = [{key: value.applyfunc(_number) for key, value in sample.items()}
             for sample in (masks or [{}] * len(inputs))]
    unknown = sp.Symbol("t", real=True)
    loss_expr = network.output.loss.expr
    gradient = {}
    for key, at, point in _each_entry(network, params, {}, unknown):
        rows = [[_number(value) for value in sample] for sample in inputs]
        for layer in network.layers:
            batch = getattr(layer, "expanded_batch_preactivation", None)
            pres = batch(rows, point) if batch is not None else [
                layer.expanded_preactivation(row, {**sample_masks, **point}) for row, sample_masks in zip(rows, masks)]
            rows = [[_linearised(out, unknown, at)
                     for out in _activate(layer.calculus, pre, [value.subs(unknown, at) for value in pre])]
                    for pre in pres]
        loss = sum(loss_expr.subs({yhat: out, y: target})
                   for row, sample_targets in zip(rows, targets) for out, target in zip(row, sample_targets))
        gradient[key] = sp.diff(loss, unknown).subs(unknown, at)
    return gradient
