"""Linear regression as the actuarial lab derives it: Steps 1-3, its Equations (1) and (2), the update rule.

For a network that is one linear unit with one input and squared error, the lab does not speak of
layers and error terms: it writes the loss and the model yhat(x_i; theta) = w x_i + b (Step 1),
differentiates the loss by the prediction and the prediction by each parameter (Step 2), and puts
them together over the data set (Step 3). The chains here are that derivation, over the same
quantities as every other section (the unit's output is the prediction), so ``symbp.checks.verify``
evaluates each line against the generated module. ``symbp.render.latex.document`` prints them with
the lab's symbols.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.indexform import loss_term
from symbp.derivation.model import Reason, Section, chain, product, step
from symbp.derivation.steps import differentiate, present
from symbp.registry.rules import activation_named, loss_named
from symbp.symbolic import quantities as q
from symbp.symbolic.network import Network
from symbp.symbolic.quantities import LOSS, SAMPLE_LOSS, AtSample, Current, Partial, Updated


def is_regression(net: Network) -> bool:
    """One input, one linear dense unit, squared error: the lab's linear regression. (A skip or a dropout mask
    changes the model w x + b the section writes: such a unit gets the general sections instead.)"""
    spec = net.spec
    return (spec.sizes == (1, 1) and activation_named(spec.layers[0].activation).identity
            and net.layer(1).kind == "dense" and loss_named(spec.loss.name).least_squares)


def regression_section(net: Network) -> Section | None:
    if not is_regression(net):
        return None
    n = q.sample_index()
    prediction, x, y = q.act(1)[1], q.inputs()[1], q.targets()[1]
    weight, bias = q.weight(1)[1, 1], q.bias(1)[1]
    parameters = [weight] + ([bias] if net.has_bias(1) else [])
    model = weight * x + (bias if net.has_bias(1) else 0)
    coefficient = net.sample_coefficient
    per_sample = loss_term(net, prediction, y)

    def over_samples(expr):
        return coefficient * sp.Sum(AtSample(expr, n), (n, 1, q.N_SAMPLES))

    chains = [
        # Step 1: the loss on the data set, and the model's prediction.
        chain("regression.loss", LOSS, step(over_samples(per_sample), Reason("definition")), scope="batch"),
        chain("regression.prediction", prediction, step(model, Reason("definition"))),
    ]
    # Step 2: the loss by the prediction, and the prediction by each parameter.
    loss_gradient = present(sp.diff(per_sample, prediction))
    chains.append(chain("regression.dl_dyhat", Partial(SAMPLE_LOSS, prediction),
                        *differentiate(per_sample, prediction, result=loss_gradient)))
    slopes = {}
    for parameter in parameters:
        slopes[parameter] = sp.diff(model, parameter)
        chains.append(chain(f"regression.dyhat_d{_name(parameter)}", Partial(prediction, parameter),
                            step(Partial(model, parameter), Reason("definition")),
                            step(slopes[parameter], Reason("only_term"))))
    # Step 3: the chain rule on every sample, summed over the data set: the lab's Equations (1) and (2).
    for parameter in parameters:
        summed = over_samples(product(Partial(SAMPLE_LOSS, prediction), Partial(prediction, parameter)))
        combined = _pulled_out(coefficient, loss_gradient * slopes[parameter], n)
        chains.append(chain(f"regression.gradient_{_name(parameter)}", Partial(LOSS, parameter),
                            step(summed, Reason("chain_rule"), Reason("sum_over_samples")),
                            step(combined, Reason("substitute")), scope="batch", boxed=True))
    # The update rule, for t = 0, 1, 2, ...
    for parameter in parameters:
        chains.append(chain(f"regression.update_{_name(parameter)}", Updated(parameter),
                            step(Current(parameter) - q.LEARNING_RATE * Partial(LOSS, parameter),
                                 Reason("update")), scope="update", relation="update"))
    return Section("regression", tuple(chains))


def _name(parameter) -> str:
    return "w" if q.ROLES[parameter.base].kind == "weight" else "b"


def _pulled_out(coefficient, summand, n) -> sp.Expr:
    """c sum_i (k u_i) written as (c k) sum_i u_i: 2/N sum_i (yhat - y) x_i, as the lab writes Equation (1)."""
    constant, rest = sp.sympify(summand).as_coeff_Mul()
    return product(coefficient * constant, sp.Sum(AtSample(rest, n), (n, 1, q.N_SAMPLES)))
