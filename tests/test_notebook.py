"""The example notebook runs, and what symbp's API returns displays itself: a spec as its drawing (SVG), a
derivation and a worksheet as MathML pages with no TeX left, a training history as its loss curve."""

from __future__ import annotations

from pathlib import Path

import pytest
from html_inspection import external_addresses, raw_tex_in, read_page

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("latex2mathml")

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "symbp.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    folder = tmp_path_factory.mktemp("notebook")
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _data(cell, kind: str) -> str:
    found = [output["data"][kind] for output in cell.outputs if kind in output.get("data", {})]
    assert found, f"no {kind} output from: {cell.source}"
    return found[0]


def test_no_cell_fails(executed):
    for cell in executed:
        assert not [output for output in cell.outputs if output.output_type == "error"], cell.source


def test_a_spec_shows_its_network(executed):
    html = _data(executed[0], "text/html")
    page = read_page(html)
    assert "svg" in page.tags and "math" in page.tags and "circle" in page.tags
    assert raw_tex_in(page.text) == []
    assert "actuarial" in page.text


@pytest.mark.parametrize("position, heading", [(1, "A numerical check"), (3, "Answer key")])
def test_documents_show_as_mathml(executed, position, heading):
    html = _data(executed[position], "text/html")
    page = read_page(html)
    assert page.tags.count("math") > 50
    assert raw_tex_in(page.text) == []
    assert heading in page.text
    assert external_addresses(html) == []
    # A notebook cell gets the page's body, styled in its own scope, never a document of its own.
    assert "html" not in page.tags and "head" not in page.tags


def test_the_document_is_still_its_latex_source(executed):
    printed = "".join(output.get("text", "") for output in executed[2].outputs)
    assert printed.startswith("% symbp-generated-document")


def test_a_history_shows_its_loss_curve(executed):
    svg = _data(executed[4], "image/svg+xml")
    assert svg.startswith("<svg") and "<polyline" in svg
    assert "3000 epochs, stopped: epochs" in svg


def test_history_stays_a_dict():
    from symbp import History

    raw = {"loss": [4.0, 1.0, 0.5, 0.1], "val_loss": [5.0, 2.0, 1.0, 1.5], "stopped": "early_stopping",
           "best_epoch": 3}
    history = History(raw)
    assert history == raw and isinstance(history, dict) and history["best_epoch"] == 3
    svg = history._repr_svg_()
    assert svg.count("<polyline") == 2 and "restored: epoch 3" in svg and "(log scale)" not in svg
    assert "(log scale)" in History({"loss": [100.0, 1.0, 1e-4], "stopped": "epochs"})._repr_svg_()
    assert "no epoch completed" in History({"loss": [], "stopped": "diverged"})._repr_svg_()
    assert History(raw)._repr_svg_() == svg  # deterministic


def test_a_document_pickles_as_its_source():
    import pickle

    from symbp.render.html.notebook import LatexDocument

    document = LatexDocument("% symbp-generated-document\n", lambda: "<p>page</p>")
    assert document._repr_html_() == "<p>page</p>"
    copied = pickle.loads(pickle.dumps(document))
    assert copied == document and type(copied) is str
