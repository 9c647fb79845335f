"""Convolution and pooling layers: their specs, the check (finite differences and SymPy's expanded loss), the
command line from generate to predict, and the products that refuse them in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.cli.main import main
from symbp.errors import SpecError, SymbpError
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q

SMALL = {
    "name": "small_conv",
    "input_shape": [2, 3, 4],
    "layers": [
        {"kind": "conv2d", "filters": 2, "kernel_size": [2, 3], "stride": [1, 2], "padding": 1, "activation": "tanh"},
        {"kind": "max_pool2d", "pool_size": 2, "stride": 1},
        {"kind": "avg_pool2d", "pool_size": [2, 1]},
        {"units": 3, "activation": "softmax"},
    ],
    "loss": {"name": "cross_entropy"},
}
ONE_D = {
    "name": "small_conv1d",
    "input_shape": [1, 9],
    "layers": [
        {"kind": "conv1d", "filters": 2, "kernel_size": 3, "stride": 2, "padding": 1, "activation": "relu"},
        {"kind": "avg_pool1d", "pool_size": 2},
        {"kind": "conv1d", "filters": 1, "kernel_size": 2, "activation": "sigmoid", "bias": False},
        {"kind": "max_pool1d", "pool_size": 1},
        {"units": 1, "activation": "linear"},
    ],
}


def _with(spec: dict, index: int, **changes) -> dict:
    layers = [dict(layer) for layer in spec["layers"]]
    layers[index].update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del layers[index][key]
    return {**spec, "layers": layers}


def test_a_window_layers_shapes_units_and_parameters_follow_pytorch():
    spec = load_spec(SMALL)
    conv, max_pool, avg_pool, _ = spec.layers
    # (3 + 2 - 2) + 1 = 4 rows, (4 + 2 - 3) // 2 + 1 = 2 columns; pooling 2x2 stride 1: 3 x 1; then 2 x 1 pools: 1 x 1
    assert conv.window.output_shape == (2, 4, 2) and conv.units == 16
    assert max_pool.window.output_shape == (2, 3, 1) and avg_pool.window.output_shape == (2, 1, 1)
    assert spec.inputs == 24 and spec.sizes == (24, 16, 6, 2, 3)
    assert spec.parameter_count == 2 * 2 * 2 * 3 + 2 + 2 * 3 + 3
    module = load_module_from_source(generate_module(spec), spec.name)
    assert {name: array.shape for name, array in module.init_params(0).items()} == {
        "W1": (2, 2, 2, 3), "b1": (2,), "W4": (2, 3), "b4": (3,)}


# SMALL's shape in miniature, one filter: SymPy's expanded loss goes one parameter at a time through every window.
TINY_2D = {**SMALL, "name": "tiny_conv", "input_shape": [2, 3, 3],
           "layers": [{**SMALL["layers"][0], "filters": 1, "kernel_size": 2}, *SMALL["layers"][1:3],
                      {"units": 2, "activation": "softmax"}]}


@pytest.mark.parametrize(("spec", "samples"), [(TINY_2D, 2), (ONE_D, 3)], ids=["2-D", "1-D"])
def test_the_check_passes_against_finite_differences_and_sympys_expanded_loss(spec, samples):
    report = check_gradients(load_spec(spec), samples=samples, seed=1, expanded=True)
    assert report.passed, report.table()
    assert report.expanded_samples == samples
    assert all(p.expanded_error is not None and p.expanded_error < 1e-9 for p in report.parameters)


def test_the_check_passes_against_finite_differences_on_more_samples():
    report = check_gradients(load_spec(SMALL), samples=8, seed=2, expanded=False)
    assert report.passed, report.table()


def test_the_check_catches_a_wrong_gradient():
    spec = load_spec(SMALL)
    source = generate_module(spec).replace("grad_W1 = (delta_by_position1 @ patches1.T)",
                                           "grad_W1 = (1.001 * delta_by_position1 @ patches1.T)")
    module = load_module_from_source(source, spec.name)
    report = check_gradients(spec, samples=3, seed=1, module=module, expanded=False)
    assert not report.passed


def test_the_generated_step_has_no_python_loop_over_samples_or_positions():
    source = generate_module(load_spec(SMALL))
    step = source[source.index("def _loss_and_grad"):source.index("def train")]
    assert not [line for line in step.splitlines() if line.lstrip().startswith(("for ", "while "))]
    assert "_patches(X, (2, 3, 4), (2, 3), (1, 2), (1, 1))" in step


@pytest.mark.parametrize(("shape", "window", "stride", "padding"), [
    ((2, 6, 6), (2, 2), (2, 2), (0, 0)),  # windows that tile the input: the adjoint writes, never adds
    ((2, 7, 5), (2, 2), (2, 2), (0, 0)),  # the last row and column read by no window
    ((3, 5, 4), (3, 2), (1, 2), (1, 1)),  # overlapping windows over padding
    ((2, 9), (3,), (2,), (1,)),
])
def test_the_patch_adjoint_is_the_adjoint_of_im2col(shape, window, stride, padding):
    module = load_module_from_source(generate_module(load_spec(SMALL)), "small_conv")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, int(np.prod(shape))))
    patches = module._patches(X, shape, window, stride, padding)
    positions = module._positions(shape[1:], window, stride, padding)
    assert patches.shape == (shape[0] * int(np.prod(window)), 3 * int(np.prod(positions)))
    grads = rng.normal(size=patches.shape)
    # <P(X), G> = <X, P*(G)> for every X and G: the one property that makes P* the pullback of P.
    back = module._patches_adjoint(grads, shape, window, stride, padding)
    assert back.shape == X.shape
    assert np.isclose(np.vdot(patches, grads), np.vdot(X, back), rtol=1e-12)
    # A single row of gradients stands for the same row at every offset (average pooling's shares).
    row = rng.normal(size=(1, patches.shape[1]))
    np.testing.assert_allclose(module._patches_adjoint(row, shape, window, stride, padding),
                               module._patches_adjoint(np.repeat(row, patches.shape[0], axis=0), shape, window,
                                                       stride, padding), rtol=1e-12)


def test_the_first_max_mask_marks_one_entry_per_column_the_first_of_ties():
    module = load_module_from_source(generate_module(load_spec(SMALL)), "small_conv")
    patches = np.array([[1.0, 5.0, 2.0, -1.0], [3.0, 5.0, 2.0, -3.0], [3.0, 0.0, 2.0, -2.0]])
    expected = np.array([[0, 1, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=bool)
    np.testing.assert_array_equal(module._first_max_mask(patches), expected)
    # A NaN is the largest entry, as PyTorch's max pooling takes it, so a NaN input is not pooled away.
    patches[1, 2], patches[2, 2] = np.nan, np.nan
    expected[:, 2] = [False, True, False]
    np.testing.assert_array_equal(module._first_max_mask(patches), expected)


@pytest.mark.parametrize(("change", "field", "text"), [
    (_with(SMALL, 1, pool_size=5), "layers[1].pool_size", "larger than the input's 4 along axis 0"),
    (_with(SMALL, 0, kernel_size=[6, 3]), "layers[0].kernel_size", "larger than the input's 3 (padded: 5)"),
    (_with(SMALL, 0, stride=0), "layers[0].stride", "0 would never move"),
    (_with(SMALL, 0, stride=[1, 0]), "layers[0].stride[1]", "from 1 to"),
    (_with(SMALL, 0, padding=-1), "layers[0].padding", "from 0 to"),
    (_with(SMALL, 0, filters=None), "layers[0].filters", "output channels"),
    (_with(SMALL, 0, activation=None), "layers[0]", "needs an activation"),
    (_with(SMALL, 0, kernel_size=None), "layers[0]", "needs kernel_size"),
    (_with(SMALL, 0, kind="conv1d"), "layers[0].kind", "use the 2-D kind"),
    (_with(SMALL, 0, kind="conv3d"), "layers[0].kind", "expected one of dense, conv1d"),
    (_with(SMALL, 0, units=4), "layers[0].units", "is not a key of a conv2d layer"),
    (_with(SMALL, 1, activation="relu"), "layers[1].activation", "is not a key of a max_pool2d layer"),
    (_with(SMALL, 0, kernel_size=[2, 3, 1]), "layers[0].kernel_size", "a list of 2 (one per axis)"),
    ({**SMALL, "input_shape": [2, 4]}, "layers[0].kind", "but input_shape has shape [2, 4]; use the 1-D kind"),
    ({**SMALL, "input_shape": [4000, 4000, 1]}, "input_shape", "over the limit of 1,000,000 inputs"),
    (_with({**SMALL, "input_shape": [1, 4000, 200]}, 0, filters=64), "layers[0]", "over the limit of 1,000,000"),
    ({**SMALL, "input_shape": [2, 0, 5]}, "input_shape[1]", "from 1 to"),
    ({**SMALL, "input_shape": 24}, "input_shape", "[channels, length] or [channels, height, width]"),
    ({**SMALL, "inputs": 25}, "inputs", "input_shape [2, 3, 4] has 24 entries"),
    ({**{k: v for k, v in SMALL.items() if k != "input_shape"}, "inputs": 24}, "layers[0].kind",
     "the input (inputs = n) is flat"),
    ({**SMALL, "layers": [{"units": 24, "activation": "relu"}, *SMALL["layers"]]}, "layers[1].kind",
     "layers[0] is flat"),
    (_with(SMALL, 0, activation="softmax"), "layers[0].activation", "is for a dense output layer"),
    (_with(SMALL, 3, filters=3), "layers[3]", "filters"),
])
def test_a_bad_window_spec_is_refused_in_one_line_naming_the_field(change, field, text):
    with pytest.raises(SpecError) as error:
        load_spec(change)
    message = str(error.value)
    assert message.startswith(field) and text in message and "\n" not in message, message


def test_a_bad_spec_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_with(SMALL, 1, pool_size=[2, 9])))
    out = tmp_path / "bad.py"
    assert main(["generate", str(path), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "layers[1].pool_size: the window of 9 is larger than the input's 2" in err
    assert list(tmp_path.iterdir()) == [path]


def test_train_then_predict_a_network_mixing_windows_and_dense_layers(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 24))
    labels = (X[:, :12].sum(axis=1) > X[:, 12:].sum(axis=1)).astype(int) + (X[:, 0] > 1).astype(int)
    np.savez(tmp_path / "data.npz", X=X, Y=np.eye(3)[labels])
    path = tmp_path / "conv.json"
    path.write_text(json.dumps({**SMALL, "training": {"optimizer": "adam", "learning_rate": 0.05, "epochs": 60}}))
    params = tmp_path / "params.npz"
    assert main(["train", str(path), "--data", str(tmp_path / "data.npz"), "-o", str(params), "--quiet"]) == 0
    trained = np.load(params)
    assert trained["W1"].shape == (2, 2, 2, 3)
    capsys.readouterr()
    assert main(["predict", str(path), "--params", str(params), "--data", str(tmp_path / "data.npz"),
                 "-o", str(tmp_path / "predictions.csv")]) == 0
    accuracy = float(capsys.readouterr().out.split("accuracy ")[1].split()[0])
    assert accuracy > 0.6  # 24 samples, 3 classes: chance is about a third
    np.savez(tmp_path / "narrow.npz", X=X[:, :23], Y=np.eye(3)[labels])
    assert main(["predict", str(path), "--params", str(params), "--data", str(tmp_path / "narrow.npz")]) == 2
    assert "input_shape [2, 3, 4] is 24 inputs a row, read row-major" in capsys.readouterr().err


def test_a_dense_layers_index_form_is_refused_rather_than_guessed():
    """A window layer's entries are written by channel and position (``index_definition``), never as one unit's."""
    from symbp.symbolic.network import network_of

    layer = network_of(load_spec(SMALL)).layers[0]
    with pytest.raises(SymbpError, match="written in its own indices"):
        layer.index_preactivation(1)
    assert layer.index_definition().has(q.weight(1))


def test_numeric_and_expanded_preactivations_agree_with_the_module():
    """What verify and the oracle read of a window layer equals what the generated module computes."""
    import sympy as sp

    from symbp.symbolic.network import network_of

    spec = load_spec(ONE_D)
    network = network_of(spec)
    module = load_module_from_source(generate_module(spec), spec.name)
    rng = np.random.default_rng(3)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X = rng.normal(size=(4, 9))
    hidden = module._forward_pass(params, X)
    previous = X
    for layer in network.layers[:-1]:
        numeric = layer.numeric_preactivation(previous, params)
        matrices = {p.name: sp.Matrix(*p.symbol.shape, [sp.Float(v) for v in np.ravel(params[p.name])])
                    for p in layer.parameters}
        expanded = np.array([[float(v) for v in layer.expanded_preactivation(list(row), matrices)]
                             for row in previous])
        np.testing.assert_allclose(expanded, numeric, rtol=1e-12, atol=1e-12)
        activation = {"relu": lambda z: np.maximum(z, 0), "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
                      "linear": lambda z: z}[layer.calculus.name]
        previous = activation(numeric)
    np.testing.assert_allclose(previous @ params["W5"] + params["b5"], hidden[-1], rtol=1e-12)


def test_a_notebook_shows_a_window_spec_as_its_text_rather_than_failing():
    import symbp

    assert symbp.load_spec(SMALL)._repr_html_() is None
