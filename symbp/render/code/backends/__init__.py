"""The array libraries a generated module can be written for, by name (`symbp generate --backend`)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

from symbp.errors import SymbpError


@dataclass(frozen=True)
class Backend:
    name: str
    summary: str
    suffix: str  # added to the spec's name for the default file name, so backends never overwrite each other
    requires: str | None = None  # the module the generated code imports, besides NumPy
    extra: str | None = None  # symbp's optional extra that installs it

    def generator(self) -> Callable:
        if self.name == "numpy":
            from symbp.render.code.numpy_module import generate_module

            return generate_module
        if self.name == "cupy":
            from symbp.render.code.backends.cupy import generate_cupy_module

            return generate_cupy_module
        from symbp.render.code.backends.array_api import generate_array_api_module

        return generate_array_api_module


BACKENDS = {
    "numpy": Backend("numpy", "a NumPy-only module with an in-place training step (the default)", ""),
    "array-api": Backend("array-api", "one module for NumPy, PyTorch, JAX and Dask arrays, through the array API",
                         "_array_api", requires="array_api_compat", extra="array-api"),
    # Generating needs no CuPy (modules are written anywhere, run on a GPU box): the module checks on import.
    "cupy": Backend("cupy", "the in-place step on a CUDA GPU, one fused CuPy kernel per layer", "_cupy",
                    extra="cupy"),
}


def backend(name: str) -> Backend:
    """The backend called name, after checking that the library its modules import is installed."""
    chosen = BACKENDS.get(name)
    if chosen is None:
        raise SymbpError(f"--backend: unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if chosen.requires and importlib.util.find_spec(chosen.requires) is None:
        raise SymbpError(f"--backend {name}: its modules import {chosen.requires}, which is not installed; "
                         f"install it with pip install 'symbp[{chosen.extra}]'")
    return chosen
