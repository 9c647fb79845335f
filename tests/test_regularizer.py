"""L1 and L2 weight penalties (a layer's kernel_regularizer, Keras's names and convention: l1 * sum |w| and
l2 * sum w^2 added to the loss): refused in one line when malformed, generated, checked against central
differences (away from the kink of |w| at 0), SymPy's expanded loss and PyTorch, and trained."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import sympy as sp
from typesetting_catalogue import inspect_tex

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.checks.verify import verify
from symbp.cli.main import main
from symbp.derivation.backprop import derive
from symbp.errors import SymbpError
from symbp.render.code.numpy_module import generate_module
from symbp.render.latex.document import derivation_document
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q


def _spec_dict(first=None, second=None, residual: bool = False) -> dict:
    hidden = {"units": 3, "activation": "tanh"}
    output = {"units": 1, "activation": "linear"}
    if first is not None:
        hidden["kernel_regularizer"] = first
    if second is not None:
        output["kernel_regularizer"] = second
    middle = [{"units": 3, "activation": "sigmoid", "residual": True, "kernel_regularizer": {"l2": 0.02}}] \
        if residual else []
    return {"name": "penalised", "inputs": 3, "layers": [hidden, *middle, output],
            "loss": {"name": "squared_error", "scale": 0.5, "reduction": "mean"},
            "training": {"optimizer": "gd", "learning_rate": 0.1, "epochs": 200}}


@pytest.fixture(scope="module")
def spec():
    return load_spec(_spec_dict({"l1": 0.01, "l2": 0.05}, {"l2": 1e-3}))


@pytest.fixture(scope="module")
def module(spec):
    return load_module_from_source(generate_module(spec), spec.name)


@pytest.mark.parametrize(("value", "field", "words"), [
    ({}, "layers[0].kernel_regularizer", "is empty"),
    ({"l3": 1}, "layers[0].kernel_regularizer.l3", "unknown penalty"),
    ({"l2": -1e-4}, "layers[0].kernel_regularizer.l2", "at least 0"),
    ({"l1": "0.1"}, "layers[0].kernel_regularizer.l1", "without quotes"),
    (0.001, "layers[0].kernel_regularizer", "expected a table"),
    ({"l2": float("nan")}, "layers[0].kernel_regularizer.l2", "finite"),
])
def test_a_bad_penalty_is_refused_in_one_line(value, field, words):
    with pytest.raises(SymbpError) as caught:
        load_spec(_spec_dict(value))
    message = str(caught.value)
    assert message.startswith(f"{field}:") and words in message and "\n" not in message


def test_the_command_line_refuses_it_with_exit_2_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "net.json").write_text(json.dumps(_spec_dict({"l2": -1})))
    target = tmp_path / "net.py"
    assert main(["generate", str(tmp_path / "net.json"), "-o", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("symbp: error: layers[0].kernel_regularizer.l2:")
    assert not target.exists()


def test_the_loss_adds_the_penalties_and_the_gradient_their_derivatives(spec, module):
    rng = np.random.default_rng(4)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X, Y = rng.normal(size=(7, 3)), rng.normal(size=(7, 1))
    plain = load_module_from_source(generate_module(load_spec(_spec_dict())), "plain")
    penalty = 0.01 * np.abs(params["W1"]).sum() + 0.05 * (params["W1"] ** 2).sum() + 1e-3 * (params["W2"] ** 2).sum()
    assert module.loss(params, X, Y) == pytest.approx(plain.loss(params, X, Y) + penalty, rel=1e-13)
    value, grads = module.loss_and_grad(params, X, Y)
    _, plain_grads = plain.loss_and_grad(params, X, Y)
    assert value == pytest.approx(plain.loss(params, X, Y) + penalty, rel=1e-13)
    np.testing.assert_allclose(grads["W1"], plain_grads["W1"] + 0.01 * np.sign(params["W1"]) + 0.1 * params["W1"],
                               rtol=1e-12)
    np.testing.assert_allclose(grads["W2"], plain_grads["W2"] + 2e-3 * params["W2"], rtol=1e-12)
    # Biases carry no penalty.
    np.testing.assert_allclose(grads["b1"], plain_grads["b1"], rtol=1e-12)


@pytest.mark.parametrize("samples_as_columns", [True, False])
def test_the_in_place_training_step_matches_loss_and_grad(spec, samples_as_columns):
    module = load_module_from_source(generate_module(spec, samples_as_columns), spec.name)
    rng = np.random.default_rng(2)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    value, grads = module.loss_and_grad(params, X, Y)
    work = module._workspace(6, np.float64)
    arrange = np.ascontiguousarray if not samples_as_columns else (lambda array: np.ascontiguousarray(array.T))
    step_value, step_grads = module._loss_and_grad_into(params, arrange(X), arrange(Y), work)
    assert step_value == pytest.approx(value, rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(step_grads[name], grads[name], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("dicts", [
    _spec_dict({"l1": 0.01, "l2": 0.05}, {"l2": 1e-3}),
    _spec_dict({"l1": 0.3}, None, residual=True),
])
def test_its_gradient_agrees_with_central_differences_and_sympys_expanded_loss(dicts):
    # The random test point has no weight at 0, where |w| has its kink.
    report = check_gradients(dicts, expanded=True)
    assert report.passed, report
    assert all(p.expanded_error is not None for p in report.parameters)


@pytest.mark.parametrize("dicts", [
    _spec_dict({"l1": 0.01, "l2": 0.05}, {"l2": 1e-3}),
    _spec_dict({"l1": 0.3}, None, residual=True),
])
def test_its_gradient_equals_pytorch_autograd(dicts):
    torch = pytest.importorskip("torch")
    spec = load_spec(dicts)
    module = load_module_from_source(generate_module(spec), spec.name)
    rng = np.random.default_rng(7)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X, Y = rng.normal(size=(9, spec.inputs)), rng.normal(size=(9, 1))
    value, grads = module.loss_and_grad(params, X, Y)
    tensors = {name: torch.tensor(array, dtype=torch.float64, requires_grad=True) for name, array in params.items()}
    functions = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda z: z}
    a = torch.tensor(X, dtype=torch.float64)
    total = torch.zeros((), dtype=torch.float64)
    for index, layer in enumerate(spec.layers, start=1):
        weight = tensors[f"W{index}"]
        z = a @ weight + tensors[f"b{index}"] + (a if layer.residual else 0)
        a = functions[layer.activation](z)
        penalty = dict(layer.kernel_regularizer)
        total = total + penalty.get("l1", 0.0) * weight.abs().sum() + penalty.get("l2", 0.0) * (weight**2).sum()
    total = total + 0.5 * ((a - torch.tensor(Y)) ** 2).sum() / len(X)
    total.backward()
    assert value == pytest.approx(total.item(), rel=1e-12)
    for name, tensor in tensors.items():
        np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_weight_decay_shrinks_the_trained_weights(spec, module):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = np.tanh(X[:, :1] - 0.5 * X[:, 1:2])
    plain = load_module_from_source(generate_module(load_spec(_spec_dict())), "plain")
    strong = load_module_from_source(generate_module(load_spec(_spec_dict({"l2": 0.5}, {"l2": 0.5}))), "strong")
    trained, history = strong.train(strong.init_params(1), X, Y, epochs=300, batch_size=None, learning_rate=0.2)
    free, _ = plain.train(plain.init_params(1), X, Y, epochs=300, batch_size=None, learning_rate=0.2)
    assert history["stopped"] == "epochs"
    assert history["loss"][-1] < history["loss"][0]
    assert np.linalg.norm(trained["W1"]) < 0.5 * np.linalg.norm(free["W1"])




def test_the_derivation_adds_each_penalty_to_the_loss_and_its_derivative_to_the_gradient(spec):
    derivation = derive(spec)
    loss = derivation.section("network").chain("network.loss").result
    w = q.weight(1)[q.unit_index(0, "prev"), q.unit_index(1, "cur")]
    assert loss.has(sp.Abs(w)) and loss.has(w**2)
    gradient = derivation.section("update").chain("update.gradient.weight1")
    first = gradient.steps[0]
    entry = [a for a in first.expr.atoms(sp.Indexed) if a.base == q.weight(1)][0]
    assert first.expr.has(sp.sign(entry)) and first.expr.has(sp.Rational(1, 10) * entry)
    assert "kink" in {reason.kind for reason in first.reasons}
    # The output layer has L2 only: no kink noted.
    output_gradient = derivation.section("update").chain("update.gradient.weight2")
    assert "kink" not in {reason.kind for reason in output_gradient.steps[0].reasons}
    report = verify(derivation)
    assert report.passed, report.mismatches[:3]


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
@pytest.mark.parametrize("notation", ["lab", "fausett"])
def test_the_derivation_typesets(spec, notation):
    source = derivation_document(spec, notation)
    assert r"\operatorname{sign}" in source and "kink" in source
    report = inspect_tex(source, f"penalised_{notation}")
    assert not report.problems(), report.problems()
