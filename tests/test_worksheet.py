"""Worksheets: reproducible per variant, different between variants, and every answer checked."""

import numpy as np
import pytest
import sympy as sp
from bundled import derivable_spec_paths

from symbp.checks.gradients import load_module_from_source
from symbp.checks.verify import Oracle
from symbp.cli.main import main
from symbp.render.code.numpy_module import generate_module
from symbp.render.latex.worksheet_document import worksheet_document
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q
from symbp.worksheet.exercises import build_worksheet, hand_spec

LAB_ANSWERS = [(1, 0), (sp.Rational(9, 2), sp.Rational(6, 5)), (sp.Rational(43, 20), sp.Rational(41, 100)),
               (sp.Rational(93, 25), sp.Rational(953, 1000))]


@pytest.mark.parametrize("name", ["linear_regression", "actuarial"])
def test_the_labs_exercise_in_exact_arithmetic(name):
    descent = build_worksheet(name, variant=0).descent
    assert descent.xs == (1, 2, 3, 4) and descent.ys == (4, 7, 10, 13)
    assert descent.rate == sp.Rational(1, 10)
    assert list(descent.history) == LAB_ANSWERS


def test_the_answer_key_prints_the_exact_answers():
    key = worksheet_document("linear_regression", solutions=True)
    for fraction in (r"\frac{9}{2}", r"\frac{6}{5}", r"\frac{43}{20}", r"\frac{41}{100}", r"\frac{93}{25}",
                     r"\frac{953}{1000}"):
        assert fraction in key
    assert "Answer key" in key
    assert "Answer key" not in worksheet_document("linear_regression")


def test_a_variant_gives_the_same_sheet_every_time():
    assert worksheet_document("xor", "slides", 3, True) == worksheet_document("xor", "slides", 3, True)


def test_variants_differ():
    sheets = {worksheet_document("house_prices", "lesson", variant) for variant in range(4)}
    assert len(sheets) == 4
    lines = {build_worksheet("house_prices", variant).descent.history for variant in range(1, 4)}
    assert len(lines) == 3


def test_big_networks_are_shrunk_for_the_hand_exercise():
    small, shrunk = hand_spec(load_spec("mnist"))
    assert shrunk and small.sizes == (2, 2, 2)
    assert [layer.activation for layer in small.layers] == ["sigmoid", "sigmoid"]
    assert hand_spec(load_spec("fausett")) == (load_spec("fausett"), False)


SMALL_SPECS = [load_spec(path) for path in derivable_spec_paths()]


@pytest.mark.parametrize("spec", SMALL_SPECS, ids=lambda spec: spec.name)
@pytest.mark.parametrize("sign", [1, -1], ids=["delta", "fausett-delta"])
def test_hand_answers_match_the_generated_module(spec, sign):
    hand = build_worksheet(spec, variant=2, error_sign=sign).hand
    module = load_module_from_source(generate_module(hand.spec), hand.spec.name)
    params = {name: np.array(matrix.tolist(), dtype=float).reshape(module.SHAPES[name])
              for name, matrix in hand.params.items()}
    X = np.array([[float(v) for v in hand.x]])
    Y = np.array([[float(v) for v in hand.y]])
    loss, grads = module.loss_and_grad(params, X, Y)
    assert float(hand.loss) == pytest.approx(loss, rel=1e-12)
    prediction = module.forward(params, X)[0]
    depth = len(hand.spec.layers)
    for k, value in enumerate(prediction, start=1):
        assert float(hand.values[q.act(depth)[k]]) == pytest.approx(value, rel=1e-12)
    stepped, _ = module.train(params, X, Y, epochs=1, batch_size=None, learning_rate=float(hand.rate),
                              optimizer="gd")
    for parameter, gradient in hand.gradients.items():
        role = q.ROLES[parameter.base]
        name = f"{'W' if role.kind == 'weight' else 'b'}{role.layer}"
        index = tuple(int(i) - 1 for i in parameter.indices)
        assert float(gradient) == pytest.approx(grads[name][index], rel=1e-10, abs=1e-14)
        assert float(hand.updated[parameter]) == pytest.approx(stepped[name][index], rel=1e-10, abs=1e-14)
    # The error terms, against central differences of the loss.
    oracle = Oracle(hand.spec, samples=1, module=module)
    oracle.X, oracle.Y, oracle.params = X, Y, params
    for symbol, value in hand.deltas.items():
        role = q.ROLES[symbol.base]
        expected = sign * oracle.derivative(("loss",), ("pre", role.layer, int(symbol.indices[0]) - 1), 0)
        assert float(value) == pytest.approx(expected, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("name", ["mnist", "fausett", "linear_regression"])
def test_the_sheets_formulas_are_checked_like_the_derivations(name):
    """The sheet prints its network's loss, activations and chain rule from the derivation of that network."""
    from symbp.checks.verify import verify
    from symbp.derivation.backprop import derive
    from symbp.derivation.model import Conventions

    hand = build_worksheet(name, variant=1, error_sign=-1 if name == "fausett" else 1).hand
    report = verify(derive(hand.spec, Conventions(-1 if name == "fausett" else 1, False)))
    assert report.passed, "\n".join(map(str, report.mismatches[:10]))


def test_worksheet_command(tmp_path, capsys):
    target = tmp_path / "sheet.tex"
    assert main(["worksheet", "xor", "--variant", "2", "--solutions", "-o", str(target)]) == 0
    assert "Answer key" in target.read_text()
    assert main(["worksheet", "xor", "--variant", "-1", "-o", str(target)]) == 2
    assert "--variant" in capsys.readouterr().err


def test_key_only_writes_the_answer_key_alone(tmp_path):
    target = tmp_path / "key.tex"
    assert main(["worksheet", "xor", "--variant", "2", "--key-only", "-o", str(target)]) == 0
    key = target.read_text()
    assert "Answer key" in key and "Exercise 1: the chain rule" not in key and "Name:" not in key
    full = worksheet_document("xor", variant=2, solutions=True)
    assert key[key.index(r"\subsection*{Exercise 1}"):] == full[full.index(r"\subsection*{Exercise 1}"):]


@pytest.mark.parametrize(("name", "notation"), [("xor", "slides"), ("fausett", "fausett"), ("house_prices", "lesson"),
                                                ("parity", "lab"), ("iris", "article")])
def test_exercise_one_answers_evaluate_to_the_sheets_gradients(name, notation):
    from symbp.render.latex.worksheet_document import worksheet_context

    context = worksheet_context(name, notation, variant=2, solutions=True)
    hand = context["hand"]
    sheet = build_worksheet(name, 2, context["notation"].error_sign)
    for parameter, answer in zip(sheet.to_derive, context["derived"]):
        value = answer["written_out"].xreplace(hand.values).xreplace(hand.deltas)
        assert float(value) == pytest.approx(float(hand.gradients[parameter]), rel=1e-12, abs=1e-15)
