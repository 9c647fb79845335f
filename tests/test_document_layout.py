"""Layout decisions of the derivation documents: widths, breaks, the drawing's scale, and the added sections."""

import sympy as sp

from symbp.checks.numcheck import numerical_check, worst_relative_difference
from symbp.render.latex.document import Line, Writer, derivation_document, drawing_scale, fitted, notation_for
from symbp.render.latex.drawing import network_drawing
from symbp.render.latex.layout import TEXT_WIDTH_PT, estimated_width
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q

DEEP = {"name": "deep", "inputs": 3, "layers": [
    {"units": 8, "activation": "sigmoid"}, {"units": 8, "activation": "tanh"},
    {"units": 6, "activation": "sigmoid"}, {"units": 1, "activation": "linear"}], "loss": {"name": "squared_error"}}


def test_estimated_widths_grow_with_the_formula():
    short, longer = r"a^{(2)}_{j} - y_{j}", r"a^{(2)}_{j} - y_{j} + a^{(2)}_{k} - y_{k}"
    assert 0 < estimated_width(short) < estimated_width(longer)
    # A fraction is as wide as its wider part, not the sum of both.
    assert estimated_width(r"\frac{a + b + c}{d}") < estimated_width("a + b + c + d")


def test_justifications_move_under_their_steps_only_when_the_columns_do_not_fit():
    narrow = [Line("x", "=", "y", r"\text{chain rule}")]
    assert not fitted(narrow)[0].reason_below
    wide = [Line("x", "=", " + ".join(f"a_{{{n}}}" for n in range(30)), r"\text{chain rule}")]
    moved = fitted(wide)[0]
    assert moved.reason_below and 0 < moved.reason_width < TEXT_WIDTH_PT


def test_a_long_sum_is_continued_over_rows_that_fit():
    spec = load_spec(DEEP)
    writer = Writer(notation_for(spec, "lab"))
    long_sum = sp.Add(*(q.weight(2)[i, 1] * q.act(1)[i] for i in range(1, 40)))
    rows = writer.rows_within(long_sum, 300.0)
    assert len(rows) > 1
    assert all(estimated_width(row) <= 300.0 for row in rows)
    assert rows[1].startswith("+ ")


def test_the_drawing_of_a_deep_network_is_scaled_into_the_text_block():
    spec = load_spec(DEEP)
    drawing = network_drawing(spec, notation_for(spec, "lab"))
    scale = drawing_scale(drawing)
    xs = [node.x for node in drawing.nodes]
    # The drawing may already be laid out narrower (its columns closer); either way it fits.
    assert 0 < scale <= 1
    assert (max(xs) - min(xs)) * scale + 2.4 <= 16.4 + 1e-9


def test_the_numerical_check_agrees_and_is_printed():
    spec = load_spec("house_prices")
    rows = numerical_check(spec)
    assert {row.layer for row in rows} == {1, 2}
    assert worst_relative_difference(rows) < 1e-6
    text = derivation_document(spec, "lesson")
    assert r"\section{A numerical check}" in text
    table = text.split(r"\section{A numerical check}")[1]
    assert table.count(r"\\") - table.count(r"\\\\[") >= len(rows)


def test_fausett_algorithm_is_written_as_the_post_numbers_it():
    text = derivation_document("fausett", "fausett")
    algorithm = text.split(r"\section{Fausett's algorithm}")[1].split(r"\section")[0]
    # alpha and delta as the macros the preamble defines (\rate, \err).
    assert r"\Delta w_{jk} &= \rate\,\err_{k}\,z_{j}" in algorithm
    assert r"\Delta v_{ij} &= \rate\,\err_{j}\,x_{i}" in algorithm
    assert r"\err\_in_{j} &= \sum_{k=1}^{2} \err_{k}\,w_{jk}" in algorithm
    assert r"w_{jk}(\text{new}) &= w_{jk}(\text{old}) + \Delta w_{jk}" in algorithm
    assert "Fausett's algorithm" not in derivation_document("fausett", "lab")
