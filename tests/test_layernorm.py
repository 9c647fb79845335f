"""Layer normalisation, normalization = "layer": refused where it cannot be, its pullback through each sample's
mean and variance derived by SymPy, generated, equal to torch.nn.functional.layer_norm, gradient-checked against
central differences and SymPy's expanded loss, trained and predicted with."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sympy as sp

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.cli.main import main
from symbp.errors import SymbpError
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic import layernorm
from symbp.symbolic.network import network_of


def _spec_dict(normalised: dict | None = None, output: str = "linear", loss: str = "squared_error") -> dict:
    return {
        "name": "normed",
        "inputs": 2,
        "layers": [{"units": 3, "activation": "tanh", "normalization": "layer", **(normalised or {})},
                   {"units": 2 if output == "softmax" else 1, "activation": output}],
        "loss": {"name": loss, "scale": 0.5, "reduction": "mean"} if loss == "squared_error" else {"name": loss},
        "training": {"optimizer": "adam", "learning_rate": 0.05, "epochs": 200},
    }


@pytest.fixture(scope="module")
def spec():
    return load_spec(_spec_dict())


@pytest.fixture(scope="module")
def module(spec):
    return load_module_from_source(generate_module(spec), spec.name)


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"units": 1}, "layers[0].normalization", "units = 2"),
    ({"normalization": "group"}, "layers[0].normalization", '"layer"'),
    ({"normalization": True}, "layers[0].normalization", '"layer"'),
    ({"units": 2, "residual": True}, "layers[0].normalization", "residual"),
    ({"bias": True}, "layers[0].bias", "beta"),
    ({"biases": [0.0, 0.0, 0.0]}, "layers[0].biases", "beta"),
    ({"epsilon": 0}, "layers[0].epsilon", "positive"),
    ({"epsilon": "small"}, "layers[0].epsilon", "positive"),
])
def test_a_layer_that_cannot_be_normalised_is_refused_in_one_line(change, field, words):
    spec = _spec_dict()
    if change.get("residual"):
        spec["inputs"] = 2
    spec["layers"][0].update(change)
    with pytest.raises(SymbpError) as caught:
        load_spec(spec)
    message = str(caught.value)
    assert message.startswith(f"{field}:") and words in message and "\n" not in message


def test_epsilon_without_normalization_is_refused():
    spec = _spec_dict()
    del spec["layers"][0]["normalization"]
    spec["layers"][0]["epsilon"] = 1e-3
    with pytest.raises(SymbpError, match=r"^layers\[0\]\.epsilon: .*normalization"):
        load_spec(spec)


def test_the_command_line_refuses_it_with_exit_2_and_writes_nothing(tmp_path, capsys):
    bad = _spec_dict({"normalization": "group"})
    (tmp_path / "net.json").write_text(json.dumps(bad))
    target = tmp_path / "net.py"
    assert main(["generate", str(tmp_path / "net.json"), "-o", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("symbp: error: layers[0].normalization:") and '"layer"' in err[0]
    assert not target.exists()


def test_a_dense_spec_is_unchanged_by_the_new_keys():
    plain = load_spec({**_spec_dict(), "layers": [{"units": 3, "activation": "tanh"},
                                                 {"units": 1, "activation": "linear"}]})
    assert all(layer.kind == "dense" and "normalization" not in entry and "epsilon" not in entry
               for layer, entry in zip(plain.layers, plain.canonical()["layers"]))


def test_the_layer_has_weights_a_gain_and_a_shift_and_no_bias(spec):
    layer = network_of(spec).layer(1)
    assert layer.kind == "layer_norm" and not layer.bias and layer.epsilon == 1e-5
    assert [(p.name, p.role, p.shape) for p in layer.parameters] == [
        ("W1", "weight", (2, 3)), ("gamma1", "gain", (3,)), ("beta1", "shift", (3,))]
    assert spec.parameter_count == 2 * 3 + 3 + 3 + 3 * 1 + 1
    assert load_spec(_spec_dict({"epsilon": 0.01})).layers[0].epsilon == 0.01


def test_sympys_chain_rule_through_mean_and_variance_is_the_compact_form():
    calculus = layernorm.normalisation_calculus()
    pieces = dict(calculus.partials)
    assert pieces["mean"] == 1 / layernorm.K
    assert sp.simplify(calculus.derived - calculus.compact) == 0
    # Independently of the compact form: SymPy's derivative of the written-out normalisation for K = 3, at a point.
    u = sp.symbols("u0:3", real=True)
    epsilon = sp.Rational(1, 10)
    mean = sum(u) / 3
    scale = sp.sqrt(sum((each - mean) ** 2 for each in u) / 3 + epsilon)
    g = (sp.Rational(3, 7), -sp.Rational(1, 2), sp.Rational(5, 4))
    loss = sum(gk * (uk - mean) / scale for gk, uk in zip(g, u))
    point = dict(zip(u, (sp.Rational(1, 3), -2, sp.Rational(3, 2))))
    xhat = [((uk - mean) / scale).subs(point) for uk in u]
    for unit in range(3):
        want = sp.diff(loss, u[unit]).subs(point)
        got = calculus.compact.subs(layernorm.K, 3).doit().subs(
            {layernorm.scale_symbol: scale.subs(point), layernorm.epsilon_symbol: epsilon})
        got = got.subs(layernorm.j, unit).replace(
            lambda e: isinstance(e, sp.Indexed),
            lambda e: (g if e.base == layernorm.g_vec else xhat)[int(e.indices[0])])
        assert sp.N(got - want, 30) == pytest.approx(0, abs=1e-25)


def test_the_gain_starts_at_one_and_the_shift_at_zero(module):
    params = module.init_params(0)
    np.testing.assert_array_equal(params["gamma1"], np.ones(3))
    np.testing.assert_array_equal(params["beta1"], np.zeros(3))
    assert not hasattr(module, "_loss_and_grad_into")


@pytest.mark.parametrize("epsilon", [None, 0.3])
def test_the_forward_pass_is_torchs_layer_norm(epsilon):
    torch = pytest.importorskip("torch")
    spec = load_spec(_spec_dict({} if epsilon is None else {"epsilon": epsilon}))
    module = load_module_from_source(generate_module(spec), spec.name)
    rng = np.random.default_rng(3)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X = rng.normal(size=(8, 2))
    normed = torch.nn.functional.layer_norm(torch.tensor(X @ params["W1"]), (3,), weight=torch.tensor(params["gamma1"]),
                                            bias=torch.tensor(params["beta1"]), eps=epsilon or 1e-5).numpy()
    np.testing.assert_allclose(module.forward(params, X), np.tanh(normed) @ params["W2"] + params["b2"], rtol=1e-12)
    hidden = module._forward_pass(module._checked_params(params), X)
    # Z1, the pre-activation itself, among the forward pass's arrays (U1, C1, S1, H1, Z1, A1, Z2).
    np.testing.assert_allclose(hidden[4], normed, rtol=1e-12)


@pytest.mark.parametrize("dicts", [
    _spec_dict(),
    _spec_dict({"epsilon": 0.01}, output="softmax", loss="cross_entropy"),
    {"name": "two", "inputs": 2, "layers": [{"units": 2, "activation": "relu", "normalization": "layer"},
                                            {"units": 2, "activation": "sigmoid", "normalization": "layer"}],
     "loss": {"name": "binary_cross_entropy"}},
])
def test_its_gradient_agrees_with_central_differences_and_sympys_expanded_loss(dicts):
    report = check_gradients(load_spec(dicts), samples=3, expanded=True)
    assert report.passed, report.table()
    assert all(p.expanded_error is not None for p in report.parameters)


def test_the_check_catches_a_wrong_gradient(spec, module):
    source = generate_module(spec).replace("mean_deltaH1 = (1/3)", "mean_deltaH1 = (1/2)")
    assert source != generate_module(spec)
    broken = load_module_from_source(source, spec.name)
    assert not check_gradients(spec, samples=3, module=broken, expanded=False).passed


def test_the_generated_module_trains_it(spec, module):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    Y = np.tanh(X[:, :1] - 0.5 * X[:, 1:2])
    params = module.init_params(1)
    before = module.loss(params, X, Y)
    trained, history = module.train(params, X, Y, epochs=200, batch_size=None, learning_rate=0.05, optimizer="adam")
    assert history["stopped"] == "epochs"
    assert history["loss"][-1] < 0.3 * before
    assert history["loss"][-1] == pytest.approx(module.loss(trained, X, Y), rel=1e-9)


def test_large_batches_train_on_the_plain_step(module):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 2))
    Y = np.tanh(X[:, :1])
    trained, history = module.train(module.init_params(0), X, Y, epochs=3, batch_size=None, learning_rate=0.05)
    assert history["stopped"] == "epochs" and np.isfinite(history["loss"][-1])


def test_train_and_predict_on_the_command_line(tmp_path, capsys):
    spec = {**_spec_dict(output="softmax", loss="cross_entropy"), "inputs": 4,
            "data": {"builtin": "iris"}}
    spec["layers"][0]["units"] = 6
    spec["layers"][1]["units"] = 3
    (tmp_path / "iris.json").write_text(json.dumps(spec))
    params = tmp_path / "p.npz"
    assert main(["train", str(tmp_path / "iris.json"), "-o", str(params), "--quiet",
                 "--draw", str(tmp_path / "net.png")]) == 0
    assert params.exists() and (tmp_path / "net.png").exists()
    with np.load(params) as saved:
        assert set(saved.files) == {"W1", "gamma1", "beta1", "W2", "b2"}
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "iris.json"), "--params", str(params)]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy")[1].split()[0])
    assert accuracy >= 0.75  # three classes: a third by chance


def test_the_readmes_layer_norm_example_loads_and_its_gradient_checks():
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Layer normalisation", 1)[1]
    example = load_spec(tomllib.loads(section.split("```toml", 1)[1].split("```", 1)[0]))
    assert [layer.kind for layer in example.layers] == ["layer_norm", "dense"]
    report = check_gradients(example, samples=2)
    assert report.passed, report.table()


def test_a_notebook_shows_the_spec_with_its_normalised_layer():
    import symbp

    page = symbp.load_spec(_spec_dict())._repr_html_()
    assert "3 tanh (layer norm), 1 linear;" in page and "<svg" in page


def test_a_penalised_normalised_layer_checks_against_the_expanded_loss():
    spec = load_spec(_spec_dict({"kernel_regularizer": {"l1": 0.01, "l2": 0.05}}))
    report = check_gradients(spec, samples=2, expanded=True)
    assert report.passed, report.table()
    assert all(p.expanded_error is not None for p in report.parameters)


def test_given_weights_start_a_normalised_layer():
    weights = [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]
    spec = load_spec(_spec_dict({"weights": weights}))
    module = load_module_from_source(generate_module(spec), spec.name)
    np.testing.assert_array_equal(module.init_params(0)["W1"], np.array(weights))
