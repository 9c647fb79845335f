"""The worksheet's exercise on a batch-normalised layer: one training step through it on a batch of three samples.

The layer is the spec's first batch-normalised one, kept to at most two inputs and two units: the sheet gives its
inputs on each of the three samples, its weights, gains and shifts, its epsilon, and the derivative of the batch's
loss L at each of its pre-activations (as the layer above would hand it down). Forward, the student computes the
weighted sums u_nj, each unit's mean and (biased) variance over the batch, its scale sqrt(variance + epsilon), the
normalised values and the pre-activations; back, dL/dx_hat_nj, dL/du_nj through the batch's mean and variance
(every sample's depends on every other sample's), and the gradients of the gains, shifts and weights, each a sum
over the batch. Every number is exact where it is rational (SymPy's square root otherwise, carried to 50 digits),
and every gradient is checked, while the sheet is made, against SymPy's derivative of the layer written out over
the whole batch (``BatchNormLayer.expanded_batch_preactivation``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import sympy as sp

from symbp.symbolic import quantities as q
from symbp.symbolic.batchnorm import BatchNormLayer
from symbp.symbolic.layers import _scalar_symbols

SAMPLES = 3
MOST_INPUTS = 2
MOST_UNITS = 2
WORKING_DIGITS = 50
# The numbers drawn: inputs and upstream derivatives small integers and halves, weights small integers.
_INPUTS = tuple(sp.Rational(v, 2) for v in range(-6, 7) if v != 0)
_WEIGHTS = (-2, -1, 1, 2, 3)
_GAINS = (sp.Rational(1, 2), 1, sp.Rational(3, 2), 2)
_SHIFTS = (-1, sp.Rational(-1, 2), 0, sp.Rational(1, 2), 1)
_UPSTREAM = tuple(sp.Rational(v, 2) for v in range(-4, 5) if v != 0)


@dataclass(frozen=True)
class BatchNormExercise:
    """One batch-normalised layer on a batch of three, forward and back, with every answer by its quantity."""

    layer: int  # the layer's number in the spec
    fan_in: int
    units: int
    epsilon: sp.Expr  # exact
    inputs: sp.Matrix  # SAMPLES x fan_in: the layer's inputs a_ni
    weight: sp.Matrix  # fan_in x units
    gain: sp.Matrix  # 1 x units
    shift: sp.Matrix  # 1 x units
    upstream: sp.Matrix  # SAMPLES x units: dL/dz_nj
    forward: dict  # quantity -> value: u_nj, mu_j, sigma^2_j, sigma_hat_j, x_hat_nj, z_nj
    backward: dict  # quantity -> value: dL/dx_hat_nj, dL/du_nj, dL/dgamma_j, dL/dbeta_j, dL/dw_ij

    def given(self) -> list[tuple[sp.Basic, sp.Expr]]:
        """What the sheet hands the student, by quantity: the inputs on each sample, the parameters, epsilon and
        the derivatives from above."""
        layer = self.layer
        out = [(at_sample(q.act(layer - 1)[i + 1], n + 1), self.inputs[n, i])
               for n in range(SAMPLES) for i in range(self.fan_in)]
        out += [(q.weight(layer)[i + 1, j + 1], self.weight[i, j])
                for i in range(self.fan_in) for j in range(self.units)]
        out += [(q.gain(layer)[j + 1], self.gain[0, j]) for j in range(self.units)]
        out += [(q.shift(layer)[j + 1], self.shift[0, j]) for j in range(self.units)]
        out.append((q.layer_statistic("stabiliser", layer), self.epsilon))
        out += [(q.Partial(q.LOSS, at_sample(q.pre(layer)[j + 1], n + 1)), self.upstream[n, j])
                for n in range(SAMPLES) for j in range(self.units)]
        return out


def at_sample(quantity: sp.Basic, n: int) -> q.AtSample:
    return q.AtSample(quantity, sp.Integer(n))


def _settled(value) -> sp.Expr:
    value = sp.sympify(value)
    return value if value.is_Rational else sp.Float(sp.N(value, WORKING_DIGITS), WORKING_DIGITS)


def _draw_inputs(rng: random.Random, fan_in: int, weight: sp.Matrix) -> sp.Matrix:
    """Inputs whose weighted sums differ across the batch for every unit (a variance of zero teaches nothing)."""
    while True:
        inputs = sp.Matrix(SAMPLES, fan_in, [rng.choice(_INPUTS) for _ in range(SAMPLES * fan_in)])
        weighted = inputs * weight
        if all(len(set(weighted[:, j])) == SAMPLES for j in range(weight.cols)):
            return inputs


def batch_norm_exercise(layer: BatchNormLayer, rng: random.Random) -> BatchNormExercise:
    fan_in, units = min(layer.fan_in, MOST_INPUTS), min(layer.units, MOST_UNITS)
    weight = sp.Matrix(fan_in, units, [rng.choice(_WEIGHTS) for _ in range(fan_in * units)])
    gain = sp.Matrix(1, units, [rng.choice(_GAINS) for _ in range(units)])
    shift = sp.Matrix(1, units, [rng.choice(_SHIFTS) for _ in range(units)])
    upstream = sp.Matrix(SAMPLES, units, [rng.choice(_UPSTREAM) for _ in range(SAMPLES * units)])
    inputs = _draw_inputs(rng, fan_in, weight)
    epsilon = layer.exact_epsilon
    index = layer.index
    u, x_hat = q.weighted(index), q.normalised(index)
    forward, backward = {}, {}
    weighted = inputs * weight
    for j in range(units):
        column = [weighted[n, j] for n in range(SAMPLES)]
        mean = sp.Add(*column) / SAMPLES
        variance = sp.Add(*((each - mean) ** 2 for each in column)) / SAMPLES
        scale = sp.sqrt(variance + epsilon)
        normalised = [(each - mean) / scale for each in column]
        for n in range(SAMPLES):
            forward[u[n + 1, j + 1]] = column[n]
        forward[q.layer_statistic("mean", index)[j + 1]] = mean
        forward[q.layer_statistic("variance", index)[j + 1]] = variance
        forward[q.layer_statistic("scale", index)[j + 1]] = _settled(scale)
        for n in range(SAMPLES):
            forward[x_hat[n + 1, j + 1]] = _settled(normalised[n])
        for n in range(SAMPLES):
            forward[at_sample(q.pre(index)[j + 1], n + 1)] = _settled(gain[0, j] * normalised[n] + shift[0, j])
        # Back: dL/dx_hat = dL/dz gamma; dL/du in the compact form SymPy proves (symbp.symbolic.layernorm).
        g = [upstream[n, j] * gain[0, j] for n in range(SAMPLES)]
        for n in range(SAMPLES):
            backward[q.Partial(q.LOSS, x_hat[n + 1, j + 1])] = g[n]
        coupled = sp.Add(*(a * b for a, b in zip(g, normalised)))
        for n in range(SAMPLES):
            backward[q.Partial(q.LOSS, u[n + 1, j + 1])] = _settled(
                (SAMPLES * g[n] - sp.Add(*g) - normalised[n] * coupled) / (SAMPLES * scale))
    for j in range(units):
        gamma_gradient = sp.Add(*(upstream[n, j] * forward[x_hat[n + 1, j + 1]] for n in range(SAMPLES)))
        backward[q.Partial(q.LOSS, q.gain(index)[j + 1])] = _settled(gamma_gradient)
        backward[q.Partial(q.LOSS, q.shift(index)[j + 1])] = sp.Add(*(upstream[n, j] for n in range(SAMPLES)))
    for i in range(fan_in):
        for j in range(units):
            backward[q.Partial(q.LOSS, q.weight(index)[i + 1, j + 1])] = _settled(sp.Add(*(
                inputs[n, i] * backward[q.Partial(q.LOSS, u[n + 1, j + 1])] for n in range(SAMPLES))))
    exercise = BatchNormExercise(index, fan_in, units, epsilon, inputs, weight, gain, shift, upstream, forward,
                                 backward)
    _check_against_expanded(layer, exercise)
    return exercise


def _check_against_expanded(layer: BatchNormLayer, exercise: BatchNormExercise) -> None:
    """Each gradient must equal SymPy's derivative of sum_nj dL/dz_nj z_nj, the layer written out over the whole
    batch with its parameters as symbols (to 1e-12)."""
    small = BatchNormLayer(layer.index, exercise.fan_in, exercise.units, layer.calculus, layer.inputs,
                           layer.preactivation_symbol, layer.output, layer.delta, layer.epsilon)
    symbols = {
        small.weight.name: sp.Matrix(exercise.fan_in, exercise.units, _scalar_symbols(f"w^{layer.index}")),
        small.gain.name: sp.Matrix(1, exercise.units, _scalar_symbols(f"gamma^{layer.index}", True)),
        small.shift.name: sp.Matrix(1, exercise.units, _scalar_symbols(f"beta^{layer.index}", True)),
    }
    rows = [list(exercise.inputs.row(n)) for n in range(SAMPLES)]
    z = small.expanded_batch_preactivation(rows, symbols)
    pairing = sp.Add(*(exercise.upstream[n, j] * z[n][j] for n in range(SAMPLES) for j in range(exercise.units)))
    values = {}
    for name, given in ((small.weight.name, exercise.weight), (small.gain.name, exercise.gain),
                        (small.shift.name, exercise.shift)):
        values.update({symbol: given[index] for index, symbol in enumerate(symbols[name])})
    named = [(q.weight(layer.index)[i + 1, j + 1], symbols[small.weight.name][i, j])
             for i in range(exercise.fan_in) for j in range(exercise.units)]
    named += [(q.gain(layer.index)[j + 1], symbols[small.gain.name][0, j]) for j in range(exercise.units)]
    named += [(q.shift(layer.index)[j + 1], symbols[small.shift.name][0, j]) for j in range(exercise.units)]
    for quantity, symbol in named:
        expected = float(sp.N(sp.diff(pairing, symbol).xreplace(values), 30))
        got = float(exercise.backward[q.Partial(q.LOSS, quantity)])
        if abs(got - expected) > 1e-12 * (1 + abs(expected)):
            raise ArithmeticError(f"worksheet: the batch-normalised layer's gradient of {quantity} disagrees with "
                                  "the expanded batch")
