"""The typesetting catalogue derived, checked and compiled: no overfull box over 1 pt, no LaTeX warning, no
missing character, every formula evaluated against the module.

The normal run takes the catalogue's quick sample, each entry in one notation (rotating); with
SYMBP_FULL_CATALOGUE=1 (CI) every entry is compiled in all five notations.
"""

import pytest
from typesetting_catalogue import FULL, NOTATIONS, inspect_tex, selected

from symbp.checks.verify import verify
from symbp.derivation.backprop import derive
from symbp.derivation.model import Conventions
from symbp.render.latex.document import derivation_document, notation_for
from symbp.render.latex.tex import tex_available
from symbp.spec.schema import load_spec


def _cases():
    names = list(selected())
    if FULL:
        return [(name, notation) for name in names for notation in NOTATIONS]
    return [(name, NOTATIONS[position % len(NOTATIONS)]) for position, name in enumerate(names)]


@pytest.mark.skipif(not tex_available(), reason="pdflatex is not installed here; CI installs TeX Live")
@pytest.mark.parametrize(("name", "notation"), _cases())
def test_derivation_typesets_cleanly(name, notation):
    spec = selected()[name]
    report = inspect_tex(derivation_document(spec, notation), name)
    assert report.problems() == [], "\n".join(report.problems()[:10])


@pytest.mark.parametrize(("name", "notation"), _cases())
def test_derivation_formulas_match_the_module(name, notation):
    spec = load_spec(selected()[name])
    chosen = notation_for(spec, notation)
    report = verify(derive(spec, Conventions(chosen.error_sign, chosen.column_vectors)))
    assert report.passed, "\n".join(map(str, report.mismatches[:10]))
