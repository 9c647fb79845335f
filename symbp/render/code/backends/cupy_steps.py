"""A layer kind's own arrays in the CuPy module: its ``forward_steps``, ``backward_steps`` and pullbacks as GPU work.

Layer and batch normalisation, convolution and pooling compute arrays of their own on the way to Z and back
(``symbp.symbolic.layernorm.CodeStep``). Each such step becomes, in the CuPy module:

- fused kernels and CuPy reductions, where it is elementwise work and sums or maxima along a row or down a
  column (the normalisations' centring, scaling and chain rule, a gain's gradient): the step's expression is
  rewritten as one scalar expression over the arrays (``elementwise``) and planned as ``cuda.plan`` plans a
  dense layer's kernels, with a matrix product inside it computed first by cuBLAS;
- otherwise (im2col and its adjoint, reshapes, transposes, a matrix product alone), one line of CuPy code
  printed by the NumPy module's printer with CuPy's names, the window functions taking ``xp=cp``.

A step that chooses on the generated functions' ``training`` flag (batch normalisation: the batch's
statistics, or the running ones) becomes an ``if training:`` with the stages of each branch. The arrays these
stages write are allocated by CuPy as the step runs (its memory pool keeps them between steps): their sizes
follow the batch in ways a dense layer's workspace does not (a row per sample and window position).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy import HadamardProduct, MatAdd, MatMul, MatrixSymbol, OneMatrix, Transpose

from symbp.registry.rules import Flag, RowMax, RowSum, SampleSum
from symbp.render.code.backends.cuda import Kernel, Reduction, plan
from symbp.render.code.printing import TrainerPrinter
from symbp.symbolic.layers import n_samples
from symbp.symbolic.windows import FirstMaxMask, Patches, PatchesAdjoint, Reshaped, Transposed

# The window layers' array functions: reshaping and gathering, never elementwise.
WINDOW_FUNCTIONS = (Patches, PatchesAdjoint, FirstMaxMask, Reshaped, Transposed)

# The name the kernels and the module's functions give the batch's size (as in cupy.py).
ROWS = "rows"


class NotElementwise(Exception):
    """A step that is no elementwise expression over whole arrays (a reshape, im2col): printed as a line."""


@dataclass(frozen=True)
class Line:
    """target = code: one line of CuPy, for what no kernel computes."""

    target: str
    code: str


@dataclass(frozen=True)
class Branch:
    """``if flag:`` the stages of then, ``else:`` those of otherwise."""

    flag: str
    then: tuple
    otherwise: tuple


class CupyLinePrinter(TrainerPrinter):
    """The NumPy module's printer with CuPy's names: ``cp.`` for ``np.``, and the window functions on the GPU."""

    window_library = "cp"

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            return "cp." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)


def line_code(expr, bindings: dict | None = None) -> str:
    return CupyLinePrinter(bindings, names={"N": ROWS}).doprint(expr)


def _symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def _plain(matrix) -> bool:
    """A matrix that is an array of the step, or its transpose: what cuBLAS multiplies."""
    return isinstance(matrix, MatrixSymbol) or (isinstance(matrix, Transpose) and isinstance(matrix.arg, MatrixSymbol))


def product_of(expr) -> MatMul | None:
    """expr itself when it is a product of two arrays of the step (or their transposes), else None."""
    if isinstance(expr, MatMul):
        factors = [f for f in expr.args if f.is_Matrix]
        if len(factors) == 2 and all(_plain(f) for f in factors) and len(expr.args) == 2:
            return expr
    return None


def elementwise(expr, bindings: dict | None = None, products: dict | None = None) -> sp.Expr:
    """A step's expression as one scalar expression over symbols named as the arrays they stand for.

    Matrix expressions: a Hadamard product multiplies, a row broadcast down the batch (1 b) is the row itself,
    1^T G is G's sum over the batch (SampleSum); index expressions: each indexed base and scalar symbol is the
    array ``bindings`` binds it to. ``products`` maps a matrix product to the symbol holding it (cuBLAS computes
    it first). NotElementwise for anything else: it is no elementwise work.
    """
    bindings, products = bindings or {}, products or {}

    def convert(node):
        if node in products:
            return products[node]
        if isinstance(node, MatrixSymbol):
            return _symbol(node.name)
        if isinstance(node, sp.Indexed):
            return _symbol(bindings[node.base].name)
        if isinstance(node, sp.Symbol) and not isinstance(node, Flag):
            if node in bindings:
                return _symbol(bindings[node].name)
            return node
        if isinstance(node, MatAdd):
            return sp.Add(*(convert(arg) for arg in node.args))
        if isinstance(node, HadamardProduct):
            return sp.Mul(*(convert(arg) for arg in node.args))
        if isinstance(node, MatMul):
            scalars = [f for f in node.args if not f.is_Matrix]
            matrices = [f for f in node.args if f.is_Matrix]
            if len(matrices) == 2 and isinstance(matrices[0], OneMatrix) and matrices[0].shape[1] == 1:
                return sp.Mul(*scalars, convert(matrices[1]))  # 1 b: the row, broadcast down the batch
            if len(matrices) == 2 and isinstance(matrices[0], OneMatrix):
                return sp.Mul(*scalars, SampleSum(convert(matrices[1])))  # 1^T G: a sum over the batch
            if len(matrices) == 1:
                return sp.Mul(*scalars, convert(matrices[0]))
            raise NotElementwise(node)
        if isinstance(node, (RowSum, SampleSum, RowMax)) or not node.args:
            return node.func(*(convert(arg) for arg in node.args)) if node.args else node
        if isinstance(node, sp.MatrixExpr) or getattr(node, "is_Matrix", False):
            raise NotElementwise(node)
        if isinstance(node, WINDOW_FUNCTIONS):
            raise NotElementwise(node)
        return node.func(*(convert(arg) for arg in node.args))

    return convert(expr)


def _products_inside(expr) -> list:
    """The products of two arrays in expr, outermost first."""
    return [node for node in sp.preorder_traversal(expr) if product_of(node) is not None]


def stages_of(name: str, target: MatrixSymbol | str, expr, bindings: dict, shapes: dict) -> tuple:
    """The GPU work that computes target = expr: kernels and reductions, lines, or a Branch on a flag."""
    target_name = target if isinstance(target, str) else target.name
    if isinstance(expr, sp.Piecewise) and len(expr.args) == 2 and isinstance(expr.args[0].cond, Flag):
        (then, flag), (otherwise, _) = expr.args
        return (Branch(str(flag), stages_of(f"{name}_training", target, then, bindings, shapes),
                       stages_of(f"{name}_evaluation", target, otherwise, bindings, shapes)),)
    if product_of(expr) is not None:
        return (Line(target_name, line_code(expr, bindings)),)
    work: list = []
    products = {}
    for index, product in enumerate(_products_inside(expr)):
        held = f"{target_name}_product" if index == 0 else f"{target_name}_product{index + 1}"
        work.append(Line(held, line_code(product, bindings)))
        products[product] = _symbol(held)
        shapes[held] = _shape(product.shape)
    try:
        scalar = elementwise(expr, bindings, products)
    except NotElementwise:
        return (Line(target_name, line_code(expr, bindings)),)
    target_symbol = _symbol(target_name)
    if isinstance(scalar, sp.Symbol):
        return (*work, Line(target_name, line_code(scalar)))
    if isinstance(scalar, (SampleSum, RowSum)) and isinstance(scalar.args[0], sp.Symbol):
        axis = 0 if isinstance(scalar, SampleSum) else 1
        return (*work, Reduction(target_name, "sum", scalar.args[0].name, axis))
    arrays = {symbol: symbol.name for symbol in scalar.free_symbols if symbol != n_samples}
    for symbol in arrays:
        shapes.setdefault(symbol.name, (None,))
    planned = plan(name, [(target_symbol, scalar)], arrays, {n_samples: ROWS}, [target_symbol], shapes,
                   allocates=True, prefix=f"{target_name}_")
    return (*work, *planned)


def _shape(shape) -> tuple:
    """A matrix's shape as a workspace writes it: None for a size that grows with the batch."""
    return tuple(size if isinstance(size, int) or getattr(size, "is_Integer", False) else None for size in shape)


def register_shapes(shapes: dict, *matrices) -> None:
    """Records each matrix's shape under its name (None for a size that grows with the batch); a row (1, k) is
    stored as k entries, as the parameter dict holds it; a row that grows with the batch (average pooling's
    gradient, one row for every offset) keeps its two axes."""
    for matrix in matrices:
        rows, columns = matrix.shape
        fixed_row = rows == 1 and _shape((columns,)) != (None,)
        shapes.setdefault(matrix.name, (int(columns),) if fixed_row else _shape(matrix.shape))


def kernels_in(stages) -> list[Kernel]:
    """Every kernel of the stages, those in both branches of a choice included."""
    found = []
    for stage in stages:
        if isinstance(stage, Kernel):
            found.append(stage)
        elif isinstance(stage, Branch):
            found += kernels_in(stage.then) + kernels_in(stage.otherwise)
    return found


def uses_rows(stages) -> bool:
    """Whether some stage reads the batch's size."""
    for stage in stages:
        if isinstance(stage, Kernel) and ROWS in stage.scalars:
            return True
        if isinstance(stage, Line) and ROWS in stage.code:
            return True
        if isinstance(stage, Branch) and (uses_rows(stage.then) or uses_rows(stage.otherwise)):
            return True
    return False


def stage_lines(stages, indent: str = "") -> list[str]:
    """The Python lines of stages: a kernel launch, a reduction, a line, or an if/else on a flag."""
    lines = []
    for stage in stages:
        if isinstance(stage, Kernel):
            call = f"_{stage.name}({stage.arguments})"
            lines.append(f"{indent}{', '.join(stage.outputs)} = {call}" if stage.allocates else f"{indent}{call}")
        elif isinstance(stage, Reduction):
            lines.append(indent + stage.code)
        elif isinstance(stage, Line):
            lines.append(f"{indent}{stage.target} = {stage.code}")
        else:
            lines.append(f"{indent}if {stage.flag}:")
            lines += stage_lines(stage.then, indent + "    ")
            lines.append(f"{indent}else:")
            lines += stage_lines(stage.otherwise, indent + "    ")
    return lines
