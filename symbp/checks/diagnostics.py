"""Plain-language hints from the report that a generated module's ``diagnose()`` returns.

The report holds numbers only (see ``diagnose`` in any generated module). This module words them
as the usual failure modes of training a small network: saturated sigmoid/tanh units, dead ReLUs,
vanishing or exploding gradients across layers, and a loss that rises because the learning rate is
too high. Each hint carries its numbers and a suggested fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

# A hint is given when at least this share of a layer's units is saturated or dead.
SATURATED_SHARE = 0.25
DEAD_SHARE = 0.25
# First-to-last gradient norm ratios beyond these suggest vanishing or exploding gradients.
VANISHING_RATIO = 1e-2
EXPLODING_RATIO = 20.0
# Gradients smaller than this everywhere mean training has nowhere left to go.
STALLED_NORM = 1e-7
# A loss that went up in more than this share of epochs, climbing back more than CLIMB_SHARE of
# the way it had come down, is oscillating; a smaller climb is the wobble of stochastic steps.
OSCILLATING_SHARE = 0.3
CLIMB_SHARE = 0.5
# Hints that follow from a loss that blew up, and say nothing more once it is named.
CONSEQUENCES_OF_A_BLOW_UP = ("saturation", "dead units", "vanishing gradients", "exploding gradients", "stalled")


@dataclass(frozen=True)
class Hint:
    problem: str  # a short tag: saturation, dead units, vanishing, exploding, stalled, rising loss, not finite
    message: str


def report_for(module: ModuleType, params: dict, X, Y, history: dict | list[float] | None = None) -> str:
    """The diagnostics of ``params`` on (X, Y) as text: a table of numbers per layer, then hints.

    history is what train() returned (or its list of losses).
    """
    return format_report(module.diagnose(params, X, Y, history))


def hints(report: dict) -> list[Hint]:
    """The problems the report shows, each named once, causes before their consequences.

    The output layer's saturation is no problem (a confident classifier saturates its output, and the
    losses paired with sigmoid and softmax keep their gradient there); vanishing gradients are not
    named again when saturated or dead units explain them; and once the loss has blown up, the
    saturated units and uneven gradients it leaves behind are its consequences, not causes.
    """
    trend = report.get("history")
    blown_up = _blown_up(trend)
    found = [] if blown_up else _not_finite(report)
    for layer in report["layers"][:-1]:
        found += _saturation(layer)
    for layer in report["layers"]:
        found += _dead_units(layer)
    if not found:
        found += _gradient_flow(report)
    else:
        found += [hint for hint in _gradient_flow(report) if hint.problem != "vanishing gradients"]
    rising = _loss_trend(trend)
    if blown_up:
        found = [hint for hint in found if hint.problem not in CONSEQUENCES_OF_A_BLOW_UP]
    return found + rising


def _blown_up(trend: dict | None) -> bool:
    """True when training diverged, or ended with a loss above the one it started from."""
    if not trend:
        return False
    return trend.get("stopped") == "diverged" or (trend["epochs"] > 1 and trend["last"] > trend["first"])


def format_report(report: dict) -> str:
    lines = [f"diagnostics on {report['samples']} samples: loss {report['loss']:.6g}"]
    header = f"{'layer':<6}{'activation':<14}{'units':>6}{'gradient norm':>15}{'saturated':>11}{'dead':>7}"
    lines += [header, "-" * len(header)]
    for layer in report["layers"]:
        lines.append(
            f"{layer['layer']:<6}{_cut(layer['activation'], 13):<14}{layer['units']:>6}"
            f"{_norm(layer):>15}{_share(layer, 'saturated'):>11}{_share(layer, 'dead'):>7}"
        )
    ratio = report.get("gradient_ratio")
    if len(_learning(report["layers"])) > 1 and ratio is not None:
        lines.append(f"gradient norm of the first layer / the last: {ratio:.3g}")
    trend = report.get("history")
    if trend and trend["epochs"]:
        lines.append(f"loss over {trend['epochs']} epochs: first {trend['first']:.6g}, best {trend['best']:.6g} "
                     f"(epoch {trend['best_epoch']}), last {trend['last']:.6g}")
    found = hints(report)
    lines.append("")
    if not found:
        lines.append("no common problem found: no saturated or dead units to speak of, gradient norms within "
                     f"a factor of {EXPLODING_RATIO:g} across layers, and the loss did not rise")
    for hint in found:
        lines.append(f"- {hint.problem}: {hint.message}")
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _learning(layers: list[dict]) -> list[dict]:
    """The layers with parameters: a pooling layer has none, and its gradient norm is None."""
    return [layer for layer in layers if layer["gradient_norm"] is not None]


def _norm(layer: dict) -> str:
    norm = layer["gradient_norm"]
    return "no parameters" if norm is None else f"{norm:.3g}"


def _count(layer: dict, key: str) -> int:
    return round(layer[key] * layer["units"])


def _share(layer: dict, key: str) -> str:
    if layer.get(key) is None:
        return "-"
    return f"{_count(layer, key)}/{layer['units']}"


def _where(layer: dict) -> str:
    return f"layer {layer['layer']} ({layer['activation']})"


def _not_finite(report: dict) -> list[Hint]:
    norms = [layer["gradient_norm"] for layer in _learning(report["layers"])]
    if math.isfinite(report["loss"]) and all(math.isfinite(norm) for norm in norms):
        return []
    return [Hint("not finite", f"the loss is {report['loss']:.6g} and the gradient norms are "
                 f"{', '.join(f'{norm:.3g}' for norm in norms)}: the parameters have overflowed. Restart from "
                 "fresh parameters with a learning rate a tenth of this one's")]


def _saturation(layer: dict) -> list[Hint]:
    share = layer.get("saturated")
    if share is None or share < SATURATED_SHARE:
        return []
    return [Hint("saturation", f"{_where(layer)}: {_count(layer, 'saturated')} of {layer['units']} units "
                 f"({share:.0%}) sit at the flat ends of the {layer['activation']} on nearly every sample, where "
                 "its slope, and so the gradient through them, is almost zero. Standardise the inputs, start "
                 "from smaller weights, or lower the learning rate")]


def _dead_units(layer: dict) -> list[Hint]:
    share = layer.get("dead")
    if share is None or share < DEAD_SHARE:
        return []
    return [Hint("dead units", f"{_where(layer)}: {_count(layer, 'dead')} of {layer['units']} units "
                 f"({share:.0%}) are inactive on every sample, so they get no gradient and cannot recover. "
                 "Lower the learning rate, use he_normal initialisation, or try leaky_relu")]


def _gradient_flow(report: dict) -> list[Hint]:
    layers = _learning(report["layers"])
    norms = [layer["gradient_norm"] for layer in layers]
    if not norms or not all(math.isfinite(norm) for norm in norms):
        return []
    if max(norms) < STALLED_NORM:
        return [Hint("stalled", f"every gradient norm is below {STALLED_NORM:g} (largest {max(norms):.3g}): "
                     "training has reached a minimum or a flat plateau. If the loss is still high, restart "
                     "from other initial weights")]
    ratio = report.get("gradient_ratio")
    if len(layers) < 2 or ratio is None:
        return []
    first, last = layers[0], layers[-1]
    numbers = (f"layer {first['layer']}'s gradient norm is {first['gradient_norm']:.3g}, layer "
               f"{last['layer']}'s is {last['gradient_norm']:.3g} (ratio {ratio:.3g})")
    if ratio < VANISHING_RATIO:
        return [Hint("vanishing gradients", f"{numbers}: the early layers barely learn. Saturated sigmoid/tanh "
                     "units are the usual cause; try relu hidden layers, standardised inputs or smaller "
                     "initial weights")]
    if ratio > EXPLODING_RATIO:
        return [Hint("exploding gradients", f"{numbers}: steps that suit the last layer overshoot in the "
                     "first. Lower the learning rate or start from smaller initial weights")]
    return []


def _loss_trend(trend: dict | None) -> list[Hint]:
    if trend and trend.get("stopped") == "diverged":
        after = f"after {trend['epochs']} epochs" if trend["epochs"] else "in its first epoch"
        return [Hint("rising loss", f"training diverged {after}: the loss stopped being finite. The learning "
                     "rate is probably too high; try a tenth of it")]
    if not trend or trend["epochs"] < 2:
        return []
    if trend["rising"]:
        return [Hint("rising loss", f"the loss rose from {trend['best']:.6g} (its best, at epoch "
                     f"{trend['best_epoch']}) to {trend['last']:.6g} at epoch {trend['epochs'] - 1}: the learning "
                     "rate is probably too high; try a tenth of it")]
    rises = trend["increases"]
    climbed_back = trend.get("climb", math.inf) > CLIMB_SHARE * (trend["first"] - trend["best"])
    if rises > max(2, OSCILLATING_SHARE * (trend["epochs"] - 1)) and climbed_back:
        return [Hint("rising loss", f"the loss went up in {rises} of {trend['epochs'] - 1} epochs: steps "
                     "overshoot, so the learning rate is probably too high (or the mini-batches too small)")]
    return []
