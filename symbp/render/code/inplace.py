"""Training-step code that writes into preallocated arrays: the same expressions, fewer passes.

``loss_and_grad`` in a generated module is written for reading: one NumPy expression per line,
each allocating its temporaries. ``train`` runs the same step thousands of times, where those
allocations and extra passes over memory cost as much as the arithmetic. This printer writes
each expression as a short sequence of ufunc calls with ``out=``, into arrays allocated once
per batch size (the workspace). Expressions it does not know how to write in place are assigned
whole, which is slower but still right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp
from sympy.codegen.cfunctions import log1p
from sympy.codegen.numpy_nodes import logaddexp
from sympy.matrices.expressions.special import OneMatrix

from symbp.registry.rules import RowMax, RowSum
from symbp.render.code.printing import TrainerPrinter

ROWS = "rows"
_UFUNCS = {sp.exp: "exp", sp.tanh: "tanh", sp.log: "log", sp.cosh: "cosh", sp.sinh: "sinh", sp.sin: "sin",
           sp.cos: "cos", sp.atan: "arctan", sp.Abs: "absolute", log1p: "log1p"}
# A comparison's ufunc: written into a float array it gives the 0/1 mask that [z >= 0] is.
_COMPARISONS = {">=": "greater_equal", ">": "greater", "<=": "less_equal", "<": "less", "==": "equal",
                "!=": "not_equal"}


@dataclass
class Workspace:
    """The arrays a step uses, by name, each with a shape whose entries are ints or ROWS (the batch).

    All are written by the step except the vector of ones, which is filled when allocated.
    """

    shapes: dict[str, tuple] = field(default_factory=dict)
    filled_with_ones: set[str] = field(default_factory=set)

    def add(self, name: str, shape: tuple) -> str:
        self.shapes.setdefault(name, shape)
        return name

    def ones(self) -> str:
        """A vector of ones as long as the batch: a sum over the batch is then a matrix-vector product."""
        self.filled_with_ones.add("ones")
        return self.add("ones", (ROWS,))

    def scratch(self, shape: tuple, depth: int) -> str:
        name = f"_scratch_{'x'.join(map(str, shape))}_{depth}".replace(ROWS, "n")
        return self.add(name, shape)


class InPlacePrinter(TrainerPrinter):
    """Writes `target = expr` as ufunc calls into the workspace's arrays."""

    def __init__(self, bindings: dict, arrays: dict, workspace: Workspace, names: dict | None = None,
                 samples_as_columns: bool = False):
        super().__init__(bindings, names, arrays, unit_axis=0 if samples_as_columns else 1)
        self.shapes = dict(arrays)  # symbol or matrix symbol -> shape
        self.workspace = workspace
        self.samples_as_columns = samples_as_columns

    # ------------------------------------------------------------------ shapes

    def batch_shape(self, units: int) -> tuple:
        """The shape of a layer-wide array: a row per sample, or else a column per sample."""
        return (units, ROWS) if self.samples_as_columns else (ROWS, units)

    def shape_of(self, expr) -> tuple | None:
        """The shape of an array expression, with ROWS for the batch; None for a scalar."""
        if expr in self.shapes:
            return self.shapes[expr]
        if expr in self.bindings:
            return self.shape_of(self.bindings[expr])
        if isinstance(expr, sp.MatrixExpr):
            return tuple(ROWS if size.free_symbols else int(size) for size in expr.shape)
        if isinstance(expr, (RowSum, RowMax)):
            return self.batch_shape(1)
        shapes = [s for s in (self.shape_of(arg) for arg in expr.args) if s is not None]
        if not shapes:
            return None
        # NumPy's broadcasting: the batch wins over any size, and a size over 1.
        if len({len(shape) for shape in shapes}) != 1:
            raise ValueError(f"operands of different ranks in {expr}: {shapes}")
        return tuple(ROWS if ROWS in sizes else max(sizes) for sizes in zip(*shapes))

    def _atom(self, expr) -> bool:
        # A matrix symbol is an array the step already holds (a residual layer adds its input A as it is).
        return (expr in self.shapes or isinstance(expr, sp.MatrixSymbol)
                or expr in self.bindings and isinstance(self.bindings[expr], sp.MatrixSymbol))

    def _bound_product(self, expr) -> bool:
        return expr in self.bindings and not isinstance(self.bindings[expr], sp.MatrixSymbol)

    def _has_product(self, expr) -> bool:
        return any(isinstance(node, sp.MatrixExpr) or self._bound_product(node) for node in sp.preorder_traversal(expr))

    # ------------------------------------------------------------------ emission

    def assign(self, target: str, expr, shape: tuple) -> list[str]:
        self.workspace.add(target, shape)
        return self._emit(expr, target, depth=0)

    def _whole(self, expr, out) -> list[str]:
        return [f"{out}[...] = {self._print(expr)}"]

    def _operand(self, expr, depth, lines) -> str:
        """A printed operand: an array's name, a scalar, or a scratch array it was written into."""
        if self._atom(expr) or self.shape_of(expr) is None:
            return self._print(expr)
        scratch = self.workspace.scratch(self.shape_of(expr), depth + 1)
        lines += self._emit(expr, scratch, depth + 1)
        return scratch

    def _argument(self, expr, out: str, depth: int) -> tuple[list[str], str]:
        """A function's argument: an array as it is, else computed into out itself (then updated in place)."""
        if self._atom(expr) or self.shape_of(expr) is None:
            return [], self._print(expr)
        return self._emit(expr, out, depth), out

    def _emit(self, expr, out: str, depth: int) -> list[str]:
        np_ = self._module_format
        if self._bound_product(expr):
            return self._emit_matrix(self.bindings[expr], out, depth)
        if isinstance(expr, sp.MatrixExpr):
            return self._emit_matrix(expr, out, depth)
        if self._atom(expr):
            return [f"{np_('numpy.copyto')}({out}, {self._print(expr)})"]
        if expr.is_Add:
            return self._emit_chain(expr, out, depth, "add", "subtract")
        if expr.is_Mul:
            return self._emit_chain(expr, out, depth, "multiply", "divide")
        if expr.is_Pow and expr.exp.is_number:
            lines, base = self._argument(expr.base, out, depth)
            exponent = expr.exp
            if exponent == -1:
                lines.append(f"{np_('numpy.reciprocal')}({base}, out={out})")
            elif exponent == 2:
                lines.append(f"{np_('numpy.square')}({base}, out={out})")
            elif exponent == sp.Rational(1, 2):
                lines.append(f"{np_('numpy.sqrt')}({base}, out={out})")
            else:
                lines.append(f"{np_('numpy.power')}({base}, {self._print(exponent)}, out={out})")
            return lines
        if isinstance(expr, (sp.Min, sp.Max)):
            return self._emit_pairwise(expr, out, depth)
        if _is_mask(expr):
            return self._emit_mask(expr.args[0].cond, out, depth)
        if expr.func in _UFUNCS and len(expr.args) == 1:
            lines, argument = self._argument(expr.args[0], out, depth)
            return lines + [f"{np_('numpy.' + _UFUNCS[expr.func])}({argument}, out={out})"]
        if isinstance(expr, logaddexp):
            lines = []
            left, right = (self._operand(arg, depth, lines) for arg in expr.args)
            return lines + [f"{np_('numpy.logaddexp')}({left}, {right}, out={out})"]
        if isinstance(expr, (RowMax, RowSum)):
            return self._emit_row_reduction(expr, out, depth)
        return self._whole(expr, out)

    def _emit_row_reduction(self, expr, out, depth) -> list[str]:
        """A sample's maximum or sum over its row of units, reduced straight into out (a column per sample)."""
        lines: list[str] = []
        (argument,) = expr.args
        if isinstance(expr, RowMax):
            argument = self.bindings.get(argument, argument)
        reduced = self._operand(argument, depth, lines)
        function = self._module_format("numpy.max" if isinstance(expr, RowMax) else "numpy.sum")
        shape = self.shape_of(expr)
        if self.workspace.shapes.get(out) == shape:
            return lines + [f"{function}({reduced}, axis={self.unit_axis}, keepdims=True, out={out})"]
        # out is a whole layer's array that the reduction is broadcast over: reduce into a column first.
        column = self.workspace.scratch(shape, depth + 1)
        return lines + [f"{function}({reduced}, axis={self.unit_axis}, keepdims=True, out={column})",
                        f"{self._module_format('numpy.copyto')}({out}, {column})"]

    def _emit_pairwise(self, expr, out, depth) -> list[str]:
        """Min(a, b, ...) or Max(...): np.minimum or np.maximum of the first array and each other operand."""
        function = self._module_format("numpy.minimum" if isinstance(expr, sp.Min) else "numpy.maximum")
        # Arrays first, and among them one to compute first (into out itself), so no scratch array is needed.
        first, *rest = sorted(expr.args, key=lambda arg: (self.shape_of(arg) is None, self._atom(arg)))
        lines, current = self._argument(first, out, depth)
        for operand in rest:
            lines.append(f"{function}({current}, {self._operand(operand, depth, lines)}, out={out})")
            current = out
        return lines

    def _emit_mask(self, condition, out, depth) -> list[str]:
        """[lhs op rhs] as 0s and 1s: the comparison's ufunc, written into the float array out."""
        lines: list[str] = []
        left, right = (self._operand(side, depth, lines) for side in (condition.lhs, condition.rhs))
        function = self._module_format("numpy." + _COMPARISONS[condition.rel_op])
        return lines + [f"{function}({left}, {right}, out={out})"]

    def _emit_chain(self, expr, out, depth, combine, inverse) -> list[str]:
        """a + b - c ... or a * b / c ...: the first array operand, then each other one, in place."""
        np_ = self._module_format
        is_sum = combine == "add"
        operands = list(sp.Add.make_args(expr) if is_sum else sp.Mul.make_args(expr))
        constants = [o for o in operands if self.shape_of(o) is None]
        arrays = [o for o in operands if self.shape_of(o) is not None]
        constant = (sp.Add if is_sum else sp.Mul)(*constants)
        # Matrix products first: they can only write into out, not combine into it. Then an operand that enters
        # as it is, so that a / b is one divide rather than a reciprocal and a multiply.
        arrays.sort(key=lambda o: (not self._has_product(o), is_sum and o.could_extract_minus_sign()
                                   or not is_sum and o.is_Pow and o.exp == -1))

        def split(operand):
            """(operand without its sign or reciprocal, whether it enters inverted)."""
            if is_sum and operand.could_extract_minus_sign():
                return -operand, True
            if not is_sum and operand.is_Pow and operand.exp == -1:
                return operand.base, True
            return operand, False

        lines: list[str] = []
        first, first_inverted = split(arrays[0])
        identity = sp.Integer(0 if is_sum else 1)
        if first_inverted and constant != identity:
            lines.append(f"{np_('numpy.' + inverse)}({self._print(constant)}, {self._operand(first, depth, lines)}, "
                         f"out={out})")
            constant = identity
        elif len(arrays) > 1 and self._atom(first):
            value, inverted = split(arrays[1])
            second = self._operand(value, depth, lines)
            operation = inverse if inverted else combine
            lines.append(f"{np_('numpy.' + operation)}({self._print(first)}, {second}, out={out})")
            arrays = arrays[1:]
        elif first_inverted:
            lines += self._emit(arrays[0], out, depth)
        elif self._atom(first) and constant != identity:
            lines.append(self._combine_constant(self._print(first), constant, combine, out))
            constant = identity
        else:
            lines += self._emit(first, out, depth)
        for operand in arrays[1:]:
            value, inverted = split(operand)
            printed = self._operand(value, depth, lines)
            lines.append(f"{np_('numpy.' + (inverse if inverted else combine))}({out}, {printed}, out={out})")
        if constant != identity:
            lines.append(self._combine_constant(out, constant, combine, out))
        return lines

    def _combine_constant(self, operand: str, constant, combine: str, out: str) -> str:
        """operand + constant or operand * constant into out; times -1 is np.negative."""
        if combine == "multiply" and constant == -1:
            return f"{self._module_format('numpy.negative')}({operand}, out={out})"
        return f"{self._module_format('numpy.' + combine)}({operand}, {self._print(constant)}, out={out})"

    def _emit_matrix(self, expr, out, depth) -> list[str]:
        np_ = self._module_format
        if isinstance(expr, sp.MatAdd):
            lines: list[str] = []
            terms = sorted(expr.args, key=lambda t: _is_broadcast_bias(t))
            lines += self._emit_matrix(terms[0], out, depth)
            for term in terms[1:]:
                printed = self._print(term) if _is_broadcast_bias(term) else self._operand(term, depth, lines)
                lines.append(f"{np_('numpy.add')}({out}, {printed}, out={out})")
            return lines
        if isinstance(expr, sp.MatMul):
            matrices = [m for m in expr.args if m.is_Matrix]
            if len(matrices) == 2 and not any(isinstance(m, OneMatrix) for m in matrices) and len(expr.args) == 2:
                left, right = (self._print(m) for m in matrices)
                if self.samples_as_columns and matrices[0].shape[1] == 1:
                    # Broadcasting a column against a long row beats matmul's inner loop of length 1.
                    return [f"# {left} @ {right} is an outer product (inner dimension 1): a broadcast multiply",
                            f"{np_('numpy.multiply')}({left}, {right}, out={out})"]
                return [f"{np_('numpy.matmul')}({left}, {right}, out={out})"]
            # 1^T G, or G 1 with a sample per column: BLAS sums over the batch several times faster than np.sum.
            plain = len(matrices) == 2 and len(expr.args) == 2  # no scalar coefficient
            if plain and isinstance(matrices[0], OneMatrix) and matrices[0].shape[0] == 1:
                return [f"{np_('numpy.matmul')}({self.workspace.ones()}, {self._print(matrices[1])}, out={out})"]
            if plain and isinstance(matrices[1], OneMatrix) and matrices[1].shape[1] == 1:
                return [f"{np_('numpy.matmul')}({self._print(matrices[0])}, {self.workspace.ones()}, out={out})"]
        return self._whole(expr, out)


def _is_mask(expr) -> bool:
    """Piecewise((1, lhs op rhs), (0, True)): a comparison as 0 or 1."""
    return (isinstance(expr, sp.Piecewise) and len(expr.args) == 2 and expr.args[1].cond == sp.true
            and (expr.args[0].expr, expr.args[1].expr) == (1, 0)
            and isinstance(expr.args[0].cond, sp.core.relational.Relational))


def _is_broadcast_bias(term) -> bool:
    """1 b (a row repeated for every sample) or b^T 1^T (a column repeated for every sample)."""
    if not isinstance(term, sp.MatMul):
        return False
    first, last = term.args[0], term.args[-1]
    row_down_the_batch = isinstance(first, OneMatrix) and first.shape[1] == 1
    column_along_the_batch = isinstance(last, OneMatrix) and last.shape[0] == 1
    return row_down_the_batch or column_along_the_batch
