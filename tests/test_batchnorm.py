"""Batch normalisation, normalization = "batch": refused where it cannot be, its pullback through the batch's mean
and variance derived by SymPy in index form, generated as vectorised NumPy, gradient-checked in training and
evaluation mode against central differences and SymPy's expanded loss, trained with running statistics equal to
PyTorch's (torch.nn.functional.batch_norm, what nn.BatchNorm1d computes), saved with the parameters and predicted
with."""

from __future__ import annotations

import ast
import json

import numpy as np
import pytest
import sympy as sp
from torch_reference import torch_loss, torch_outputs

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.cli.main import main
from symbp.errors import SymbpError
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic import batchnorm, layernorm
from symbp.symbolic.layers import n_samples
from symbp.symbolic.network import network_of


def _spec_dict(normalised: dict | None = None, output: str = "linear", loss: str = "squared_error") -> dict:
    return {
        "name": "batched",
        "inputs": 2,
        "layers": [{"units": 3, "activation": "tanh", "normalization": "batch", **(normalised or {})},
                   {"units": 2 if output == "softmax" else 1, "activation": output}],
        "loss": {"name": loss, "scale": 0.5, "reduction": "mean"} if loss == "squared_error" else {"name": loss},
        "training": {"optimizer": "adam", "learning_rate": 0.05, "epochs": 100},
    }


@pytest.fixture(scope="module")
def spec():
    return load_spec(_spec_dict())


@pytest.fixture(scope="module")
def module(spec):
    return load_module_from_source(generate_module(spec), spec.name)


def _problem(rows: int = 9, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2))
    return X, np.tanh(X[:, :1] - 0.5 * X[:, 1:2]) + 0.1 * rng.normal(size=(rows, 1))


# -- the spec


def test_the_layer_has_weights_a_gain_a_shift_no_bias_and_pytorchs_defaults(spec):
    layer = network_of(spec).layer(1)
    assert layer.kind == "batch_norm" and not layer.bias
    assert (layer.epsilon, layer.momentum) == (1e-5, 0.1)
    assert [(p.name, p.role, p.shape) for p in layer.parameters] == [
        ("W1", "weight", (2, 3)), ("gamma1", "gain", (3,)), ("beta1", "shift", (3,))]
    assert [(s.name, s.shape, s.start) for s in layer.statistics] == [
        ("running_mean1", (3,), 0.0), ("running_var1", (3,), 1.0)]
    # The running statistics are no parameters: nothing learns them by gradient.
    assert spec.parameter_count == 2 * 3 + 3 + 3 + 3 * 1 + 1
    given = load_spec(_spec_dict({"epsilon": 0.01, "momentum": 0.3})).layers[0]
    assert (given.epsilon, given.momentum) == (0.01, 0.3)
    assert load_spec(_spec_dict({"units": 1})).layers[0].kind == "batch_norm"  # a variance over samples, not units


def test_a_dense_or_layer_normalised_spec_is_unchanged_by_the_new_key():
    layer_norm = load_spec(_spec_dict({"normalization": "layer"}))
    assert "momentum" not in layer_norm.canonical()["layers"][0]
    assert load_spec(_spec_dict()).canonical()["layers"][0]["momentum"] == 0.1


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"normalization": "group"}, "layers[0].normalization", '"batch"'),
    ({"dropout": 0.5}, "layers[0].dropout", "normalization"),
    ({"bias": True}, "layers[0].bias", "beta"),
    ({"momentum": 1.5}, "layers[0].momentum", "at most 1"),
    ({"momentum": "fast"}, "layers[0].momentum", "number"),
    ({"normalization": "layer", "momentum": 0.2}, "layers[0].momentum", "remove momentum"),
    ({"epsilon": -1}, "layers[0].epsilon", "positive"),
])
def test_a_layer_that_cannot_be_batch_normalised_is_refused_in_one_line(change, field, words):
    spec = _spec_dict(change)
    with pytest.raises(SymbpError) as caught:
        load_spec(spec)
    message = str(caught.value)
    assert message.startswith(f"{field}:") and words in message and "\n" not in message


def test_momentum_without_normalization_and_a_batch_of_one_are_refused():
    spec = _spec_dict()
    del spec["layers"][0]["normalization"]
    spec["layers"][0]["momentum"] = 0.1
    with pytest.raises(SymbpError, match=r"^layers\[0\]\.momentum: .*normalization"):
        load_spec(spec)
    with pytest.raises(SymbpError, match=r"^training\.batch_size: layers\[0\] is batch-normalised.*batch_size = 2"):
        load_spec({**_spec_dict(), "training": {"batch_size": 1}})


# -- SymPy's derivation


def test_sympys_chain_rule_through_the_batch_mean_and_variance_is_the_compact_form():
    calculus = layernorm.normalisation_calculus(n_samples)
    g, x, s = layernorm.g_vec, layernorm.x_vec, layernorm.scale_symbol
    k, j = layernorm.k, layernorm.j
    mean = lambda expr: sp.Sum(expr, (k, 0, n_samples - 1)) / n_samples  # noqa: E731
    assert sp.simplify(calculus.compact - (g[j] - mean(g[k]) - x[j] * mean(g[k] * x[k])) / s) == 0
    assert sp.simplify(calculus.derived - calculus.compact) == 0
    # With the running statistics (constants), nothing couples the samples: g_j / sigma_hat.
    assert sp.simplify(batchnorm.evaluation_derivative() - g[j] / s) == 0


def test_the_generated_code_is_vectorised_and_says_where_the_batch_enters(spec):
    source = generate_module(spec)
    tree = ast.parse(source)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name in ("_forward_pass", "_loss_and_grad", "forward", "loss_and_grad"):
        assert not any(isinstance(node, (ast.For, ast.While, ast.comprehension)) for node in ast.walk(functions[name]))
    assert "mean1 = (1/n)*U1.sum(axis=0) if training else running_mean1" in source
    assert "deltaU1 = (deltaH1 - mean_deltaH1 - mean_deltaH_H1*H1)/S1 if training else deltaH1/S1" in source
    assert "'running_var1': (n/(n - 1))*var1," in source
    assert "class RunningStatistics" in source
    dense = generate_module({**_spec_dict(), "layers": [{"units": 3, "activation": "tanh"},
                                                       {"units": 1, "activation": "linear"}]})
    assert "RunningStatistics" not in dense and "STATISTICS" not in dense and "training" not in dense.split("def ")[6]


def test_a_batch_normalised_module_passes_ruff(tmp_path):
    import shutil
    import subprocess

    ruff = shutil.which("ruff") or str(__import__("pathlib").Path(__import__("sys").executable).with_name("ruff"))
    spec = {**_spec_dict(output="softmax", loss="cross_entropy"), "inputs": 3}
    spec["layers"].insert(1, {"units": 4, "activation": "relu", "dropout": 0.3, "kernel_regularizer": {"l2": 0.01}})
    path = tmp_path / "batched.py"
    path.write_text(generate_module(spec))
    result = subprocess.run([ruff, "check", "--no-cache", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


# -- the module's numbers


def test_the_running_statistics_start_as_pytorchs_and_are_stored_with_the_parameters(module, tmp_path):
    params = module.init_params(0)
    assert module.STATISTICS == {"running_mean1": 0.1, "running_var1": 0.1}
    assert module.STORED == (*module.PARAMS, "running_mean1", "running_var1")
    np.testing.assert_array_equal(params["running_mean1"], np.zeros(3))
    np.testing.assert_array_equal(params["running_var1"], np.ones(3))
    module.save_params(tmp_path / "p.npz", params)
    loaded = module.load_params(tmp_path / "p.npz")
    assert set(loaded) == set(module.STORED)
    missing = {name: array for name, array in params.items() if name != "running_var1"}
    with pytest.raises(ValueError, match="missing running_var1"):
        module.forward(missing, np.zeros((2, 2)))


@pytest.mark.parametrize("training", [True, False])
def test_the_loss_and_gradient_are_pytorchs_in_both_modes(module, spec, training):
    torch = pytest.importorskip("torch")
    X, Y = _problem()
    rng = np.random.default_rng(3)
    params = {name: rng.normal(scale=0.7, size=array.shape) for name, array in module.init_params(0).items()}
    params["running_var1"] = rng.uniform(0.5, 2.0, 3)
    value, grads = module.loss_and_grad(params, X, Y, training=training)
    tensors = {name: torch.tensor(params[name], requires_grad=True) for name in module.PARAMS}
    running = {name: torch.tensor(params[name]) for name in module.STATISTICS}
    expected = torch_loss(torch, spec, tensors, X, Y, running=None if training else running, training=training)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    assert module.loss(params, X, Y, training=training) == pytest.approx(value, rel=1e-12)
    for name in module.PARAMS:
        np.testing.assert_allclose(grads[name], tensors[name].grad.numpy(), rtol=1e-9, atol=1e-14)
    if not training:
        prediction = torch_outputs(torch, spec, {k: v.detach() for k, v in tensors.items()}, X, running)
        np.testing.assert_allclose(module.predict(params, X), prediction.numpy(), rtol=1e-12)


def test_one_sample_in_training_mode_is_refused(module):
    X, Y = _problem(1)
    with pytest.raises(ValueError, match="^X: 1 sample.*2 samples or more"):
        module.loss_and_grad(module.init_params(0), X, Y, training=True)
    module.loss_and_grad(module.init_params(0), X, Y)  # evaluation mode needs no batch


def _torch_training(torch, spec, module, params, X, Y, epochs, learning_rate, batch_size, seed):
    """Plain gradient descent in PyTorch, on the batches train() takes, batch_norm updating its running buffers."""
    tensors = {name: torch.tensor(params[name], requires_grad=True) for name in module.PARAMS}
    running = {name: torch.tensor(params[name]).clone() for name in module.STATISTICS}
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    for _ in range(epochs):
        order = [np.arange(n)] if batch_size is None else np.array_split(rng.permutation(n), range(batch_size, n,
                                                                                                   batch_size))
        for rows in order:
            loss = torch_loss(torch, spec, tensors, X[rows], Y[rows], running=running, training=True)
            grads = torch.autograd.grad(loss, list(tensors.values()))
            with torch.no_grad():
                for tensor, grad in zip(tensors.values(), grads):
                    tensor -= learning_rate * grad
    return tensors, running


@pytest.mark.parametrize(("batch_size", "optimizer"), [(None, "gd"), (4, "sgd")])
def test_training_moves_the_running_statistics_as_pytorch_does_and_predict_uses_them(batch_size, optimizer):
    torch = pytest.importorskip("torch")
    spec = load_spec(_spec_dict({"momentum": 0.3}, output="softmax", loss="cross_entropy"))
    module = load_module_from_source(generate_module(spec), spec.name)
    rng = np.random.default_rng(5)
    X = rng.normal(size=(14, 2)) * [2.0, 0.5] + [1.0, -3.0]
    Y = np.eye(2)[(X[:, 0] - 1 > 0).astype(int)]
    start = module.init_params(2)
    trained, history = module.train(start, X, Y, epochs=6, batch_size=batch_size, learning_rate=0.2,
                                    optimizer=optimizer, seed=7)
    tensors, running = _torch_training(torch, spec, module, start, X, Y, 6, 0.2, batch_size, 7)
    for name in module.PARAMS:
        np.testing.assert_allclose(trained[name], tensors[name].detach().numpy(), rtol=1e-10, atol=1e-13)
    for name in module.STATISTICS:
        np.testing.assert_allclose(trained[name], running[name].numpy(), rtol=1e-10, atol=1e-13)
    assert not np.allclose(trained["running_var1"], 1.0)
    # Evaluation mode, by the running statistics: PyTorch's eval outputs after the same steps.
    expected = torch_outputs(torch, spec, {k: v.detach() for k, v in tensors.items()}, X, running)
    np.testing.assert_allclose(module.predict(trained, X), expected.numpy(), rtol=1e-10, atol=1e-13)
    # history's losses are in evaluation mode, as predict computes.
    assert history["loss"][-1] == pytest.approx(module.loss(trained, X, Y), rel=1e-12)


def test_a_network_with_dropout_and_batch_norm_trains(tmp_path):
    spec = load_spec({**_spec_dict(), "layers": [{"units": 4, "activation": "relu", "dropout": 0.25},
                                                 {"units": 3, "activation": "tanh", "normalization": "batch"},
                                                 {"units": 1, "activation": "linear"}]})
    module = load_module_from_source(generate_module(spec), spec.name)
    X, Y = _problem(40)
    params = module.init_params(0)
    before = module.loss(params, X, Y)
    trained, history = module.train(params, X, Y, epochs=60, batch_size=10, learning_rate=0.05, optimizer="adam")
    assert history["stopped"] == "epochs" and history["loss"][-1] < 0.5 * before
    assert not np.allclose(trained["running_mean2"], 0.0)
    again, _ = module.train(params, X, Y, epochs=60, batch_size=10, learning_rate=0.05, optimizer="adam")
    np.testing.assert_array_equal(again["running_var2"], trained["running_var2"])  # the seed fixes the masks


@pytest.mark.parametrize(("rows", "batch_size", "words"), [
    (1, None, "^X: 1 row"), (9, 1, "^batch_size: 1,"), (9, 4, "^batch_size: 4 leaves a last batch of 1")])
def test_a_batch_of_one_is_refused_before_training(module, rows, batch_size, words):
    X, Y = _problem(rows)
    with pytest.raises(ValueError, match=words):
        module.train(module.init_params(0), X, Y, epochs=1, batch_size=batch_size)


# -- the check


def test_both_modes_agree_with_central_differences_and_sympys_expanded_loss():
    change = {"momentum": 0.5, "epsilon": 0.1, "kernel_regularizer": {"l2": 0.05}}
    report = check_gradients(load_spec(_spec_dict(change)), samples=3, expanded=True)
    assert report.passed, report.table()
    assert {p.mode for p in report.parameters} == {"training", "evaluation"}
    assert all(p.expanded_error is not None for p in report.parameters)
    assert "evaluation mode by drawn running statistics" in report.table()


def test_a_network_mixing_it_with_layer_norm_and_dropout_checks_against_the_expanded_loss():
    spec = load_spec({**_spec_dict(), "layers": [{"units": 2, "activation": "relu", "dropout": 0.5},
                                                 {"units": 2, "activation": "linear", "normalization": "layer"},
                                                 {"units": 1, "activation": "linear", "normalization": "batch"}]})
    report = check_gradients(spec, samples=2, expanded=True, seed=1)
    assert report.passed, report.table()
    assert all(p.expanded_error is not None for p in report.parameters)


def test_the_check_catches_a_gradient_that_ignores_the_batch(spec):
    right = "deltaU1 = (deltaH1 - mean_deltaH1 - mean_deltaH_H1*H1)/S1 if training else deltaH1/S1"
    source = generate_module(spec)
    assert right in source
    broken = load_module_from_source(source.replace(right, "deltaU1 = deltaH1/S1"), spec.name)
    report = check_gradients(spec, samples=3, module=broken, expanded=False)
    assert not report.passed
    assert all(p.finite_difference_error < 1e-7 for p in report.parameters if p.mode == "evaluation")
    assert any(p.finite_difference_error > 1e-3 for p in report.parameters if p.mode == "training")


def test_the_expanded_oracle_has_no_per_sample_form_in_training_mode(spec):
    layer = network_of(spec).layer(1)
    with pytest.raises(SymbpError, match="whole batch"):
        layer.expanded_preactivation([sp.Integer(1), sp.Integer(2)], layer.expanded_symbols())


def test_one_sample_is_not_checked(spec):
    with pytest.raises(SymbpError, match="^samples: 1.*2 samples or more"):
        check_gradients(spec, samples=1)


# -- the command line


def _write(tmp_path, spec: dict, rows: int = 30) -> tuple:
    (tmp_path / "net.json").write_text(json.dumps(spec))
    X, Y = _problem(rows)
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    return str(tmp_path / "net.json"), str(tmp_path / "d.npz")


def test_train_saves_the_running_statistics_and_predict_uses_them(tmp_path, capsys, module):
    net, data = _write(tmp_path, _spec_dict())
    params = tmp_path / "p.npz"
    assert main(["train", net, "--data", data, "-o", str(params), "--quiet", "--batch-size", "8"]) == 0
    with np.load(params) as saved:
        assert set(saved.files) == {"W1", "gamma1", "beta1", "W2", "b2", "running_mean1", "running_var1"}
        stored = {name: saved[name] for name in saved.files}
    assert not np.allclose(stored["running_var1"], 1.0)
    capsys.readouterr()
    out = tmp_path / "pred.csv"
    assert main(["predict", net, "--params", str(params), "--data", data, "-o", str(out)]) == 0
    written = np.loadtxt(out, delimiter=",", skiprows=1, ndmin=2)
    X, _ = _problem(30)
    np.testing.assert_allclose(written[:, 0], module.predict(stored, X)[:, 0], rtol=1e-5)
    del stored["running_mean1"]
    np.savez(tmp_path / "old.npz", **stored)
    assert main(["predict", net, "--params", str(tmp_path / "old.npz"), "--data", data]) == 2
    assert "missing array running_mean1" in capsys.readouterr().err


@pytest.mark.parametrize(("rows", "options", "words"), [
    (1, [], "X: 1 row"), (30, ["--batch-size", "1"], "batch_size: 1"),
    (29, ["--batch-size", "4"], "last batch of 1")])
def test_training_on_a_batch_of_one_is_refused_in_one_line_and_writes_nothing(tmp_path, capsys, rows, options, words):
    net, data = _write(tmp_path, _spec_dict(), rows)
    code = main(["train", net, "--data", data, "-o", str(tmp_path / "p.npz"), "--quiet", *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "p.npz").exists()


def test_a_spec_with_batch_size_1_is_refused_by_every_command(tmp_path, capsys):
    net, _ = _write(tmp_path, {**_spec_dict(), "training": {"batch_size": 1}})
    assert main(["generate", net, "-o", str(tmp_path / "net.py")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("symbp: error: training.batch_size:")
    assert not (tmp_path / "net.py").exists()


def test_the_check_command_reports_both_modes(tmp_path, capsys):
    net, _ = _write(tmp_path, _spec_dict())
    assert main(["check", net, "--samples", "4"]) == 0
    out = capsys.readouterr().out
    assert "W1 (training)" in out and "W1 (evaluation)" in out and "PASS" in out
    assert main(["check", net, "--samples", "1"]) == 2
    assert "2 samples or more" in capsys.readouterr().err


def test_the_readmes_batch_norm_example_loads_and_its_gradient_checks():
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Batch normalisation", 1)[1]
    example = load_spec(tomllib.loads(section.split("```toml", 1)[1].split("```", 1)[0]))
    assert "batch_norm" in [layer.kind for layer in example.layers]
    report = check_gradients(example, samples=3)
    assert report.passed, report.table()


def test_a_notebook_shows_the_spec_with_its_batch_normalised_layer():
    import symbp

    page = symbp.load_spec(_spec_dict())._repr_html_()
    assert "3 tanh (batch norm), 1 linear;" in page and "<svg" in page
