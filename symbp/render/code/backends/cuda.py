"""CUDA C kernels for elementwise work, printed from the same SymPy expressions as the NumPy module.

A kernel is the body of a ``cupy.ElementwiseKernel``: every element of the broadcast arguments
runs the same straight-line code. The body is type-generic (``T`` is float or double, as the arrays
are), so every number is printed as a ``T`` and every function is CUDA's overload for ``T``.

A row-wise sum or maximum (softmax's normaliser, its log-sum-exp, a normalised layer's mean) is not
elementwise: the planner cuts the computation there, leaves the reduction to CuPy and passes its
result, one value per sample, into the next kernel, which broadcasts it along the row. A sum over
the batch's samples (batch normalisation's statistics, a gain's gradient) is cut the same way, its
result one value per unit, broadcast down the columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.codegen.numpy_nodes import logaddexp
from sympy.printing.c import C99CodePrinter
from sympy.printing.precedence import PRECEDENCE

from symbp.errors import SymbpError
from symbp.registry.rules import RowMax, RowSum, SampleSum

# Device functions the kernels call besides CUDA's own math; the same text compiles as host C++.
PREAMBLE = """\
template <typename T> __device__ T symbp_logaddexp(T a, T b) {
    // log(exp(a) + exp(b)) without overflow: the larger term factored out.
    T larger = a > b ? a : b;
    return larger + log1p(exp(-fabs(a - b)));
}
"""


class CudaKernelPrinter(C99CodePrinter):
    """Prints a scalar SymPy expression as CUDA C over the element type T.

    CUDA's math functions are overloaded for float and double and live in the global namespace, so
    no ``std::``; every number is a T, so a float kernel never computes in double by accident.
    ``names`` maps a symbol to the variable that holds it in the kernel.
    """

    def __init__(self, names: dict | None = None):
        super().__init__()
        self.names = dict(names or {})

    def _print_Symbol(self, expr):
        return self.names.get(expr, super()._print_Symbol(expr))

    def _print_Integer(self, expr):
        return f"T({int(expr)})"

    def _print_Rational(self, expr):
        return f"T({expr.p})/T({expr.q})"  # the C printer parenthesizes it as a quotient where needed

    def _print_Float(self, expr):
        return f"T({float(expr)!r})"

    def _print_Exp1(self, expr):
        return "exp(T(1))"

    def _print_Pi(self, expr):
        return f"T({float(sp.pi)!r})"

    def _print_Pow(self, expr):
        base, exponent = expr.base, expr.exp
        printed = self.parenthesize(base, PRECEDENCE["Mul"])
        if exponent == -1:
            return f"T(1)/{printed}"
        if exponent in (2, 3):
            return f"({'*'.join([printed] * int(exponent))})"
        if exponent == sp.Rational(1, 2):
            return f"sqrt({self._print(base)})"
        if exponent == sp.Rational(-1, 2):
            return f"T(1)/sqrt({self._print(base)})"
        return f"pow({self._print(base)}, {self._print(exponent)})"

    def _print_Abs(self, expr):
        return f"fabs({self._print(expr.args[0])})"

    def _pairwise(self, function, args):
        first, *rest = args
        printed_rest = self._print(rest[0]) if len(rest) == 1 else self._pairwise(function, rest)
        return f"{function}({self._print(first)}, {printed_rest})"

    def _print_Min(self, expr):
        return self._pairwise("fmin", expr.args)

    def _print_Max(self, expr):
        return self._pairwise("fmax", expr.args)

    def _print_logaddexp(self, expr):
        return f"symbp_logaddexp({self._print(expr.args[0])}, {self._print(expr.args[1])})"

    def _print_Piecewise(self, expr):
        if expr.args[-1].cond != sp.true:
            raise SymbpError("activation: a piecewise formula needs a last case that holds everywhere "
                             "to be printed as a CUDA kernel; add an 'otherwise' branch")
        printed = self._print(expr.args[-1].expr)
        for value, condition in reversed(expr.args[:-1]):
            printed = f"(({self._print(condition)}) ? {self.parenthesize(value, PRECEDENCE['Atom'])} : {printed})"
        return printed

    def _print_Relational(self, expr):
        return f"{self.parenthesize(expr.lhs, PRECEDENCE['Relational'])} {expr.rel_op} " \
               f"{self.parenthesize(expr.rhs, PRECEDENCE['Relational'])}"

    def _print_Function(self, expr):
        if isinstance(expr, logaddexp):
            return self._print_logaddexp(expr)
        return super()._print_Function(expr)


@dataclass(frozen=True)
class Kernel:
    """One fused elementwise kernel: its CuPy name, parameter lists and body."""

    name: str
    inputs: tuple[str, ...]  # arrays (broadcast against each other)
    scalars: tuple[str, ...]  # numbers, passed as T
    outputs: tuple[str, ...]
    body: str
    shape: tuple  # the outputs' shape: ints, and None for the batch
    # What the body computes, as SymPy: (symbol, expression) in order, and the symbol each parameter
    # of inputs + scalars holds. For checking a kernel against another evaluation of the same math.
    assignments: tuple = ()
    parameters: tuple = ()
    # True when CuPy allocates the outputs and the call returns them (arrays whose size is known only as the
    # step runs); False when the caller passes arrays of its workspace to write into.
    allocates: bool = False

    @property
    def arguments(self) -> str:
        """The arrays and numbers the kernel is called with, in its parameters' order."""
        given = () if self.allocates else self.outputs
        return ", ".join(self.inputs + tuple(f"T({name})" for name in self.scalars) + given)

    @property
    def widest_line(self) -> int:
        return max(len(line) for line in self.body.splitlines())

    @property
    def in_params(self) -> str:
        return ", ".join(f"T {name}" for name in self.inputs + self.scalars)

    @property
    def out_params(self) -> str:
        return ", ".join(f"T {name}" for name in self.outputs)


@dataclass(frozen=True)
class Reduction:
    """target = the sum or maximum along each sample's row of argument (an array of the step), or with
    axis 0 the sum down each unit's column, over the batch's samples."""

    target: str
    kind: str  # "sum" or "max"
    argument: str
    axis: int = 1

    @property
    def code(self) -> str:
        kept = ", keepdims=True" if self.axis == 1 else ""
        return f"{self.target} = cp.{self.kind}({self.argument}, axis={self.axis}{kept})"


def broadcast(shapes) -> tuple:
    """NumPy's broadcast of shapes whose entries are ints or None (the batch, which wins over any size)."""
    rank = max(len(shape) for shape in shapes)
    padded = [(1,) * (rank - len(shape)) + tuple(shape) for shape in shapes]
    return tuple(None if None in sizes else max(sizes) for sizes in zip(*padded))


def plan(name: str, assignments: list[tuple[sp.Symbol, sp.Expr]], arrays: dict, scalars: dict,
         wanted: list[sp.Symbol], shapes: dict, allocates: bool = False, prefix: str = "") -> list:
    """The kernels and reductions that compute `wanted` from `assignments`, in order.

    assignments: (symbol, scalar expression) in dependency order; arrays and scalars: the symbols
    that are the step's arrays and numbers, each with the name it has in code. A reduction splits the
    work: what it reads is written out by the kernel before it, and its result enters the next one.
    Every symbol assigned and read by a later kernel or reduction (or wanted) becomes an output.
    shapes maps each array's name to its shape (None for the batch); the shapes of the arrays the
    plan writes are added to it. allocates: the kernels return their outputs (see ``Kernel.allocates``).
    prefix: put before the names of the plan's own temporaries (u0, r1), which must not meet another plan's.
    """
    counter = iter(range(10**6))
    flat: list[tuple[sp.Symbol, object]] = []

    def without_reductions(expr, target=None):
        """expr with each row-wise reduction replaced by a symbol that a Reduction assigns (target itself
        when expr is nothing but the reduction)."""
        for node in sp.postorder_traversal(expr):
            if isinstance(node, (RowSum, RowMax, SampleSum)):
                (argument,) = node.args
                argument = without_reductions(argument)
                if not (isinstance(argument, sp.Symbol) and (argument in arrays or argument in assigned)):
                    held = sp.Symbol(f"{prefix}u{next(counter)}", real=True)
                    flat.append((held, argument))
                    assigned.add(held)
                    argument = held
                reduced = target if node == expr and target is not None \
                    else sp.Symbol(f"{prefix}r{next(counter)}", real=True)
                kind = "max" if isinstance(node, RowMax) else "sum"
                flat.append((reduced, ("reduce", kind, argument, 0 if isinstance(node, SampleSum) else 1)))
                assigned.add(reduced)
                return without_reductions(expr.xreplace({node: reduced}))
        return expr

    assigned: set[sp.Symbol] = set()
    for target, expr in assignments:
        expr = without_reductions(expr, target)
        if expr != target:
            flat.append((target, expr))
        assigned.add(target)

    def reads(item):
        value = item[1]
        return {value[2]} if isinstance(value, tuple) else value.free_symbols

    # Split at reductions into runs of elementwise assignments.
    groups: list = []
    for item in flat:
        if isinstance(item[1], tuple):
            groups.append(item)
        elif groups and isinstance(groups[-1], list):
            groups[-1].append(item)
        else:
            groups.append([item])

    names = {**arrays, **scalars}
    stages = []
    for position, group in enumerate(groups):
        if isinstance(group, tuple):
            target, (_, kind, argument, axis) = group
            names[target] = str(target)
            stages.append(Reduction(str(target), kind, names[argument], axis))
            reduced_shape = shapes[names[argument]]
            shapes[str(target)] = reduced_shape[:-1] + (1,) if axis == 1 else reduced_shape[1:]
            continue
        later = set(wanted)
        for other in groups[position + 1:]:
            for item in other if isinstance(other, list) else [other]:
                later |= reads(item)
        defined = {target for target, _ in group}
        read = set().union(*(expr.free_symbols for _, expr in group)) - defined
        unknown = read - set(arrays) - set(scalars) - set(names)
        if unknown:
            raise ValueError(f"kernel {name}: no value for {sorted(map(str, unknown))}")
        outputs = [target for target, _ in group if target in later]
        local_names = {target: str(target) for target, _ in group}
        printer = CudaKernelPrinter({**names, **local_names})
        lines = []
        for target, expr in group:
            code = printer.doprint(expr)
            # A condition shared by several branches (cse keeps it once) is a bool, not a number.
            local_type = "bool" if isinstance(expr, (sp.core.relational.Relational, sp.logic.boolalg.BooleanFunction)) \
                else "T"
            lines.append(f"{local_names[target]} = {code};" if target in outputs
                         else f"{local_type} {local_names[target]} = {code};")
        for target in outputs:
            names[target] = str(target)
        by_name = {names[s]: s for s in read}
        inputs = tuple(sorted(names[s] for s in read if s not in scalars))
        used_scalars = tuple(sorted(scalars[s] for s in read if s in scalars))
        shape = broadcast([shapes[array] for array in inputs])
        for target in outputs:
            shapes[str(target)] = shape
        kernel_name = f"{name}_{len([s for s in stages if isinstance(s, Kernel)]) + 1}"
        stages.append(Kernel(kernel_name, inputs, used_scalars, tuple(str(t) for t in outputs), "\n".join(lines),
                             shape, tuple(group), tuple(by_name[name] for name in inputs + used_scalars), allocates))
    return stages
