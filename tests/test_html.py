"""symbp derive --html and symbp worksheet --html: self-contained pages, formulas as MathML, same content as the
LaTeX documents."""

from __future__ import annotations

import pytest
from html_inspection import external_addresses, raw_tex_in, read_page

from symbp.cli.main import main
from symbp.output import HtmlGeneratorMarker
from symbp.render.html.page import MARKER, derivation_page, worksheet_page
from symbp.render.latex.document import derivation_document
from symbp.render.latex.worksheet_document import worksheet_document

pytest.importorskip("latex2mathml")

SOFTMAX = {"name": "softmax_net", "title": "Softmax & cross-entropy <3>", "inputs": 3,
           "layers": [{"units": 4, "activation": "tanh"}, {"units": 3, "activation": "softmax"}],
           "loss": "cross_entropy"}
PAGE_MARKER = HtmlGeneratorMarker(MARKER)


def _section_titles_of_latex(tex: str) -> list[str]:
    titles = []
    for line in tex.splitlines():
        for command in ("\\section{", "\\section*{"):
            if line.startswith(command):
                titles.append(line[len(command):line.rindex("}")].strip())
    return titles


def _assert_clean(html: str) -> None:
    page = read_page(html)
    assert page.tags.count("math") > 20
    assert raw_tex_in(page.text) == [], [line for line in page.text.splitlines() if "\\" in line or "$" in line][:5]
    assert external_addresses(html) == []
    assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags


@pytest.mark.parametrize("spec, notation", [("actuarial", None), ("actuarial", "fausett"), ("actuarial", "article"),
                                            ("actuarial", "slides"), ("actuarial", "lesson"), (SOFTMAX, None)])
def test_derivation_page_is_mathml_with_the_documents_sections(spec, notation):
    html = derivation_page(spec, notation)
    _assert_clean(html)
    page = read_page(html)
    assert "svg" in page.tags and "foreignobject" in page.tags
    headings = page.text
    for title in _section_titles_of_latex(derivation_document(spec, notation)):
        assert read_page(title.replace("~", "\u00a0")).text.replace("$", "") in headings or "$" in title, title


def test_the_title_is_text_not_markup():
    html = derivation_page(SOFTMAX)
    assert "Softmax &amp; cross-entropy &lt;3&gt;" in html
    assert "<3>" not in html


@pytest.mark.parametrize("notation", [None, "fausett"])
def test_worksheet_page_has_the_exercises_and_the_key(notation):
    html = worksheet_page("actuarial", notation, variant=3, solutions=True)
    _assert_clean(html)
    text = read_page(html).text
    for heading in _section_titles_of_latex(worksheet_document("actuarial", notation, 3, solutions=True)):
        assert heading in text
    assert "Answer key" in text and "variant 3" in text


def test_key_only_page_has_no_exercises():
    text = read_page(worksheet_page("actuarial", key_only=True)).text
    assert "Answer key" in text and "Exercise 1: the chain rule" not in text


def test_the_marker_is_the_first_element_of_head(tmp_path):
    html = derivation_page("xor")
    page = tmp_path / "page.html"
    page.write_text(html)
    assert PAGE_MARKER.is_on(page)
    # The same words anywhere else do not count.
    page.write_text("<!DOCTYPE html><html><head><title>x</title>"
                    f'<meta name="generator" content="{MARKER}"></head></html>')
    assert not PAGE_MARKER.is_on(page)
    page.write_text(f'<!-- <meta name="generator" content="{MARKER}"> -->\n<html><head><title>x</title></head>')
    assert not PAGE_MARKER.is_on(page)
    page.write_text(f'<html><head><meta name="generator" content="{MARKER}-not"></head>')
    assert not PAGE_MARKER.is_on(page)


def test_same_spec_same_bytes():
    assert derivation_page("xor") == derivation_page("xor")


def test_derive_html_writes_a_page_and_refuses_foreign_files(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["derive", "xor", "--html"]) == 0
    written = tmp_path / "xor_derivation.html"
    assert PAGE_MARKER.is_on(written)
    assert capsys.readouterr().out.strip() == "wrote xor_derivation.html"
    # symbp's own page is replaced without --force.
    assert main(["derive", "xor", "--html", "--notation", "fausett"]) == 0
    assert "notation=fausett" in written.read_text()
    mine = tmp_path / "notes.html"
    mine.write_text("<html><head><title>my notes</title></head></html>")
    assert main(["derive", "xor", "--html", "-o", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbp: error: ") and err.count("\n") == 1 and "--force" in err
    assert mine.read_text() == "<html><head><title>my notes</title></head></html>"
    assert main(["derive", "xor", "--html", "-o", str(mine), "--force"]) == 0
    assert PAGE_MARKER.is_on(mine)


@pytest.mark.parametrize("arguments, message", [
    (["derive", "xor", "--html", "-o", "notes.tex"], "notes.tex: give a file name ending in .html"),
    (["derive", "xor", "--html", "--pdf"], "--pdf: a page has no PDF"),
    (["worksheet", "xor", "--html", "--format", "moodle"], "--html: asks for a page, but --format asks for moodle"),
    (["worksheet", "xor", "--format", "htm"], "--format: no format named 'htm'"),
])
def test_bad_requests_are_one_line_and_write_nothing(tmp_path, capsys, monkeypatch, arguments, message):
    monkeypatch.chdir(tmp_path)
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"symbp: error: {message}") and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_worksheet_format_html(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["worksheet", "xor", "--format", "html", "--variant", "2", "--solutions"]) == 0
    written = tmp_path / "xor_worksheet_2_solutions.html"
    assert PAGE_MARKER.is_on(written)
    assert "Answer key" in read_page(written.read_text()).text


def test_roster_of_pages(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "class.csv").write_text("id,name\nz1,Ann <b>\nz2,Bob\n")
    assert main(["worksheet", "xor", "--roster", "class.csv", "--html", "-o", "out"]) == 0
    pages = sorted((tmp_path / "out").glob("*.html"))
    assert [page.name for page in pages] == ["answer_key.html", "xor_z1.html", "xor_z2.html"]
    assert all(PAGE_MARKER.is_on(page) for page in pages)
    assert pages[1].read_text() != pages[2].read_text()  # each student their own numbers
    assert (tmp_path / "out" / "answers.csv").exists() and not (tmp_path / "out" / "answer_key.tex").exists()
    key = pages[0].read_text()
    assert "z1 (Ann &lt;b&gt;)" in key and "z2 (Bob)" in key
    assert raw_tex_in(read_page(key).text) == []
    # The folder's writer knows the pages for symbp's own: a second run replaces them (the CSV needs --force).
    from symbp.classroom.files import marker_for

    assert all(marker_for(page).is_on(page) for page in pages)


def test_missing_latex2mathml_is_one_line(tmp_path, capsys, monkeypatch):
    import symbp.render.html.mathml as mathml

    def missing():
        raise mathml.MissingHtmlSupport(f"--html: needs the latex2mathml package; {mathml.INSTALL_HINT}")

    monkeypatch.setattr(mathml, "_converter", missing)
    monkeypatch.chdir(tmp_path)
    assert main(["derive", "xor", "--html"]) == 2
    assert capsys.readouterr().err.strip() == ("symbp: error: --html: needs the latex2mathml package; "
                                               "pip install 'symbp[html]'")
    assert list(tmp_path.iterdir()) == []
