"""The derivation and the worksheet as self-contained HTML pages, from the LaTeX documents' view-models.

A page has no script, no font and no style sheet fetched from anywhere: MathML for the formulas (browsers
render it natively), inline SVG for the drawing, and its CSS inline. The first element of its <head> is a
``<meta name="generator">`` carrying ``MARKER``, by which symbp recognises its own pages.
"""

from __future__ import annotations

from functools import cache

import jinja2
from markupsafe import Markup

from symbp import __version__
from symbp.render.html.drawing import svg_drawing
from symbp.render.html.mathml import math, prose, require_html_support
from symbp.render.html.writer import HtmlWriter
from symbp.render.templating import templates_dir
from symbp.spec.schema import SpecSource

MARKER = "symbp-generated-page"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=True,
    )
    env.filters["math"] = math
    env.filters["dmath"] = lambda tex: math(tex, display=True)
    env.filters["prose"] = prose
    return env


def _render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)


def _wrap(body: str, context: dict, kind: str, heading: str, fragment: bool) -> str:
    if fragment:
        return _render("html/fragment.html.j2", body=Markup(body))
    return _render("html/page.html.j2", body=Markup(body), marker=MARKER, kind=kind, heading=heading,
                   spec=context["spec"], notation=context["notation"], version=__version__)


def derivation_html(context: dict, fragment: bool = False) -> str:
    """A derivation's page (or, with ``fragment``, a <div> for a notebook) from ``derivation_context``'s
    view-model built with ``HtmlWriter``."""
    body = _render("html/derivation.html.j2", **context, svg=svg_drawing(context["drawing"]))
    return _wrap(body, context, "derivation", f"Backpropagation for {context['title']}", fragment)


def worksheet_html(context: dict, fragment: bool = False) -> str:
    """A worksheet's page (or a notebook's <div>) from ``worksheet_context``'s view-model built with ``HtmlWriter``."""
    body = _render("html/worksheet.html.j2", **context, svg=svg_drawing(context["drawing"]))
    kind = "answer key" if context["key_only"] else "worksheet" + (" solutions" if context["solutions"] else "")
    return _wrap(body, context, kind, f"Backpropagation by hand: {context['title']}", fragment)


def network_html(spec_source: SpecSource, notation: str | None = None) -> str:
    """A spec's network drawn, with a sentence on its layers: a notebook's display of a spec."""
    from symbp.render.latex.document import notation_for
    from symbp.render.latex.drawing import network_drawing
    from symbp.spec.schema import load_spec

    spec = load_spec(spec_source)
    chosen = notation_for(spec, notation)
    drawing = network_drawing(spec, chosen)
    body = _render("html/network.html.j2", spec=spec, notation=chosen, svg=svg_drawing(drawing))
    return _render("html/fragment.html.j2", body=Markup(body))


def answer_key_page(context: dict) -> str:
    """The roster's answer key (``symbp.classroom.command.answer_key_context``) as one page."""
    body = _render("html/answer_key.html.j2", **context)
    return _wrap(body, context, "answer key", f"Answer key: {context['title']}", fragment=False)


def derivation_page(spec_source: SpecSource, notation: str | None = None) -> str:
    """The derivation of backpropagation for a spec, as one self-contained HTML page."""
    from symbp.render.latex.document import derivation_context

    require_html_support()
    return derivation_html(derivation_context(spec_source, notation, writer_class=HtmlWriter))


def worksheet_page(spec_source: SpecSource, notation: str | None = None, variant: int = 0, solutions: bool = False,
                   key_only: bool = False) -> str:
    """A worksheet (with ``solutions``, its answer key after it; ``key_only``, the key alone) as one HTML page."""
    from symbp.render.latex.worksheet_document import worksheet_context

    require_html_support()
    context = worksheet_context(spec_source, notation, variant, solutions, key_only, writer_class=HtmlWriter)
    return worksheet_html(context)
