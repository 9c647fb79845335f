"""The derivation's writer for pages: the same chains as the LaTeX documents, with each justification as
prose and inline MathML, so that a long one wraps like a sentence instead of running off the line."""

from __future__ import annotations

from markupsafe import Markup, escape

from symbp.derivation.steps import Reason
from symbp.render.html.mathml import math
from symbp.render.latex.document import Writer


class HtmlWriter(Writer):
    """Prints formulas as the LaTeX writer does (the template turns them into MathML) and justifications
    as HTML."""

    uses_macros = False  # a page has no LaTeX preamble to define them

    def reason(self, reason: Reason) -> Markup:
        words, function, facts = self.reason_parts(reason)
        parts = [escape(words)] if words else []
        if function:
            parts.append(math(function))
        said = Markup("").join(parts)
        if not facts:
            return said
        since = Markup("since ") + Markup(", ").join(math(fact) for fact in facts)
        return since if not said else said + Markup("; ") + since

    def reasons(self, reasons: tuple[Reason, ...]) -> Markup:
        texts = [self.reason(reason) for reason in reasons]
        return Markup("; ").join(text for text in texts if text)
