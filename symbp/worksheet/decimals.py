"""Decimal approximations for answer keys: one rule, rounded in decimal, never in binary.

Every approximate answer is rounded to ``SIGNIFICANT_DIGITS`` significant digits, halves to even
(``decimal.ROUND_HALF_EVEN``). Rationals are divided by the ``decimal`` module itself, which rounds
its results correctly, so 0.12345 becomes 0.1234 and not whatever a binary float makes of it;
other values are first evaluated by SymPy to far more digits than are kept.
"""

from __future__ import annotations

import decimal

import sympy as sp

SIGNIFICANT_DIGITS = 4
ROUNDING = decimal.ROUND_HALF_EVEN
RULE = "four significant digits, halves rounded to even"
# Digits SymPy evaluates a non-rational value to before it is rounded.
WORKING_DIGITS = 40
# Plain notation for 10^SMALLEST <= |x| < 10^SIGNIFICANT_DIGITS; a power of ten outside it.
SMALLEST_PLAIN_EXPONENT = -3


def rounded(value: sp.Expr, digits: int = SIGNIFICANT_DIGITS) -> decimal.Decimal:
    """``value`` rounded to ``digits`` significant digits by the stated rule."""
    context = decimal.Context(prec=digits, rounding=ROUNDING)
    value = sp.sympify(value)
    if not value.is_Rational:
        number = sp.N(value, WORKING_DIGITS)
        if not number.is_Float:
            raise ValueError(f"no decimal value for {value}")
        value = sp.Rational(number)  # the binary value SymPy computed, exactly
    return context.divide(decimal.Decimal(int(value.p)), decimal.Decimal(int(value.q)))


def decimal_latex(value: sp.Expr, digits: int = SIGNIFICANT_DIGITS) -> str:
    """The rounded value as LaTeX, trailing zeros kept (they are significant): 0.5851, -1.000, 3.142 \\times 10^{5}."""
    number = rounded(value, digits)
    if number.is_zero():
        return "0"
    exponent = number.adjusted()
    if SMALLEST_PLAIN_EXPONENT <= exponent < digits:
        return f"{number:f}"
    mantissa = number.scaleb(-exponent)
    return rf"{mantissa:f} \times 10^{{{exponent}}}"
