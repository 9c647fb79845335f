"""The numbers of a worksheet, drawn so that no exercise is degenerate.

A hand exercise is redrawn while any gradient or error term vanishes (a dead ReLU, an output that
already equals its target, two error terms cancelling), or while a pre-activation sits on the kink of
a piecewise activation, where its derivative is a convention rather than a value. The screen runs in
float64 on a plain forward pass and central differences, so it costs little next to the exact
arithmetic that follows.

The line-fitting exercise is not drawn at random but taken from a fixed shuffle of every admissible
problem, so variants 1, 2, ... up to ``len(line_problems())`` are pairwise different, all differ from
variant 0 (the lab's own numbers), and none starts on, or steps onto, the line it is fitting.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

import numpy as np
import sympy as sp

from symbp.errors import SymbpError
from symbp.registry import rules
from symbp.registry.calculus import activation_calculus
from symbp.registry.rules import activation_named, loss_named, targets_for
from symbp.spec.schema import Spec
from symbp.symbolic.layers import concrete_rowwise, rowwise_variables
from symbp.symbolic.network import network_of

# Values a hand exercise draws from: small, and halves at most, so every step can be done on paper.
INPUT_CHOICES = (Fraction(-1), Fraction(1), Fraction(2), Fraction(1, 2))
WEIGHT_CHOICES = (Fraction(-1), Fraction(-1, 2), Fraction(1, 2), Fraction(1), Fraction(2))
BIAS_CHOICES = (Fraction(-1), Fraction(0), Fraction(1, 2), Fraction(1))
TARGET_CHOICES = (Fraction(-1), Fraction(0), Fraction(1), Fraction(2))
MOST_DRAWS = 500
# Gradients below this (relative to the loss's size) are taken as zero: central differences in float64
# leave about 1e-10 where the exact value is 0, and a real gradient this small is no exercise either.
SMALLEST_GRADIENT = 1e-6
STEP = 1e-5

# The line-fitting exercise: the lab's numbers for variant 0, and the ranges the others come from.
LAB_LINE = (3, 1, (1, 2, 3, 4), (1, 0))
SLOPES = (-3, -2, -1, 1, 2, 3, 4)
INTERCEPTS = (-2, -1, 0, 1, 2, 3)
X_RANGE = range(-2, 5)
POINTS = 4
STARTS = tuple(itertools.product((-1, 0, 1, 2), (-1, 0, 1)))
SHUFFLE_SEED = 20241
LINE_RATE = 0.1
SAME = 1e-9
LINE_STEPS = 3


@dataclass(frozen=True)
class HandNumbers:
    """Input, target and parameters of a hand exercise, as exact fractions."""

    x: tuple[Fraction, ...]
    y: tuple[Fraction, ...]
    params: dict[str, tuple[tuple[Fraction, ...], ...]]  # "W1": fan-in rows of units; "b1": one row of units


@dataclass(frozen=True)
class LineProblem:
    slope: int
    intercept: int
    xs: tuple[int, ...]
    start: tuple[int, int]


def _targets(spec: Spec, rng: random.Random) -> tuple[Fraction, ...]:
    last = spec.layers[-1]
    kind = targets_for(loss_named(spec.loss.name), activation_named(last.activation))
    if kind.rows_sum_to_one:
        hot = rng.randrange(last.units)
        return tuple(Fraction(int(k == hot)) for k in range(last.units))
    if kind.bounded:
        return tuple(Fraction(rng.choice((0, 1))) for _ in range(last.units))
    return tuple(rng.choice(TARGET_CHOICES) for _ in range(last.units))


def _draw_once(spec: Spec, rng: random.Random) -> HandNumbers:
    x = tuple(rng.choice(INPUT_CHOICES) for _ in range(spec.inputs))
    y = _targets(spec, rng)
    params = {}
    for parameter in network_of(spec).parameters:
        rows, cols = parameter.symbol.shape
        choices = BIAS_CHOICES if parameter.role == "bias" else WEIGHT_CHOICES
        params[parameter.name] = tuple(tuple(rng.choice(choices) for _ in range(cols)) for _ in range(rows))
    return HandNumbers(x, y, params)


def draw_hand_numbers(spec: Spec, rng: random.Random) -> HandNumbers:
    """The first draw from ``rng`` whose exercise is not degenerate."""
    for _ in range(MOST_DRAWS):
        numbers = _draw_once(spec, rng)
        if not hand_degeneracy(spec, numbers):
            return numbers
    raise SymbpError(f"layers: no draw of small numbers gives this network nonzero gradients in {MOST_DRAWS} tries; "
                     "use activations that are not zero on half their inputs")


@dataclass(frozen=True)
class _FloatNetwork:
    """A float64 forward pass of a spec, vectorised over many copies of the parameters at once."""

    layers: tuple
    kinked: tuple[bool, ...]  # whether the layer's activation has a kink (Piecewise, Abs, Max, ...)
    loss: object


@cache
def _float_network(spec: Spec) -> _FloatNetwork:
    layers, kinked = [], []
    for layer_spec in spec.layers:
        calculus = activation_calculus(layer_spec.activation, layer_spec.activation_params)
        kinked.append(calculus.activation.kinked)
        units = layer_spec.units
        if calculus.rowwise:
            function = sp.lambdify(rowwise_variables(units), list(concrete_rowwise(calculus.forward, units)), "numpy")
            layers.append(lambda zs, function=function: function(*zs))
        else:
            function = sp.lambdify(rules.z, calculus.numeric_forward, "numpy")
            layers.append(lambda zs, function=function: [function(value) for value in zs])
    loss = sp.lambdify((rules.yhat, rules.y), loss_named(spec.loss.name).expr, "numpy")
    return _FloatNetwork(tuple(layers), tuple(kinked), loss)


def _object_matrix(rows: list) -> np.ndarray:
    """Nested lists of arrays as a 2-D array of them, indexed [i, j] as a layer's expanded form reads it."""
    matrix = np.empty((len(rows), len(rows[0])), dtype=object)
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            matrix[i, j] = value
    return matrix


def _float_loss(spec: Spec, network: _FloatNetwork, x, y, params: dict, kinks: list) -> np.ndarray:
    """The loss for every column of the parameters (each an array), and the pre-activations of kinked layers."""
    values = list(x)
    as_matrices = {name: _object_matrix(rows) for name, rows in params.items()}
    for layer in network_of(spec).layers:
        pres = layer.expanded_preactivation(values, as_matrices)
        if network.kinked[layer.index - 1]:
            kinks.extend(pres)
        values = network.layers[layer.index - 1](pres)
    return sum(network.loss(out, target) for out, target in zip(values, y))


def hand_degeneracy(spec: Spec, numbers: HandNumbers) -> str:
    """Why the exercise on these numbers is degenerate, or "" when it is not.

    Column 0 of every parameter holds its value; columns 2p + 1 and 2p + 2 move parameter p by
    +STEP and -STEP, so one vectorised forward pass gives every central difference.
    """
    network = _float_network(spec)
    flat = [(name, i, j) for name, rows in numbers.params.items()
            for i, row in enumerate(rows) for j in range(len(row))]
    columns = 2 * len(flat) + 1
    params = {name: [[np.full(columns, float(value)) for value in row] for row in rows]
              for name, rows in numbers.params.items()}
    for p, (name, i, j) in enumerate(flat):
        params[name][i][j][2 * p + 1] += STEP
        params[name][i][j][2 * p + 2] -= STEP
    kinks: list = []
    with np.errstate(all="ignore"):
        losses = np.asarray(_float_loss(spec, network, [float(v) for v in numbers.x], [float(v) for v in numbers.y],
                                        params, kinks), dtype=float)
    if not np.all(np.isfinite(losses)):
        return "a loss that floats cannot evaluate"
    if any(abs(pre[0]) < STEP for pre in kinks):
        return "a pre-activation on the kink of its activation"
    gradients = (losses[1::2] - losses[2::2]) / (2 * STEP)
    small = np.flatnonzero(~(np.abs(gradients) > SMALLEST_GRADIENT * (1 + abs(losses[0]))))
    if small.size:
        return f"a zero gradient in {flat[small[0]][0]}"
    return ""


def _line_steps(problem: LineProblem) -> list[tuple[float, float]]:
    """(w, b) at steps 0..LINE_STEPS of batch gradient descent on the mean squared error, in floats.

    Exact values have denominators dividing (2 / (10 N))^-t = 20^t here, so two of them that differ
    differ by at least 20^-LINE_STEPS, far above float rounding: comparing floats to 1e-9 is exact.
    """
    ys = [problem.slope * x + problem.intercept for x in problem.xs]
    w, b = float(problem.start[0]), float(problem.start[1])
    history = [(w, b)]
    for _ in range(LINE_STEPS):
        residuals = [w * x + b - y for x, y in zip(problem.xs, ys)]
        grad_w = 2 * sum(r * x for r, x in zip(residuals, problem.xs)) / len(ys)
        grad_b = 2 * sum(residuals) / len(ys)
        w, b = w - LINE_RATE * grad_w, b - LINE_RATE * grad_b
        history.append((w, b))
    return history


def _admissible(problem: LineProblem) -> bool:
    # Never on the line before the last step: every gradient the student computes is nonzero.
    return all(abs(w - problem.slope) + abs(b - problem.intercept) > SAME
               for w, b in _line_steps(problem)[:-1])


@cache
def line_problems() -> tuple[LineProblem, ...]:
    """Every admissible line-fitting problem but the lab's, in a fixed shuffled order."""
    lab = LineProblem(LAB_LINE[0], LAB_LINE[1], LAB_LINE[2], LAB_LINE[3])
    problems = [LineProblem(slope, intercept, xs, start)
                for slope in SLOPES for intercept in INTERCEPTS
                for xs in itertools.combinations(X_RANGE, POINTS) for start in STARTS]
    problems = [problem for problem in problems if problem != lab and _admissible(problem)]
    random.Random(SHUFFLE_SEED).shuffle(problems)
    return tuple(problems)


def line_problem(variant: int) -> LineProblem:
    """The lab's problem for variant 0; for the others, the variant-th of ``line_problems()`` (cyclically)."""
    if variant == 0:
        return LineProblem(*LAB_LINE)
    problems = line_problems()
    return problems[(variant - 1) % len(problems)]
