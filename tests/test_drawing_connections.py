"""The drawings show each layer's own connections: a residual layer's skips as dashed arcs, a layer kind that
joins unit j to input j alone with one edge per unit, dense layers every edge as before."""

from __future__ import annotations

import io

import pytest
import toy_layer

from symbp.cli.plots import drawing_plan, network_png
from symbp.render.html.drawing import svg_drawing
from symbp.render.latex.document import derivation_document, notation_for
from symbp.render.latex.drawing import network_drawing
from symbp.spec.schema import load_spec
from symbp.symbolic.connections import connections
from symbp.symbolic.layers import LAYER_KINDS
from symbp.symbolic.network import network_of

RESIDUAL = {
    "name": "skips", "inputs": 3,
    "layers": [{"units": 3, "activation": "tanh"}, {"units": 3, "activation": "relu", "residual": True},
               {"units": 1, "activation": "linear"}],
    "loss": {"name": "squared_error"},
}


def _pairs(layer, weighted: bool) -> set[tuple]:
    return {(edge.source, edge.target) for edge in connections(layer) if (edge.parameter is not None) == weighted}


def test_a_dense_layer_joins_every_input_and_its_bias_to_every_unit():
    dense = network_of(load_spec(RESIDUAL)).layers[0]
    assert _pairs(dense, weighted=True) == {(i, j) for i in (1, 2, 3, None) for j in (1, 2, 3)}
    assert _pairs(dense, weighted=False) == set()
    assert {str(edge.quantity) for edge in connections(dense) if edge.source == 2 and edge.target == 3} == \
        {"weight1[2, 3]"}


def test_a_residual_layer_adds_one_skip_per_unit_read_off_its_expanded_preactivation():
    residual = network_of(load_spec(RESIDUAL)).layers[1]
    assert not residual.fully_connected  # so its connections are read off the expansion, not assumed
    assert _pairs(residual, weighted=True) == {(i, j) for i in (1, 2, 3, None) for j in (1, 2, 3)}
    assert _pairs(residual, weighted=False) == {(1, 1), (2, 2), (3, 3)}


@pytest.fixture()
def toy_spec():
    toy_layer.register()
    yield toy_layer.toy_spec()
    LAYER_KINDS.pop(toy_layer.KIND, None)


def test_a_kind_defined_outside_symbp_is_drawn_with_its_own_edges(toy_spec):
    scale = network_of(toy_spec).layers[1]
    assert _pairs(scale, weighted=True) == {(1, 1), (2, 2), (3, 3)}
    drawing = network_drawing(toy_spec, notation_for(toy_spec, "lab"))
    into_scale = [edge for edge in drawing.edges if edge.target.startswith("n2-")]
    assert len(into_scale) == 3 and {edge.source[1:] for edge in into_scale} == {"1-0", "1-1", "1-2"}
    assert all(edge.source[-1] == edge.target[-1] for edge in into_scale)
    assert drawing.captions[2][2] == "elementwise scale (3)"


def test_the_document_draws_skips_as_unlabelled_dashed_arcs_and_says_what_they_are():
    spec = load_spec(RESIDUAL)
    drawing = network_drawing(spec, notation_for(spec, "lab"))
    skips = [edge for edge in drawing.edges if edge.skip]
    assert [(edge.source, edge.target) for edge in skips] == [("n1-0", "n2-0"), ("n1-1", "n2-1"), ("n1-2", "n2-2")]
    assert all(edge.label == "" for edge in skips) and drawing.has_skips
    assert [caption for _, _, caption in drawing.captions] == ["input (3)", "hidden (3)", "residual (3)", "output (1)"]
    tex = derivation_document(spec, "lab")
    assert tex.count(r"\draw[skip]") == 3 and "A dashed arc is a skip connection" in tex
    arcs = [edge for edge in svg_drawing(drawing).edges if edge.path]
    assert len(arcs) == 3 and all(edge.path.startswith("M ") and " Q " in edge.path for edge in arcs)


def test_a_dense_network_has_no_skip_and_no_sentence_about_them():
    spec = load_spec("actuarial")
    drawing = network_drawing(spec, notation_for(spec, "lab"))
    assert not drawing.has_skips
    assert "skip" not in derivation_document(spec, "lab").split(r"\begin{document}")[1]


def test_the_trained_network_picture_draws_the_skips_and_counts_only_weights():
    pytest.importorskip("matplotlib")
    import numpy as np

    spec = load_spec(RESIDUAL)
    assert drawing_plan(spec).edges == 12 + 12 + 4  # the skips hold no weight
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(3, 3)), "b1": rng.normal(size=3), "W2": rng.normal(size=(3, 3)),
              "b2": rng.normal(size=3), "W3": rng.normal(size=(3, 1)), "b3": rng.normal(size=1)}
    stream = io.BytesIO()
    network_png(spec, params, stream)
    assert stream.getvalue().startswith(b"\x89PNG")


def test_dropout_on_the_output_layers_inputs_is_marked_under_the_output_as_under_a_hidden_layer():
    def spec_with(dropout: bool):
        return load_spec({"name": "dropped", "inputs": 2, "loss": "cross_entropy",
                          "layers": [{"units": 3, "activation": "tanh", **({"dropout": 0.2} if dropout else {})},
                                     {"units": 2, "activation": "softmax", **({"dropout": 0.5} if dropout else {})}]})

    spec = spec_with(dropout=True)
    drawing = network_drawing(spec, notation_for(spec, "lab"))
    assert [caption for _, _, caption in drawing.captions] == ["input (2)", "dropout (3)", "output, dropout (2)"]
    assert [caption for _, _, caption in svg_drawing(drawing).captions] == ["input (2)", "dropout (3)",
                                                                          "output, dropout (2)"]
    assert "output, dropout (2)" in derivation_document(spec, "lab")
    plain = spec_with(dropout=False)
    assert network_drawing(plain, notation_for(plain, "lab")).captions[-1][2] == "output (2)"


def test_a_long_caption_under_the_last_column_widens_the_svg_rather_than_run_off_it():
    spec = load_spec({"name": "dropped", "inputs": 2, "loss": "cross_entropy",
                      "layers": [{"units": 3, "activation": "tanh"},
                                 {"units": 2, "activation": "softmax", "dropout": 0.5}]})
    svg = svg_drawing(network_drawing(spec, notation_for(spec, "lab")))
    x, _, text = svg.captions[-1]
    assert text == "output, dropout (2)"
    # 14px text runs about 7.8px a character: half the caption must fit between its centre and the right edge.
    assert x + len(text) * 7.8 / 2 <= svg.width


POOLED = {
    "name": "pooled", "input_shape": [1, 4, 4], "loss": {"name": "squared_error"},
    "layers": [{"kind": "conv2d", "filters": 1, "kernel_size": 1, "activation": "relu"},
               {"kind": "max_pool2d", "pool_size": 2},
               {"kind": "avg_pool2d", "pool_size": [2, 1]},
               {"units": 1, "activation": "linear"}],
}


def test_a_pooling_unit_is_joined_to_the_inputs_of_its_window_through_no_weight():
    _, max_pool, avg_pool, _ = network_of(load_spec(POOLED)).layers
    # 4 x 4 in 2 x 2 windows: unit 1 reads rows 1-2, columns 1-2 (inputs 1, 2, 5, 6), and so on.
    windows = {1: {1, 2, 5, 6}, 2: {3, 4, 7, 8}, 3: {9, 10, 13, 14}, 4: {11, 12, 15, 16}}
    for layer, reads in ((max_pool, windows), (avg_pool, {1: {1, 3}, 2: {2, 4}})):
        edges = connections(layer)
        assert all(edge.fixed and edge.parameter is None and not edge.skip for edge in edges)
        assert {(edge.source, edge.target) for edge in edges} == {(i, j) for j, inputs in reads.items() for i in inputs}
    # Average pooling's 1/k is a fixed weight, not an input added as it is: no skip, unlike a residual layer.
    residual = network_of(load_spec(RESIDUAL)).layers[1]
    assert not any(edge.fixed for edge in connections(residual))


def test_the_trained_network_picture_draws_the_pooling_windows_in_grey_and_counts_only_weights():
    pytest.importorskip("matplotlib")
    import numpy as np
    from matplotlib.collections import LineCollection

    from symbp.cli.plots import FIXED_COLOUR, network_figure

    spec = load_spec(POOLED)
    assert drawing_plan(spec).edges == 16 + 16 + 2 + 1  # the conv's weights and biases, the last layer's: no window
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(1, 1, 1, 1)), "b1": rng.normal(size=1), "W4": rng.normal(size=(2, 1)),
              "b4": rng.normal(size=1)}
    figure = network_figure(spec, params)
    grey = [collection for collection in figure.axes[0].collections if isinstance(collection, LineCollection)
            and np.allclose(collection.get_colors()[0][:3], np.array([int(FIXED_COLOUR[i:i + 2], 16)
                                                                       for i in (1, 3, 5)]) / 255)]
    assert len(grey) == 1 and len(grey[0].get_segments()) == 16 + 4  # every input of every window, once
    assert "pooling" in figure.axes[0].get_title()
    stream = io.BytesIO()
    network_png(spec, params, stream)
    assert stream.getvalue().startswith(b"\x89PNG")


def test_the_svg_drawing_draws_the_pooling_windows_unlabelled_and_grey():
    spec = load_spec(POOLED)
    drawing = network_drawing(spec, notation_for(spec, "lab"))
    fixed = [edge for edge in drawing.edges if edge.fixed]
    # Drawn units only: the 16 units of the conv and the 4 of the max pooling are all shown up to 6.
    assert {(edge.source, edge.target) for edge in fixed if edge.target.startswith("n3-")} == \
        {("n2-0", "n3-0"), ("n2-2", "n3-0"), ("n2-1", "n3-1"), ("n2-3", "n3-1")}
    assert all(edge.label == "" and not edge.skip for edge in fixed) and not drawing.has_skips
    svg = svg_drawing(drawing)
    assert sum(edge.fixed for edge in svg.edges) == len(fixed) > 0
    # The kernel's entries have four indices, which the notations do not name: those edges go unlabelled.
    assert not [edge for edge in drawing.edges if edge.target.startswith("n1-") and edge.source.startswith("n0-")
                and edge.label]
