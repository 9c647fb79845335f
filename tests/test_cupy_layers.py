"""The CuPy module with every layer kind besides dense (residual, dropout, layer and batch normalisation, weight
penalties, convolution and pooling), on the CPU stand-in: on drawn architectures mixing them, its loss and
gradient equal the NumPy module's to 1e-12 relative in float64 (batch normalisation in training mode and in
evaluation mode by drawn running statistics, dropout with drawn masks) and PyTorch autograd's, and training
with every optimizer, on full batches and mini-batches, ends at the NumPy module's parameters and running
statistics.

``SYMBP_CUPY_DRAWS`` sets how many architectures are drawn for the gradient (default 24).
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cupy_stand_in import DeviceArray
from test_batchnorm_draws import _normalised
from test_cupy import _assert_close, _load_on_stand_in, needs_compiler
from test_residual_draws import _OUTPUTS, _PENALTIES
from test_window_draws import _window_layer
from torch_reference import assert_pytorchs_loss_and_gradient, drawn_problem

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.backends.cupy import generate_cupy_module, module_context
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic.network import build_network

DRAWS = int(os.environ.get("SYMBP_CUPY_DRAWS", "24"))
_HIDDEN = ("tanh", "sigmoid", "relu", "softplus", "linear")
_KINDS = ("dense", "residual", "dropout", "layer", "batch")


def _drawn(draw: int) -> dict:
    """An architecture of a few layers of every kind: windows first on some draws, and each of the kinds of
    _KINDS in turn at least once over any five draws in a row."""
    rng = random.Random(31_337 + draw)
    spec: dict = {"name": f"kinds{draw}"}
    layers = []
    if draw % 3 == 0:
        dims = rng.choice((1, 2))
        shape = [rng.randint(1, 2), *(rng.randint(3, 6) for _ in range(dims))]
        spec["input_shape"] = list(shape)
        for _ in range(rng.randint(1, 2)):
            layer, shape = _window_layer(rng, shape)
            layers.append(layer)
        width = int(np.prod(shape))
    else:
        width = rng.randint(2, 4)
        spec["inputs"] = width
    kinds = [_KINDS[draw % len(_KINDS)], *(rng.choice(_KINDS) for _ in range(rng.randint(0, 2)))]
    for kind in kinds:
        units = width if kind == "residual" else rng.randint(2, 4)
        layer = {"units": units, "activation": rng.choice(_HIDDEN), "residual": kind == "residual",
                 "bias": rng.random() < 0.8}
        if kind in ("layer", "batch"):
            layer = _normalised(layer, rng, kind)
        if kind == "dropout":
            layer["dropout"] = rng.choice((0.2, 0.5))
        penalty = rng.choice(_PENALTIES)
        if penalty:
            layer["kernel_regularizer"] = penalty
        layers.append(layer)
        width = units
    activation, loss = rng.choice(_OUTPUTS)
    output = {"units": 2 + rng.randint(0, 1) if activation == "softmax" else rng.randint(1, 3),
              "activation": activation}
    if rng.random() < 0.3:
        output = _normalised(output, rng, "batch")
    if rng.random() < 0.4:
        output["kernel_regularizer"] = rng.choice(_PENALTIES[1:])
    spec["layers"] = [*layers, output]
    spec["loss"] = {"name": loss, "reduction": rng.choice(("mean", "sum")),
                    "scale": 0.5 if loss == "squared_error" else 1.0}
    spec["training"] = {"seed": draw}
    return spec


@functools.cache
def _modules(draw: int):
    spec = load_spec(_drawn(draw))
    return (spec, load_module_from_source(generate_module(spec), f"np_kinds{draw}"),
            _load_on_stand_in(generate_cupy_module(spec), f"cupy_kinds{draw}"))


@functools.cache
def _all_loaded() -> None:
    """Every module of the draws loaded before any kernel runs, so that the stand-in compiles them in one go."""
    for draw in range(DRAWS):
        _modules(draw)


def _assert_same_gradient(got, want, what):
    """Relative to the whole gradient: a bias before batch normalisation has a gradient that is 0 but for
    round-off (the mean takes the bias away), which no two orders of summation round alike."""
    (got_value, got_grads), (want_value, want_grads) = got, want
    _assert_close(got_value, want_value, f"{what}: loss")
    assert set(got_grads) == set(want_grads)
    scale = max(float(np.max(np.abs(gradient))) for gradient in want_grads.values())
    for key in want_grads:
        assert isinstance(got_grads[key], DeviceArray), f"{what}: gradient of {key} left the device"
        error = float(np.max(np.abs(np.asarray(got_grads[key]) - want_grads[key]), initial=0.0))
        assert error <= 1e-12 * scale, f"{what}: gradient of {key} off by {error:.3g} (gradient's scale {scale:.3g})"


def test_the_draws_cover_every_kind():
    kinds = set()
    for draw in range(max(DRAWS, 5)):
        for layer in _drawn(draw)["layers"]:
            kinds.add(layer.get("kind") or ("residual" if layer.get("residual") else layer.get("normalization")
                                            or ("dropout" if layer.get("dropout") else "dense")))
            kinds.update(("penalty",) if layer.get("kernel_regularizer") else ())
    assert {"dense", "residual", "dropout", "layer", "batch", "penalty"} <= kinds
    assert any(kind.startswith("conv") for kind in kinds) and any("pool" in kind for kind in kinds)


@needs_compiler
@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_has_the_numpy_modules_loss_and_gradient(draw):
    """Evaluation mode, training mode (batch normalisation by the batch's statistics) and dropped inputs: loss,
    gradients and forward equal the NumPy module's; the gradient PyTorch's too."""
    _all_loaded()
    spec, numpy_module, cupy_module = _modules(draw)
    params, X, Y, rng = drawn_problem(spec, numpy_module, draw)
    statistics = getattr(numpy_module, "STATISTICS", {})
    for name in statistics:  # running statistics away from their starting values
        shape = params[name].shape
        params[name] = rng.uniform(0.3, 2.0, shape) if name.startswith("running_var") else rng.normal(0, 0.5, shape)
    extra = (numpy_module.draw_masks(np.random.default_rng(draw), X.shape[0]),) \
        if hasattr(numpy_module, "DROPOUT") else ()
    for given in ((), extra) if extra else ((),):
        modes = (False, True) if statistics else (None,)
        for training in modes:
            flag = {} if training is None else {"training": training}
            what = f"masks={bool(given)} {flag}"
            want = numpy_module.loss_and_grad(params, X, Y, *given, **flag)
            _assert_same_gradient(cupy_module.loss_and_grad(params, X, Y, *given, **flag), want, what)
            _assert_close(cupy_module.loss(params, X, Y, *given, **flag), numpy_module.loss(params, X, Y, *given,
                                                                                            **flag), what)
    _assert_close(cupy_module.forward(params, X), numpy_module.forward(params, X), "forward")
    torch = pytest.importorskip("torch")
    value, grads = cupy_module.loss_and_grad(params, X, Y, *extra, **({"training": True} if statistics else {}))
    masks = {name: mask for name, mask in extra[0].items()} if extra else None
    assert_pytorchs_loss_and_gradient(torch, spec, value, {k: np.asarray(v) for k, v in grads.items()}, params,
                                      X, Y, masks)


# Every kind among them. Not draw 0: its linear layer's bias feeds a batch-normalised one, whose mean takes the
# bias away, so its gradient is round-off alone, which adam's step (the gradient over its root mean square)
# blows up to the learning rate in whichever direction the round-off points.
_TRAINED = (1, 3, 4, 7, 8, 9, 12)


@needs_compiler
@pytest.mark.parametrize("draw", _TRAINED)
@pytest.mark.parametrize("options", [
    {"optimizer": "gd", "batch_size": None, "learning_rate": 0.1},
    {"optimizer": "sgd", "batch_size": 5, "learning_rate": 0.05},
    {"optimizer": "momentum", "batch_size": 4, "learning_rate": 0.05, "momentum": 0.8},
    {"optimizer": "momentum", "batch_size": None, "learning_rate": 0.05},
    {"optimizer": "adam", "batch_size": None, "learning_rate": 0.01},
    {"optimizer": "adam", "batch_size": 5, "learning_rate": 0.01},
], ids=["gd", "sgd", "momentum", "momentum-full-batch", "adam-full-batch", "adam"])
def test_training_ends_at_the_numpy_modules_parameters_and_running_statistics(draw, options):
    _all_loaded()
    spec, numpy_module, cupy_module = _modules(draw)
    _, X, Y, rng = drawn_problem(spec, numpy_module, draw)
    # Drawn around the starting parameters; the running statistics start where init_params starts them.
    params = {name: array + (rng.normal(scale=0.3, size=array.shape) if name in numpy_module.PARAMS else 0.0)
              for name, array in numpy_module.init_params(draw).items()}
    X, Y = np.concatenate([X, X[:5] * 0.5]), np.concatenate([Y, Y[:5]])  # 12 rows: batches of 5 leave 2
    want_params, want = numpy_module.train(params, X, Y, epochs=3, **options)
    got_params, got = cupy_module.train(params, X, Y, epochs=3, **options)
    assert got["stopped"] == want["stopped"] == "epochs"
    _assert_close(got["loss"], want["loss"], "history['loss']")
    assert set(got_params) == set(want_params)
    for key in want_params:
        _assert_close(got_params[key], want_params[key], f"trained {key}")


BATCH_NORMALISED = {
    "name": "normalised", "inputs": 3, "loss": "cross_entropy",
    "layers": [{"units": 4, "activation": "relu", "normalization": "batch", "momentum": 0.3},
               {"units": 3, "activation": "tanh", "normalization": "layer"},
               {"units": 2, "activation": "softmax", "normalization": "batch"}],
}


@needs_compiler
def test_batch_norm_keeps_running_statistics_predicts_by_them_and_stores_them(tmp_path):
    """init_params starts them as PyTorch (mean 0, variance 1); after training, forward and loss in evaluation mode
    normalise by them (the NumPy module's), training mode by the batch; save_params and load_params keep them."""
    spec = load_spec(BATCH_NORMALISED)
    numpy_module = load_module_from_source(generate_module(spec), "np_normalised")
    cupy_module = _load_on_stand_in(generate_cupy_module(spec), "cupy_normalised")
    assert cupy_module.STATISTICS == numpy_module.STATISTICS == {
        "running_mean1": 0.3, "running_var1": 0.3, "running_mean3": 0.1, "running_var3": 0.1}
    start = cupy_module.init_params(1)
    for name, array in numpy_module.init_params(1).items():
        np.testing.assert_array_equal(np.asarray(start[name]), array)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(10, 3)), np.eye(2)[rng.integers(0, 2, 10)]
    trained, _ = cupy_module.train(start, X, Y, epochs=2, batch_size=4, learning_rate=0.1)
    assert not np.allclose(np.asarray(trained["running_var1"]), 1.0)
    plain = {name: np.asarray(array) for name, array in trained.items()}
    _assert_close(cupy_module.forward(trained, X[:3]), numpy_module.forward(plain, X[:3]), "forward by the running")
    for training in (False, True):
        _assert_close(cupy_module.loss(trained, X, Y, training=training),
                      numpy_module.loss(plain, X, Y, training=training), f"loss, training={training}")
    assert cupy_module.loss(trained, X, Y) != pytest.approx(cupy_module.loss(trained, X, Y, training=True))
    cupy_module.save_params(tmp_path / "trained.npz", trained)
    with np.load(tmp_path / "trained.npz") as stored:
        assert set(stored.files) == set(numpy_module.STORED)
    loaded = cupy_module.load_params(tmp_path / "trained.npz")
    assert all(isinstance(array, DeviceArray) for array in loaded.values())
    _assert_close(cupy_module.forward(loaded, X), numpy_module.forward(plain, X), "forward after load_params")
    with pytest.raises(ValueError, match="one sample has no variance"):
        cupy_module.loss_and_grad(trained, X[:1], Y[:1], training=True)
    with pytest.raises(ValueError, match="last batch of 1"):
        cupy_module.train(start, X, Y, batch_size=3)


def test_elementwise_work_is_in_kernels_and_statistics_in_cupy_reductions():
    """A normalised layer's centring, scaling and chain rule are kernels; its means and variances CuPy's sums,
    along each row (layer) or down each column (batch); a residual layer's skip and a penalty are kernels too."""
    spec = {**BATCH_NORMALISED, "layers": [
        {**BATCH_NORMALISED["layers"][0], "kernel_regularizer": {"l1": 0.01, "l2": 0.02}},
        {"units": 4, "activation": "tanh", "residual": True}, *BATCH_NORMALISED["layers"][1:]]}
    context = module_context(build_network(spec))
    step = "\n".join(context["bodies"]["step"])
    assert "cp.sum(U1, axis=0)" in step and "cp.sum(U3, axis=1, keepdims=True)" in step
    assert "if training:" in step and "mean1 = running_mean1" in step
    names = {kernel.name for kernel in context["kernels"]}
    assert {"layer3_C3_1", "layer1_deltaU1_training_1", "layer1_deltaU1_evaluation_1"} <= names
    assert {"penalty_W1_1", "penalty_gradient_W1_1"} <= names
    (residual,) = context["hidden"][2]
    assert residual.inputs == ("A1", "P2", "b2") and residual.outputs == ("A2",)
    (below,) = context["backward"][1]
    assert "delta2" in below.inputs  # the skip's error reaches layer 1 beside G1 = delta2 W2^T
    assert "np." not in step


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed")
def test_the_modules_of_every_kind_pass_ruff_and_are_the_same_bytes_each_time(tmp_path):
    for draw in range(6):
        source = generate_cupy_module(load_spec(_drawn(draw)))
        assert generate_cupy_module(load_spec(_drawn(draw))) == source
        (tmp_path / f"kinds{draw}.py").write_text(source)
    (tmp_path / "normalised.py").write_text(generate_cupy_module(load_spec(BATCH_NORMALISED)))
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([ruff, "check", "--no-cache", "--config", str(root / "pyproject.toml"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


EVERY_KIND = {
    "name": "every_kind", "input_shape": [1, 4, 4], "loss": "cross_entropy",
    "layers": [{"kind": "conv2d", "filters": 2, "kernel_size": 2, "padding": 1, "activation": "relu"},
               {"kind": "max_pool2d", "pool_size": 2},
               {"units": 3, "activation": "tanh", "normalization": "layer"},
               {"units": 3, "activation": "tanh", "normalization": "batch", "kernel_regularizer": {"l1": 0.01}},
               {"units": 3, "activation": "sigmoid", "residual": True, "kernel_regularizer": {"l2": 0.01}},
               {"units": 2, "activation": "softmax", "dropout": 0.2}],
}


@needs_compiler
def test_every_kind_computes_in_float_for_float32_data():
    """Every kernel, allocating or not, and im2col keep float32: the gradient is float32 and agrees with the NumPy
    module's in float32, in both modes; training in float32 keeps the parameters and running statistics float32."""
    spec = load_spec(EVERY_KIND)
    numpy_module = load_module_from_source(generate_module(spec), "np_every_kind")
    cupy_module = _load_on_stand_in(generate_cupy_module(spec), "cupy_every_kind")
    _, X, Y, _ = drawn_problem(spec, numpy_module, 3)
    params = {name: array.astype(np.float32) for name, array in numpy_module.init_params(3).items()}
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    for training in (False, True):
        value, grads = cupy_module.loss_and_grad(params, X32, Y32, training=training)
        want_value, want_grads = numpy_module.loss_and_grad(params, X32, Y32, training=training)
        assert all(gradient.dtype == np.float32 for gradient in grads.values())
        _assert_close(value, want_value, f"loss, training={training}", relative=1e-5)
        scale = max(float(np.max(np.abs(gradient))) for gradient in want_grads.values())
        for key in want_grads:
            assert float(np.max(np.abs(np.asarray(grads[key]) - want_grads[key]))) <= 1e-4 * scale, key
    trained, _ = cupy_module.train(params, X, Y, epochs=2, batch_size=4, dtype=np.float32)
    assert all(array.dtype == np.float32 for array in trained.values()) and "running_var4" in trained
