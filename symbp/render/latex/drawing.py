"""The network drawn as TikZ data: neurons, bias units and weighted edges, labelled in a notation.

Python decides what is drawn and where (wide layers show their first units, a gap, and the last);
``templates/latex/macros.tex.j2`` turns the result into TikZ commands. The edges are each layer's
connections (``symbp.symbolic.connections``): a weight or bias on each, a skip connection (an input
added unweighted, as in a residual layer) drawn as a dashed arc, and a fixed edge (an input a pooling unit
reads, through no weight) drawn unlabelled in grey.
"""

from __future__ import annotations

from dataclasses import dataclass

from symbp.render.latex.notation import Notation
from symbp.render.latex.printer import NotationPrinter
from symbp.spec.schema import Spec
from symbp.symbolic import quantities as q
from symbp.symbolic.connections import connections
from symbp.symbolic.network import network_of

# A layer with more units than this is drawn as its first units, a vertical ellipsis and its last unit.
MOST_UNITS_DRAWN = 6
SHOWN_BEFORE_GAP = 3
# Edges of a layer are all labelled (where a clear place exists) up to this many; beyond, those of its first unit.
MOST_LABELLED_EDGES = 36
COLUMN_SPACING = 4.4  # cm, at most: narrower when the layers would not fit the text width
ROW_SPACING = 1.35  # cm
# The drawing's columns span at most this (cm), which leaves room for the outer units and captions
# inside the text block of the documents' geometry (A4 or letter, 2.3 cm margins).
DRAWING_WIDTH = 13.0
# A weight label occupies about this box (cm); two labels closer than it in both directions collide.
LABEL_WIDTH = 0.85
LABEL_HEIGHT = 0.42
# Where along an edge a label may sit (fractions from the source), clear of the units at both ends.
LABEL_POSITIONS = tuple(round(0.2 + 0.05 * step, 2) for step in range(13))


@dataclass(frozen=True)
class Node:
    name: str
    x: float
    y: float
    label: str
    kind: str  # "input", "hidden", "output", "bias" or "gap"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    position: float
    skip: bool = False  # the source's value added to the target's pre-activation as it is: a dashed arc
    fixed: bool = False  # the source reaches the target through no weight (a pooling window): grey, unlabelled


@dataclass(frozen=True)
class Drawing:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    captions: tuple[tuple[float, float, str], ...]  # (x, y, text) under each column
    # Edges whose label found no clear place: (source's label, target's label, weight's label), for a legend.
    unlabelled: tuple[tuple[str, str, str], ...] = ()

    @property
    def has_skips(self) -> bool:
        return any(edge.skip for edge in self.edges)

    @property
    def has_fixed(self) -> bool:
        return any(edge.fixed for edge in self.edges)


def _shown(units: int) -> list[int | None]:
    """Unit numbers drawn for a layer; None marks the gap."""
    if units <= MOST_UNITS_DRAWN:
        return list(range(1, units + 1))
    return [*range(1, SHOWN_BEFORE_GAP + 1), None, units]


def network_drawing(spec: Spec, notation: Notation) -> Drawing:
    printer = NotationPrinter(notation)
    network = network_of(spec)
    sizes = spec.sizes
    biases = tuple(layer.bias for layer in spec.layers)
    depth = len(sizes) - 1
    nodes: list[Node] = []
    positions: dict[tuple[int, int], str] = {}
    bias_nodes: dict[int, str] = {}
    tallest = max(len(_shown(units)) for units in sizes)
    spacing = min(COLUMN_SPACING, DRAWING_WIDTH / max(depth, 1))
    for layer, units in enumerate(sizes):
        shown = _shown(units)
        x = layer * spacing
        top = (len(shown) - 1) / 2 * ROW_SPACING
        kind = "input" if layer == 0 else "output" if layer == depth else "hidden"
        for row, unit in enumerate(shown):
            y = top - row * ROW_SPACING
            name = f"n{layer}-{row}"
            if unit is None:
                nodes.append(Node(name, x, y, r"\vdots", "gap"))
                continue
            quantity = q.act(layer)[unit]
            nodes.append(Node(name, x, y, printer.doprint(quantity), kind))
            positions[(layer, unit)] = name
        if layer < depth and biases[layer]:
            name = f"b{layer}"
            nodes.append(Node(name, x, (tallest - 1) / 2 * ROW_SPACING + ROW_SPACING, "1", "bias"))
            bias_nodes[layer + 1] = name
    edges: list[Edge] = []
    intended: list[str] = []  # each edge's label before placement
    placed: list[tuple[float, float]] = []
    coordinates = {node.name: (node.x, node.y) for node in nodes}
    for layer, layer_model in enumerate(network.layers, start=1):
        drawn = [edge for edge in connections(layer_model) if _drawn(edge, layer, positions, bias_nodes)]
        label_all = len(drawn) <= MOST_LABELLED_EDGES
        for edge in drawn:
            source = bias_nodes[layer] if edge.source is None else positions[(layer - 1, edge.source)]
            target = positions[(layer, edge.target)]
            if edge.parameter is None:
                edges.append(Edge(source, target, "", 0.5, skip=edge.skip, fixed=edge.fixed))
                intended.append("")
                continue
            first = edge.target == 1 if edge.source is None else edge.source == 1
            # A convolution's kernel entry has four indices, which the notations do not name: its edge goes unlabelled.
            named = len(edge.parameter.shape) <= 2
            label = printer.doprint(edge.quantity) if named and (label_all or first) else ""
            edges.append(_edge(source, target, label, coordinates, placed))
            intended.append(label)
    bottom = -((tallest - 1) / 2 * ROW_SPACING) - ROW_SPACING
    kinds = ("input", *(layer.kind for layer in network.layers))
    captions = tuple((layer * spacing, bottom, _caption(layer, depth, sizes[layer], kinds[layer]))
                     for layer in range(depth + 1))
    labels = {node.name: node.label for node in nodes}
    unlabelled = tuple((labels[edge.source], labels[edge.target], dropped) for edge, dropped in zip(edges, intended)
                       if dropped and not edge.label)
    return Drawing(tuple(nodes), tuple(edges), captions, unlabelled)


def _drawn(edge, layer: int, positions: dict, bias_nodes: dict) -> bool:
    """Whether both ends of a connection into ``layer`` are drawn (a wide layer leaves some units out)."""
    source_drawn = layer in bias_nodes if edge.source is None else (layer - 1, edge.source) in positions
    return source_drawn and (layer, edge.target) in positions


def _edge(source: str, target: str, label: str, coordinates: dict, placed: list) -> Edge:
    """An edge whose label sits where it is clearest of the labels placed so far; unlabelled when no
    place along the edge is clear (its weight is then still named in the text, never drawn over)."""
    if not label:
        return Edge(source, target, "", 0.5)
    (x0, y0), (x1, y1) = coordinates[source], coordinates[target]

    def clearance(position: float) -> float:
        x, y = x0 + position * (x1 - x0), y0 + position * (y1 - y0)
        return min((max(abs(x - px) / LABEL_WIDTH, abs(y - py) / LABEL_HEIGHT) for px, py in placed), default=2.0)

    # The clearest place, and among equally clear ones (all clear), the one nearest the middle.
    best = max(LABEL_POSITIONS, key=lambda position: (min(clearance(position), 1.5), -abs(position - 0.5)))
    if clearance(best) < 1:
        return Edge(source, target, "", 0.5)
    placed.append((x0 + best * (x1 - x0), y0 + best * (y1 - y0)))
    return Edge(source, target, label, best)


def _caption(layer: int, depth: int, units: int, kind: str) -> str:
    """Under each column: what it is and how many units it has; a layer of a kind other than dense by its
    kind ("residual (4)"), the output layer too ("output, dropout (2)": its inputs are dropped)."""
    if layer == 0:
        return f"input ({units})"
    named = "" if kind == "dense" else kind.replace("_", " ")
    if layer == depth:
        return f"output, {named} ({units})" if named else f"output ({units})"
    return f"{named or 'hidden'} ({units})"
