"""Batch normalisation derived: ``symbp derive`` writes each batch-normalised layer's statistics over the batch and
the chain rule through them, every line checked on a batch (both signs of the error term, each sample's error term
its share of the batch's gradient), a wrong printed gradient caught, every document typeset by TeX with no overfull
box in all five notations, and the HTML page in MathML."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pytest
import sympy as sp
from html_inspection import raw_tex_in, read_page
from typesetting_catalogue import NOTATIONS, inspect_tex

from symbp.checks.verify import Oracle, verify
from symbp.cli.main import main
from symbp.derivation.backprop import derive
from symbp.derivation.model import Chain, Conventions, Derivation, Step
from symbp.render.html.page import derivation_page
from symbp.render.latex.document import Writer, derivation_document, notation_for
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q


def _spec(normalised=(0,), depth: int = 2, output: str = "linear", epsilon=None, reduction: str = "mean") -> dict:
    layers = []
    for position in range(depth - 1):
        layer = {"units": 3 if position % 2 == 0 else 2, "activation": "tanh" if position % 2 == 0 else "sigmoid"}
        if position in normalised:
            layer["normalization"] = "batch"
            if epsilon is not None:
                layer["epsilon"] = epsilon
        layers.append(layer)
    out = {"units": 3, "activation": "softmax"} if output == "softmax" else {"units": 1, "activation": output}
    if depth - 1 in normalised:
        out["normalization"] = "batch"
    loss = {"name": "cross_entropy"} if output == "softmax" else {"name": "squared_error", "scale": 0.5,
                                                                  "reduction": reduction}
    return {"name": "batched", "inputs": 2, "layers": [*layers, out], "loss": loss,
            "training": {"optimizer": "gd", "learning_rate": 0.05, "epochs": 10}}


SPECS = {
    "hidden": _spec(),
    "below_a_dense_layer": _spec(normalised=(1,), depth=3),  # the layer below receives its error through u
    "output": _spec(normalised=(1,), output="softmax"),
    "both": _spec(normalised=(0, 1), output="softmax", epsilon=0.1),
    "summed": _spec(reduction="sum"),
    # a layer-normalised layer above a batch-normalised one: its per-sample section over a coupled batch
    "under_layer_norm": {**_spec(normalised=(0,), depth=3),
                         "layers": [{"units": 3, "activation": "tanh", "normalization": "batch"},
                                    {"units": 3, "activation": "sigmoid", "normalization": "layer"},
                                    {"units": 1, "activation": "linear"}]},
}


@pytest.fixture(scope="module", params=sorted(SPECS))
def spec(request):
    return load_spec(SPECS[request.param])


@pytest.mark.parametrize("sign", [1, -1])
def test_every_line_holds_on_a_batch(spec, sign):
    derivation = derive(spec, Conventions(error_sign=sign))
    normalised = [section for section in derivation.sections if section.kind == "batch_normalisation"]
    assert sorted(section.layer for section in normalised) == [
        index + 1 for index, layer in enumerate(spec.layers) if layer.normalization == "batch"]
    report = verify(derivation)
    assert report.passed, [str(m) for m in report.mismatches[:5]]
    checked = {chain.key for chain in derivation.chains()}
    for section in normalised:
        for key in ("weighted", "mean", "variance", "scale", "normalised", "normalised_delta", "mean_du",
                    "variance_du", "normalised_du", "weighted_delta", "du_dw", "weight", "gain_sum", "shift_sum"):
            assert f"batchnorm{section.layer}.{key}" in checked


def test_the_samples_shares_add_up_to_the_modules_training_gradient():
    spec = load_spec(SPECS["below_a_dense_layer"])
    oracle = Oracle(spec)
    assert oracle.coupled
    for name, total in oracle.gradient.items():
        shares = sum(oracle.sample_gradients[n][name] for n in range(oracle.samples)) / oracle.samples
        np.testing.assert_allclose(shares, total, rtol=1e-7, atol=1e-10)


def test_the_last_line_is_the_compact_form_of_the_literature():
    derivation = derive(load_spec(SPECS["hidden"]))
    n, other, j = q.sample_index(), q.unit_index(0, "sample'"), q.unit_index(1, "cur")
    g, x_hat, count = q.normalised_delta(1), q.normalised(1), q.N_SAMPLES
    scale = q.layer_statistic("scale", 1)[j]
    literature = (count * g[n, j] - sp.Sum(g[other, j], (other, 1, count))
                  - x_hat[n, j] * sp.Sum(g[other, j] * x_hat[other, j], (other, 1, count))) / (count * scale)
    shown = derivation.section("batch_normalisation", 1).chain("batchnorm1.weighted_delta").result
    assert sp.simplify(shown.doit() - literature) == 0
    # on 3 samples, written out, it is SymPy's derivative of the normalisation itself
    u = sp.symbols("u1:4", real=True)
    mean = sum(u) / 3
    sigma = sp.sqrt(sum((each - mean) ** 2 for each in u) / 3 + sp.Rational(1, 100))
    gs = sp.symbols("g1:4", real=True)
    normalised = [(each - mean) / sigma for each in u]
    by_sympy = sum(gs[m] * sp.diff(normalised[m], u[0]) for m in range(3))
    compact = (3 * gs[0] - sum(gs) - normalised[0] * sum(a * b for a, b in zip(gs, normalised))) / (3 * sigma)
    point = {symbol: sp.Rational(random.Random(k).randint(-9, 9), 7) for k, symbol in enumerate((*u, *gs))}
    assert sp.simplify((by_sympy - compact).subs(point)) == 0


def _with_step(derivation: Derivation, key: str, wrong) -> Derivation:
    sections = []
    for section in derivation.sections:
        chains = tuple(Chain(c.key, c.lhs, (*c.steps[:-1], Step(wrong(c.result))), c.scope, c.relation, c.boxed)
                       if c.key == key else c for c in section.chains)
        sections.append(replace(section, chains=chains))
    return replace(derivation, sections=tuple(sections))


_n, _j = q.sample_index(), q.unit_index(1, "cur")


@pytest.mark.parametrize(("key", "wrong"), [
    # the coupling through the variance left out: a centring alone
    ("weighted_delta", lambda expr: expr.xreplace({q.normalised(1)[_n, _j]: 0})),
    # the coupling left out altogether: each sample on its own, g / sigma_hat
    ("weighted_delta", lambda expr: q.normalised_delta(1)[_n, _j] / q.layer_statistic("scale", 1)[_j]),
    # the mean's term with the wrong sign
    ("normalised_du", lambda expr: expr.xreplace({sp.Integer(-1): sp.Integer(1)})),
    # the weight's gradient through z (delta a_i) as if the layer were dense
    ("weight", lambda expr: expr.xreplace({q.weighted_delta(1): q.delta(1)})),
    # the gain's batch gradient without the normalised value
    ("gain_sum", lambda expr: expr.xreplace({q.normalised(1): q.weighted(1)})),
])
def test_a_wrong_printed_gradient_is_caught(key, wrong):
    spec = load_spec(SPECS["hidden"])
    derivation = derive(spec)
    broken = _with_step(derivation, f"batchnorm1.{key}", wrong)
    assert broken.section("batch_normalisation", 1).chain(f"batchnorm1.{key}").result != \
        derivation.section("batch_normalisation", 1).chain(f"batchnorm1.{key}").result
    report = verify(broken, Oracle(spec))
    assert not report.passed
    assert {mismatch.chain for mismatch in report.mismatches} == {f"batchnorm1.{key}"}


def test_every_notation_names_the_batch_quantities_apart_from_the_others():
    spec = load_spec(SPECS["both"])
    n, other = q.sample_index(), q.unit_index(0, "sample'")
    for name in NOTATIONS:
        writer = Writer(notation_for(spec, name))
        printed = {}
        for layer in (1, 2):
            j = q.unit_index(layer, "cur")
            for kind in ("pre", "act", "delta", "incoming", "gain", "shift", *q.NORMALISATION_UNIT_KINDS):
                printed[(kind, layer)] = writer.math(q.quantity(kind, layer)[j])
            for kind in q.NORMALISATION_UNIT_KINDS:
                for sample in (n, other):
                    printed[(kind, layer, str(sample))] = writer.math(q.quantity(kind, layer)[sample, j])
            for kind in ("mean", "variance", "scale"):
                printed[(kind, layer)] = writer.math(q.layer_statistic(kind, layer)[j])
            printed[("weight", layer)] = writer.math(q.weight(layer)[q.unit_index(layer - 1, "prev"), j])
        printed[("input", 0)] = writer.math(q.inputs()[q.unit_index(0, "prev")])
        printed[("sample", 0)] = writer.math(n)
        printed[("other sample", 0)] = writer.math(other)
        for symbol in (q.LEARNING_RATE, q.MOMENTUM, q.BETA1, q.EPSILON, q.VELOCITY, q.MOMENT):
            printed[(str(symbol), 0)] = writer.math(symbol)
        # No two quantities print alike (a layer's units share their letter with another layer's in some texts).
        assert len(set(printed.values())) == len(printed), (name, printed)
        # The sample indices are no unit index of any layer.
        units = {writer.math(q.unit_index(layer, relation)) for layer in (0, 1, 2)
                 for relation in ("prev", "cur", "next", "cur'", "prev'", "next'")}
        assert not {printed[("sample", 0)], printed[("other sample", 0)]} & units, name


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_documents_typeset_without_an_overfull_box_in_every_notation(name):
    for notation in NOTATIONS:
        source = derivation_document(SPECS[name], notation)
        assert "The batch normalisation of" in source
        report = inspect_tex(source, f"bn_{name}_{notation}")
        assert report.problems() == [], (notation, report.problems()[:5])


def test_the_html_page_renders_the_section_in_mathml():
    for notation in ("lab", "fausett"):
        html = derivation_page(SPECS["below_a_dense_layer"], notation)
        page = read_page(html)
        assert page.tags.count("math") > 20 and raw_tex_in(page.text) == []
        assert "The batch normalisation of" in page.text and "compact form" in page.text


def _drawn(seed: int) -> dict:
    """A small network unlike the bundled ones: depth, widths, activations, the normalised layers, the loss and
    epsilon drawn."""
    rng = random.Random(seed)
    depth = rng.randint(1, 3)
    layers = []
    for position in range(depth):
        last = position == depth - 1
        layer = {"units": rng.randint(1, 3) if not last else rng.choice([1, 2]),
                 "activation": rng.choice(["tanh", "sigmoid", "softplus", "linear"]) if not last else "linear"}
        if rng.random() < 0.6:
            layer["normalization"] = "batch"
            layer["epsilon"] = rng.choice([1e-5, 0.01, 0.5])
            layer["momentum"] = rng.choice([0.1, 0.3])
        layers.append(layer)
    if not any("normalization" in layer for layer in layers):
        layers[rng.randrange(depth)].update({"normalization": "batch"})
    return {"name": f"drawn{seed}", "inputs": rng.randint(1, 3), "layers": layers,
            "loss": {"name": "squared_error", "scale": rng.choice([0.5, 1.0]),
                     "reduction": rng.choice(["mean", "sum"])},
            "training": {"optimizer": rng.choice(["gd", "momentum", "adam"]), "learning_rate": 0.05, "epochs": 5}}


@pytest.mark.parametrize("seed", range(6))
def test_drawn_batch_norm_networks_are_derived_and_verified(seed):
    spec = load_spec(_drawn(seed))
    report = verify(derive(spec, Conventions(error_sign=1 if seed % 2 else -1)))
    assert report.passed, (spec.name, [str(m) for m in report.mismatches[:3]])


def test_the_command_line_derives_it(tmp_path):
    (tmp_path / "net.json").write_text(json.dumps(SPECS["hidden"]))
    target = tmp_path / "net.tex"
    assert main(["derive", str(tmp_path / "net.json"), "-o", str(target)]) == 0
    assert r"\section{The batch normalisation of layer 1}" in target.read_text()
