"""Weight penalties, batch normalisation, convolution and pooling in the array-API module.

Every number is checked against the NumPy module (to 1e-12 relative, in float64) on array_api_strict, NumPy,
PyTorch and JAX (through jax.jit), and the gradients of drawn architectures mixing these kinds against PyTorch
autograd (tests/torch_reference.py). The module stays pure: a batch-normalised training step returns the running
statistics it moves to, and train() carries them, ending where the NumPy module's train() ends.

``SYMBP_ARRAY_API_DRAWS`` sets how many architectures are drawn (default 16), ``SYMBP_ARRAY_API_SEED`` the seed.
"""

from __future__ import annotations

import functools
import json
import os
import random

import numpy as np
import pytest
from array_libraries import LIBRARIES, as_numpy, assert_close, namespace
from test_batchnorm_draws import _PENALTIES, _normalised
from test_residual_draws import _OUTPUTS
from test_window_draws import _window_layer
from torch_reference import assert_pytorchs_loss_and_gradient, drawn_problem

from symbp.checks.gradients import load_module_from_source, random_problem
from symbp.cli.main import main
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec

pytest.importorskip("array_api_compat")

from symbp.render.code.backends.array_api import generate_array_api_module  # noqa: E402

DRAWS = int(os.environ.get("SYMBP_ARRAY_API_DRAWS", "16"))
SEED = int(os.environ.get("SYMBP_ARRAY_API_SEED", "0"))
TRAINING = {"learning_rate": 0.2, "epochs": 4, "seed": 3}
SPECS = {
    "batchnorm-dropout-penalties": {
        "name": "normalised", "inputs": 3,
        "layers": [{"units": 4, "activation": "relu", "normalization": "batch", "momentum": 0.3,
                    "kernel_regularizer": {"l2": 0.01}},
                   {"units": 3, "activation": "tanh", "dropout": 0.25, "kernel_regularizer": {"l1": 0.01, "l2": 0.02}},
                   {"units": 2, "activation": "sigmoid", "normalization": "batch", "epsilon": 1e-3}],
        "loss": "binary_cross_entropy", "training": TRAINING,
    },
    "conv2d-maxpool": {
        "name": "convolved", "inputs": 32, "input_shape": [2, 4, 4],
        "layers": [{"kind": "conv2d", "filters": 3, "kernel_size": 2, "padding": 1, "activation": "relu"},
                   {"kind": "max_pool2d", "pool_size": 2},
                   {"units": 3, "activation": "softmax", "kernel_regularizer": {"l2": 0.05}}],
        "loss": "cross_entropy", "training": TRAINING,
    },
    "conv1d-avgpool-batchnorm": {
        "name": "strided", "inputs": 14, "input_shape": [2, 7],
        "layers": [{"kind": "conv1d", "filters": 2, "kernel_size": 3, "stride": 2, "padding": 1, "activation": "tanh"},
                   {"kind": "avg_pool1d", "pool_size": 2, "stride": 1},
                   {"kind": "conv1d", "filters": 2, "kernel_size": 1, "activation": "softplus", "bias": False},
                   {"units": 2, "activation": "linear", "normalization": "batch"}],
        "loss": {"name": "squared_error", "scale": 0.5, "reduction": "mean"}, "training": TRAINING,
    },
    # No dropout: full-batch training on JAX runs epochs ahead, holding the data's transpose for the first layer.
    "batchnorm-first": {
        "name": "first", "inputs": 3,
        "layers": [{"units": 4, "activation": "tanh", "normalization": "batch"},
                   {"units": 2, "activation": "softmax"}],
        "loss": "cross_entropy", "training": TRAINING,
    },
}


@functools.cache
def _modules(name: str):
    spec = load_spec(SPECS[name])
    safe = name.replace("-", "_")
    return (spec, load_module_from_source(generate_module(spec), f"np_kinds_{safe}"),
            load_module_from_source(generate_array_api_module(spec), f"xp_kinds_{safe}"))


def _problem(spec, numpy_module, samples=9, seed=4):
    X, Y, rng = random_problem(spec, samples, seed=seed)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in numpy_module.init_params(2).items()}
    for name in getattr(numpy_module, "STATISTICS", ()):
        # Running statistics away from their start, so that evaluation mode differs from training mode.
        shape = params[name].shape
        params[name] = rng.uniform(0.5, 2.0, shape) if "var" in name else rng.normal(0, 0.5, shape)
    return params, X, Y


def _in(xp, arrays):
    return {name: xp.asarray(value, dtype=xp.float64) for name, value in arrays.items()}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", list(SPECS))
def test_loss_gradient_and_forward_equal_the_numpy_modules_in_both_modes(name, library):
    xp = namespace(library)
    spec, numpy_module, array_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module)
    arrays, X_xp, Y_xp = _in(xp, params), xp.asarray(X, dtype=xp.float64), xp.asarray(Y, dtype=xp.float64)
    normalised = hasattr(numpy_module, "STATISTICS")
    masks = numpy_module.draw_masks(np.random.default_rng(7), X.shape[0]) if hasattr(numpy_module, "DROPOUT") else None
    extra, extra_xp = ((masks,), (_in(xp, masks),)) if masks is not None else ((), ())
    function, forward = array_module.loss_and_grad, array_module.forward
    if library == "jax":
        import jax

        # The compiled functions are the ones checked; batch normalisation's mode is a static argument.
        function = jax.jit(function, static_argnames="training") if normalised else jax.jit(function)
        forward = jax.jit(forward)
    for training in (False, True) if normalised else (None,):
        mode = {} if training is None else {"training": training}
        want_value, want_grads = numpy_module.loss_and_grad(params, X, Y, *extra, **mode)
        value, grads = function(arrays, X_xp, Y_xp, *extra_xp, **mode)
        assert_close(value, want_value, f"loss_and_grad's loss {mode}")
        assert set(grads) == set(want_grads) == set(numpy_module.PARAMS)
        for key in want_grads:
            assert_close(grads[key], want_grads[key], f"gradient of {key} {mode}")
        assert_close(array_module.loss(arrays, X_xp, Y_xp, *extra_xp, **mode),
                      numpy_module.loss(params, X, Y, *extra, **mode), f"loss {mode}")
    assert_close(forward(arrays, X_xp), numpy_module.forward(params, X), "forward")


@pytest.mark.parametrize("library", LIBRARIES)
def test_max_pooling_sends_each_windows_error_to_its_first_largest_entry_as_the_numpy_module(library):
    xp = namespace(library)
    spec, numpy_module, array_module = _modules("conv2d-maxpool")
    params, _, Y = _problem(spec, numpy_module)
    # Inputs of 0 and 1 and kernels of whole numbers: every window holds equal largest entries, and relu's zeros.
    rng = np.random.default_rng(5)
    X = rng.integers(0, 2, size=Y.shape[:1] + (spec.inputs,)).astype(np.float64)
    params = {**params, "W1": rng.integers(0, 2, size=params["W1"].shape).astype(np.float64),
              "b1": np.zeros(params["b1"].shape)}
    # The max pooling's windows (a column per sample, channel and position, 4 entries each) hold ties.
    windows = [array for array in numpy_module._forward_pass(params, X) if array.shape == (4, X.shape[0] * 12)]
    tied = np.sum(windows[0] == windows[0].max(axis=0, keepdims=True), axis=0) > 1
    assert np.mean(tied) > 0.25, f"only {np.sum(tied)} of {tied.size} windows hold a tie"
    want_value, want_grads = numpy_module.loss_and_grad(params, X, Y)
    value, grads = array_module.loss_and_grad(_in(xp, params), xp.asarray(X), xp.asarray(Y, dtype=xp.float64))
    assert_close(value, want_value, "loss")
    for key in want_grads:
        assert_close(grads[key], want_grads[key], f"gradient of {key}")


def test_a_training_step_returns_the_running_statistics_it_moves_to_and_writes_nothing():
    jax = pytest.importorskip("jax")
    xp = namespace("jax")
    spec, numpy_module, array_module = _modules("batchnorm-dropout-penalties")
    params, X, Y = _problem(spec, numpy_module)
    masks = numpy_module.draw_masks(np.random.default_rng(7), X.shape[0])
    want_value, want_grads, batch = numpy_module._loss_and_grad(params, X, Y, masks, True)
    before = {name: array.copy() for name, array in params.items()}
    plain = (array_module.loss_grad_and_statistics, params, X, Y, masks)
    compiled = (jax.jit(array_module.loss_grad_and_statistics), _in(xp, params), xp.asarray(X), xp.asarray(Y),
                _in(xp, masks))
    for function, *arguments in (plain, compiled):
        value, grads, moved = function(*arguments)
        assert_close(value, want_value, "loss")
        for key in want_grads:
            assert_close(grads[key], want_grads[key], f"gradient of {key}")
        assert set(moved) == set(numpy_module.STATISTICS)
        for name, momentum in numpy_module.STATISTICS.items():
            assert_close(moved[name], (1 - momentum) * params[name] + momentum * batch[name], name)
    assert all(np.array_equal(params[name], before[name]) for name in params)


# Full batches (the running statistics moved once a step is taken) and mini-batches (at once, with a last one of 2).
@pytest.mark.parametrize("library, optimizer, batch_size", [("numpy", "gd", None), ("numpy", "momentum", 6),
                                                             ("torch", "adam", 4), ("jax", "adam", None)])
@pytest.mark.parametrize("name", ["batchnorm-dropout-penalties", "conv2d-maxpool", "batchnorm-first"])
def test_training_ends_at_the_numpy_modules_parameters_and_running_statistics(name, library, optimizer, batch_size):
    xp = namespace(library)
    spec, numpy_module, array_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module, samples=10)
    settings = {"optimizer": optimizer, "batch_size": batch_size,
                "learning_rate": 0.02 if optimizer == "adam" else 0.2}
    want_params, want = numpy_module.train(params, X, Y, **settings)
    got_params, got = array_module.train(_in(xp, params), xp.asarray(X, dtype=xp.float64),
                                         xp.asarray(Y, dtype=xp.float64), **settings)
    assert got["stopped"] == want["stopped"] == "epochs"
    assert_close(got["loss"], want["loss"], "history['loss']", relative=1e-10)
    assert set(got_params) == set(want_params)
    for key in want_params:
        assert_close(got_params[key], want_params[key], f"trained {key}", relative=1e-10)


def test_a_held_transpose_of_the_data_gives_a_batch_normalised_step_its_gradient():
    jax = pytest.importorskip("jax")
    xp = namespace("jax")
    spec, numpy_module, array_module = _modules("batchnorm-first")
    params, X, Y = _problem(spec, numpy_module)
    want_value, want_grads, _ = numpy_module._loss_and_grad(params, X, Y, True)
    held = xp.asarray(np.ascontiguousarray(X.T))
    arguments = (_in(xp, params), xp.asarray(X), xp.asarray(Y))
    for function in (array_module.loss_grad_and_statistics, jax.jit(array_module.loss_grad_and_statistics)):
        value, grads, _ = function(*arguments, X_T=held)
        assert_close(value, want_value, "loss")
        for key in want_grads:
            assert_close(grads[key], want_grads[key], f"gradient of {key}")
    value, grads = array_module.loss_and_grad(*arguments, training=True, X_T=held)
    assert_close(grads["W1"], want_grads["W1"], "gradient of W1")
    with pytest.raises(ValueError, match=r"^X_T: expected X's transpose, shape \(3, 9\), got \(9, 3\)$"):
        array_module.loss_grad_and_statistics(*arguments, X_T=arguments[1])


@pytest.mark.parametrize("batch_size", [None, 4], ids=["full-batch", "mini-batch"])
def test_batch_norm_on_dask_chunks_takes_the_whole_batchs_statistics(batch_size):
    da = pytest.importorskip("dask.array")
    spec, numpy_module, array_module = _modules("batchnorm-dropout-penalties")
    params, X, Y = _problem(spec, numpy_module, samples=10)
    settings = {"optimizer": "adam", "batch_size": batch_size, "learning_rate": 0.02, "epochs": 3}
    want_params, want = numpy_module.train(params, X, Y, **settings)
    # Chunks of 3 rows: a full batch's means are Dask reductions over every chunk, not a chunk's own.
    got_params, got = array_module.train({k: da.from_array(v) for k, v in params.items()},
                                         da.from_array(X, chunks=(3, X.shape[1])),
                                         da.from_array(Y, chunks=(3, Y.shape[1])), **settings)
    assert_close(got["loss"], want["loss"], "history['loss']", relative=1e-10)
    for key in want_params:
        assert_close(np.asarray(got_params[key]), want_params[key], f"trained {key}", relative=1e-10)


def test_window_layers_refuse_dask_arrays_naming_the_fix():
    da = pytest.importorskip("dask.array")
    spec, numpy_module, array_module = _modules("conv2d-maxpool")
    params, X, Y = _problem(spec, numpy_module)
    with pytest.raises(TypeError, match=r"Dask arrays do not carry this network's convolution and pooling layers; "
                                        r"compute them into memory"):
        array_module.loss_and_grad({k: da.from_array(v) for k, v in params.items()}, da.from_array(X),
                                   da.from_array(Y))


def test_a_batch_of_one_in_training_mode_is_refused_as_the_numpy_module_refuses_it():
    spec, numpy_module, array_module = _modules("batchnorm-dropout-penalties")
    params, X, Y = _problem(spec, numpy_module)
    with pytest.raises(ValueError) as want:
        numpy_module.loss_and_grad(params, X[:1], Y[:1], training=True)
    with pytest.raises(ValueError) as got:
        array_module.loss_and_grad(params, X[:1], Y[:1], training=True)
    assert str(got.value) == str(want.value)
    with pytest.raises(ValueError, match=r"batch_size: 3 leaves a last batch of 1 of the 10 rows"):
        array_module.train(params, np.ones((10, 3)), np.ones((10, 2)) / 2, batch_size=3)


def test_init_save_and_load_carry_the_running_statistics(tmp_path):
    torch = pytest.importorskip("torch")
    _, numpy_module, array_module = _modules("batchnorm-dropout-penalties")
    want = numpy_module.init_params(5)
    got = array_module.init_params(5, like=torch.zeros(1, dtype=torch.float64))
    assert set(got) == set(want) and {"running_mean1", "running_var3"} <= set(got)
    for key in want:
        np.testing.assert_array_equal(got[key].numpy(), want[key])
    array_module.save_params(tmp_path / "p.npz", got)
    loaded = numpy_module.load_params(tmp_path / "p.npz")
    assert all(np.array_equal(loaded[key], want[key]) for key in want)


# -- drawn architectures: windows, dense layers with batch or layer normalisation, dropout and penalties


def _drawn(draw: int) -> dict:
    rng = random.Random(SEED * 100_003 + draw)
    layers, spec = [], {"name": f"mixed{draw}"}
    if rng.random() < 0.6:
        dims = rng.choice((1, 2))
        shape = [rng.randint(1, 2), *(rng.randint(3, 6) for _ in range(dims))]
        spec["input_shape"] = list(shape)
        for _ in range(rng.randint(1, 2)):
            layer, shape = _window_layer(rng, shape)
            layers.append(layer)
    else:
        spec["inputs"] = rng.randint(1, 4)
    for _ in range(rng.randint(0, 2)):
        kind = rng.choice(("dense", "dropout", "layer", "batch", "batch"))
        layer = {"units": rng.randint(2, 4), "activation": rng.choice(("tanh", "sigmoid", "relu", "softplus")),
                 "bias": rng.random() < 0.8}
        if kind in ("layer", "batch"):
            layer = _normalised(layer, rng, kind)
        if kind == "dropout":
            layer["dropout"] = rng.choice((0.2, 0.5))
        penalty = rng.choice(_PENALTIES)
        if penalty:
            layer["kernel_regularizer"] = penalty
        layers.append(layer)
    activation, loss = rng.choice(_OUTPUTS)
    output = {"units": 2 + rng.randint(0, 1) if activation == "softmax" else rng.randint(1, 3),
              "activation": activation}
    if rng.random() < 0.4:
        output = _normalised(output, rng, "batch")
    if rng.random() < 0.5:
        output["kernel_regularizer"] = rng.choice(_PENALTIES[1:])
    return {**spec, "layers": [*layers, output],
            "loss": {"name": loss, "reduction": rng.choice(("mean", "sum")),
                     "scale": 0.5 if loss == "squared_error" else 1.0}}


def test_the_draws_mix_every_kind():
    layers = [layer for draw in range(DRAWS) for layer in _drawn(draw)["layers"]]
    assert any(layer.get("normalization") == "batch" for layer in layers)
    assert any(layer.get("normalization") == "layer" for layer in layers)
    assert any("dropout" in layer for layer in layers) and any("kernel_regularizer" in layer for layer in layers)
    kinds = {layer.get("kind", "")[:-2] for layer in layers}
    assert {"conv", "max_pool", "avg_pool"} <= kinds


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_has_pytorchs_gradient_through_the_torch_module(draw):
    torch = pytest.importorskip("torch")
    xp = namespace("torch")
    spec = load_spec(_drawn(draw))
    numpy_module = load_module_from_source(generate_module(spec), f"np_{spec.name}")
    array_module = load_module_from_source(generate_array_api_module(spec), f"xp_{spec.name}")
    params, X, Y, rng = drawn_problem(spec, numpy_module, draw)
    statistics = getattr(array_module, "STATISTICS", {})
    for name in statistics:
        shape = params[name].shape
        params[name] = rng.uniform(0.3, 2.0, shape) if "var" in name else rng.normal(0, 0.5, shape)
    masks = numpy_module.draw_masks(rng, X.shape[0]) if hasattr(numpy_module, "DROPOUT") else None
    for training in (True, False) if statistics else (None,):
        # Training mode with the drawn dropout masks held fixed; evaluation mode as the network predicts.
        with_masks = (_in(xp, masks),) if masks is not None and training is not False else ()
        mode = {} if training is None else {"training": training}
        value, grads = array_module.loss_and_grad(_in(xp, params), xp.asarray(X), xp.asarray(Y), *with_masks, **mode)
        assert_pytorchs_loss_and_gradient(torch, spec, float(value), {k: as_numpy(g) for k, g in grads.items()},
                                          params, X, Y, masks if with_masks else None, f"{mode}",
                                          training=training is not False)


# -- the command line


def _cli_problem(tmp_path, name):
    spec_path = tmp_path / f"{name}.json"
    spec = {**SPECS[name], "training": {**TRAINING, "optimizer": "adam", "learning_rate": 0.01}}
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, spec.get("inputs", 3)))
    outputs = spec["layers"][-1]["units"]
    Y = np.eye(outputs)[np.argmax(X[:, :outputs], axis=1)]
    np.savez(tmp_path / "d.npz", X=X, Y=Y)
    return spec_path, tmp_path / "d.npz"


@pytest.mark.parametrize("name, runs", [("batchnorm-dropout-penalties", ("array-api", "dask")),
                                        ("conv2d-maxpool", ("array-api",))])
def test_symbp_train_with_array_api_and_dask_gives_the_numpy_modules_parameters(tmp_path, capsys, name, runs):
    pytest.importorskip("dask.array")
    spec_path, data = _cli_problem(tmp_path, name)
    options = {"numpy": [], "array-api": ["--backend", "array-api"], "dask": ["--dask"]}
    trained = {}
    for label in ("numpy", *runs):
        out = tmp_path / f"{label}.npz"
        assert main(["train", str(spec_path), "--data", str(data), *options[label], "-o", str(out)]) == 0
        trained[label] = np.load(out)
    capsys.readouterr()
    for label in runs:
        assert set(trained[label].files) == set(trained["numpy"].files)
        for key in trained["numpy"].files:
            assert_close(trained[label][key], trained["numpy"][key], f"{label}: {key}", relative=1e-10)


def test_dask_training_refuses_window_layers_in_one_line(tmp_path, capsys):
    pytest.importorskip("dask.array")
    spec_path, data = _cli_problem(tmp_path, "conv2d-maxpool")
    out = tmp_path / "p.npz"
    assert main(["train", str(spec_path), "--data", str(data), "--dask", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["symbp: error: layers[0].kind: --dask has no conv2d layers yet; train without --dask "
                   "(--backend array-api or the NumPy module, on data in memory)"]
    assert not out.exists()


def test_the_modules_pass_ruff_and_are_deterministic(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed")
    for name, spec in SPECS.items():
        source = generate_array_api_module(load_spec(spec))
        assert source == generate_array_api_module(load_spec(spec))
        (tmp_path / f"{name.replace('-', '_')}.py").write_text(source)
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([ruff, "check", "--no-cache", "--config", str(root / "pyproject.toml"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_array_api_batch_checks_are_the_numpy_modules_word_for_word():
    import inspect

    from symbp.runtime import array_batchnorm, batchnorm

    for name in ("check_batch", "check_batch_sizes"):
        assert inspect.getsource(getattr(array_batchnorm, name)) == inspect.getsource(getattr(batchnorm, name))
