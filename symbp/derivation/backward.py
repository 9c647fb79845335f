"""The backward pass in index form: the output layer's error term (section "output") and each hidden
layer's (section "hidden"), and the gradient of every weight and bias from them.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.forward import SPELL_OUT_UNITS
from symbp.derivation.indexform import (
    activation_formula,
    in_layer,
    local_derivative,
    loss_term,
    route_chains,
)
from symbp.derivation.model import Chain, Reason, Section, chain, fact, product, step
from symbp.derivation.steps import differentiate, present
from symbp.registry import rules
from symbp.symbolic import quantities as q
from symbp.symbolic.layers import input_route, parameter_routes
from symbp.symbolic.network import Network
from symbp.symbolic.quantities import SAMPLE_LOSS, VARIABLE, Partial, unit_index


def _derivative_of_activation(net: Network, layer: int) -> Reason:
    return Reason("derivative_of", about=q.activation_function(net.activation(layer).name)(VARIABLE))


def _routes_through_z(net: Network, layer: int) -> list:
    """The parameters of unit j that enter its pre-activation z_j directly, with their routes (from the layer's
    kind); a normalised layer's weights enter its weighted sums instead, in section "normalisation"."""
    z = q.pre(layer)[unit_index(layer, "cur")]
    return [route for route in parameter_routes(net.layer(layer)) if route.through == z]


def _local_chain(net: Network, layer: int) -> Chain:
    j = unit_index(layer, "cur")
    function = q.activation_function(net.activation(layer).name)
    return chain(
        f"layer{layer}.da_dz", Partial(q.act(layer)[j], q.pre(layer)[j]),
        step(sp.Derivative(function(q.pre(layer)[j]), q.pre(layer)[j]), Reason("definition")),
        step(local_derivative(net, layer, j), _derivative_of_activation(net, layer)),
    )


def _layer_facts(net: Network, layer: int) -> dict:
    """For the prose: whether some parameter of the layer reaches z only through a quantity of its own (a
    normalised layer's weights), and whether the layer above takes this layer's outputs into such a quantity."""
    k = unit_index(layer + 1, "next")
    above = input_route(net.layer(layer + 1), k, unit_index(layer, "cur'"))[0] if layer < net.depth else None
    return {"normalised": len(_routes_through_z(net, layer)) < len(parameter_routes(net.layer(layer))),
            "above_normalised": above is not None and above != q.pre(layer + 1)[k]}


def _parameter_chains(net: Network, layer: int, sign: int) -> list[Chain]:
    """dz_j/dp for each parameter p of unit j, from the pre-activation's definition, and dl/dp = (sign) delta_j
    dz_j/dp."""
    return route_chains(f"layer{layer}", _routes_through_z(net, layer), sign)


def output_section(net: Network, sign: int) -> Section:
    layer = net.depth
    j = unit_index(layer, "cur")
    k = unit_index(layer, "cur'")
    calculus = net.activation(layer)
    out = net.output
    a_j, y_j, z_j = q.act(layer)[j], q.targets()[j], q.pre(layer)[j]

    # dl/da_j, from the loss as the spec defines it.
    total = sp.Sum(loss_term(net, q.act(layer)[k], q.targets()[k]), (k, 1, net.units(layer)))
    own = loss_term(net, a_j, y_j)
    loss_grad_value = present(net.scale * out.loss_derivative.subs({rules.yhat: a_j, rules.y: y_j}, simultaneous=True))
    loss_steps = [step(Partial(total, a_j), Reason("definition"))]
    if net.units(layer) > 1:
        loss_steps.append(step(Partial(own, a_j), Reason("only_term")))
    loss_steps += differentiate(own, a_j, result=loss_grad_value)[1:]
    chains = [chain(f"layer{layer}.dl_da", Partial(SAMPLE_LOSS, a_j), *loss_steps)]

    delta_value = present(sign * net.scale * in_layer(out.delta, net, layer, j))
    if calculus.rowwise:
        jacobian = in_layer(calculus.derivative, net, layer, j, k)
        grad_k = loss_grad_value.xreplace({j: k})
        chains.append(chain(
            f"layer{layer}.da_dz", Partial(q.act(layer)[k], z_j),
            step(Partial(activation_formula(net, layer, k), z_j), Reason("definition")),
            step(jacobian, Reason("derivative_of", about=q.activation_function(calculus.name)(VARIABLE))),
        ))
        summand = grad_k * jacobian
        chains.append(chain(
            f"layer{layer}.delta", q.delta(layer)[j],
            step(sign * Partial(SAMPLE_LOSS, z_j), Reason("delta")),
            step(sign * sp.Sum(product(Partial(SAMPLE_LOSS, q.act(layer)[k]), Partial(q.act(layer)[k], z_j)),
                               (k, 1, net.units(layer))), Reason("total_derivative")),
            step(sign * sp.Sum(summand, (k, 1, net.units(layer))), Reason("substitute")),
            step(sign * sp.Sum(sp.simplify(summand), (k, 1, net.units(layer))), Reason("simplify")),
            step(delta_value, Reason("fact", tuple(_target_facts(out, layer, net.units(layer))))),
            relation=":=", boxed=True,
        ))
    else:
        chains.append(_local_chain(net, layer))
        local = local_derivative(net, layer, j)
        chains.append(chain(
            f"layer{layer}.delta", q.delta(layer)[j],
            step(sign * Partial(SAMPLE_LOSS, z_j), Reason("delta")),
            step(product(sign, Partial(SAMPLE_LOSS, a_j), Partial(a_j, z_j)), Reason("chain_rule")),
            step(sp.Mul(sign, loss_grad_value, local), Reason("substitute")),
            step(delta_value, Reason("simplify")),
            relation=":=", boxed=True,
        ))
        weights = [route for route in _routes_through_z(net, layer) if route.parameter.role == "weight"]
        weight, source = (weights[0].indexed, weights[0].source) if weights else (None, None)
        chains += [] if weight is None else [chain(
            f"layer{layer}.weight_steps", Partial(SAMPLE_LOSS, weight),
            step(product(Partial(SAMPLE_LOSS, a_j), Partial(a_j, z_j), Partial(z_j, weight)), Reason("chain_rule")),
            step(product(loss_grad_value, Partial(a_j, z_j), Partial(z_j, weight)), Reason("substitute")),
            step(product(loss_grad_value, local, Partial(z_j, weight)), _derivative_of_activation(net, layer)),
            step(sp.Mul(loss_grad_value, local, source), Reason("substitute", (fact(Partial(z_j, weight), source),))),
            step(sign * q.delta(layer)[j] * source, Reason("delta")),
        )]
    chains += _parameter_chains(net, layer, sign)
    return Section("output", tuple(_dedupe(c) for c in chains), layer, facts=_layer_facts(net, layer))


def _target_facts(out, layer: int, units: int) -> list[sp.Eq]:
    k = unit_index(layer, "cur'")
    facts = []
    for lhs, rhs in out.facts_used:
        (index, _, _), = lhs.limits
        function = lhs.function.xreplace({rules.y_vec: q.targets(), index: k})
        facts.append(fact(sp.Sum(function, (k, 1, units)), rhs))
    return facts


def hidden_section(net: Network, layer: int, sign: int) -> Section:
    j, k = unit_index(layer, "cur"), unit_index(layer + 1, "next")
    other = unit_index(layer, "cur'")
    # The quantity of each unit above that this layer's outputs enter (z_k, or a normalised layer's u_k).
    above, error_above, formula_above = input_route(net.layer(layer + 1), k, other)
    a_j, z_j = q.act(layer)[j], q.pre(layer)[j]
    units_above = net.units(layer + 1)
    reaches = net.layer(layer + 1).index_input_partial(k, j)

    received = sp.Sum(error_above * reaches, (k, 1, units_above))
    incoming_steps = [
        step(sign * Partial(SAMPLE_LOSS, a_j), Reason("definition")),
        step(sign * sp.Sum(product(Partial(SAMPLE_LOSS, above), Partial(above, a_j)), (k, 1, units_above)),
             Reason("total_derivative")),
        step(received, Reason("delta"), Reason("substitute", (fact(Partial(above, a_j), reaches),))),
    ]
    split = _split_selected(received, j, net.units(layer))
    if split is not None:
        incoming_steps.append(step(split, Reason("sum_rule")))
    if units_above <= SPELL_OUT_UNITS:
        incoming_steps.append(step(_within_units(received.doit(), j, net.units(layer))))
    chains = [
        chain(f"layer{layer}.incoming", q.incoming(layer)[j], *incoming_steps, relation=":="),
        chain(
            f"layer{layer}.dz_da", Partial(above, a_j),
            step(Partial(formula_above, a_j), Reason("definition")),
            step(reaches, Reason("only_term")),
        ),
        _local_chain(net, layer),
    ]
    local = local_derivative(net, layer, j)
    chains.append(chain(
        f"layer{layer}.delta", q.delta(layer)[j],
        step(sign * Partial(SAMPLE_LOSS, z_j), Reason("delta")),
        step(product(sign, Partial(SAMPLE_LOSS, a_j), Partial(a_j, z_j)), Reason("chain_rule")),
        step(product(q.incoming(layer)[j], Partial(a_j, z_j)), Reason("definition")),
        step(product(received, Partial(a_j, z_j)), Reason("total_derivative")),
        step(sp.Mul(received if split is None else split, local), _derivative_of_activation(net, layer)),
        relation=":=", boxed=True,
    ))
    chains += _parameter_chains(net, layer, sign)
    return Section("hidden", tuple(_dedupe(c) for c in chains), layer, facts=_layer_facts(net, layer))


def _split_selected(total: sp.Sum, j, units: int) -> sp.Expr | None:
    """A sum over k whose terms include one picked out by [j = k] (a skip connection's), split into the sum of
    the other terms and the picked term itself; None when no term holds a Kronecker delta."""
    terms = sp.Add.make_args(sp.expand(total.function))
    if not any(term.has(sp.KroneckerDelta) for term in terms):
        return None
    rest = [term for term in terms if not term.has(sp.KroneckerDelta)]
    picked = [_within_units(sp.Sum(term, *total.limits).doit(), j, units) for term in terms
              if term.has(sp.KroneckerDelta)]
    return sp.Add(sp.Sum(sp.Add(*rest), *total.limits), *picked) if rest else sp.Add(*picked)


def _within_units(expr: sp.Expr, j, units: int) -> sp.Expr:
    """``expr`` with each case distinction on the unit index j resolved, j being one of the units 1..units.

    Summing a Kronecker delta over k leaves ``Piecewise((term, j <= K), (0, True))``: SymPy does not know the
    range of j, and the layer does.
    """
    def resolved(piecewise: sp.Piecewise) -> sp.Expr:
        for value, condition in piecewise.args:
            if all(bool(condition.subs(j, unit)) for unit in range(1, units + 1)):
                return value
        return piecewise

    return expr.replace(lambda e: isinstance(e, sp.Piecewise), resolved)


def _dedupe(c: Chain) -> Chain:
    """Drops a step that SymPy already wrote identically in the line before."""
    kept = []
    for s in c.steps:
        previous = kept[-1].expr if kept else c.lhs
        if s.expr == previous:
            continue
        kept.append(s)
    return Chain(c.key, c.lhs, tuple(kept), c.scope, c.relation, c.boxed)
