"""TeX a teacher can edit: each notation's symbols are macros defined once at the top of the document."""

import re
import shutil
import subprocess

import pytest

from symbp.render.latex.document import derivation_document
from symbp.render.latex.notation import NOTATION_NAMES, notation_named
from symbp.render.latex.tex import compile_pdf, tex_available
from symbp.render.latex.worksheet_document import worksheet_document

_RAW_DELTA = re.compile(r"\\delta(?![A-Za-z])")


def _definitions(source: str) -> dict[str, str]:
    return dict(re.findall(r"^\\newcommand\{\\([a-z]+)\}\{(.*?)\}  %", source, flags=re.M))


@pytest.mark.parametrize("notation", NOTATION_NAMES)
def test_the_body_uses_the_macros_the_preamble_defines(notation):
    source = derivation_document("actuarial", notation)
    definitions = _definitions(source)
    assert definitions["err"] == r"\delta"
    assert definitions["rate"] == notation_named(notation).learning_rate_symbol
    body = source.split(r"\begin{document}", 1)[1]
    assert not _RAW_DELTA.search(body)
    assert r"\err" in body and r"\act" in body
    # The learning rate appears in the update rule, through its macro only.
    assert r"\rate" in body and notation_named(notation).learning_rate_symbol + " " not in body


def test_worksheets_use_them_too():
    source = worksheet_document("fausett", "fausett", variant=1, solutions=True)
    body = source.split(r"\begin{document}", 1)[1]
    assert "err" in _definitions(source) and r"\err" in body and not _RAW_DELTA.search(body)


def _pdf_text(source: str) -> str:
    pdf = compile_pdf(source, "macros")
    return subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()


@pytest.mark.skipif(not tex_available() or shutil.which("pdftotext") is None, reason="needs pdflatex and pdftotext")
def test_one_changed_definition_renames_the_symbol_everywhere():
    source = derivation_document("fausett", "fausett")
    line = "\\newcommand{\\err}{\\delta}"
    assert source.count(line) == 1
    edited = source.replace(line, "\\newcommand{\\err}{\\theta}")
    before, after = _pdf_text(source), _pdf_text(edited)
    # theta appears elsewhere (the numerical check's L(theta + h)); delta only as the error term.
    assert before.count("δ") > 10
    assert "δ" not in after and after.count("θ") == before.count("θ") + before.count("δ")
