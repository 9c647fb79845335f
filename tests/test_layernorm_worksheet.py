"""Layer normalisation on the worksheet: an exercise on the normalised layer (its weighted sums, mean, variance,
scale and normalised values forward; its error terms at x_hat and u back), exact where the arithmetic is exact,
every gradient checked against SymPy's expanded loss as the sheet is built, graded with carry-forward, typeset
in all five notations, on the HTML page, and exported to Moodle and QTI (PrairieLearn refuses it in one line)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import sympy as sp
from html_inspection import raw_tex_in, read_page
from test_classroom_exports import QTI12_DTD, QTI_ITEM_XSD, QTI_PACKAGE_XSD, _errors, _schema
from test_layernorm_derivation import SPECS
from test_layernorm_draws import _drawn
from typesetting_catalogue import NOTATIONS, inspect_tex

from symbp.classroom.answers import answers_of
from symbp.classroom.exercises import exercises
from symbp.classroom.grading import Sheet, grade
from symbp.classroom.moodle import moodle_xml
from symbp.classroom.qti import canvas_package, qti_items
from symbp.cli.main import main
from symbp.render.html.page import worksheet_page
from symbp.render.latex.document import notation_for
from symbp.render.latex.worksheet_document import worksheet_document
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q
from symbp.worksheet.exercises import build_worksheet


def _specs():
    # Drawn with their weight penalties, which the sheet carries beside the normalised layer.
    drawn = [load_spec(_drawn(draw)) for draw in range(30)]
    # Shallow ones: each gradient of a deep normalised hand network takes SymPy seconds to check.
    drawn = [spec for spec in drawn if any(layer.normalization for layer in spec.layers) and len(spec.layers) <= 3][:2]
    assert len(drawn) == 2
    return [load_spec(SPECS[name]) for name in sorted(SPECS)] + drawn


@pytest.mark.parametrize("sign", [1, -1])
def test_the_normalised_layer_is_worked_exactly_where_it_can_be(sign):
    for spec in _specs():
        for variant in ((0, 1) if sign > 0 else (2,)):
            sheet = build_worksheet(spec, variant, sign)  # raises if a gradient disagrees with the expanded loss
            hand = sheet.hand
            layers = [index for index, layer in enumerate(hand.spec.layers, start=1) if layer.normalization]
            assert layers and all(2 <= hand.spec.sizes[layer] <= 3 for layer in layers)
            for layer in layers:
                units = range(1, hand.spec.sizes[layer] + 1)
                u = [hand.normalisation[q.weighted(layer)[j]] for j in units]
                mean = hand.normalisation[q.layer_statistic("mean", layer)]
                variance = hand.normalisation[q.layer_statistic("variance", layer)]
                # Weighted sums of rationals (the drawn inputs and weights, or a rational layer below), their mean
                # and biased variance: exact fractions, and decimals only where the layer below is irrational.
                below = [hand.values[q.act(layer - 1)[i]] for i in range(1, hand.spec.sizes[layer - 1] + 1)]
                exact = all(sp.sympify(value).is_Rational for value in below)
                assert all(value.is_Rational for value in [*u, mean, variance]) == exact
                assert float(mean) == pytest.approx(float(sum(u)) / len(u), rel=1e-12, abs=1e-14)
                assert float(variance) == pytest.approx(float(sum((v - mean) ** 2 for v in u)) / len(u), rel=1e-12,
                                                        abs=1e-14)
                # The rest on floats, recomputed here with NumPy from the layer's definitions.
                epsilon = float(hand.normalisation[q.layer_statistic("stabiliser", layer)])
                scale = np.sqrt(float(variance) + epsilon)
                x_hat = (np.array(u, dtype=float) - float(mean)) / scale
                assert float(hand.normalisation[q.layer_statistic("scale", layer)]) == pytest.approx(scale, rel=1e-12)
                got = [float(hand.normalisation[q.normalised(layer)[j]]) for j in units]
                assert got == pytest.approx(list(x_hat), rel=1e-12, abs=1e-12)
                g = np.array([float(hand.deltas[q.delta(layer)[j]] * hand.values[q.gain(layer)[j]]) for j in units])
                compact = (len(g) * g - g.sum() - x_hat * (g * x_hat).sum()) / (len(g) * scale)
                got = [float(hand.normalisation[q.weighted_delta(layer)[j]]) for j in units]
                assert got == pytest.approx(list(compact), rel=1e-10, abs=1e-12)


def test_the_grader_carries_the_normalised_layer_forward():
    sheet = build_worksheet(load_spec(SPECS["below_a_dense_layer"]), 0)
    answers = answers_of(sheet)
    true = {answer.name: answer.value for answer in answers}
    assert {"u2_1", "mu2", "var2", "sigmahat2", "xhat2_3", "g2_1", "deltau2_2", "dgamma2_1", "dbeta2_3",
            "gamma2_1_new"} <= set(true)
    model = Sheet(sheet, answers)
    # Each answer follows from the earlier true ones by the grader's own arithmetic.
    for answer in answers:
        assert model.expected(answer.name, true) == pytest.approx(answer.value, rel=1e-9, abs=1e-12), answer.name
    assert grade(sheet, true).line().endswith(f"all {len(answers)} answers right")
    wrong = {**true, "deltau2_2": -true["deltau2_2"]}
    first = grade(sheet, wrong).first
    assert first.name == "deltau2_2" and "a wrong sign" in first.slips
    # A wrong mean, and every later answer computed from it, is one mistake: the rest follow from it.
    carried = dict(true)
    carried["mu2"] = true["mu2"] + 0.5
    for name in ("var2", "sigmahat2", "xhat2_1", "xhat2_2", "xhat2_3"):
        carried[name] = model.expected(name, carried)
    report = grade(sheet, carried)
    assert report.first.name == "mu2" and report.carried >= 5


@pytest.mark.parametrize("name", ["hidden", "both"])
def test_the_worksheet_typesets_without_an_overfull_box_in_every_notation(name):
    for notation in NOTATIONS:
        source = worksheet_document(SPECS[name], notation, 1, solutions=True)
        assert "the normalised layer" in source
        report = inspect_tex(source, f"ws_{name}_{notation}")
        assert report.problems() == [], (notation, report.problems()[:5])


def test_the_html_worksheet_renders_the_exercise():
    page = read_page(worksheet_page(SPECS["hidden"], "fausett", solutions=True))
    assert page.tags.count("math") > 50 and raw_tex_in(page.text) == []
    assert "the normalised layer" in page.text


def test_moodle_and_qti_export_the_exercise():
    spec = load_spec(SPECS["below_a_dense_layer"])
    notation = notation_for(spec)
    groups = [(f"variant {v}", build_worksheet(spec, v)) for v in (1, 2)]
    keys = [exercise.key for exercise in exercises(groups[0][1])]
    assert "normalisation" in keys
    quiz = ET.fromstring(moodle_xml(spec, notation, groups))
    assert any("normalised layer" in (question.find("name/text").text or "")
               for question in quiz.findall("question") if question.get("type") != "category")
    for path, data in qti_items(spec, notation, groups).items():
        assert _errors(_schema(QTI_PACKAGE_XSD if path == "imsmanifest.xml" else QTI_ITEM_XSD), data) == [], path
    import io
    import zipfile
    archive = zipfile.ZipFile(io.BytesIO(canvas_package(spec, notation, groups)))
    (assessment,) = [n for n in archive.namelist() if n != "imsmanifest.xml"]
    assert _errors(_schema(QTI12_DTD), archive.read(assessment)) == []


def test_prairielearn_refuses_it_in_one_line(tmp_path, capsys):
    (tmp_path / "net.json").write_text(json.dumps(SPECS["hidden"]))
    target = tmp_path / "questions"
    code = main(["worksheet", str(tmp_path / "net.json"), "--format", "prairielearn", "-o", str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "normalis" in err[0] and "moodle or qti" in err[0]
    assert not target.exists()


def test_a_network_without_one_has_no_such_exercise():
    sheet = build_worksheet("xor", 0)
    assert sheet.hand.normalisation == {}
    assert "normalisation" not in [exercise.key for exercise in exercises(sheet)]
    assert all(not isinstance(answer.exact, sp.Basic) or answer.part != "normalisation" for answer in answers_of(sheet))
