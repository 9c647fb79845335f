"""Worked chains: one output weight and one first-layer weight, as explicit products of named factors.

Before the index form, the reference texts follow single weights through the network: the lesson's
dE/dw16 and dE/dw1, the lab's Example 1. Each factor of the chain rule is one link of the path from
the weight to the loss (pre-activation, output, the pre-activations of the layer above, ...); where a
unit feeds several units above, the path branches and the chain rule adds over the branches. Each
factor is stated with its own derivative, the product is written out, and it ends in the error terms
of the index form. Factor values are the ones the output and hidden sections derive (SymPy's), taken
at concrete units; ``symbp.checks.verify`` evaluates every line.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.indexform import local_derivative
from symbp.derivation.model import Chain, Reason, Section, chain, product, step
from symbp.symbolic import quantities as q
from symbp.symbolic.layers import fully_connected
from symbp.symbolic.network import Network
from symbp.symbolic.quantities import SAMPLE_LOSS, Partial, unit_index

# The summation index of each layer above the first, counted from the output down: distinct letters in
# every notation (the lab's j, l, j', l'; the slides' j, k', ...).
_BRANCH_RELATIONS = ("cur", "next", "cur'", "next'", "cur''", "next''")
FIRST = sp.Integer(1)


def _branch_index(net: Network, layer: int) -> sp.Basic:
    """The unit of ``layer`` a path runs through: unit 1 where the layer has one unit, else a summed index."""
    if net.units(layer) == 1:
        return FIRST
    return unit_index(layer, _BRANCH_RELATIONS[(net.depth - layer) % len(_BRANCH_RELATIONS)])


class _Links:
    """The factors of one path, as Leibniz quotients and as the values the derivation found for them."""

    def __init__(self, net: Network, sign: int, output: Section):
        self.net, self.sign = net, sign
        layer = net.depth
        j = unit_index(layer, "cur")
        self.rowwise = net.activation(layer).rowwise
        self.loss_gradient = output.chain(f"layer{layer}.dl_da").result  # in unit j
        self.error_value = output.chain(f"layer{layer}.delta").result  # sign * dl/dz_j, in unit j
        self.output_unit = j
        self.factors: list[Chain] = []  # each new factor with its derivative, once
        self._seen: set = set()

    def state(self, lhs, *steps) -> None:
        """A factor with its derivative, the first time the path meets it."""
        if lhs not in self._seen:
            self._seen.add(lhs)
            self.factors.append(chain(f"factor{len(self.factors)}", lhs, *steps))

    def top(self, unit) -> tuple[list, list]:
        """dl/dz of an output unit: (quotients, their values)."""
        layer = self.net.depth
        at = {self.output_unit: unit}
        z, a = q.pre(layer)[unit], q.act(layer)[unit]
        if self.rowwise:
            # A softmax output depends on every pre-activation: dl/dz is taken whole, as the output section derives it.
            value = self.sign * self.error_value.xreplace(at)
            self.state(Partial(SAMPLE_LOSS, z), step(value, Reason("delta")))
            return [Partial(SAMPLE_LOSS, z)], [value]
        loss_value = self.loss_gradient.xreplace(at)
        self.state(Partial(SAMPLE_LOSS, a), step(loss_value))  # derived rule by rule in the output section
        return [Partial(SAMPLE_LOSS, a), Partial(a, z)], [loss_value, self._local(layer, unit)]

    def _local(self, layer: int, unit) -> sp.Expr:
        """da/dz of a unit, stated once as a factor; a derivative by cases (relu's) keeps its name, f'(z),
        in the product, whose terms would otherwise be split into cases."""
        z, a = q.pre(layer)[unit], q.act(layer)[unit]
        local = local_derivative(self.net, layer, unit)
        reason = Reason("derivative_of", about=q.activation_function(self.net.activation(layer).name)(q.VARIABLE))
        if not local.has(sp.Piecewise):
            self.state(Partial(a, z), step(local, reason))
            return local
        named = sp.Derivative(q.activation_function(self.net.activation(layer).name)(z), z)
        self.state(Partial(a, z), step(named, Reason("definition")), step(local, reason))
        return named

    def down(self, layer: int, unit, above) -> tuple[list, list]:
        """The two links from unit ``above`` of layer + 1 down to the pre-activation of ``unit`` of ``layer``."""
        z_above, a, z = q.pre(layer + 1)[above], q.act(layer)[unit], q.pre(layer)[unit]
        weight = q.weight(layer + 1)[unit, above]
        self.state(Partial(z_above, a), step(weight, Reason("only_term")))
        return [Partial(z_above, a), Partial(a, z)], [weight, self._local(layer, unit)]

    def path(self, layer: int) -> tuple[list, list, list]:
        """dl/dz of unit 1 of ``layer`` along every path: the quotients, their values, and the sums over the
        units each path passes through (the chain rule adds the paths)."""
        units = {above: _branch_index(self.net, above) for above in range(layer + 1, self.net.depth + 1)}
        units[layer] = FIRST
        quotients, values = self.top(units[self.net.depth])
        for below in range(self.net.depth - 1, layer - 1, -1):
            more_quotients, more_values = self.down(below, units[below], units[below + 1])
            quotients, values = quotients + more_quotients, values + more_values
        limits = [(units[above], 1, self.net.units(above)) for above in sorted(units, reverse=True)
                  if units[above] != FIRST]
        return quotients, values, limits


def _summed(expr: sp.Expr, limits: list) -> sp.Expr:
    """One sum sign per summed index, the outermost first, as the texts write a sum over paths."""
    for limit in reversed(limits):
        expr = sp.Sum(expr, limit)
    return expr


def _weight_chain(key: str, links: _Links, layer: int) -> tuple[Chain, list]:
    net = links.net
    weight = q.weight(layer)[FIRST, FIRST]
    z, below = q.pre(layer)[FIRST], q.act(layer - 1)[FIRST]
    quotients, values, limits = links.path(layer)
    links.state(Partial(z, weight), step(below, Reason("only_term")))
    path = [weight, z] + _path_above(net, layer)
    return chain(
        key, Partial(SAMPLE_LOSS, weight),
        step(_summed(product(*quotients, Partial(z, weight)), limits),
             Reason("total_derivative") if limits else Reason("chain_rule")),
        step(_summed(product(*values, below), limits), Reason("substitute")),
        step(links.sign * q.delta(layer)[FIRST] * below, Reason("delta")),
    ), path


def _path_above(net: Network, layer: int) -> list:
    """The quantities a path passes on its way up from the pre-activation of a unit of ``layer``."""
    path = [q.act(layer)[FIRST]]
    for above in range(layer + 1, net.depth + 1):
        unit = _branch_index(net, above)
        path += [q.pre(above)[unit], q.act(above)[unit]]
    if net.activation(net.depth).rowwise:
        path.pop()  # the softmax's dl/dz is taken whole
    return path + [SAMPLE_LOSS]


def worked_section(net: Network, sign: int, output: Section) -> Section:
    """The output weight w(L)_11 and, below it, the first-layer weight w(1)_11, each followed to the loss.

    Written for fully connected layers, as the texts' worked examples are; a network with another kind of layer
    gets none (an empty section is left out of the document)."""
    if not all(fully_connected(layer) for layer in net.layers):
        return Section("worked", ())
    chains, paths = [], []
    links = _Links(net, sign, output)  # shared: a factor already stated is not stated again
    for key, layer in (("output_weight", net.depth), ("first_weight", 1)):
        if key == "first_weight" and net.depth == 1:
            break
        known = len(links.factors)
        worked, path = _weight_chain(key, links, layer)
        factors = [Chain(f"{key}.{c.key}", c.lhs, c.steps, c.scope) for c in links.factors[known:]]
        chains += [Chain(f"worked.{c.key}", c.lhs, c.steps, c.scope) for c in factors]
        chains.append(Chain(f"worked.{key}", worked.lhs, worked.steps, worked.scope, boxed=True))
        paths.append({"key": key, "layer": layer, "path": path, "factors": [c.key.split(".", 1)[1] for c in factors],
                      "reused": known > 0 and len(factors) < len(worked.steps[0].expr.atoms(Partial)),
                      "branches": [above for above in range(layer + 1, net.depth + 1)
                                   if _branch_index(net, above) != FIRST]})
    return Section("worked", tuple(chains), facts={"paths": paths})
