"""A worksheet for a spec: exercises on small numbers and their answers, in exact arithmetic.

``build_worksheet(spec, variant)`` draws the numbers from a generator seeded by the variant and the
spec's name, so a variant always gives the same sheet and different variants give different ones.
The forward pass is SymPy arithmetic on the drawn rationals; the error terms are the delta rule's
(``symbp.derivation.explicit``), the gradients ``delta a``; a penalised weight's gradient (kernel_regularizer)
gains its penalty's term, SymPy's derivative of ``WeightPenalty.term``, and the update uses the sum; and every
gradient is checked, while the sheet is made, against SymPy's derivative of the fully expanded loss
(``symbp.symbolic.exact``), plus the penalties where the spec has them.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import astuple, dataclass, field, replace

import sympy as sp

from symbp.derivation.explicit import error_terms, parameters
from symbp.derivation.indexform import net_of
from symbp.registry import rules
from symbp.registry.rules import activation_named, loss_named
from symbp.spec.schema import Spec, TrainingSpec, load_spec
from symbp.symbolic import quantities as q
from symbp.symbolic.batchnorm import batch_norm_layers
from symbp.symbolic.dropout import dropout_layers
from symbp.symbolic.exact import exact_descent
from symbp.symbolic.expanded import gradient_at
from symbp.symbolic.layers import activate, parameter_routes
from symbp.symbolic.network import Network, network_of
from symbp.symbolic.penalties import WeightPenalty, penalty_of, weight_penalties
from symbp.worksheet.batchnorm import BatchNormExercise, batch_norm_exercise
from symbp.worksheet.numbers import draw_hand_numbers, line_problem
from symbp.worksheet.windows import WindowExercise, window_exercise, without_windows

# The hand-worked network has at most this many units in a layer (outputs keep 2 for softmax).
HAND_UNITS = 2
NORMALISED_HAND_UNITS = 3
HAND_INPUTS = 2
# A network with one hidden layer this small is worked as it is (the lesson's 2-5-1 has 21 parameters).
MOST_HAND_PARAMETERS = 24
MOST_HAND_UNITS = 5
MOST_HAND_INPUTS = 3
DESCENT_STEPS = 3
# Digits an irrational value of the hand exercise is carried to (its answer shows four).
WORKING_DIGITS = 50
# The lab's exercise (symbp.worksheet.numbers.LAB_LINE) is worked at its learning rate, 1/10.
LAB_RATE = sp.Rational(1, 10)


@dataclass(frozen=True)
class HandProblem:
    """One forward pass, one backward pass and one update of a small network, worked exactly."""

    spec: Spec
    x: tuple[sp.Expr, ...]
    y: tuple[sp.Expr, ...]
    params: dict[str, sp.Matrix]
    rate: sp.Expr
    values: dict[sp.Basic, sp.Expr]  # every pre-activation and output, by its quantity
    loss: sp.Expr
    deltas: dict[sp.Basic, sp.Expr]
    gradients: dict[sp.Basic, sp.Expr]  # per parameter quantity
    updated: dict[sp.Basic, sp.Expr]
    shrunk: bool  # whether the spec's network was made smaller for the exercise
    # A dropout layer's mask for the exercise, fixed and given: "M2" -> a 1 x fan-in row of 0 and 1 / (1 - rate).
    masks: dict[str, sp.Matrix] = field(default_factory=dict)
    # A normalised layer's own quantities, in the order they are computed: on the way forward its weighted sums,
    # mean, variance, scale and normalised values; on the way back the error terms at x_hat and at u.
    normalisation: dict[sp.Basic, sp.Expr] = field(default_factory=dict)
    # Each penalised weight's penalty (kernel_regularizer; biases are never penalised) and its term in the gradient,
    # d/dw of the penalty at the weight's value: the exercise's loss is the sample's plus the penalties, so the
    # update moves the weight by the sum of its gradient above and this term.
    penalties: dict[sp.Basic, WeightPenalty] = field(default_factory=dict)
    penalty_terms: dict[sp.Basic, sp.Expr] = field(default_factory=dict)

    def penalised_gradient(self, parameter: sp.Basic) -> sp.Expr:
        """The gradient of the sample's loss plus the penalties: the data gradient and the penalty's term."""
        return self.gradients[parameter] + self.penalty_terms.get(parameter, sp.Integer(0))


@dataclass(frozen=True)
class DescentProblem:
    """k steps of batch gradient descent on a line, the lab's linear-regression exercise."""

    spec: Spec
    xs: tuple[sp.Expr, ...]
    ys: tuple[sp.Expr, ...]
    slope: sp.Expr
    intercept: sp.Expr
    rate: sp.Expr
    history: tuple[tuple[sp.Expr, sp.Expr], ...]  # (w, b) at steps 0..k


@dataclass(frozen=True)
class Worksheet:
    spec: Spec
    variant: int
    hand: HandProblem
    descent: DescentProblem
    to_derive: tuple[sp.Indexed, ...]  # parameters whose gradient the student derives
    # The spec's first batch-normalised layer, on a batch of three: its own exercise. The hand network, worked one
    # sample at a time, has a dense layer in its place (a batch's statistics do not exist for one sample).
    batch_norm: BatchNormExercise | None = None
    # The spec's first convolution or pooling layer, small, on one sample: its own exercise. The hand network has a
    # dense layer in place of each window layer (a window layer's input is an image, too large to work by hand).
    window: WindowExercise | None = None


def _rng(spec: Spec, variant: int) -> random.Random:
    # crc32 rather than hash(): the same sheet in every process.
    return random.Random(zlib.crc32(f"{spec.name}/{variant}".encode()))


def hand_spec(spec: Spec) -> tuple[Spec, bool]:
    """The spec's network, or one as deep with the same activations and loss but at most 2 units a layer.

    A network small enough to work by hand is kept as it is, so that a notation that numbers its
    weights (the lesson's w1 ... w21) means by each name the weight it means in the reader's text.
    """
    small = spec.inputs <= HAND_INPUTS and all(layer.units <= _hand_units(layer) for layer in spec.layers)
    by_hand = (spec.inputs <= MOST_HAND_INPUTS and spec.parameter_count <= MOST_HAND_PARAMETERS
               and len(spec.layers) <= 2 and all(layer.units <= MOST_HAND_UNITS for layer in spec.layers))
    if small or by_hand:
        return spec, False
    layers = []
    for layer in spec.layers:
        units = min(layer.units, _hand_units(layer))
        if activation_named(layer.activation).rowwise:
            units = 2
        # The layer keeps its kind (a residual layer stays one: both its widths shrink alike); the spec's
        # given weights belong to the larger network and are drawn afresh.
        layers.append(replace(layer, units=units, weights=None, biases=None))
    shrunk = replace(spec, name=f"{spec.name}_small", inputs=min(spec.inputs, HAND_INPUTS), layers=tuple(layers),
                     training=TrainingSpec(optimizer="gd", learning_rate=spec.training.learning_rate))
    return shrunk, True


def _hand_units(layer) -> int:
    """The most units a layer of the hand network keeps: a normalised layer keeps 3, so that its normalised values
    are more than plus and minus one and its mean and variance couple its units visibly."""
    return NORMALISED_HAND_UNITS if layer.normalization else HAND_UNITS


def _hand_rate(spec: Spec) -> sp.Expr:
    rate = sp.nsimplify(spec.training.learning_rate, rational=True)
    return rate if rate >= sp.Rational(1, 100) else sp.Rational(1, 10)


def hand_problem(spec: Spec, rng: random.Random, sign: int = 1) -> HandProblem:
    small, shrunk = hand_spec(spec)
    net = net_of(small)
    numbers = draw_hand_numbers(small, rng)
    x, y = tuple(map(sp.Rational, numbers.x)), tuple(map(sp.Rational, numbers.y))
    params = {name: sp.Matrix(rows).applyfunc(sp.Rational) for name, rows in numbers.params.items()}
    values = _parameter_values(net, params)
    values.update({q.inputs()[i + 1]: value for i, value in enumerate(x)})
    values.update({q.targets()[k + 1]: value for k, value in enumerate(y)})
    masks = _hand_masks(net, rng)
    for name, mask in masks.items():
        layer = int(name[1:])
        values.update({q.mask(layer)[i + 1]: value for i, value in enumerate(mask)})
    previous = list(x)
    normalisation: dict = {}
    for layer in net.layers:
        if hasattr(layer, "exact_stages"):
            stages = {quantity: _settled(value) for quantity, value in layer.exact_stages(previous, params).items()}
            stages[q.layer_statistic("stabiliser", layer.index)] = layer.exact_epsilon
            normalisation.update(stages)
            values.update(stages)
        pres = layer.expanded_preactivation(previous, {**params, **masks})
        outputs = [_settled(out) for out in activate(layer.calculus, pres, _exact(layer.calculus.forward))]
        for j, (pre, out) in enumerate(zip(pres, outputs), start=1):
            values[q.pre(layer.index)[j]] = pre
            values[q.act(layer.index)[j]] = out
        previous = outputs
    loss_expr = _exact(net.output.loss.expr)
    loss = _settled(net.scale * sum(loss_expr.subs({rules.yhat: out, rules.y: target}, simultaneous=True)
                                    for out, target in zip(previous, y)))
    deltas = {q.delta(layer)[j]: _settled(_exact(expr).xreplace(values))
              for (layer, j), expr in error_terms(net, sign).items()}
    # A normalised layer's error terms at its normalised values (g = delta gamma) and at its weighted sums.
    errors = dict(deltas)
    for layer in net.layers:
        if hasattr(layer, "index_weighted_errors"):
            own = [deltas[q.delta(layer.index)[j]] for j in range(1, layer.units + 1)]
            for j in range(1, layer.units + 1):
                normalisation[q.normalised_delta(layer.index)[j]] = _settled(
                    own[j - 1] * values[q.gain(layer.index)[j]])
            for j, expr in enumerate(layer.index_weighted_errors(own), start=1):
                normalisation[q.weighted_delta(layer.index)[j]] = _settled(expr.xreplace(values))
            errors.update(normalisation)
    gradients, updated = {}, {}
    rate = _hand_rate(small)
    penalties = _hand_penalties(net)
    penalty_terms = {parameter: penalty.derivative(values[parameter]) for parameter, penalty in penalties.items()}
    for layer, parameter, _ in parameters(net):
        # The parameter's route to the loss (its layer kind's): the error term of what it enters, times what it
        # multiplies there.
        route = next(r for r in parameter_routes(net.layer(layer)) if r.indexed.base == parameter.base)
        at = dict(zip(route.indexed.indices, parameter.indices))
        source = route.source.xreplace(at)
        gradient = sign * errors[route.error.xreplace(at)] * (source.xreplace(values) if source != 1 else 1)
        gradients[parameter] = _settled(gradient)
        updated[parameter] = _settled(values[parameter] - rate * (gradient + penalty_terms.get(parameter, 0)))
    _check_against_expanded(small, x, y, params, gradients, masks, penalty_terms)
    return HandProblem(small, x, y, params, rate, values, loss, deltas, gradients, updated, shrunk, masks,
                       normalisation, penalties, penalty_terms)


def _hand_penalties(net: Network) -> dict[sp.Basic, WeightPenalty]:
    """Each penalised weight of the hand network, by its named quantity, with its layer's penalty."""
    return {penalty.parameter.indexed(index): penalty
            for penalty in weight_penalties(net) for index in penalty.parameter.entries()}


def _hand_masks(net: Network, rng: random.Random) -> dict[str, sp.Matrix]:
    """A fixed mask for each dropout layer of the exercise: each input dropped (0) with the layer's rate, else
    kept as 1 / (1 - rate), exactly; at least one input is kept, so that the layer still sees something."""
    masks = {}
    for layer in dropout_layers(net):
        kept = [rng.random() >= layer.rate for _ in range(layer.fan_in)]
        if not any(kept):
            kept[rng.randrange(layer.fan_in)] = True
        masks[layer.mask.name] = sp.Matrix(1, layer.fan_in, [layer.kept_value if keep else 0 for keep in kept])
    return masks


def _settled(value: sp.Expr) -> sp.Expr:
    """A rational as it is; any other value as a float of ``WORKING_DIGITS`` digits.

    Only the decimals of an irrational value are ever printed, and carrying its exact form through the
    next layers would make expressions that grow with every layer, slow to evaluate for no gain.
    """
    value = sp.sympify(value)
    return value if value.is_Rational else sp.Float(sp.N(value, WORKING_DIGITS), WORKING_DIGITS)


def _exact(formula: sp.Expr) -> sp.Expr:
    """A formula's constants given as decimals (a leaky ReLU's slope 0.01) read as the rationals they denote.

    Applied to formulas before numbers go in, so that all the arithmetic is exact and a value is a
    fraction exactly when it is rational; a float computed from a transcendental is never made a fraction.
    """
    return sp.sympify(formula).replace(lambda e: isinstance(e, sp.Float), lambda e: sp.Rational(str(e)))


def _parameter_values(net: Network, params: dict[str, sp.Matrix]) -> dict:
    """Each scalar parameter's named quantity, with its value."""
    return {parameter.indexed(index): params[parameter.name][parameter.matrix_entry(index)]
            for parameter in net.parameters for index in parameter.entries()}


def _check_against_expanded(spec: Spec, x, y, params, gradients, masks=None, penalty_terms=None) -> None:
    """Each delta-rule gradient must equal SymPy's derivative of the expanded loss (to 1e-12); with weight
    penalties, each gradient plus its penalty's term must equal SymPy's derivative of the expanded loss plus the
    penalties, written out on every entry of the parameters (``symbp.symbolic.penalties.penalty_of``)."""
    network = network_of(spec)
    named = {p.name: p for p in network.parameters}
    penalties = weight_penalties(network)
    unknown = sp.Symbol("t", real=True)
    for (name, index), derivative in gradient_at(spec, x, y, params, masks).items():
        parameter = named[name].indexed(index)
        expected = spec.loss.scale * float(sp.N(derivative, 30))
        _agree(gradients[parameter], expected, f"the gradient of {parameter}", "the expanded loss")
        if not penalties:
            continue
        entry = named[name].matrix_entry(index)
        point = {key: value.as_mutable() for key, value in params.items()}
        point[name][entry] = unknown
        slope = sp.diff(penalty_of(penalties, point), unknown).subs(unknown, params[name][entry])
        _agree(gradients[parameter] + (penalty_terms or {}).get(parameter, 0), expected + float(slope),
               f"the penalised gradient of {parameter}", "the expanded loss plus the penalties")


def _agree(value: sp.Expr, expected: float, what: str, oracle: str) -> None:
    if abs(float(value) - expected) > 1e-12 * (1 + abs(expected)):
        raise ArithmeticError(f"worksheet: {what} disagrees with {oracle}")


def _is_line(spec: Spec) -> bool:
    layer = spec.layers[0]
    # A plain line: a skip or dropout would make the descent exercise another model (the lab's line is worked then).
    return (spec.inputs == 1 and len(spec.layers) == 1 and layer.units == 1 and layer.kind == "dense"
            and activation_named(layer.activation).identity and layer.bias and loss_named(spec.loss.name).least_squares)


def line_spec(spec: Spec) -> Spec:
    """The spec itself when it is a linear regression, else the lab's: y = w x + b, mean squared error."""
    if _is_line(spec):
        return spec
    return load_spec({"name": "line", "inputs": 1, "layers": [{"units": 1, "activation": "linear"}],
                      "loss": {"name": "squared_error", "reduction": "mean"},
                      "training": {"learning_rate": float(LAB_RATE)}})


def descent_problem(spec: Spec, variant: int) -> DescentProblem:
    line = line_spec(spec)
    rate = sp.nsimplify(line.training.learning_rate, rational=True)
    slope, intercept, xs, start = astuple(line_problem(variant))
    xs = tuple(sp.Integer(v) for v in xs)
    ys = tuple(slope * v + intercept for v in xs)
    history = exact_descent(line, [[v] for v in xs], [[v] for v in ys], {"W1": [[start[0]]], "b1": [start[1]]},
                            DESCENT_STEPS, learning_rate=rate)
    steps = tuple((theta["W1"][0, 0], theta["b1"][0, 0]) for theta in history)
    return DescentProblem(line, xs, ys, sp.Integer(slope), sp.Integer(intercept), rate, steps)


def build_worksheet(spec_source, variant: int = 0, error_sign: int = 1) -> Worksheet:
    spec = load_spec(spec_source)
    if variant < 0:
        raise ValueError("variant must be 0 or more")
    rng = _rng(spec, variant)
    normalised = batch_norm_layers(network_of(spec))
    hand = hand_problem(without_windows(without_batch_normalisation(spec)), rng, error_sign)
    net = net_of(hand.spec)
    listed = [parameter for _, parameter, _ in parameters(net)]
    # One weight of the output layer and one of the first layer, and a bias where there is one. Below a
    # normalised layer the recursion of error terms runs through its weighted sums, which its own exercise asks
    # for: there the parameters to derive are those the output and hidden sections derive, above it.
    lowest = max((layer.index for layer in net.layers if hasattr(layer, "index_statistics")), default=0)
    derivable = [p for p in listed if q.ROLES[p.base].layer >= lowest and q.ROLES[p.base].kind != "weight"
                 or q.ROLES[p.base].layer > lowest]
    top = [p for p in derivable if q.ROLES[p.base].layer == net.depth and q.ROLES[p.base].kind == "weight"]
    bottom = [p for p in derivable if q.ROLES[p.base].layer == max(1, lowest + 1) and q.ROLES[p.base].kind == "weight"]
    biases = [p for p in derivable if q.ROLES[p.base].kind in ("bias", "shift")]
    chosen = [rng.choice(top or derivable)]
    if net.depth > 1 and bottom and bottom != top:
        chosen.append(rng.choice(bottom))
    biases = [p for p in biases if p not in chosen]
    if biases:
        chosen.append(rng.choice(biases))
    descent = descent_problem(spec, variant)
    batch_norm = batch_norm_exercise(normalised[0], rng) if normalised else None
    window = window_exercise(spec, rng)
    return Worksheet(spec, variant, hand, descent, tuple(chosen), batch_norm, window)


def without_batch_normalisation(spec: Spec) -> Spec:
    """The spec with a dense layer (with a bias) in place of each batch-normalised one: the network that the
    worksheet's exercises work one sample at a time."""
    if not any(layer.normalization == "batch" for layer in spec.layers):
        return spec
    layers = tuple(replace(layer, normalization="", bias=True) if layer.normalization == "batch" else layer
                   for layer in spec.layers)
    return replace(spec, name=f"{spec.name}_dense", layers=layers)
