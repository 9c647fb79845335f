"""SymPy's derivative of the expanded loss, taken at the check's point.

The same oracle as ``ExpandedNetwork.gradient`` (the per-sample loss written out in scalars and
differentiated by SymPy, knowing nothing of deltas or layers), evaluated where the check needs it.
For each unit, the loss is written with the unit's pre-activation ``c*t + d``: ``t`` stands for one of
the unit's incoming weights (or its bias), ``c`` for what that weight multiplies, ``d`` for the rest
of the sum. The other units of its layer and the targets are symbols too, standing for a sample's
numbers; every later weight is a ``PRECISION``-digit number, so the expression grows with the
layers after the unit, not with the whole network. Each piecewise activation (and loss) is replaced
by its piece at the point, which has the same derivative there and spares SymPy conditions in the
unknown. SymPy differentiates that loss in ``t`` once per unit and choice of pieces, the derivative is
lambdified for mpmath, and each weight of each sample puts its own numbers in, to ``PRECISION`` digits.

Its cost is the number of differentiations (units x the distinct choices of pieces among the samples)
x (operations in a first-layer unit's loss + ``FIXED_OPERATIONS``). ``plan_expanded`` measures that
before the work and runs the oracle on as many samples as fit ``EXPANDED_COST_LIMIT``; where not even
one fits, the oracle is skipped. Either way the check's report says so, with the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import mpmath
import numpy as np
import sympy as sp

from symbp.registry.calculus import activation_calculus
from symbp.registry.rules import K, k, loss_named, y, yhat, z, z_vec
from symbp.spec.schema import Spec
from symbp.symbolic.expanded import (
    EXPANDED_PARAMETER_LIMIT,
    PRECISION,
    _piece_at,
    batch_gradient_at,
    expand_network,
    gradient_at,
)
from symbp.symbolic.layers import fully_connected
from symbp.symbolic.network import loss_coefficient, network_of
from symbp.symbolic.penalties import weight_penalties

# The most work the oracle takes on, in differentiations x (operations + FIXED_OPERATIONS) (see the
# module's docstring): a few seconds, at the speeds benchmarks/check_time.py measures.
EXPANDED_COST_LIMIT = 20_000
# The most differentiations (parameters x samples) the one-parameter-at-a-time oracle takes on unasked: each
# costs SymPy up to a second through a layer normalisation's square root of a sum; at least one sample is taken.
PER_PARAMETER_LIMIT = 60
# What one differentiation costs however small its loss: building, differentiating and lambdifying it.
FIXED_OPERATIONS = 100

_weight = sp.Dummy("t", real=True)
_multiplier = sp.Dummy("c", real=True)
_rest = sp.Dummy("d", real=True)


def _number(value) -> sp.Float:
    return sp.Float(value, PRECISION)


@cache
def _stand_ins(prefix: str, count: int) -> tuple[sp.Dummy, ...]:
    """Symbols for a sample's numbers: the other units of a layer ("o"), the targets ("y")."""
    return tuple(sp.Dummy(f"{prefix}{position}", real=True) for position in range(count))


@dataclass(frozen=True)
class Point:
    """The parameters, one sample and every layer's pre-activations and activations there, as numbers."""

    spec: Spec
    weights: dict[str, list[list[sp.Float]]]  # "W1" -> rows of fan_in, "b1" -> one row
    matrices: dict[str, sp.Matrix]  # the same numbers as matrices, for the layers' expanded pre-activations
    inputs: list[sp.Float]
    targets: list[sp.Float]
    preactivations: list[list[sp.Float]]
    activations: list[list[sp.Float]]

    def layer_inputs(self, layer_number: int) -> list[sp.Float]:
        return self.inputs if layer_number == 1 else self.activations[layer_number - 2]


@cache
def _rowwise_forms(name: str, params: tuple, units: int) -> tuple[tuple[sp.Symbol, ...], tuple[sp.Expr, ...]]:
    """A row-wise activation (softmax) of ``units`` pre-activations: one expression per output, in plain symbols."""
    calculus = activation_calculus(name, params)
    inputs = tuple(sp.Dummy(f"z{unit}", real=True) for unit in range(units))
    forms = []
    for unit in range(units):
        concrete = calculus.forward.subs({K: units, k: unit}).doit()
        forms.append(concrete.replace(lambda e: isinstance(e, sp.Indexed) and e.base == z_vec,
                                      lambda e: inputs[int(e.indices[0])]))
    return inputs, tuple(forms)


def _activate(layer, pre: list[sp.Expr], near: list[sp.Float]) -> list[sp.Expr]:
    """The layer's activations of ``pre``; each piecewise one takes its piece at ``near``."""
    calculus = activation_calculus(layer.activation, layer.activation_params)
    if calculus.rowwise:
        inputs, forms = _rowwise_forms(layer.activation, layer.activation_params, len(pre))
        mapping = dict(zip(inputs, pre))
        return [form.xreplace(mapping) for form in forms]
    return [_piece_at(calculus.forward, at).xreplace({z: value}) for value, at in zip(pre, near)]


def point_at(spec: Spec, params: dict[str, np.ndarray], x_row, y_row) -> Point:
    weights = {name: np.atleast_2d(np.asarray(array, dtype=np.float64)).tolist() for name, array in params.items()}
    weights = {name: [[_number(value) for value in row] for row in rows] for name, rows in weights.items()}
    matrices = {name: sp.Matrix(rows) for name, rows in weights.items()}
    inputs = [_number(value) for value in x_row]
    previous = inputs
    pres, acts = [], []
    for layer, symbolic in zip(spec.layers, network_of(spec).layers):
        pre = symbolic.expanded_preactivation(previous, matrices)
        previous = [value.evalf(PRECISION) for value in _activate(layer, pre, pre)]
        pres.append(pre)
        acts.append(previous)
    return Point(spec, weights, matrices, inputs, [_number(value) for value in y_row], pres, acts)


def _loss_pieces(spec: Spec, point: Point) -> list[sp.Expr]:
    """The loss of each output with a ``where`` loss's piece chosen at the point."""
    loss = loss_named(spec.loss.name).expr
    pieces = []
    for near, target in zip(point.activations[-1], point.targets):
        values = {yhat: near, y: target}

        def piece(piecewise: sp.Piecewise, values=values) -> sp.Expr:
            return next(expr for expr, condition in piecewise.args if condition.subs(values) == sp.true)

        pieces.append(loss.replace(lambda e: isinstance(e, sp.Piecewise), piece))
    return pieces


def _choices(point: Point, layer_number: int, unit: int) -> tuple[sp.Expr, ...]:
    """The piece of every function the unit's loss goes through, at the point: samples that agree share a loss."""
    spec = point.spec
    chosen = []
    for index in range(layer_number, len(spec.layers) + 1):
        layer = spec.layers[index - 1]
        calculus = activation_calculus(layer.activation, layer.activation_params)
        if not calculus.rowwise:
            units = [unit] if index == layer_number else range(layer.units)
            chosen.extend(_piece_at(calculus.forward, point.preactivations[index - 1][c]) for c in units)
    return (*chosen, *_loss_pieces(spec, point))


def unit_loss(point: Point, layer_number: int, unit: int) -> tuple[sp.Expr, list[sp.Symbol]]:
    """One sample's loss in the unit's pre-activation ``c*t + d``, and the symbols it takes, in order:
    t, c, d, the other units of the layer (their activations; their pre-activations for softmax), the targets.
    Every later weight is a number, and every piecewise function takes its piece at the point."""
    spec = point.spec
    layer = spec.layers[layer_number - 1]
    others = _stand_ins("o", layer.units)
    targets = _stand_ins("y", spec.outputs)
    own = _multiplier * _weight + _rest
    calculus = activation_calculus(layer.activation, layer.activation_params)
    if calculus.rowwise:
        pre = [own if c == unit else others[c] for c in range(layer.units)]
        activated = _activate(layer, pre, point.preactivations[layer_number - 1])
    else:
        piece = _piece_at(calculus.forward, point.preactivations[layer_number - 1][unit])
        activated = [piece.xreplace({z: own}) if c == unit else others[c] for c in range(layer.units)]
    later = network_of(spec).layers[layer_number:]
    for index, symbolic in enumerate(later, start=layer_number + 1):
        pre = symbolic.expanded_preactivation(activated, point.matrices)
        activated = _activate(spec.layers[index - 1], pre, point.preactivations[index - 1])
    loss = sp.Add(*(piece.xreplace({yhat: out, y: target})
                    for piece, out, target in zip(_loss_pieces(spec, point), activated, targets)))
    return loss, [_weight, _multiplier, _rest, *others, *targets]


def _shared_parts(expr: sp.Expr):
    # Without canonical ordering cse takes half the time; the order only changes how terms are grouped.
    return sp.cse(expr, order="none", list=False)


def _derivative(point: Point, layer_number: int, unit: int) -> Callable:
    """SymPy's derivative of the unit's loss in ``t``, lambdified for mpmath (its repeated parts computed once)."""
    loss, arguments = unit_loss(point, layer_number, unit)
    return sp.lambdify(arguments, sp.diff(loss, _weight), modules="mpmath", cse=_shared_parts)


@cache
def _operations(expr: sp.Expr) -> int:
    return int(sp.count_ops(expr))


def _mp(value) -> mpmath.mpf:
    return mpmath.mpf(_number(value)._mpf_)


def _unit_numbers(point: Point, layer_number: int, unit: int) -> tuple[list, list[mpmath.mpf]]:
    """For each weight into the unit: its key, and its t, c, d; then the sample's numbers for the other symbols."""
    spec = point.spec
    layer = spec.layers[layer_number - 1]
    inputs = point.layer_inputs(layer_number)
    w = point.weights[f"W{layer_number}"]
    terms = [inputs[r] * w[r][unit] for r in range(spec.sizes[layer_number - 1])]
    weights = [((f"W{layer_number}", (r, unit)), w[r][unit], inputs[r]) for r in range(len(terms))]
    if layer.bias:
        bias = point.weights[f"b{layer_number}"][0][unit]
        terms.append(bias)
        weights.append(((f"b{layer_number}", (unit,)), bias, 1))
    per_weight = [(key, _mp(value), _mp(multiplier), _mp(sp.Add(*(t for o, t in enumerate(terms) if o != position))))
                  for position, (key, value, multiplier) in enumerate(weights)]
    calculus = activation_calculus(layer.activation, layer.activation_params)
    neighbours = point.preactivations if calculus.rowwise else point.activations
    return per_weight, [_mp(value) for value in (*neighbours[layer_number - 1], *point.targets)]


class ExpandedOracle:
    """The oracle at the check's parameters and samples: its cost for the first samples, and its gradient."""

    def __init__(self, spec: Spec, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray):
        self.spec, self.params = spec, params
        self.points = [point_at(spec, params, x_row, y_row) for x_row, y_row in zip(X.tolist(), Y.tolist())]
        self.units = [(layer_number, unit) for layer_number, layer in enumerate(spec.layers, start=1)
                      for unit in range(layer.units)]
        self.keys = [{(layer_number, unit): _choices(point, layer_number, unit) for layer_number, unit in self.units}
                     for point in self.points]

    def differentiations(self, samples: int) -> int:
        """How many losses SymPy differentiates for the first ``samples`` samples."""
        return len({(where, keys[where]) for keys in self.keys[:samples] for where in self.units})

    def operations(self) -> int:
        """Operations in the first sample's loss of the first unit (a first-layer unit's loss is the largest),
        counted from the sizes of its parts before any of it is built: it can grow as fast as the product of
        the layers' widths and of the times each activation uses its argument."""
        point, spec = self.points[0], self.spec
        sizes: list[int] = []
        for index, layer in enumerate(spec.layers, start=1):
            calculus = activation_calculus(layer.activation, layer.activation_params)
            if index == 1:  # c*t + d in the first unit; the other units are symbols
                pre = [2] + [0] * (layer.units - 1)
            else:  # each unit sums every unit before it, times its weight, and its bias
                pre = [sum(size + 1 for size in sizes) + len(sizes) - 1 + layer.bias] * layer.units
            if calculus.rowwise:
                inputs, forms = _rowwise_forms(layer.activation, layer.activation_params, layer.units)
                sizes = [_operations(form) + sum(form.count(symbol) * size for symbol, size in zip(inputs, pre))
                         for form in forms]
            else:
                near = point.preactivations[index - 1]
                sizes = [_operations(piece) + piece.count(z) * size if size else 0
                         for piece, size in ((_piece_at(calculus.forward, at), size) for at, size in zip(near, pre))]
        losses = _loss_pieces(spec, point)
        return max(sum(_operations(loss) + loss.count(yhat) * size for loss, size in zip(losses, sizes))
                   + len(sizes) - 1, 1)

    def gradient(self, samples: int) -> dict[str, np.ndarray]:
        """SymPy's derivative of the expanded loss over the first ``samples`` samples, scaled as the spec says."""
        totals = {name: np.zeros(np.shape(array), dtype=object) for name, array in self.params.items()}
        derivatives: dict[tuple, Callable] = {}
        with mpmath.workdps(PRECISION):
            for array in totals.values():
                array.fill(mpmath.mpf(0))
            for point, keys in zip(self.points[:samples], self.keys):
                for where in self.units:
                    if (where, keys[where]) not in derivatives:
                        derivatives[where, keys[where]] = _derivative(point, *where)
                    derivative = derivatives[where, keys[where]]
                    per_weight, numbers = _unit_numbers(point, *where)
                    for (name, index), value, multiplier, rest in per_weight:
                        totals[name][index] += derivative(value, multiplier, rest, *numbers)
        coefficient = float(loss_coefficient(self.spec, samples))
        return {name: coefficient * np.vectorize(float, otypes=[np.float64])(array) for name, array in totals.items()}


def expanded_gradient(spec: Spec, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
    """SymPy's derivative of the expanded loss at ``params`` over the samples ``X``, ``Y``, scaled as the spec says."""
    return ExpandedOracle(spec, params, X, Y).gradient(X.shape[0])


class WholeLossOracle:
    """SymPy's derivative of the whole expanded loss, built through each layer's own expanded form.

    For a network with a layer that is not fully connected, whose units the per-unit oracle cannot write
    as weighted sums, or with weight penalties; slower, so only within ``EXPANDED_PARAMETER_LIMIT``.
    """

    def __init__(self, spec: Spec, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                 masks: dict[str, np.ndarray] | None = None):
        self.spec, self.params, self.X, self.Y, self.masks = spec, params, X, Y, masks

    def gradient(self, samples: int) -> dict[str, np.ndarray]:
        masks = None if self.masks is None else {name: mask[:samples] for name, mask in self.masks.items()}
        return expand_network(self.spec).evaluate(self.params, self.X[:samples], self.Y[:samples], masks)[1]


class PerParameterOracle:
    """SymPy's derivative of each sample's expanded loss, one parameter at a time at the check's point
    (``symbp.symbolic.expanded.gradient_at``): every other parameter a number, so the loss stays one
    unknown deep. For layer kinds whose expanded form written whole is out of SymPy's reach (a layer
    normalisation nests square roots of sums over all its units: ``Layer.expanded_per_parameter``).
    """

    def __init__(self, spec: Spec, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                 masks: dict[str, np.ndarray] | None = None, statistics: dict[str, np.ndarray] | None = None):
        self.spec, self.X, self.Y, self.masks = spec, X, Y, masks or {}
        network = network_of(spec)
        self.parameters = network.parameters
        self.values = {p.name: sp.Matrix(*p.symbol.shape, [sp.Rational(float(v)) for v in np.ravel(params[p.name])])
                       for p in self.parameters}
        # Batch normalisation's running statistics in evaluation mode: the same numbers for every sample.
        self.statistics = {name: sp.Matrix(1, np.size(array), [sp.Rational(float(v)) for v in np.ravel(array)])
                           for name, array in (statistics or {}).items()}

    def _sample_masks(self, row: int) -> dict[str, sp.Matrix]:
        """The sample's dropout masks, held fixed (a row each)."""
        return {name: sp.Matrix(1, mask.shape[1], [sp.Rational(float(v)) for v in mask[row]])
                for name, mask in self.masks.items()}

    def gradient(self, samples: int) -> dict[str, np.ndarray]:
        totals = {p.name: np.zeros(p.shape) for p in self.parameters}
        for row, (x_row, y_row) in enumerate(zip(self.X[:samples].tolist(), self.Y[:samples].tolist())):
            fixed = {**self._sample_masks(row), **self.statistics}
            for (name, index), value in gradient_at(self.spec, x_row, y_row, self.values, fixed).items():
                totals[name][index] += float(value)
        return self._scaled(totals, samples)

    def _scaled(self, totals: dict[str, np.ndarray], samples: int) -> dict[str, np.ndarray]:
        """The summed derivatives scaled as the spec's loss says, plus the weight penalties' derivatives."""
        spec = self.spec
        coefficient = float(loss_coefficient(spec, samples))
        grads = {name: coefficient * array for name, array in totals.items()}
        # The weight penalties are on the whole loss, once: SymPy's derivative of each at each entry.
        for penalty in weight_penalties(network_of(spec)):
            values = self.values[penalty.parameter.name]
            for index in penalty.parameter.entries():
                entry = values[penalty.parameter.matrix_entry(index)]
                grads[penalty.parameter.name][index] += float(penalty.derivative(entry))
        return grads


class BatchOracle(PerParameterOracle):
    """SymPy's derivative of the whole batch's expanded loss, one parameter at a time at the check's point
    (``symbp.symbolic.expanded.batch_gradient_at``): for a network with batch normalisation in training mode,
    whose loss is no sum of per-sample losses, each layer written over all the samples at once."""

    def gradient(self, samples: int) -> dict[str, np.ndarray]:
        totals = {p.name: np.zeros(p.shape) for p in self.parameters}
        masks = [self._sample_masks(row) for row in range(samples)]
        derivatives = batch_gradient_at(self.spec, self.X[:samples].tolist(), self.Y[:samples].tolist(), self.values,
                                        masks)
        for (name, index), value in derivatives.items():
            totals[name][index] += float(value)
        return self._scaled(totals, samples)


def _batch_coupled(network) -> bool:
    """Whether some layer normalises over the batch (its training-mode loss does not split by sample)."""
    return any(hasattr(layer, "expanded_batch_preactivation") for layer in network.layers)


def _per_parameter(network) -> bool:
    return any(getattr(layer, "expanded_per_parameter", False) for layer in network.layers)


@dataclass(frozen=True)
class ExpandedPlan:
    """How much of the check's data the oracle takes on, and why not more."""

    parameters: int
    requested: int  # samples the check uses
    samples: int  # samples the oracle uses: 0 when it is skipped
    operations: int = 0  # in a first-layer unit's loss; 0 when not measured
    differentiations: tuple[int, ...] = ()  # for the first 1, 2, ... requested samples
    asked: bool = True  # False when the caller turned the oracle off
    oracle: ExpandedOracle | WholeLossOracle | PerParameterOracle | BatchOracle | None = None

    def cost(self, samples: int) -> int:
        """The work for the first ``samples`` samples, in the units of ``EXPANDED_COST_LIMIT``."""
        return self.differentiations[samples - 1] * (self.operations + FIXED_OPERATIONS)

    def _rule(self, samples: int) -> str:
        return (f"{self.differentiations[samples - 1]} differentiations x ({self.operations} operations in a "
                f"first-layer unit's loss + {FIXED_OPERATIONS}) = {self.cost(samples):,}, over the limit of "
                f"{EXPANDED_COST_LIMIT:,}")

    @property
    def note(self) -> str | None:
        """What the report must say: nothing when the oracle runs on every sample."""
        if not self.asked:
            return "expanded oracle not run: turned off by the caller"
        if isinstance(self.oracle, WholeLossOracle):
            return None
        if isinstance(self.oracle, PerParameterOracle):
            if self.samples == self.requested:
                return None
            return (f"expanded oracle on {self.samples} of {self.requested} samples: differentiated one parameter "
                    f"at a time, {self.parameters} x {self.requested} differentiations are over the limit of "
                    f"{PER_PARAMETER_LIMIT}")
        if not self.operations:
            return (f"expanded oracle skipped: {self.parameters} parameters, over the {EXPANDED_PARAMETER_LIMIT} "
                    "the loss is written out for")
        if self.samples == 0:
            return f"expanded oracle skipped: one sample needs {self._rule(1)}"
        if self.samples < self.requested:
            return (f"expanded oracle on {self.samples} of {self.requested} samples: all of them need "
                    f"{self._rule(self.requested)}")
        return None

    def gradient(self) -> dict[str, np.ndarray]:
        return self.oracle.gradient(self.samples)


def plan_expanded(spec: Spec, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                  expanded: bool | None = None, masks: dict[str, np.ndarray] | None = None,
                  statistics: dict[str, np.ndarray] | None = None) -> ExpandedPlan:
    """How many samples the oracle can take on: all of them unless the size rule says fewer (or none).

    ``expanded`` True takes every sample whatever the size, False turns the oracle off, None applies the limits.
    ``masks``: the dropout masks the module's gradient was taken with (by mask name), held fixed.
    ``statistics``: for a network with batch normalisation, its running statistics (by name) in evaluation mode;
    None is training mode, where the oracle differentiates the whole batch's loss (``BatchOracle``), on 2
    samples or more.
    """
    parameters, requested = spec.parameter_count, X.shape[0]
    if expanded is False:
        return ExpandedPlan(parameters, requested, 0, asked=False)
    if expanded is None and parameters > EXPANDED_PARAMETER_LIMIT:
        return ExpandedPlan(parameters, requested, 0)
    network = network_of(spec)
    if _batch_coupled(network):
        fits = requested if expanded else min(requested, max(2, PER_PARAMETER_LIMIT // parameters))
        if statistics is not None:
            return ExpandedPlan(parameters, requested, fits,
                                oracle=PerParameterOracle(spec, params, X, Y, masks, statistics))
        return ExpandedPlan(parameters, requested, fits if requested >= 2 else 0,
                            oracle=BatchOracle(spec, params, X, Y, masks))
    # Units that are weighted sums, and a loss that is a sum over samples, are what the per-unit oracle writes;
    # other layer kinds, and weight penalties (one term for the whole loss), are expanded whole.
    if _per_parameter(network):
        fits = requested if expanded else min(requested, max(1, PER_PARAMETER_LIMIT // parameters))
        return ExpandedPlan(parameters, requested, fits, oracle=PerParameterOracle(spec, params, X, Y, masks))
    if not all(fully_connected(layer) for layer in network.layers) or weight_penalties(network):
        return ExpandedPlan(parameters, requested, requested, oracle=WholeLossOracle(spec, params, X, Y, masks))
    oracle = ExpandedOracle(spec, params, X, Y)
    counts = tuple(oracle.differentiations(samples) for samples in range(1, requested + 1))
    plan = ExpandedPlan(parameters, requested, requested, oracle.operations(), counts, oracle=oracle)
    if expanded:
        return plan
    fits = sum(1 for samples in range(1, requested + 1) if plan.cost(samples) <= EXPANDED_COST_LIMIT)
    return ExpandedPlan(parameters, requested, fits, plan.operations, counts, oracle=oracle)
