"""A derivative taken one rule at a time, and the forms in which results are presented.

``differentiate`` shows a derivative being taken one rule at a time. Each rule's result comes from
SymPy (the outer derivative of ``log(u)`` is ``sp.diff(log(w), w)`` at ``u``), and the steps end at
SymPy's own derivative, so the printed lines are SymPy's working, not a transcript typed by hand.
"""

from __future__ import annotations

import sympy as sp

from symbp.derivation.model import Reason, Step, fact
from symbp.derivation.rewriting import replace
from symbp.symbolic.quantities import Partial


def _merge(reasons: list[Reason]) -> tuple[Reason, ...]:
    """One reason per kind, facts gathered, in the order the rules fired."""
    merged: dict[tuple, Reason] = {}
    for reason in reasons:
        key = (reason.kind, reason.about)
        if key in merged:
            earlier = merged[key]
            facts = earlier.facts + tuple(f for f in reason.facts if f not in earlier.facts)
            merged[key] = Reason(reason.kind, facts, reason.about)
        else:
            merged[key] = reason
    return tuple(merged.values())


def _one_rule(node: Partial, fired: list[Reason]) -> sp.Expr:
    """Differentiates ``node`` by one rule; sums and constant factors are opened on the way."""
    expr, variable = node.numerator, node.denominator
    if expr == variable:
        return sp.Integer(1)
    if not expr.has(variable):
        # "since dy/da = 0": a target, a weight of another unit; plain numbers go without saying.
        _, core = expr.as_coeff_Mul()
        fired.append(Reason("constant", () if core.is_Number else (fact(Partial(core, variable), 0),)))
        return sp.Integer(0)
    if expr.is_Add:
        fired.append(Reason("sum_rule"))
        return sp.Add(*(_one_rule(Partial(term, variable), fired) for term in expr.args))
    if expr.is_Mul:
        constant, rest = expr.as_independent(variable, as_Add=False)
        if constant != 1:
            fired.append(Reason("constant_factor"))
            return constant * _one_rule(Partial(rest, variable), fired)
        factors = rest.args
        fired.append(Reason("product_rule"))
        return sp.Add(*(
            sp.Mul(*factors[:position], *factors[position + 1:]) * Partial(factor, variable)
            for position, factor in enumerate(factors)
        ))
    if expr.is_Pow and not expr.exp.has(variable):
        base, exponent = expr.args
        outer = exponent * base ** (exponent - 1)
        if base == variable:
            fired.append(Reason("power_rule"))
            return outer
        fired.append(Reason("chain_rule"))
        return outer * Partial(base, variable)
    if isinstance(expr, sp.Function) and len(expr.args) == 1:
        (inner,) = expr.args
        dummy = sp.Dummy("u", real=True)
        outer = sp.diff(expr.func(dummy), dummy).subs(dummy, inner)
        fired.append(Reason("derivative_of", about=expr.func(dummy)))
        if inner == variable:
            return outer
        fired.append(Reason("chain_rule"))
        return outer * Partial(inner, variable)
    if isinstance(expr, sp.Piecewise):
        fired.append(Reason("derivative_of", about=expr))
        return sp.Piecewise(*((sp.diff(piece, variable), condition) for piece, condition in expr.args))
    fired.append(Reason("simplify"))
    return sp.diff(expr, variable)


def tidy(expr: sp.Basic) -> sp.Basic:
    """Pulls common numbers out of sums, 2(a - y) rather than 2a - 2y, as people write them."""
    return sp.factor_terms(expr, radical=False, clear=False, sign=False)


def _preference(add: sp.Expr) -> tuple:
    """How a sum reads: fewer minus signs first, then a positive constant (1 - a rather than a - 1)."""
    negatives = sum(term.could_extract_minus_sign() for term in add.args)
    negative_constant = any(term.is_Number and term.is_negative for term in add.args)
    return negatives, negative_constant


def present(expr: sp.Basic) -> sp.Basic:
    """The same value with each factor's sign chosen to read well: 2(a - y) a (1 - a), not -2(a - 1)(a - y) a."""
    def flip_factors(product):
        sign, factors = 1, []
        for factor in product.args:
            if factor.is_Add and _preference(-factor) < _preference(factor):
                factor, sign = -factor, -sign
            factors.append(factor)
        coefficient = sp.Mul(*(f for f in factors if f.is_Number))
        if sign * coefficient < 0:
            # A minus sign in front reads worse than a residual written the other way round: (t - y).
            for position, factor in enumerate(factors):
                if factor.is_Add and _preference(-factor) == _preference(factor):
                    factors[position], sign = -factor, -sign
                    break
        return sign * sp.Mul(*factors)

    return tidy(replace(sp.sympify(expr), lambda node: node.is_Mul, flip_factors))


def differentiate(expr: sp.Expr, variable, result: sp.Expr | None = None) -> list[Step]:
    """Steps from d(expr)/d(variable) to its value, one rule per line.

    ``result`` is the form the derivation continues with (e.g. the registry's derivative as
    ``symbp.registry.calculus`` simplified it); SymPy must agree that the last step equals it.
    """
    current = Partial(expr, variable)
    steps = [Step(current)]
    while current.has(Partial):
        fired: list[Reason] = []

        def expand(node, fired=fired):
            return _one_rule(node, fired)

        current = current.replace(lambda node: isinstance(node, Partial) and node.denominator == variable, expand)
        steps.append(Step(tidy(current), _merge(fired)))
    if result is not None and result != current:
        if sp.simplify(result - current) != 0:
            raise ArithmeticError(f"SymPy's steps end at {current}, which is not {result}")
        steps.append(Step(result, (Reason("simplify"),)))
    return steps
