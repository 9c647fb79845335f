"""LaTeX printed by symbp's notation printer, as MathML that browsers render without TeX or a script.

The LaTeX comes from ``symbp.render.latex.printer.NotationPrinter`` (SymPy's printer taught the notation
presets); latex2mathml parses it into presentation MathML. One printer decides how every quantity is
written, so a page shows exactly what the PDF shows.
"""

from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup, escape

from symbp.errors import SymbpError

INSTALL_HINT = "pip install 'symbp[html]'"


class MissingHtmlSupport(SymbpError):
    """latex2mathml, which HTML output needs, is not installed."""


def _converter():
    try:
        from latex2mathml.converter import convert
    except ImportError:
        raise MissingHtmlSupport(f"--html: needs the latex2mathml package; {INSTALL_HINT}") from None
    return convert


def require_html_support() -> None:
    """Fails with one line, before any work, when HTML cannot be written."""
    _converter()


@lru_cache(maxsize=4096)
def _math(tex: str, display: str) -> str:
    return _converter()(tex, display=display)


def math(tex, display: bool = False) -> Markup:
    """One formula as a <math> element; ``display`` sets it in display style (fractions full size)."""
    tex = str(tex)
    if not tex.strip():
        return Markup("")
    # The document's align* lines are display math: sums with their limits above and below. The page's
    # CSS sets such a formula inline in its table cell, keeping the display style.
    return Markup(_math(tex, "block" if display else "inline"))


def prose(text) -> Markup:
    """A notation's prose (a layer's name, a text's title) as HTML: TeX's ties and quotes as characters,
    inline $...$ as MathML."""
    parts = str(text).split("$")
    out = []
    for position, part in enumerate(parts):
        if position % 2:
            out.append(math(part))
        else:
            words = part.replace("~", "\u00a0").replace("``", "\u201c").replace("''", "\u201d")
            out.append(escape(words))
    return Markup("").join(out)
