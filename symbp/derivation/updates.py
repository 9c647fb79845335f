"""The update rule of the spec's optimizer, for the gradients the derivation found.

The rules are the trainer's own (symbp.runtime.optimizers), called here with SymPy symbols.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.model import Chain, Reason, Section, penalty_reasons, step
from symbp.runtime import optimizers as rules
from symbp.symbolic import quantities as q
from symbp.symbolic.network import Network
from symbp.symbolic.penalties import weight_penalties
from symbp.symbolic.quantities import (
    BETA1,
    BETA2,
    EPSILON,
    LEARNING_RATE,
    LOSS,
    MOMENT,
    MOMENTUM,
    PARAMETER,
    STEP,
    VELOCITY,
    AtSample,
    Current,
    Partial,
    Updated,
)


def _parameters(net: Network):
    """(kind, layer, indexed parameter, its per-sample gradient in delta form, its penalty or None) for each
    layer."""
    penalties = {penalty.parameter.name: penalty for penalty in weight_penalties(net)}
    for layer in net.layers:
        for parameter, indexed, delta_form in layer.index_gradients():
            yield parameter.role, layer.index, indexed, delta_form, penalties.get(parameter.name)



def update_section(net: Network, sign: int) -> Section:
    n = q.sample_index()
    coefficient = net.sample_coefficient
    optimizer = net.spec.training.optimizer
    chains = []
    for kind, layer, parameter, delta_form, penalty in _parameters(net):
        per_sample = sp.Sum(Partial(q.sample_losses()[n], parameter), (n, 1, q.N_SAMPLES))
        in_deltas = sp.Sum(AtSample(delta_form, n), (n, 1, q.N_SAMPLES))
        # A penalised weight's gradient gains the penalty's derivative: the penalty is on L, not on any sample.
        extra = penalty.derivative(parameter) if penalty is not None else sp.Integer(0)
        chains.append(Chain(
            f"update.gradient.{kind}{layer}", Partial(LOSS, parameter),
            (step(coefficient * per_sample + extra, Reason("sum_over_samples"), *penalty_reasons(penalty, parameter)),
             step(sign * coefficient * in_deltas + extra, Reason("delta_rule"))),
            "batch",
        ))
        if optimizer in ("gd", "sgd"):
            descent = rules.descent(Current(parameter), Partial(LOSS, parameter), LEARNING_RATE)
            steps = [step(descent)]
            if sign < 0:
                steps.append(step(Current(parameter) + LEARNING_RATE * coefficient * in_deltas
                                  - LEARNING_RATE * extra.xreplace({parameter: Current(parameter)}),
                                  Reason("delta_rule")))
            chains.append(Chain(f"update.{kind}{layer}", Updated(parameter), tuple(steps), "update", "update", True))
    if optimizer == "momentum":
        chains += [
            Chain("update.velocity", Updated(VELOCITY),
                  (step(rules.momentum_velocity(Current(VELOCITY), Partial(LOSS, PARAMETER), LEARNING_RATE,
                                                MOMENTUM)),), "update", "update"),
            Chain("update.parameter", Updated(PARAMETER),
                  (step(rules.momentum_parameter(Current(PARAMETER), Updated(VELOCITY))),), "update", "update", True),
        ]
    elif optimizer == "adam":
        gradient = Partial(LOSS, PARAMETER)
        rate = rules.adam_rate(LEARNING_RATE, BETA1, BETA2, STEP, sqrt=sp.sqrt)
        chains += [
            Chain("update.moment", Updated(MOMENT),
                  (step(rules.adam_moment(Current(MOMENT), gradient, BETA1)),), "update", "update"),
            Chain("update.velocity", Updated(VELOCITY),
                  (step(rules.adam_second_moment(Current(VELOCITY), gradient, BETA2)),), "update", "update"),
            Chain("update.parameter", Updated(PARAMETER),
                  (step(rules.adam_parameter(Current(PARAMETER), rate, Updated(MOMENT), Updated(VELOCITY), EPSILON,
                                             sqrt=sp.sqrt)),),
                  "update", "update", True),
        ]
    return Section("update", tuple(chains), facts={"optimizer": optimizer})
