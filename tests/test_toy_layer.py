"""A layer kind defined only in the test folder (tests/toy_layer.py) goes through symbp unchanged: its
gradients derived by SymPy, a NumPy trainer generated for it and trained, its gradients checked against
central differences and SymPy's expanded loss, its derivation built, verified on numbers and typeset."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import sympy as sp
import toy_layer
from typesetting_catalogue import inspect_tex

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.checks.verify import verify
from symbp.derivation.backprop import derive
from symbp.render.code.numpy_module import generate_module
from symbp.render.latex.document import derivation_document
from symbp.symbolic import quantities as q
from symbp.symbolic.expanded import expand_network
from symbp.symbolic.layers import LAYER_KINDS
from symbp.symbolic.network import network_of


@pytest.fixture(scope="module")
def spec():
    toy_layer.register()
    yield toy_layer.toy_spec()
    LAYER_KINDS.pop(toy_layer.KIND, None)


@pytest.fixture(scope="module")
def module(spec):
    return load_module_from_source(generate_module(spec), spec.name)


def test_the_network_takes_the_registered_kind_and_sympy_derives_its_pullbacks(spec):
    network = network_of(spec)
    scale = network.layer(2)
    assert scale.kind == toy_layer.KIND
    assert [p.name for p in network.parameters] == ["W1", "b1", "s2", "W3", "b3"]
    # dL/ds = 1^T (A1 o delta2) and dL/dA1 = (1 s) o delta2, from SymPy's matrix calculus on Z = A o 1 s.
    (factors,) = scale.parameters
    two_samples = {sp.Symbol("N", integer=True, positive=True): 2}
    point = {sp.MatrixSymbol(scale.inputs.name, 2, 3): sp.Matrix([[1, 2, 3], [4, 5, 6]]),
             sp.MatrixSymbol(scale.delta.name, 2, 3): sp.Matrix([[1, 0, 2], [3, 1, 1]]),
             factors.symbol: sp.Matrix([[2, 3, 5]])}

    def value(expr):
        return sp.Matrix(expr.subs(two_samples).subs(point).doit())

    assert value(scale.gradient(factors)) == sp.Matrix([[1 * 1 + 4 * 3, 2 * 0 + 5 * 1, 3 * 2 + 6 * 1]])
    assert value(scale.input_gradient) == sp.Matrix([[2, 0, 10], [6, 3, 5]])


def test_the_generated_module_computes_the_toy_layer(spec, module):
    rng = np.random.default_rng(3)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X = rng.normal(size=(5, 3))
    hidden = np.tanh(X @ params["W1"] + params["b1"])
    scaled = 1 / (1 + np.exp(-(hidden * params["s2"])))
    expected = scaled @ params["W3"] + params["b3"]
    assert list(module.PARAMS) == ["W1", "b1", "s2", "W3", "b3"]
    np.testing.assert_allclose(module.forward(params, X), expected, rtol=1e-12)


def test_its_gradient_agrees_with_central_differences_and_sympys_expanded_loss(spec):
    report = check_gradients(spec, expanded=True)
    assert report.passed, report
    assert all(p.expanded_error is not None for p in report.parameters)
    assert "s2" in [p.name for p in report.parameters]


def test_the_expanded_loss_differentiates_each_factor(spec):
    expanded = expand_network(spec)
    factors = [symbol for name, _, symbol in expanded.parameter_symbols if name == "s2"]
    assert len(factors) == 3
    assert all(expanded.gradient[symbol] != 0 for symbol in factors)


def test_the_generated_module_trains_the_toy_layer(spec, module):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = np.tanh(X[:, :1] - 0.5 * X[:, 1:2])
    params = module.init_params(1)
    before = module.loss(params, X, Y)
    trained, history = module.train(params, X, Y, epochs=300, batch_size=None, learning_rate=0.2)
    assert history["stopped"] == "epochs"
    assert history["loss"][-1] < 0.5 * before
    assert not np.allclose(trained["s2"], params["s2"])


def test_the_derivation_explains_the_toy_layer_and_every_step_checks_out_on_numbers(spec):
    derivation = derive(spec)
    hidden = derivation.section("hidden", 2)
    assert hidden is not None
    # The factor s_j (written w_jj) meets its unit's error term alone: dl/dw_jj = delta_j a_j.
    j = q.unit_index(2, "cur")
    gradient = hidden.chain("layer2.weight").result
    assert gradient == q.delta(2)[j] * q.act(1)[j]
    report = verify(derivation)
    assert report.passed, report.mismatches[:3]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_toy_layers_document_typesets(spec):
    source = derivation_document(spec)
    assert r"w^{(2)}_{j,j}" in source
    report = inspect_tex(source, "toy_scale")
    assert not report.problems(), report.problems()
