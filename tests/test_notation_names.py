"""Every printed name means one thing: indices of different layers never collide, in any notation."""

import re

import pytest

from symbp.render.latex.document import derivation_document
from symbp.render.latex.notation import NOTATION_NAMES, Shape, notation_named
from symbp.render.latex.printer import latex_of
from symbp.symbolic import quantities as q

DEEP = {
    "name": "deep",
    "inputs": 3,
    "layers": [
        {"units": 8, "activation": "sigmoid"},
        {"units": 8, "activation": "tanh"},
        {"units": 6, "activation": "sigmoid"},
        {"units": 1, "activation": "linear"},
    ],
    "loss": {"name": "squared_error"},
}


def _shape(sizes):
    depth = len(sizes) - 1
    return Shape(tuple(sizes), (True,) * depth, ("sigmoid",) * depth)


@pytest.mark.parametrize("name", NOTATION_NAMES)
@pytest.mark.parametrize("depth", [1, 2, 3, 4, 6])
def test_each_layer_has_its_own_index_letter(name, depth):
    notation = notation_named(name).for_network(_shape([3] * (depth + 1)))
    letters = [notation.index(layer, "cur") for layer in range(depth + 1)]
    assert len(set(letters)) == len(letters) or name in ("lab", "article", "slides")
    # Whatever the preset, a weight joins two different indices.
    for layer in range(1, depth + 1):
        prev, cur = notation.index(layer - 1, "prev"), notation.index(layer, "cur")
        assert prev != cur


def test_lesson_weight_numbers_never_repeat_an_index():
    shape = Shape((3, 8, 8, 6, 1), (True,) * 4, ("sigmoid",) * 4)
    notation = notation_named("lesson").for_network(shape)
    for layer in range(1, 5):
        i, j = q.unit_index(layer - 1, "prev"), q.unit_index(layer, "cur")
        text = latex_of(q.weight(layer)[i, j], notation)
        letters = re.findall(r"[a-z]", text.removeprefix("w_"))
        assert len(letters) == len(set(letters)) == 2, text


def test_lesson_document_of_a_deep_network_sums_only_over_bound_indices():
    text = derivation_document(DEEP, "lesson")
    assert "8\\,j + j" not in text
    for lhs, rhs in re.findall(r"^\s*(?:\\\\\[1\.2ex\] )?(\\alpha_\{[^}]*\}) &= (.*)$", text, re.MULTILINE):
        bound = re.findall(r"\\sum_\{(\w)=", rhs)
        for letter in bound:
            assert letter not in lhs, (lhs, rhs)


@pytest.mark.parametrize("sizes", [(2, 2, 2), (2, 3, 3, 2)])
def test_fausett_error_terms_of_different_layers_never_share_a_name(sizes):
    depth = len(sizes) - 1
    notation = notation_named("fausett").for_network(_shape(sizes))
    names = {}
    for layer in range(1, depth + 1):
        for unit in range(1, sizes[layer] + 1):
            quantities = [q.delta(layer)[unit]] + ([q.incoming(layer)[unit]] if layer < depth else [])
            for quantity in quantities:
                names.setdefault(latex_of(quantity, notation), set()).add((layer, unit, str(quantity.base)))
    assert all(len(owners) == 1 for owners in names.values()), names


def test_fausett_keeps_the_posts_letters_in_general_formulas():
    notation = notation_named("fausett").for_network(_shape((2, 2, 2)))
    k, j = q.unit_index(2, "cur"), q.unit_index(1, "cur")
    assert latex_of(q.delta(2)[k], notation) == r"\delta_{k}"
    assert latex_of(q.delta(1)[j], notation) == r"\delta_{j}"
    assert latex_of(q.incoming(1)[j], notation) == r"\delta\_in_{j}"
    assert latex_of(q.delta(2)[1], notation) == r"\delta_{Y_{1}}"
    assert latex_of(q.delta(1)[1], notation) == r"\delta_{Z_{1}}"
