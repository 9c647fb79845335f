"""The gradient of every scalar weight of a small network, from SymPy's derivative of the expanded loss.

The per-sample loss is written out with every weight its own symbol and every activation an
undefined function of its unit's pre-activation, so that SymPy's derivative keeps the shape a
person would write: ``f'(alpha_O1) w17 f'(alpha_H1)``. Each ``f'`` is then replaced by the
activation's derivative in its output (``beta (1 - beta)``, from ``symbp.registry.calculus``), SymPy's
common-subexpression elimination factors out the error terms that the gradients share, and each
result is checked, here and now, to equal the delta rule's ``delta_j a_i``.
"""

from __future__ import annotations

import functools
import random
from functools import cache

import sympy as sp
from sympy.logic.boolalg import Boolean

from symbp.derivation.identities import independent_verdict, is_rational_function
from symbp.derivation.indexform import in_layer, local_derivative
from symbp.derivation.model import Chain, Reason, Section, step
from symbp.derivation.rewriting import xreplace
from symbp.derivation.steps import present
from symbp.registry import rules
from symbp.registry.rules import loss_named
from symbp.symbolic import quantities as q
from symbp.symbolic.expanded import EXPANDED_PARAMETER_LIMIT
from symbp.symbolic.network import Network
from symbp.symbolic.quantities import SAMPLE_LOSS, Partial

# Networks with at most this many parameters get the explicit gradient of every weight,
EXPLICIT_PARAMETER_LIMIT = EXPANDED_PARAMETER_LIMIT
# when their loss written out has at most this many operations. Past it (a deep network without biases, say,
# whose every unit's gradient is a sum over every path through the network) the list fills pages; the matrix
# form states the same gradients. Every other network of the typesetting catalogue and the document benchmark
# stays under 700.
EXPLICIT_OPERATION_LIMIT = 1000


def parameters(net: Network) -> list[tuple[int, sp.Indexed, sp.Expr]]:
    """(layer, parameter, what it multiplies in its unit's pre-activation) in the lesson's order, layer by layer."""
    return [(layer.index, parameter, source) for layer in net.layers for parameter, source in layer.index_parameters()]


def _activation_function(name: str, arity: int):
    """An undefined activation whose partial derivatives are undefined functions of the same arguments.

    SymPy then differentiates f(alpha) into f'(alpha) * dalpha/dw directly, rather than into
    Subs(Derivative(f(xi), xi), xi, alpha), whose hashing prints the expression: many times faster.
    """
    partials = [sp.Function(f"d{name}_{m}", real=True) for m in range(1, arity + 1)]

    def fdiff(self, argindex=1):
        return partials[argindex - 1](*self.args)

    return type(name, (sp.Function,), {"fdiff": fdiff, "is_real": True, "nargs": arity}), partials


def _expanded_loss(net: Network, shifts: dict | None = None):
    """The per-sample loss in weights and inputs, and how to read its f(...), f'(...) back as layer quantities.
    shifts, by (layer, unit), adds a symbol to that unit's pre-activation: the loss's derivative by it is the
    derivative by the pre-activation itself, what a bias's derivative is for a unit that has one."""
    shifts = shifts or {}
    previous = [q.inputs()[i] for i in range(1, net.units(0) + 1)]
    as_output, local = {}, {}
    for current in net.layers:
        layer, units, calculus = current.index, current.units, current.calculus
        # A kind that reads more than its parameters (a dropout mask) gives it as named quantities too.
        extra = getattr(current, "indexed_inputs", dict)()
        pres = current.expanded_preactivation(previous, {**{p.name: p.indexed_matrix() for p in current.parameters},
                                                         **extra})
        pres = [pre + shifts.get((layer, j), 0) for j, pre in enumerate(pres, start=1)]
        outputs = []
        for j in range(1, units + 1):
            if calculus.rowwise:
                function, partials = _activation_function(f"phi{layer}_{j}", units)
                applied = function(*pres)
                for m, partial in enumerate(partials, start=1):
                    local[partial(*pres)] = in_layer(calculus.derivative, net, layer, m, j)
            else:
                function, (partial,) = _activation_function(f"phi{layer}", 1)
                applied = function(pres[j - 1])
                local[partial(pres[j - 1])] = local_derivative(net, layer, j)
            as_output[applied] = q.act(layer)[j]
            outputs.append(applied)
        previous = outputs
    loss = loss_named(net.spec.loss.name).expr
    total = net.scale * sum(
        loss.subs({rules.yhat: output, rules.y: q.targets()[k]}, simultaneous=True)
        for k, output in enumerate(previous, start=1)
    )
    return total, as_output, local


def _clearly_nonzero(expr) -> bool:
    """Whether expr is far from zero at a small random rational point, evaluated to 30 digits.

    Exact values at huge integers, which decide rational functions, are no test for transcendental
    ones: SymPy may never finish simplifying cos(sinh(2**61)). Small points keep evaluation quick.
    """
    rng = random.Random(2)
    free = sorted((s for s in expr.free_symbols if not isinstance(s, sp.Dummy)), key=sp.default_sort_key)
    point = {symbol: sp.Rational(rng.randint(-300, 300), rng.randint(50, 150)) for symbol in free}
    value = expr.xreplace(point).evalf(30)
    return bool(value.is_Number and value.is_finite and abs(value) > 1e-12)


def _values_at_one_point(exprs) -> list:
    """Each expression's value at one random rational point shared by all, to 30 digits (None where
    it has no finite number there): a fingerprint that tells most unequal expressions apart at once."""
    rng = random.Random(2)
    free = sorted(set().union(*(expr.free_symbols for expr in exprs)) - {s for e in exprs for s in e.atoms(sp.Dummy)},
                  key=sp.default_sort_key)
    point = {symbol: sp.Rational(rng.randint(-300, 300), rng.randint(50, 150)) for symbol in free}
    values = []
    for expr in exprs:
        value = sp.sympify(expr).xreplace(point).evalf(30)
        values.append(complex(value) if value.is_Number and value.is_finite else None)
    return values


def _may_agree(value, factor: int, other) -> bool:
    """Whether two fingerprints leave value = factor * other possible (an unknown one always does)."""
    if value is None or other is None:
        return True
    return abs(value - factor * other) <= 1e-9 * (1 + abs(value) + abs(other))


def is_zero(expr) -> bool:
    """Whether an expression vanishes identically, decided in exact arithmetic.

    First at three random points modulo a large prime, every function application an independent
    unknown (``symbp.derivation.identities``): vanishing there proves it zero, and a nonzero value
    proves a rational function (every gradient here without exp, log or branches) nonzero. Each is
    wrong with a chance below (d / 2**61)**3 for degree d, since a nonzero polynomial of degree d
    vanishes at a uniformly random point of S^n with chance at most d/|S| (Schwartz-Zippel). An
    expression with applications that does not vanish so may still be zero (tanh^2 + sech^2 - 1):
    a point evaluated to 30 digits shows most such nonzero, then SymPy's expand decides, and for a
    piecewise expression whose branches SymPy cannot match up, many random rational points on
    every branch.
    """
    verdict = independent_verdict(expr)
    if verdict is not None:
        return verdict
    if not is_rational_function(expr) and _clearly_nonzero(expr):
        return False
    if sp.expand(expr) == 0:
        return True
    folded = sp.piecewise_fold(expr)
    if not folded.has(sp.Piecewise):
        return sp.expand(folded) == 0
    if isinstance(folded, sp.Piecewise) and all(sp.expand(piece) == 0 for piece, _ in folded.args):
        return True
    rng = random.Random(0)
    symbols = sorted(folded.atoms(sp.Indexed, sp.Symbol) - folded.atoms(sp.Dummy), key=str)
    for _ in range(40):
        point = {symbol: sp.Rational(rng.randint(-300, 300), rng.randint(50, 150)) for symbol in symbols}
        # Floats written in a spec (0.5) make the arithmetic inexact, so zero means zero to 1e-12.
        if abs(sp.N(folded.xreplace(point))) > 1e-12:
            return False
    return True


def _expands_to_zero(expr) -> bool:
    """sp.expand(expr) == 0, with the expansion spared where expr is shown nonzero: at a point
    modulo a prime for a rational function, at a numeric point otherwise (expand keeps the value)."""
    verdict = independent_verdict(expr)
    if verdict is False or (verdict is None and _clearly_nonzero(expr)):
        return False
    return sp.expand(expr) == 0


def _derivatives(expr, wrt: list) -> list:
    """SymPy's derivative of expr by each of wrt, taken with its indexed symbols (w[1, 2]) renamed
    to plain ones: the same result, without the cost of an Indexed's free_symbols at every node."""
    plain = {atom: sp.Dummy(real=True) for atom in sorted(expr.atoms(sp.Indexed), key=sp.default_sort_key)}
    back = {dummy: atom for atom, dummy in plain.items()}
    renamed = expr.xreplace(plain)
    plain.update({variable: variable for variable in wrt if isinstance(variable, sp.Dummy)})
    return [xreplace(sp.diff(renamed, plain[variable]), back) if variable in plain else sp.Integer(0)
            for variable in wrt]


def _read_back(derivative, as_output, local):
    """Replaces f'(pre-activation) by the activation's derivative, and f(...) by the unit's output."""
    return xreplace(xreplace(derivative, local), as_output)


def _one_hot(expr, net: Network):
    """Uses that one-hot targets sum to one, where the loss relies on it (cross-entropy)."""
    if not loss_named(net.spec.loss.name).target_facts:
        return expr
    units = net.units(net.depth)
    last = q.targets()[units]
    # xreplace gives subs's result for an atom such as y_3, without subs's pattern matching at every node.
    return xreplace(expr, {last: 1 - sum(q.targets()[k] for k in range(1, units))})


def _simplest_gradient(expr, net: Network):
    """The shortest of SymPy's derivative and its expansion collected by weights (a - y rather than
    (1 - y) a - y (1 - a)); for one-hot targets, also using that they sum to one."""
    if sp.count_ops(expr) > _SIMPLIFY_OPS_LIMIT:
        return expr
    one_hot = bool(loss_named(net.spec.loss.name).target_facts)
    present_targets = expr.atoms(sp.Indexed) & {q.targets()[k] for k in range(1, net.units(net.depth) + 1)}
    if not one_hot and _target_count(expr, present_targets) <= len(present_targets):
        return expr  # each target appears once: (a - y) is as simple as it gets
    expanded = sp.expand(expr)
    weights = [atom for atom in sorted(expanded.atoms(sp.Indexed), key=sp.default_sort_key)
               if atom.base in q.ROLES and q.ROLES[atom.base].kind == "weight"]
    targets = [q.targets()[k] for k in range(1, net.units(net.depth) + 1)]
    candidates = [_factored_by_weights(expanded, weights)]
    if loss_named(net.spec.loss.name).target_facts:
        summed = _with_targets_summing_to_one(expanded, targets)
        if summed is not None:
            candidates.append(_factored_by_weights(summed, weights))
    # Only a form in which the targets appear fewer times (or as often, in fewer operations) is simpler;
    # otherwise SymPy's own product (2 (a - y) a (1 - a) w ...) stays, the shape the error terms share.
    before = (_target_count(expr, targets), sp.count_ops(expr))
    simpler = [form for form in candidates
               if _target_count(form, targets) < before[0]
               or (_target_count(form, targets) == before[0] and sp.count_ops(form) < before[1])]
    return min(simpler, key=sp.count_ops) if simpler else expr


def _target_count(expr, targets) -> int:
    return sum(1 for node in sp.preorder_traversal(expr) if node in targets)


def _simplified_gradients(net: Network, listed) -> list:
    """Each gradient simplified once per unit: a weight's is its unit's error term times its source
    (dl/dw_ij = dl/dz_j a_i), so SymPy differentiates the loss once per unit, by its bias or, for a unit
    without one, by its pre-activation, and one simplification serves every parameter of unit j. The checks
    in explicit_section compare every result with the delta rule."""
    units = list(dict.fromkeys((layer, parameter.indices[-1]) for layer, parameter, _ in listed))
    biases = {(layer, parameter.indices[-1]): parameter for layer, parameter, source in listed if source == 1}
    shifts = {unit: sp.Dummy(f"shift{unit[0]}_{unit[1]}", real=True) for unit in units if unit not in biases}
    loss, as_output, local = _expanded_loss(net, shifts)
    derivatives = _derivatives(loss, [biases.get(unit, shifts.get(unit)) for unit in units])
    at_zero = {shift: sp.Integer(0) for shift in shifts.values()}
    cores = {unit: _simplest_gradient(xreplace(_read_back(derivative, as_output, local), at_zero), net)
             for unit, derivative in zip(units, derivatives)}
    return [cores[(layer, parameter.indices[-1])] * source for layer, parameter, source in listed]


# Beyond this many operations a gradient is left as SymPy wrote it: expanding it would take seconds.
_SIMPLIFY_OPS_LIMIT = 120


def _with_targets_summing_to_one(expanded, targets):
    """A gradient linear in one-hot targets, written as simply as their summing to one allows.

    sum_k c_k y_k + c_0 equals sum_k (c_k - c) y_k + c + c_0 for any c when the targets sum to
    one; c is taken as the terms every c_k shares, so that s a_1 + y_2 a_1 - (1 - a_1) y_1 (with
    s = 1 - y_1 - y_2) reads a_1 - y_1. None where the gradient is not linear in the targets.
    """
    coefficients = [expanded.coeff(target) for target in targets]
    rest = expanded.xreplace({target: 0 for target in targets})
    if any(c.has(*targets) for c in coefficients) or sp.expand(
            expanded - sum(c * t for c, t in zip(coefficients, targets)) - rest) != 0:
        return None
    term_sets = [set(sp.Add.make_args(sp.expand(c))) for c in coefficients]
    common = set.intersection(*term_sets)
    result = sp.Add(*(sp.Add(*(terms - common)) * target for terms, target in zip(term_sets, targets)))
    return sp.expand(result + sp.Add(*common) + rest)


def _factored_by_weights(expr, weights):
    """sum_k c_k w_jk with the factor every c_k shares in front: f'(z_j) sum_k (a_k - y_k) w_jk."""
    groups = sp.collect(expr, weights, evaluate=False)
    if len(groups) < 2:
        return sp.factor_terms(expr)
    try:
        common = functools.reduce(sp.gcd, groups.values())
    except sp.PolynomialError:  # a piecewise or transcendental coefficient: no polynomial gcd
        common = sp.Integer(1)
    if common.is_Number:
        return sp.Add(*(key * sp.factor_terms(value) for key, value in groups.items()))
    # The sign that leaves fewer minus signs in the shared factor: 1 - a^2 rather than a^2 - 1.
    negatives = sum(term.could_extract_minus_sign() for term in sp.Add.make_args(sp.expand(common)))
    if 2 * negatives > len(sp.Add.make_args(sp.expand(common))):
        common = -common
    inner = sp.Add(*(key * sp.factor_terms(sp.cancel(value / common)) for key, value in groups.items()))
    return sp.Mul(sp.factor_terms(common), inner)


def error_terms(net: Network, sign: int) -> dict:
    """delta^(l)_j for every unit, in the layer quantities, by the delta rule (symbp.registry.calculus)."""
    last = net.depth
    out = net.output
    deltas = {(last, j): sign * net.scale * in_layer(out.delta, net, last, j).doit()
              for j in range(1, net.units(last) + 1)}
    for layer in range(last - 1, 0, -1):
        above_layer = net.layer(layer + 1)
        above = range(1, net.units(layer + 1) + 1)
        # A normalised layer above takes this layer's outputs into its weighted sums: their error terms reach it.
        reaching = [deltas[(layer + 1, k)] for k in above]
        if hasattr(above_layer, "index_weighted_errors"):
            reaching = above_layer.index_weighted_errors(reaching)
        for j in range(1, net.units(layer) + 1):
            received = sum(reaching[k - 1] * above_layer.index_input_partial(k, j) for k in above)
            deltas[(layer, j)] = received * local_derivative(net, layer, j)
    return deltas


def _shared_terms(gradients: list[sp.Expr], sources: list[sp.Expr]):
    """SymPy's cse, keeping only the subexpressions that at least half of the gradients share; sources[i]
    is what the i-th parameter multiplies in its unit's pre-activation."""
    replacements, reduced = sp.cse(gradients, order="none")
    definitions = dict(replacements)

    def used_by(expr) -> frozenset:
        """The shared subexpressions that expr refers to, directly or through another one."""
        direct = expr.free_symbols & definitions.keys()
        return frozenset(direct).union(*(uses(inner) for inner in direct))

    uses = cache(lambda symbol: used_by(definitions[symbol]))

    closures = [used_by(expr) for expr in reduced]
    counts = {symbol: sum(symbol in closure for closure in closures) for symbol in definitions}
    # Conditions of a piecewise loss are shared too, but they are not error terms.
    kept = [symbol for symbol, value in replacements
            if counts[symbol] >= 2 and counts[symbol] > len(gradients) / 2 and not isinstance(value, Boolean)]
    # A factor that is minus another (y - a beside a - y) is written with the other's name: -s_1.
    def fully(expr):
        while expr.free_symbols & definitions.keys():
            expr = xreplace(expr, definitions)
        return expr

    for symbol in list(kept):
        for other in kept:
            if kept.index(other) < kept.index(symbol) and _expands_to_zero(fully(symbol) + fully(other)):
                definitions[symbol] = -other
                kept.remove(symbol)
                break

    resolved: dict = {}

    def inline(expr):
        """expr with the shared subexpressions that are not kept written out; each is written out
        once, with its own inner ones, and then put in wherever it occurs."""
        inner = (expr.free_symbols & definitions.keys()) - set(kept)
        for symbol in inner:
            if symbol not in resolved:
                resolved[symbol] = inline(definitions[symbol])
        return xreplace(expr, {symbol: resolved[symbol] for symbol in inner})

    names = [sp.Symbol("s", real=True)] if len(kept) == 1 else [sp.Symbol(f"s_{n}", real=True)
                                                                   for n in range(1, len(kept) + 1)]
    rename = dict(zip(kept, names))
    shared = {rename[s]: present(xreplace(inline(definitions[s]), rename)) for s in kept}
    presented: dict = {}

    def present_gradient(expr, source):
        """present(expr), read once per unit: a weight's gradient is its unit's factor times its source,
        and present leaves a source (an input or an activation, no sum, no number) where it is."""
        if source == 1 or not (expr.is_Mul and source in expr.args):
            return present(expr)
        unit_factor = expr / source
        if unit_factor not in presented:
            presented[unit_factor] = present(unit_factor)
        return presented[unit_factor] * source

    return shared, [present_gradient(xreplace(inline(expr), rename), source) for expr, source in zip(reduced, sources)]


def explicit_section(net: Network, sign: int) -> Section | None:
    if net.spec.parameter_count > EXPLICIT_PARAMETER_LIMIT:
        return None
    if sp.count_ops(_expanded_loss(net)[0]) > EXPLICIT_OPERATION_LIMIT:
        return None
    listed = parameters(net)
    gradients = _simplified_gradients(net, listed)
    shared, factored = _shared_terms(gradients, [source for _, _, source in listed])
    deltas = error_terms(net, sign)

    def fully(value):
        while value.has(*shared):
            value = xreplace(value, shared)
        return value

    written_out_shared = {symbol: fully(value) for symbol, value in shared.items()}

    def inline_shared(expr):
        """expr with every shared factor written out (one pass: none of them names another any more)."""
        return xreplace(expr, written_out_shared)

    chains = []
    written_out = {symbol: _one_hot(inline_shared(value), net) for symbol, value in shared.items()}
    error_terms_read = {unit: _one_hot(delta, net) for unit, delta in deltas.items()}
    fingerprints = _values_at_one_point([*written_out.values(), *error_terms_read.values()])
    shared_values = dict(zip(written_out, fingerprints))
    delta_values = dict(zip(error_terms_read, fingerprints[len(written_out):]))
    for symbol, value in shared.items():
        steps = [step(value, Reason("cse"))]
        # The first error term (or its negative) that the shared factor equals; a pair whose values differ
        # at one point cannot be equal, so only the pairs that agree there are decided in exact arithmetic.
        steps += [step(factor * q.delta(layer)[j], Reason("delta_rule"))
                  for (layer, j), delta in error_terms_read.items() for factor in (1, -1)
                  if _may_agree(shared_values[symbol], factor, delta_values[(layer, j)])
                  and is_zero(written_out[symbol] - factor * delta)][:1]
        chains.append(Chain(f"explicit.{symbol.name}", symbol, tuple(steps), "sample", ":="))
    checked: set = set()
    for (layer, parameter, source), gradient, form in zip(listed, gradients, factored):
        j = parameter.indices[-1]
        rule = sign * deltas[(layer, j)] * source
        # A weight's form, gradient and delta rule are its unit's times its source: equal for one weight
        # of the unit, they are equal for every other, so each unit's factors are compared once.
        compared = (form, gradient, rule)
        if source != 1 and all(side.is_Mul and source in side.args for side in compared):
            compared = tuple(side / source for side in compared)
        if compared not in checked:
            unit_form, unit_gradient, unit_rule = compared
            expanded = _one_hot(inline_shared(unit_form), net)
            if not is_zero(expanded - _one_hot(unit_gradient, net)) or not is_zero(
                    _one_hot(unit_gradient - unit_rule, net)):
                raise ArithmeticError(f"the expanded gradient for {parameter} does not match the delta rule")
            checked.add(compared)
        chains.append(Chain(
            f"explicit.{parameter}", Partial(SAMPLE_LOSS, parameter),
            (step(form, Reason("cse")), step(sign * q.delta(layer)[j] * source, Reason("delta_rule"))),
        ))
    one_hot = bool(loss_named(net.spec.loss.name).target_facts)
    return Section("explicit", tuple(chains), facts={"shared": shared, "count": len(listed), "one_hot": one_hot})
