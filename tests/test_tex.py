"""Real TeX: every bundled example's derivation and worksheets compile, and --pdf reports TeX's errors."""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from functools import cache

import pytest
from bundled import derivable_spec_paths

from symbp.cli.main import main
from symbp.render.latex.document import derivation_document
from symbp.render.latex.tex import TexError, compile_pdf, first_error, tex_available
from symbp.render.latex.worksheet_document import worksheet_document
from symbp.spec.schema import load_spec


def require_tex():
    if not tex_available():
        if os.environ.get("CI"):
            pytest.fail("pdflatex is missing; .ci/run installs TeX Live, so CI must have it")
        pytest.skip("pdflatex is not installed here; CI installs TeX Live and runs this test")


def _documents():
    documents = {}
    for path in derivable_spec_paths():
        spec = load_spec(path)
        documents[f"{spec.name}-derivation"] = lambda spec=spec: derivation_document(spec)
        documents[f"{spec.name}-worksheet"] = lambda spec=spec: worksheet_document(spec, variant=1)
        documents[f"{spec.name}-worksheet-solutions"] = lambda spec=spec: worksheet_document(spec, solutions=True)
    return documents


DEEP = {"name": "deep", "inputs": 2, "layers": [{"units": 2, "activation": "tanh"},
                                                {"units": 3, "activation": "sigmoid", "bias": False},
                                                {"units": 1, "activation": "linear"}]}


def _deep_documents():
    """Two hidden layers in the notations that name layers by letters, which their texts never had to."""
    documents = {}
    for name in ("lesson", "fausett"):
        documents[f"deep-{name}-derivation"] = lambda name=name: derivation_document(DEEP, name)
        documents[f"deep-{name}-worksheet"] = lambda name=name: worksheet_document(DEEP, name, 1, True)
    return documents


DOCUMENTS = {**_documents(), **_deep_documents()}


def _write_and_compile(name: str) -> tuple[str, str]:
    try:
        pdf = compile_pdf(DOCUMENTS[name](), name)
    except TexError as error:
        return name, str(error)
    return name, "ok" if pdf.startswith(b"%PDF") else "not a PDF"


@cache
def compiled() -> dict[str, str]:
    """Every document written and compiled once, in parallel processes: name -> "ok" or TeX's error."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    # Fresh interpreters, not forks: a fork of a process that has started threads (JAX's, when the array-API
    # tests ran first in this worker) can deadlock.
    with ProcessPoolExecutor(max_workers=min(8, cpus), mp_context=multiprocessing.get_context("spawn")) as pool:
        return dict(pool.map(_write_and_compile, DOCUMENTS))


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_document_compiles_without_errors(name):
    require_tex()
    assert compiled()[name] == "ok"


def test_pdf_option_writes_a_pdf(tmp_path, capsys):
    require_tex()
    target = tmp_path / "xor.tex"
    assert main(["derive", "xor", "--notation", "slides", "-o", str(target), "--pdf"]) == 0
    assert target.with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    # symbp's own PDF is replaced without --force; somebody else's is not.
    assert main(["derive", "xor", "-o", str(target), "--pdf"]) == 0
    (tmp_path / "mine.pdf").write_bytes(b"%PDF-1.4 precious")
    (tmp_path / "mine.tex").write_text("% symbp-generated-document\n")
    assert main(["derive", "xor", "-o", str(tmp_path / "mine.tex"), "--pdf"]) == 2
    assert (tmp_path / "mine.pdf").read_bytes() == b"%PDF-1.4 precious"
    assert "--force" in capsys.readouterr().err


def test_tex_errors_are_reported_in_one_line():
    require_tex()
    broken = "\\documentclass{article}\n\\begin{document}\n$\\nosuchcommand{1}$\n\\end{document}\n"
    with pytest.raises(TexError, match=r"broken\.tex: LaTeX failed: Undefined control sequence\. \(line 3: "):
        compile_pdf(broken, "broken")


def test_first_error_reads_a_file_line_error_log():
    log = "(./a.tex\n./a.tex:12: Undefined control sequence.\nl.12 \\foo\n          bar\n"
    assert first_error(log) == "Undefined control sequence. (line 12: \\foo)"


def test_missing_tex_is_a_clear_error(monkeypatch):
    import symbp.render.latex.tex

    monkeypatch.setattr(symbp.render.latex.tex, "tex_available", lambda: False)
    with pytest.raises(TexError, match="needs pdflatex"):
        compile_pdf("\\documentclass{article}", "x")
