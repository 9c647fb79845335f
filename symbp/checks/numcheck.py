"""A numerical check printed inside a derivation: the generated module's gradient against a central
difference of its loss, on one concrete draw, for a few parameters of every layer."""

from __future__ import annotations

from dataclasses import dataclass

from symbp.checks.gradients import load_module_from_source, random_problem
from symbp.render.code.numpy_module import generate_module
from symbp.symbolic.batchnorm import batch_norm_layers
from symbp.symbolic.layers import Parameter
from symbp.symbolic.network import network_of

SAMPLES = 4
SEED = 0
STEP = 1e-6


@dataclass(frozen=True)
class CheckRow:
    layer: int
    kind: str  # "weight" or "bias"
    index: tuple[int, ...]  # one-based, as the documents count units: (i, j) for a weight, (j,) for a bias
    backpropagation: float
    central_difference: float
    name: str = ""  # the parameter array's name, "W1"

    @property
    def relative_difference(self) -> float:
        scale = max(abs(self.backpropagation), abs(self.central_difference), 1e-300)
        return abs(self.backpropagation - self.central_difference) / scale


def _chosen(spec) -> list[tuple[Parameter, tuple[int, ...]]]:
    """Per layer: the first entry of its first parameter, and the first of its bias or else the last of its weight."""
    chosen = []
    for layer in network_of(spec).layers:
        if not layer.parameters:
            continue  # a pooling layer has none
        first, *others = layer.parameters
        chosen.append((first, first.entries()[0]))
        if others:
            chosen.append((others[0], others[0].entries()[0]))
        elif len(first.entries()) > 1:
            chosen.append((first, first.entries()[-1]))
    return chosen


def numerical_check(spec) -> list[CheckRow]:
    """The rows of the table: the module's loss_and_grad against (L(p + h) - L(p - h)) / 2h, h = STEP."""
    module = load_module_from_source(generate_module(spec), spec.name)
    X, Y, _ = random_problem(spec, SAMPLES, SEED)
    params = module.init_params(SEED)
    # A layer that normalises over the batch is checked in training mode: the batch's statistics, through which
    # the gradient runs, and whose loss does not split by sample.
    training = {"training": True} if batch_norm_layers(network_of(spec)) else {}
    _, grads = module.loss_and_grad(params, X, Y, **training)
    rows = []
    for parameter, position in _chosen(spec):
        name = parameter.name
        original = params[name][position]
        values = []
        for offset in (STEP, -STEP):
            params[name][position] = original + offset
            values.append(module.loss(params, X, Y, **training))
        params[name][position] = original
        rows.append(CheckRow(parameter.layer, parameter.role, tuple(n + 1 for n in position),
                             float(grads[name][position]), (values[0] - values[1]) / (2 * STEP), name))
    return rows


def worst_relative_difference(rows) -> float:
    return max((row.relative_difference for row in rows), default=0.0)


__all__ = ["CheckRow", "numerical_check", "worst_relative_difference", "SAMPLES", "SEED", "STEP"]
