"""Layer normalisation derived: ``symbp derive`` writes the layer's forward definitions and the chain rule through
each sample's mean and variance, every line checked on numbers (both signs of the error term), every document
typeset by TeX with no overfull box in all five notations, and the HTML page in MathML."""

from __future__ import annotations

from dataclasses import replace

import pytest
import sympy as sp
from html_inspection import raw_tex_in, read_page
from test_layernorm_draws import _drawn
from typesetting_catalogue import NOTATIONS, inspect_tex

from symbp.checks.verify import Oracle, verify
from symbp.cli.main import main
from symbp.derivation.backprop import derive
from symbp.derivation.model import Chain, Conventions, Derivation, Step
from symbp.render.html.page import derivation_page
from symbp.render.latex.document import Writer, derivation_document, notation_for
from symbp.spec.schema import load_spec
from symbp.symbolic import layernorm
from symbp.symbolic import quantities as q


def _spec(hidden_normalised: bool = True, output_normalised: bool = False, depth: int = 2, epsilon=None) -> dict:
    layers = []
    for position in range(depth - 1):
        layer = {"units": 3, "activation": "tanh" if position % 2 == 0 else "sigmoid"}
        if hidden_normalised and position == depth - 2:
            layer["normalization"] = "layer"
            if epsilon is not None:
                layer["epsilon"] = epsilon
        layers.append(layer)
    output = {"units": 3, "activation": "softmax"} if output_normalised else {"units": 1, "activation": "linear"}
    if output_normalised:
        output["normalization"] = "layer"
    loss = {"name": "cross_entropy"} if output_normalised else {"name": "squared_error", "scale": 0.5}
    return {"name": "normed", "inputs": 2, "layers": [*layers, output], "loss": loss,
            "training": {"optimizer": "gd", "learning_rate": 0.05, "epochs": 10}}


SPECS = {
    "hidden": _spec(),
    "below_a_dense_layer": _spec(depth=3),  # the layer below the normalised one receives its error through u
    "output": _spec(hidden_normalised=False, output_normalised=True),
    "both": _spec(output_normalised=True, epsilon=0.1),
}


@pytest.fixture(scope="module", params=sorted(SPECS))
def spec(request):
    return load_spec(SPECS[request.param])


@pytest.mark.parametrize("sign", [1, -1])
def test_every_line_holds_on_numbers(spec, sign):
    derivation = derive(spec, Conventions(error_sign=sign))
    normalised = [section for section in derivation.sections if section.kind == "normalisation"]
    assert sorted(section.layer for section in normalised) == [
        index + 1 for index, layer in enumerate(spec.layers) if layer.normalization]
    report = verify(derivation)
    assert report.passed, [str(m) for m in report.mismatches[:5]]
    checked = {chain.key for chain in derivation.chains()}
    for section in normalised:
        for key in ("weighted", "mean", "variance", "scale", "normalised", "normalised_delta", "mean_du",
                    "variance_du", "normalised_du", "weighted_delta", "du_dw", "weight"):
            assert f"norm{section.layer}.{key}" in checked


def test_the_last_line_is_the_compact_form_of_the_literature(spec):
    derivation = derive(spec)
    layer = next(section.layer for section in derivation.sections if section.kind == "normalisation")
    units = spec.sizes[layer]
    j, k = q.unit_index(layer, "cur"), q.unit_index(layer, "cur'")
    g, x_hat = q.normalised_delta(layer), q.normalised(layer)
    scale = q.layer_statistic("scale", layer)
    literature = (units * g[j] - sp.Sum(g[k], (k, 1, units)) - x_hat[j] * sp.Sum(g[k] * x_hat[k], (k, 1, units))) \
        / (units * scale)
    shown = derivation.section("normalisation", layer).chain(f"norm{layer}.weighted_delta").result
    assert sp.simplify((shown - literature).doit()) == 0
    # and it is the compact form SymPy proved for a row of symbolic length (symbp.symbolic.layernorm)
    assert layernorm.normalisation_calculus().compact is not None


def _with_step(derivation: Derivation, key: str, wrong) -> Derivation:
    sections = []
    for section in derivation.sections:
        chains = tuple(Chain(c.key, c.lhs, (*c.steps[:-1], Step(wrong(c.result))), c.scope, c.relation, c.boxed)
                       if c.key == key else c for c in section.chains)
        sections.append(replace(section, chains=chains))
    return replace(derivation, sections=tuple(sections))


@pytest.mark.parametrize(("key", "wrong"), [
    # the coupling through the variance left out: the plain 1/sigma_hat (g_j - mean(g)) of a centring alone
    ("weighted_delta", lambda expr: expr.xreplace({q.normalised(1)[q.unit_index(1, "cur")]: 0})),
    # the mean's term with the wrong sign
    ("normalised_du", lambda expr: expr.xreplace({sp.Integer(-1): sp.Integer(1)})),
    # the weight's gradient through z (delta a_i) as if the layer were dense
    ("weight", lambda expr: expr.xreplace({q.weighted_delta(1): q.delta(1)})),
    # the gain's gradient without the normalised value
    ("gain", lambda expr: expr.xreplace({q.normalised(1): q.weighted(1)})),
])
def test_a_wrong_printed_gradient_is_caught(key, wrong):
    spec = load_spec(SPECS["hidden"])
    derivation = derive(spec)
    prefix = "layer1" if key == "gain" else "norm1"
    broken = _with_step(derivation, f"{prefix}.{key}", wrong)
    assert broken.section("normalisation", 1).chain(f"{prefix}.{key}") is not None or key == "gain"
    report = verify(broken, Oracle(spec))
    assert not report.passed
    assert {mismatch.chain for mismatch in report.mismatches} == {f"{prefix}.{key}"}


def test_every_notation_names_the_new_quantities_apart_from_the_old():
    spec = load_spec(SPECS["both"])
    for name in NOTATIONS:
        writer = Writer(notation_for(spec, name))
        printed = {}
        for layer in (1, 2):
            j = q.unit_index(layer, "cur")
            for kind in ("pre", "act", "delta", "incoming", "gain", "shift", *q.NORMALISATION_UNIT_KINDS):
                printed[(kind, layer)] = writer.math(q.quantity(kind, layer)[j])
            for kind in q.NORMALISATION_LAYER_KINDS:
                printed[(kind, layer)] = writer.math(q.layer_statistic(kind, layer))
            printed[("weight", layer)] = writer.math(q.weight(layer)[q.unit_index(layer - 1, "prev"), j])
            printed[("skip", layer)] = writer.math(q.skip(layer))
        printed[("input", 0)] = writer.math(q.inputs()[q.unit_index(0, "prev")])
        for symbol in (q.LEARNING_RATE, q.MOMENTUM, q.BETA1, q.EPSILON, q.VELOCITY, q.MOMENT):
            printed[(str(symbol), 0)] = writer.math(symbol)
        # No two quantities print alike, and no activation's symbol is a normalised layer's spread.
        assert len(set(printed.values())) == len(printed), (name, printed)
        symbols = {writer.notation.activation(a) for a in ("sigmoid", "tanh", "generic")}
        for layer in (1, 2):
            for kind in ("variance", "scale"):
                assert not any(symbol and symbol in printed[(kind, layer)] for symbol in symbols), (name, kind)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_documents_typeset_without_an_overfull_box_in_every_notation(name):
    for notation in NOTATIONS:
        source = derivation_document(SPECS[name], notation)
        assert "The normalisation of" in source
        report = inspect_tex(source, f"ln_{name}_{notation}")
        assert report.problems() == [], (notation, report.problems()[:5])


def test_the_html_page_renders_the_section_in_mathml():
    for notation in ("lab", "fausett"):
        html = derivation_page(SPECS["below_a_dense_layer"], notation)
        page = read_page(html)
        assert page.tags.count("math") > 20 and raw_tex_in(page.text) == []
        assert "The normalisation of" in page.text and "compact form" in page.text


def test_drawn_layer_norm_networks_are_derived_and_verified():
    drawn = [load_spec(_drawn(draw)) for draw in range(40)]
    drawn = [spec for spec in drawn if any(layer.normalization for layer in spec.layers)
             and spec.parameter_count <= 40][:4]
    assert len(drawn) == 4
    for spec in drawn:
        report = verify(derive(spec))
        assert report.passed, (spec.name, [str(m) for m in report.mismatches[:3]])


def test_the_command_line_derives_it(tmp_path, capsys):
    import json

    (tmp_path / "net.json").write_text(json.dumps(SPECS["hidden"]))
    target = tmp_path / "net.tex"
    assert main(["derive", str(tmp_path / "net.json"), "-o", str(target)]) == 0
    assert r"\section{The normalisation of layer~1}" in target.read_text() or "normalisation of" in target.read_text()
