"""SymPy's NumPy printer, taught the shapes of a generated trainer.

Matrix expressions print as NumPy array code (``A1.T @ delta2``); a layer's index-form expressions
(``a[j]``, ``Sum(..., (k, 0, K - 1))``) print as whole-array code over a batch, with each indexed
base standing for the matrix the caller binds it to.
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.special import OneMatrix
from sympy.printing.numpy import NumPyPrinter
from sympy.printing.precedence import PRECEDENCE

from symbp.registry.rules import Flag


class ArraySum(sp.Function):
    """The sum of every entry of an array (a weight penalty's total): ``np.sum(...)`` in code."""

    nargs = 1


class TrainerPrinter(NumPyPrinter):
    """Prints for a module that does ``import numpy as np``.

    ``bindings`` maps an IndexedBase (or Symbol) to the SymPy object it stands for in code,
    e.g. ``{a: A2, y: Y}`` prints ``a[j] - y[j]`` as ``A2 - Y``. ``unit_axis`` is the axis that
    runs over a layer's units: 1 when each sample is a row, 0 when each sample is a column.
    """

    def __init__(self, bindings: dict | None = None, names: dict[str, str] | None = None, arrays=(),
                 unit_axis: int = 1):
        super().__init__({"fully_qualified_modules": True, "inline": True, "order": "none"})
        self.bindings = dict(bindings or {})
        self.names = dict(names or {})
        # Symbols printed by their own names that stand for whole arrays (temporaries of generated code).
        self.arrays = frozenset(arrays)
        self.unit_axis = unit_axis

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            fqn = "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register=False)

    def _print_Symbol(self, expr):
        if expr in self.bindings:
            bound = self.bindings[expr]
            if isinstance(bound, sp.MatrixExpr) and not isinstance(bound, sp.MatrixSymbol):
                return f"({self._print(bound)})"
            return self._print(bound)
        return self.names.get(expr.name, super()._print_Symbol(expr))

    def _print_MatrixSymbol(self, expr):
        return self.names.get(expr.name, expr.name)

    def _print_Transpose(self, expr):
        if isinstance(expr.arg, sp.MatrixSymbol):
            return f"{self._print(expr.arg)}.T"
        return f"({self._print(expr.arg)}).T"

    def _is_array(self, expr) -> bool:
        return any(
            isinstance(node, (sp.Indexed, sp.MatrixSymbol, sp.MatrixExpr)) or node in self.bindings
            or node in self.arrays
            for node in sp.preorder_traversal(expr)
        )

    def _print_Mul(self, expr):
        # Scalars first and together, so (2/n)*R*A costs two array operations rather than three.
        factors = sp.Mul.make_args(expr)
        scalars = [f for f in factors if not self._is_array(f)]
        arrays = [f for f in factors if self._is_array(f)]
        if not scalars or not arrays:
            return super()._print_Mul(expr)
        coefficient = sp.Mul(*scalars)
        rest = sp.Mul(*arrays, evaluate=False) if len(arrays) > 1 else arrays[0]
        printed_rest = self._print(rest) if len(arrays) > 1 else self.parenthesize(rest, PRECEDENCE["Mul"])
        if coefficient == 1:
            return printed_rest
        if coefficient == -1:
            return f"-{printed_rest}"
        printed_coefficient = self._print(coefficient)
        if not (coefficient.is_Integer and coefficient.is_positive):
            printed_coefficient = f"({printed_coefficient})"
        return f"{printed_coefficient}*{printed_rest}"

    def _print_Pow(self, expr, rational=False):
        return self._hprint_Pow(expr, rational=rational, sqrt=self._module_format("numpy.sqrt"))

    def _print_Add(self, expr, order=None):
        # Positive terms first, so (yhat - y) reads as written rather than as (-y + yhat).
        terms = sorted(self._as_ordered_terms(expr, order=order), key=lambda t: t.could_extract_minus_sign())
        printed = self._print(terms[0])
        for term in terms[1:]:
            if term.could_extract_minus_sign():
                printed += f" - {self.parenthesize(-term, PRECEDENCE['Add'])}"
            else:
                printed += f" + {self.parenthesize(term, PRECEDENCE['Add'])}"
        return printed

    def _print_MatMul(self, expr):
        factors = list(expr.args)
        coefficient = [f for f in factors if not f.is_Matrix]
        matrices = [f for f in factors if f.is_Matrix]
        if len(matrices) == 2 and isinstance(matrices[0], OneMatrix):
            column, rest = matrices
            # 1 b: a row broadcast down the batch; 1^T G: a sum over the batch (1^T G^T: along G's rows).
            if column.shape[1] == 1:
                printed = self._print(rest)
            elif isinstance(rest, sp.Transpose):
                printed = f"{self._method_of(rest.arg)}.sum(axis=1)"
            else:
                printed = f"{self._print(rest)}.sum(axis=0)"
        elif len(matrices) == 2 and isinstance(matrices[1], OneMatrix):
            rest, ones = matrices
            # With samples as columns: b^T 1^T, a bias column broadcast along the batch; G 1, a sum over it.
            if ones.shape[0] == 1 and not isinstance(rest, sp.Transpose):
                # G 1^T: a column repeated along a row of ones (a pooling window's share of the error).
                printed = f"{self._module_format('numpy.repeat')}({self._print(rest)}, {ones.shape[1]}, axis=1)"
            elif ones.shape[0] == 1:
                printed = f"{self._print(rest.arg)}[:, {self._module_format('numpy.newaxis')}]"
            else:
                printed = f"{self.parenthesize(rest, PRECEDENCE['Atom'])}.sum(axis=1)"
        else:
            printed = " @ ".join(self.parenthesize(m, PRECEDENCE["Mul"]) for m in matrices)
        if coefficient:
            printed = f"{self._print(sp.Mul(*coefficient))} * {printed}"
        return printed

    def _print_MatAdd(self, expr):
        return " + ".join(self._print(term) for term in expr.args)

    def _print_Indexed(self, expr):
        bound = self.bindings.get(expr.base)
        if bound is None:
            raise KeyError(f"no array bound to {expr.base}")
        if isinstance(bound, (sp.MatrixSymbol, sp.Symbol)):
            return self._print(bound)
        return f"({self._print(bound)})"

    def _print_RowMax(self, expr):
        # RowMax(z) for the indexed base z: the largest entry in each row of the array z is bound to.
        bound = self.bindings.get(expr.args[0])
        if bound is None:
            raise KeyError(f"no array bound to {expr.args[0]}")
        printed = self._print(bound)
        if not isinstance(bound, (sp.MatrixSymbol, sp.Symbol)):
            printed = f"({printed})"
        return f"{printed}.max(axis={self.unit_axis}, keepdims=True)"

    def _print_RowSum(self, expr):
        (summand,) = expr.args
        printed = self._print(summand)
        if not isinstance(summand, (sp.Symbol, sp.MatrixSymbol)):
            printed = f"({printed})"
        return f"{printed}.sum(axis={self.unit_axis}, keepdims=True)"

    def _print_SampleSum(self, expr):
        # Over the batch's samples, one total per unit: the axis that does not run over the units.
        (summand,) = expr.args
        printed = self._print(summand)
        whole = isinstance(summand, sp.Indexed) and isinstance(self.bindings.get(summand.base), sp.MatrixSymbol)
        if not (whole or isinstance(summand, (sp.Symbol, sp.MatrixSymbol))):
            printed = f"({printed})"
        return f"{printed}.sum(axis={1 - self.unit_axis})"

    # The window layers' array functions (symbp.symbolic.windows): NumPy methods, and the runtime's im2col, which
    # takes the arrays' library as xp: NumPy's by default, ``window_library`` where a subclass names another.
    window_library = ""

    def _library_argument(self) -> str:
        return f", xp={self.window_library}" if self.window_library else ""

    def _method_of(self, array) -> str:
        printed = self._print(array)
        plain = isinstance(array, (sp.Symbol, sp.MatrixSymbol)) or type(array).__name__ in (
            "Reshaped", "Transposed", "Patches", "PatchesAdjoint", "FirstMaxMask")
        return printed if plain else f"({printed})"

    def _print_Reshaped(self, expr):
        array, shape = expr.args
        return f"{self._method_of(array)}.reshape({', '.join(str(d) for d in shape)})"

    def _print_Transposed(self, expr):
        array, axes = expr.args
        return f"{self._method_of(array)}.transpose({', '.join(str(d) for d in axes)})"

    def _window_call(self, function: str, expr) -> str:
        array, *geometry = expr.args
        tuples = ", ".join("(" + ", ".join(str(d) for d in t) + ("," if len(t) == 1 else "") + ")" for t in geometry)
        return f"{function}({self._print(array)}, {tuples}{self._library_argument()})"

    def _print_Patches(self, expr):
        return self._window_call("_patches", expr)

    def _print_PatchesAdjoint(self, expr):
        return self._window_call("_patches_adjoint", expr)

    def _print_FirstMaxMask(self, expr):
        return f"_first_max_mask({self._print(expr.args[0])}{self._library_argument()})"

    def _print_ArraySum(self, expr):
        return f"{self._module_format('numpy.sum')}({self._print(expr.args[0])})"

    def _print_Min(self, expr):
        return self._pairwise("numpy.minimum", expr.args)

    def _print_Max(self, expr):
        return self._pairwise("numpy.maximum", expr.args)

    def _pairwise(self, function: str, args) -> str:
        """np.minimum(a, np.minimum(b, c)): elementwise over arrays, arrays before numbers."""
        first, *rest = sorted(args, key=lambda arg: arg.is_number)
        printed_rest = self._print(rest[0]) if len(rest) == 1 else self._pairwise(function, rest)
        return f"{self._module_format(function)}({self._print(first)}, {printed_rest})"

    def _print_Abs(self, expr):
        return f"{self._module_format('numpy.abs')}({self._print(expr.args[0])})"

    def _print_Sum(self, expr):
        # A sum over a layer's units is a sum along each row of the batch.
        return f"{self.parenthesize(expr.function, PRECEDENCE['Atom'])}.sum(axis={self.unit_axis}, keepdims=True)"

    def _print_Piecewise(self, expr):
        if len(expr.args) == 2 and isinstance(expr.args[0].cond, Flag) and expr.args[1].cond == sp.true:
            # A choice on a flag of the generated function (batch statistics while training): Python's own.
            (then, flag), (otherwise, _) = expr.args
            return f"{self._print(then)} if {self._print(flag)} else {self._print(otherwise)}"
        if len(expr.args) == 2 and expr.args[-1].cond == sp.true:
            (then, condition), (otherwise, _) = expr.args
            if (then, otherwise) == (sp.Integer(1), sp.Integer(0)):
                # A 0/1 mask: NumPy multiplies by a boolean array directly, with no where() call.
                return f"({self._print(condition)})"
            if isinstance(condition, sp.StrictGreaterThan) and condition.rhs == 0 and otherwise == 0:
                if then == condition.lhs:
                    return f"{self._module_format('numpy.maximum')}({self._print(then)}, 0)"
            return (
                f"{self._module_format('numpy.where')}({self._print(condition)}, "
                f"{self._print(then)}, {self._print(otherwise)})"
            )
        return super()._print_Piecewise(expr)

    def _print_Relational(self, expr):
        op = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}[expr.rel_op]
        return f"{self._print(expr.lhs)} {op} {self._print(expr.rhs)}"


def numpy_code(expr, bindings: dict | None = None, names: dict[str, str] | None = None, arrays=()) -> str:
    return TrainerPrinter(bindings, names, arrays).doprint(expr)
