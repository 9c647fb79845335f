"""PrairieLearn questions: a folder per exercise with info.json, question.html and server.py.

``server.py`` stands alone (math and random only): ``generate`` draws a variant the way the worksheet
does and ``grade`` judges each answer from the student's own earlier answers in the part, with the
worksheet's arithmetic. Its functions and constants are printed from the same SymPy expressions the
worksheet evaluates (activation, its derivative, the loss and its derivative), through SymPy's
Python code printer.
"""

from __future__ import annotations

import json
import uuid

import sympy as sp

from symbp.classroom.answers import answers_of
from symbp.classroom.exercises import ACCURACY, TITLES, exercises
from symbp.classroom.files import MARKER
from symbp.classroom.grading import ABSOLUTE, RELATIVE, Sheet
from symbp.derivation.indexform import net_of
from symbp.errors import SymbpError
from symbp.registry import rules
from symbp.registry.targets import IN_UNIT_INTERVAL
from symbp.render.templating import render
from symbp.worksheet import numbers as numbers
from symbp.worksheet.exercises import Worksheet, line_spec

# uuid5 names: the same spec and part always get the same question uuid.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://symbp/prairielearn")
Z, YHAT, Y = sp.symbols("z yhat y", real=True)


def question_folder(spec, key: str) -> str:
    return f"{spec.name}_{key}"


def question_names(spec) -> list[str]:
    return [f"{question_folder(spec, key)}/{name}" for key in TITLES
            for name in ("info.json", "question.html", "server.py")]


def _code(expr: sp.Expr) -> str:
    return sp.pycode(expr, fully_qualified_modules=True)


def _targets(sheet: Worksheet) -> tuple[float, ...]:
    spec = sheet.hand.spec
    if rules.targets_for(rules.loss_named(spec.loss.name), rules.activation_named(spec.layers[-1].activation)) \
            is IN_UNIT_INTERVAL:
        return (0.0, 1.0)
    return tuple(float(v) for v in numbers.TARGET_CHOICES)


def _choices() -> dict:
    """The worksheet's choice sets, as plain Python numbers for server.py."""
    return {"inputs": tuple(float(v) for v in numbers.INPUT_CHOICES),
            "weights": tuple(float(v) for v in numbers.WEIGHT_CHOICES),
            "bias_values": tuple(float(v) for v in numbers.BIAS_CHOICES),
            "line_slopes": numbers.SLOPES, "intercepts": numbers.INTERCEPTS, "x_values": list(numbers.X_RANGE),
            "points": numbers.POINTS, "starts": numbers.STARTS}


def server_source(spec, sheet: Worksheet, key: str) -> str:
    hand = sheet.hand.spec
    net = net_of(hand)
    if sheet.window is not None:
        raise SymbpError("--format prairielearn: convolution and pooling layers are not exported yet; choose moodle "
                         "or qti for this spec")
    if sheet.batch_norm is not None:
        raise SymbpError('--format prairielearn: batch-normalised layers (normalization = "batch") are not exported '
                         "yet; choose moodle or qti for this spec")
    if any(layer.normalization for layer in hand.layers):
        raise SymbpError('--format prairielearn: normalised layers (normalization = "layer") are not exported yet; '
                         "choose moodle or qti for this spec")
    if sheet.hand.penalties:
        raise SymbpError("--format prairielearn: weight penalties (kernel_regularizer) are not exported yet; "
                         "choose moodle or qti for this spec")
    if any(net.activation(layer).rowwise for layer in range(1, len(hand.layers) + 1)):
        raise SymbpError("--format prairielearn: row-wise activations (softmax) are not exported yet; "
                         "choose moodle or qti for this spec")
    layers = range(1, len(hand.layers) + 1)
    activations = [(layer, _code(net.activation(layer).forward.subs(rules.z, Z))) for layer in layers]
    slopes = [(layer, _code(net.activation(layer).derivative.subs(rules.z, Z))) for layer in layers]
    loss = rules.loss_named(hand.loss.name).expr.subs({rules.yhat: YHAT, rules.y: Y}, simultaneous=True)
    line = line_spec(spec)
    names = [item.answer.name for exercise in exercises(sheet) if exercise.key == key for item in exercise.items]
    return render("classroom/server.py.j2", marker=MARKER, title=spec.title or spec.name, part=key, names=names,
                  sizes=list(hand.sizes), biases=[layer.bias for layer in hand.layers],
                  scale=float(net.scale), sign=Sheet(sheet, answers_of(sheet)).sign_value,
                  rate=float(sheet.hand.rate), line_rate=float(sheet.descent.rate), line_scale=float(line.loss.scale),
                  line_mean=line.loss.reduction == "mean", steps=len(sheet.descent.history) - 1,
                  relative=RELATIVE, absolute=ABSOLUTE, targets=_targets(sheet), **_choices(),
                  activations=activations,
                  slopes=slopes, loss=_code(loss), loss_slope=_code(sp.diff(loss, YHAT)))


def question_files(spec, notation, sheet: Worksheet) -> dict[str, str]:
    """Every file of every question, by its path under the questions folder."""
    found = {}
    for exercise in exercises(sheet, notation.name):
        folder = question_folder(spec, exercise.key)
        info = {"uuid": str(uuid.uuid5(NAMESPACE, f"{spec.name}/{exercise.key}")),
                "title": f"{spec.title or spec.name}: {exercise.title}", "topic": "Backpropagation",
                "tags": ["symbp", spec.name, exercise.key], "type": "v3"}
        found[f"{folder}/info.json"] = json.dumps(info, indent=2) + "\n"
        found[f"{folder}/question.html"] = render(
            "classroom/question.html.j2", marker=MARKER, title=spec.title or spec.name, part=exercise.key,
            prompt=exercise.prompt, layers=list(range(1, len(sheet.hand.spec.layers) + 1)), accuracy=ACCURACY,
            items=exercise.items, relative=RELATIVE, absolute=ABSOLUTE, rate=f"{float(sheet.hand.rate):g}",
            line_rate=f"{float(sheet.descent.rate):g}")
        found[f"{folder}/server.py"] = server_source(spec, sheet, exercise.key)
    return found
