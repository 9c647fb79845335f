"""Moodle XML: a question category per worksheet, cloze (multi-answer) questions for the tables of
values and a numerical question for the loss, every answer with an absolute tolerance.

Moodle's numerical answers take an absolute ``<tolerance>``; it is set per answer from the relative
rule the grader uses (``max(0.5% of the value, 0.0001)``) and stated in each question. Math is
written ``\\( ... \\)`` for Moodle's MathJax filter.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from symbp.classroom.exercises import ACCURACY, Exercise, Item, exercises
from symbp.classroom.files import MARKER


def _text(parent: ET.Element, tag: str, text: str, **attributes) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    ET.SubElement(element, "text").text = text
    return element


def _number(value: float) -> str:
    return f"{value:.10g}"


def _cloze_blank(item: Item) -> str:
    # {1:NUMERICAL:=answer:tolerance}, Moodle's embedded-answers syntax.
    return "{1:NUMERICAL:=" + _number(item.answer.value) + ":" + _number(item.tolerance) + "}"


def _givens_html(exercise: Exercise) -> str:
    cells = ", ".join(rf"\( {symbol} = {value} \)" for symbol, value in exercise.given)
    return f"<p>Given: {cells}.</p>"


def _question(quiz: ET.Element, kind: str, name: str, html: str) -> ET.Element:
    question = ET.SubElement(quiz, "question", {"type": kind})
    _text(question, "name", name)
    _text(question, "questiontext", html, format="html")
    _text(question, "generalfeedback", "", format="html")
    ET.SubElement(question, "defaultgrade").text = "1"
    ET.SubElement(question, "penalty").text = "0.3333333"
    ET.SubElement(question, "hidden").text = "0"
    return question


def _cloze(quiz: ET.Element, name: str, exercise: Exercise, items) -> None:
    rows = "".join(f"<tr><td>\\( {item.symbol} \\)</td><td>{_cloze_blank(item)}</td></tr>" for item in items)
    html = (f"<p>{exercise.prompt}</p>{_givens_html(exercise)}<table>{rows}</table><p>{ACCURACY}</p>")
    _question(quiz, "cloze", name, html)


def _numerical(quiz: ET.Element, name: str, exercise: Exercise, item: Item) -> None:
    html = f"<p>{exercise.prompt}</p>{_givens_html(exercise)}<p>\\( {item.symbol} = \\) ?</p><p>{ACCURACY}</p>"
    question = _question(quiz, "numerical", name, html)
    answer = ET.SubElement(question, "answer", {"fraction": "100", "format": "moodle_auto_format"})
    ET.SubElement(answer, "text").text = _number(item.answer.value)
    _text(answer, "feedback", "", format="html")
    ET.SubElement(answer, "tolerance").text = _number(item.tolerance)


def moodle_xml(spec, notation, groups) -> str:
    """The Moodle XML text of every worksheet in ``groups`` ((label, Worksheet) pairs)."""
    quiz = ET.Element("quiz")
    for label, sheet in groups:
        category = ET.SubElement(quiz, "question", {"type": "category"})
        _text(category, "category", f"$course$/top/symbp/{spec.name}/{label}")
        for exercise in exercises(sheet, notation.name):
            name = f"{spec.name} {label}: {exercise.title}"
            loss = [item for item in exercise.items if item.answer.name == "loss"]
            table = [item for item in exercise.items if item.answer.name != "loss"]
            _cloze(quiz, name, exercise, table)
            for item in loss:
                _numerical(quiz, f"{spec.name} {label}: the loss", exercise, item)
    ET.indent(quiz)
    marker = f"<!-- {MARKER}: backpropagation worksheets for {spec.name} -->\n"
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + marker + ET.tostring(quiz, encoding="unicode") + "\n"
