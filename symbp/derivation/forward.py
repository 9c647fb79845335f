"""The forward pass and the loss (section "network"), and the derivative of each activation function
(section "activations"), each derived by SymPy one rule at a time.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.indexform import activation_formula, loss_term, preactivation
from symbp.derivation.model import Chain, Reason, Section, chain, fact, step
from symbp.derivation.steps import differentiate, present
from symbp.registry import rules
from symbp.registry.calculus import ActivationCalculus, a
from symbp.symbolic import quantities as q
from symbp.symbolic.network import Network
from symbp.symbolic.penalties import weight_penalties
from symbp.symbolic.quantities import SAMPLE_LOSS, VARIABLE, unit_index

# Sums over at most this many units are also written out term by term.
SPELL_OUT_UNITS = 4


def network_section(net: Network) -> Section:
    chains = []
    for layer in range(1, net.depth + 1):
        kind = net.layer(layer)
        if hasattr(kind, "index_definition"):
            # A window layer's entries by channel and position (symbp.symbolic.windows), not by unit.
            z = kind.index_output("pre")
            j = z.indices
            chains.append(chain(f"network.pre{layer}", z, step(kind.index_definition())))
            function = q.activation_function(net.activation(layer).name)
            # A pooling layer passes its pooled values on as they are.
            chains.append(chain(f"network.act{layer}", q.act(layer)[j], step(z if kind.pooling else function(z))))
            continue
        j, i = unit_index(layer, "cur"), unit_index(layer - 1, "prev")
        pre = preactivation(net, layer, j, i)
        chains.append(chain(f"network.pre{layer}", q.pre(layer)[j], step(pre)))
        function = q.activation_function(net.activation(layer).name)
        formula = activation_formula(net, layer, j)
        named = function(q.pre(layer)[j])
        # tanh(z) is its own formula: a second line would repeat it.
        plain = isinstance(formula, sp.Function) and formula.args == (q.pre(layer)[j],)
        steps = [step(formula)] if net.activation(layer).rowwise or plain else [step(named), step(formula)]
        chains.append(chain(f"network.act{layer}", q.act(layer)[j], *steps))
    out = net.depth
    k = unit_index(out, "cur")
    chains.append(chain("network.prediction", q.predictions()[k], step(q.act(out)[k])))
    per_output = loss_term(net, q.predictions()[k], q.targets()[k])
    total = sp.Sum(per_output, (k, 1, net.units(out)))
    loss_steps = [step(total)] if net.units(out) > 1 else []
    if net.units(out) <= SPELL_OUT_UNITS:
        loss_steps.append(step(total.doit()))
    chains.append(chain("network.sample_loss", SAMPLE_LOSS, *loss_steps, relation=":="))
    n = q.sample_index()
    data_loss = net.sample_coefficient * sp.Sum(q.sample_losses()[n], (n, 1, q.N_SAMPLES))
    chains.append(chain("network.loss", q.LOSS, step(data_loss + _penalty_sum(net)), scope="batch"))
    return Section("network", tuple(chains))


def _penalty_sum(net: Network) -> sp.Expr:
    """The weight penalties (kernel_regularizer), each summed over its weight's entries; 0 without any."""
    total = sp.Integer(0)
    for penalty in weight_penalties(net):
        parameter = penalty.parameter
        i, j = unit_index(parameter.layer - 1, "prev"), unit_index(parameter.layer, "cur")
        entry = q.quantity(parameter.role, parameter.layer)[i, j]
        total += sp.Sum(penalty.term(entry), (i, 1, parameter.fan_in), (j, 1, parameter.fan_out))
    return total


# --------------------------------------------------------------------------- activations


def activation_section(net: Network) -> Section:
    chains = []
    seen = set()
    # A pooling layer's output is its pre-activation: it has no activation to differentiate.
    for calculus in (layer.calculus for layer in net.layers if not getattr(layer, "pooling", False)):
        if calculus.name in seen or calculus.rowwise:
            continue
        seen.add(calculus.name)
        chains.extend(_activation_chains(calculus))
    return Section("activations", tuple(chains))


def _combined(expr: sp.Expr) -> sp.Expr:
    """One fraction, keeping exponentials as the activation writes them (e^{-z}, not 1/e^z)."""
    powers = {power: sp.Dummy("e", positive=True) for power in expr.atoms(sp.exp)}
    return sp.together(expr.xreplace(powers)).xreplace({v: k for k, v in powers.items()})


def _activation_chains(calculus: ActivationCalculus) -> list[Chain]:
    function = q.activation_function(calculus.name)
    forward = calculus.forward.subs(rules.z, VARIABLE)
    derivative = calculus.derivative.subs(rules.z, VARIABLE)
    # tanh(z) needs no definition: one that only names a function SymPy knows would read tanh(z) = tanh(z).
    known = isinstance(forward, sp.Function) and forward.args == (VARIABLE,)
    definition = [] if known else [
        chain(f"activation.{calculus.name}.definition", function(VARIABLE), step(forward), scope="function")]
    steps = differentiate(forward, VARIABLE, result=derivative)
    steps[0] = step(steps[0].expr, Reason("definition"))
    output_form = calculus.derivative_of_output
    if output_form is not None and output_form.has(a):
        factors = [factor for factor in sp.Mul.make_args(output_form) if factor.has(a)]
        values = [_combined(factor.subs(a, forward)) for factor in factors]
        facts = tuple(
            fact(factor.subs(a, function(VARIABLE)), value)
            for factor, value in zip(factors, values)
            if value != factor.subs(a, forward)
        )
        coefficient = sp.Mul(*(factor for factor in sp.Mul.make_args(output_form) if not factor.has(a)))
        if len(factors) > 1:
            split = sp.Mul(*([coefficient] if coefficient != 1 else []), *values, evaluate=False)
            steps.append(step(split, Reason("split")))
        steps.append(step(present(output_form.subs(a, function(VARIABLE))), Reason("in_terms_of_output", facts)))
    lhs = sp.Derivative(function(VARIABLE), VARIABLE)
    return [*definition, chain(f"activation.{calculus.name}.derivative", lhs, *steps, scope="function", boxed=True)]
