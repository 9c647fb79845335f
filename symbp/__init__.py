"""symbp: backpropagation derived by SymPy, rendered as LaTeX and as standalone NumPy trainers.

The public API, importable from here: ``load_spec``, ``generate_module``, ``check_gradients``,
``load_module_from_source``, ``derivation_document``, ``worksheet_document`` and ``History`` (a training
history that draws its loss curve in a notebook). Each is imported on
first use, so ``import symbp`` (and ``symbp --version``) stays free of SymPy and NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_PUBLIC = {
    "load_spec": "symbp.spec.schema",
    "Spec": "symbp.spec.schema",
    "SpecSource": "symbp.spec.schema",
    "generate_module": "symbp.render.code.numpy_module",
    "check_gradients": "symbp.checks.gradients",
    "load_module_from_source": "symbp.checks.gradients",
    "derivation_document": "symbp.render.latex.document",
    "worksheet_document": "symbp.render.latex.worksheet_document",
    "SymbpError": "symbp.errors",
    "History": "symbp.render.html.history",
}

__all__ = [
    "History",
    "Spec",
    "SpecSource",
    "SymbpError",
    "__version__",
    "check_gradients",
    "derivation_document",
    "generate_module",
    "load_module_from_source",
    "load_spec",
    "worksheet_document",
]

if TYPE_CHECKING:
    from symbp.checks.gradients import check_gradients, load_module_from_source
    from symbp.errors import SymbpError
    from symbp.render.code.numpy_module import generate_module
    from symbp.render.html.history import History
    from symbp.render.latex.document import derivation_document
    from symbp.render.latex.worksheet_document import worksheet_document
    from symbp.spec.schema import Spec, SpecSource, load_spec


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'symbp' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
