"""Every quantity a worksheet asks for, in the order a student computes it, with a stable column name.

The values are the worksheet's own (exact SymPy numbers, checked against the expanded loss when the
sheet is built); this module only lists them. Column names are plain ASCII so they survive every
spreadsheet and platform: ``z1_2`` (pre-activation of unit 2 of layer 1), ``a1_2``, ``loss``,
``delta2_1``, ``dW2_1_1`` (gradient of the weight from unit 1 below to unit 1 of layer 2), ``db2_1``,
``W2_1_1_new`` and ``b2_1_new`` (after one update), ``w_step1`` and ``b_step1`` (the line's
parameters after the first step of gradient descent); for a penalised weight, ``dpW2_1_1`` (the derivative of its
penalty) and ``dLW2_1_1`` (the gradient of the penalised loss, ``dW2_1_1`` plus ``dpW2_1_1``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from symbp.symbolic import quantities as q
from symbp.worksheet.exercises import Worksheet

# The part of the sheet each kind of quantity belongs to, in the order the sheet asks for them.
PARTS = ("forward", "loss", "delta", "normalisation", "gradient", "penalty", "update", "batch_norm", "window",
         "descent")
# A normalised layer's quantities, by kind: their column names (u1_2, mu1, var1, sigmahat1, xhat1_2, g1_2,
# deltau1_2: the error term at u).
_NORMALISATION_NAMES = {"weighted": "u", "mean": "mu", "variance": "var", "scale": "sigmahat",
                        "normalised": "xhat", "normalised_delta": "g", "weighted_delta": "deltau"}


@dataclass(frozen=True)
class Answer:
    name: str  # the column name
    part: str  # one of PARTS
    layer: int  # the network layer it belongs to (0 for the loss and the line's descent)
    quantity: sp.Basic  # what it is, for the notation's printer
    exact: sp.Expr
    value: float = field(init=False)  # the exact value as a float, evaluated once

    def __post_init__(self):
        object.__setattr__(self, "value", float(self.exact))


def parameter_name(parameter: sp.Indexed) -> str:
    role = q.ROLES[parameter.base]
    if role.kind == "weight":
        i, j = parameter.indices
        return f"W{role.layer}_{i}_{j}"
    letter = {"gain": "gamma", "shift": "beta"}.get(role.kind, "b")
    return f"{letter}{role.layer}_{parameter.indices[-1]}"


def normalisation_name(quantity: sp.Basic) -> str:
    """A normalised layer's quantity's column name: u1_2 for unit 2's weighted sum, mu1 for the mean."""
    if isinstance(quantity, sp.Indexed):
        role = q.ROLES[quantity.base]
        return f"{_NORMALISATION_NAMES[role.kind]}{role.layer}_{quantity.indices[0]}"
    role = q.ROLES[quantity]
    return f"{_NORMALISATION_NAMES[role.kind]}{role.layer}"


# The batch-normalised layer's exercise on a batch of three (symbp.worksheet.batchnorm): bnu1_2_1 is sample 2's
# weighted sum at unit 1 of layer 1, bnmu1_1 unit 1's mean over the batch; bndxhat, bndu, bndgamma, bndbeta and bndW
# the batch loss's derivatives.
_BATCH_NORM_NAMES = {"weighted": "bnu", "mean": "bnmu", "variance": "bnvar", "scale": "bnsigmahat",
                     "normalised": "bnxhat", "pre": "bnz", "gain": "bndgamma", "shift": "bndbeta", "weight": "bndW"}
_BATCH_NORM_DERIVATIVES = {"normalised": "bndxhat", "weighted": "bndu"}


def batch_norm_name(quantity: sp.Basic) -> str:
    """The column name of a quantity of the batch-normalised layer's exercise."""
    if isinstance(quantity, q.AtSample):  # z of sample n: bnz1_n_j
        role = q.ROLES[quantity.expr.base]
        return f"bnz{role.layer}_{quantity.sample}_{quantity.expr.indices[0]}"
    if isinstance(quantity, q.Partial):
        below = quantity.denominator
        role = q.ROLES[below.base]
        prefix = _BATCH_NORM_DERIVATIVES.get(role.kind) or _BATCH_NORM_NAMES[role.kind]
        return f"{prefix}{role.layer}_" + "_".join(str(index) for index in below.indices)
    role = q.ROLES[quantity.base]
    return f"{_BATCH_NORM_NAMES[role.kind]}{role.layer}_" + "_".join(str(index) for index in quantity.indices)


# The window layer's exercise (symbp.worksheet.windows): winz1_1_2_3 is layer 1's output at channel 1, position
# (2, 3); windW1_1_1_2_2 the loss's gradient at the kernel's weight of filter 1, channel 1, offset (2, 2); windb1_1
# at filter 1's bias; windx1_1_3 the error passed back to entry 3 of channel 1 of layer 1's input.
_WINDOW_NAMES = {"pre": "winz", "weight": "windW", "bias": "windb"}


def window_name(quantity: sp.Basic) -> str:
    """The column name of a quantity of the window layer's exercise."""
    if isinstance(quantity, q.Partial):
        below = quantity.denominator
        role = q.ROLES[below.base]
        prefix, layer = (_WINDOW_NAMES[role.kind], role.layer) if role.kind in _WINDOW_NAMES else ("windx",
                                                                                                   role.layer + 1)
        return f"{prefix}{layer}_" + "_".join(str(index) for index in below.indices)
    role = q.ROLES[quantity.base]
    return f"winz{role.layer}_" + "_".join(str(index) for index in quantity.indices)


def answers_of(sheet: Worksheet) -> list[Answer]:
    """The sheet's answers: forward pass, loss, error terms (output layer first), gradients, update, descent."""
    hand = sheet.hand
    depth = len(hand.spec.layers)
    found: list[Answer] = []
    for layer in range(1, depth + 1):
        for j in range(1, hand.spec.sizes[layer] + 1):
            found.append(Answer(f"z{layer}_{j}", "forward", layer, q.pre(layer)[j], hand.values[q.pre(layer)[j]]))
            found.append(Answer(f"a{layer}_{j}", "forward", layer, q.act(layer)[j], hand.values[q.act(layer)[j]]))
    found.append(Answer("loss", "loss", depth, q.SAMPLE_LOSS, hand.loss))
    for layer in range(depth, 0, -1):
        for j in range(1, hand.spec.sizes[layer] + 1):
            symbol = q.delta(layer)[j]
            found.append(Answer(f"delta{layer}_{j}", "delta", layer, symbol, hand.deltas[symbol]))
    # A normalised layer's statistics and its error terms at x_hat and u, as computed (its epsilon is given).
    for quantity, value in hand.normalisation.items():
        role = q.ROLES[quantity.base if isinstance(quantity, sp.Indexed) else quantity]
        if role.kind in _NORMALISATION_NAMES:
            found.append(Answer(normalisation_name(quantity), "normalisation", role.layer, quantity, value))
    by_layer = sorted(hand.gradients, key=lambda p: (-q.ROLES[p.base].layer, q.ROLES[p.base].kind != "weight",
                                                     tuple(p.indices)))
    for parameter in by_layer:
        found.append(Answer("d" + parameter_name(parameter), "gradient", q.ROLES[parameter.base].layer,
                            q.Partial(q.SAMPLE_LOSS, parameter), hand.gradients[parameter]))
    # Each penalised weight's penalty term, then the gradient the update takes: the sample's gradient plus that term.
    for parameter in by_layer:
        penalty = hand.penalties.get(parameter)
        if penalty is None:
            continue
        layer = q.ROLES[parameter.base].layer
        found.append(Answer("dp" + parameter_name(parameter), "penalty", layer,
                            q.Partial(penalty.term(parameter), parameter), hand.penalty_terms[parameter]))
        found.append(Answer("dL" + parameter_name(parameter), "penalty", layer,
                            q.Partial(q.PENALISED_LOSS, parameter), hand.penalised_gradient(parameter)))
    for parameter in by_layer:
        found.append(Answer(parameter_name(parameter) + "_new", "update", q.ROLES[parameter.base].layer,
                            q.Updated(parameter), hand.updated[parameter]))
    if sheet.batch_norm is not None:
        exercise = sheet.batch_norm
        for quantity, value in (*exercise.forward.items(), *exercise.backward.items()):
            found.append(Answer(batch_norm_name(quantity), "batch_norm", exercise.layer, quantity, value))
    if sheet.window is not None:
        exercise = sheet.window
        for quantity, value in (*exercise.forward.items(), *exercise.backward.items()):
            found.append(Answer(window_name(quantity), "window", exercise.layer, quantity, value))
    for step, (w_value, b_value) in enumerate(sheet.descent.history[1:], start=1):
        found.append(Answer(f"w_step{step}", "descent", 0, sp.Symbol(f"w^{{({step})}}"), w_value))
        found.append(Answer(f"b_step{step}", "descent", 0, sp.Symbol(f"b^{{({step})}}"), b_value))
    return found


def given_numbers(sheet: Worksheet) -> tuple:
    """Everything the sheet hands the student: two sheets with the same numbers ask the same questions."""
    hand, descent = sheet.hand, sheet.descent
    params = tuple(tuple(matrix) for _, matrix in sorted(hand.params.items()))
    masks = tuple((name, tuple(mask)) for name, mask in sorted(hand.masks.items()))
    batch_norm = () if sheet.batch_norm is None else tuple(value for _, value in sheet.batch_norm.given())
    window = () if sheet.window is None else tuple(value for _, value in sheet.window.given())
    return (hand.x, hand.y, params, hand.rate, descent.xs, descent.ys, descent.history[0], descent.rate, batch_norm,
            window, masks)


def degenerate(sheet: Worksheet) -> str | None:
    """Why a sheet would teach nothing (a zero error term at the output, no gradient, a line already fitted)."""
    hand = sheet.hand
    depth = len(hand.spec.layers)
    if any(hand.deltas[q.delta(depth)[j]] == 0 for j in range(1, hand.spec.sizes[depth] + 1)):
        return "an output error term is zero"
    if all(gradient == 0 for gradient in hand.gradients.values()):
        return "every gradient is zero"
    if sheet.descent.history[1] == sheet.descent.history[0]:
        return "the line's first step does not move"
    return None
