"""The network drawing as inline SVG data: the nodes, edges and captions that ``symbp.render.latex.drawing``
lays out for TikZ, turned from centimetres (y up) into pixels (y down) for ``templates/html/macros.html.j2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from symbp.render.latex.drawing import Drawing

PIXELS_PER_CM = 52.0
UNIT_RADIUS_CM = 0.5  # the TikZ units are 10 mm circles
MARGIN_PX = 12.0
CAPTION_HALF_WIDTH_CM = 1.1
# A caption character's width at the captions' 14px, in cm: a long caption under the first or last column
# ("output, layer norm (2)") widens the picture rather than run off its edge.
CAPTION_CHARACTER_CM = 0.15
# A weight label's box (px): MathML sits centred in it on a white ground, as TikZ's fill=white does.
LABEL_BOX = (64.0, 24.0)
# A skip connection's arc leaves and meets its units at this angle to the straight line, as TikZ's bend left=32.
SKIP_BEND = math.radians(32)


@dataclass(frozen=True)
class SvgNode:
    x: float
    y: float
    radius: float
    label: str  # LaTeX, printed by the notation printer
    kind: str


@dataclass(frozen=True)
class SvgEdge:
    x1: float
    y1: float
    x2: float
    y2: float
    label: str
    label_x: float  # the label box's top left corner
    label_y: float
    path: str = ""  # a skip connection's arc (SVG path data); empty for a straight edge
    fixed: bool = False  # an input a pooling unit reads, through no weight: drawn in a lighter grey


@dataclass(frozen=True)
class SvgDrawing:
    width: float
    height: float
    nodes: tuple[SvgNode, ...]
    edges: tuple[SvgEdge, ...]
    captions: tuple[tuple[float, float, str], ...]
    label_box: tuple[float, float] = LABEL_BOX


def _skip_arc(at, start_centre, end_centre, direction, length) -> SvgEdge:
    """A dashed arc bending to the left of the straight line (upwards between units side by side), from
    circle to circle: a quadratic curve whose tangents make ``SKIP_BEND`` with the line at both ends."""
    (x0, y0), (x1, y1), (ux, uy) = start_centre, end_centre, direction
    cos, sin = math.cos(SKIP_BEND), math.sin(SKIP_BEND)
    leaving = (ux * cos - uy * sin, uy * cos + ux * sin)  # the direction turned left
    arriving = (ux * cos + uy * sin, uy * cos - ux * sin)  # turned right
    start = at(x0 + leaving[0] * UNIT_RADIUS_CM, y0 + leaving[1] * UNIT_RADIUS_CM)
    end = at(x1 - arriving[0] * UNIT_RADIUS_CM, y1 - arriving[1] * UNIT_RADIUS_CM)
    lift = length / 2 * math.tan(SKIP_BEND)
    control = at((x0 + x1) / 2 - uy * lift, (y0 + y1) / 2 + ux * lift)
    path = f"M {start[0]} {start[1]} Q {control[0]} {control[1]} {end[0]} {end[1]}"
    return SvgEdge(*start, *end, "", 0.0, 0.0, path)


def svg_drawing(drawing: Drawing) -> SvgDrawing:
    xs = [node.x for node in drawing.nodes] + [x for x, _, _ in drawing.captions]
    ys = [node.y for node in drawing.nodes] + [y for _, y, _ in drawing.captions]
    halves = [(x, max(CAPTION_HALF_WIDTH_CM, len(text) * CAPTION_CHARACTER_CM / 2)) for x, _, text in drawing.captions]
    left = min(min(xs) - CAPTION_HALF_WIDTH_CM, *(x - half for x, half in halves))
    right = max(max(xs) + CAPTION_HALF_WIDTH_CM, *(x + half for x, half in halves))
    top = max(ys) + UNIT_RADIUS_CM

    def at(x: float, y: float) -> tuple[float, float]:
        return (round((x - left) * PIXELS_PER_CM + MARGIN_PX, 1), round((top - y) * PIXELS_PER_CM + MARGIN_PX, 1))

    radius = UNIT_RADIUS_CM * PIXELS_PER_CM
    nodes = tuple(SvgNode(*at(node.x, node.y), radius, node.label, node.kind) for node in drawing.nodes)
    where = {node.name: (node.x, node.y) for node in drawing.nodes}
    edges = []
    for edge in drawing.edges:
        (x0, y0), (x1, y1) = where[edge.source], where[edge.target]
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        if edge.skip:
            edges.append(_skip_arc(at, (x0, y0), (x1, y1), (ux, uy), length))
            continue
        # From circle to circle, as TikZ draws between node borders.
        start = at(x0 + ux * UNIT_RADIUS_CM, y0 + uy * UNIT_RADIUS_CM)
        end = at(x1 - ux * UNIT_RADIUS_CM, y1 - uy * UNIT_RADIUS_CM)
        lx, ly = at(x0 + edge.position * (x1 - x0), y0 + edge.position * (y1 - y0))
        corner = (round(lx - LABEL_BOX[0] / 2, 1), round(ly - LABEL_BOX[1] / 2, 1))
        edges.append(SvgEdge(*start, *end, edge.label, *corner, fixed=edge.fixed))
    captions = tuple((*at(x, y), text) for x, y, text in drawing.captions)
    width = (right - left) * PIXELS_PER_CM + 2 * MARGIN_PX
    height = (top - min(ys) + 0.4) * PIXELS_PER_CM + 2 * MARGIN_PX
    return SvgDrawing(round(width, 1), round(height, 1), nodes, tuple(edges), captions)
