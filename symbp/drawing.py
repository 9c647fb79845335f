"""The network drawn as TikZ data: neurons, bias units and weighted edges, labelled in a notation.

Python decides what is drawn and where (wide layers show their first units, a gap, and the last);
``templates/latex/macros.tex.j2`` turns the result into TikZ commands.
"""

from __future__ import annotations

from dataclasses import dataclass

from symbp import quantities as q
from symbp.latex import NotationPrinter
from symbp.notation import Notation

# A layer with more units than this is drawn as its first units, a vertical ellipsis and its last unit.
MOST_UNITS_DRAWN = 6
SHOWN_BEFORE_GAP = 3
# Edges of a layer are all labelled up to this many; beyond it, only those of its first unit.
MOST_LABELLED_EDGES = 12
COLUMN_SPACING = 4.4  # cm
ROW_SPACING = 1.35  # cm


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


@dataclass(frozen=True)
class Drawing:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    captions: tuple[tuple[float, float, str], ...]  # (x, y, text) under each column


def _shown(units: int) -> list[int | None]:
    """Unit numbers drawn for a layer; None marks the gap."""
    if units <= MOST_UNITS_DRAWN:
        return list(range(1, units + 1))
    return [*range(1, SHOWN_BEFORE_GAP + 1), None, units]


def network_drawing(sizes: tuple[int, ...], biases: tuple[bool, ...], notation: Notation) -> Drawing:
    printer = NotationPrinter(notation)
    depth = len(sizes) - 1
    nodes: list[Node] = []
    positions: dict[tuple[int, int], str] = {}
    bias_nodes: dict[int, str] = {}
    tallest = max(len(_shown(units)) for units in sizes)
    for layer, units in enumerate(sizes):
        shown = _shown(units)
        x = layer * COLUMN_SPACING
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
    for layer in range(1, depth + 1):
        sources = [u for u in _shown(sizes[layer - 1]) if u is not None]
        targets = [u for u in _shown(sizes[layer]) if u is not None]
        count = len(sources) * len(targets) + (len(targets) if layer in bias_nodes else 0)
        label_all = count <= MOST_LABELLED_EDGES
        # The labels of each source's edges sit at their own distance along the edges, so that labels
        # of edges fanning out of one unit are apart, and those of different units do not meet.
        starts = len(sources) + (1 if layer in bias_nodes else 0)

        def along(rank, starts=starts):
            return 0.22 + 0.5 * rank / max(starts - 1, 1)

        for position, target in enumerate(targets):
            for rank, source in enumerate(sources):
                label = printer.doprint(q.weight(layer)[source, target]) if label_all or source == 1 else ""
                # Only the first unit's edges are labelled in a wide layer: spread those along their edges.
                at = along(rank) if label_all else 0.2 + 0.5 * position / max(len(targets) - 1, 1)
                edges.append(Edge(positions[(layer - 1, source)], positions[(layer, target)], label, at))
            if layer in bias_nodes:
                label = printer.doprint(q.bias(layer)[target]) if label_all or target == 1 else ""
                edges.append(Edge(bias_nodes[layer], positions[(layer, target)], label, along(len(sources))))
    bottom = -((tallest - 1) / 2 * ROW_SPACING) - ROW_SPACING
    captions = tuple((layer * COLUMN_SPACING, bottom, _caption(layer, depth, sizes[layer]))
                     for layer in range(depth + 1))
    return Drawing(tuple(nodes), tuple(edges), captions)


def _caption(layer: int, depth: int, units: int) -> str:
    if layer == 0:
        return f"input ({units})"
    what = "output" if layer == depth else "hidden"
    return f"{what} ({units})"
