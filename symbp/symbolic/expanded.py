"""The fully expanded loss of a small network: every weight its own SymPy symbol.

This is the independent oracle: it knows nothing of deltas, layers or matrix calculus. It writes
the per-sample loss out in scalars and lets SymPy differentiate it with respect to each weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import sympy as sp

from symbp.registry.calculus import activation_calculus
from symbp.registry.rules import K, k, loss_named, y, yhat, z, z_vec
from symbp.spec.schema import Spec, load_spec

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

    @property
    def parameter_symbols(self) -> list[tuple[str, tuple[int, ...], sp.Symbol]]:
        """(array name, index, symbol) in PARAMS order, row-major within each array."""
        out = []
        for name, matrix in self.weights.items():
            for (i, jj), symbol in np.ndenumerate(np.array(matrix.tolist(), dtype=object)):
                index = (jj,) if name.startswith("b") else (i, jj)
                out.append((name, index, symbol))
        return out

    @cached_property
    def gradient(self) -> dict[sp.Symbol, sp.Expr]:
        """d(sample loss)/d(each weight), straight from SymPy."""
        return {symbol: sp.diff(self.sample_loss, symbol) for _, _, symbol in self.parameter_symbols}

    def evaluate(self, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> tuple[float, dict]:
        """The loss and gradient on data, summed over samples and scaled as the spec says."""
        symbols = [symbol for _, _, symbol in self.parameter_symbols]
        arguments = [*symbols, *self.inputs, *self.targets]
        # Scalar evaluation, one sample at a time: Piecewise becomes a plain conditional.
        function = sp.lambdify(arguments, [self.sample_loss, *self.gradient.values()], modules="math", cse=True)
        values = [float(params[name][index]) for name, index, _ in self.parameter_symbols]
        per_sample = np.array([function(*values, *x_row, *y_row) for x_row, y_row in zip(X.tolist(), Y.tolist())])
        n = X.shape[0]
        coefficient = self.spec.loss.scale / n if self.spec.loss.reduction == "mean" else self.spec.loss.scale
        totals = coefficient * per_sample.sum(axis=0)
        grads = {name: np.zeros(shape) for name, shape in _shapes(self.spec).items()}
        for (name, index, _), value in zip(self.parameter_symbols, totals[1:]):
            grads[name][index] = value
        return float(totals[0]), grads


def _shapes(spec: Spec) -> dict[str, tuple[int, ...]]:
    shapes = {}
    for index, (fan_in, layer) in enumerate(zip(spec.sizes, spec.layers), start=1):
        shapes[f"W{index}"] = (fan_in, layer.units)
        if layer.bias:
            shapes[f"b{index}"] = (layer.units,)
    return shapes


def _activate(name: str, params, preactivations: list[sp.Expr], near: list[sp.Expr] | None = None) -> list[sp.Expr]:
    """The activation of each pre-activation; with ``near`` (their values at a point), each piecewise
    activation is replaced by its piece there, which has the same derivative at that point and spares
    SymPy from reasoning about conditions in the unknown."""
    calculus = activation_calculus(name, params)
    if not calculus.rowwise:
        if near is None:
            return [calculus.forward.subs(z, pre) for pre in preactivations]
        return [_piece_at(calculus.forward, value).subs(z, pre) for pre, value in zip(preactivations, near)]
    units = len(preactivations)
    outputs = []
    for unit in range(units):
        concrete = calculus.forward.subs({K: units, k: unit}).doit()
        outputs.append(concrete.replace(
            lambda e: isinstance(e, sp.Indexed) and e.base == z_vec,
            lambda e: preactivations[int(e.indices[0])],
        ))
    return outputs


def _piece_at(forward: sp.Expr, value: sp.Expr) -> sp.Expr:
    def piece(piecewise: sp.Piecewise) -> sp.Expr:
        return next(expr for expr, condition in piecewise.args if condition.subs(z, value) == sp.true)

    return forward.replace(lambda e: isinstance(e, sp.Piecewise), piece)


def _symbols(prefix: str, column_only: bool = False):
    def entry(i: int, jj: int) -> sp.Symbol:
        suffix = f"{jj + 1}" if column_only else f"{i + 1},{jj + 1}"
        return sp.Symbol(f"{prefix}_{suffix}", real=True)

    return entry


def expand_network(spec_source) -> ExpandedNetwork:
    spec = load_spec(spec_source)
    inputs = tuple(sp.Symbol(f"x_{i + 1}", real=True) for i in range(spec.inputs))
    targets = tuple(sp.Symbol(f"y_{i + 1}", real=True) for i in range(spec.outputs))
    weights: dict[str, sp.Matrix] = {}
    previous: list[sp.Expr] = list(inputs)
    all_pre, all_act = [], []
    for index, (fan_in, layer) in enumerate(zip(spec.sizes, spec.layers), start=1):
        w = sp.Matrix(fan_in, layer.units, _symbols(f"w^{index}"))
        weights[f"W{index}"] = w
        pre = [sum(previous[i] * w[i, jj] for i in range(fan_in)) for jj in range(layer.units)]
        if layer.bias:
            b = sp.Matrix(1, layer.units, _symbols(f"b^{index}", column_only=True))
            weights[f"b{index}"] = b
            pre = [pre[jj] + b[0, jj] for jj in range(layer.units)]
        previous = _activate(layer.activation, layer.activation_params, pre)
        all_pre.append(tuple(pre))
        all_act.append(tuple(previous))
    loss_expr = loss_named(spec.loss.name).expr
    sample_loss = sum(loss_expr.subs({yhat: out, y: target}) for out, target in zip(previous, targets))
    return ExpandedNetwork(spec, weights, inputs, targets, tuple(all_pre), tuple(all_act), sample_loss)



def gradient_at(spec_source, sample_inputs, sample_targets,
                params: dict[str, sp.Matrix]) -> dict[tuple[str, tuple[int, ...]], sp.Expr]:
    """d(sample loss)/d(each weight) at one point, by SymPy, expanding lazily.

    The same scalar forward pass as ``expand_network``, but with every number in place except the one
    weight being differentiated: the expression stays small at any depth, and the derivative is
    still SymPy's, knowing nothing of deltas. The numbers are carried to ``PRECISION`` digits.
    Keys are (array name, index) as in ``parameter_symbols``;
    ``params`` holds "W1" (fan-in x units) and "b1" (1 x units) matrices of exact numbers.
    """
    spec = load_spec(spec_source)
    unknown = sp.Symbol("t", real=True)
    loss_expr = loss_named(spec.loss.name).expr

    def number(value):
        # 30 digits rather than exact values: SymPy decides each piece's condition at once.
        return sp.Float(sp.N(value, PRECISION), PRECISION)

    gradient = {}
    for name, matrix in params.items():
        for i in range(matrix.rows):
            for jj in range(matrix.cols):
                point = {key: value.applyfunc(number).as_mutable() for key, value in params.items()}
                point[name][i, jj] = unknown
                previous: list[sp.Expr] = [number(value) for value in sample_inputs]
                for index, (fan_in, layer) in enumerate(zip(spec.sizes, spec.layers), start=1):
                    w = point[f"W{index}"]
                    pre = [sum(previous[r] * w[r, c] for r in range(fan_in)) for c in range(layer.units)]
                    if layer.bias:
                        pre = [pre[c] + point[f"b{index}"][0, c] for c in range(layer.units)]
                    near = [value.subs(unknown, number(matrix[i, jj])) for value in pre]
                    previous = _activate(layer.activation, layer.activation_params, pre, near)
                outputs = zip(previous, sample_targets)
                sample_loss = sum(loss_expr.subs({yhat: out, y: target}) for out, target in outputs)
                key = (name, (jj,) if name.startswith("b") else (i, jj))
                gradient[key] = sp.diff(sample_loss, unknown).subs(unknown, number(matrix[i, jj]))
    return gradient
