"""The network in index form, as the derivation's sections write it: one unit, one weight, one sample.

``preactivation(net, l, j)`` is ``z^(l)_j = sum_i w^(l)_ij a^(l-1)_i + b^(l)_j`` over the named quantities of
``symbp.symbolic.quantities``; ``in_layer`` turns the registry calculus's expressions (units counted from 0, over
generic vectors) into the same quantities. Every section module reads the network through these functions.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.model import Reason, chain, fact, product, step
from symbp.derivation.steps import present
from symbp.registry import rules
from symbp.registry.calculus import a, a_vec
from symbp.registry.calculus import j as calculus_j
from symbp.registry.rules import loss_named
from symbp.spec.schema import Spec
from symbp.symbolic import quantities as q
from symbp.symbolic.network import Network, network_of
from symbp.symbolic.quantities import SAMPLE_LOSS, Partial, unit_index


def net_of(spec: Spec) -> Network:
    return network_of(spec)


def preactivation(net: Network, layer: int, j, summed=None) -> sp.Expr:
    """z^(l)_j in index form, as the layer's kind writes it; ``summed`` is an index of layer l - 1."""
    return net.layer(layer).index_preactivation(j, summed)


def activation_formula(net: Network, layer: int, j) -> sp.Expr:
    """a^(l)_j written out in the layer's pre-activations."""
    calculus = net.activation(layer)
    if not calculus.rowwise:
        return calculus.forward.subs(rules.z, q.pre(layer)[j])
    # The registry's row-wise entries run over units 0..K-1; the documents count from 1.
    other = unit_index(layer, "cur''")
    total = calculus.forward.xreplace({rules.z_vec: q.pre(layer), rules.k: j})

    def one_based(node):
        (index, _, _), = node.limits
        return sp.Sum(node.function.xreplace({index: other}), (other, 1, net.units(layer)))

    return total.replace(lambda node: isinstance(node, sp.Sum), one_based)


def local_derivative(net: Network, layer: int, j) -> sp.Expr:
    """da_j/dz_j of an elementwise activation, in the layer's output where SymPy found that form."""
    calculus = net.activation(layer)
    if calculus.derivative_of_output is not None:
        return present(calculus.derivative_of_output.subs(a, q.act(layer)[j]))
    return calculus.derivative.subs(rules.z, q.pre(layer)[j])


def loss_term(net: Network, prediction, target) -> sp.Expr:
    """The spec's loss for one output, scale included."""
    loss = loss_named(net.spec.loss.name).expr
    return net.scale * loss.subs({rules.yhat: prediction, rules.y: target}, simultaneous=True)


def in_layer(expr: sp.Expr, net: Network, layer: int, j, k=None) -> sp.Expr:
    """A ``symbp.registry.calculus`` expression over units j (and k) of one layer, in the derivation's quantities.

    The calculus counts units 0..K-1 and guards results by 0 <= j < K; here units are counted from
    1, K is the layer's size, and the guard (true for every unit) is dropped. A guard on a value,
    such as relu's a > 0, stays.
    """
    units = net.units(layer)
    summed = unit_index(layer, "cur''")

    def one_based(node):
        (index, _, _), = node.limits
        return sp.Sum(node.function.xreplace({index: summed}), (summed, 1, units))

    def in_range(node):
        guards = [condition for _, condition in node.args if condition is not sp.true]
        if any(condition.has(sp.Indexed) for condition in guards):
            return node
        return node.args[0].expr

    # The guard goes first: it speaks of 0-based units, and would be decided wrongly after renumbering.
    replaced = expr.replace(lambda node: isinstance(node, sp.Piecewise), in_range)
    replaced = replaced.replace(lambda node: isinstance(node, sp.Sum), one_based)
    replaced = replaced.xreplace({a_vec: q.act(layer), rules.y_vec: q.targets(), rules.z_vec: q.pre(layer),
                                  rules.K: units})
    return replaced.xreplace({calculus_j: j, **({rules.k: k} if k is not None else {})})


def _summed_primed(parameter: sp.Indexed) -> dict:
    """The parameter's indices over the layer below (the ones a pre-activation's sum runs over), each primed."""
    return {index: unit_index(q.INDEX_ROLES[index].layer, "prev'") for index in parameter.indices
            if index in q.INDEX_ROLES and q.INDEX_ROLES[index].relation == "prev"}


def route_chains(prefix: str, routes, sign: int) -> list:
    """For each parameter's route (``symbp.symbolic.layers.Route``), what it multiplies in the quantity it enters
    (from that quantity's definition), and its gradient: dl/dp = dl/dq dq/dp = (sign) e_j dq/dp, e the error term
    of q (delta at z, or a normalised layer's at u). Keys ``dz_dw``/``du_dw`` and ``weight``, by q and role."""
    chains = []
    for route in routes:
        role, through, parameter = route.parameter.role, route.through, route.indexed
        letter = "z" if q.ROLES[through.base].kind == "pre" else "u"
        others = [other.indexed for other in routes if other.indexed != parameter and other.through == through]
        # Every other parameter is a constant here, written with the index the sum runs over (w_{i'j}, not w_{ij}).
        constants = tuple(fact(Partial(other.xreplace(_summed_primed(other)), parameter), 0) for other in others)
        reasons = [] if route.source == 1 else [Reason("only_term")]
        reasons += [Reason("constant", constants)] if constants else []
        chains.append(chain(f"{prefix}.d{letter}_d{role[0]}", Partial(through, parameter),
                            step(Partial(route.formula, parameter), Reason("definition")),
                            step(route.source, *reasons)))
    for route in routes:
        defined = Reason("delta", (fact(route.error, sign * Partial(SAMPLE_LOSS, route.through)),))
        chains.append(chain(
            f"{prefix}.{route.parameter.role}", Partial(SAMPLE_LOSS, route.indexed),
            step(product(Partial(SAMPLE_LOSS, route.through), Partial(route.through, route.indexed)),
                 Reason("chain_rule")),
            step(sign * route.error * route.source, defined,
                 Reason("substitute", (fact(Partial(route.through, route.indexed), route.source),))),
            boxed=True,
        ))
    return chains


def delta_reason(layer: int, j, sign: int) -> Reason:
    """The reason that names the error term: delta^(l)_j = (sign) dl/dz^(l)_j."""
    return Reason("delta", (fact(q.delta(layer)[j], sign * Partial(SAMPLE_LOSS, q.pre(layer)[j])),))
