"""IMS QTI exports: QTI 2.1 items in an IMS content package, and QTI 1.2 in the dialect Canvas imports.

QTI 2.1: one ``assessmentItem`` per exercise, a ``textEntryInteraction`` (base type float) per
quantity, scored by ``equal`` with an absolute tolerance per answer (the grader's rule), and an
``imsmanifest.xml`` listing the items in QTI 2.1's profile of IMS Content Packaging 1.2, zipped.

Canvas (Settings > Import course content > QTI .zip file) reads QTI 1.2: one ``numerical_question``
per quantity, accepted between ``value - tolerance`` and ``value + tolerance``, one section per exercise.
Math is written ``\\( ... \\)``, which both render with MathJax.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile

from symbp.classroom.exercises import ACCURACY, Exercise, exercises
from symbp.classroom.files import MARKER

QTI = "http://www.imsglobal.org/xsd/imsqti_v2p1"
CP = "http://www.imsglobal.org/xsd/imscp_v1p1"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
QTI_LOCATION = f"{QTI} http://www.imsglobal.org/xsd/qti/qtiv2p1/imsqti_v2p1.xsd"
# A QTI 2.1 package follows QTI 2.1's profile of Content Packaging 1.2, which names its manifests'
# schema and version; Canvas reads the Content Packaging 1.1 manifests its own exports write.
QTI_PACKAGE = (f"{CP} http://www.imsglobal.org/xsd/qti/qtiv2p1/qtiv2p1_imscpv1p2_v1p0.xsd", "QTIv2.1 Package", "1.0.0")
CANVAS_PACKAGE = (f"{CP} http://www.imsglobal.org/xsd/imscp_v1p1.xsd", "IMS Content", "1.1")
# Zip entries get a fixed time so the same spec gives the same bytes.
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _escaped(part: str) -> str:
    """A label in NCName characters, one to one: letters, digits and '_' stay, any other character is '.HEX.'."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else f".{ord(c):x}." for c in part)


def identifier(*parts: str) -> str:
    """An XML identifier (NCName) built from labels, starting with a letter.

    Different labels give different identifiers (students 'j.smith' and 'j_smith' must not share
    an item): the escape is one to one and no escaped part holds the '-' that joins them.
    """
    return "I-" + "-".join(_escaped(part) for part in parts)


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    comment = f"<!-- {MARKER}: -->\n"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + comment + ET.tostring(root, encoding="unicode")
            + "\n").encode()


def _paragraphs(body: ET.Element, tag: str, exercise: Exercise) -> None:
    ET.SubElement(body, tag("p")).text = exercise.prompt
    given = ", ".join(rf"\( {symbol} = {value} \)" for symbol, value in exercise.given)
    ET.SubElement(body, tag("p")).text = f"Given: {given}."
    ET.SubElement(body, tag("p")).text = ACCURACY


def assessment_item(spec, label: str, exercise: Exercise) -> tuple[str, bytes]:
    """(identifier, XML) of one QTI 2.1 item for an exercise."""
    ET.register_namespace("", QTI)
    ET.register_namespace("xsi", XSI)

    def tag(name: str) -> str:
        return f"{{{QTI}}}{name}"

    ident = identifier(spec.name, label, exercise.key)
    item = ET.Element(tag("assessmentItem"), {f"{{{XSI}}}schemaLocation": QTI_LOCATION, "identifier": ident,
                                              "title": f"{spec.name} {label}: {exercise.title}",
                                              "adaptive": "false", "timeDependent": "false"})
    for entry in exercise.items:
        declaration = ET.SubElement(item, tag("responseDeclaration"), {
            "identifier": f"R_{entry.answer.name}", "cardinality": "single", "baseType": "float"})
        correct = ET.SubElement(declaration, tag("correctResponse"))
        ET.SubElement(correct, tag("value")).text = f"{entry.answer.value:.10g}"
    score = ET.SubElement(item, tag("outcomeDeclaration"),
                          {"identifier": "SCORE", "cardinality": "single", "baseType": "float"})
    ET.SubElement(ET.SubElement(score, tag("defaultValue")), tag("value")).text = "0"
    body = ET.SubElement(item, tag("itemBody"))
    _paragraphs(body, tag, exercise)
    table = ET.SubElement(ET.SubElement(body, tag("table")), tag("tbody"))
    for entry in exercise.items:
        row = ET.SubElement(table, tag("tr"))
        ET.SubElement(row, tag("td")).text = rf"\( {entry.symbol} \)"
        ET.SubElement(ET.SubElement(row, tag("td")), tag("textEntryInteraction"),
                      {"responseIdentifier": f"R_{entry.answer.name}", "expectedLength": "12"})
    processing = ET.SubElement(item, tag("responseProcessing"))
    for entry in exercise.items:
        condition = ET.SubElement(ET.SubElement(processing, tag("responseCondition")), tag("responseIf"))
        equal = ET.SubElement(condition, tag("equal"),
                              {"toleranceMode": "absolute", "tolerance": f"{entry.tolerance:.6g}"})
        ET.SubElement(equal, tag("variable"), {"identifier": f"R_{entry.answer.name}"})
        ET.SubElement(equal, tag("correct"), {"identifier": f"R_{entry.answer.name}"})
        setter = ET.SubElement(ET.SubElement(condition, tag("setOutcomeValue"), {"identifier": "SCORE"}),
                               tag("sum"))
        ET.SubElement(setter, tag("variable"), {"identifier": "SCORE"})
        ET.SubElement(setter, tag("baseValue"), {"baseType": "float"}).text = "1"
    return ident, _xml(item)


def manifest(spec, resources: list[tuple[str, str, str]], package: tuple[str, str, str] = QTI_PACKAGE) -> bytes:
    """imsmanifest.xml for (identifier, resource type, file) entries, in a package's (location, schema, version)."""
    location, schema, version = package
    ET.register_namespace("", CP)
    ET.register_namespace("xsi", XSI)
    root = ET.Element(f"{{{CP}}}manifest", {"identifier": identifier(spec.name, "manifest"),
                                            f"{{{XSI}}}schemaLocation": location})
    metadata = ET.SubElement(root, f"{{{CP}}}metadata")
    ET.SubElement(metadata, f"{{{CP}}}schema").text = schema
    ET.SubElement(metadata, f"{{{CP}}}schemaversion").text = version
    ET.SubElement(root, f"{{{CP}}}organizations")
    listed = ET.SubElement(root, f"{{{CP}}}resources")
    for ident, kind, href in resources:
        resource = ET.SubElement(listed, f"{{{CP}}}resource", {"identifier": ident, "type": kind, "href": href})
        ET.SubElement(resource, f"{{{CP}}}file", {"href": href})
    return _xml(root)


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name, ZIP_TIME), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def qti_items(spec, notation, groups) -> dict[str, bytes]:
    """Every file of the QTI 2.1 package, by its path in the zip."""
    entries, resources = {}, []
    for label, sheet in groups:
        for exercise in exercises(sheet, notation.name):
            ident, data = assessment_item(spec, label, exercise)
            href = f"items/{ident}.xml"
            entries[href] = data
            resources.append((ident, "imsqti_item_xmlv2p1", href))
    return {"imsmanifest.xml": manifest(spec, resources), **entries}


def qti_package(spec, notation, groups) -> bytes:
    return _zip(qti_items(spec, notation, groups))


def _field(parent: ET.Element, label: str, entry: str) -> None:
    field = ET.SubElement(parent, "qtimetadatafield")
    ET.SubElement(field, "fieldlabel").text = label
    ET.SubElement(field, "fieldentry").text = entry


def canvas_assessment(spec, notation, groups) -> bytes:
    """One QTI 1.2 assessment, Canvas's dialect: a numerical question per quantity."""
    root = ET.Element("questestinterop")
    ident = identifier(spec.name, "canvas")
    assessment = ET.SubElement(root, "assessment", {"ident": ident, "title": f"Backpropagation: {spec.name}"})
    for label, sheet in groups:
        for exercise in exercises(sheet, notation.name):
            section = ET.SubElement(assessment, "section", {"ident": identifier(spec.name, label, exercise.key),
                                                            "title": f"{label}: {exercise.title}"})
            given = ", ".join(rf"\( {symbol} = {value} \)" for symbol, value in exercise.given)
            for entry in exercise.items:
                item = ET.SubElement(section, "item", {
                    "ident": identifier(spec.name, label, entry.answer.name), "title": entry.answer.name})
                fields = ET.SubElement(ET.SubElement(item, "itemmetadata"), "qtimetadata")
                _field(fields, "question_type", "numerical_question")
                _field(fields, "points_possible", "1")
                presentation = ET.SubElement(item, "presentation")
                text = (f"<p>{exercise.prompt}</p><p>Given: {given}.</p><p>\\( {entry.symbol} = \\) ?</p>"
                        f"<p>{ACCURACY}</p>")
                ET.SubElement(ET.SubElement(presentation, "material"), "mattext", {"texttype": "text/html"}).text = text
                response = ET.SubElement(presentation, "response_str", {"ident": "response1", "rcardinality": "Single"})
                ET.SubElement(ET.SubElement(response, "render_fib", {"fibtype": "Decimal"}), "response_label",
                              {"ident": "answer1"})
                processing = ET.SubElement(item, "resprocessing")
                ET.SubElement(ET.SubElement(processing, "outcomes"), "decvar", {
                    "maxvalue": "100", "minvalue": "0", "varname": "SCORE", "vartype": "Decimal"})
                condition = ET.SubElement(processing, "respcondition", {"continue": "No"})
                within = ET.SubElement(ET.SubElement(ET.SubElement(condition, "conditionvar"), "or"), "and")
                value, tolerance = entry.answer.value, entry.tolerance
                ET.SubElement(within, "vargte", {"respident": "response1"}).text = f"{value - tolerance:.10g}"
                ET.SubElement(within, "varlte", {"respident": "response1"}).text = f"{value + tolerance:.10g}"
                ET.SubElement(condition, "setvar", {"action": "Set", "varname": "SCORE"}).text = "100"
    return _xml(root)


def canvas_package(spec, notation, groups) -> bytes:
    href = f"{identifier(spec.name, 'canvas')}.xml"
    return _zip({"imsmanifest.xml": manifest(spec, [(identifier(spec.name, "canvas", "resource"),
                                                     "imsqti_xmlv1p2", href)], CANVAS_PACKAGE),
                 href: canvas_assessment(spec, notation, groups)})
