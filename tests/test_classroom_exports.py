"""Exports for learning platforms: Moodle XML, QTI 2.1 (+ Canvas's QTI 1.2) and PrairieLearn questions."""

import functools
import io
import json
import random
import types
import uuid
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from symbp.classroom.answers import answers_of
from symbp.classroom.moodle import moodle_xml
from symbp.classroom.prairielearn import question_files
from symbp.classroom.qti import QTI, canvas_package, qti_items, qti_package
from symbp.render.latex.document import notation_for
from symbp.spec.schema import load_spec
from symbp.worksheet.exercises import build_worksheet

SPECS = ("xor", "actuarial_keras", "linear_regression")
# The official QTI schemas, vendored unchanged (tests/schemas/qti/README.md says where from); their imports
# are resolved through the folder's XML catalog, so validating never reaches the network.
SCHEMAS = Path(__file__).parent / "schemas" / "qti"
QTI_ITEM_XSD = "http://www.imsglobal.org/xsd/qti/qtiv2p1/imsqti_v2p1.xsd"
QTI_PACKAGE_XSD = "http://www.imsglobal.org/xsd/qti/qtiv2p1/qtiv2p1_imscpv1p2_v1p0.xsd"
QTI12_DTD = "http://www.imsglobal.org/question/qtiv1p2p1/ims_qtiasiv1p2p1.dtd"


@functools.cache
def _groups(name, variants=(1, 2)):
    spec = load_spec(name)
    return spec, notation_for(spec), [(f"variant {v}", build_worksheet(spec, v)) for v in variants]


@pytest.mark.parametrize("name", SPECS)
def test_moodle_every_question_has_answers_with_tolerances(name):
    spec, notation, groups = _groups(name)
    quiz = ET.fromstring(moodle_xml(spec, notation, groups))
    assert quiz.tag == "quiz"
    categories = [q.find("category/text").text for q in quiz.findall("question[@type='category']")]
    assert categories == [f"$course$/top/symbp/{name}/variant 1", f"$course$/top/symbp/{name}/variant 2"]
    expected = {label: {a.name: a.value for a in answers_of(sheet)} for label, sheet in groups}
    seen = []
    for question in quiz.findall("question"):
        kind = question.get("type")
        if kind == "category":
            continue
        assert question.find("name/text").text
        text = question.find("questiontext/text").text
        assert question.find("questiontext").get("format") == "html"
        assert r"\(" in text and "$" not in text  # MathJax's inline delimiters only
        if kind == "numerical":
            answer = question.find("answer")
            assert answer.get("fraction") == "100"
            value, tolerance = float(answer.find("text").text), float(answer.find("tolerance").text)
            assert 0 < tolerance <= max(5e-3 * abs(value), 1e-4) * 1.000001
            seen.append(value)
        else:
            assert kind == "cloze"
            blanks = text.split("{1:NUMERICAL:=")[1:]
            assert blanks
            for blank in blanks:
                value, tolerance = (float(part) for part in blank.split("}")[0].split(":"))
                assert tolerance > 0
                seen.append(value)
    every = [v for values in expected.values() for v in values.values()]
    assert len(seen) == len(every)
    assert sorted(seen) == pytest.approx(sorted(every), rel=1e-9, abs=1e-12)


def _qti_item_checks(data):
    item = ET.fromstring(data)
    ns = {"q": QTI}
    assert item.tag == f"{{{QTI}}}assessmentItem"
    declared = {d.get("identifier") for d in item.findall("q:responseDeclaration", ns)}
    interactions = {i.get("responseIdentifier") for i in item.iter(f"{{{QTI}}}textEntryInteraction")}
    scored = {v.get("identifier") for v in item.iter(f"{{{QTI}}}equal") for v in v.findall("q:variable", ns)}
    assert declared == interactions == scored and declared
    for equal in item.iter(f"{{{QTI}}}equal"):
        assert equal.get("toleranceMode") == "absolute" and float(equal.get("tolerance")) > 0


@pytest.mark.parametrize("name", SPECS)
def test_qti_package_lists_every_item_and_each_item_is_scored(name):
    spec, notation, groups = _groups(name)
    archive = zipfile.ZipFile(io.BytesIO(qti_package(spec, notation, groups)))
    manifest = ET.fromstring(archive.read("imsmanifest.xml"))
    hrefs = [r.get("href") for r in manifest.iter("{http://www.imsglobal.org/xsd/imscp_v1p1}resource")]
    assert sorted(hrefs) == sorted(n for n in archive.namelist() if n != "imsmanifest.xml")
    assert len(hrefs) == 5 * len(groups)
    for href in hrefs:
        _qti_item_checks(archive.read(href))
    assert qti_package(spec, notation, groups) == qti_package(spec, notation, groups)  # same bytes every time


def _catalog():
    """The folder's OASIS catalog as (exact addresses, address prefixes) mapped to local paths."""
    tag = "{urn:oasis:names:tc:entity:xmlns:xml:catalog}"
    root = ET.parse(SCHEMAS / "catalog.xml").getroot()
    exact = {entry.get("systemId"): entry.get("uri") for entry in root.iter(f"{tag}system")}
    prefixes = [(entry.get("systemIdStartString"), entry.get("rewritePrefix"))
                for entry in root.iter(f"{tag}rewriteSystem")]
    return exact, prefixes


def _local(address):
    """The vendored copy of a schema address; an address the catalog does not hold is an error, never a download."""
    exact, prefixes = _catalog()
    if address in exact:
        path = SCHEMAS / exact[address]
    else:
        path = next((SCHEMAS / (local + address[len(prefix):]) for prefix, local in prefixes
                     if address.startswith(prefix)), None)
    if path is None or not path.is_file():
        raise LookupError(f"{address} is not in {SCHEMAS / 'catalog.xml'}")
    return path


@functools.cache
def _schema(address):
    from lxml import etree  # the test extra's validator; a missing one fails the run rather than skipping it

    class Catalog(etree.Resolver):
        def resolve(self, url, public_id, context):
            if url.startswith(("http:", "https:")):
                return self.resolve_filename(str(_local(url)), context)
            return None  # a relative include inside the vendored folder

    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(Catalog())
    if address.endswith(".dtd"):
        return etree.DTD(str(_local(address)))
    return etree.XMLSchema(etree.parse(str(_local(address)), parser))


def _errors(schema, data):
    """The schema's complaints about a document (empty when it is valid)."""
    from lxml import etree
    return [] if schema.validate(etree.fromstring(data)) else [str(error) for error in schema.error_log]


@pytest.mark.parametrize("name", SPECS)
def test_qti_items_and_manifest_validate_against_the_official_schemas(name):
    spec, notation, groups = _groups(name)
    files = qti_items(spec, notation, groups)
    assert len(files) == 1 + 5 * len(groups)
    for path, data in files.items():
        schema = _schema(QTI_PACKAGE_XSD if path == "imsmanifest.xml" else QTI_ITEM_XSD)
        assert _errors(schema, data) == [], path


@pytest.mark.parametrize("name", SPECS)
def test_canvas_qti12_validates_against_the_official_dtd(name):
    spec, notation, groups = _groups(name)
    archive = zipfile.ZipFile(io.BytesIO(canvas_package(spec, notation, groups)))
    (assessment,) = [n for n in archive.namelist() if n != "imsmanifest.xml"]
    assert _errors(_schema(QTI12_DTD), archive.read(assessment)) == []


def test_qti_keeps_students_whose_ids_differ_only_in_punctuation_apart():
    spec, notation, groups = _groups("xor", (1, 2, 3, 4))
    ids = ("j.smith@uni.edu", "j_smith@uni.edu", "j.smith+uni.edu", "j-smith@uni.edu")
    roster = [(student, sheet) for student, (_, sheet) in zip(ids, groups)]
    files = qti_items(spec, notation, roster)
    assert len(files) == 1 + 5 * len(ids)  # no student's item overwrites another's
    for path, data in files.items():
        schema = _schema(QTI_PACKAGE_XSD if path == "imsmanifest.xml" else QTI_ITEM_XSD)
        assert _errors(schema, data) == [], path  # the manifest's identifiers are xs:ID: unique
    archive = zipfile.ZipFile(io.BytesIO(canvas_package(spec, notation, roster)))
    canvas = ET.fromstring(archive.read(next(n for n in archive.namelist() if n != "imsmanifest.xml")))
    idents = [element.get("ident") for element in canvas.iter() if element.tag in ("section", "item")]
    assert len(idents) == len(set(idents)) == 5 * len(ids) + sum(len(answers_of(s)) for _, s in roster)


def _without(data, tag, attribute):
    """The document with one attribute removed from the first element of a tag."""
    root = ET.fromstring(data)
    element = next(root.iter(tag))
    del element.attrib[attribute]
    return ET.tostring(root)


def test_the_schemas_reject_a_broken_item_manifest_and_canvas_file():
    spec, notation, groups = _groups("xor", (1,))
    files = qti_items(spec, notation, groups)
    item = next(data for path, data in files.items() if path != "imsmanifest.xml")
    broken = _without(item, f"{{{QTI}}}textEntryInteraction", "responseIdentifier")
    assert any("responseIdentifier" in error for error in _errors(_schema(QTI_ITEM_XSD), broken))
    broken = _without(files["imsmanifest.xml"], "{http://www.imsglobal.org/xsd/imscp_v1p1}resource", "type")
    assert any("type" in error for error in _errors(_schema(QTI_PACKAGE_XSD), broken))
    archive = zipfile.ZipFile(io.BytesIO(canvas_package(spec, notation, groups)))
    canvas = archive.read(next(n for n in archive.namelist() if n != "imsmanifest.xml"))
    assert any("ident" in error for error in _errors(_schema(QTI12_DTD), _without(canvas, "item", "ident")))


def test_schema_addresses_outside_the_catalog_are_refused():
    with pytest.raises(LookupError, match="not in"):
        _local("http://www.imsglobal.org/xsd/not_a_schema.xsd")
    with pytest.raises(LookupError, match="not in"):
        _local("https://example.org/schema.xsd")


def test_canvas_package_has_a_numerical_question_per_quantity():
    spec, notation, groups = _groups("xor")
    archive = zipfile.ZipFile(io.BytesIO(canvas_package(spec, notation, groups)))
    manifest = ET.fromstring(archive.read("imsmanifest.xml"))
    (resource,) = manifest.iter("{http://www.imsglobal.org/xsd/imscp_v1p1}resource")
    assert resource.get("type") == "imsqti_xmlv1p2"
    root = ET.fromstring(archive.read(resource.get("href")))
    items = list(root.iter("item"))
    assert len(items) == sum(len(answers_of(sheet)) for _, sheet in groups)
    right = {a.name: a.value for a in answers_of(groups[0][1])}
    for item in items[:len(right)]:
        fields = {f.findtext("fieldlabel"): f.findtext("fieldentry") for f in item.iter("qtimetadatafield")}
        assert fields["question_type"] == "numerical_question"
        low, high = float(item.find(".//vargte").text), float(item.find(".//varlte").text)
        assert low < right[item.get("title")] < high


def _server(source):
    module = types.ModuleType("server")
    exec(compile(source, "server.py", "exec"), module.__dict__)
    return module


def _problem_of(sheet):
    hand = sheet.hand
    problem = {"x": [float(v) for v in hand.x], "y": [float(v) for v in hand.y],
               "xs": [int(v) for v in sheet.descent.xs], "ys": [int(v) for v in sheet.descent.ys],
               "start": [float(v) for v in sheet.descent.history[0]],
               "line": [int(sheet.descent.slope), int(sheet.descent.intercept)]}
    for layer in range(1, len(hand.spec.layers) + 1):
        W, b = hand.params[f"W{layer}"], hand.params.get(f"b{layer}")
        problem[f"W{layer}"] = [[float(W[i, j]) for j in range(W.cols)] for i in range(W.rows)]
        problem[f"b{layer}"] = [float(v) for v in b] if b is not None else [0.0] * W.cols
    return problem


@pytest.mark.parametrize("name", SPECS)
def test_prairielearn_questions(name):
    spec, notation, groups = _groups(name, (3,))
    sheet = groups[0][1]
    files = question_files(spec, notation, sheet)
    assert question_files(spec, notation, sheet) == files
    folders = sorted({path.split("/")[0] for path in files})
    assert len(folders) == 5
    uuids = set()
    for folder in folders:
        info = json.loads(files[f"{folder}/info.json"])
        assert set(info) <= {"uuid", "title", "topic", "tags", "type", "gradingMethod", "singleVariant"}
        assert {"uuid", "title", "topic", "type"} <= set(info) and info["type"] == "v3"
        uuids.add(str(uuid.UUID(info["uuid"])))
        html = files[f"{folder}/question.html"]
        server = _server(files[f"{folder}/server.py"])
        for answer_name in server.NAMES:
            assert f'answers-name="{answer_name}"' in html
        # The server's arithmetic reproduces the worksheet's verified answers on the worksheet's numbers.
        solved = server.solve(_problem_of(sheet))
        for answer in answers_of(sheet):
            assert solved[answer.name] == pytest.approx(answer.value, rel=1e-12, abs=1e-12)
        # generate() and grade() as PrairieLearn calls them, on a few variants (PrairieLearn seeds random).
        for seed in range(4):
            random.seed(f"{folder}/{seed}")
            data = {"params": {}, "correct_answers": {}, "submitted_answers": {}, "partial_scores": {}}
            server.generate(data)
            data["submitted_answers"] = dict(data["correct_answers"])
            server.grade(data)
            assert data["score"] == 1
            first = server.NAMES[0]
            data["submitted_answers"][first] += 1 + abs(data["correct_answers"][first])  # never within tolerance
            data["partial_scores"] = {}
            server.grade(data)
            assert data["partial_scores"][first]["score"] == 0 and data["score"] < 1
    assert len(uuids) == 5


def test_prairielearn_grades_a_later_answer_from_the_students_own_earlier_one():
    spec, notation, groups = _groups("xor", (3,))
    server = _server(question_files(spec, notation, groups[0][1])["xor_delta/server.py"])
    random.seed(0)
    data = {"params": {}, "correct_answers": {}, "submitted_answers": {}, "partial_scores": {}}
    server.generate(data)
    submitted = dict(data["correct_answers"])
    submitted["delta2_1"] *= -2  # wrong at the output ...
    own = server.solve(data["params"]["problem"], {"delta2_1": submitted["delta2_1"]})
    submitted.update({name: own[name] for name in server.NAMES if name.startswith("delta1")})  # ... carried on right
    data["submitted_answers"] = submitted
    server.grade(data)
    assert data["partial_scores"]["delta2_1"]["score"] == 0
    assert all(data["partial_scores"][n]["score"] == 1 for n in server.NAMES if n.startswith("delta1"))
