"""Convolution and pooling on the worksheet: the first window layer, made small (an input of 5 or 6 entries, or
4 x 4, one channel and one filter, its kind kept with its stride and padding where they fit), worked on one sample:
its outputs, the kernel's and bias's gradients and the error passed back to its input (max pooling: routed to the
first largest entry; average: shared), exact, checked against SymPy as the sheet is built and here against the
generated NumPy module's numbers; graded, typeset in all five notations, on the HTML page, exported to Moodle and
QTI (PrairieLearn refuses it in one line); the rest of the sheet works the network with dense layers in their
place."""

from __future__ import annotations

import io
import json
import math
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
from html_inspection import raw_tex_in, read_page
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


def _spec(shape, *layers) -> dict:
    return {"name": "win", "input_shape": list(shape), "inputs": math.prod(shape),
            "layers": [*layers, {"units": 2, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
            "loss": {"name": "squared_error"}}


SPECS = {
    "conv1d": _spec([2, 9], {"kind": "conv1d", "filters": 2, "kernel_size": 4, "padding": 2, "activation": "relu"}),
    "avg_pool1d": _spec([1, 8], {"kind": "avg_pool1d", "pool_size": 3}),
    "conv2d": "digits_conv",
    "max_pool2d": _spec([1, 6, 6], {"kind": "max_pool2d", "pool_size": 2},
                        {"kind": "conv2d", "filters": 1, "kernel_size": 2, "activation": "tanh"}),
}


def _alone(exercise):
    """The exercise's layer as a network of its own, the generated module's: the layer (linear), then a linear layer
    with identity weights, so that the module's output is the layer's; 1/2 sum (z - y)^2 with y = z - dL/dz gives
    the layer the derivatives at its outputs that the sheet gives."""
    channels, *spatial = exercise.input_shape
    table = {"kind": exercise.kind, "stride": list(exercise.stride)}
    if exercise.pooling:
        table["pool_size"] = list(exercise.window)
    else:
        table.update(kernel_size=list(exercise.window), padding=list(exercise.padding), filters=1,
                     activation="linear", bias=bool(exercise.bias))
    outputs = math.prod(exercise.output_shape)
    spec = load_spec({"name": "win_alone", "input_shape": [channels, *spatial],
                      "layers": [table, {"units": outputs, "activation": "linear"}],
                      "loss": {"name": "squared_error", "scale": 0.5, "reduction": "sum"}})
    module = load_module_from_source(generate_module(spec), spec.name)
    params = {"W2": np.eye(outputs), "b2": np.zeros(outputs)}
    if exercise.kernel:
        kernel = np.zeros((1, channels, *exercise.window))
        for quantity, value in exercise.kernel.items():
            kernel[tuple(i - 1 for i in quantity.indices)] = float(value)
        params["W1"] = kernel
    if exercise.bias:
        params["b1"] = np.array([float(value) for value in exercise.bias.values()])
    X = np.array([[float(value) for value in exercise.inputs.values()]])
    return module, params, X


@pytest.mark.parametrize("name", list(SPECS))
def test_the_answers_are_the_generated_modules_numbers(name):
    sheet = build_worksheet(SPECS[name], 1)
    exercise = sheet.window
    assert exercise.kind == name and exercise.layer == 1
    assert exercise.input_shape[0] == 1 and math.prod(exercise.input_shape) <= 16
    module, params, X = _alone(exercise)
    z = np.array([[float(value) for value in exercise.forward.values()]])
    assert module.forward(params, X) == pytest.approx(z, rel=1e-12, abs=1e-12)
    upstream = np.array([[float(value) for value in exercise.upstream.values()]])
    _, grads = module.loss_and_grad(params, X, z - upstream)
    for quantity, value in exercise.backward.items():
        role = q.ROLES[quantity.denominator.base]
        index = tuple(i - 1 for i in quantity.denominator.indices)
        if role.kind == "weight":
            assert float(value) == pytest.approx(grads["W1"][index], rel=1e-12, abs=1e-12), quantity
        elif role.kind == "bias":
            assert float(value) == pytest.approx(grads["b1"][index], rel=1e-12, abs=1e-12), quantity
    # The error passed back to the input, against central differences of the module's loss (exact for a layer
    # linear in its input; max pooling's inputs are distinct, so a small step does not move its arg-max).
    step, Y = 1e-4, z - upstream
    for flat, (quantity, value) in enumerate((k, v) for k, v in exercise.backward.items()
                                             if q.ROLES[k.denominator.base].kind not in ("weight", "bias")):
        up, down = X.copy(), X.copy()
        up[0, flat] += step
        down[0, flat] -= step
        numeric = (module.loss(params, up, Y) - module.loss(params, down, Y)) / (2 * step)
        assert float(value) == pytest.approx(numeric, rel=1e-6, abs=1e-8), quantity


def test_the_layer_keeps_its_kind_stride_and_padding_where_they_fit():
    conv = build_worksheet(SPECS["conv1d"], 0).window
    assert (conv.input_shape, conv.window, conv.stride, conv.padding, conv.output_shape) == (
        (1, 5), (3,), (1,), (1,), (1, 5))
    pooled = build_worksheet(SPECS["avg_pool1d"], 0).window
    assert (pooled.input_shape, pooled.window, pooled.stride, pooled.output_shape) == ((1, 6), (3,), (3,), (1, 2))
    assert all(value == sum(list(pooled.inputs.values())[3 * p:3 * p + 3]) / 3
               for p, value in enumerate(pooled.forward.values()))
    image = build_worksheet(SPECS["max_pool2d"], 0)
    assert (image.window.input_shape, image.window.output_shape) == ((1, 4, 4), (1, 2, 2))
    # Each window's error goes to its largest entry alone.
    routed = [value for quantity, value in image.window.backward.items()]
    assert sorted(abs(v) for v in routed if v != 0) == sorted(abs(v) for v in image.window.upstream.values())
    # The rest of the sheet works the network with dense layers in place of the window layers.
    assert all(layer.window is None for layer in image.hand.spec.layers) and not image.hand.spec.input_shape
    assert len(image.hand.spec.layers) == len(load_spec(SPECS["max_pool2d"]).layers)


def test_the_grader_checks_the_window_answers():
    sheet = build_worksheet(SPECS["conv2d"], 0)
    answers = answers_of(sheet)
    true = {answer.name: answer.value for answer in answers}
    assert {"winz1_1_1_1", "windW1_1_1_2_2", "windb1_1", "windx1_1_4_4"} <= set(true)
    model = Sheet(sheet, answers)
    for answer in answers:
        assert model.expected(answer.name, true) == pytest.approx(answer.value, rel=1e-9, abs=1e-12), answer.name
    assert grade(sheet, true).line().endswith(f"all {len(answers)} answers right")
    wrong = {**true, "windW1_1_1_2_1": true["windW1_1_1_2_1"] + 1}
    report = grade(sheet, wrong)
    assert report.first.name == "windW1_1_1_2_1" and len(report.mistakes) == 1
    # Average pooling: the whole error to every entry of the window is a recognised slip.
    pooled = build_worksheet(SPECS["avg_pool1d"], 0)
    answers = answers_of(pooled)
    true = {answer.name: answer.value for answer in answers}
    name = next(n for n, v in true.items() if n.startswith("windx") and v != 0)
    first = grade(pooled, {**true, name: 3 * true[name]}).first
    assert first.name == name and any("not shared" in slip for slip in first.slips)


def test_the_worksheet_typesets_without_an_overfull_box_in_every_notation():
    for notation in NOTATIONS:
        source = worksheet_document(SPECS["conv2d"], notation, 1, solutions=True)
        assert "a 2-D convolution layer by hand" in source and "dense layer in place" in source
        report = inspect_tex(source, f"winws_{notation}")
        assert report.problems() == [], (notation, report.problems()[:5])
    source = worksheet_document(SPECS["max_pool2d"], "article", 0, solutions=True)
    assert "first largest entry" in source
    assert inspect_tex(source, "winws_pool").problems() == []


def test_the_html_worksheet_renders_the_exercise():
    page = read_page(worksheet_page(SPECS["conv1d"], "lesson", solutions=True))
    assert page.tags.count("math") > 50 and raw_tex_in(page.text) == []
    assert "a 1-D convolution layer by hand" in page.text


def test_moodle_and_qti_export_the_exercise():
    spec = load_spec(SPECS["max_pool2d"])
    notation = notation_for(spec)
    groups = [(f"variant {v}", build_worksheet(spec, v)) for v in (1, 2)]
    assert "window" in [exercise.key for exercise in exercises(groups[0][1])]
    quiz = ET.fromstring(moodle_xml(spec, notation, groups))
    assert any("convolution or pooling layer" in (question.find("name/text").text or "")
               for question in quiz.findall("question") if question.get("type") != "category")
    for path, data in qti_items(spec, notation, groups).items():
        assert _errors(_schema(QTI_PACKAGE_XSD if path == "imsmanifest.xml" else QTI_ITEM_XSD), data) == [], path
    archive = zipfile.ZipFile(io.BytesIO(canvas_package(spec, notation, groups)))
    (assessment,) = [n for n in archive.namelist() if n != "imsmanifest.xml"]
    assert _errors(_schema(QTI12_DTD), archive.read(assessment)) == []


def test_prairielearn_refuses_it_in_one_line(tmp_path, capsys):
    (tmp_path / "net.json").write_text(json.dumps(SPECS["avg_pool1d"]))
    target = tmp_path / "questions"
    code = main(["worksheet", str(tmp_path / "net.json"), "--format", "prairielearn", "-o", str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "convolution and pooling" in err[0] and "moodle or qti" in err[0]
    assert not target.exists()


def test_a_network_without_one_has_no_such_exercise():
    sheet = build_worksheet("xor", 0)
    assert sheet.window is None
    assert "window" not in [exercise.key for exercise in exercises(sheet)]
