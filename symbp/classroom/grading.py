"""Grading a student's own backpropagation: which quantity is first wrong, and what the slip looks like.

Every answer is judged twice: against the sheet's verified value, and against what it should be
*given the student's own earlier answers* (carried forward). An answer that is wrong only because an
earlier one was wrong is not a new mistake; the first answer that does not follow from the student's
own earlier ones is. For that one the grader tries the slips students make: a wrong sign, a missing
σ′ factor, a transposed product, an off-by-one layer, a wrong or missing learning rate, and with weight
penalties the penalty itself for its derivative, L2's factor 2 dropped, or the penalty's term left out.

Answers agree when ``|given - expected| <= max(RELATIVE * |expected|, ABSOLUTE)``: 4 significant digits,
as the sheets ask, pass.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from functools import cache

import sympy as sp

from symbp.classroom.answers import Answer, answers_of, parameter_name
from symbp.derivation.explicit import error_terms, parameters
from symbp.derivation.indexform import net_of
from symbp.registry import rules
from symbp.registry.rules import loss_named
from symbp.symbolic import quantities as q
from symbp.symbolic.exact import exact_descent
from symbp.worksheet.exercises import Worksheet

RELATIVE = 5e-3
ABSOLUTE = 1e-4
# Learning rates a student may have used instead of the sheet's, tried when an update is off.
RATE_FACTORS = (10, sp.Rational(1, 10), 2, sp.Rational(1, 2), 100)


def agrees(given: float, expected: float) -> bool:
    return abs(given - expected) <= max(RELATIVE * abs(expected), ABSOLUTE)


def describe(name: str) -> str:
    """What a column holds, in words."""
    if name == "loss":
        return "the loss"
    kind, numbers = _split(name) if not name.endswith("_new") and name != "loss" else ("", ())
    if kind in _BATCH_NORM_WORDS:
        return _BATCH_NORM_WORDS[kind].format(*numbers)
    if kind in _WINDOW_WORDS:
        layer, first, *rest = numbers
        return _WINDOW_WORDS[kind].format(layer, first, ", ".join(map(str, rest)))
    if kind in _NORMALISATION_WORDS:
        where = f"unit {numbers[1]} of layer {numbers[0]}" if len(numbers) == 2 else f"layer {numbers[0]}"
        return f"the {_NORMALISATION_WORDS[kind]} of {where}"
    if kind in ("dgamma", "dbeta"):
        which = "gain" if kind == "dgamma" else "shift"
        return f"the gradient of the {which} of unit {numbers[1]} of layer {numbers[0]}"
    if kind in ("dpW", "dLW"):
        layer, i, j = numbers
        which = "derivative of the penalty on" if kind == "dpW" else "gradient of the penalised loss with respect to"
        return f"the {which} the weight from unit {i} to unit {j} of layer {layer}"
    if name.startswith("delta"):
        layer, unit = name[5:].split("_")
        return f"the error term of unit {unit} of layer {layer}"
    if name.startswith("dW"):
        layer, i, j = name[2:].split("_")
        return f"the gradient of the weight from unit {i} to unit {j} of layer {layer}"
    if name.startswith("db"):
        layer, j = name[2:].split("_")
        return f"the gradient of the bias of unit {j} of layer {layer}"
    if name.endswith("_new"):
        return f"the updated {describe(name[:-4])[4:] if name.startswith('d') else 'parameter ' + name[:-4]}"
    if name[0] in "za" and name[1:2].isdigit():
        layer, unit = name[1:].split("_")
        word = "pre-activation" if name[0] == "z" else "output"
        return f"the {word} of unit {unit} of layer {layer}"
    if name.startswith(("w_step", "b_step")):
        return f"the line's {name[0]} after step {name[6:]}"
    return name


# A normalised layer's quantities (symbp.classroom.answers), in words.
_NORMALISATION_WORDS = {"u": "weighted sum", "mu": "mean", "var": "variance", "sigmahat": "scale",
                        "xhat": "normalised value", "g": "error term at the normalised value",
                        "deltau": "error term at the weighted sum"}


# The batch-normalised layer's exercise on a batch of three (symbp.classroom.answers), in words.
# The window layer's exercise (symbp.classroom.answers.window_name): layer, then channel or filter, then the rest.
_WINDOW_WORDS = {
    "winz": "the output of window layer {0} at channel {1}, position ({2})",
    "windW": "the gradient of the kernel of window layer {0} at filter {1}, channel and offset ({2})",
    "windb": "the gradient of the bias of filter {1} of window layer {0}",
    "windx": "the error passed back to the input of window layer {0} at channel {1}, entry ({2})",
}
_BATCH_NORM_WORDS = {
    "bnu": "the weighted sum of sample {1} at unit {2} of layer {0}",
    "bnmu": "the mean over the batch of unit {1} of layer {0}",
    "bnvar": "the variance over the batch of unit {1} of layer {0}",
    "bnsigmahat": "the scale over the batch of unit {1} of layer {0}",
    "bnxhat": "the normalised value of sample {1} at unit {2} of layer {0}",
    "bnz": "the pre-activation of sample {1} at unit {2} of layer {0}",
    "bndxhat": "the batch loss's derivative at the normalised value of sample {1}, unit {2} of layer {0}",
    "bndu": "the batch loss's derivative at the weighted sum of sample {1}, unit {2} of layer {0}",
    "bndgamma": "the batch loss's gradient for the gain of unit {1} of layer {0}",
    "bndbeta": "the batch loss's gradient for the shift of unit {1} of layer {0}",
    "bndW": "the batch loss's gradient for the weight from unit {1} to unit {2} of layer {0}",
}


@cache
def _elementwise(forward: sp.Expr, derivative: sp.Expr) -> tuple:
    return sp.lambdify(rules.z, forward, "math"), sp.lambdify(rules.z, derivative, "math")


@dataclass(eq=False)
class Sheet:
    """The numbers of one worksheet, as floats, and how each answer follows from earlier ones."""

    sheet: Worksheet
    answers: list[Answer]
    true: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        self.true = {answer.name: answer.value for answer in self.answers}
        hand = self.sheet.hand
        self.net = net_of(hand.spec)
        self.depth = len(hand.spec.layers)
        self.sizes = hand.spec.sizes
        self.x = [float(v) for v in hand.x]
        self.y = [float(v) for v in hand.y]
        self.rate = float(hand.rate)
        self.W = {layer: hand.params[f"W{layer}"] for layer in range(1, self.depth + 1)}
        self.b = {layer: hand.params.get(f"b{layer}") for layer in range(1, self.depth + 1)}
        # A normalised layer's gain and shift, and its epsilon (given on the sheet).
        self.gamma = {layer: hand.params.get(f"gamma{layer}") for layer in range(1, self.depth + 1)}
        self.beta = {layer: hand.params.get(f"beta{layer}") for layer in range(1, self.depth + 1)}
        self.epsilon = {layer: float(self.net.layer(layer).epsilon) for layer in range(1, self.depth + 1)
                        if self.gamma[layer] is not None}
        self.loss = loss_named(hand.spec.loss.name).expr
        self.scale = self.net.scale
        # Each penalised weight's penalty (symbp.symbolic.penalties), and the weight, by its column name: W2_1_1.
        self.penalties = {parameter_name(parameter): penalty for parameter, penalty in hand.penalties.items()}
        self.penalised = {parameter_name(parameter): parameter for parameter in hand.penalties}

    def error_sign(self) -> int:
        """The sheet's convention: each gradient is ``sign * delta * source`` (sign -1 where delta is -dL/dz)."""
        hand = self.sheet.hand
        for layer, parameter, source in parameters(self.net):
            delta = hand.deltas[q.delta(layer)[parameter.indices[-1]]]
            factor = delta * (source.xreplace(hand.values) if source != 1 else 1)
            value = float(factor)
            if value != 0:
                return 1 if float(hand.gradients[parameter]) * value > 0 else -1
        return 1

    # --- what each answer should be, from the student's earlier answers (``known``) ---

    def _mask(self, layer: int, i: int) -> float:
        """The sheet's fixed dropout mask entry on input i of ``layer``; 1 for a layer without dropout."""
        mask = self.sheet.hand.masks.get(f"M{layer}")
        return 1.0 if mask is None else float(mask[i - 1])

    def _below(self, layer: int, i: int, known: dict[str, float]) -> float:
        """Input i of ``layer`` as the layer sees it: times its dropout mask entry, where it has one."""
        return (self.x[i - 1] if layer == 1 else known[f"a{layer - 1}_{i}"]) * self._mask(layer, i)

    def _activation(self, layer: int):
        calculus = self.net.activation(layer)
        return None if calculus.rowwise else _elementwise(calculus.forward, calculus.derivative)

    def _pre(self, layer: int, j: int, known, transposed: bool = False, bias: bool = True) -> float | None:
        W = self.W[layer]
        if transposed and W.rows != W.cols:
            return None
        total = sum(float(W[j - 1, i - 1] if transposed else W[i - 1, j - 1]) * self._below(layer, i, known)
                    for i in range(1, self.sizes[layer - 1] + 1))
        if bias and self.b[layer] is not None:
            total += float(self.b[layer][0, j - 1])
        return total

    def _output_delta(self, j: int, known) -> float:
        if not hasattr(self, "_output_terms"):
            self._output_terms = error_terms(self.net, self.sign_value)
        expr = self._output_terms[(self.depth, j)]
        values = {q.act(self.depth)[k]: known[f"a{self.depth}_{k}"] for k in range(1, self.sizes[self.depth] + 1)}
        values.update({q.pre(self.depth)[k]: known[f"z{self.depth}_{k}"] for k in range(1, self.sizes[self.depth] + 1)})
        values.update({q.targets()[k]: value for k, value in enumerate(self.y, start=1)})
        return float(expr.xreplace(values))

    def _normalised(self, layer: int) -> bool:
        return self.gamma[layer] is not None

    def _normalisation(self, kind: str, layer: int, j: int | None, known) -> float:
        """A normalised layer's quantity from the student's earlier answers: u = sum w a, mu, the biased variance,
        sqrt(variance + epsilon), x_hat; g = delta gamma, and the error term at u in its compact form."""
        units = range(1, self.sizes[layer] + 1)
        if kind == "u":
            return self._pre(layer, j, known, bias=False)
        if kind == "mu":
            return sum(known[f"u{layer}_{k}"] for k in units) / len(units)
        if kind == "var":
            return sum((known[f"u{layer}_{k}"] - known[f"mu{layer}"]) ** 2 for k in units) / len(units)
        if kind == "sigmahat":
            return (max(known[f"var{layer}"], 0.0) + self.epsilon[layer]) ** 0.5
        if kind == "xhat":
            return (known[f"u{layer}_{j}"] - known[f"mu{layer}"]) / known[f"sigmahat{layer}"]
        if kind == "g":
            return known[f"delta{layer}_{j}"] * float(self.gamma[layer][0, j - 1])
        g = [known[f"g{layer}_{k}"] for k in units]
        xhat = [known[f"xhat{layer}_{k}"] for k in units]
        compact = len(g) * g[j - 1] - sum(g) - xhat[j - 1] * sum(a * b for a, b in zip(g, xhat))
        return compact / (len(g) * known[f"sigmahat{layer}"])

    def _hidden_delta(self, layer: int, i: int, known, transposed: bool = False, slope: bool = True):
        W = self.W[layer + 1]
        if transposed and W.rows != W.cols:
            return None
        # Above a normalised layer, the error reaches this one through its weighted sums.
        error = "deltau" if self._normalised(layer + 1) else "delta"
        total = sum(float(W[j - 1, i - 1] if transposed else W[i - 1, j - 1]) * known[f"{error}{layer + 1}_{j}"]
                    for j in range(1, self.sizes[layer + 1] + 1)) * self._mask(layer + 1, i)
        if not slope:
            return total
        functions = self._activation(layer)
        return None if functions is None else functions[1](known[f"z{layer}_{i}"]) * total

    def _batch_norm(self, kind: str, numbers: tuple[int, ...], known) -> float:
        """The batch-normalised layer's exercise, each quantity from the student's earlier answers: the weighted
        sums from the numbers given, mean, biased variance, sqrt(variance + epsilon), x_hat and z over the batch;
        back, dL/dx_hat = dL/dz gamma, dL/du in its compact form, and the gradients as sums over the batch."""
        exercise = self.sheet.batch_norm
        layer, *rest = numbers
        samples = range(1, exercise.inputs.rows + 1)

        def column(prefix: str, j: int) -> list[float]:
            return [known[f"{prefix}{layer}_{n}_{j}"] for n in samples]

        if kind == "bnu":
            n, j = rest
            return sum(float(exercise.inputs[n - 1, i]) * float(exercise.weight[i, j - 1])
                       for i in range(exercise.fan_in))
        if kind in ("bnmu", "bndgamma", "bndbeta"):
            j = rest[0]
            if kind == "bnmu":
                return sum(column("bnu", j)) / len(samples)
            upstream = [float(exercise.upstream[n - 1, j - 1]) for n in samples]
            if kind == "bndbeta":
                return sum(upstream)
            return sum(a * b for a, b in zip(upstream, column("bnxhat", j)))
        if kind in ("bnvar", "bnsigmahat"):
            j = rest[0]
            if kind == "bnvar":
                mean = known[f"bnmu{layer}_{j}"]
                return sum((u - mean) ** 2 for u in column("bnu", j)) / len(samples)
            return (max(known[f"bnvar{layer}_{j}"], 0.0) + float(exercise.epsilon)) ** 0.5
        if kind == "bndW":
            i, j = rest
            return sum(float(exercise.inputs[n - 1, i - 1]) * known[f"bndu{layer}_{n}_{j}"] for n in samples)
        n, j = rest
        gain, shift = float(exercise.gain[0, j - 1]), float(exercise.shift[0, j - 1])
        if kind == "bnxhat":
            return (known[f"bnu{layer}_{n}_{j}"] - known[f"bnmu{layer}_{j}"]) / known[f"bnsigmahat{layer}_{j}"]
        if kind == "bnz":
            return gain * known[f"bnxhat{layer}_{n}_{j}"] + shift
        if kind == "bndxhat":
            return float(exercise.upstream[n - 1, j - 1]) * gain
        g, xhat = column("bndxhat", j), column("bnxhat", j)
        compact = len(g) * g[n - 1] - sum(g) - xhat[n - 1] * sum(a * b for a, b in zip(g, xhat))
        return compact / (len(g) * known[f"bnsigmahat{layer}_{j}"])

    def expected(self, name: str, known: dict[str, float]) -> float:
        """The value ``name`` should have given the student's earlier answers in ``known``."""
        kind, numbers = _split(name)
        if kind in _BATCH_NORM_WORDS:
            return self._batch_norm(kind, numbers, known)
        if kind in _WINDOW_WORDS:
            # Every answer of the window layer's exercise follows from the numbers given alone: the sheet's own.
            return self.true[name]
        if kind in _NORMALISATION_WORDS:
            return self._normalisation(kind, numbers[0], numbers[1] if len(numbers) > 1 else None, known)
        if kind in ("dgamma", "dbeta"):
            layer, j = numbers
            source = known[f"xhat{layer}_{j}"] if kind == "dgamma" else 1.0
            return self.sign_value * known[f"delta{layer}_{j}"] * source
        if kind == "z" and self._normalised(numbers[0]):
            layer, j = numbers
            return float(self.gamma[layer][0, j - 1]) * known[f"xhat{layer}_{j}"] + float(self.beta[layer][0, j - 1])
        if kind in ("z", "a"):
            layer, j = numbers
            if kind == "z":
                return self._pre(layer, j, known)
            functions = self._activation(layer)
            return self.true[name] if functions is None else functions[0](known[f"z{layer}_{j}"])
        if kind == "loss":
            return float(self.scale * sum(self.loss.subs({rules.yhat: known[f"a{self.depth}_{k}"], rules.y: target},
                                                         simultaneous=True)
                                          for k, target in enumerate(self.y, start=1)))
        if kind == "delta":
            layer, j = numbers
            if layer == self.depth:
                return self._output_delta(j, known)
            value = self._hidden_delta(layer, j, known)
            return self.true[name] if value is None else value
        if kind == "dW":
            layer, i, j = numbers
            error = "deltau" if self._normalised(layer) else "delta"
            return self.sign_value * known[f"{error}{layer}_{j}"] * self._below(layer, i, known)
        if kind == "db":
            layer, j = numbers
            return self.sign_value * known[f"delta{layer}_{j}"]
        if kind == "dpW":
            return self.penalty_slope(name[2:])
        if kind == "dLW":
            return known["d" + name[2:]] + known["dp" + name[2:]]
        if kind == "new":
            parameter = name[:-4]
            return self.parameter_value(parameter) - self.rate * known[self.step_gradient(parameter)]
        if kind in ("w_step", "b_step"):
            step = numbers[0]
            return self.descent_step(step, known)[0 if kind == "w_step" else 1]
        raise KeyError(name)

    def step_gradient(self, parameter: str) -> str:
        """The column of the gradient a parameter's update takes: the penalised loss's for a penalised weight."""
        return ("dL" if parameter in self.penalties else "d") + parameter

    def penalty_slope(self, parameter: str, term: bool = False) -> float:
        """The derivative of a penalised weight's penalty at its given value (SymPy's); with ``term``, the penalty."""
        penalty, value = self.penalties[parameter], self.sheet.hand.values[self.penalised[parameter]]
        return float(penalty.term(value) if term else penalty.derivative(value))

    @property
    def sign_value(self) -> int:
        if not hasattr(self, "_sign"):
            self._sign = self.error_sign()
        return self._sign

    def parameter_value(self, parameter: str) -> float:
        kind, numbers = _split(parameter)
        if kind in ("gamma", "beta"):
            layer, j = numbers
            return float((self.gamma if kind == "gamma" else self.beta)[layer][0, j - 1])
        if kind == "W":
            layer, i, j = numbers
            return float(self.W[layer][i - 1, j - 1])
        layer, j = numbers
        return float(self.b[layer][0, j - 1])

    def descent_previous(self, step: int, known) -> tuple[float, float]:
        if step == 1:
            w, b = self.sheet.descent.history[0]
            return float(w), float(b)
        return known[f"w_step{step - 1}"], known[f"b_step{step - 1}"]

    def descent_gradient(self, step: int, known) -> tuple[float, float]:
        return self._line_gradient(*self.descent_previous(step, known))

    @functools.lru_cache(maxsize=64)  # noqa: B019  (a Sheet lives as long as one grading run)
    def _line_gradient(self, w: float, b: float) -> tuple[float, float]:
        descent = self.sheet.descent
        history = exact_descent(descent.spec, [[v] for v in descent.xs], [[v] for v in descent.ys],
                                {"W1": [[sp.Rational(w)]], "b1": [sp.Rational(b)]}, 1, learning_rate=descent.rate)
        rate = float(descent.rate)
        after = history[1]
        return (w - float(after["W1"][0, 0])) / rate, (b - float(after["b1"][0, 0])) / rate

    def descent_step(self, step: int, known) -> tuple[float, float]:
        w, b = self.descent_previous(step, known)
        gw, gb = self.descent_gradient(step, known)
        rate = float(self.sheet.descent.rate)
        return w - rate * gw, b - rate * gb

    # --- the slips a wrong answer may show ---

    def slips(self, name: str, known: dict[str, float]) -> list[tuple[str, float]]:
        """(what went wrong, the value that slip gives) for the slips that fit this quantity."""
        expected = self.expected(name, known)
        found = [("a wrong sign", -expected)]
        kind, numbers = _split(name)
        if kind == "bnvar":
            count = self.sheet.batch_norm.inputs.rows
            found.append((f"the unbiased variance (divided by {count - 1}, not {count})",
                          expected * count / (count - 1)))
        elif kind == "windx" and self.sheet.window.pooling and not self.sheet.window.maximum:
            size = math.prod(self.sheet.window.window)
            found.append((f"the whole error to every entry of the window (not shared among its {size})",
                          expected * size))
        elif kind == "bndu":
            layer, n, j = numbers
            samples = range(1, self.sheet.batch_norm.inputs.rows + 1)
            g = [known[f"bndxhat{layer}_{m}_{j}"] for m in samples]
            scale = known[f"bnsigmahat{layer}_{j}"]
            found.append(("the batch's mean and variance taken as constants (no coupling between samples)",
                          g[n - 1] / scale))
            found.append(("the path through the variance left out", (g[n - 1] - sum(g) / len(g)) / scale))
        elif kind == "z":
            layer, j = numbers
            found.append(("the weights transposed (w_ji instead of w_ij)", self._pre(layer, j, known, transposed=True)))
            if self.b[layer] is not None:
                found.append(("the bias left out", self._pre(layer, j, known, bias=False)))
        elif kind == "a":
            layer, j = numbers
            found.append(("the activation function not applied", known[f"z{layer}_{j}"]))
        elif kind == "delta":
            layer, j = numbers
            functions = self._activation(layer)
            if functions is not None:
                slope = functions[1](known[f"z{layer}_{j}"])
                if slope != 0:
                    found.append(("a missing σ′ factor", expected / slope))
            if layer < self.depth:
                found.append(("the weights transposed in the backward pass",
                              self._hidden_delta(layer, j, known, transposed=True)))
                if j <= self.sizes[layer + 1]:
                    found.append(("an off-by-one layer (the error term of the layer above)",
                                  known[f"delta{layer + 1}_{j}"]))
        elif kind == "dW":
            layer, i, j = numbers
            delta = known[f"delta{layer}_{j}"]
            if j <= self.sizes[layer - 1] and i <= self.sizes[layer]:
                found.append(("a transposed product (δ_i a_j instead of δ_j a_i)",
                              self.sign_value * known[f"delta{layer}_{i}"] * self._below(layer, j, known)))
            if i <= self.sizes[layer]:
                found.append(("an off-by-one layer (this layer's output instead of the layer below's)",
                              self.sign_value * delta * known[f"a{layer}_{i}"]))
            for other in (layer - 1, layer + 1):
                if 1 <= other <= self.depth and j <= self.sizes[other]:
                    found.append((f"an off-by-one layer (the error term of layer {other})",
                                  self.sign_value * known[f"delta{other}_{j}"] * self._below(layer, i, known)))
            found.append(("the input to the weight left out", self.sign_value * delta))
        elif kind == "db":
            layer, j = numbers
            for other in (layer - 1, layer + 1):
                if 1 <= other <= self.depth and j <= self.sizes[other]:
                    found.append((f"an off-by-one layer (the error term of layer {other})",
                                  self.sign_value * known[f"delta{other}_{j}"]))
        elif kind == "dpW":
            parameter = name[2:]
            found.append(("the penalty itself instead of its derivative", self.penalty_slope(parameter, term=True)))
            if self.penalties[parameter].l2 != 0:
                found.append(("the factor 2 of the square's derivative left out",
                              expected - float(self.penalties[parameter].l2) * self.parameter_value(parameter)))
        elif kind == "dLW":
            parameter = name[2:]
            found.append(("the penalty's derivative left out", known["d" + parameter]))
            found.append(("the penalty's derivative subtracted", known["d" + parameter] - known["dp" + parameter]))
        elif kind == "new":
            parameter = name[:-4]
            value, gradient = self.parameter_value(parameter), known[self.step_gradient(parameter)]
            found = [("the gradient added instead of subtracted", value + self.rate * gradient)]
            found += _rates(value, gradient, self.rate)
            if parameter in self.penalties:
                found.append(("the penalty's derivative left out of the step",
                              value - self.rate * known["d" + parameter]))
        elif kind in ("w_step", "b_step"):
            step = numbers[0]
            previous = self.descent_previous(step, known)[0 if kind == "w_step" else 1]
            gradient = self.descent_gradient(step, known)[0 if kind == "w_step" else 1]
            rate = float(self.sheet.descent.rate)
            found = [("the gradient added instead of subtracted", previous + rate * gradient)]
            found += _rates(previous, gradient, rate)
        return [(words, value) for words, value in found if value is not None]


def _rates(value: float, gradient: float, rate: float) -> list[tuple[str, float]]:
    found = [("the learning rate left out", value - gradient)]
    for factor in RATE_FACTORS:
        wrong = rate * float(factor)
        found.append((f"a wrong learning rate ({wrong:g} instead of {rate:g})", value - wrong * gradient))
    return found


def _split(name: str) -> tuple[str, tuple[int, ...]]:
    if name == "loss":
        return "loss", ()
    if name.endswith("_new"):
        return "new", ()
    # Longer prefixes first: deltau before delta, dbeta before db, gamma before g, beta before b.
    for prefix in (*sorted(_BATCH_NORM_WORDS, key=len, reverse=True), *sorted(_WINDOW_WORDS, key=len, reverse=True),
                   "w_step", "b_step", "deltau", "delta", "dgamma", "dbeta", "dpW", "dLW", "dW", "db", "sigmahat",
                   "xhat", "gamma", "beta", "mu", "var", "u", "g", "z", "a", "W", "b"):
        if name.startswith(prefix):
            return prefix, tuple(int(part) for part in name[len(prefix):].split("_"))
    raise KeyError(name)


@dataclass(frozen=True)
class Finding:
    name: str  # the column
    given: float | None  # None: left blank
    expected: float  # from the student's own earlier answers
    correct: float  # the sheet's verified value
    slips: tuple[str, ...]  # the recognised slips that give the student's value


@dataclass(frozen=True)
class Report:
    student: str
    variant: int
    total: int
    right: int  # answers equal to the verified values
    mistakes: tuple[Finding, ...]  # answers that do not follow from the student's own earlier ones
    carried: int  # wrong answers that follow correctly from an earlier mistake

    @property
    def first(self) -> Finding | None:
        return self.mistakes[0] if self.mistakes else None

    def line(self) -> str:
        head = f"{self.student} (variant {self.variant}): "
        if self.first is None:
            return head + f"all {self.total} answers right"
        first = self.first
        given = "left blank" if first.given is None else f"{first.given:.6g} given"
        what = f"first wrong: {first.name}, {describe(first.name)}: {given}, {first.expected:.6g} expected"
        if first.slips:
            what += " — " + " or ".join(first.slips)
        tail = [f"{self.right}/{self.total} right"]
        if self.carried:
            tail.append(f"{self.carried} later answers follow correctly from the mistake")
        if len(self.mistakes) > 1:
            tail.append("further mistakes in " + ", ".join(f.name for f in self.mistakes[1:]))
        return head + what + " (" + "; ".join(tail) + ")"


def grade(sheet: Worksheet | Sheet, given: dict[str, float | None], student: str = "") -> Report:
    """Judges one student's answers (by column name; None for a blank) for one worksheet."""
    model = sheet if isinstance(sheet, Sheet) else Sheet(sheet, answers_of(sheet))
    sheet = model.sheet
    known: dict[str, float] = {}
    mistakes, right, carried = [], 0, 0
    for answer in model.answers:
        name, correct = answer.name, model.true[answer.name]
        value = given.get(name)
        expected = model.expected(name, {**model.true, **known})
        if value is None:
            mistakes.append(Finding(name, None, expected, correct, ()))
            continue
        known[name] = value
        if agrees(value, correct):  # right is right, whatever came before
            right += 1
            continue
        if agrees(value, expected):
            carried += 1
            continue
        context = {**model.true, **known}
        slips = tuple(words for words, wrong in model.slips(name, context) if agrees(value, wrong))
        mistakes.append(Finding(name, value, expected, correct, slips))
    return Report(student, sheet.variant, len(model.answers), right, tuple(mistakes), carried)
