"""Convolution and pooling derived: ``symbp derive`` writes each window layer's section in its channel, position and
offset indices, every line checked on numbers (both signs of the error term), a wrong printed gradient caught,
the letters of every notation kept apart, and every document typeset by TeX with no overfull box and no warning in
all five notations."""

from __future__ import annotations

import json
from dataclasses import replace

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
from symbp.symbolic.network import network_of


def _spec(name: str, input_shape: list, layers: list, units: int = 1, activation: str = "sigmoid",
          loss: str = "squared_error", optimizer: str = "gd") -> dict:
    return {"name": name, "input_shape": input_shape,
            "layers": [*layers, {"units": units, "activation": activation}], "loss": {"name": loss},
            "training": {"optimizer": optimizer, "learning_rate": 0.1, "epochs": 5}}


SPECS = {
    # 1-D: padding, average pooling, a strided convolution of two channels with no bias above it
    "one_d": _spec("conv_1d", [2, 7], [
        {"kind": "conv1d", "filters": 2, "kernel_size": 3, "padding": 1, "activation": "tanh"},
        {"kind": "avg_pool1d", "pool_size": 2},
        {"kind": "conv1d", "filters": 2, "kernel_size": 2, "stride": 2, "activation": "sigmoid", "bias": False},
    ], units=2),
    # 2-D: a rectangular kernel with padding, max pooling after it, then a strided convolution; softmax on top
    "two_d": _spec("conv_2d", [2, 5, 5], [
        {"kind": "conv2d", "filters": 2, "kernel_size": [2, 3], "padding": 1, "activation": "relu"},
        {"kind": "max_pool2d", "pool_size": 2},
        {"kind": "conv2d", "filters": 1, "kernel_size": 2, "stride": 2, "activation": "tanh"},
    ], units=3, activation="softmax", loss="cross_entropy", optimizer="adam"),
    # a pooling layer first (no parameters), a stride of 2 with padding, two dense layers above
    "pool_first": _spec("pool_first", [1, 4, 4], [
        {"kind": "max_pool2d", "pool_size": 2, "stride": 1},
        {"kind": "conv2d", "filters": 2, "kernel_size": 2, "stride": 2, "padding": 1, "activation": "sigmoid"},
        {"units": 2, "activation": "tanh"},
    ], optimizer="momentum"),
}


@pytest.fixture(scope="module", params=sorted(SPECS))
def spec(request):
    return load_spec(SPECS[request.param])


@pytest.mark.parametrize("sign", [1, -1])
def test_every_line_holds_on_numbers(spec, sign):
    derivation = derive(spec, Conventions(error_sign=sign))
    windows = [section for section in derivation.sections if section.kind == "window"]
    kinds = [index + 1 for index, layer in enumerate(spec.layers) if layer.window is not None]
    assert sorted(section.layer for section in windows) == kinds
    report = verify(derivation)
    assert report.passed, [str(m) for m in report.mismatches[:5]]
    checked = {chain.key for chain in derivation.chains()}
    for section in windows:
        pooling = spec.layers[section.layer - 1].window.pooling
        keys = ["pre", "incoming", "delta"] + ([] if pooling else ["dz_dw", "weight"])
        keys += ["dz_da", "input"] if section.layer > 1 else []
        for key in keys:
            assert f"window{section.layer}.{key}" in checked, key


def test_the_gradients_are_the_textbook_ones():
    """The kernel's gradient is the correlation of the input with the error terms, the bias's their sum, and with
    stride 1 the error passed back is the full convolution with the flipped kernel."""
    spec = load_spec(SPECS["one_d"])
    derivation = derive(spec)
    layer = network_of(spec).layer(1)
    f, c = layer.output_channel(), q.window_index(1, "channel")
    (p,), (t,) = layer.positions_index(), layer.offsets_index()
    section = derivation.section("window", 1)
    delta, x = q.delta(1), q.inputs()
    assert section.chain("window1.weight").result == sp.Sum(delta[f, p] * x[c, p + t - 2], (p, 1, 7))
    assert section.chain("window1.bias").result == sp.Sum(delta[f, p], (p, 1, 7))
    above = network_of(spec).layer(2)
    c2, (r,) = q.window_index(2, "channel"), above.sources_index()
    # average pooling shares each window's error among its two entries
    shown = derivation.section("window", 2).chain("window2.input").result
    assert shown.has(sp.Rational(1, 2)) and shown.has(sp.KroneckerDelta)
    assert q.incoming(1)[c2, r] == derivation.section("window", 2).chain("window2.input").lhs


def test_stride_one_passes_back_a_full_convolution():
    spec = load_spec(_spec("full", [1, 5], [
        {"kind": "conv1d", "filters": 1, "kernel_size": 2, "activation": "tanh"},
        {"kind": "conv1d", "filters": 2, "kernel_size": 3, "activation": "tanh"},
    ]))
    derivation = derive(spec)
    layer = network_of(spec).layer(2)
    f, c = layer.output_channel(), q.window_index(2, "channel")
    (r,), (t,) = layer.sources_index(), layer.offsets_index()
    full = sp.Sum(q.delta(2)[f, r - t + 1] * q.weight(2)[f, c, t], (t, 1, 3), (f, 1, 2))
    assert derivation.section("window", 2).chain("window2.input").result == full
    assert verify(derivation).passed


def _with_step(derivation: Derivation, key: str, wrong) -> Derivation:
    sections = []
    for section in derivation.sections:
        chains = tuple(Chain(c.key, c.lhs, (*c.steps[:-1], Step(wrong(c.result))), c.scope, c.relation, c.boxed)
                       if c.key == key else c for c in section.chains)
        sections.append(replace(section, chains=chains))
    return replace(derivation, sections=tuple(sections))


def _shift(index: int, by: int):
    """The input read one position further along: an off-by-one in the window's offset."""
    def wrong(expr):
        return expr.xreplace({q.inputs(): sp.IndexedBase("input0_shifted", real=True)}).replace(
            lambda e: isinstance(e, sp.Indexed) and e.base.label.name == "input0_shifted",
            lambda e: q.inputs()[(e.indices[0], e.indices[1] + by)])
    return wrong


@pytest.mark.parametrize(("key", "wrong"), [
    # the kernel's gradient reading the input one position off
    ("window1.weight", _shift(1, 1)),
    # the bias's gradient without the first position
    ("window1.bias", lambda expr: expr.replace(lambda e: isinstance(e, sp.Sum),
                                                lambda e: sp.Sum(e.function, (e.limits[0][0], 2, 7)))),
    # average pooling passing back the whole error instead of its share
    ("window2.input", lambda expr: expr.xreplace({sp.Rational(1, 2): sp.Integer(1)})),
    # the error term without the activation's derivative
    ("window3.delta", lambda expr: expr.xreplace({q.act(3): q.pre(3)})),
])
def test_a_wrong_printed_gradient_is_caught(key, wrong):
    spec = load_spec(SPECS["one_d"])
    broken = _with_step(derive(spec), key, wrong)
    report = verify(broken, Oracle(spec))
    assert not report.passed
    assert {mismatch.chain for mismatch in report.mismatches} == {key}


def test_max_pooling_routes_the_error_to_the_first_largest_entry():
    spec = load_spec(SPECS["two_d"])
    derivation = derive(spec)
    section = derivation.section("window", 2)
    assert section.chain("window2.selected").result.has(q.first_max(2))
    assert section.chain("window2.input").result.has(q.first_max(2))
    # the maximum's derivative sent to every tied entry, or split between them, is caught
    broken = _with_step(derivation, "window2.input", lambda expr: expr.xreplace({q.first_max(2): sp.IndexedBase(
        "first_max2", real=True)}).replace(lambda e: isinstance(e, sp.Indexed) and e.base.label.name == "first_max2",
                                           lambda e: sp.Rational(1, 4)))
    assert not verify(broken, Oracle(spec)).passed


def test_every_notation_names_the_window_indices_apart_from_its_units():
    for name in NOTATIONS:
        for key in SPECS:
            spec = load_spec(SPECS[key])
            writer = Writer(notation_for(spec, name))
            notation = writer.notation
            units = {notation.letter(layer, relation).rstrip("'") for layer in range(len(spec.layers) + 1)
                     for relation in ("prev", "cur", "next", "sample")}
            letters = notation.window_letters()
            assert len(set(letters.values())) == len(letters), (name, letters)
            assert not set(letters.values()) & units, (name, key, letters, units)
            # a kernel's weight, a dense weight and the first-max indicator print apart
            net = network_of(spec)
            printed = {writer.math(layer.index_kernel()) for layer in net.layers if hasattr(layer, "index_kernel")}
            assert len(printed) == sum(hasattr(layer, "index_kernel") for layer in net.layers)


def test_the_command_line_derives_a_window_network(tmp_path, capsys):
    path = tmp_path / "conv.json"
    path.write_text(json.dumps(SPECS["one_d"]))
    assert main(["derive", str(path), "-o", str(tmp_path / "conv.tex")]) == 0
    text = (tmp_path / "conv.tex").read_text()
    assert "The convolution of layer" in text and "The average pooling of layer" in text


def test_the_output_layer_must_be_dense(tmp_path, capsys):
    spec = {"name": "conv_out", "input_shape": [1, 4],
            "layers": [{"kind": "conv1d", "filters": 1, "kernel_size": 2, "activation": "linear"}],
            "loss": {"name": "squared_error"}}
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    assert main(["derive", str(path), "-o", str(tmp_path / "out.tex")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("symbp: error: layers[0].kind: the derivation needs a dense output")
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("notation", NOTATIONS)
def test_typesets_in_every_notation(name, notation):
    report = inspect_tex(derivation_document(SPECS[name], notation), f"{name}-{notation}")
    assert not report.problems(), report.problems()[:5]


def test_the_html_page_renders_the_sections_in_mathml():
    for notation in ("lab", "fausett"):
        page = read_page(derivation_page(SPECS["two_d"], notation))
        assert page.tags.count("math") > 50 and raw_tex_in(page.text) == []
        assert "The convolution of" in page.text and "The max pooling of" in page.text


def test_the_bundled_convolutional_example_is_derived_within_its_limits():
    """digits_conv (8 filters, 754 parameters): its window sections, no section listing every parameter, and a
    document of a few pages, as the dense examples' derivations cap theirs."""
    source = derivation_document("digits_conv")
    derivation = derive(load_spec("digits_conv"))
    assert [section.kind for section in derivation.sections].count("window") == 2
    assert derivation.section("explicit") is None and derivation.section("worked") is None
    report = inspect_tex(source, "digits_conv")
    assert not report.problems(), report.problems()[:5]
    pages = int(next(line for line in report.log.splitlines() if "Output written" in line).split("(")[1].split()[0])
    assert pages <= 16
