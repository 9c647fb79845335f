"""What SymPy derives from one registry entry: derivatives, output forms and error terms.

Everything is written per sample in index form over a layer's units: ``z[j]`` is the
pre-activation of unit ``j``, ``a[j]`` its activation, ``g[j]`` the gradient of the loss with
respect to ``a[j]``, ``y[j]`` the target; ``Sum(..., (k, 0, K - 1))`` runs over the layer's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

import sympy as sp

from symbp.registry.rules import (
    Activation,
    K,
    Loss,
    activation_named,
    k,
    loss_named,
    m,
    y,
    y_vec,
    yhat,
    z,
    z_vec,
)

j = sp.Symbol("j", integer=True, nonnegative=True)
a = sp.Symbol("a", real=True)
a_vec = sp.IndexedBase("a", real=True)
g_vec = sp.IndexedBase("g", real=True)

_SAMPLE_POINTS = (-3.1, -1.7, -0.6, -0.05, 0.05, 0.45, 1.3, 2.9)


@dataclass(frozen=True)
class ActivationCalculus:
    """An activation with its parameters fixed, and what SymPy derived from it."""

    activation: Activation
    forward: sp.Expr  # in z (elementwise) or in z[k] (row-wise)
    derivative: sp.Expr  # elementwise: phi'(z); row-wise: d a[k] / d z[j], in terms of a
    derivative_of_output: sp.Expr | None  # elementwise: phi' written in the output a, if SymPy found it
    vjp: sp.Expr  # d loss / d z[j] in terms of g, and a (or z where no output form exists)
    # The forward value as generated code evaluates it: the registry's stable form where it has one.
    numeric_forward: sp.Expr

    @property
    def library_forward(self) -> sp.Expr:
        """The forward value as the array-API module evaluates it: one call of a function that array libraries
        have (the registry's library form), else numeric_forward. Library forms have no parameters."""
        library = self.activation.library_expr
        return self.numeric_forward if library is None else library

    @property
    def name(self) -> str:
        return self.activation.name

    @property
    def short_name(self) -> str:
        return self.activation.short_name

    @property
    def rowwise(self) -> bool:
        return self.activation.rowwise

    @property
    def needs_preactivation(self) -> bool:
        return self.vjp.has(z_vec)


@dataclass(frozen=True)
class OutputCalculus:
    """The loss at the output layer: its derivative and the output layer's error term."""

    loss: Loss
    activation: ActivationCalculus
    loss_derivative: sp.Expr  # d l / d yhat, in yhat and y
    delta: sp.Expr  # d l / d z[j] for one sample, in a[j], y[j] (and z[j] where needed)
    facts_used: tuple[tuple[sp.Expr, sp.Expr], ...]


def _is_finite_number(value: sp.Expr) -> bool:
    try:
        number = complex(value)
    except (TypeError, ValueError):
        return False
    return abs(number.imag) < 1e-12 and math.isfinite(number.real)


def _agrees(candidate: sp.Expr, forward: sp.Expr, derivative: sp.Expr, params: dict) -> bool:
    """Checks candidate(phi(z)) == phi'(z) at sample points on both sides of zero."""
    for point in _SAMPLE_POINTS:
        at = {z: sp.Float(point), **params}
        output = forward.subs(at)
        got = candidate.subs(params).subs(a, output)
        want = derivative.subs(at)
        if not (_is_finite_number(got) and _is_finite_number(want)):
            return False
        if abs(complex(got) - complex(want)) > 1e-9 * (1 + abs(complex(want))):
            return False
    return True


def _output_form_candidates(forward: sp.Expr, derivative: sp.Expr, thorough: bool):
    """phi'(z) rewritten in a by each route in turn, simplest first; a generator, so that the costly
    routes (solving for z) run only when the simpler ones gave nothing that agrees."""
    if not derivative.has(z):
        yield derivative
    if thorough:
        yield sp.simplify(derivative.subs(forward, a))
        try:
            inverses = sp.solve(sp.Eq(a, forward), z)
        except (NotImplementedError, TypeError, ValueError):
            inverses = []
        for inverse in inverses:
            try:
                yield sp.simplify(derivative.subs(z, inverse))
            except (TypeError, ValueError):
                continue
    # Piecewise-linear units keep the sign of z in their output (relu, leaky relu).
    yield derivative.subs(z, a)


def _output_form(forward: sp.Expr, derivative: sp.Expr, params: dict, thorough: bool = True) -> sp.Expr | None:
    """Rewrites phi'(z) in terms of a = phi(z), trying SymPy's routes in order of simplicity.

    Without ``thorough`` only the cheap routes are tried: solving and simplifying an arbitrary
    user-written formula can take SymPy unbounded time, and phi'(z) in z serves just as well.
    """
    for candidate in _output_form_candidates(forward, derivative, thorough):
        if candidate.has(z) or candidate.has(sp.nan):
            continue
        if _agrees(candidate, forward, derivative, params):
            return candidate
    return None


def _in_range_branch(expr: sp.Expr) -> sp.Expr:
    """SymPy guards results by 0 <= j < K; the derivation only needs the in-range branch."""
    if isinstance(expr, sp.Piecewise):
        return expr.args[0].expr
    return expr


def _elementwise(activation: Activation, params: dict) -> ActivationCalculus:
    forward = activation.expr.subs(params)
    derivative = sp.diff(forward, z)
    in_output = _output_form(forward, derivative, params, thorough=not activation.source)
    # The chain rule through an elementwise map, derived for a generic phi: only unit j feeds z[j].
    phi = sp.Function("phi")
    generic = _in_range_branch(sp.Sum(g_vec[k] * sp.diff(phi(z_vec[k]), z_vec[j]), (k, 0, K - 1)).doit())
    if in_output is not None:
        local = in_output.subs(a, a_vec[j])
    else:
        local = derivative.subs(z, z_vec[j])
    vjp = generic.replace(
        lambda e: isinstance(e, sp.Derivative) and e.expr.func == phi,
        lambda e: local,
    )
    return ActivationCalculus(activation, forward, derivative, in_output, vjp, _numeric_forward(activation, params))


def _numeric_forward(activation: Activation, params: dict) -> sp.Expr:
    stable = activation.stable_expr
    return activation.expr.subs(params) if stable is None else stable.subs(params)


def _rowwise(activation: Activation, params: dict) -> ActivationCalculus:
    forward = activation.expr.subs(params)
    normaliser = sp.Symbol("S", positive=True)
    row_sum = sp.Sum(sp.exp(z_vec[m]), (m, 0, K - 1))
    jacobian = sp.diff(forward, z_vec[j])
    vjp = _in_range_branch(sp.Sum(g_vec[k] * jacobian, (k, 0, K - 1)).doit())

    def in_outputs(expr: sp.Expr) -> sp.Expr:
        # exp(z[i]) = a[i] * S, found by solving the forward rule for exp(z[k]).
        (solution,) = sp.solve(sp.Eq(a_vec[k], forward.subs(row_sum, normaliser)), sp.exp(z_vec[k]))
        expr = expr.subs(row_sum, normaliser)
        expr = expr.replace(
            lambda e: isinstance(e, sp.exp) and isinstance(e.args[0], sp.Indexed),
            lambda e: solution.subs(k, e.args[0].indices[0]),
        )
        expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda e: _pull_constants(e))
        return sp.factor_terms(sp.simplify(expr))

    jacobian = jacobian.replace(lambda e: isinstance(e, sp.Piecewise), _in_range_branch)
    return ActivationCalculus(
        activation, forward, in_outputs(jacobian), None, in_outputs(vjp), _numeric_forward(activation, params)
    )


def _pull_constants(total: sp.Sum) -> sp.Expr:
    index = total.limits[0][0]
    constant, rest = total.function.as_independent(index, as_Add=False)
    return constant * sp.Sum(rest, *total.limits)


@cache
def activation_calculus(name: str, params: tuple[tuple[str, float], ...] = ()) -> ActivationCalculus:
    activation = activation_named(name)
    values = {symbol: sp.Float(value) for symbol, value in activation.params.items()}
    for key, value in params:
        for symbol in activation.params:
            if symbol.name == key:
                values[symbol] = sp.Float(value)
    if activation.rowwise:
        return _rowwise(activation, values)
    return _elementwise(activation, values)


def _apply_facts(expr: sp.Expr, facts) -> tuple[sp.Expr, tuple]:
    used = []
    for lhs, rhs in facts:
        def matches(e, lhs=lhs):
            if not isinstance(e, sp.Sum) or not isinstance(lhs, sp.Sum):
                return False
            index = e.limits[0][0]
            renamed = e.function.subs(index, lhs.limits[0][0])
            return renamed == lhs.function and e.limits[0][1:] == lhs.limits[0][1:]

        replaced = expr.replace(matches, lambda e, rhs=rhs: rhs)
        if replaced != expr:
            used.append((lhs, rhs))
            expr = replaced
    return expr, tuple(used)


def _simplest(*candidates: sp.Expr) -> sp.Expr:
    return min(candidates, key=lambda e: (sp.count_ops(e), len(str(e))))


def _as_derived(expr: sp.Expr) -> sp.Expr:
    return expr


@cache
def output_calculus(loss_name: str, activation_name: str, params: tuple = ()) -> OutputCalculus:
    loss = loss_named(loss_name)
    activation = activation_calculus(activation_name, params)
    # Simplifying a user-written formula can take SymPy unbounded time, so custom entries keep the
    # derivative as SymPy first writes it; it is just as correct, only longer.
    custom = bool(loss.source or activation.activation.source)
    tidy = _as_derived if custom else sp.simplify
    derivative = sp.diff(loss.expr, yhat)
    loss_derivative = derivative if loss.source else _simplest(sp.factor(derivative), sp.simplify(derivative))
    chained = activation.vjp.replace(
        lambda e: isinstance(e, sp.Indexed) and e.base == g_vec,
        lambda e: loss_derivative.subs({yhat: a_vec[e.indices[0]], y: y_vec[e.indices[0]]}),
    )
    chained = chained.replace(
        lambda e: isinstance(e, sp.Sum),
        lambda e: _pull_constants(sp.Sum(tidy(e.function), *e.limits)),
    )
    chained, used = _apply_facts(chained, loss.target_facts)
    if custom:
        return OutputCalculus(loss, activation, loss_derivative, chained, used)
    simplified, used_after = _apply_facts(sp.simplify(chained), loss.target_facts)
    delta = _simplest(chained, simplified, sp.factor(simplified))
    return OutputCalculus(loss, activation, loss_derivative, delta, used or used_after)
