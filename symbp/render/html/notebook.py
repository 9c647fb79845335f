"""Display in Jupyter: the objects symbp's Python API returns show themselves as HTML.

``derivation_document`` and ``worksheet_document`` return a ``LatexDocument``: the LaTeX source, a ``str`` in
every way, whose notebook display is the page's body (rendered on first display, from the same view-model).
A spec from ``symbp.load_spec`` displays its network's drawing. latex2mathml is imported only when something
is shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from symbp.spec.schema import Spec


class LatexDocument(str):
    """A LaTeX document's source, displayed in a notebook as the HTML page made from the same view-model.

    Jupyter's LaTeX display renders formulas, not documents, so there is no ``_repr_latex_``: the MathML page is
    the rendering. Without latex2mathml the notebook shows the source.
    """

    def __new__(cls, text: str, html: Callable[[], str]):
        document = super().__new__(cls, text)
        document._html = html
        document._shown: str | None = None
        return document

    def __reduce__(self):
        # Pickled (sent to another process, copied) as the plain source: the display is rebuilt from the spec.
        return str, (str(self),)

    def _repr_html_(self) -> str | None:
        from symbp.render.html.mathml import MissingHtmlSupport

        if self._shown is None:
            try:
                self._shown = self._html()
            except MissingHtmlSupport:
                return None
        return self._shown


def derivation_fragment(spec_source, notation: str | None = None) -> str:
    """The derivation's page body, for a notebook cell."""
    from symbp.render.html.page import derivation_html
    from symbp.render.html.writer import HtmlWriter
    from symbp.render.latex.document import derivation_context

    return derivation_html(derivation_context(spec_source, notation, writer_class=HtmlWriter), fragment=True)


def worksheet_fragment(spec_source, notation, variant, solutions, key_only) -> str:
    from symbp.render.html.page import worksheet_html
    from symbp.render.html.writer import HtmlWriter
    from symbp.render.latex.worksheet_document import worksheet_context

    context = worksheet_context(spec_source, notation, variant, solutions, key_only, writer_class=HtmlWriter)
    return worksheet_html(context, fragment=True)


class DisplayedSpec(Spec):
    """A spec that Jupyter displays as its network drawing; in every other way the spec it was made from.

    The spec stage knows nothing of pages, so the display is added here, by ``symbp.load_spec``.
    """

    def _repr_html_(self) -> str | None:
        return spec_html(self)


def displayed(spec: Spec) -> DisplayedSpec:
    """The same spec, displayable in a notebook."""
    if isinstance(spec, DisplayedSpec):
        return spec
    return DisplayedSpec(**{field.name: getattr(spec, field.name) for field in dataclasses.fields(spec)})


def spec_html(spec) -> str | None:
    """A spec's notebook display: its name and layers in a sentence, and its network drawn in its notation."""
    from symbp.render.html.mathml import MissingHtmlSupport, require_html_support
    from symbp.render.html.page import network_html

    if any(getattr(layer, "window", None) is not None for layer in spec.layers):
        return None  # the drawing labels weights of two indices: a convolution's spec shows as its text for now
    try:
        require_html_support()
    except MissingHtmlSupport:
        return None
    return network_html(spec)
