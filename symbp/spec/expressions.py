"""Custom activations and losses, read without running them.

A custom expression is text such as ``x / (1 + abs(x))``. Python's parser turns it into a syntax tree
(``ast.parse`` only reads), and the walker below builds SymPy objects from that tree node by node:
numbers, the allowed variable names, ``+ - * / **`` and a short list of functions. Any other node is
refused with a one-line ``SpecError``. Nothing in the text is evaluated, and SymPy's own parsers
(``sympify``, ``parse_expr``), which do evaluate Python, are never given it.

After building, every subexpression is evaluated in floating point at a few sample points, so an
expression that is undefined there or whose values overflow is refused before SymPy derives anything
from it (and before any later step could spend unbounded time on enormous intermediate numbers).
"""

from __future__ import annotations

import ast
import math

import numpy as np
import sympy as sp
from sympy.logic.boolalg import ITE

from symbp.errors import SpecError

MAX_LENGTH = 500
MAX_DEPTH = 30
# Functions inside functions: the derivative of each level multiplies the work of simplifying it.
MAX_FUNCTION_DEPTH = 6
MAX_EXPONENT = 10
MAX_LITERAL = 1e6
MAX_CONSTANT = 1e12


def _piecewise(*branches: tuple[sp.Expr, sp.Basic]) -> sp.Expr:
    """A Piecewise whose conditions are plain and/or/not of comparisons.

    A comparison of a Piecewise (as in min(max(x, 0), 6)) makes SymPy write an if-then-else condition;
    as and/or it prints as NumPy's logical functions and is evaluated by the screening below.
    """
    return sp.Piecewise(*branches).replace(lambda node: isinstance(node, ITE), sp.simplify_logic)


def _larger(first: sp.Expr, second: sp.Expr) -> sp.Expr:
    # A Piecewise rather than SymPy's Max: its derivative is again a Piecewise, which prints as np.where.
    return _piecewise((first, first >= second), (second, True))


def _smaller(first: sp.Expr, second: sp.Expr) -> sp.Expr:
    return _piecewise((first, first <= second), (second, True))


# name -> (number of arguments, SymPy constructor). Every one prints as a NumPy function.
FUNCTIONS = {
    "exp": (1, sp.exp),
    "log": (1, sp.log),
    "sqrt": (1, sp.sqrt),
    "abs": (1, sp.Abs),
    "tanh": (1, sp.tanh),
    "sinh": (1, sp.sinh),
    "cosh": (1, sp.cosh),
    "sin": (1, sp.sin),
    "cos": (1, sp.cos),
    "atan": (1, sp.atan),
    "max": (2, _larger),
    "min": (2, _smaller),
    "where": (3, None),  # where(condition, then, otherwise); built by _where
}
CONSTANTS = {"pi": sp.pi, "e": sp.E}

_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_COMPARISONS = {ast.Lt: sp.StrictLessThan, ast.LtE: sp.LessThan, ast.Gt: sp.StrictGreaterThan,
                ast.GtE: sp.GreaterThan}

# What to say about syntax that is valid Python but has no place in a formula.
_REFUSED = {
    ast.Attribute: "attribute access ('.name') is not allowed",
    ast.Subscript: "indexing ('[...]') is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.NamedExpr: "':=' is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.IfExp: "'... if ... else ...' is not allowed; write where(condition, then, otherwise)",
    ast.BoolOp: "'and'/'or' are not allowed; nest where(...) instead",
    ast.Starred: "'*' unpacking is not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.List: "lists are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
    ast.Slice: "slices are not allowed",
}


def _allowed_summary(variables: dict[str, sp.Symbol]) -> str:
    names = " or ".join(variables)
    return f"use {names}, numbers, + - * / ** and {', '.join(FUNCTIONS)}"


class _Builder:
    """Walks a syntax tree, building SymPy objects and refusing everything else."""

    def __init__(self, variables: dict[str, sp.Symbol], field: str):
        self.variables = variables
        self.field = field
        self.names_used: set[str] = set()
        self.calls_open = 0  # function calls around the node being built

    def fail(self, message: str) -> SpecError:
        return SpecError(self.field, message)

    def build(self, node: ast.AST, depth: int = 0) -> sp.Expr:
        if depth > MAX_DEPTH:
            raise self.fail(f"is nested more than {MAX_DEPTH} levels deep; write a simpler expression")
        if isinstance(node, ast.Constant):
            result = self.number(node.value)
        elif isinstance(node, ast.Name):
            result = self.name(node.id)
        elif isinstance(node, ast.BinOp):
            result = self.binary(node, depth)
        elif isinstance(node, ast.UnaryOp):
            result = self.unary(node, depth)
        elif isinstance(node, ast.Call):
            result = self.call(node, depth)
        elif isinstance(node, ast.Compare):
            raise self.fail("comparisons are only allowed as the first argument of where(condition, then, otherwise)")
        else:
            refusal = _REFUSED.get(type(node), f"'{type(node).__name__}' syntax is not allowed")
            raise self.fail(refusal if ";" in refusal else f"{refusal}; {_allowed_summary(self.variables)}")
        return self.bounded(result)

    def number(self, value) -> sp.Expr:
        if isinstance(value, bool) or value is None or value is Ellipsis:
            raise self.fail(f"{value!r} is not a number; {_allowed_summary(self.variables)}")
        if isinstance(value, (str, bytes)):
            raise self.fail(f"text in quotes is not allowed; {_allowed_summary(self.variables)}")
        if isinstance(value, complex):
            raise self.fail("complex numbers are not allowed; use real numbers")
        # An int is compared as an int: converting a 400-digit literal to float would overflow.
        if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_LITERAL:
            raise self.fail(f"the number {_short_number(value)} is out of range; use numbers up to {MAX_LITERAL:g}")
        return sp.Integer(value) if isinstance(value, int) else sp.Float(value)

    def name(self, identifier: str) -> sp.Expr:
        if identifier in self.variables:
            self.names_used.add(identifier)
            return self.variables[identifier]
        if identifier in CONSTANTS:
            return CONSTANTS[identifier]
        if identifier in FUNCTIONS:
            raise self.fail(f"'{identifier}' is a function; call it, e.g. {identifier}(...)")
        shown = identifier if len(identifier) <= 30 else identifier[:27] + "..."
        raise self.fail(f"unknown name '{shown}'; {_allowed_summary(self.variables)}")

    def binary(self, node: ast.BinOp, depth: int) -> sp.Expr:
        operator = _OPERATORS.get(type(node.op))
        if operator is None:
            raise self.fail(f"the operator '{_operator_text(node.op)}' is not allowed; use + - * / **")
        left = self.build(node.left, depth + 1)
        right = self.build(node.right, depth + 1)
        if operator == "+":
            return left + right
        if operator == "-":
            return left - right
        if operator == "*":
            return left * right
        if operator == "/":
            if right == 0:
                raise self.fail("divides by zero")
            return left / right
        return self.power(left, right)

    def power(self, base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
        if base == sp.E:
            return sp.exp(exponent)
        if exponent.free_symbols:
            raise self.fail("an exponent must be a number; for a variable power write exp(p * log(b))")
        value = _real_value(exponent)
        if value is None or abs(value) > MAX_EXPONENT:
            raise self.fail(f"the exponent {_short_number(value)} is out of range; "
                            f"use exponents from -{MAX_EXPONENT} to {MAX_EXPONENT}")
        if base == 0 and value < 0:
            raise self.fail("divides by zero")
        result = sp.Pow(base, exponent)
        # SymPy merges (x**a)**b into x**(a*b); keep the merged exponent in range too.
        if isinstance(result, sp.Pow) and result.exp.is_number:
            merged = _real_value(result.exp)
            if merged is None or abs(merged) > MAX_EXPONENT:
                raise self.fail(f"the combined exponent {_short_number(merged)} is out of range; "
                                f"use exponents from -{MAX_EXPONENT} to {MAX_EXPONENT}")
        return result

    def unary(self, node: ast.UnaryOp, depth: int) -> sp.Expr:
        operand = self.build(node.operand, depth + 1)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise self.fail(f"the operator '{_operator_text(node.op)}' is not allowed; use + - * / **")

    def call(self, node: ast.Call, depth: int) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            if isinstance(node.func, ast.Attribute):
                raise self.fail(f"attribute access ('.name') is not allowed; {_allowed_summary(self.variables)}")
            raise self.fail(f"only the listed functions may be called; {_allowed_summary(self.variables)}")
        function = node.func.id
        if function not in FUNCTIONS:
            shown = function if len(function) <= 30 else function[:27] + "..."
            raise self.fail(f"unknown function '{shown}'; the functions are {', '.join(FUNCTIONS)}")
        if node.keywords:
            raise self.fail(f"{function}() takes no keyword arguments; pass them in order")
        arity, constructor = FUNCTIONS[function]
        if any(isinstance(argument, ast.Starred) for argument in node.args):
            raise self.fail("'*' unpacking is not allowed")
        if len(node.args) != arity:
            raise self.fail(f"{function}() takes {arity} argument{'s' if arity > 1 else ''}, got {len(node.args)}")
        if self.calls_open >= MAX_FUNCTION_DEPTH:
            raise self.fail(f"has functions nested more than {MAX_FUNCTION_DEPTH} deep; "
                            "write a simpler expression")
        self.calls_open += 1
        try:
            if function == "where":
                return self.where(node.args, depth)
            arguments = [self.build(argument, depth + 1) for argument in node.args]
        finally:
            self.calls_open -= 1
        if function == "log" and arguments[0] == 0:
            raise self.fail("log(0) is not a number")
        return constructor(*arguments)

    def where(self, arguments: list[ast.AST], depth: int) -> sp.Expr:
        test, then, otherwise = arguments
        if not isinstance(test, ast.Compare) or len(test.ops) != 1 or type(test.ops[0]) not in _COMPARISONS:
            raise self.fail("where() needs a comparison first, e.g. where(x > 0, x, 0.1 * x), using < <= > >=")
        relation = _COMPARISONS[type(test.ops[0])](
            self.build(test.left, depth + 2), self.build(test.comparators[0], depth + 2)
        )
        return _piecewise((self.build(then, depth + 1), relation), (self.build(otherwise, depth + 1), True))

    def bounded(self, result: sp.Expr) -> sp.Expr:
        """Refuses constants that are not real or that are too large, as soon as they appear."""
        if result.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise self.fail("is not finite (a division by zero or log(0)?)")
        if result.is_number:
            value = _real_value(result)
            if value is None:
                raise self.fail("a constant part is not a finite real number (too large, or sqrt or log of a "
                                "negative number?)")
            if abs(value) > MAX_CONSTANT:
                raise self.fail(f"a constant part is {_short_number(value)}; keep constants below {MAX_CONSTANT:g}")
        return result


def _operator_text(operator: ast.AST) -> str:
    return {
        ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
        ast.LShift: "<<", ast.RShift: ">>", ast.Not: "not", ast.Invert: "~",
    }.get(type(operator), type(operator).__name__)


def _short_number(value) -> str:
    if value is None:
        return "(not a real number)"
    if isinstance(value, int) and abs(value) > 10**15:
        return f"with {len(str(abs(value)))} digits"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _real_value(expr: sp.Expr) -> float | None:
    """A constant's value as a float, or None when it is not a finite real number."""
    try:
        value = complex(sp.N(expr, 15))
    except (TypeError, ValueError, OverflowError):
        return None
    if abs(value.imag) > 1e-12 * (1 + abs(value.real)) or not math.isfinite(value.real):
        return None
    return value.real


# --------------------------------------------------------------------------- parsing


def parse_expression(text, variables: dict[str, sp.Symbol], field: str) -> tuple[sp.Expr, dict[sp.Symbol, str]]:
    """Builds the SymPy expression that ``text`` writes in ``variables``; raises SpecError otherwise.

    Returns the expression and, for each symbol it uses, the name the text calls it by (for messages).
    """
    if not isinstance(text, str):
        raise SpecError(field, f"expected the expression as a string, e.g. \"{_example(variables)}\"")
    normalised = normalise(text)
    if not normalised:
        raise SpecError(field, f"is empty; write a formula, e.g. \"{_example(variables)}\"")
    if len(normalised) > MAX_LENGTH:
        raise SpecError(field, f"is {len(normalised)} characters long; use at most {MAX_LENGTH}")
    for character, what in (("\\", "backslashes are"), ("#", "comments ('#') are"), (";", "';' is")):
        if character in normalised:
            raise SpecError(field, f"{what} not allowed in an expression")
    if not normalised.isprintable():
        raise SpecError(field, "contains control characters; write the formula on plain lines")
    try:
        tree = ast.parse(normalised, mode="eval")
    except SyntaxError as error:
        reason = (error.msg or "invalid syntax").split("(")[0].strip()
        column = f" at column {error.offset}" if error.offset else ""
        raise SpecError(field, f"is not a formula ({reason}{column}); {_allowed_summary(variables)}") from None
    except (ValueError, RecursionError, MemoryError):
        raise SpecError(field, f"is not a formula; {_allowed_summary(variables)}") from None
    builder = _Builder(variables, field)
    expression = builder.build(tree.body)
    spellings = [name for name in variables if name in builder.names_used]
    if len({variables[name] for name in spellings}) < len(spellings):
        raise SpecError(field, f"uses both {' and '.join(spellings)} for the same input; write one of them")
    return expression, {variables[name]: name for name in spellings}


def normalise(text: str) -> str:
    """The text on one line with single spaces: the form stored in the spec and parsed."""
    return " ".join(text.split())


def _example(variables: dict[str, sp.Symbol]) -> str:
    first = next(iter(variables))
    return f"{first} / (1 + abs({first}))" if len(variables) <= 2 and first in ("x", "z") else "(yhat - y)**2"


# --------------------------------------------------------------------------- numeric screening

_NUMPY_FUNCTIONS = {
    sp.exp: np.exp, sp.log: np.log, sp.Abs: np.abs, sp.tanh: np.tanh, sp.sinh: np.sinh, sp.cosh: np.cosh,
    sp.sin: np.sin, sp.cos: np.cos, sp.atan: np.arctan, sp.sign: np.sign,
}
_NUMPY_RELATIONS = {
    sp.StrictLessThan: np.less, sp.LessThan: np.less_equal, sp.StrictGreaterThan: np.greater,
    sp.GreaterThan: np.greater_equal,
}


class NotFinite(Exception):
    """A subexpression has no finite real value at a sample point."""

    def __init__(self, part: sp.Expr):
        super().__init__(str(part))
        self.part = part


def evaluate_everywhere(expr: sp.Expr, point: dict[sp.Symbol, float]) -> float:
    """The value of ``expr`` in float64, raising NotFinite if any subexpression on the way is not finite.

    Only the node kinds that custom expressions and their SymPy derivatives contain are known here;
    any other kind raises TypeError.
    """
    with np.errstate(all="ignore"):
        return float(_evaluate(expr, point))


def _evaluate(expr: sp.Expr, point: dict[sp.Symbol, float]) -> np.float64:
    if expr in point:
        value = np.float64(point[expr])
    elif expr.is_Number or isinstance(expr, sp.NumberSymbol):
        value = np.float64(float(expr))
    elif expr.is_Add:
        value = np.sum([_evaluate(arg, point) for arg in expr.args])
    elif expr.is_Mul:
        value = np.prod([_evaluate(arg, point) for arg in expr.args])
    elif expr.is_Pow:
        value = np.power(_evaluate(expr.base, point), _evaluate(expr.exp, point))
    elif expr.func in _NUMPY_FUNCTIONS:
        value = _NUMPY_FUNCTIONS[expr.func](_evaluate(expr.args[0], point))
    elif isinstance(expr, sp.Piecewise):
        for branch, condition in expr.args:
            if condition == sp.true or _holds(condition, point):
                value = _evaluate(branch, point)
                break
        else:
            raise NotFinite(expr)
    else:
        raise TypeError(f"cannot evaluate {type(expr).__name__}")
    if not np.isfinite(value):
        raise NotFinite(expr)
    return value


def _holds(condition: sp.Basic, point: dict[sp.Symbol, float]) -> bool:
    if condition == sp.false:
        return False
    if condition == sp.true:
        return True
    if isinstance(condition, sp.And):
        return all(_holds(part, point) for part in condition.args)
    if isinstance(condition, sp.Or):
        return any(_holds(part, point) for part in condition.args)
    if isinstance(condition, sp.Not):
        return not _holds(condition.args[0], point)
    relation = _NUMPY_RELATIONS.get(type(condition))
    if relation is None:
        raise TypeError(f"cannot evaluate the condition {condition}")
    return bool(relation(_evaluate(condition.lhs, point), _evaluate(condition.rhs, point)))
