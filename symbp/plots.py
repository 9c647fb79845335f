"""PNG pictures of a training run: the loss curve, and the trained network with its weights on the edges.

matplotlib is an optional extra (``pip install 'symbp[plot]'``). Figures are built with matplotlib's
object API rather than pyplot, so no display or global backend is touched.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np

from symbp.errors import SymbpError
from symbp.spec import Spec

# Past this many edges the weight labels overlap into an unreadable block.
MAX_DRAWN_WEIGHTS = 120
# Units sit one apart in a layer; layers sit this far apart so the labelled edges have room.
LAYER_SPACING = 2.4
INCHES_PER_UNIT = 0.9
POSITIVE, NEGATIVE = "#2e8b57", "#c0392b"


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SymbpError("PNG output needs matplotlib: pip install 'symbp[plot]'") from None
    return Figure(figsize=(width, height), dpi=100)


def require_matplotlib() -> None:
    """Fails early, before a long training run, when a PNG is asked for and matplotlib is missing."""
    _figure(1, 1)


def loss_curve_png(history: list[float], stream: BinaryIO, title: str) -> None:
    figure = _figure(6, 4)
    axes = figure.subplots()
    epochs = np.arange(1, len(history) + 1)
    values = np.asarray(history, dtype=float)
    axes.plot(epochs, values, color="#1f4e79", linewidth=1.5)
    # A loss that falls over decades reads best on a log scale; one that merely levels off does not.
    if values.size and (values > 0).all() and values.max() / values.min() > 100:
        axes.set_yscale("log")
    axes.set_xlabel("epoch")
    axes.set_ylabel("loss")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(stream, format="png")


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


def check_drawable(spec: Spec) -> None:
    if spec.parameter_count > MAX_DRAWN_WEIGHTS:
        raise SymbpError(f"--draw: the network has {spec.parameter_count} weights; a drawing of them is readable "
                         f"only up to {MAX_DRAWN_WEIGHTS}")


def network_png(spec: Spec, params: dict[str, np.ndarray], stream: BinaryIO) -> None:
    """Every unit as a circle, bias neurons (B) above their layer, each weight as a labelled edge:
    green when positive, red when negative, thicker when larger."""
    check_drawable(spec)
    names = _node_names(spec)
    tallest = max(len(column) + 1 for column in names)
    width, height = LAYER_SPACING * (len(names) - 1) + 1.0, tallest + 1.0
    figure = _figure(INCHES_PER_UNIT * width + 0.5, INCHES_PER_UNIT * height + 0.8)
    axes = figure.subplots()
    axes.set_axis_off()

    def position(column: int, row: int, size: int) -> tuple[float, float]:
        return LAYER_SPACING * column, (size - 1) / 2.0 - row

    edges = []  # (start, end, weight)
    for index, layer in enumerate(spec.layers, start=1):
        before, after = len(names[index - 1]), len(names[index])
        weights = params[f"W{index}"]
        for i in range(before):
            for j in range(after):
                edges.append((position(index - 1, i, before), position(index, j, after), float(weights[i, j])))
        if layer.bias:
            bias_at = (LAYER_SPACING * (index - 1), (before - 1) / 2.0 + 1.0)
            for j in range(after):
                edges.append((bias_at, position(index, j, after), float(params[f"b{index}"][j])))
            axes.add_patch(_circle(bias_at, "#d9d9d9"))
            axes.text(*bias_at, f"B{index}", ha="center", va="center", fontsize=9, zorder=4)
    largest = max((abs(weight) for _, _, weight in edges), default=1.0) or 1.0
    for (x0, y0), (x1, y1), weight in edges:
        colour = POSITIVE if weight >= 0 else NEGATIVE
        axes.plot([x0, x1], [y0, y1], color=colour, linewidth=0.6 + 3.0 * abs(weight) / largest, zorder=1)
        # Labels sit nearer the receiving unit, where edges into one unit fan apart.
        lx, ly = x0 + 0.7 * (x1 - x0), y0 + 0.7 * (y1 - y0)
        axes.text(lx, ly, f"{weight:.2f}", fontsize=7, ha="center", va="center", color=colour, zorder=3,
                  bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85})
    for column, column_names in enumerate(names):
        for row, name in enumerate(column_names):
            at = position(column, row, len(column_names))
            axes.add_patch(_circle(at, "#cfe2f3"))
            axes.text(*at, name, ha="center", va="center", fontsize=9, zorder=4)
    axes.set_xlim(-0.5, width - 0.5)
    axes.set_ylim(-tallest / 2.0 - 0.2, tallest / 2.0 + 0.7)
    axes.set_aspect("equal")
    axes.set_title(f"{spec.name}: trained weights")
    figure.tight_layout()
    figure.savefig(stream, format="png")


def _circle(centre: tuple[float, float], colour: str):
    from matplotlib.patches import Circle

    return Circle(centre, 0.2, facecolor=colour, edgecolor="#404040", zorder=2)
