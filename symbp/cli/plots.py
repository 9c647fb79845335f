"""PNG pictures of a training run: the loss curves, and the trained network with its weights.

matplotlib is an optional extra (``pip install 'symbp[plot]'``). Figures are built with matplotlib's
object API rather than pyplot, so no display or global backend is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from symbp.errors import SymbpError
from symbp.spec.schema import Spec
from symbp.symbolic.connections import connections
from symbp.symbolic.network import network_of

# A layer's weights are written on its edges only when it has this few (bias edges included):
# beyond it, labels overlap (a 4-5-3 network's first layer has 25).
MAX_LABELLED_EDGES = 12
# Units are named (X1, Z1, Y1) in columns of up to this many; taller columns are counted instead.
MAX_NAMED_UNITS = 12
# Past this many edges only the strongest are drawn: the rest would merge into a grey block anyway.
MAX_DRAWN_EDGES = 20000
# A column taller than this many unit spacings is squeezed to this height.
TALLEST_COLUMN = 16
LAYER_SPACING = 2.4
INCHES_PER_UNIT = 0.55
LABELLED_INCHES_PER_UNIT = 1.0
COLORMAP = "RdBu_r"  # diverging: negative weights blue, positive red, zero white
UNIT_COLOUR, BIAS_COLOUR, LINE_COLOUR, SKIP_COLOUR = "#cfe2f3", "#d9d9d9", "#404040", "#3d3d99"
FIXED_COLOUR = "#8c8c8c"  # an edge that holds no weight (a pooling window's): grey, outside the colour scale
TRAINING_COLOUR, VALIDATION_COLOUR = "#1f4e79", "#c55a11"


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SymbpError("PNG output needs matplotlib: pip install 'symbp[plot]'") from None
    return Figure(figsize=(width, height), dpi=100)


def require_matplotlib() -> None:
    """Fails early, before a long training run, when a PNG is asked for and matplotlib is missing."""
    _figure(1, 1)


def loss_curve_png(history: dict, stream: BinaryIO, name: str, label: str,
                   rows: tuple[int | None, int | None] = (None, None)) -> None:
    """history["loss"] (and history["val_loss"] when present) per epoch, with a legend naming each
    set (and its number of rows when given in ``rows``); the epoch whose parameters early stopping
    restored is marked."""
    figure = _figure(6, 4)
    axes = figure.subplots()

    def named(which: str, count: int | None) -> str:
        return which if count is None else f"{which} ({count} samples)"

    curves = [(named("training", rows[0]), history["loss"], TRAINING_COLOUR)]
    if history.get("val_loss") is not None:
        curves.append((named("validation", rows[1]), history["val_loss"], VALIDATION_COLOUR))
    every = np.concatenate([np.asarray(values, dtype=float) for _, values, _ in curves])
    for which, values, colour in curves:
        axes.plot(np.arange(1, len(values) + 1), values, color=colour, linewidth=1.5, label=which)
    best = history.get("best_epoch")
    if best is not None:
        axes.axvline(best + 1, color="#7f7f7f", linestyle="--", linewidth=1, label=f"best epoch ({best + 1})")
    # A loss that falls over decades reads best on a log scale; one that merely levels off does not.
    if every.size and (every > 0).all() and every.max() / every.min() > 100:
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel(label)
    axes.set_title(f"{name}: loss on the whole {'training and validation sets' if len(curves) > 1 else 'training set'}")
    axes.grid(True, alpha=0.3)
    if len(curves) > 1 or best is not None:
        axes.legend()
    figure.tight_layout()
    figure.savefig(stream, format="png")


@dataclass(frozen=True)
class DrawingPlan:
    """What a drawing of the network shows, decided from the spec alone (before any training)."""

    labelled_layers: frozenset[int]  # layers (from 1) whose weights are written on the edges
    named_columns: frozenset[int]  # columns (0 = inputs) whose units carry names
    edges: int
    drawn_edges: int

    @property
    def note(self) -> str | None:
        """What the picture leaves out, in words; None when it shows every weight with its value."""
        if self.drawn_edges < self.edges:
            return (f"the {self.drawn_edges} strongest of {self.edges} weights drawn, by the width and colour "
                    "of their edges")
        if not self.labelled_layers:
            return f"{self.edges} weights shown by the width and colour of their edges (too many to label)"
        return None


def _edge_counts(spec: Spec) -> list[int]:
    """Each layer's weighted edges (bias edges included; a skip connection holds no weight)."""
    return [sum(1 for edge in connections(layer) if edge.parameter is not None) for layer in network_of(spec).layers]


def drawing_plan(spec: Spec) -> DrawingPlan:
    counts = _edge_counts(spec)
    columns = [spec.inputs, *(layer.units for layer in spec.layers)]
    return DrawingPlan(
        labelled_layers=frozenset(index for index, count in enumerate(counts, start=1) if count <= MAX_LABELLED_EDGES),
        named_columns=frozenset(index for index, size in enumerate(columns) if size <= MAX_NAMED_UNITS),
        edges=sum(counts),
        drawn_edges=min(sum(counts), MAX_DRAWN_EDGES),
    )


def _node_names(spec: Spec) -> list[list[str]]:
    """Fausett's names: inputs X, hidden units Z (numbered by layer when there are several), outputs Y."""
    hidden_layers = len(spec.layers) - 1
    columns = [[f"X{i}" for i in range(1, spec.inputs + 1)]]
    for index, layer in enumerate(spec.layers, start=1):
        if index == len(spec.layers):
            prefix = "Y"
        else:
            prefix = "Z" if hidden_layers == 1 else f"Z{index}."
        columns.append([f"{prefix}{j}" for j in range(1, layer.units + 1)])
    return columns


def _column_heights(sizes: list[int]) -> list[np.ndarray]:
    """Each unit's height: one apart, centred on 0; a tall column squeezed into TALLEST_COLUMN."""
    heights = []
    for size in sizes:
        spacing = 1.0 if size <= TALLEST_COLUMN else (TALLEST_COLUMN - 1) / (size - 1)
        heights.append(((size - 1) / 2.0 - np.arange(size)) * spacing)
    return heights


def network_png(spec: Spec, params: dict[str, np.ndarray], stream: BinaryIO, plan: DrawingPlan | None = None) -> None:
    """``network_figure`` written as a PNG."""
    network_figure(spec, params, plan).savefig(stream, format="png", bbox_inches="tight")


def network_figure(spec: Spec, params: dict[str, np.ndarray], plan: DrawingPlan | None = None):
    """Every unit as a circle (bias units B above their layer), every weight as an edge whose colour
    (a diverging colour map, with a colour bar) gives its sign and size and whose width its size;
    weight values written on the edges of layers small enough for them to fit. An input added as it is
    (a skip) is a dashed arc; one that reaches a unit through no weight (a pooling window's) a thin grey line."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    plan = plan or drawing_plan(spec)
    names = _node_names(spec)
    sizes = [len(column) for column in names]
    heights = _column_heights(sizes)
    top = max(float(column[0]) for column in heights) + 1.0
    # Tall networks get wider gaps between layers, so the picture stays near a landscape page's shape.
    gap = max(LAYER_SPACING, 0.5 * max(float(h[0] - h[-1]) for h in heights))
    starts, ends, weights, layer_of = [], [], [], []
    bias_units, skips, fixed = [], [], []
    sources = {}
    for index, layer in enumerate(network_of(spec).layers, start=1):
        x0, x1 = gap * (index - 1), gap * index
        bias_at = (x0, float(heights[index - 1][0]) + 1.0)
        edges = connections(layer)
        # A bias unit wherever an edge starts from none of the inputs: a bias, or a normalised layer's shift.
        constant = any(edge.source is None for edge in edges)
        if constant:
            bias_units.append((bias_at, f"B{index}"))
        sources[index] = layer.fan_in + int(constant)
        for edge in edges:
            start = bias_at if edge.source is None else (x0, float(heights[index - 1][edge.source - 1]))
            end = (x1, float(heights[index][edge.target - 1]))
            if edge.parameter is None:
                (skips if edge.skip else fixed).append((start, end))
                continue
            starts.append(start)
            ends.append(end)
            weights.append(float(np.asarray(params[edge.parameter.name], dtype=float)[edge.entry]))
            layer_of.append(index)
    weights = np.asarray(weights)
    largest = float(np.abs(weights).max()) if weights.size else 1.0
    largest = largest or 1.0
    # Weakest first, so the strong edges are drawn on top; only the strongest when there are too many.
    order = np.argsort(np.abs(weights), kind="stable")[-plan.drawn_edges:]
    many = len(order) > 200
    norm = Normalize(-largest, largest)
    cmap = colormaps[COLORMAP]
    segments = [(starts[k], ends[k]) for k in order]
    strength = np.abs(weights[order]) / largest
    widths = (0.2 + 1.3 * strength) if many else (0.8 + 3.2 * strength)

    # Labelled edges need room between their stacked labels.
    scale = LABELLED_INCHES_PER_UNIT if plan.labelled_layers else INCHES_PER_UNIT
    width_inches = scale * gap * (len(names) - 1) + 3.2
    tallest = max(float(h[0] - h[-1]) for h in heights) + 2.0
    figure = _figure(max(width_inches, 5.0), max(scale * tallest + 1.2, 3.5))
    axes = figure.subplots()
    axes.set_axis_off()
    if fixed:  # under the weights: a pooling unit's window, which no weight scales
        axes.add_collection(LineCollection(fixed, colors=FIXED_COLOUR, linewidths=0.3 if len(fixed) > 200 else 1.0,
                                           zorder=0.9))
    axes.add_collection(LineCollection(segments, colors=cmap(norm(weights[order])), linewidths=widths,
                                       alpha=0.8 if many else 1.0, zorder=1))
    for k in order:
        if layer_of[k] in plan.labelled_layers:
            (xa, ya), (xb, yb) = starts[k], ends[k]
            # With n sources one apart, labels n/(n+1) of the way along stack in one evenly spaced column.
            t = sources[layer_of[k]] / (sources[layer_of[k]] + 1)
            axes.text(xa + t * (xb - xa), ya + t * (yb - ya), f"{weights[k]:.2f}", fontsize=7, ha="center",
                      va="center", zorder=3, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                                                    "edgecolor": "none", "alpha": 0.85})
    for column, (column_names, column_heights) in enumerate(zip(names, heights)):
        x = gap * column
        named = column in plan.named_columns
        radius = 0.2 if named else min(0.2, 0.4 * (column_heights[0] - column_heights[1]) if len(column_heights) > 1
                                       else 0.2)
        for name, h in zip(column_names, column_heights):
            axes.add_patch(_circle((x, float(h)), UNIT_COLOUR, radius))
            if named:
                axes.text(x, float(h), name, ha="center", va="center", fontsize=8, zorder=4)
        if not named:
            kind = "inputs" if column == 0 else ("outputs" if column == len(names) - 1 else "units")
            axes.text(x, float(column_heights[-1]) - 0.8, f"{len(column_names)} {kind}", ha="center", va="top",
                      fontsize=8)
    for start, end in skips:  # an input added unweighted: a dashed arc, outside the colour scale
        axes.add_patch(_skip_arc(start, end))
    for at, name in bias_units:
        axes.add_patch(_circle(at, BIAS_COLOUR, 0.2))
        axes.text(*at, name, ha="center", va="center", fontsize=7, zorder=4)
    colour_bar = figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes, fraction=0.05, pad=0.02)
    colour_bar.set_label("weight (edge width grows with |weight|)")
    bottom = min(float(h[-1]) for h in heights) - 1.3
    axes.set_xlim(-0.6, gap * (len(names) - 1) + 0.6)
    axes.set_ylim(bottom, top + 0.5)
    axes.set_aspect("equal")
    title = f"{spec.name}: trained weights"
    if plan.drawn_edges < plan.edges:
        title += f" (the {plan.drawn_edges} strongest of {plan.edges})"
    if skips:
        title += "\ndashed: skip connections (input added unweighted)"
    if fixed:
        title += "\ngrey: the inputs each pooling unit reads (no weight)"
    axes.set_title(title)
    return figure


def _skip_arc(start: tuple[float, float], end: tuple[float, float]):
    from matplotlib.patches import FancyArrowPatch

    return FancyArrowPatch(start, end, connectionstyle="arc3,rad=-0.3", arrowstyle="-|>", mutation_scale=8,
                           linestyle="--", linewidth=1.0, color=SKIP_COLOUR, shrinkA=9, shrinkB=9, zorder=1.5)


def _circle(centre: tuple[float, float], colour: str, radius: float):
    from matplotlib.patches import Circle

    return Circle(centre, radius, facecolor=colour, edgecolor=LINE_COLOUR, linewidth=0.8, zorder=2)
