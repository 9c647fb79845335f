"""What the array-API module's tests share: each library's namespace, and closeness to the NumPy module.

The libraries are those the module is checked on: array_api_strict (which rejects anything outside the
standard), NumPy, PyTorch (CPU) and JAX (CPU, with 64-bit floats); a test on one that is not installed
is skipped.
"""

from __future__ import annotations

import numpy as np
import pytest

RELATIVE = 1e-12
LIBRARIES = ["array_api_strict", "numpy", "torch", "jax"]


def namespace(library: str):
    """The array-API namespace of library, or a skip when it is not installed."""
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


def as_numpy(array) -> np.ndarray:
    """Any library's array as a float64 NumPy array, copied to the host."""
    if type(array).__module__.startswith("array_api_strict"):
        return np.asarray(array._array)
    return np.asarray(array.cpu() if hasattr(array, "cpu") else array, dtype=np.float64)


def assert_close(got, want, what, relative=RELATIVE):
    """got equals want to relative times want's largest entry, entry by entry."""
    got, want = as_numpy(got), np.asarray(want, dtype=np.float64)
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-300)
    error = float(np.max(np.abs(got - want), initial=0.0))
    assert error <= relative * scale, f"{what}: off by {error:.3g} (scale {scale:.3g})"
