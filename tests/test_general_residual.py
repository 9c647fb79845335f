"""The equations of backpropagation of a network with a residual layer: the pre-activation above carries the
skip indicator s^(l+1), SymPy's dz/da is w_jk + s [j = k], and the hidden error term gains s delta_j; a network
without a residual layer is derived as before, and the section typesets in every notation."""

from __future__ import annotations

import shutil

import pytest
import sympy as sp
from typesetting_catalogue import NOTATIONS, inspect_tex

from symbp.cli.main import main
from symbp.derivation.backprop import derive
from symbp.derivation.general import generic_activation, units_of
from symbp.render.latex.document import derivation_document
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q

LAYER, ABOVE = q.LAYER, q.LAYER + 1
J, K = q.unit_index(LAYER, "cur"), q.unit_index(ABOVE, "next")


def _spec_dict(residual: bool = True, dropout: float | None = None) -> dict:
    first = {"units": 3, "activation": "tanh"}
    if dropout is not None:
        first["dropout"] = dropout
    return {"name": "res", "inputs": 3, "layers": [
        first,
        {"units": 3, "activation": "tanh", "residual": residual},
        {"units": 1, "activation": "sigmoid"}],
        "loss": {"name": "binary_cross_entropy"}}


@pytest.fixture(scope="module")
def spec():
    return load_spec(_spec_dict())


def _local():
    z = q.pre(LAYER)[J]
    return sp.Derivative(generic_activation()(z), z)


def _substituted(chain) -> sp.Expr:
    """What the step that substitutes dz^(l+1)_k / da^(l)_j says that derivative is."""
    for step in chain.steps:
        for reason in step.reasons:
            if reason.kind == "substitute" and reason.facts and reason.facts[0].lhs == q.Partial(
                    q.pre(ABOVE)[K], q.act(LAYER)[J]):
                return reason.facts[0].rhs
    raise AssertionError("no step substitutes dz/da")


def test_the_hidden_error_term_gains_the_skip_term(spec):
    general = derive(spec).section("general")
    assert general.facts["skipped"] and general.facts["residual"] == (2,)
    skip = q.skip(ABOVE)
    assert general.chain("general.preactivation").result == (
        sp.Sum(q.weight(ABOVE)[J, K] * q.act(LAYER)[J], (J, 1, units_of(LAYER))) + q.bias(ABOVE)[K]
        + skip * q.act(LAYER)[K])
    hidden = general.chain("general.hidden_delta")
    assert _substituted(hidden) == q.weight(ABOVE)[J, K] + skip * sp.KroneckerDelta(J, K)
    expected = (sp.Sum(q.delta(ABOVE)[K] * q.weight(ABOVE)[J, K], (K, 1, units_of(ABOVE)))
                + skip * q.delta(ABOVE)[J]) * _local()
    assert sp.expand(hidden.result - expected) == 0
    assert hidden.boxed and not hidden.result.has(sp.KroneckerDelta, sp.Piecewise)
    # With s = 1 the bracket's sum is delta_j; with s = 0 the plain equation is back.
    assert sp.expand(hidden.result.subs(skip, 0)) == sp.expand(expected.subs(skip, 0))
    assert hidden.result.subs(skip, 0) != hidden.result.subs(skip, 1)


def test_every_step_has_a_reason(spec):
    hidden = derive(spec).section("general").chain("general.hidden_delta")
    assert all(step.reasons for step in hidden.steps)
    picked = hidden.steps[-1].reasons
    assert [reason.kind for reason in picked] == ["sum_rule", "fact"]
    summed = picked[1].facts[0]
    assert summed.lhs.doit().args[0].expr == summed.rhs == q.skip(ABOVE) * q.delta(ABOVE)[J]


def test_a_network_without_a_residual_layer_has_no_skip_term():
    general = derive(load_spec(_spec_dict(residual=False))).section("general")
    assert not general.facts["skipped"]
    assert "general.preactivation" not in [chain.key for chain in general.chains]
    hidden = general.chain("general.hidden_delta")
    assert _substituted(hidden) == q.weight(ABOVE)[J, K]
    assert not any(step.expr.has(q.skip(ABOVE), sp.KroneckerDelta) for step in hidden.steps)
    assert "skip indicator" not in derivation_document(load_spec(_spec_dict(residual=False)), "lab")


def test_dropout_and_a_residual_layer_both_appear():
    both = load_spec(_spec_dict(dropout=0.5))
    general = derive(both).section("general")
    assert general.facts["masked"] and general.facts["skipped"]
    hidden = general.chain("general.hidden_delta")
    assert _substituted(hidden) == (q.weight(ABOVE)[J, K] * q.mask(ABOVE)[J]
                                    + q.skip(ABOVE) * sp.KroneckerDelta(J, K))
    assert hidden.result.has(q.mask(ABOVE)[J]) and hidden.result.has(q.skip(ABOVE) * q.delta(ABOVE)[J])
    source = derivation_document(both, "lab")
    assert "dropout mask $m$" in source and "skip indicator, $s^{(k + 1)}$" in source


@pytest.mark.parametrize("notation, skip", [
    ("lab", "s^{(k + 1)}"), ("article", "s^{(l + 1)}"), ("slides", "s^{l + 1}"),
    ("fausett", "s_{Y}"), ("lesson", "s_{O}")])
def test_each_notation_names_the_skip_indicator(spec, notation, skip):
    source = derivation_document(spec, notation)
    general = source[source.index(r"\section{The equations of backpropagation}"):]
    general = general[:general.index(r"\section", 1)]
    assert f"skip indicator, ${skip}$" in general
    assert "Iverson's bracket" in general
    # Fausett and the lesson name this network's own layers: their indicator has a value, 0 for the output layer.
    assert ("(here $0$)" in general) == (notation in ("fausett", "lesson"))


def test_a_residual_output_layer_sets_the_named_indicator_to_one():
    top = load_spec({"name": "top", "inputs": 3, "layers": [
        {"units": 3, "activation": "tanh"}, {"units": 3, "activation": "linear", "residual": True}],
        "loss": {"name": "squared_error"}})
    words = " ".join(derivation_document(top, "fausett").split())
    assert "skip indicator, $s_{Y}$ for the output layer, which is $1$ when that layer is residual and $0$ " \
           "otherwise (here $1$)" in words


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
@pytest.mark.parametrize("notation", NOTATIONS)
def test_the_general_section_typesets_cleanly(spec, notation):
    report = inspect_tex(derivation_document(spec, notation), f"general_skip_{notation}")
    assert not report.problems(), report.problems()


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
@pytest.mark.parametrize("notation", ["lab", "fausett"])
def test_dropout_and_a_residual_layer_typeset_cleanly(notation):
    report = inspect_tex(derivation_document(load_spec(_spec_dict(dropout=0.5)), notation), f"both_{notation}")
    assert not report.problems(), report.problems()


def test_the_html_page_renders(spec, tmp_path):
    target = tmp_path / "res.html"
    spec_path = tmp_path / "res.toml"
    spec_path.write_text('name = "res"\ninputs = 3\n[[layers]]\nunits = 3\nactivation = "tanh"\n[[layers]]\n'
                         'units = 3\nactivation = "tanh"\nresidual = true\n[[layers]]\nunits = 1\n'
                         'activation = "sigmoid"\n[loss]\nname = "binary_cross_entropy"\n', encoding="utf-8")
    assert main(["derive", str(spec_path), "--html", "-o", str(target)]) == 0
    page = target.read_text(encoding="utf-8")
    general = page[page.index('<section class="general">'):]
    general = general[:general.index("</section>")]
    # The skip indicator s^(k+1) as MathML, in the sentence that defines it and in the equations.
    assert "skip indicator" in general and "Iverson's bracket" in general
    assert general.count("<msup><mi>s</mi>") >= 5 and general.count('class="why"') >= 10


@pytest.mark.parametrize("notation", NOTATIONS)
def test_every_notations_html_page_has_the_general_equations(spec, notation):
    from symbp.render.html.page import derivation_page

    page = derivation_page(spec, notation)
    general = page[page.index('<section class="general">'):]
    general = general[:general.index("</section>")]
    assert "skip indicator" in general and "<math" in general and "backpropagation.</p>" in general
