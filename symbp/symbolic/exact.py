"""Gradient descent in exact arithmetic, for worksheets and answer keys.

The gradient is SymPy's derivative of the expanded loss (``symbp.symbolic.expanded``), evaluated on
rational data, so theta^(1), theta^(2), ... come out as fractions a student can check by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from symbp.spec.schema import load_spec
from symbp.symbolic.expanded import expand_network
from symbp.symbolic.network import loss_coefficient


def _rational(value) -> sp.Expr:
    # sp.Matrix turns Python floats into sp.Float before they get here, so those are converted too.
    if isinstance(value, sp.Basic) and not isinstance(value, sp.Float):
        return value
    return sp.nsimplify(value, rational=True)


def exact_descent(
    spec_source,
    X: Sequence[Sequence],
    Y: Sequence[Sequence],
    initial: dict[str, Sequence],
    steps: int,
    learning_rate=None,
) -> list[dict[str, sp.Matrix]]:
    """theta^(0), ..., theta^(steps) of full-batch gradient descent, each a dict of SymPy matrices.

    Numbers given as floats are read as the rationals they denote (0.1 is 1/10).
    """
    spec = load_spec(spec_source)
    network = expand_network(spec)
    rate = _rational(spec.training.learning_rate if learning_rate is None else learning_rate)
    rows = [([_rational(v) for v in x], [_rational(v) for v in y]) for x, y in zip(X, Y, strict=True)]
    coefficient = loss_coefficient(spec, len(rows))

    loss_gradient = {}
    for symbol, derivative in network.gradient.items():
        total = sum(
            derivative.subs({**dict(zip(network.inputs, x)), **dict(zip(network.targets, y))}) for x, y in rows
        )
        loss_gradient[symbol] = coefficient * total

    current = {name: sp.Matrix(sp.Matrix(values).reshape(*network.weights[name].shape)).applyfunc(_rational)
               for name, values in initial.items()}
    history = [current]
    for _ in range(steps):
        at = {symbol: current[name][index if len(index) == 2 else (0, index[0])]
              for name, index, symbol in network.parameter_symbols}
        updated = {}
        for name, matrix in network.weights.items():
            gradient = matrix.applyfunc(lambda symbol, at=at: sp.simplify(loss_gradient[symbol].subs(at)))
            updated[name] = current[name] - rate * gradient
        current = updated
        history.append(current)
    return history
