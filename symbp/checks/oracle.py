"""SymPy's derivative of the expanded loss, taken at the check's point.

The same oracle as ``ExpandedNetwork.gradient`` (the per-sample loss written out in scalars and
differentiated by SymPy, knowing nothing of deltas or layers), evaluated where the check needs it.
For each sample and each unit, every quantity is a ``PRECISION``-digit number except the unit's
pre-activation, written ``c*t + d``: ``t`` is one of the unit's incoming weights (or its bias), ``c``
what that weight multiplies, ``d`` the rest of the sum. SymPy differentiates the loss in ``t`` once
per unit; each of the unit's weights then puts its own numbers in for ``c``, ``d`` and ``t``.
Everything that does not depend on ``t`` is a number, so the expression grows with the layers after
the unit, not with the whole network; each piecewise activation (and loss) is replaced by its piece
at the point, which has the same derivative there and spares SymPy conditions in the unknown.

Its cost grows as samples x parameters x (operations in a first-layer unit's loss + ``FIXED_OPERATIONS``).
``plan_expanded`` measures that before the work and runs the oracle on as many samples as fit
``EXPANDED_COST_LIMIT``; where not even one fits, the oracle is skipped. Either way the check's
report says so, with the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp

from symbp.registry.calculus import activation_calculus
from symbp.registry.rules import K, k, loss_named, y, yhat, z, z_vec
from symbp.spec.schema import Spec
from symbp.symbolic.expanded import EXPANDED_PARAMETER_LIMIT, PRECISION, _piece_at

# The most work the oracle takes on, in samples x parameters x (operations + FIXED_OPERATIONS): at the
# 20 to 100 microseconds each measured by benchmarks/check_time.py, one to six seconds.
EXPANDED_COST_LIMIT = 60_000
# What one weight costs however small its loss: a differentiation shared by its unit and a substitution.
FIXED_OPERATIONS = 100

_weight = sp.Dummy("t", real=True)
_multiplier = sp.Dummy("c", real=True)
_rest = sp.Dummy("d", real=True)


def _number(value) -> sp.Float:
    return sp.Float(value, PRECISION)


@dataclass(frozen=True)
class Point:
    """The parameters, one sample and every layer's pre-activations and activations there, as numbers."""

    spec: Spec
    weights: dict[str, list[list[sp.Float]]]  # "W1" -> rows of fan_in, "b1" -> one row
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


def _loss_terms(spec: Spec, outputs: list[sp.Expr], point: Point) -> sp.Expr:
    """The sample's loss, summed over outputs, with a ``where`` loss's piece chosen at the point."""
    loss = loss_named(spec.loss.name).expr
    terms = []
    for out, near, target in zip(outputs, point.activations[-1], point.targets):
        values = {yhat: near, y: target}

        def piece(piecewise: sp.Piecewise, values=values) -> sp.Expr:
            return next(expr for expr, condition in piecewise.args if condition.subs(values) == sp.true)

        terms.append(loss.replace(lambda e: isinstance(e, sp.Piecewise), piece).xreplace({yhat: out, y: target}))
    return sp.Add(*terms)


def point_at(spec: Spec, params: dict[str, np.ndarray], x_row, y_row) -> Point:
    weights = {name: np.atleast_2d(np.asarray(array, dtype=np.float64)).tolist() for name, array in params.items()}
    weights = {name: [[_number(value) for value in row] for row in rows] for name, rows in weights.items()}
    inputs = [_number(value) for value in x_row]
    previous = inputs
    pres, acts = [], []
    for index, (fan_in, layer) in enumerate(zip(spec.sizes, spec.layers), start=1):
        w = weights[f"W{index}"]
        pre = [sp.Add(*(previous[r] * w[r][c] for r in range(fan_in))) for c in range(layer.units)]
        if layer.bias:
            pre = [pre[c] + weights[f"b{index}"][0][c] for c in range(layer.units)]
        previous = [value.evalf(PRECISION) for value in _activate(layer, pre, pre)]
        pres.append(pre)
        acts.append(previous)
    return Point(spec, weights, inputs, [_number(value) for value in y_row], pres, acts)


def unit_loss(point: Point, layer_number: int, unit: int) -> sp.Expr:
    """One sample's loss with the unit's pre-activation written ``c*t + d`` and every other quantity a number."""
    spec = point.spec
    pre = list(point.preactivations[layer_number - 1])
    pre[unit] = _multiplier * _weight + _rest
    layer = spec.layers[layer_number - 1]
    activated = _activate(layer, pre, point.preactivations[layer_number - 1])
    calculus = activation_calculus(layer.activation, layer.activation_params)
    if not calculus.rowwise:  # the other units of an elementwise layer do not see t
        activated = [value if c == unit else point.activations[layer_number - 1][c]
                     for c, value in enumerate(activated)]
    for index in range(layer_number + 1, len(spec.layers) + 1):
        layer = spec.layers[index - 1]
        w = point.weights[f"W{index}"]
        pre = [sp.Add(*(activated[r] * w[r][c] for r in range(spec.sizes[index - 1]))) for c in range(layer.units)]
        if layer.bias:
            pre = [pre[c] + point.weights[f"b{index}"][0][c] for c in range(layer.units)]
        activated = _activate(layer, pre, point.preactivations[index - 1])
    return _loss_terms(spec, activated, point)


def unit_gradient(point: Point, layer_number: int, unit: int) -> dict[tuple[str, tuple[int, ...]], sp.Float]:
    """d(sample loss)/d(each weight into the unit, and its bias), by SymPy, at the point."""
    derivative = sp.diff(unit_loss(point, layer_number, unit), _weight)
    fan_in = point.spec.sizes[layer_number - 1]
    inputs = point.layer_inputs(layer_number)
    w = point.weights[f"W{layer_number}"]
    bias = point.weights.get(f"b{layer_number}") if point.spec.layers[layer_number - 1].bias else None
    terms = [inputs[r] * w[r][unit] for r in range(fan_in)] + ([bias[0][unit]] if bias else [])
    weights = [((f"W{layer_number}", (r, unit)), inputs[r], w[r][unit]) for r in range(fan_in)]
    if bias:
        weights.append(((f"b{layer_number}", (unit,)), sp.Integer(1), bias[0][unit]))
    gradient = {}
    for position, (key, multiplier, value) in enumerate(weights):
        rest = sp.Add(*(term for other, term in enumerate(terms) if other != position))
        at = derivative.xreplace({_multiplier: multiplier, _rest: rest, _weight: value})
        gradient[key] = at.evalf(PRECISION)
    return gradient


@dataclass(frozen=True)
class ExpandedPlan:
    """How much of the check's data the oracle takes on, and why not more."""

    parameters: int
    operations: int  # in one sample's loss with a first-layer unit's pre-activation unknown; 0 if not measured
    requested: int  # samples the check uses
    samples: int  # samples the oracle uses: 0 when it is skipped
    asked: bool = True  # False when the caller turned the oracle off

    @property
    def cost(self) -> int:
        """The work per sample, in the units of ``EXPANDED_COST_LIMIT``."""
        return self.parameters * (self.operations + FIXED_OPERATIONS)

    @property
    def note(self) -> str | None:
        """What the report must say: nothing when the oracle runs on every sample."""
        if not self.asked:
            return "expanded oracle not run: turned off by the caller"
        if self.operations == 0 and self.samples == 0:
            return (f"expanded oracle skipped: {self.parameters} parameters, over the {EXPANDED_PARAMETER_LIMIT} "
                    "the loss is written out for")
        per_sample = (f"{self.parameters} parameters x ({self.operations} operations in a first-layer unit's "
                      f"loss + {FIXED_OPERATIONS}) = {self.cost:,}")
        if self.samples == 0:
            return f"expanded oracle skipped: one sample costs {per_sample}, over the limit of {EXPANDED_COST_LIMIT:,}"
        if self.samples < self.requested:
            return (f"expanded oracle on {self.samples} of {self.requested} samples: each costs {per_sample}, "
                    f"and the limit is {EXPANDED_COST_LIMIT:,}")
        return None


def plan_expanded(spec: Spec, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray,
                  expanded: bool | None = None) -> ExpandedPlan:
    """How many samples the oracle can take on: all of them unless the size rule says fewer (or none).

    ``expanded`` True takes every sample whatever the size, False turns the oracle off, None applies the limits.
    """
    parameters = spec.parameter_count
    requested = X.shape[0]
    if expanded is False:
        return ExpandedPlan(parameters, 0, requested, 0, asked=False)
    if expanded is None and parameters > EXPANDED_PARAMETER_LIMIT:
        return ExpandedPlan(parameters, 0, requested, 0)
    operations = max(sp.count_ops(unit_loss(point_at(spec, params, X[0], Y[0]), 1, 0)), 1)
    plan = ExpandedPlan(parameters, operations, requested, requested)
    if expanded:
        return plan
    return ExpandedPlan(parameters, operations, requested, min(requested, EXPANDED_COST_LIMIT // plan.cost))


def expanded_gradient(spec: Spec, params: dict[str, np.ndarray], X: np.ndarray, Y: np.ndarray) -> dict[str, np.ndarray]:
    """SymPy's derivative of the expanded loss at ``params`` over the samples ``X``, ``Y``, scaled as the spec says."""
    totals = {name: np.zeros(np.shape(array), dtype=object) for name, array in params.items()}
    for array in totals.values():
        array.fill(sp.Integer(0))
    for x_row, y_row in zip(X.tolist(), Y.tolist()):
        point = point_at(spec, params, x_row, y_row)
        for layer_number, layer in enumerate(spec.layers, start=1):
            for unit in range(layer.units):
                for (name, index), value in unit_gradient(point, layer_number, unit).items():
                    totals[name][index] += value
    count = X.shape[0]
    coefficient = spec.loss.scale / count if spec.loss.reduction == "mean" else spec.loss.scale
    return {name: coefficient * np.vectorize(float, otypes=[np.float64])(array) for name, array in totals.items()}
