"""Batch normalisation on the worksheet: the first batch-normalised layer takes one training step on a batch of
three samples, forward (weighted sums, each unit's mean, variance and scale over the batch, normalised values and
pre-activations) and back (the batch loss's derivatives at the normalised values and at the weighted sums, and
its gradients for the gains, shifts and weights), exact where the arithmetic is exact, every gradient checked
against SymPy as the sheet is built and here against the generated NumPy module's; graded with carry-forward,
typeset in all five notations, on the HTML page, exported to Moodle and QTI (PrairieLearn refuses it in one
line)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
import sympy as sp
from html_inspection import raw_tex_in, read_page
from test_batchnorm_derivation import SPECS, _drawn
from test_classroom_exports import QTI12_DTD, QTI_ITEM_XSD, QTI_PACKAGE_XSD, _errors, _schema
from typesetting_catalogue import NOTATIONS, inspect_tex

from symbp.checks.gradients import load_module_from_source
from symbp.classroom.answers import answers_of
from symbp.classroom.exercises import exercises
from symbp.classroom.grading import Sheet, grade
from symbp.classroom.moodle import moodle_xml
from symbp.classroom.qti import canvas_package, qti_items
from symbp.cli.main import main
from symbp.render.code.numpy_module import generate_module
from symbp.render.html.page import worksheet_page
from symbp.render.latex.document import notation_for
from symbp.render.latex.worksheet_document import worksheet_document
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q
from symbp.worksheet.exercises import build_worksheet


def _layer_alone(sheet) -> tuple:
    """The exercise's layer as a network of its own, the generated module's, with targets chosen so that the batch's
    loss, 1/2 sum (z - y)^2, has the derivatives at z that the sheet gives: y = z - dL/dz."""
    exercise = sheet.batch_norm
    layer_spec = sheet.spec.layers[exercise.layer - 1]
    spec = load_spec({"name": "bn_alone", "inputs": exercise.fan_in,
                      "layers": [{"units": exercise.units, "activation": "linear", "normalization": "batch",
                                  "epsilon": layer_spec.epsilon}],
                      "loss": {"name": "squared_error", "scale": 0.5, "reduction": "sum"}})
    module = load_module_from_source(generate_module(spec), spec.name)
    params = {"W1": np.array(exercise.weight.tolist(), dtype=float),
              "gamma1": np.array(exercise.gain.tolist(), dtype=float).ravel(),
              "beta1": np.array(exercise.shift.tolist(), dtype=float).ravel()}
    params.update({name: value for name, value in module.init_params(0).items() if name.startswith("running")})
    X = np.array(exercise.inputs.tolist(), dtype=float)
    return module, params, X


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_the_answers_are_the_generated_modules_numbers(variant):
    sheet = build_worksheet(load_spec(SPECS["below_a_dense_layer"]), variant)
    exercise = sheet.batch_norm
    assert exercise.layer == 2 and exercise.inputs.shape == (3, 2)
    module, params, X = _layer_alone(sheet)
    upstream = np.array(exercise.upstream.tolist(), dtype=float)
    # The training-mode forward pass: the module's loss with Y = 0 is 1/2 sum z^2, whose gradient in beta is sum z.
    zero = np.zeros_like(upstream)
    pre = np.array([[float(exercise.forward[q.AtSample(q.pre(2)[j + 1], sp.Integer(n + 1))])
                     for j in range(exercise.units)] for n in range(3)])
    assert module.loss(params, X, zero, training=True) == pytest.approx(0.5 * (pre**2).sum(), rel=1e-12)
    _, grads = module.loss_and_grad(params, X, pre - upstream, training=True)
    for name, base in (("W1", q.weight(2)), ("gamma1", q.gain(2)), ("beta1", q.shift(2))):
        for index in np.ndindex(grads[name].shape):
            quantity = base[tuple(i + 1 for i in index)] if name == "W1" else base[index[0] + 1]
            assert float(exercise.backward[q.Partial(q.LOSS, quantity)]) == pytest.approx(
                grads[name][index], rel=1e-9, abs=1e-12), (name, index)
    # Mean and biased variance of rational weighted sums are exact fractions.
    for j in (1, 2):
        assert exercise.forward[q.layer_statistic("mean", 2)[j]].is_Rational
        assert exercise.forward[q.layer_statistic("variance", 2)[j]].is_Rational


def test_drawn_batch_norm_specs_give_a_sheet():
    for seed in range(4):
        spec = load_spec(_drawn(seed))
        sheet = build_worksheet(spec, seed)  # raises if a gradient disagrees with SymPy's
        first = next(index for index, layer in enumerate(spec.layers, start=1) if layer.normalization)
        assert sheet.batch_norm.layer == first
        assert all(layer.normalization != "batch" for layer in sheet.hand.spec.layers)


def test_the_grader_carries_the_batch_forward():
    sheet = build_worksheet(load_spec(SPECS["hidden"]), 0)
    answers = answers_of(sheet)
    true = {answer.name: answer.value for answer in answers}
    assert {"bnu1_1_1", "bnmu1_1", "bnvar1_1", "bnsigmahat1_1", "bnxhat1_3_1", "bnz1_2_1", "bndxhat1_1_1",
            "bndu1_2_1", "bndgamma1_1", "bndbeta1_1", "bndW1_1_1"} <= set(true)
    model = Sheet(sheet, answers)
    for answer in answers:
        assert model.expected(answer.name, true) == pytest.approx(answer.value, rel=1e-9, abs=1e-12), answer.name
    assert grade(sheet, true).line().endswith(f"all {len(answers)} answers right")
    # The coupling left out: each sample's dL/du as g / sigma_hat alone.
    g = true["bndxhat1_2_1"]
    wrong = {**true, "bndu1_2_1": g / true["bnsigmahat1_1"]}
    first = grade(sheet, wrong).first
    assert first.name == "bndu1_2_1" and any("coupling" in slip for slip in first.slips)
    # A wrong mean, and every later answer computed from it, is one mistake.
    carried = dict(true)
    carried["bnmu1_1"] = true["bnmu1_1"] + 0.5
    for answer in answers:
        if answer.part == "batch_norm" and answer.name not in ("bnmu1_1",) and not answer.name.startswith("bnu"):
            carried[answer.name] = model.expected(answer.name, carried)
    report = grade(sheet, carried)
    assert report.first.name == "bnmu1_1" and len(report.mistakes) == 1 and report.carried >= 10


@pytest.mark.parametrize("name", ["hidden", "below_a_dense_layer"])
def test_the_worksheet_typesets_without_an_overfull_box_in_every_notation(name):
    for notation in NOTATIONS:
        source = worksheet_document(SPECS[name], notation, 1, solutions=True)
        assert "the batch-normalised layer on a batch of three" in source
        report = inspect_tex(source, f"bnws_{name}_{notation}")
        assert report.problems() == [], (notation, report.problems()[:5])


def test_the_html_worksheet_renders_the_exercise():
    page = read_page(worksheet_page(SPECS["hidden"], "fausett", solutions=True))
    assert page.tags.count("math") > 50 and raw_tex_in(page.text) == []
    assert "the batch-normalised layer on a batch of three" in page.text


def test_moodle_and_qti_export_the_exercise():
    spec = load_spec(SPECS["below_a_dense_layer"])
    notation = notation_for(spec)
    groups = [(f"variant {v}", build_worksheet(spec, v)) for v in (1, 2)]
    keys = [exercise.key for exercise in exercises(groups[0][1])]
    assert "batch_norm" in keys
    quiz = ET.fromstring(moodle_xml(spec, notation, groups))
    assert any("batch-normalised layer" in (question.find("name/text").text or "")
               for question in quiz.findall("question") if question.get("type") != "category")
    for path, data in qti_items(spec, notation, groups).items():
        assert _errors(_schema(QTI_PACKAGE_XSD if path == "imsmanifest.xml" else QTI_ITEM_XSD), data) == [], path
    archive = zipfile.ZipFile(io.BytesIO(canvas_package(spec, notation, groups)))
    (assessment,) = [n for n in archive.namelist() if n != "imsmanifest.xml"]
    assert _errors(_schema(QTI12_DTD), archive.read(assessment)) == []


def test_prairielearn_refuses_it_in_one_line(tmp_path, capsys):
    (tmp_path / "net.json").write_text(json.dumps(SPECS["hidden"]))
    target = tmp_path / "questions"
    code = main(["worksheet", str(tmp_path / "net.json"), "--format", "prairielearn", "-o", str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "batch-normalised" in err[0] and "moodle or qti" in err[0]
    assert not target.exists()


def test_a_network_without_one_has_no_such_exercise():
    sheet = build_worksheet("xor", 0)
    assert sheet.batch_norm is None
    assert "batch_norm" not in [exercise.key for exercise in exercises(sheet)]
