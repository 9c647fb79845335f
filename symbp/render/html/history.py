"""A training history that draws itself: in a notebook, the loss curve of each epoch as SVG.

``History`` wraps the dict that a generated module's ``train`` returns (``loss``, ``val_loss``, ``stopped``,
``best_epoch``) and stays that dict in every way; the generated module itself knows nothing of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

WIDTH, HEIGHT = 640, 360
MARGIN = {"left": 72, "right": 20, "top": 36, "bottom": 48}


class History(dict):
    """``symbp.History(history)``: the training history, displayed in Jupyter as its loss curve."""

    def _repr_svg_(self) -> str:
        return loss_curve_svg(self)


@dataclass(frozen=True)
class Axis:
    low: float
    high: float
    ticks: tuple[tuple[float, str], ...]  # (value, label); values on the axis's own scale
    logarithmic: bool = False


def _nice_step(span: float, count: int = 5) -> float:
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= raw)


def _linear_axis(low: float, high: float, integers: bool = False) -> Axis:
    if high <= low:
        low, high = low - 0.5, high + 0.5
    step = _nice_step(high - low)
    if integers:
        step = max(1.0, math.ceil(step))
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 1e-9:
        if value >= low - step * 1e-9:
            ticks.append((value, f"{value:g}"))
        value += step
    return Axis(low, high, tuple(ticks))


def _loss_axis(values: list[float]) -> Axis:
    """Logarithmic when the losses span more than two decades (training often falls that far), else linear."""
    low, high = min(values), max(values)
    if low > 0 and high / low > 100:
        first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
        every = max(1, math.ceil((last - first) / 8))
        ticks = tuple((float(power), f"1e{power}") for power in range(first, last + 1, every))
        return Axis(float(first), float(last), ticks, logarithmic=True)
    return _linear_axis(low, high)


def loss_curve_svg(history: dict) -> str:
    """The loss per epoch (and the validation loss, dashed), with the epoch whose parameters were restored."""
    from markupsafe import escape

    losses = [float(value) for value in history.get("loss", [])]
    validation = [float(value) for value in history.get("val_loss", []) or []]
    finite = [value for value in losses + validation if math.isfinite(value)]
    stopped = history.get("stopped") or ""
    if not finite:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="60"><text x="10" y="35" '
                f'font-family="sans-serif" font-size="14">no epoch completed {escape(stopped)}</text></svg>')
    epochs = _linear_axis(1, max(len(losses), len(validation), 2), integers=True)
    loss_axis = _loss_axis(finite)
    left, right = MARGIN["left"], WIDTH - MARGIN["right"]
    top, bottom = MARGIN["top"], HEIGHT - MARGIN["bottom"]

    def x_of(epoch: float) -> float:
        return round(left + (epoch - epochs.low) / (epochs.high - epochs.low) * (right - left), 2)

    def y_of(value: float) -> float:
        scaled = math.log10(value) if loss_axis.logarithmic else value
        return round(bottom - (scaled - loss_axis.low) / (loss_axis.high - loss_axis.low) * (bottom - top), 2)

    def points(series: list[float]) -> str:
        return " ".join(f"{x_of(epoch)},{y_of(value)}" for epoch, value in enumerate(series, start=1)
                        if math.isfinite(value) and (value > 0 or not loss_axis.logarithmic))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
             f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="white" stroke="#999"/>']
    for value, label in loss_axis.ticks:
        y = round(bottom - (value - loss_axis.low) / (loss_axis.high - loss_axis.low) * (bottom - top), 2)
        parts.append(f'<line x1="{left}" x2="{right}" y1="{y}" y2="{y}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{label}</text>')
    for value, label in epochs.ticks:
        parts.append(f'<text x="{x_of(value)}" y="{bottom + 18}" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{(left + right) / 2}" y="{HEIGHT - 10}" text-anchor="middle">epoch</text>')
    scale = " (log scale)" if loss_axis.logarithmic else ""
    parts.append(f'<text x="16" y="{(top + bottom) / 2}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {(top + bottom) / 2})">loss{scale}</text>')
    best = history.get("best_epoch")
    if best:
        parts.append(f'<line x1="{x_of(best)}" x2="{x_of(best)}" y1="{top}" y2="{bottom}" stroke="#2a7" '
                     f'stroke-dasharray="2 3"/>')
        parts.append(f'<text x="{x_of(best) + 4}" y="{top + 14}" fill="#2a7">restored: epoch {best}</text>')
    parts.append(f'<polyline fill="none" stroke="#1f5fa8" stroke-width="1.6" points="{points(losses)}"/>')
    legend = [("#1f5fa8", "", "training loss")]
    if validation:
        parts.append(f'<polyline fill="none" stroke="#d2691e" stroke-width="1.6" stroke-dasharray="6 3" '
                     f'points="{points(validation)}"/>')
        legend.append(("#d2691e", ' stroke-dasharray="6 3"', "validation loss"))
    for row, (colour, dash, text) in enumerate(legend):
        y = top + 16 + 16 * row
        parts.append(f'<line x1="{right - 150}" x2="{right - 124}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" '
                     f'stroke-width="1.6"{dash}/><text x="{right - 118}" y="{y}">{text}</text>')
    final = losses[-1] if losses else float("nan")
    title = f"{len(losses)} epochs, stopped: {stopped or 'unknown'}; final training loss {final:.6g}"
    parts.append(f'<text x="{left}" y="{top - 12}" font-size="13">{escape(title)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
