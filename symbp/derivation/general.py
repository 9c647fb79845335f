"""The equations of backpropagation for any network, before the spec's own.

The reference texts state the equations once for a general network before they work one: the
slides' four equations, the article's three for the output layer L generalised to every layer l, the
lab's Equations (3) and (4). Here they are derived for a network of depth ``DEPTH`` with an unnamed
activation and loss: the output layer's error term by the chain rule, and a hidden layer's from the
layer above by the total derivative, which is the induction step from layer l + 1 to layer l. SymPy
takes the one derivative that is not a quotient of named quantities, dz^(l+1)_k / da^(l)_j, from the
pre-activation's sum over a symbolic number of units.

Layers here are symbols, so the section cannot be evaluated on numbers (its scope is "general"); what
it states is checked through its specialisations, the output and hidden sections of the same derivation.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.indexform import delta_reason
from symbp.derivation.model import Reason, Section, chain, fact, product, step
from symbp.symbolic import quantities as q
from symbp.symbolic.dropout import dropout_layers
from symbp.symbolic.network import Network
from symbp.symbolic.quantities import SAMPLE_LOSS, Partial, unit_index
from symbp.symbolic.residual import residual_layers

DEPTH, LAYER = q.DEPTH, q.LAYER  # the output layer L, and any hidden layer l with 1 <= l < L
GENERIC = "generic"  # the activation of a layer, unnamed (phi, sigma or f in the texts)
# The number of units of a layer, as an upper limit of a sum: the documents write the sum over "every k".
units_of = sp.Function("units", integer=True, positive=True)
SCOPE = "general"


def generic_activation() -> sp.FunctionClass:
    return q.activation_function(GENERIC)


def _local(layer, j) -> sp.Expr:
    z = q.pre(layer)[j]
    return sp.Derivative(generic_activation()(z), z)


def _derivative_reason() -> Reason:
    return Reason("derivative_of", about=generic_activation()(q.VARIABLE))


def _input(layer, i, masked: bool) -> sp.Expr:
    """Input i of ``layer`` as its pre-activation sees it: a^(l-1)_i, times the dropout mask m^(l)_i when the
    network drops inputs (m = 1 for a layer without dropout)."""
    return q.mask(layer)[i] * q.act(layer - 1)[i] if masked else q.act(layer - 1)[i]


def _preactivation(above, k, other, count, masked: bool, skipped: bool) -> sp.Expr:
    """z^(l+1)_k as a sum over the units below, plus the skip's s^(l+1) a^(l)_k in a network with a residual
    layer (s = 1 for a residual layer, 0 for any other)."""
    pre = sp.Sum(q.weight(above)[other, k] * _input(above, other, masked), (other, 1, count)) + q.bias(above)[k]
    return pre + q.skip(above) * q.act(above - 1)[k] if skipped else pre


def _skipped_preactivation(layer, above, masked: bool):
    """The pre-activation of a unit of the layer above, as the text states it for a network with a skip."""
    j, k = unit_index(layer, "cur"), unit_index(above, "next")
    written = _preactivation(above, k, j, units_of(layer), masked, skipped=True)
    return chain("general.preactivation", q.pre(above)[k], step(written, Reason("definition")), scope=SCOPE)


def _first_case(expr: sp.Expr) -> sp.Expr:
    """``expr`` with each of SymPy's "if unit j exists" case distinctions resolved: it does, so the first case."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0].expr)


def _dz_da(above, layer, j, k, masked: bool = False, skipped: bool = False) -> sp.Expr:
    """dz^(l+1)_k / da^(l)_j from the pre-activation's definition, by SymPy: the weight w^(l+1)_jk (times the
    mask entry m^(l+1)_j in a network with dropout), plus s^(l+1) [j = k] through the skip of a residual layer."""
    other = unit_index(layer, "cur'")
    count = sp.Symbol("units_below", integer=True, positive=True)
    derived = sp.diff(_preactivation(above, k, other, count, masked, skipped), q.act(layer)[j]).doit()
    # SymPy answers by cases, "w_jk if unit j exists": it does, so the first case is the derivative.
    value = _first_case(derived)
    weighted = q.weight(above)[j, k] * (q.mask(above)[j] if masked else 1)
    expected = weighted + q.skip(above) * sp.KroneckerDelta(j, k) if skipped else weighted
    if value != expected:
        raise ArithmeticError(f"SymPy's dz/da is {derived}, not {expected}")
    return value


def _parameter_chains(prefix: str, layer, sign: int, bias: bool, masked: bool = False) -> list:
    j, i = unit_index(layer, "cur"), unit_index(layer - 1, "prev")
    z, weight = q.pre(layer)[j], q.weight(layer)[i, j]
    defined = delta_reason(layer, j, sign)
    source = _input(layer, i, masked)
    chains = [chain(
        f"general.{prefix}weight", Partial(SAMPLE_LOSS, weight),
        step(product(Partial(SAMPLE_LOSS, z), Partial(z, weight)), Reason("chain_rule")),
        step(sign * q.delta(layer)[j] * source, defined,
             Reason("substitute", (fact(Partial(z, weight), source),))),
        scope=SCOPE, boxed=True,
    )]
    if bias:
        chains.append(chain(
            f"general.{prefix}bias", Partial(SAMPLE_LOSS, q.bias(layer)[j]),
            step(product(Partial(SAMPLE_LOSS, z), Partial(z, q.bias(layer)[j])), Reason("chain_rule")),
            step(sign * q.delta(layer)[j], defined, Reason("substitute", (fact(Partial(z, q.bias(layer)[j]), 1),))),
            scope=SCOPE, boxed=True,
        ))
    return chains


def _output_delta(net: Network, layer, sign: int):
    j = unit_index(layer, "cur")
    a, z = q.act(layer)[j], q.pre(layer)[j]
    if net.activation(net.depth).rowwise:
        # A softmax couples the outputs: every output depends on every pre-activation.
        k = unit_index(layer, "cur'")
        coupled = sp.Sum(product(Partial(SAMPLE_LOSS, q.act(layer)[k]), Partial(q.act(layer)[k], z)),
                         (k, 1, units_of(layer)))
        return chain("general.output_delta", q.delta(layer)[j], step(sign * Partial(SAMPLE_LOSS, z), Reason("delta")),
                     step(sign * coupled, Reason("total_derivative")), relation=":=", scope=SCOPE, boxed=True)
    return chain(
        "general.output_delta", q.delta(layer)[j],
        step(sign * Partial(SAMPLE_LOSS, z), Reason("delta")),
        step(product(sign, Partial(SAMPLE_LOSS, a), Partial(a, z)), Reason("chain_rule")),
        step(product(sign, Partial(SAMPLE_LOSS, a), _local(layer, j)), _derivative_reason()),
        relation=":=", scope=SCOPE, boxed=True,
    )


def _picked_by_skip(received: sp.Sum) -> tuple[sp.Expr, sp.Eq]:
    """sum_k delta_k (w_jk + s [j = k]) as SymPy sums it: the weighted sum, plus s delta_j, the one term of the
    skip's sum that the bracket [j = k] keeps; and that sum's value, the step's reason."""
    limits = received.limits
    terms = sp.Add.make_args(sp.expand(received.function))
    weighted = sp.Sum(sp.Add(*(term for term in terms if not term.has(sp.KroneckerDelta))), *limits)
    through_skip = sp.Sum(sp.Add(*(term for term in terms if term.has(sp.KroneckerDelta))), *limits)
    # SymPy answers "s delta_j if j <= units(l + 1)": where s = 1 the layers are equally wide, so unit j exists.
    picked = _first_case(through_skip.doit())
    if picked.has(sp.KroneckerDelta, sp.Sum):
        raise ArithmeticError(f"SymPy's sum {through_skip} is {picked}, not one term")
    return weighted + picked, fact(through_skip, picked)


def _hidden_delta(layer, above, sign: int, summed_to, masked: bool = False, skipped: bool = False):
    j, k = unit_index(layer, "cur"), unit_index(above, "next")
    a, z, z_above = q.act(layer)[j], q.pre(layer)[j], q.pre(above)[k]
    weight = _dz_da(above, layer, j, k, masked, skipped)
    received = sp.Sum(q.delta(above)[k] * weight, (k, 1, summed_to))
    steps = [
        step(sign * Partial(SAMPLE_LOSS, z), Reason("delta")),
        step(product(sign, Partial(SAMPLE_LOSS, a), Partial(a, z)), Reason("chain_rule")),
        step(product(sign * sp.Sum(product(Partial(SAMPLE_LOSS, z_above), Partial(z_above, a)), (k, 1, summed_to)),
                     Partial(a, z)), Reason("total_derivative")),
        step(product(received, _local(layer, j)), Reason("delta"),
             Reason("substitute", (fact(Partial(z_above, a), weight),)), _derivative_reason()),
    ]
    if skipped:
        # The skip reaches only unit j of the layer above: its bracket [j = k] keeps one term of the sum.
        split, summed = _picked_by_skip(received)
        steps.append(step(product(split, _local(layer, j)), Reason("sum_rule"), Reason("fact", (summed,))))
    return chain("general.hidden_delta", q.delta(layer)[j], *steps, relation=":=", scope=SCOPE, boxed=True)


def general_section(net: Network, sign: int, symbolic_layers: bool = True) -> Section:
    """The equations for any depth (``symbolic_layers``), or, for a notation that names its layers rather
    than numbering them, for the output layer and the hidden layer below it with an unnamed activation."""
    if symbolic_layers:
        output, hidden = DEPTH, LAYER
    else:
        output, hidden = net.depth, (net.depth - 1 if net.depth > 1 else None)
    bias_everywhere = any(net.has_bias(layer) for layer in range(1, net.depth + 1))
    # A network that drops inputs is stated with the masks: m = 1 stands for a layer without dropout.
    masked = bool(dropout_layers(net))
    # A network with a residual layer is stated with the skip indicator: s = 1 for a residual layer, else 0.
    skipped = bool(residual_layers(net)) and hidden is not None
    chains = [_output_delta(net, output, sign),
              *_parameter_chains("output_", output, sign, bias_everywhere, masked)]
    if hidden is not None:
        above = hidden + 1
        if skipped:
            chains.append(_skipped_preactivation(hidden, above, masked))
        chains.append(_hidden_delta(hidden, above, sign, units_of(above), masked, skipped))
        chains += _parameter_chains("", hidden, sign, bias_everywhere, masked)
    return Section("general", tuple(chains), facts={
        "symbolic": symbolic_layers, "output": output, "hidden": hidden,
        "rowwise": net.activation(net.depth).rowwise, "masked": masked,
        "skipped": skipped, "residual": tuple(layer.index for layer in residual_layers(net)),
    })
