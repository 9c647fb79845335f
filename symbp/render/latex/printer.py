"""SymPy's LaTeX printer, taught the quantities of a derivation and a notation preset.

``latex_of(expr, notation)`` prints a derivation's SymPy expression in the notation of one of the
reference texts. The printer dispatches on SymPy classes, as SymPy's own printers do, and asks the
preset how to name each quantity; it never edits printed text.
"""

from __future__ import annotations

import sympy as sp
from sympy import HadamardProduct, MatAdd, MatMul, OneMatrix, Transpose
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE

from symbp.render.latex.notation import Notation
from symbp.symbolic.quantities import (
    INDEX_ROLES,
    LEARNING_RATE,
    LOSS,
    MATRIX_ROLES,
    N_SAMPLES,
    NORMALISATION_LAYER_KINDS,
    NORMALISATION_UNIT_KINDS,
    PENALISED_LOSS,
    ROLES,
    SAMPLE_LOSS,
    VARIABLE,
    WINDOW_INDEX_ROLES,
    Current,
    Partial,
    Updated,
    act,
    activation_name,
    is_layer_statistic,
)

_ATOMIC = (sp.Symbol, sp.Indexed, sp.IndexedBase, sp.MatrixSymbol, sp.Function)
# A normalised layer's per-unit quantities, gain and shift: each printed by the notation's normalisation_unit.
_NORMALISATION_UNIT_KINDS = (*NORMALISATION_UNIT_KINDS, "gain", "shift")


def _is_skip(expr) -> bool:
    """The skip indicator s^(l) of a layer (1 for a residual layer, 0 otherwise)."""
    role = ROLES.get(expr) if isinstance(expr, sp.IndexedBase) else None
    return role is not None and role.kind == "skip"


def _through_skip(term) -> bool:
    return any(_is_skip(node) for node in sp.preorder_traversal(term))


def _window_index(symbol) -> bool:
    role = INDEX_ROLES.get(symbol)
    return role is not None and role.relation.rstrip("'") in WINDOW_INDEX_ROLES


class NotationPrinter(LatexPrinter):
    """Prints derivation expressions in one notation; products keep the order they were built in."""

    def __init__(self, notation: Notation, settings: dict | None = None):
        super().__init__({"order": "none", **(settings or {})})
        self.notation = notation
        # Stand-ins: a symbol printed as another expression (the matrix an elementwise function acts on).
        self.stand_ins: dict[sp.Symbol, sp.Basic] = {}
        # What each expression printed as: a deep network's gradients repeat the same factors many times.
        self._printed: dict = {}

    def _print(self, expr, **kwargs) -> str:
        """SymPy's printing, remembered per expression (and keyword), except under a stand-in, where a
        symbol prints as something else for the moment."""
        if self.stand_ins:
            return super()._print(expr, **kwargs)
        try:
            key = (type(expr), expr, tuple(sorted(kwargs.items())))
            text = self._printed.get(key)
        except TypeError:  # an unhashable argument, such as a list
            return super()._print(expr, **kwargs)
        if text is None:
            text = self._printed[key] = super()._print(expr, **kwargs)
        return text

    # -- indexed quantities
    def _print_index(self, expr) -> str:
        """A weight's number in the lesson's notation: the offset first, then the indices in order."""
        if not expr.is_Add:
            return self._print(expr)
        constant, terms = expr.as_coeff_Add()
        order = {"prev": 0, "cur": 1, "next": 2}

        def rank(term):
            symbols = [s for s in term.free_symbols if s in INDEX_ROLES]
            return min((order.get(INDEX_ROLES[s].relation.rstrip("'"), 3) for s in symbols), default=4)

        parts = ([self._print(constant)] if constant else []) + [
            self._print(term) for term in sorted(sp.Add.make_args(terms), key=rank)
        ]
        return " + ".join(parts)

    def _print_Indexed(self, expr):
        role = ROLES.get(expr.base)
        if role is None:
            return super()._print_Indexed(expr)
        notation, layer = self.notation, role.layer
        indices = [self._print(index) for index in expr.indices]
        if role.kind == "weight" and len(indices) > 2:
            return notation.kernel(layer, indices)
        if role.kind == "first_max":
            return notation.first_max(layer, ",".join(indices))
        if len(indices) > 1 and role.kind != "weight" and role.kind not in _NORMALISATION_UNIT_KINDS:
            # A window layer's entry by channel and position: one subscript, the indices separated by commas.
            # (A batch-normalised layer's sample and unit are printed below, as the texts write u_nj.)
            indices = [",".join(indices)]
        if role.kind == "weight":
            number = notation.weight_number(layer, *expr.indices)
            if number is not None:
                return notation.numbered_weight(self._print_index(number))
            return notation.weight(layer, *indices)
        if role.kind == "bias":
            number = notation.bias_number(layer, expr.indices[0])
            if number is not None:
                return notation.numbered_weight(self._print_index(number))
            return notation.bias(layer, indices[0])
        if role.kind == "incoming":
            named = notation.incoming(layer, indices[0])
            if named is not None:
                return named
            towards = Partial(SAMPLE_LOSS, act(layer)[expr.indices])
            return self._print(towards if notation.error_sign > 0 else -towards)
        if role.kind in _NORMALISATION_UNIT_KINDS:
            # Over a batch (batch normalisation), the sample comes first: u_nj is sample n's u_j.
            if len(indices) == 2:
                return notation.normalisation_unit(role.kind, layer, indices[1], sample=indices[0])
            return notation.normalisation_unit(role.kind, layer, indices[0])
        if role.kind in NORMALISATION_LAYER_KINDS:
            # A statistic of one unit over the batch (batch normalisation): mu_j.
            return notation.normalisation_statistic(role.kind, layer, indices[0])
        if role.kind in ("input", "target", "prediction"):
            return getattr(notation, role.kind)(indices[0])
        if role.kind == "sample_loss":
            return notation.sample_loss(indices[0])
        return getattr(notation, role.kind)(layer, indices[0])

    def _print_IndexedBase(self, expr):
        # A quantity of one number per layer (the skip indicator s^(l)) is the base itself.
        if _is_skip(expr):
            return self.notation.skip(ROLES[expr].layer)
        if is_layer_statistic(expr):
            return self.notation.normalisation_statistic(ROLES[expr].kind, ROLES[expr].layer)
        return super()._print_IndexedBase(expr)

    def _print_timed(self, expr, when: str):
        parameter = expr.parameter
        role = ROLES.get(getattr(parameter, "base", None))
        if self.notation.update_style == "arrow":
            return self._print(parameter)
        time = self.notation.time(when)
        if role is None:
            # An optimizer's own state (m, v, theta): m^{(t+1)} = ... m^{(t)}, never m = m + ...
            base = self._print(parameter)
            if self.notation.update_style == "new_old":
                return rf"{base}(\text{{{time}}})"
            return rf"{base}^{{({time})}}"
        if role.kind in _NORMALISATION_UNIT_KINDS:
            return self.notation.normalisation_unit(role.kind, role.layer, self._print(parameter.indices[0]), time)
        if role.kind == "weight" and len(parameter.indices) > 2:
            return self.notation.kernel(role.layer, [self._print(index) for index in parameter.indices], time=time)
        if role.kind == "weight":
            number = self.notation.weight_number(role.layer, *parameter.indices)
            if number is not None:
                return self.notation.numbered_weight(self._print_index(number), time)
            indices = [self._print(index) for index in parameter.indices]
            return self.notation.weight(role.layer, *indices, time=time)
        number = self.notation.bias_number(role.layer, parameter.indices[0])
        if number is not None:
            return self.notation.numbered_weight(self._print_index(number), time)
        return self.notation.bias(role.layer, self._print(parameter.indices[0]), time=time)

    def _print_Updated(self, expr):
        return self._print_timed(expr, "next")

    def _print_Current(self, expr):
        return self._print_timed(expr, "now")

    def _print_Symbol(self, expr, style="plain"):
        if expr in self.stand_ins:
            return self._print(self.stand_ins[expr])
        if expr in INDEX_ROLES:
            role = INDEX_ROLES[expr]
            return self.notation.index(role.layer, role.relation)
        named = {
            SAMPLE_LOSS: self.notation.sample_loss,
            LOSS: self.notation.loss,
            PENALISED_LOSS: self.notation.penalised_loss,
            LEARNING_RATE: self.notation.learning_rate,
            N_SAMPLES: self.notation.samples,
        }.get(expr)
        if named is not None:
            return named()
        return super()._print_Symbol(expr, style=style)

    # -- derivatives
    def _print_Partial(self, expr):
        numerator, denominator = expr.numerator, expr.denominator
        d = "d" if denominator == VARIABLE else r"\partial"
        below = self._print(denominator)
        if isinstance(numerator, _ATOMIC) or isinstance(numerator, (Updated, Current)):
            return rf"\frac{{{d} {self._print(numerator)}}}{{{d} {below}}}"
        return rf"\frac{{{d}}}{{{d} {below}}}\left({self._print(numerator)}\right)"

    def _activation_symbol(self, function) -> str | None:
        name = activation_name(function)
        return None if name is None else self.notation.activation(name)

    def _print_Function(self, expr, exp=None):
        symbol = self._activation_symbol(expr.func)
        if symbol is None:
            return super()._print_Function(expr, exp)
        arguments = ", ".join(self._print(arg) for arg in expr.args)
        text = rf"{symbol}\left({arguments}\right)"
        return text if exp is None else rf"{symbol}^{{{exp}}}\left({arguments}\right)"

    def _print_Derivative(self, expr):
        function = expr.expr
        symbol = self._activation_symbol(getattr(function, "func", None))
        if symbol is not None and len(expr.variables) == 1 and function.args == expr.variables:
            arguments = self._print(function.args[0])
            return rf"{self.notation.derivative_of(symbol)}\left({arguments}\right)"
        return super()._print_Derivative(expr)

    def _print_Pow(self, expr):
        # (dL/dtheta)^2, bracketed: a bare exponent on a fraction reads like the derivative of L^2.
        if isinstance(expr.base, Partial) and expr.exp.is_Integer and expr.exp > 1:
            return rf"\left({self._print(expr.base)}\right)^{{{self._print(expr.exp)}}}"
        # (a^{(1)}_j)^2: a power of a quantity that already carries a superscript needs brackets.
        if isinstance(expr.base, (sp.Indexed, sp.IndexedBase)) and expr.exp.is_Integer and expr.exp > 0:
            base = self._print(expr.base)
            if "^" in base:
                return rf"\left({base}\right)^{{{self._print(expr.exp)}}}"
        return super()._print_Pow(expr)

    def _print_Sum(self, expr):
        # A window layer's sum over channels and offsets, one sign per index as the texts write a convolution,
        # rather than one sign over a stack of ranges.
        if len(expr.limits) > 1 and any(_window_index(index) for index, _, _ in expr.limits):
            signs = " ".join(rf"\sum_{{{self._print(sp.Eq(index, low, evaluate=False))}}}^{{{self._print(high)}}}"
                             for index, low, high in expr.limits)
            body = self._print(expr.function)
            return f"{signs} \\left({body}\\right)" if isinstance(expr.function, sp.Add) else f"{signs} {body}"
        return super()._print_Sum(expr)

    def _print_KroneckerDelta(self, expr, exp=None):
        # delta is taken by the error terms, and a blackboard-bold 1 needs fonts beyond amssymb: the
        # Iverson bracket [j' = j] (1 when the indices are equal, else 0) reads the same in every text.
        left, right = (self._print(arg) for arg in expr.args)
        return rf"\left[{left} = {right}\right]"

    # -- sums and products laid out as people write them
    def _add_pieces(self, expr) -> list[str]:
        """The terms of a sum as printed, each after the first with its sign: where a display may break."""
        # The parameter before its change (w(old) + ...), then positive terms, then negative ones.
        terms = sorted(list(expr.args), key=lambda term: (not isinstance(term, Current),
                                                          term.could_extract_minus_sign()))
        if any(isinstance(term, sp.Sum) for term in terms):
            # A pre-activation: the weighted sum and the bias in the order the text writes them.
            terms.sort(key=lambda term: isinstance(term, sp.Sum) == self.notation.bias_first)
        # What a skip adds comes after what it is added to: w_jk + s [j = k], as z = A W + 1 b + A is written.
        terms.sort(key=_through_skip)
        pieces = [self._print(terms[0])]
        for term in terms[1:]:
            if term.could_extract_minus_sign():
                pieces.append("- " + self.parenthesize(-term, PRECEDENCE["Add"]))
            else:
                pieces.append("+ " + self.parenthesize(term, PRECEDENCE["Add"]))
        return pieces

    def _print_Add(self, expr, order=None):
        return " ".join(self._add_pieces(expr))

    def pieces(self, expr) -> list[str]:
        """The printed expression cut where a display may break it over rows: before each sign of its
        outermost sum, or of the longest sum among the factors of a product (set in big brackets)."""
        if isinstance(expr, sp.Add) and not expr.is_Matrix:
            return self._add_pieces(expr)
        if isinstance(expr, sp.Mul):
            sums = [factor for factor in expr.args if isinstance(factor, sp.Add)]
            if sums:
                longest = max(sums, key=lambda factor: len(factor.args))
                rest = sp.Mul(*(factor for factor in expr.args if factor is not longest))
                inner = self.pieces(longest)
                if len(inner) < 2:
                    return [self._print(expr)]
                between = self._settings["mul_symbol_latex"]
                front = "- " if rest == -1 else (
                    "" if rest == 1 else self.parenthesize(rest, PRECEDENCE["Mul"]) + between)
                return [front + r"\bigl(" + inner[0], *inner[1:-1], inner[-1] + r"\bigr)"]
        return [self._print(expr)]

    def _print_Mul(self, expr):
        if not isinstance(expr, sp.Mul):  # SymPy prints x**-1 through here
            return super()._print_Mul(expr)
        factors = list(expr.args)
        # A product of fractions (a step that splits one fraction in two) keeps its factors apart.
        fractions = [factor for factor in factors if sp.fraction(factor, exact=True)[1] != 1]
        # Only a split writes a fraction with a numerator of its own; reciprocals alone, as in
        # (y - a) / (a (a - 1)), are one fraction.
        split = any(not (factor.is_Pow and factor.exp.is_negative) for factor in fractions)
        if len(fractions) >= 2 and split:
            return r" \cdot ".join(
                self._print(factor) if factor in fractions else self.parenthesize(factor, PRECEDENCE["Mul"])
                for factor in factors
            )
        # A fractional coefficient stands in front: 1/2 (a - y)^2 rather than (a - y)^2 / 2.
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient.is_Rational and not coefficient.is_Integer and sp.fraction(rest, exact=True)[1] == 1 \
                and not rest.is_Number:
            sign = "- " if coefficient < 0 else ""
            fraction = rf"\frac{{{abs(coefficient.p)}}}{{{coefficient.q}}}"
            return f"{sign}{fraction} {self.parenthesize(rest, PRECEDENCE['Mul'])}"
        # A constant before a sum stays in front of it: 1/N sum_n, not one fraction over everything.
        sums = [factor for factor in factors if isinstance(factor, sp.Sum)]
        if len(sums) == 1 and len(factors) > 1:
            coefficient = sp.Mul(*(factor for factor in factors if factor is not sums[0]))
            if not coefficient.has(sp.Indexed) and not coefficient.has(Partial):
                prefix = "-" if coefficient == -1 else self._print(coefficient)
                return f"{prefix} {self._print(sums[0])}"
        # A chain of Leibniz quotients is read in the order it was built; other products in the
        # order people write them: numbers, error terms, the loss's residual, weights, then units.
        if not any(isinstance(factor, (Partial, sp.Derivative)) for factor in factors):
            ordered = sorted(factors, key=self._factor_rank)
            kinds = [ROLES[f.base].kind if isinstance(f, sp.Indexed) and f.base in ROLES else None for f in ordered]
            if len(ordered) == 2 and kinds[0] == "weight" and kinds[1] in ("act", "input") \
                    and not self.notation.weight_first:
                ordered.reverse()  # x_i v_ij, as Fausett and the lesson write a weighted input
            if ordered != factors:
                return super()._print_Mul(sp.Mul(*ordered, evaluate=False))
        return super()._print_Mul(expr)

    def _factor_rank(self, factor) -> tuple:
        if factor.is_Number:
            return (0,)
        if _is_skip(factor):  # a number, 0 or 1, written in front as a coefficient: s delta_j
            return (1,)
        if isinstance(factor, sp.Symbol) and factor not in INDEX_ROLES:
            return (1,)
        roles = [ROLES[node.base] for node in sp.preorder_traversal(factor)
                 if isinstance(node, sp.Indexed) and node.base in ROLES]
        kinds = {role.kind for role in roles}
        if isinstance(factor, sp.Sum) or kinds & {"delta", "incoming"}:
            return (2,)
        if "target" in kinds:
            return (3,)
        if kinds == {"weight"}:
            # Between the units it joins: (y - a) a (1 - a) w h (1 - h) x, the lesson's order.
            return (5, -max(role.layer for role in roles) + 0.5, [], False)
        if kinds <= {"act", "pre"} and kinds:
            layer = max(role.layer for role in roles)
            units = sorted(str(node) for node in factor.atoms(sp.Indexed))
            return (5, -layer, units, not isinstance(factor, sp.Indexed))
        if kinds == {"input"}:
            return (7,)
        if isinstance(factor, sp.Function) or factor.has(sp.Function):
            return (5, 0, [], not (isinstance(factor, sp.Function) and factor.func.__name__.startswith("act_")))
        return (6,)

    # -- matrices
    def _print_MatrixSymbol(self, expr, style="plain"):
        role = MATRIX_ROLES.get(expr)
        if role is None:
            return super()._print_MatrixSymbol(expr)
        if role.kind == "mask":
            return self.notation.mask_matrix(role.layer)
        return self.notation.matrix(role.kind, role.layer)

    def _print_OneMatrix(self, expr):
        rows, cols = expr.shape
        if cols == 1:
            return r"\mathbf{1}"
        if rows == 1:
            return r"\mathbf{1}" + self.notation.transpose_mark
        return r"\mathbf{1}\mathbf{1}" + self.notation.transpose_mark

    def _print_Transpose(self, expr):
        if isinstance(expr.arg, OneMatrix):
            return self._print(OneMatrix(*reversed(expr.arg.shape)))
        inner = self._print(expr.arg)
        # (W^{(2)})^T, as the texts write it: a bare superscript on a superscript would not typeset.
        if not isinstance(expr.arg, sp.MatrixSymbol) or "^" in inner:
            inner = rf"\left({inner}\right)"
        return inner + self.notation.transpose_mark

    def _print_HadamardProduct(self, expr):
        # SymPy writes the transpose of the dropped inputs, (A o M)^T, as A^T o M^T; the texts write the former.
        if self._transposed_masked(expr):
            inner = self._print(HadamardProduct(*(arg.arg for arg in expr.args)))
            return rf"\left({inner}\right){self.notation.transpose_mark}"

        def factor(arg):
            text = self._print(arg)
            return rf"\left({text}\right)" if isinstance(arg, (MatAdd, MatMul, HadamardProduct)) else text

        return r" \odot ".join(factor(arg) for arg in sorted(expr.args, key=self._matrix_rank))

    def _matrix_rank(self, matrix) -> int:
        """Hadamard factors as the index form reads: what arrives from above, the residual, the units, and a
        dropout mask after what it masks (A o M)."""
        kinds = {MATRIX_ROLES[m].kind for m in matrix.atoms(sp.MatrixSymbol) if m in MATRIX_ROLES}
        if "delta" in kinds:
            return 0
        if "targets" in kinds:
            return 1
        if kinds == {"mask"}:
            return 4
        return 2 if isinstance(matrix, sp.MatrixSymbol) else 3

    @staticmethod
    def _transposed_masked(expr) -> bool:
        """A^T o M^T with M a dropout mask: printed as (A o M)^T."""
        return (isinstance(expr, HadamardProduct) and all(isinstance(arg, Transpose) for arg in expr.args)
                and any(MATRIX_ROLES[m].kind == "mask" for m in expr.atoms(sp.MatrixSymbol) if m in MATRIX_ROLES))

    def _print_HadamardPower(self, expr):
        base = self._print(expr.base)
        if not isinstance(expr.base, sp.MatrixSymbol):
            base = rf"\left({base}\right)"
        return rf"{base}^{{\circ {self._print(expr.exp)}}}"

    def _print_MatMul(self, expr):
        if expr.args[0] == -1:
            return "- " + self._print_MatMul(sp.MatMul(*expr.args[1:]) if len(expr.args) > 2 else expr.args[1])
        factors = []
        scalars_only = sum(1 for arg in expr.args if arg.is_Matrix) == 1
        for arg in expr.args:
            text = self._print(arg)
            bracketed = isinstance(arg, HadamardProduct) and not self._transposed_masked(arg)
            if isinstance(arg, MatAdd) or (bracketed and not scalars_only) or (arg.is_Add and not arg.is_Matrix):
                text = rf"\left({text}\right)"
            factors.append(text)
        return " ".join(factors)

    def _print_MatAdd(self, expr):
        return self._print_Add(expr)

    def _print_ElementwiseApplyFunction(self, expr):
        # f(A) acting entry by entry, printed as f applied to the matrix itself.
        function = expr.function
        variable = function.variables[0]
        self.stand_ins[variable] = expr.expr
        try:
            text = self._print(function.expr)
        finally:
            del self.stand_ins[variable]
        return text if isinstance(function.expr, (*_ATOMIC, sp.Derivative)) else rf"\left({text}\right)"

    def _print_AtSample(self, expr):
        inner = self._print(expr.expr)
        if not isinstance(expr.expr, sp.Indexed) or "^" in inner:
            inner = rf"\bigl({inner}\bigr)"
        return rf"{inner}^{{[{self._print(expr.sample)}]}}"


def latex_of(expr, notation: Notation) -> str:
    """The LaTeX for one derivation expression in ``notation``."""
    return NotationPrinter(notation).doprint(expr)


def is_matrix_expression(expr) -> bool:
    return isinstance(expr, (sp.MatrixExpr, ElementwiseApplyFunction, Transpose, HadamardProduct))
