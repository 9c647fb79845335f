"""The trainer printer, taught the Python array API standard.

Code it prints runs on any array library that array-api-compat wraps: every function comes from
the namespace ``xp`` that the module takes from its inputs, reductions are functions rather than
NumPy's methods, and nothing relies on NumPy's looser type promotion (a boolean mask is converted
to the arrays' dtype before it multiplies them; a ``where`` gets at most one Python scalar).
"""

from __future__ import annotations

import sympy as sp
from sympy.matrices.expressions.special import OneMatrix
from sympy.printing.precedence import PRECEDENCE

from symbp.registry.rules import Flag
from symbp.render.code.printing import TrainerPrinter

# NumPy's names for the standard's functions, where the two differ.
STANDARD_NAMES = {
    "absolute": "abs",
    "arccos": "acos",
    "arccosh": "acosh",
    "arcsin": "asin",
    "arcsinh": "asinh",
    "arctan": "atan",
    "arctan2": "atan2",
    "arctanh": "atanh",
    "power": "pow",
    "concatenate": "concat",
    "amax": "max",
    "amin": "min",
}


class ArrayAPIPrinter(TrainerPrinter):
    """Prints for a function that has bound ``xp`` (its inputs' namespace) and, where ``needs_dtype``
    says so after printing, ``dtype`` (the floating dtype it computes in)."""

    needs_dtype = False

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            name = fqn[len("numpy."):]
            return "xp." + STANDARD_NAMES.get(name, name)
        return super()._module_format(fqn, register)

    def _reduced(self, function: str, operand, axis: int, keepdims: bool) -> str:
        keep = ", keepdims=True" if keepdims else ""
        return f"xp.{function}({self._print(operand)}, axis={axis}{keep})"

    def _print_RowMax(self, expr):
        bound = self.bindings.get(expr.args[0])
        if bound is None:
            raise KeyError(f"no array bound to {expr.args[0]}")
        return self._reduced("max", bound, self.unit_axis, keepdims=True)

    def _print_RowSum(self, expr):
        return self._reduced("sum", expr.args[0], self.unit_axis, keepdims=True)

    def _print_Sum(self, expr):
        return self._reduced("sum", expr.function, self.unit_axis, keepdims=True)

    def _print_SampleSum(self, expr):
        # Over the batch's samples, one total per unit: the axis that does not run over the units.
        return self._reduced("sum", expr.args[0], 1 - self.unit_axis, keepdims=False)

    def _print_MatMul(self, expr):
        factors = list(expr.args)
        coefficient = [f for f in factors if not f.is_Matrix]
        matrices = [f for f in factors if f.is_Matrix]
        if len(matrices) == 2 and isinstance(matrices[0], OneMatrix) and matrices[0].shape[1] != 1:
            # 1^T G: a sum over the batch.
            printed = self._reduced("sum", matrices[1], 0, keepdims=False)
        elif len(matrices) == 2 and isinstance(matrices[1], OneMatrix):
            rest, ones = matrices
            if ones.shape[0] == 1 and not isinstance(rest, sp.Transpose):
                # G 1^T: a column repeated along a row of ones (a pooling window's share of the error).
                printed = f"xp.repeat({self._print(rest)}, {ones.shape[1]}, axis=1)"
            elif ones.shape[0] == 1:
                # b^T 1^T: a bias column broadcast along the batch.
                printed = f"{self.parenthesize(rest.arg, PRECEDENCE['Atom'])}[:, None]"
            else:
                printed = self._reduced("sum", rest, 1, keepdims=False)
        else:
            return super()._print_MatMul(expr)
        if coefficient:
            printed = f"{self._print(sp.Mul(*coefficient))} * {printed}"
        return printed

    def _print_Logistic(self, expr):
        # The standard has no logistic function: the module's _logistic calls the library's own where it has one.
        return f"_logistic(xp, {self._print(expr.args[0])})"

    def _branch(self, value, other) -> str:
        """A branch of where(): a Python scalar only when the other branch is an array."""
        if self._is_array(value) or self._is_array(other):
            return self._print(value)
        self.needs_dtype = True
        return f"xp.asarray({self._print(value)}, dtype=dtype)"

    # The window layers' array functions: the standard's reshape and permute_dims, and the runtime's im2col.
    def _print_Reshaped(self, expr):
        array, shape = expr.args
        return f"xp.reshape({self._print(array)}, {_tuple_code(shape)})"

    def _print_Transposed(self, expr):
        array, axes = expr.args
        return f"xp.permute_dims({self._print(array)}, {_tuple_code(axes)})"

    def _print_Piecewise(self, expr):
        if len(expr.args) == 2 and isinstance(expr.args[0].cond, Flag) and expr.args[1].cond == sp.true:
            # A choice on a flag of the generated function (batch statistics while training): Python's own, so
            # that a compiled function holds one branch (jax.jit takes the flag as a static argument).
            return super()._print_Piecewise(expr)
        if len(expr.args) == 2 and expr.args[-1].cond == sp.true:
            (then, condition), (otherwise, _) = expr.args
            if (then, otherwise) == (sp.Integer(1), sp.Integer(0)):
                # A 0/1 mask: the standard multiplies numbers only, so the booleans become the dtype's 0 and 1.
                self.needs_dtype = True
                return f"xp.astype({self._print(condition)}, dtype)"
            if isinstance(condition, sp.StrictGreaterThan) and condition.rhs == 0 and otherwise == 0:
                if then == condition.lhs:
                    return f"xp.maximum({self._print(then)}, 0)"
            return (f"xp.where({self._print(condition)}, {self._branch(then, otherwise)}, "
                    f"{self._branch(otherwise, then)})")
        raise NotImplementedError("a Piecewise with more than two branches has no array API form here")


def _tuple_code(values) -> str:
    return "(" + ", ".join(str(v) for v in values) + ("," if len(values) == 1 else "") + ")"


class Code(str):
    """Printed code that knows whether it reads the variable ``dtype``."""

    needs_dtype: bool = False


def array_api_code(expr, bindings: dict | None = None, names: dict[str, str] | None = None, arrays=()) -> Code:
    printer = ArrayAPIPrinter(bindings, names, arrays)
    code = Code(printer.doprint(expr))
    code.needs_dtype = printer.needs_dtype
    return code
