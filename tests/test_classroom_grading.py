"""The grader: right answers pass everywhere; a corpus of deliberately wrong answer sets, each one slip
carried through every later answer as a student would, is localised to the slipped quantity and the slip named."""

import pytest
from bundled import derivable_spec_paths

from symbp.classroom.answers import answers_of
from symbp.classroom.grading import Sheet, agrees, grade
from symbp.spec.schema import load_spec
from symbp.worksheet.exercises import build_worksheet

CORPUS_SHEETS = (("xor", 1), ("xor", 2), ("actuarial_keras", 3), ("iris", 4), ("fausett", 5), ("house_prices", 6),
                 ("linear_regression", 7))


@pytest.mark.parametrize("path", derivable_spec_paths(), ids=lambda p: p.stem)
def test_right_answers_raise_no_alarm(path):
    for variant, sign in ((0, 1), (11, 1), (12, -1)):
        sheet = build_worksheet(load_spec(path), variant, sign)
        right = {answer.name: answer.value for answer in answers_of(sheet)}
        report = grade(sheet, right, "s")
        assert report.first is None, report.line()
        assert report.right == report.total == len(right)


def test_rounded_answers_pass_and_blanks_are_reported():
    sheet = build_worksheet("xor", 3)
    rounded = {answer.name: float(f"{answer.value:.4g}") for answer in answers_of(sheet)}
    assert grade(sheet, rounded).first is None
    rounded["delta1_2"] = None
    report = grade(sheet, rounded)
    assert report.first.name == "delta1_2" and report.first.given is None


def _carried(model, name, wrong):
    """A student's whole answer set: right up to ``name``, ``wrong`` there, then every later answer
    computed correctly from their own earlier ones."""
    known, found = {}, False
    for answer in model.answers:
        if answer.name == name:
            known[name], found = wrong, True
        else:
            known[answer.name] = model.expected(answer.name, {**model.true, **known}) if found else model.true[
                answer.name]
    return known


def _slips_from_first_principles(sheet):
    """(quantity, wrong value, word the grader must use), computed here from the sheet's own numbers."""
    right = {answer.name: answer.value for answer in answers_of(sheet)}
    hand = sheet.hand
    sizes, depth = hand.spec.sizes, len(hand.spec.layers)
    W = {layer: hand.params[f"W{layer}"] for layer in range(1, depth + 1)}
    sign = Sheet(sheet, answers_of(sheet)).sign_value

    def below(layer, i):
        return float(hand.x[i - 1]) if layer == 1 else right[f"a{layer - 1}_{i}"]

    cases = []
    for name, value in right.items():
        if name.startswith(("delta", "dW", "db", "z")):
            cases.append((name, -value, "wrong sign"))
    for layer in range(1, depth + 1):
        sigmoid = hand.spec.layers[layer - 1].activation == "sigmoid"
        for j in range(1, sizes[layer] + 1):
            a = right[f"a{layer}_{j}"]
            if sigmoid:
                cases.append((f"delta{layer}_{j}", right[f"delta{layer}_{j}"] / (a * (1 - a)), "σ′"))
            if layer < depth and sigmoid and W[layer + 1].rows == W[layer + 1].cols:
                swapped = a * (1 - a) * sum(float(W[layer + 1][k - 1, j - 1]) * right[f"delta{layer + 1}_{k}"]
                                            for k in range(1, sizes[layer + 1] + 1))
                cases.append((f"delta{layer}_{j}", swapped, "transposed"))
            for i in range(1, sizes[layer - 1] + 1):
                if i <= sizes[layer] and j <= sizes[layer - 1]:
                    cases.append((f"dW{layer}_{i}_{j}", sign * right[f"delta{layer}_{i}"] * below(layer, j),
                                  "transposed"))
                if layer > 1:
                    cases.append((f"dW{layer}_{i}_{j}", sign * right[f"delta{layer - 1}_{j}"] * below(layer, i)
                                  if j <= sizes[layer - 1] else None, "off-by-one layer"))
    for name in right:
        if name.endswith("_new"):
            parameter = name[:-4]
            kind, rest = parameter[0], parameter[1:].split("_")
            layer = int(rest[0])
            start = float(W[layer][int(rest[1]) - 1, int(rest[2]) - 1] if kind == "W"
                          else hand.params[f"b{layer}"][0, int(rest[1]) - 1])
            cases.append((name, start - 10 * float(hand.rate) * right["d" + parameter], "learning rate"))
            cases.append((name, start + float(hand.rate) * right["d" + parameter], "added instead of subtracted"))
    rate = float(sheet.descent.rate)
    w0, b0 = (float(v) for v in sheet.descent.history[0])
    cases.append(("w_step1", w0 - 10 * (w0 - right["w_step1"]), "learning rate"))
    cases.append(("b_step1", b0 - (b0 - right["b_step1"]) / rate, "learning rate left out"))
    # A slip that changes nothing (a zero flipped) is no slip.
    return [(name, wrong, word) for name, wrong, word in cases
            if wrong is not None and not agrees(wrong, right[name])]


def test_a_corpus_of_wrong_answer_sets_is_localised():
    tried = 0
    for name, variant in CORPUS_SHEETS:
        sheet = build_worksheet(name, variant)
        model = Sheet(sheet, answers_of(sheet))
        for quantity, wrong, word in _slips_from_first_principles(sheet):
            report = grade(model, _carried(model, quantity, wrong), "s")
            first = report.first
            assert first is not None and first.name == quantity, (name, quantity, word, report.line())
            assert any(word in slip for slip in first.slips), (name, quantity, word, report.line())
            assert len(report.mistakes) == 1, report.line()  # everything after follows from it
            tried += 1
    assert tried >= 100
