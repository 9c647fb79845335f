"""The answer key alone (--key-only): a compact header, the givens once, then the answers."""

import pytest
from typesetting_catalogue import inspect_tex

from symbp.render.latex.tex import tex_available
from symbp.render.latex.worksheet_document import worksheet_context, worksheet_document


@pytest.mark.parametrize("notation", ["lab", "fausett"])
def test_the_key_names_its_variant_and_gives_the_givens_once(notation):
    source = worksheet_document("actuarial", notation, variant=3, key_only=True)
    body = source.split(r"\begin{document}", 1)[1]
    assert "variant 3" in body and "Answer key" in body
    assert body.count("The givens of this variant") == 1
    # Neither the exercises' statements nor their blanks: only the answers.
    assert "Exercise 2: a forward pass" not in body and "Name:" not in body and r"\rule{7em}" not in body
    context = worksheet_context("actuarial", notation, variant=3, key_only=True)
    for entry in context["given"]:
        assert f"${entry.symbol}$ & ${entry.exact or entry.decimal}$" in body


@pytest.mark.skipif(not tex_available(), reason="pdflatex is not installed here")
def test_the_key_typesets_cleanly():
    report = inspect_tex(worksheet_document("fausett", "fausett", variant=2, key_only=True), "key")
    assert report.problems() == [], report.problems()[:5]
