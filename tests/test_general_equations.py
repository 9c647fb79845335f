"""The general equations of backpropagation, stated before the network's own and numbered as each text numbers them."""

import pytest

from symbp.derivation.backprop import derive
from symbp.derivation.general import DEPTH
from symbp.render.latex.document import Writer, conventions_of, derivation_context, derivation_document, notation_for
from symbp.render.latex.notation import NOTATION_NAMES
from symbp.render.latex.printer import latex_of
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q


def _general(spec_source, notation: str):
    spec = load_spec(spec_source)
    chosen = notation_for(spec, notation)
    return derive(spec, conventions_of(chosen)).section("general"), chosen


def test_the_hidden_recursion_is_stated_for_any_layer_in_the_slides_letters():
    general, notation = _general("actuarial", "slides")
    recursion = general.chain("general.hidden_delta")
    assert recursion.lhs.indices and latex_of(recursion.lhs, notation) == r"\delta^{l}_{j}"
    assert Writer(notation).math(recursion.result) == (
        r"\left(\sum_{k'} \delta^{l + 1}_{k'}\,w^{l + 1}_{k'j}\right)\,\sigma'\left(z^{l}_{j}\right)")
    # The weight in the recursion is SymPy's derivative of the pre-activation above, not typed in.
    assert any(reason.kind == "substitute" and reason.facts for reason in recursion.steps[-1].reasons)


def test_the_general_equations_do_not_depend_on_the_network():
    first, _ = _general("actuarial", "lab")
    second, _ = _general("house_prices", "lab")
    assert first.chain("general.hidden_delta") == second.chain("general.hidden_delta")
    assert q.ROLES[first.chain("general.output_delta").lhs.base].layer == DEPTH


def test_lesson_and_fausett_state_them_for_the_layers_they_name():
    general, notation = _general("fausett", "fausett")
    assert q.ROLES[general.chain("general.hidden_delta").lhs.base].layer == 1
    assert latex_of(general.chain("general.output_delta").result, notation) == (
        r"- \frac{\partial E}{\partial y_{k}} f'\left(y\_in_{k}\right)")


@pytest.mark.parametrize(("notation", "tags"), [
    ("slides", ["BP1", "BP2", "BP3", "BP4"]), ("article", ["1", "2", "3", "4", "5", "6"]), ("lab", ["3", "4"]),
])
def test_each_text_numbers_its_equations(notation, tags):
    source = derivation_document("house_prices", notation)
    for tag in tags:
        assert rf"\tag{{{tag}}}" in source


@pytest.mark.parametrize("notation", NOTATION_NAMES)
def test_the_general_section_comes_before_the_instance(notation):
    kinds = [section.kind for section in derivation_context("xor", notation)["sections"]]
    assert kinds.index("general") < kinds.index("output") < kinds.index("hidden")


@pytest.mark.parametrize("notation", ["fausett", "lesson"])
def test_a_single_layer_in_a_notation_that_names_layers(notation):
    source = derivation_document("linear_regression", notation)
    assert r"\section{The equations of backpropagation}" in source and "its inputs" in source
