"""Whether an expression vanishes identically, decided quickly by evaluating it at random points modulo a prime.

Every function application in the expression (tanh(z), f'(z), |z|, a piecewise branch, a sum) is
taken as an independent unknown: a random value of its own, the same value wherever the same
application recurs. If the expression, read as a rational function of its symbols and of these
unknowns, is zero, it is zero whatever the applications' true values; evaluating it modulo the
prime 2**61 - 1 at random points decides that, wrong with a chance below (d / 2**61)**trials for a
numerator of degree d (Schwartz-Zippel). A nonzero value proves the rational function nonzero, but
not the expression: tanh(z)**2 + 1/cosh(z)**2 - 1 is zero only through what tanh and cosh are, so
such a verdict says no more than "not shown zero" unless the expression has no applications at all.

Python integers keep the arithmetic exact and fast; SymPy would rebuild an expression tree at
every node of the evaluation.
"""

from __future__ import annotations

import random

import sympy as sp

PRIME = 2**61 - 1


class _Undecided(Exception):
    """A division by zero modulo the prime, or an inexact number (a float), where no verdict can be read."""


def _residue(number: sp.Rational) -> int:
    if number.q % PRIME == 0:
        raise _Undecided
    return number.p * pow(number.q, -1, PRIME) % PRIME


class _Point:
    """One random point: a residue for every symbol and every function application met, drawn on first sight."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.values: dict[sp.Basic, int] = {}

    def unknown(self, node: sp.Basic) -> int:
        if node not in self.values:
            self.values[node] = self.rng.randrange(PRIME)
        return self.values[node]

    def value(self, node: sp.Basic) -> int:
        if node in self.values:
            return self.values[node]
        if node.is_Rational:
            return _residue(node)
        if node.is_Float:
            raise _Undecided
        if node.is_Add:
            result = sum(self.value(arg) for arg in node.args) % PRIME
        elif node.is_Mul:
            result = 1
            for arg in node.args:
                result = result * self.value(arg) % PRIME
        elif node.is_Pow and node.exp.is_Integer:
            base = self.value(node.base)
            if base == 0 and node.exp < 0:
                raise _Undecided
            result = pow(base, int(node.exp), PRIME)
        else:
            return self.unknown(node)  # a symbol, or an application taken as an unknown
        self.values[node] = result
        return result


def is_rational_function(expr: sp.Basic) -> bool:
    """Built from rationals and (indexed) symbols by +, * and integer powers alone: no application."""
    if isinstance(expr, (sp.Rational, sp.Symbol, sp.Indexed)):
        return True
    if expr.is_Pow:
        return expr.exp.is_Integer and is_rational_function(expr.base)
    return isinstance(expr, (sp.Add, sp.Mul)) and all(is_rational_function(arg) for arg in expr.args)


def independent_verdict(expr: sp.Basic, trials: int = 3, seed: int = 1) -> bool | None:
    """True when expr vanishes with its function applications taken as independent unknowns, which
    proves it zero (but for the chance above); False when it is proven nonzero, which needs an
    expression of symbols, numbers, +, * and integer powers alone; None when nothing is decided
    (an application, a float, or a point at which a denominator vanishes)."""
    rng = random.Random(seed)
    vanished = 0
    for _ in range(trials):
        try:
            value = _Point(rng).value(sp.sympify(expr))
        except _Undecided:
            continue
        if value != 0:
            return False if is_rational_function(expr) else None
        vanished += 1
    return True if vanished == trials else None
