"""How the normalisation sections write the coefficients of their chain rule: signs in front, one fraction, the
constants of a sum taken out of it. Shared by ``normalisation.py`` and ``batchnormalisation.py``, which never
import one another."""

from __future__ import annotations

import sympy as sp

from symbp.derivation.model import product


def vanishes(expr: sp.Expr) -> bool:
    """Whether an expression over a layer's quantities is 0, by SymPy."""
    return sp.simplify(sp.expand(expr.doit())) == 0


def negative_terms(expr: sp.Expr) -> int:
    """The terms of a quantity written with a minus sign, in the sums of ``expr``: u - mu reads better than
    -u + mu."""
    return sum(term.could_extract_minus_sign() and term.has(sp.Indexed)
               for add in sp.preorder_traversal(expr) if isinstance(add, sp.Add) for term in add.args)


def times(coefficient: sp.Expr, derivative: sp.Expr, keep_sums_whole: bool = False) -> sp.Expr:
    """coefficient * derivative kept in that order, its sign taken out in front where that leaves fewer minus
    signs inside: -(u - mu)/(2 sigma^3) rather than (mu - u)/(2 sigma^3). With ``keep_sums_whole``, a coefficient
    holding a sum is not made one fraction: the fact that it vanishes is about the sum as written."""
    negated = -coefficient if coefficient.has(sp.Sum) else sp.factor_terms(sp.expand(-coefficient))
    whole = (lambda expr: expr) if keep_sums_whole and coefficient.has(sp.Sum) else one_fraction
    if coefficient.could_extract_minus_sign() or negative_terms(negated) < negative_terms(coefficient):
        return sp.Mul(-1, product(whole(negated), derivative), evaluate=False)
    return product(whole(coefficient), derivative)


def one_fraction(expr: sp.Expr) -> sp.Expr:
    """``expr`` as one fraction, numerator over denominator, as the texts write a coefficient."""
    numerator, denominator = sp.fraction(sp.factor_terms(expr))
    if denominator == 1 or numerator == 1:
        return expr
    return sp.Mul(numerator, sp.Pow(denominator, -1, evaluate=False), evaluate=False)


def constants_out(expr: sp.Expr, index) -> sp.Expr:
    """Each sum over ``index`` with its common factor (its constants, its sign) taken out of the sum."""
    def out(total: sp.Sum) -> sp.Expr:
        constant, rest = sp.factor_terms(total.function).as_independent(index, as_Add=False)
        if negative_terms(-rest) < negative_terms(rest):
            constant, rest = -constant, sp.factor_terms(-rest)
        return constant * sp.Sum(rest, *total.limits)

    return expr.replace(lambda e: isinstance(e, sp.Sum), out)
