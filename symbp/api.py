"""The public functions that join the stages: a spec and its documents as a notebook shows them, a spec's
generated module imported, and training with it.

The other public functions live in their stage (``generate_module`` in the code renderer, ``check_gradients``
in the checks); ``symbp/__init__.py`` offers them all under one name each.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.render.html.history import History
from symbp.render.html.notebook import DisplayedSpec, LatexDocument, derivation_fragment, displayed, worksheet_fragment
from symbp.render.latex import document
from symbp.render.latex import worksheet_document as worksheets
from symbp.spec import schema
from symbp.spec.schema import SpecSource


def load_spec(source: SpecSource) -> DisplayedSpec:
    """Loads a spec from a dict, a Spec, a .toml/.json file or a bundled example's name.

    The result is the spec, which a notebook also displays as its network drawing.
    """
    return displayed(schema.load_spec(source))


def derivation_document(spec: SpecSource, notation: str | None = None) -> LatexDocument:
    """The LaTeX source of the derivation of backpropagation for a spec; a notebook displays it as a page."""
    text = document.derivation_document(spec, notation)
    return LatexDocument(text, lambda: derivation_fragment(spec, notation))


def worksheet_document(spec: SpecSource, notation: str | None = None, variant: int = 0,
                       solutions: bool = False, key_only: bool = False) -> LatexDocument:
    """The LaTeX source of a worksheet for a spec; ``solutions`` appends the answer key, ``key_only`` gives it alone.

    A notebook displays it as a page.
    """
    text = worksheets.worksheet_document(spec, notation, variant, solutions, key_only)
    return LatexDocument(text, lambda: worksheet_fragment(spec, notation, variant, solutions, key_only))


def load_module(spec: SpecSource) -> ModuleType:
    """The spec's generated NumPy module, imported: ``init_params``, ``forward``, ``predict``, ``loss``,
    ``loss_and_grad``, ``train`` and the rest, exactly as ``symbp generate`` writes them to a file."""
    loaded = load_spec(spec)
    return load_module_from_source(generate_module(loaded), loaded.name)


def train(spec: SpecSource, X: np.ndarray, Y: np.ndarray, *, params: dict[str, np.ndarray] | None = None,
          seed: int = 0, **options) -> tuple[dict[str, np.ndarray], History]:
    """Trains the spec's network on inputs ``X`` (rows of samples) and targets ``Y``; returns ``(params, history)``.

    Starts from ``params`` when given, else from the module's ``init_params(seed)``. ``options`` are the
    generated ``train``'s keywords (``epochs``, ``learning_rate``, ``batch_size``, ``optimizer``,
    ``validation``, ``patience``, ``callback``, ...), each defaulting to the spec's [training] table.
    ``history["loss"]`` holds the training loss after each epoch and ``history["stopped"]`` why it ended;
    it is a ``History``, a dict that a notebook shows as its loss curve. Each call generates the module
    anew; to train repeatedly, ``load_module`` once and call its ``train``.
    """
    module = load_module(spec)
    start = module.init_params(seed) if params is None else params
    trained, history = module.train(start, X, Y, **options)
    return trained, History(history)
