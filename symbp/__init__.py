"""symbp: backpropagation derived by SymPy, rendered as LaTeX and as standalone NumPy trainers.

One function for each job, importable from here::

    load_spec(source)                 a spec from a dict, a .toml/.json file or a bundled example's name
    derivation_document(spec)         the LaTeX derivation of backpropagation for it
    worksheet_document(spec)          a LaTeX worksheet on it (``solutions=True`` adds the answer key)
    generate_module(spec)             the source of its standalone NumPy module
    load_module(spec)                 that module, imported
    check_gradients(spec)             the module's gradient against finite differences (and SymPy)
    train(spec, X, Y)                 trained parameters and the loss history

``load_module_from_source`` imports saved module text; ``Spec``, ``CheckReport`` and ``SymbpError``
are the types these use; ``History`` wraps a training history so that a notebook draws its loss curve.
Each name is imported on first use, so ``import symbp`` (and ``symbp --version``) stays free of SymPy
and NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_PUBLIC = {
    "load_spec": "symbp.api",
    "Spec": "symbp.spec.schema",
    "SpecSource": "symbp.spec.schema",
    "derivation_document": "symbp.api",
    "worksheet_document": "symbp.api",
    "generate_module": "symbp.render.code.numpy_module",
    "load_module": "symbp.api",
    "load_module_from_source": "symbp.checks.gradients",
    "check_gradients": "symbp.checks.gradients",
    "CheckReport": "symbp.checks.gradients",
    "train": "symbp.api",
    "SymbpError": "symbp.errors",
    "History": "symbp.render.html.history",
}

__all__ = [
    "CheckReport",
    "History",
    "Spec",
    "SpecSource",
    "SymbpError",
    "__version__",
    "check_gradients",
    "derivation_document",
    "generate_module",
    "load_module",
    "load_module_from_source",
    "load_spec",
    "train",
    "worksheet_document",
]

if TYPE_CHECKING:
    from symbp.api import derivation_document, load_module, load_spec, train, worksheet_document
    from symbp.checks.gradients import CheckReport, check_gradients, load_module_from_source
    from symbp.errors import SymbpError
    from symbp.render.code.numpy_module import generate_module
    from symbp.render.html.history import History
    from symbp.spec.schema import Spec, SpecSource


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symbp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
