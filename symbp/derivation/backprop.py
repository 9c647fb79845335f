"""Backpropagation for a spec, derived step by step, as data.

``derive(spec)`` returns sections of chains: each chain is one ``align*`` block of the document,
``lhs = step_1 = step_2 ...``, each step a SymPy expression over ``symbp.symbolic.quantities`` with the
reasons that justify it. The derivatives themselves come from ``symbp.registry.calculus`` (the registry's
activations and losses, differentiated by SymPy) and from ``symbp.derivation.steps`` (the same derivatives
taken one rule at a time); this module only arranges them in the order a lecture would. It knows
nothing of LaTeX: ``symbp.render.latex.document`` prints it, and ``symbp.checks.verify`` evaluates every expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import sympy as sp

from symbp.derivation.steps import Reason, Step, differentiate, fact, present
from symbp.registry import rules
from symbp.registry.calculus import ActivationCalculus, a, a_vec, activation_calculus, output_calculus
from symbp.registry.rules import loss_named
from symbp.spec.schema import Spec, exact_value, load_spec
from symbp.symbolic import quantities as q
from symbp.symbolic.quantities import SAMPLE_LOSS, VARIABLE, Partial, unit_index

# Sums over at most this many units are also written out term by term.
SPELL_OUT_UNITS = 4


@dataclass(frozen=True)
class Conventions:
    """The few choices of a notation that change the mathematics on the page."""

    error_sign: int = 1  # delta = error_sign * dL/dz
    column_vectors: bool = False  # the matrix form as W a + b per sample, rather than A W + 1 b per batch
    numbered_layers: bool = True  # general equations for a layer l of any depth; else for the layers by name


@dataclass(frozen=True)
class Chain:
    """One displayed derivation: lhs = steps[0] = steps[1] = ...

    ``scope`` tells the checker what the expressions are functions of: one data sample ("sample"),
    the free variable of an activation ("function"), a batch ("batch"), one sample as column
    vectors ("column") or one optimizer step ("update").
    """

    key: str
    lhs: sp.Basic
    steps: tuple[Step, ...]
    scope: str = "sample"
    relation: str = "="  # "=", ":=" (a definition), or "update"
    boxed: bool = False

    @property
    def result(self) -> sp.Basic:
        return self.steps[-1].expr


@dataclass(frozen=True)
class Section:
    kind: str  # "network", "activations", "output", "hidden", "matrix", "explicit", "update"
    chains: tuple[Chain, ...]
    layer: int | None = None
    facts: dict = field(default_factory=dict)  # plain data for the prose (sizes, names)

    def chain(self, key: str) -> Chain | None:
        return next((c for c in self.chains if c.key == key), None)


@dataclass(frozen=True)
class Derivation:
    spec: Spec
    conventions: Conventions
    sections: tuple[Section, ...]

    def chains(self):
        for section in self.sections:
            yield from section.chains

    def section(self, kind: str, layer: int | None = None) -> Section | None:
        return next((s for s in self.sections if s.kind == kind and (layer is None or s.layer == layer)), None)


def step(expr, *reasons: Reason) -> Step:
    return Step(expr, tuple(reasons))


def product(*factors) -> sp.Expr:
    """A product kept in the order given, as a chain rule is read; a leading -1 stays a sign."""
    # Each factor stays whole, a(1 - a) as one derivative, so the printer orders inside it.
    kept = [sp.sympify(factor) for factor in factors if factor != 1]
    if not kept:
        return sp.Integer(1)
    if len(kept) == 1:
        return kept[0]
    return sp.Mul(*kept, evaluate=False)


def chain(key, lhs, *steps: Step, **options) -> Chain:
    return Chain(key, lhs, tuple(steps), **options)


# --------------------------------------------------------------------------- the network


@dataclass(frozen=True)
class Net:
    """The spec seen as layers: sizes, activations and the loss, with SymPy's calculus for each."""

    spec: Spec
    calculus: tuple[ActivationCalculus, ...]  # per layer 1..L, at index l - 1

    @property
    def depth(self) -> int:
        return len(self.spec.layers)

    def units(self, layer: int) -> int:
        return self.spec.sizes[layer]

    def has_bias(self, layer: int) -> bool:
        return self.spec.layers[layer - 1].bias

    def activation(self, layer: int) -> ActivationCalculus:
        return self.calculus[layer - 1]

    @property
    def scale(self) -> sp.Expr:
        return exact_value(self.spec.loss.scale)

    @property
    def sample_coefficient(self) -> sp.Expr:
        """c in L = c * sum over samples of the sample losses."""
        return 1 / q.N_SAMPLES if self.spec.loss.reduction == "mean" else sp.Integer(1)


def net_of(spec: Spec) -> Net:
    return Net(spec, tuple(activation_calculus(layer.activation, layer.activation_params) for layer in spec.layers))


def preactivation(net: Net, layer: int, j, summed=None) -> sp.Expr:
    """z^(l)_j = sum_i w^(l)_ij a^(l-1)_i + b^(l)_j, summing over ``summed`` (an index of layer l - 1)."""
    i = summed if summed is not None else unit_index(layer - 1, "prev")
    total = sp.Sum(q.weight(layer)[i, j] * q.act(layer - 1)[i], (i, 1, net.units(layer - 1)))
    return total + q.bias(layer)[j] if net.has_bias(layer) else total


def activation_formula(net: Net, layer: int, j) -> sp.Expr:
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


def local_derivative(net: Net, layer: int, j) -> sp.Expr:
    """da_j/dz_j of an elementwise activation, in the layer's output where SymPy found that form."""
    calculus = net.activation(layer)
    if calculus.derivative_of_output is not None:
        return present(calculus.derivative_of_output.subs(a, q.act(layer)[j]))
    return calculus.derivative.subs(rules.z, q.pre(layer)[j])


def loss_term(net: Net, prediction, target) -> sp.Expr:
    """The spec's loss for one output, scale included."""
    loss = loss_named(net.spec.loss.name).expr
    return net.scale * loss.subs({rules.yhat: prediction, rules.y: target}, simultaneous=True)


def network_section(net: Net) -> Section:
    chains = []
    for layer in range(1, net.depth + 1):
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
    chains.append(chain("network.loss", q.LOSS, step(data_loss), scope="batch"))
    return Section("network", tuple(chains))


# --------------------------------------------------------------------------- activations


def activation_section(net: Net) -> Section:
    chains = []
    seen = set()
    for calculus in net.calculus:
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


# --------------------------------------------------------------------------- layers


def _derivative_of_activation(net: Net, layer: int) -> Reason:
    return Reason("derivative_of", about=q.activation_function(net.activation(layer).name)(VARIABLE))


def _affine_chains(net: Net, layer: int) -> list[Chain]:
    """dz_j/dw_ij = a_i and dz_j/db_j = 1, from the pre-activation's definition."""
    j, i = unit_index(layer, "cur"), unit_index(layer - 1, "prev")
    other = unit_index(layer - 1, "prev'")
    weight = q.weight(layer)[i, j]
    constants = [fact(Partial(q.bias(layer)[j], weight), 0)] if net.has_bias(layer) else []
    chains = [chain(
        f"layer{layer}.dz_dw", Partial(q.pre(layer)[j], weight),
        step(Partial(preactivation(net, layer, j, other), weight), Reason("definition")),
        step(q.act(layer - 1)[i], Reason("only_term"), *([Reason("constant", tuple(constants))] if constants else ())),
    )]
    if net.has_bias(layer):
        chains.append(chain(
            f"layer{layer}.dz_db", Partial(q.pre(layer)[j], q.bias(layer)[j]),
            step(Partial(preactivation(net, layer, j, other), q.bias(layer)[j]), Reason("definition")),
            step(sp.Integer(1), Reason("constant", (fact(Partial(q.weight(layer)[other, j], q.bias(layer)[j]), 0),))),
        ))
    return chains


def _local_chain(net: Net, layer: int) -> Chain:
    j = unit_index(layer, "cur")
    function = q.activation_function(net.activation(layer).name)
    return chain(
        f"layer{layer}.da_dz", Partial(q.act(layer)[j], q.pre(layer)[j]),
        step(sp.Derivative(function(q.pre(layer)[j]), q.pre(layer)[j]), Reason("definition")),
        step(local_derivative(net, layer, j), _derivative_of_activation(net, layer)),
    )


def delta_reason(layer: int, j, sign: int) -> Reason:
    return Reason("delta", (fact(q.delta(layer)[j], sign * Partial(SAMPLE_LOSS, q.pre(layer)[j])),))


def _parameter_chains(net: Net, layer: int, sign: int) -> list[Chain]:
    """dl/dw_ij = dl/dz_j dz_j/dw_ij = (sign) delta_j a_i, and the same for the bias."""
    j, i = unit_index(layer, "cur"), unit_index(layer - 1, "prev")
    delta = sign * q.delta(layer)[j]
    defined = delta_reason(layer, j, sign)
    chains = [chain(
        f"layer{layer}.weight", Partial(SAMPLE_LOSS, q.weight(layer)[i, j]),
        step(product(Partial(SAMPLE_LOSS, q.pre(layer)[j]), Partial(q.pre(layer)[j], q.weight(layer)[i, j])),
             Reason("chain_rule")),
        step(delta * q.act(layer - 1)[i], defined,
             Reason("substitute", (fact(Partial(q.pre(layer)[j], q.weight(layer)[i, j]), q.act(layer - 1)[i]),))),
        boxed=True,
    )]
    if net.has_bias(layer):
        chains.append(chain(
            f"layer{layer}.bias", Partial(SAMPLE_LOSS, q.bias(layer)[j]),
            step(product(Partial(SAMPLE_LOSS, q.pre(layer)[j]), Partial(q.pre(layer)[j], q.bias(layer)[j])),
                 Reason("chain_rule")),
            step(delta, defined, Reason("substitute", (fact(Partial(q.pre(layer)[j], q.bias(layer)[j]), 1),))),
            boxed=True,
        ))
    return chains


def output_section(net: Net, sign: int) -> Section:
    layer = net.depth
    j, i = unit_index(layer, "cur"), unit_index(layer - 1, "prev")
    k = unit_index(layer, "cur'")
    calculus = net.activation(layer)
    out = output_calculus(net.spec.loss.name, calculus.name, net.spec.layers[-1].activation_params)
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
        weight = q.weight(layer)[i, j]
        chains.append(chain(
            f"layer{layer}.weight_steps", Partial(SAMPLE_LOSS, weight),
            step(product(Partial(SAMPLE_LOSS, a_j), Partial(a_j, z_j), Partial(z_j, weight)), Reason("chain_rule")),
            step(product(loss_grad_value, Partial(a_j, z_j), Partial(z_j, weight)), Reason("substitute")),
            step(product(loss_grad_value, local, Partial(z_j, weight)), _derivative_of_activation(net, layer)),
            step(sp.Mul(loss_grad_value, local, q.act(layer - 1)[i]),
                 Reason("substitute", (fact(Partial(z_j, weight), q.act(layer - 1)[i]),))),
            step(sign * q.delta(layer)[j] * q.act(layer - 1)[i], Reason("delta")),
        ))
    chains += _affine_chains(net, layer) + _parameter_chains(net, layer, sign)
    return Section("output", tuple(_dedupe(c) for c in chains), layer)


def _target_facts(out, layer: int, units: int) -> list[sp.Eq]:
    k = unit_index(layer, "cur'")
    facts = []
    for lhs, rhs in out.facts_used:
        (index, _, _), = lhs.limits
        function = lhs.function.xreplace({rules.y_vec: q.targets(), index: k})
        facts.append(fact(sp.Sum(function, (k, 1, units)), rhs))
    return facts


def in_layer(expr: sp.Expr, net: Net, layer: int, j, k=None) -> sp.Expr:
    """A ``symbp.registry.calculus`` expression over units j (and k) of one layer, in the derivation's quantities.

    The calculus counts units 0..K-1 and guards results by 0 <= j < K; here units are counted from
    1, K is the layer's size, and the guard (true for every unit) is dropped. A guard on a value,
    such as relu's a > 0, stays.
    """
    from symbp.registry.calculus import j as calculus_j

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


def hidden_section(net: Net, layer: int, sign: int) -> Section:
    j, k = unit_index(layer, "cur"), unit_index(layer + 1, "next")
    above = q.pre(layer + 1)[k]
    a_j, z_j = q.act(layer)[j], q.pre(layer)[j]
    units_above = net.units(layer + 1)

    received = sp.Sum(q.delta(layer + 1)[k] * q.weight(layer + 1)[j, k], (k, 1, units_above))
    incoming_steps = [
        step(sign * Partial(SAMPLE_LOSS, a_j), Reason("definition")),
        step(sign * sp.Sum(product(Partial(SAMPLE_LOSS, above), Partial(above, a_j)), (k, 1, units_above)),
             Reason("total_derivative")),
        step(received, Reason("delta"), Reason("substitute", (fact(Partial(above, a_j), q.weight(layer + 1)[j, k]),))),
    ]
    if units_above <= SPELL_OUT_UNITS:
        incoming_steps.append(step(received.doit()))
    other = unit_index(layer, "cur'")
    chains = [
        chain(f"layer{layer}.incoming", q.incoming(layer)[j], *incoming_steps, relation=":="),
        chain(
            f"layer{layer}.dz_da", Partial(above, a_j),
            step(Partial(preactivation(net, layer + 1, k, other), a_j), Reason("definition")),
            step(q.weight(layer + 1)[j, k], Reason("only_term")),
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
        step(sp.Mul(received, local), _derivative_of_activation(net, layer)),
        relation=":=", boxed=True,
    ))
    chains += _affine_chains(net, layer) + _parameter_chains(net, layer, sign)
    return Section("hidden", tuple(_dedupe(c) for c in chains), layer)


def _dedupe(c: Chain) -> Chain:
    """Drops a step that SymPy already wrote identically in the line before."""
    kept = []
    for s in c.steps:
        previous = kept[-1].expr if kept else c.lhs
        if s.expr == previous:
            continue
        kept.append(s)
    return Chain(c.key, c.lhs, tuple(kept), c.scope, c.relation, c.boxed)


# --------------------------------------------------------------------------- the whole derivation


def derive(spec_source, conventions: Conventions | None = None) -> Derivation:
    """The derivation of backpropagation for a spec, section by section."""
    return _derive(load_spec(spec_source), conventions or Conventions())


@cache
def _derive(spec: Spec, conventions: Conventions) -> Derivation:
    # Cached: a derivation is data that nothing changes, and SymPy takes seconds over a large one.
    from symbp.derivation.explicit import explicit_section
    from symbp.derivation.general import general_section
    from symbp.derivation.matrixform import matrix_section
    from symbp.derivation.regression import regression_section
    from symbp.derivation.updates import update_section
    from symbp.derivation.worked import worked_section

    net = net_of(spec)
    sign = conventions.error_sign
    output = output_section(net, sign)
    sections = [network_section(net), activation_section(net), general_section(net, sign, conventions.numbered_layers),
                worked_section(net, sign, output), output]
    sections += [hidden_section(net, layer, sign) for layer in range(net.depth - 1, 0, -1)]
    sections.append(matrix_section(net, conventions))
    explicit = explicit_section(net, sign)
    if explicit is not None:
        sections.append(explicit)
    sections.append(update_section(net, sign))
    # The lab's own derivation of linear regression, for a spec that is one: the lab's document prints it instead.
    regression = regression_section(net)
    if regression is not None:
        sections.append(regression)
    return Derivation(spec, conventions, tuple(s for s in sections if s.chains))
