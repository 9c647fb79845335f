"""Dropout and layer normalisation in the array-API module, on array_api_strict, NumPy, PyTorch, JAX and Dask.

The module's functions stay pure: a training step's dropout masks are an argument of loss and loss_and_grad,
and train() draws them from NumPy's generator as the NumPy module does, so both modules end a run at the same
parameters. Every number is checked against the NumPy module (to 1e-12) and the gradients against PyTorch
autograd (tests/torch_reference.py).
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from array_libraries import LIBRARIES, as_numpy, assert_close, namespace
from torch_reference import assert_pytorchs_loss_and_gradient

from symbp.checks.gradients import load_module_from_source, random_problem
from symbp.cli.main import main
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec

pytest.importorskip("array_api_compat")

from symbp.render.code.backends.array_api import generate_array_api_module  # noqa: E402

TRAINING = {"learning_rate": 0.2, "epochs": 5, "seed": 3}
SPECS = {
    "dropout": {
        "name": "dropped", "inputs": 3,
        "layers": [{"units": 4, "activation": "tanh", "dropout": 0.25},
                   {"units": 2, "activation": "sigmoid", "dropout": 0.5}],
        "loss": {"name": "squared_error", "scale": 0.5}, "training": TRAINING,
    },
    "layernorm": {
        "name": "normed", "inputs": 2,
        "layers": [{"units": 3, "activation": "tanh", "normalization": "layer"}, {"units": 1, "activation": "linear"}],
        "loss": {"name": "squared_error", "scale": 0.5, "reduction": "mean"}, "training": TRAINING,
    },
    "layernorm-dropout-softmax": {
        "name": "mixed", "inputs": 3,
        "layers": [{"units": 4, "activation": "tanh", "normalization": "layer", "epsilon": 1e-3},
                   {"units": 3, "activation": "relu", "dropout": 0.25},
                   {"units": 3, "activation": "softmax", "dropout": 0.5}],
        "loss": "cross_entropy", "training": TRAINING,
    },
}
DROPPED = [name for name, spec in SPECS.items() if any("dropout" in layer for layer in spec["layers"])]


@functools.cache
def _modules(name: str):
    spec = load_spec(SPECS[name])
    safe = name.replace("-", "_")
    return (spec, load_module_from_source(generate_module(spec), f"np_layers_{safe}"),
            load_module_from_source(generate_array_api_module(spec), f"xp_layers_{safe}"))


def _problem(spec, numpy_module, samples=9):
    X, Y, rng = random_problem(spec, samples, seed=4)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in numpy_module.init_params(2).items()}
    return params, X, Y


def _in(xp, arrays):
    return {name: xp.asarray(value, dtype=xp.float64) for name, value in arrays.items()}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", list(SPECS))
def test_loss_gradient_and_forward_equal_the_numpy_modules_with_and_without_masks(name, library):
    xp = namespace(library)
    spec, numpy_module, array_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module)
    arrays, X_xp, Y_xp = _in(xp, params), xp.asarray(X, dtype=xp.float64), xp.asarray(Y, dtype=xp.float64)
    dropped = name in DROPPED
    drawn = numpy_module.draw_masks(np.random.default_rng(7), X.shape[0]) if dropped else None
    for masks in ([None, drawn] if dropped else [None]):
        extra = () if masks is None else (_in(xp, masks),)
        want_value, want_grads = numpy_module.loss_and_grad(params, X, Y, *(() if masks is None else (masks,)))
        # On JAX, the compiled function is the one checked, masks and all.
        if library == "jax":
            import jax

            value, grads = jax.jit(array_module.loss_and_grad)(arrays, X_xp, Y_xp, *extra)
        else:
            value, grads = array_module.loss_and_grad(arrays, X_xp, Y_xp, *extra)
        mode = "evaluation mode" if masks is None else "with masks"
        assert_close(value, want_value, f"loss_and_grad's loss, {mode}")
        assert set(grads) == set(want_grads)
        for key in want_grads:
            assert_close(grads[key], want_grads[key], f"gradient of {key}, {mode}")
        assert_close(array_module.loss(arrays, X_xp, Y_xp, *extra),
                      numpy_module.loss(params, X, Y, *(() if masks is None else (masks,))), f"loss, {mode}")
    assert_close(array_module.forward(arrays, X_xp), numpy_module.forward(params, X), "forward")


@pytest.mark.parametrize("name", list(SPECS))
def test_the_torch_gradient_equals_pytorch_autograd(name):
    torch = pytest.importorskip("torch")
    xp = namespace("torch")
    spec, numpy_module, array_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module)
    masks = numpy_module.draw_masks(np.random.default_rng(8), X.shape[0]) if name in DROPPED else None
    extra = () if masks is None else (_in(xp, masks),)
    value, grads = array_module.loss_and_grad(_in(xp, params), xp.asarray(X), xp.asarray(Y), *extra)
    assert_pytorchs_loss_and_gradient(torch, spec, float(value), {k: as_numpy(g) for k, g in grads.items()},
                                      params, X, Y, masks)


@pytest.mark.parametrize("library", ["numpy", "torch", "jax"])
@pytest.mark.parametrize("optimizer, batch_size", [("gd", None), ("sgd", 4), ("momentum", 3), ("adam", None),
                                                   ("adam", 4)])
@pytest.mark.parametrize("name", ["dropout", "layernorm-dropout-softmax"])
def test_training_draws_the_numpy_modules_masks_and_ends_at_its_parameters(name, library, optimizer, batch_size):
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
    for key in want_params:
        assert_close(got_params[key], want_params[key], f"trained {key}", relative=1e-10)


def test_init_params_start_gains_at_one_and_shifts_at_zero_as_the_numpy_module():
    _, numpy_module, array_module = _modules("layernorm-dropout-softmax")
    for seed in (0, 5):
        want, got = numpy_module.init_params(seed), array_module.init_params(seed)
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert np.all(got["gamma1"] == 1.0) and np.all(got["beta1"] == 0.0)


def test_draw_masks_are_the_numpy_modules_in_the_library_of_like():
    torch = pytest.importorskip("torch")
    _, numpy_module, array_module = _modules("dropout")
    want = numpy_module.draw_masks(np.random.default_rng(11), 6)
    got = array_module.draw_masks(np.random.default_rng(11), 6, like=torch.zeros(2, dtype=torch.float64))
    assert set(got) == set(want) == {"M1", "M2"}
    for key in want:
        assert isinstance(got[key], torch.Tensor)
        np.testing.assert_array_equal(got[key].numpy(), want[key])
    plain = array_module.draw_masks(np.random.default_rng(11), 6)
    assert all(np.array_equal(plain[key], want[key]) for key in want)


@pytest.mark.parametrize("masks, message", [
    (lambda m: {"M1": m["M1"]}, r"masks: expected exactly M1, M2 .*missing M2"),
    (lambda m: {**m, "M9": m["M1"]}, r"masks: expected exactly M1, M2 .*got also M9"),
    (lambda m: {**m, "M2": m["M2"][:3]}, r"masks\['M2'\]: expected shape \(6, 4\)"),
    (lambda m: {**m, "M1": m["M1"].astype(np.int64)}, r"masks\['M1'\]: expected a real floating dtype"),
])
def test_bad_masks_name_the_field(masks, message):
    spec, numpy_module, array_module = _modules("dropout")
    params, X, Y = _problem(spec, numpy_module, samples=6)
    drawn = array_module.draw_masks(np.random.default_rng(0), 6)
    with pytest.raises(ValueError, match=message):
        array_module.loss_and_grad(params, X, Y, masks(drawn))


@pytest.mark.parametrize("batch_size", [None, 4], ids=["full-batch", "mini-batch"])
def test_training_on_dask_chunks_ends_where_the_numpy_module_does(batch_size):
    da = pytest.importorskip("dask.array")
    spec, numpy_module, array_module = _modules("layernorm-dropout-softmax")
    params, X, Y = _problem(spec, numpy_module, samples=10)
    settings = {"optimizer": "adam", "batch_size": batch_size, "learning_rate": 0.02, "epochs": 3}
    want_params, want = numpy_module.train(params, X, Y, **settings)
    got_params, got = array_module.train({k: da.from_array(v) for k, v in params.items()},
                                         da.from_array(X, chunks=(4, X.shape[1])),
                                         da.from_array(Y, chunks=(4, Y.shape[1])), **settings)
    assert_close(got["loss"], want["loss"], "history['loss']", relative=1e-10)
    for key in want_params:
        assert_close(np.asarray(got_params[key]), want_params[key], f"trained {key}", relative=1e-10)


def test_symbp_train_with_array_api_and_dask_gives_the_numpy_modules_parameters(tmp_path, capsys):
    pytest.importorskip("dask.array")
    spec_path = tmp_path / "mixed.json"
    spec_path.write_text(json.dumps({**SPECS["layernorm-dropout-softmax"],
                                     "training": {**TRAINING, "optimizer": "adam", "batch_size": 8,
                                                  "learning_rate": 0.01}}), encoding="utf-8")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    np.savez(tmp_path / "d.npz", X=X, Y=np.eye(3)[np.argmax(X, axis=1)])
    runs = {}
    for label, options in {"numpy": [], "array-api": ["--backend", "array-api"], "dask": ["--dask"]}.items():
        out = tmp_path / f"{label}.npz"
        assert main(["train", str(spec_path), "--data", str(tmp_path / "d.npz"), *options, "-o", str(out)]) == 0
        runs[label] = np.load(out)
    capsys.readouterr()
    for label in ("array-api", "dask"):
        assert set(runs[label].files) == set(runs["numpy"].files)
        for key in runs["numpy"].files:
            assert_close(runs[label][key], runs["numpy"][key], f"{label}: {key}", relative=1e-10)


def test_the_cupy_backend_writes_both_too(tmp_path, capsys):
    """The CuPy module carries both as well (tests/test_cupy_layers.py runs it against the NumPy module)."""
    spec_path = tmp_path / "mixed.json"
    spec_path.write_text(json.dumps(SPECS["layernorm-dropout-softmax"]), encoding="utf-8")
    out = tmp_path / "mixed_cupy.py"
    assert main(["generate", str(spec_path), "--backend", "cupy", "-o", str(out)]) == 0
    source = out.read_text(encoding="utf-8")
    assert "DROPOUT = {" in source and "gamma1" in source and "import cupy as cp" in source


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
