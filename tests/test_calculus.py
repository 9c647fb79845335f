"""What SymPy derives from the registry: output forms, error terms, and the layer rules."""

import numpy as np
import pytest
import sympy as sp

from symbp.registry.calculus import a, a_vec, activation_calculus, g_vec, j, output_calculus
from symbp.registry.rules import ACTIVATIONS, K, k, y_vec, z
from symbp.symbolic.network import build_network

ELEMENTWISE = [name for name, act in ACTIVATIONS.items() if not act.rowwise]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("sigmoid", a * (1 - a)), ("tanh", 1 - a**2), ("exponential", a), ("linear", sp.Integer(1)),
     ("softplus", 1 - sp.exp(-a))],
)
def test_derivative_is_rewritten_through_the_output(name, expected):
    calculus = activation_calculus(name)
    assert sp.simplify(calculus.derivative_of_output - expected) == 0


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_output_form_agrees_with_the_derivative(name):
    calculus = activation_calculus(name)
    form = calculus.derivative_of_output
    assert form is not None and not form.has(z)
    for point in np.linspace(-4, 4, 17):
        if abs(point) < 1e-9:
            continue
        output = calculus.forward.subs(z, point)
        assert float(form.subs(a, output)) == pytest.approx(float(calculus.derivative.subs(z, point)), rel=1e-12)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_elementwise_vjp_multiplies_by_the_local_derivative(name):
    calculus = activation_calculus(name)
    local = calculus.derivative_of_output.subs(a, a_vec[j])
    assert sp.simplify(calculus.vjp - g_vec[j] * local) == 0


def test_softmax_vjp_is_the_jacobian_product():
    vjp = activation_calculus("softmax").vjp
    expected = a_vec[j] * (g_vec[j] - sp.Sum(a_vec[k] * g_vec[k], (k, 0, K - 1)))
    assert sp.simplify(vjp - expected) == 0


@pytest.mark.parametrize(("loss", "activation"), [("cross_entropy", "softmax"), ("binary_cross_entropy", "sigmoid")])
def test_matching_loss_and_output_fuse_to_prediction_minus_target(loss, activation):
    assert sp.simplify(output_calculus(loss, activation).delta - (a_vec[j] - y_vec[j])) == 0


def test_cross_entropy_uses_that_targets_sum_to_one():
    assert output_calculus("cross_entropy", "softmax").facts_used


def test_squared_error_through_exponential():
    delta = output_calculus("squared_error", "exponential").delta
    assert sp.simplify(delta - 2 * (a_vec[j] - y_vec[j]) * a_vec[j]) == 0


def test_layer_rules_come_from_matrix_calculus():
    network = build_network({"name": "n", "inputs": 3, "layers": [{"units": 2, "activation": "sigmoid"},
                                                                 {"units": 1, "activation": "linear"}]})
    first, second = network.layers
    assert second.weight_gradient == first.output.T * second.delta
    assert second.input_gradient == second.delta * second.weight.T
    assert first.weight_gradient == network.data.T * first.delta
    assert second.bias_gradient.shape == (1, 1)


def test_is_zero_decides_identities_exactly():
    from symbp.derivation.explicit import is_zero

    w, x = sp.IndexedBase("w", real=True), sp.IndexedBase("x", real=True)
    a, b = w[1, 1] * x[1], w[1, 2] * x[2]
    assert is_zero((a + b) ** 3 - sp.expand((a + b) ** 3))
    assert is_zero((a**2 - b**2) / (a - b) - a - b)
    assert not is_zero((a + b) ** 2 - a**2 - b**2)
    # Equal only where |a| > 1, which random points nearly always are: branches are checked apart.
    huber = sp.Piecewise((a, sp.Abs(a) <= 1), (sp.sign(a), True))
    assert not is_zero(huber - sp.sign(a))
    assert is_zero(sp.Piecewise((a, a > 0), (0, True)) - sp.Max(a, 0))
    assert is_zero(sp.exp(a + b) - sp.exp(a) * sp.exp(b))
    m = sp.Symbol("m", integer=True)
    # A sum's bound variable is not a point's coordinate.
    assert not is_zero(sp.Sum(w[1, m] ** 2, (m, 1, 2)) - w[1, 1] ** 2)


def test_independent_verdict_proves_zero_with_opaque_applications():
    from symbp.derivation.identities import independent_verdict

    w, x = sp.IndexedBase("w", real=True), sp.IndexedBase("x", real=True)
    f, df = sp.Function("f", real=True), sp.Function("df", real=True)
    z = w[1, 1] * x[1] + w[1, 2] * x[2]
    # Zero whatever f and f' are: the same application is the same unknown wherever it recurs.
    assert independent_verdict(df(z) * w[1, 1] * (f(z) - 1) + df(z) * w[1, 1] * (1 - f(z))) is True
    assert independent_verdict(sp.Abs(z) / (1 + sp.Abs(z)) ** 2 - sp.Abs(z) * (1 + sp.Abs(z)) ** -2) is True
    assert independent_verdict((z**2 - x[1] ** 2) / (z - x[1]) - z - x[1]) is True
    # Nonzero with opaque parts: not proven zero, and not called nonzero either (the parts may be related).
    assert independent_verdict(df(z) * f(z) - df(z)) is None
    assert independent_verdict(sp.tanh(z) ** 2 + 1 / sp.cosh(z) ** 2 - 1) is None
    # Without applications a nonzero value settles it.
    assert independent_verdict((z + 1) ** 2 - z**2 - 1) is False
    # A float makes the arithmetic inexact: no verdict.
    assert independent_verdict((sp.Float(0.5) + z) ** 2 - z**2 - z - sp.Rational(1, 4)) is None


def test_is_zero_with_opaque_applications():
    from symbp.derivation.explicit import is_zero

    w, x = sp.IndexedBase("w", real=True), sp.IndexedBase("x", real=True)
    f = sp.Function("f", real=True)
    z = w[1, 1] * x[1] + w[1, 2] * x[2]
    softsign = z / (1 + sp.Abs(z))
    assert is_zero(sp.diff(softsign, w[1, 1]) - x[1] * (1 + sp.Abs(z) - z * sp.sign(z)) / (1 + sp.Abs(z)) ** 2)
    assert not is_zero(f(z) * (1 - f(z)) - f(z) * (f(z) - 1))
    # Zero only through what exp is: the opaque test leaves it to SymPy, which proves it.
    assert is_zero(sp.exp(z + x[1]) - sp.exp(z) * sp.exp(x[1]))
    assert not is_zero(sp.tanh(z) - sp.sinh(z))


def test_rewrites_that_visit_each_subexpression_once_agree_with_sympy():
    from symbp.derivation.rewriting import replace, xreplace

    w, a = sp.IndexedBase("w", real=True), sp.IndexedBase("a", real=True)
    f = sp.Function("f", real=True)
    s, m = sp.Symbol("s"), sp.Symbol("m", integer=True)
    inner = (a[1] - 1) * w[1, 1] * f(a[2] * (1 - a[2]))
    branches = sp.Piecewise((inner * (s - a[1]) + inner**2 * w[2, 1], a[1] > 0), (-inner, True))
    expr = branches + sp.Sum(w[1, m] * s, (m, 1, 3))
    rule = {a[1]: 1 - a[2], s: w[1, 2] - a[2]}
    assert xreplace(expr, rule) == expr.xreplace(rule)
    assert xreplace(expr, rule) != expr

    def flip(product):
        return sp.Mul(*(-factor if factor.is_Add else factor for factor in product.args))

    assert replace(expr, lambda node: node.is_Mul, flip) == expr.replace(lambda node: node.is_Mul, flip)
    # A node rebuilt equal to an argument that was itself rewritten is left alone, as SymPy leaves it.
    double = sp.Mul(2, s, evaluate=False) + s
    assert replace(double, lambda node: node.is_Symbol, lambda node: 2 * node) == double.replace(
        lambda node: node.is_Symbol, lambda node: 2 * node)
