"""The Jinja2 environment shared by every renderer."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2


def templates_dir() -> Path:
    """Templates ship inside the wheel as symbp/templates; a source checkout keeps them at the top."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "templates", package.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("symbp's templates are missing from this installation; reinstall symbp")


_TEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
}


def tex_text(text) -> str:
    """Plain text (a spec's name or title) made safe to typeset as LaTeX text."""
    return "".join(_TEX_SPECIALS.get(char, char) for char in str(text))


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )
    env.filters["pyrepr"] = repr
    env.filters["tex"] = tex_text
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
