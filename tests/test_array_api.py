"""The array-API module on array_api_strict, NumPy, PyTorch and JAX, against the NumPy module."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conftest import CATALOGUE

from symbp.check import load_module_from_source, random_problem
from symbp.codegen import generate_module
from symbp.spec import load_spec

pytest.importorskip("array_api_compat")

from symbp.backends.array_api import generate_array_api_module  # noqa: E402

RELATIVE = 1e-12
LIBRARIES = ["array_api_strict", "numpy", "torch", "jax"]


@functools.cache
def _modules(name: str):
    """The NumPy module and the array-API module for a catalogue spec, generated once per session."""
    spec = load_spec(CATALOGUE[name])
    numpy_module = load_module_from_source(generate_module(spec), f"np_{name}")
    array_module = load_module_from_source(generate_array_api_module(spec), f"xp_{name}")
    return spec, numpy_module, array_module


def _namespace(library: str):
    if library == "array_api_strict":
        return pytest.importorskip("array_api_strict")
    if library == "numpy":
        return pytest.importorskip("array_api_compat.numpy")
    if library == "torch":
        pytest.importorskip("torch")
        return pytest.importorskip("array_api_compat.torch")
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return pytest.importorskip("jax.numpy")


def _problem(spec, numpy_module):
    X, Y, rng = random_problem(spec, 7, seed=4)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in numpy_module.init_params(2).items()}
    return params, X, Y


def _as_numpy(array) -> np.ndarray:
    return np.asarray(array.cpu() if hasattr(array, "cpu") else array, dtype=np.float64) \
        if not type(array).__module__.startswith("array_api_strict") else np.asarray(array._array)


def _assert_close(got, want, what):
    got, want = _as_numpy(got), np.asarray(want)
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-300)
    assert float(np.max(np.abs(got - want), initial=0.0)) <= RELATIVE * scale, what


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_loss_and_gradient_equal_the_numpy_module(name, library):
    xp = _namespace(library)
    spec, numpy_module, array_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module)
    want_value, want_grads = numpy_module.loss_and_grad(params, X, Y)
    arrays = {k: xp.asarray(v, dtype=xp.float64) for k, v in params.items()}
    X_xp, Y_xp = xp.asarray(X, dtype=xp.float64), xp.asarray(Y, dtype=xp.float64)
    value, grads = array_module.loss_and_grad(arrays, X_xp, Y_xp)
    _assert_close(value, want_value, "loss_and_grad's loss")
    for param in numpy_module.PARAMS:
        _assert_close(grads[param], want_grads[param], f"gradient of {param}")
    _assert_close(array_module.loss(arrays, X_xp, Y_xp), numpy_module.loss(params, X, Y), "loss")
    _assert_close(array_module.forward(arrays, X_xp), numpy_module.forward(params, X), "forward")
    if library == "jax":
        import jax

        jitted_value, jitted_grads = jax.jit(array_module.loss_and_grad)(arrays, X_xp, Y_xp)
        _assert_close(jitted_value, want_value, "jitted loss")
        for param in numpy_module.PARAMS:
            _assert_close(jitted_grads[param], want_grads[param], f"jitted gradient of {param}")
