"""Worked chains: one output weight and one first-layer weight followed to the loss, factor by factor."""

import pytest

from symbp.checks.verify import Oracle, verify
from symbp.derivation.backprop import Conventions, Derivation, derive
from symbp.render.latex.document import derivation_context, notation_for
from symbp.render.latex.notation import NOTATION_NAMES
from symbp.render.latex.printer import latex_of
from symbp.spec.schema import load_spec


def _derived(spec_source, notation: str):
    spec = load_spec(spec_source)
    chosen = notation_for(spec, notation)
    return derive(spec, Conventions(chosen.error_sign, chosen.column_vectors)), chosen


def _only_worked(derivation: Derivation) -> Derivation:
    worked = derivation.section("worked")
    return Derivation(derivation.spec, derivation.conventions, (worked,))


def test_the_lessons_two_weights_as_products_of_named_factors():
    derivation, notation = _derived("house_prices", "lesson")
    worked = derivation.section("worked")
    output = worked.chain("worked.output_weight")
    first = worked.chain("worked.first_weight")
    assert latex_of(output.lhs, notation) == r"\frac{\partial E}{\partial w_{17}}"
    assert latex_of(output.steps[0].expr, notation) == (
        r"\frac{\partial E}{\partial \beta_{O1}} \frac{\partial \beta_{O1}}{\partial \alpha_{O1}} "
        r"\frac{\partial \alpha_{O1}}{\partial w_{17}}")
    # The lesson's dE/dw1 path, for the first weight from x1: E <- beta_O1 <- alpha_O1 <- beta_H1 <- alpha_H1 <- w6.
    assert latex_of(first.steps[1].expr, notation) == (
        r"\left(\beta_{O1} - y\right) \beta_{O1} \left(1 - \beta_{O1}\right) w_{17} \beta_{H1} "
        r"\left(1 - \beta_{H1}\right) x_{1}")
    assert latex_of(first.result, notation) == r"\delta_{H1} x_{1}"


@pytest.mark.parametrize("notation", NOTATION_NAMES)
def test_every_worked_line_is_checked_against_the_module(notation):
    derivation, _ = _derived("actuarial", notation)
    report = verify(_only_worked(derivation))
    assert report.passed and report.checked >= 20, report.mismatches[:3]


def test_a_deep_network_sums_over_every_path_and_still_checks():
    spec = {
        "name": "deep_paths", "inputs": 2,
        "layers": [{"units": 3, "activation": "relu"}, {"units": 2, "activation": "tanh"},
                   {"units": 2, "activation": "softmax"}],
        "loss": {"name": "cross_entropy"},
    }
    derivation, notation = _derived(spec, "slides")
    first = derivation.section("worked").chain("worked.first_weight")
    assert len(first.steps[0].expr.limits) == 2  # the paths branch at the two layers above
    report = verify(_only_worked(derivation), Oracle(derivation.spec))
    assert report.passed, report.mismatches[:3]


def test_a_single_layer_has_one_worked_weight():
    derivation, _ = _derived("linear_regression", "slides")
    keys = [chain.key for chain in derivation.section("worked").chains]
    assert "worked.output_weight" in keys and "worked.first_weight" not in keys


def test_the_document_spells_out_each_path():
    context = derivation_context("house_prices", "lesson")
    worked = next(section for section in context["sections"] if section.kind == "worked")
    walks = worked.facts["walks"]
    assert [walk["weight"] for walk in walks] == ["w_{17}", "w_{6}"]
    assert walks[1]["path"].endswith(r"\beta_{O1} \to E")


def test_a_wrong_factor_would_be_caught():
    from symbp.derivation.model import Chain, Section, step
    from symbp.symbolic import quantities as q

    derivation, _ = _derived("actuarial", "lab")
    first = derivation.section("worked").chain("worked.first_weight")
    # The weight from the other hidden unit, where the path runs through w(2)_11.
    wrong = first.steps[1].expr.xreplace({q.weight(2)[1, 1]: q.weight(2)[2, 1]})
    tampered = Chain(first.key, first.lhs, (first.steps[0], step(wrong), first.steps[2]), first.scope)
    report = verify(Derivation(derivation.spec, derivation.conventions, (Section("worked", (tampered,)),)))
    assert [mismatch.step for mismatch in report.mismatches] and {m.step for m in report.mismatches} == {2}
