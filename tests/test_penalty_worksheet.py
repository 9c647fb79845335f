"""Weight penalties (kernel_regularizer) on the worksheet: the exercise's loss is the sample's loss plus the penalties;
each penalised weight's penalty term (l1 sign(w) + 2 l2 w) and its penalised gradient are asked, exact, checked
against SymPy's derivative of the expanded loss plus the penalties while the sheet is made, and against the generated
module and central differences here; the update takes the sum; graded with carry-forward; typeset in all five
notations and on the HTML page; exported to Moodle and QTI (PrairieLearn refuses it in one line)."""

from __future__ import annotations

import io
import json
import random
import xml.etree.ElementTree as ET
import zipfile
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from html_inspection import raw_tex_in, read_page
from test_classroom_exports import QTI12_DTD, QTI_ITEM_XSD, QTI_PACKAGE_XSD, _errors, _schema
from typesetting_catalogue import NOTATIONS, inspect_tex

from symbp.checks.gradients import load_module_from_source
from symbp.classroom.answers import answers_of
from symbp.classroom.exercises import exercises
from symbp.classroom.grading import Sheet, grade
from symbp.classroom.moodle import moodle_xml
from symbp.classroom.qti import QTI, canvas_package, qti_items
from symbp.cli.main import main
from symbp.render.code.numpy_module import generate_module
from symbp.render.html.page import worksheet_page
from symbp.render.latex.document import notation_for
from symbp.render.latex.worksheet_document import worksheet_document
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q
from symbp.symbolic.penalties import WeightPenalty
from symbp.worksheet.exercises import build_worksheet


def _spec(hidden=None, output=None, inputs: int = 2, units: int = 2, name: str = "penalised") -> dict:
    first = {"units": units, "activation": "sigmoid"}
    last = {"units": 1, "activation": "sigmoid"}
    if hidden is not None:
        first["kernel_regularizer"] = hidden
    if output is not None:
        last["kernel_regularizer"] = output
    return {"name": name, "inputs": inputs, "layers": [first, last],
            "loss": {"name": "squared_error", "scale": 0.5}, "training": {"optimizer": "gd", "learning_rate": 0.5}}


# Unusual ones: L1 alone, L2 alone, both, on the hidden layer, the output layer or each; a network the sheet shrinks
# (three layers of 8, 6 and 3 units, softmax) with a different penalty on every layer; a residual layer; dropout.
SPECS = {
    "l1_hidden": _spec({"l1": 0.01}),
    "l2_output": _spec(None, {"l2": 0.001}),
    "both_everywhere": _spec({"l1": 0.01, "l2": 0.05}, {"l2": 0.001}),
    "shrunk": {"name": "wide_penalised", "inputs": 5, "layers": [
        {"units": 8, "activation": "tanh", "kernel_regularizer": {"l2": 0.0001}},
        {"units": 6, "activation": "relu", "kernel_regularizer": {"l1": 0.002}},
        {"units": 3, "activation": "softmax", "kernel_regularizer": {"l1": 0.001, "l2": 0.003}}],
        "loss": {"name": "cross_entropy"}, "training": {"optimizer": "adam", "learning_rate": 0.01}},
    "residual_dropout": {"name": "skip_penalised", "inputs": 2, "layers": [
        {"units": 2, "activation": "tanh", "residual": True, "kernel_regularizer": {"l1": 0.25, "l2": 0.5}},
        {"units": 2, "activation": "linear", "dropout": 0.5, "kernel_regularizer": {"l2": 0.125}}],
        "loss": {"name": "squared_error", "reduction": "mean"}, "training": {"learning_rate": 0.1}},
}
_HIDDEN = ("tanh", "sigmoid", "relu", "softplus", "linear")
_OUTPUTS = (("linear", "squared_error"), ("sigmoid", "binary_cross_entropy"), ("softmax", "cross_entropy"))
_PENALTIES = (None, {"l2": 0.01}, {"l1": 0.02}, {"l1": 0.005, "l2": 0.03}, {"l2": 0.5})


def _drawn(draw: int) -> dict:
    """A drawn network of dense, residual and dropout layers, with a penalty on at least one layer."""
    rng = random.Random(7919 * draw + 13)
    inputs = rng.randint(1, 3)
    layers, width = [], inputs
    for _ in range(rng.randint(0, 2)):
        kind = rng.choice(("dense", "residual", "dropout"))
        units = width if kind == "residual" else rng.randint(1, 4)
        layer = {"units": units, "activation": rng.choice(_HIDDEN), "bias": rng.random() < 0.8}
        if kind == "residual":
            layer["residual"] = True
        if kind == "dropout":
            layer["dropout"] = 0.5
        layers.append(layer)
        width = units
    activation, loss = rng.choice(_OUTPUTS)
    layers.append({"units": rng.randint(2, 3) if activation == "softmax" else rng.randint(1, 2),
                   "activation": activation})
    for layer in layers:
        penalty = rng.choice(_PENALTIES)
        if penalty:
            layer["kernel_regularizer"] = penalty
    if not any("kernel_regularizer" in layer for layer in layers):
        layers[rng.randrange(len(layers))]["kernel_regularizer"] = rng.choice(_PENALTIES[1:])
    return {"name": f"drawn{draw}", "inputs": inputs, "layers": layers,
            "loss": {"name": loss, "reduction": rng.choice(("mean", "sum")),
                     "scale": 0.5 if loss == "squared_error" else 1.0}}


CASES = {**SPECS, **{f"drawn{draw}": _drawn(draw) for draw in range(6)}}


def _coefficients(layer: dict) -> tuple[Fraction, Fraction]:
    given = layer.get("kernel_regularizer", {})
    return Fraction(str(given.get("l1", 0))), Fraction(str(given.get("l2", 0)))


@pytest.mark.parametrize("name", list(CASES))
def test_each_penalised_weight_gains_its_penalty_term_and_the_update_takes_the_sum(name):
    source = CASES[name]
    sheet = build_worksheet(source, 1)  # raises if a gradient disagrees with the expanded loss plus the penalties
    hand = sheet.hand
    # The hand network keeps each layer's penalty, shrunk or not.
    kept = [dict(layer.kernel_regularizer) for layer in hand.spec.layers]
    assert kept == [layer.get("kernel_regularizer", {}) for layer in source["layers"]]
    assert hand.shrunk or name != "shrunk"
    weights = {parameter for parameter in hand.gradients if q.ROLES[parameter.base].kind == "weight"
               and source["layers"][q.ROLES[parameter.base].layer - 1].get("kernel_regularizer")}
    assert set(hand.penalties) == weights and weights  # every weight of a penalised layer, no bias
    for parameter, term in hand.penalty_terms.items():
        l1, l2 = _coefficients(source["layers"][q.ROLES[parameter.base].layer - 1])
        w = Fraction(str(hand.values[parameter]))
        assert w != 0 and term == sp.Rational(l1 * (1 if w > 0 else -1) + 2 * l2 * w)  # exact
        assert hand.penalised_gradient(parameter) == hand.gradients[parameter] + term
    for parameter, value in hand.updated.items():
        step = hand.gradients[parameter] + hand.penalty_terms.get(parameter, 0)
        assert float(value) == pytest.approx(float(hand.values[parameter] - hand.rate * step), rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("name", list(CASES))
def test_the_penalised_gradients_are_the_generated_modules_and_central_differences(name):
    hand = build_worksheet(CASES[name], 1).hand
    module = load_module_from_source(generate_module(hand.spec), hand.spec.name)
    params = {key: np.array(matrix.tolist(), dtype=float).reshape(module.SHAPES[key])
              for key, matrix in hand.params.items()}
    X = np.array([[float(v) for v in hand.x]])
    Y = np.array([[float(v) for v in hand.y]])
    masks = [{key: np.array(mask.tolist(), dtype=float) for key, mask in hand.masks.items()}] if hand.masks else []
    loss, grads = module.loss_and_grad(params, X, Y, *masks)
    # The module's loss on this one sample is the sample's loss plus every penalty, on every entry of its weight.
    layers = {penalty.parameter.name: penalty for penalty in hand.penalties.values()}
    penalty = sum(float(penalty.term(w)) for penalty in layers.values() for w in hand.params[penalty.parameter.name])
    assert loss == pytest.approx(float(hand.loss) + penalty, rel=1e-10)
    step = 1e-6
    for parameter in hand.gradients:
        role = q.ROLES[parameter.base]
        key = f"{'W' if role.kind == 'weight' else 'b'}{role.layer}"
        index = tuple(int(i) - 1 for i in parameter.indices)
        assert float(hand.penalised_gradient(parameter)) == pytest.approx(grads[key][index], rel=1e-9, abs=1e-12)
        if parameter in hand.penalties:  # away from the kink of |w|: the drawn weights are never 0
            moved = [{**params, key: params[key].copy()} for _ in range(2)]
            moved[0][key][index] += step
            moved[1][key][index] -= step
            central = (module.loss_and_grad(moved[0], X, Y, *masks)[0]
                       - module.loss_and_grad(moved[1], X, Y, *masks)[0]) / (2 * step)
            assert float(hand.penalised_gradient(parameter)) == pytest.approx(central, rel=1e-6, abs=1e-8)


def test_the_draws_are_unusual_enough():
    layers = [layer for spec in CASES.values() for layer in spec["layers"]]
    penalties = [layer["kernel_regularizer"] for layer in layers if "kernel_regularizer" in layer]
    assert any(set(p) == {"l1"} for p in penalties) and any(set(p) == {"l2"} for p in penalties)
    assert any(set(p) == {"l1", "l2"} for p in penalties)
    assert any("residual" in layer for layer in layers) and any("dropout" in layer for layer in layers)
    outputs = [spec["layers"][-1] for spec in CASES.values()]
    assert any("kernel_regularizer" in layer for layer in outputs)
    assert any("kernel_regularizer" in layer for spec in CASES.values() for layer in spec["layers"][:-1])


@pytest.mark.parametrize(("wrong", "words"), [
    (lambda self, w=None: self.l1 * sp.sign(self.entry if w is None else w)
     + self.l2 * (self.entry if w is None else w), "factor 2 dropped"),
    (lambda self, w=None: sp.Integer(0), "penalty left out"),
])
def test_a_wrong_penalty_term_is_caught_while_the_sheet_is_made(monkeypatch, wrong, words):
    monkeypatch.setattr(WeightPenalty, "derivative", wrong)
    with pytest.raises(ArithmeticError, match="penalised gradient of .* disagrees with the expanded loss plus"):
        build_worksheet(SPECS["both_everywhere"], 1)


def test_the_grader_carries_the_penalty_forward_and_names_its_slips():
    sheet = build_worksheet(SPECS["both_everywhere"], 0)
    answers = answers_of(sheet)
    true = {answer.name: answer.value for answer in answers}
    names = [answer.name for answer in answers]
    assert names.index("dW1_1_1") < names.index("dpW1_1_1") < names.index("dLW1_1_1") < names.index("W1_1_1_new")
    assert "dpb1_1" not in true and "dLb1_1" not in true  # biases are not penalised
    model = Sheet(sheet, answers)
    for answer in answers:
        assert model.expected(answer.name, true) == pytest.approx(answer.value, rel=1e-9, abs=1e-12), answer.name
    assert grade(sheet, true).line().endswith(f"all {len(answers)} answers right")
    w = float(sheet.hand.params["W1"][0, 0])
    slips = {
        "dpW1_1_1": (0.01 * abs(w) + 0.05 * w * w, "the penalty itself instead of its derivative"),
        "dLW1_1_1": (true["dW1_1_1"], "the penalty's derivative left out"),
        "W1_1_1_new": (w - float(sheet.hand.rate) * true["dW1_1_1"], "the penalty's derivative left out of the step"),
    }
    for name, (value, words) in slips.items():
        first = grade(sheet, {**true, name: value}).first
        assert first.name == name and words in first.slips, (name, first)
    halved = true["dpW1_1_1"] - 0.05 * w
    assert "the factor 2 of the square's derivative left out" in grade(sheet, {**true, "dpW1_1_1": halved}).first.slips
    # A wrong penalty term, and the penalised gradient and update computed from it, is one mistake.
    carried = {**true, "dpW1_1_1": true["dpW1_1_1"] + 0.5}
    for name in ("dLW1_1_1", "W1_1_1_new"):
        carried[name] = model.expected(name, carried)
    report = grade(sheet, carried)
    assert report.first.name == "dpW1_1_1" and len(report.mistakes) == 1 and report.carried == 2


@pytest.mark.parametrize("name", ["both_everywhere", "shrunk", "residual_dropout"])
def test_the_sheet_and_its_key_typeset_in_every_notation(name):
    for notation in NOTATIONS:
        source = worksheet_document(SPECS[name], notation, 1, solutions=True)
        assert "are penalised (the biases are not)" in source and r"\operatorname{sign}" in source
        report = inspect_tex(source, f"ws_penalty_{name}_{notation}")
        assert report.problems() == [], (notation, report.problems()[:5])


def test_the_sheet_states_the_penalised_loss_in_the_readers_notation():
    sheet = worksheet_document(SPECS["both_everywhere"], "lesson", 0, solutions=True)
    # The lesson writes both losses E: the penalised one is E with a tilde, the sample's loss plus both penalties.
    assert r"\frac{\partial \tilde{E}}{\partial" in sheet
    stated = sheet.split(r"\tilde{E} &=")[1].split(r"\end{align*}")[0]
    assert all(part in stated for part in ("E", r"\frac{1}{20}", r"\frac{1}{100} \left|", r"\frac{1}{1000}", r"\sum"))
    lab = worksheet_document(SPECS["l2_output"], "lab", 0, solutions=True)
    assert r"\mathcal{L}(\mathcal{D}, \boldsymbol{\theta}) &=" in lab and "the weights of layer~2 are" in lab.lower()
    plain = worksheet_document(_spec(), "lab", 0, solutions=True)
    assert "are penalised" not in plain and r"\tilde" not in plain


def test_the_html_worksheet_carries_the_penalties():
    page = read_page(worksheet_page(SPECS["both_everywhere"], "fausett", solutions=True))
    assert page.tags.count("math") > 50 and raw_tex_in(page.text) == []
    assert "are penalised (the biases are not)" in page.text and "derivative of its penalty" in page.text


def test_moodle_and_qti_carry_the_penalty_answers():
    spec = load_spec(SPECS["shrunk"])
    notation = notation_for(spec)
    groups = [(f"variant {v}", build_worksheet(spec, v)) for v in (1, 2)]
    assert "penalty" in [exercise.key for exercise in exercises(groups[0][1])]
    expected = {label: {a.name: a.value for a in answers_of(sheet)} for label, sheet in groups}
    # Moodle: a cloze question on the penalties, whose blanks are the sheet's values in order.
    quiz = ET.fromstring(moodle_xml(spec, notation, groups))
    penalties = [question for question in quiz.findall("question")
                 if (question.findtext("name/text") or "").endswith("Weight penalties")]
    assert len(penalties) == 2
    for (_, sheet), question in zip(groups, penalties):
        text = question.findtext("questiontext/text")
        blanks = [float(blank.split(":")[0]) for blank in text.split("{1:NUMERICAL:=")[1:]]
        wanted = [a.value for a in answers_of(sheet) if a.part == "penalty"]
        assert blanks == pytest.approx(wanted, rel=1e-9) and len(wanted) == 2 * len(sheet.hand.penalties)
        assert "are penalised" in text and r"\left|" in text
    # QTI 2.1: each item valid, its correct responses the sheet's answers by column name.
    for path, data in qti_items(spec, notation, groups).items():
        assert _errors(_schema(QTI_PACKAGE_XSD if path == "imsmanifest.xml" else QTI_ITEM_XSD), data) == [], path
        if path == "imsmanifest.xml":
            continue
        item = ET.fromstring(data)
        label = next(label for label in expected if label.replace(" ", ".20.") in path)
        for declaration in item.iter(f"{{{QTI}}}responseDeclaration"):
            column = declaration.get("identifier")[2:]
            value = float(declaration.find(f"{{{QTI}}}correctResponse/{{{QTI}}}value").text)
            assert value == pytest.approx(expected[label][column], rel=1e-9, abs=1e-12)
    archive = zipfile.ZipFile(io.BytesIO(canvas_package(spec, notation, groups)))
    (assessment,) = [n for n in archive.namelist() if n != "imsmanifest.xml"]
    assert _errors(_schema(QTI12_DTD), archive.read(assessment)) == []
    titles = [item.get("title") for item in ET.fromstring(archive.read(assessment)).iter("item")]
    assert {"dpW1_1_1", "dLW1_1_1"} <= set(titles)


def test_a_roster_key_and_its_answers_round_trip_through_the_grader(tmp_path, capsys):
    (tmp_path / "net.json").write_text(json.dumps(SPECS["both_everywhere"]))
    (tmp_path / "roster.csv").write_text("id,name\ns1,Ann\ns2,Bob\n")
    folder = tmp_path / "class"
    assert main(["worksheet", str(tmp_path / "net.json"), "--roster", str(tmp_path / "roster.csv"),
                 "-o", str(folder)]) == 0
    header = (folder / "answers.csv").read_text().splitlines()[0].split(",")
    assert {"dpW1_1_1", "dLW1_1_1", "dpW2_2_1", "dLW2_2_1"} <= set(header) and "dpb1_1" not in header
    report = inspect_tex((folder / "answer_key.tex").read_text(), "penalty_class_key")
    assert report.problems() == []
    capsys.readouterr()
    assert main(["grade", str(tmp_path / "net.json"), str(folder / "answers.csv")]) == 0
    assert "2 of 2 students answered everything right" in capsys.readouterr().out


def test_prairielearn_refuses_penalties_in_one_line(tmp_path, capsys):
    (tmp_path / "net.json").write_text(json.dumps(SPECS["l1_hidden"]))
    target = tmp_path / "questions"
    code = main(["worksheet", str(tmp_path / "net.json"), "--format", "prairielearn", "-o", str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "kernel_regularizer" in err[0] and "moodle or qti" in err[0]
    assert not target.exists()


def test_a_sheet_without_penalties_is_as_it_was():
    sheet = build_worksheet("xor", 0)
    assert sheet.hand.penalties == {} and sheet.hand.penalty_terms == {}
    assert "penalty" not in [exercise.key for exercise in exercises(sheet)]
    assert all(answer.part != "penalty" for answer in answers_of(sheet))
