"""Worksheets and answer keys for networks unlike the bundled ones, as TeX typesets them.

Every entry of the typesetting catalogue (a quick sample unless SYMBP_FULL_CATALOGUE=1) gets a
worksheet and an answer key that compile with no overfull box over 1 pt, no LaTeX warning and no
missing character; the quick run cycles through the notations, the full run takes all five.
Building a sheet checks every gradient against SymPy's derivative of the expanded loss; here the
sheet's numbers are also checked against the module symbp generates for the same network.
"""

import shutil

import numpy as np
import pytest
from typesetting_catalogue import FULL, NOTATIONS, inspect_tex, selected

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.render.latex.worksheet_document import worksheet_document
from symbp.symbolic import quantities as q
from symbp.worksheet.exercises import build_worksheet

needs_tex = pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")

CASES = [(name, notation) for position, name in enumerate(selected())
         for notation in (NOTATIONS if FULL else (NOTATIONS[position % len(NOTATIONS)],))]
BUNDLED = ["xor", "house_prices", "fausett", "parity", "actuarial", "iris", "linear_regression"]


@needs_tex
@pytest.mark.parametrize("solutions", [False, True], ids=["sheet", "key"])
@pytest.mark.parametrize(("name", "notation"), CASES)
def test_catalogue_worksheets_typeset_cleanly(name, notation, solutions):
    source = worksheet_document(selected()[name], notation, variant=1, solutions=solutions)
    report = inspect_tex(source, "worksheet")
    assert not report.problems(), "\n".join(report.problems())


@needs_tex
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_answer_keys_typeset_cleanly(name):
    report = inspect_tex(worksheet_document(name, variant=3, solutions=True), "worksheet")
    assert not report.problems(), "\n".join(report.problems())


@pytest.mark.parametrize("name", list(selected()))
def test_catalogue_sheet_numbers_match_the_generated_module(name):
    hand = build_worksheet(selected()[name], variant=1).hand
    module = load_module_from_source(generate_module(hand.spec), hand.spec.name)
    params = {key: np.array(matrix.tolist(), dtype=float).reshape(module.SHAPES[key])
              for key, matrix in hand.params.items()}
    X = np.array([[float(v) for v in hand.x]])
    Y = np.array([[float(v) for v in hand.y]])
    # A dropout network's sheet works its exercise with the fixed masks it gives: the module takes the same.
    masks = [{name: np.array(mask.tolist(), dtype=float) for name, mask in hand.masks.items()}] if hand.masks else []
    loss, grads = module.loss_and_grad(params, X, Y, *masks)
    assert float(hand.loss) == pytest.approx(loss, rel=1e-10)
    for parameter, gradient in hand.gradients.items():
        role = q.ROLES[parameter.base]
        key = f"{'W' if role.kind == 'weight' else 'b'}{role.layer}"
        index = tuple(int(i) - 1 for i in parameter.indices)
        assert float(gradient) == pytest.approx(grads[key][index], rel=1e-9, abs=1e-12)
