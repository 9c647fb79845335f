"""Residual (skip) connections, Z = A W + b + A: refused between layers of different widths, their pullbacks
derived by SymPy, generated, gradient-checked against central differences, SymPy's expanded loss and PyTorch,
trained, and their derivation shown and typeset."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import sympy as sp
from typesetting_catalogue import NOTATIONS, inspect_tex

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.checks.verify import verify
from symbp.cli.main import main
from symbp.derivation.backprop import derive
from symbp.errors import SymbpError
from symbp.render.code.numpy_module import generate_module
from symbp.render.latex.document import derivation_document
from symbp.render.latex.worksheet_document import worksheet_document
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q
from symbp.symbolic.network import network_of


def _spec_dict(hidden: int = 3, residual_units: int = 3, output: str = "linear", loss: str = "squared_error") -> dict:
    return {
        "name": "skip",
        "inputs": 2,
        "layers": [{"units": hidden, "activation": "tanh"},
                   {"units": residual_units, "activation": "sigmoid", "residual": True},
                   {"units": 2 if output == "softmax" else 1, "activation": output}],
        "loss": {"name": loss, "scale": 0.5, "reduction": "mean"} if loss == "squared_error" else {"name": loss},
        "training": {"optimizer": "gd", "learning_rate": 0.2, "epochs": 300},
    }


@pytest.fixture(scope="module")
def spec():
    return load_spec(_spec_dict())


@pytest.fixture(scope="module")
def module(spec):
    return load_module_from_source(generate_module(spec), spec.name)


def test_a_skip_between_layers_of_different_widths_is_refused_in_one_line():
    with pytest.raises(SymbpError) as caught:
        load_spec(_spec_dict(hidden=3, residual_units=4))
    message = str(caught.value)
    assert message.startswith("layers[1].residual:") and "units = 3" in message and "\n" not in message
    with pytest.raises(SymbpError, match=r"layers\[1\]\.residual: expected true or false"):
        load_spec({**_spec_dict(), "layers": [{"units": 3, "activation": "tanh"},
                                              {"units": 3, "activation": "tanh", "residual": "yes"},
                                              {"units": 1, "activation": "linear"}]})


def test_the_command_line_refuses_it_with_exit_2_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "net.json").write_text(__import__("json").dumps(_spec_dict(hidden=3, residual_units=5)))
    target = tmp_path / "net.py"
    assert main(["generate", str(tmp_path / "net.json"), "-o", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("symbp: error: layers[1].residual:")
    assert not target.exists()


def test_a_dense_spec_is_unchanged_by_the_new_key():
    plain = load_spec({**_spec_dict(), "layers": [{"units": 3, "activation": "tanh"},
                                                 {"units": 3, "activation": "tanh"},
                                                 {"units": 1, "activation": "linear"}]})
    assert all(layer.kind == "dense" and "residual" not in entry
               for layer, entry in zip(plain.layers, plain.canonical()["layers"]))


def test_sympy_derives_the_extra_term_of_the_input_gradient(spec):
    layer = network_of(spec).layer(2)
    assert layer.kind == "residual"
    weight = layer.parameters[0].symbol
    two = {sp.Symbol("N", integer=True, positive=True): 2}
    delta = sp.Matrix([[1, 0, 2], [3, 1, 1]])
    weights = sp.Matrix([[1, 2, 0], [0, 1, 4], [5, 0, 1]])
    point = {sp.MatrixSymbol(layer.delta.name, 2, 3): delta, weight: weights}
    value = sp.Matrix(layer.input_gradient.subs(two).subs(point).doit())
    assert value == delta * weights.T + delta


def test_the_generated_module_computes_the_skip(spec, module):
    rng = np.random.default_rng(1)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X = rng.normal(size=(5, 2))
    hidden = np.tanh(X @ params["W1"] + params["b1"])
    skipped = 1 / (1 + np.exp(-(hidden @ params["W2"] + params["b2"] + hidden)))
    np.testing.assert_allclose(module.forward(params, X), skipped @ params["W3"] + params["b3"], rtol=1e-12)


def test_its_gradient_agrees_with_central_differences_and_sympys_expanded_loss(spec):
    report = check_gradients(spec, expanded=True)
    assert report.passed, report
    assert all(p.expanded_error is not None for p in report.parameters)


@pytest.mark.parametrize("dicts", [
    _spec_dict(),
    _spec_dict(hidden=4, residual_units=4, output="softmax", loss="cross_entropy"),
    {"name": "first", "inputs": 3, "layers": [{"units": 3, "activation": "relu", "residual": True, "bias": False},
                                              {"units": 3, "activation": "tanh", "residual": True},
                                              {"units": 1, "activation": "sigmoid"}],
     "loss": {"name": "binary_cross_entropy"}},
])
def test_its_gradient_equals_pytorch_autograd(dicts):
    torch = pytest.importorskip("torch")
    spec = load_spec(dicts)
    module = load_module_from_source(generate_module(spec), spec.name)
    rng = np.random.default_rng(7)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X = rng.normal(size=(9, spec.inputs))
    if spec.layers[-1].activation == "softmax":
        Y = np.eye(spec.outputs)[rng.integers(0, spec.outputs, size=9)]
    else:
        Y = rng.uniform(0.1, 0.9, size=(9, spec.outputs))
    value, grads = module.loss_and_grad(params, X, Y)

    tensors = {name: torch.tensor(array, dtype=torch.float64, requires_grad=True) for name, array in params.items()}
    activations = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z,
                   "softmax": lambda z: torch.softmax(z, dim=1)}
    a = torch.tensor(X, dtype=torch.float64)
    for index, layer in enumerate(spec.layers, start=1):
        z = a @ tensors[f"W{index}"]
        if layer.bias:
            z = z + tensors[f"b{index}"]
        if layer.residual:
            z = z + a
        a = activations[layer.activation](z)
    y = torch.tensor(Y, dtype=torch.float64)
    if spec.loss.name == "squared_error":
        torch_loss = 0.5 * ((a - y) ** 2).sum() / len(X)
    elif spec.loss.name == "cross_entropy":
        torch_loss = -(y * torch.log(a)).sum() / len(X)
    else:
        torch_loss = -(y * torch.log(a) + (1 - y) * torch.log(1 - a)).sum() / len(X)
    torch_loss.backward()
    assert value == pytest.approx(torch_loss.item(), rel=1e-12)
    for name, tensor in tensors.items():
        np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("samples_as_columns", [True, False])
def test_the_in_place_training_step_matches_loss_and_grad(spec, samples_as_columns):
    module = load_module_from_source(generate_module(spec, samples_as_columns), spec.name)
    rng = np.random.default_rng(2)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    value, grads = module.loss_and_grad(params, X, Y)
    work = module._workspace(6, np.float64)
    arrange = np.ascontiguousarray if not samples_as_columns else (lambda array: np.ascontiguousarray(array.T))
    step_value, step_grads = module._loss_and_grad_into(params, arrange(X), arrange(Y), work)
    assert step_value == pytest.approx(value, rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(step_grads[name], grads[name], rtol=1e-10, atol=1e-14)


def test_the_generated_module_trains_it(spec, module):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    Y = np.tanh(X[:, :1] - 0.5 * X[:, 1:2])
    params = module.init_params(1)
    before = module.loss(params, X, Y)
    trained, history = module.train(params, X, Y, epochs=300, batch_size=None, learning_rate=0.2)
    assert history["stopped"] == "epochs"
    assert history["loss"][-1] < 0.5 * before


def test_the_derivation_shows_the_error_term_arriving_through_the_skip_and_checks_out(spec):
    derivation = derive(spec)
    hidden = derivation.section("hidden", 1)
    j = q.unit_index(1, "cur")
    k = q.unit_index(2, "next")
    reaches = hidden.chain("layer1.dz_da").result
    assert reaches == q.weight(2)[j, k] + sp.KroneckerDelta(j, k)
    # The sum over the layer above splits into what comes through the weights and delta_j through the skip.
    incoming = [s.expr for s in hidden.chain("layer1.incoming").steps]
    split = sp.Sum(q.delta(2)[k] * q.weight(2)[j, k], (k, 1, 3)) + q.delta(2)[j]
    assert split in incoming
    assert not any(expr.has(sp.Piecewise) for expr in incoming)
    report = verify(derivation)
    assert report.passed, report.mismatches[:3]


@pytest.mark.parametrize("notation", NOTATIONS)
def test_the_derivation_builds_in_every_notation(spec, notation):
    source = derivation_document(spec, notation)
    assert r"\left[j = " in source or r"\delta_{" in source or r"\err_{" in source


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
@pytest.mark.parametrize("notation", ["lab", "fausett"])
def test_the_derivation_typesets(spec, notation):
    report = inspect_tex(derivation_document(spec, notation), f"skip_{notation}")
    assert not report.problems(), report.problems()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_the_worksheet_takes_the_residual_kind(spec):
    report = inspect_tex(worksheet_document(spec, solutions=True), "skip_worksheet")
    assert not report.problems(), report.problems()


def test_the_readmes_residual_example_loads_and_its_gradient_checks():
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Residual connections and weight penalties", 1)[1]
    example = load_spec(tomllib.loads(section.split("```toml", 1)[1].split("```", 1)[0]))
    assert [layer.kind for layer in example.layers] == ["dense", "residual", "dense"]
    assert check_gradients(example).passed


def test_a_worksheet_that_works_a_smaller_network_keeps_the_skip(spec):
    from symbp.worksheet.exercises import build_worksheet, hand_spec

    small, shrunk = hand_spec(spec)
    assert shrunk and [layer.kind for layer in small.layers] == ["dense", "residual", "dense"]
    assert small.layers[1].units == small.layers[0].units == 2
    # The key's error terms take the skip (their gradients are checked against the expanded loss of the small
    # residual network while the sheet is made); the drawing shows it.
    sheet = build_worksheet(spec, variant=3)
    assert [layer.kind for layer in sheet.hand.spec.layers] == ["dense", "residual", "dense"]
    assert worksheet_document(spec, solutions=True).count(r"\draw[skip]") == 2
