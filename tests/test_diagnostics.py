"""diagnose() in every generated module, the hints symbp.checks.diagnostics words from it, and `symbp diagnose`."""

import numpy as np
import pytest

from symbp.checks.diagnostics import format_report, hints, report_for
from symbp.checks.gradients import load_module_from_source
from symbp.cli.main import main
from symbp.render.code.numpy_module import generate_module


def _module(layers, loss="squared_error", inputs=2):
    return load_module_from_source(generate_module({"name": "net", "inputs": inputs, "layers": layers,
                                                    "loss": loss}), "net")


def _problems(report):
    return {hint.problem for hint in hints(report)}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 2))
    return X, np.tanh(X[:, :1] - X[:, 1:])


def test_report_holds_plain_numbers_per_layer(data):
    X, Y = data
    module = _module([{"units": 4, "activation": "relu"}, {"units": 3, "activation": "tanh"},
                      {"units": 1, "activation": "linear"}])
    params = module.init_params(0)
    report = module.diagnose(params, X, Y)
    assert report["loss"] == pytest.approx(module.loss(params, X, Y))
    assert report["samples"] == 50 and report["history"] is None
    relu, tanh, linear = report["layers"]
    assert [layer["activation"] for layer in report["layers"]] == ["relu", "tanh", "linear"]
    assert relu["saturated"] is None and relu["dead"] is not None
    assert tanh["saturated"] is not None and tanh["dead"] is None
    assert linear["saturated"] is None and linear["dead"] is None
    _, grads = module.loss_and_grad(params, X, Y)
    assert relu["gradient_norm"] == pytest.approx(np.sqrt(np.sum(grads["W1"] ** 2) + np.sum(grads["b1"] ** 2)))
    assert report["gradient_ratio"] == pytest.approx(relu["gradient_norm"] / linear["gradient_norm"])
    assert all(type(value) in (int, float, str, type(None)) for layer in report["layers"] for value in layer.values())


def test_saturated_units_are_found_and_explained(data):
    X, Y = data
    module = _module([{"units": 3, "activation": "sigmoid"}, {"units": 1, "activation": "linear"}])
    params = module.init_params(0)
    params["W1"] = np.array([[60.0, -60.0, 0.1], [60.0, 60.0, 0.1]])
    params["b1"] = np.array([400.0, -400.0, 0.0])
    report = module.diagnose(params, X, Y)
    assert report["layers"][0]["saturated"] == pytest.approx(2 / 3)
    assert "saturation" in _problems(report)
    text = format_report(report)
    assert "layer 1 (sigmoid): 2 of 3 units (67%) sit at the flat ends of the sigmoid" in text


def test_dead_relus_are_found(data):
    X, Y = data
    module = _module([{"units": 4, "activation": "relu"}, {"units": 1, "activation": "linear"}])
    params = module.init_params(0)
    params["b1"] = np.array([-100.0, -100.0, -100.0, 0.0])
    report = module.diagnose(params, X, Y)
    assert report["layers"][0]["dead"] == 0.75
    assert "dead units" in _problems(report)
    assert "3 of 4 units (75%) are inactive on every sample" in format_report(report)


def test_custom_units_that_can_die_are_watched_too(data):
    X, Y = data
    module = _module([{"units": 2, "activation": {"expr": "where(x > 0, x**2, 0)", "name": "square_relu"}},
                      {"units": 1, "activation": "linear"}])
    params = module.init_params(0)
    params["b1"] = np.array([-100.0, 0.0])
    assert module.diagnose(params, X, Y)["layers"][0]["dead"] == 0.5


def test_vanishing_and_exploding_gradients(data):
    X, Y = data
    layers = [{"units": 3, "activation": "sigmoid"}, {"units": 3, "activation": "sigmoid"},
              {"units": 1, "activation": "linear"}]
    module = _module(layers)
    params = module.init_params(0)
    params["W2"] = params["W2"] * 1e-3
    vanishing = module.diagnose(params, X, Y)
    assert vanishing["gradient_ratio"] < 1e-2
    assert _problems(vanishing) == {"vanishing gradients"}
    # Saturated units explain the vanishing gradient they cause: it is named once, as saturation.
    params = module.init_params(0)
    params["W1"] = params["W1"] * 80
    saturated = module.diagnose(params, X, Y)
    assert saturated["gradient_ratio"] < 1e-2
    assert _problems(saturated) == {"saturation"}

    linear = _module([{"units": 3, "activation": "linear"}, {"units": 1, "activation": "linear"}])
    params = linear.init_params(0)
    params["W2"] = params["W2"] * 1e4
    exploding = linear.diagnose(params, X, Y)
    assert exploding["gradient_ratio"] > 1e2
    assert "exploding gradients" in _problems(exploding)


def test_a_rising_loss_points_at_the_learning_rate(data):
    X, Y = data
    module = _module([{"units": 3, "activation": "tanh"}, {"units": 1, "activation": "linear"}])
    params = module.init_params(0)
    report = module.diagnose(params, X, Y, history=[1.0, 0.5, 0.4, 0.9, 2.0])
    assert report["history"]["rising"] and report["history"]["best_epoch"] == 2
    assert report["history"]["increases"] == 2
    assert "rose from 0.4 (its best, at epoch 2) to 2 at epoch 4: the learning rate is probably too high" \
        in format_report(report)
    zigzag = module.diagnose(params, X, Y, history=[1.0, 1.2, 0.9, 1.1, 0.8, 1.0, 0.7, 0.9, 0.6])
    assert not zigzag["history"]["rising"]
    assert "went up in 4 of 8 epochs" in format_report(zigzag)


def test_diverged_parameters_are_named(data):
    X, Y = data
    module = _module([{"units": 1, "activation": "exponential"}])
    params = module.init_params(0)
    params["W1"] = np.array([[1e3], [1e3]])
    report = module.diagnose(params, X * 10, Y)
    assert "not finite" in _problems(report)


def test_a_healthy_network_gets_no_hints(data):
    X, Y = data
    module = _module([{"units": 3, "activation": "tanh"}, {"units": 1, "activation": "linear"}])
    params, history = module.train(module.init_params(0), X, Y, learning_rate=0.1, epochs=50)
    text = report_for(module, params, X, Y, history)
    assert "no common problem found" in text
    assert text.splitlines()[0] == f"diagnostics on 50 samples: loss {module.loss(params, X, Y):.6g}"


SPEC = """name = "small"
inputs = 2

[[layers]]
units = 3
activation = "relu"

[[layers]]
units = 1
activation = "linear"
"""


def test_cli_diagnose_reads_params_and_data(tmp_path, capsys):
    spec = tmp_path / "small.toml"
    spec.write_text(SPEC)
    rng = np.random.default_rng(1)
    rows = np.column_stack([rng.normal(size=(20, 2)), rng.normal(size=20)])
    data = tmp_path / "data.csv"
    data.write_text("a,b,target\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in rows) + "\n")
    module = load_module_from_source(generate_module(str(spec)), "small")
    params = module.init_params(0)
    params["b1"] = np.array([-50.0, -50.0, 0.0])
    module.save_params(tmp_path / "p.npz", params)

    assert main(["diagnose", str(spec), "--data", str(data), "--params", str(tmp_path / "p.npz")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"small: parameters from {tmp_path / 'p.npz'}")
    assert "- dead units: layer 1 (relu): 2 of 3 units (67%)" in out

    assert main(["diagnose", str(spec), "--data", str(data), "--epochs", "5"]) == 0
    assert "after 5 epochs of training" in capsys.readouterr().out

    assert main(["diagnose", str(spec), "--data", str(data), "--params", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz: no such parameter file" in capsys.readouterr().err
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    assert main(["diagnose", str(spec), "--data", str(data), "--params", str(tmp_path / "junk.npz")]) == 2
    assert "junk.npz: not a parameter file" in capsys.readouterr().err
    np.savez(tmp_path / "shape.npz", W1=np.zeros((3, 3)))
    assert main(["diagnose", str(spec), "--data", str(data), "--params", str(tmp_path / "shape.npz")]) == 2
    assert "W1 has shape (3, 3), expected (2, 3)" in capsys.readouterr().err


def test_a_small_wobble_near_the_minimum_is_no_alarm(data):
    X, Y = data
    module = _module([{"units": 3, "activation": "tanh"}, {"units": 1, "activation": "linear"}])
    params = module.init_params(0)
    # Stochastic steps around a minimum: up and down by about 1%, a sliver of the way down from 10.
    wobble = [10.0, 5.0, 2.0, 1.05, 1.0, 1.01, 1.0, 1.012, 1.004, 1.01]
    report = module.diagnose(params, X, Y, history={"loss": wobble, "stopped": "epochs", "best_epoch": None})
    assert not report["history"]["rising"]
    assert "rising loss" not in _problems(report)


def test_a_diverged_run_is_named_as_such_and_its_aftermath_is_not(data):
    X, Y = data
    module = _module([{"units": 3, "activation": "tanh"}, {"units": 1, "activation": "linear"}])
    params = module.init_params(0)
    params["W1"] = params["W1"] * 80  # what a blown-up run leaves: saturated tanh units
    history = {"loss": [3.0, 2.5, 40.0], "stopped": "diverged", "best_epoch": None}
    found = hints(module.diagnose(params, X, Y, history))
    assert [hint.problem for hint in found] == ["rising loss"]
    assert found[0].message.startswith("training diverged after 3 epochs: the loss stopped being finite")
    first_epoch = hints(module.diagnose(params, X, Y, {"loss": [], "stopped": "diverged", "best_epoch": None}))
    assert [hint.message.split(":")[0] for hint in first_epoch] == ["training diverged in its first epoch"]


def test_a_pooling_layer_has_no_gradient_norm_and_the_ratio_skips_it():
    # A pooling layer first and between two layers with parameters: it learns nothing, so it has no norm to
    # report (not a norm of 0, which would read as a vanished gradient), and the ratio is between the others.
    spec = {"name": "pooled", "input_shape": [1, 6, 6], "loss": "squared_error",
            "layers": [{"kind": "max_pool2d", "pool_size": 2, "stride": 1},
                       {"kind": "conv2d", "filters": 2, "kernel_size": 2, "activation": "tanh"},
                       {"kind": "avg_pool2d", "pool_size": 2},
                       {"units": 1, "activation": "linear"}]}
    module = load_module_from_source(generate_module(spec), "pooled")
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(20, 36)), rng.normal(size=(20, 1))
    params = module.init_params(0)
    report = module.diagnose(params, X, Y)
    first_pool, conv, second_pool, dense = report["layers"]
    assert first_pool["gradient_norm"] is None and second_pool["gradient_norm"] is None
    assert [first_pool["activation"], second_pool["activation"]] == ["max_pool2d", "avg_pool2d"]
    _, grads = module.loss_and_grad(params, X, Y)
    assert conv["gradient_norm"] == pytest.approx(np.sqrt(np.sum(grads["W2"] ** 2) + np.sum(grads["b2"] ** 2)))
    assert report["gradient_ratio"] == pytest.approx(conv["gradient_norm"] / dense["gradient_norm"])
    text = format_report(report)
    pool_rows = [line for line in text.splitlines() if line.startswith(("1 ", "3 "))]
    assert len(pool_rows) == 2 and all("no parameters" in line for line in pool_rows), text
    assert "gradient norm of the first layer / the last" in text
    # A tiny gradient everywhere is still called stalled, judged on the layers that learn.
    stalled = {**report, "layers": [{**layer, "gradient_norm": None if layer["gradient_norm"] is None else 1e-9}
                                     for layer in report["layers"]]}
    assert "stalled" in _problems(stalled)
