"""The worksheet's view-model: exercises and answers printed in a notation, for templates/latex/worksheet.tex.j2."""

from __future__ import annotations

from dataclasses import dataclass, replace

import sympy as sp

from symbp import __version__
from symbp.derivation.backward import hidden_section, output_section
from symbp.derivation.forward import activation_section, network_section
from symbp.derivation.indexform import net_of
from symbp.derivation.model import Section, chain, step
from symbp.render.latex.document import (
    MARKER,
    Block,
    Line,
    Writer,
    check_spec_typesettable,
    conventions_of,
    notation_for,
    rows_of,
)
from symbp.render.latex.drawing import network_drawing
from symbp.render.latex.layout import TEXT_WIDTH_PT, estimated_width
from symbp.render.templating import render, tex_text
from symbp.spec.schema import SpecSource, load_spec
from symbp.symbolic import quantities as q
from symbp.worksheet.decimals import RULE, decimal_latex, rounded
from symbp.worksheet.exercises import Worksheet, build_worksheet

# An Exercise 1 answer is written out in full up to this many operations, and only when it fits the
# line; beyond, by its error terms.
MOST_OPERATIONS_WRITTEN_OUT = 16
_RELATION_PT = 20.0  # "&= " and the space around it


@dataclass(frozen=True)
class Entry:
    """One quantity of an exercise: its symbol, its exact value (when rational) and a decimal.

    ``exact`` is empty unless the value is a rational reached by rational arithmetic; ``decimal`` is
    empty when it would add nothing (an integer), and ``approximate`` says whether it is rounded
    (by ``symbp.worksheet.decimals``' rule). ``value`` is the number itself.
    """

    symbol: str
    exact: str
    decimal: str
    approximate: bool = True
    value: sp.Expr | None = None


def _decimal(value: sp.Expr) -> str:
    return "" if value.is_Integer else decimal_latex(value)


def _relation(value: sp.Expr) -> str:
    """= before a decimal that is the value itself, approximately-equal before a rounded one."""
    return "=" if _is_exact(value) and sp.Rational(str(rounded(value))) == value else r"\approx"


def _is_exact(value: sp.Expr) -> bool:
    """A rational that is not a float in disguise: only those are printed as fractions."""
    return value.is_Rational and not value.has(sp.Float)


def _entry(writer: Writer, quantity, value: sp.Expr) -> Entry:
    value = sp.sympify(value)
    if value.is_Integer:
        return Entry(writer.math(quantity), writer.math(value), "", False, value)
    exact = writer.math(value) if _is_exact(value) else ""
    approximate = not _is_exact(value) or sp.Rational(str(rounded(value))) != value
    return Entry(writer.math(quantity), exact, decimal_latex(value), approximate, value)


def _derive_answer(writer: Writer, sections: dict, parameter) -> dict:
    """The gradient of one parameter: the chain rule, the delta rule's factors, and then either the
    gradient written out in the network's quantities (when it is short enough to read) or the
    recursion of error terms that gives it, one layer a line.

    ``sections`` are the derivation's output and hidden sections by layer; the written-out form
    substitutes each layer's error term, as derived there, into the one below and expands the sums.
    """
    role = q.ROLES[parameter.base]
    general = sections[role.layer].chain(f"layer{role.layer}.{role.kind}")
    units = {q.unit_index(role.layer, "cur"): parameter.indices[-1]}
    if role.kind == "weight":
        units[q.unit_index(role.layer - 1, "prev")] = parameter.indices[0]
    factors = general.steps[-1].expr.xreplace(units)
    expanded = factors
    for layer in range(role.layer, max(sections) + 1):
        delta = sections[layer].chain(f"layer{layer}.delta")
        current, rhs = q.unit_index(layer, "cur"), delta.steps[-1].expr
        expanded = expanded.replace(lambda e, base=delta.lhs.base: isinstance(e, sp.Indexed) and e.base == base,
                                    lambda e, rhs=rhs, current=current: rhs.xreplace({current: e.indices[0]}))
        expanded = expanded.replace(lambda e: isinstance(e, sp.Sum), lambda e: e.doit())
    answer = {"lhs": writer.math(q.Partial(q.SAMPLE_LOSS, parameter)),
              "leibniz": writer.math(general.steps[0].expr.xreplace(units)),
              "factors": writer.math(factors), "expanded": "", "recursion": [], "written_out": expanded}
    written_out = writer.math(expanded)
    # The written-out line sits right of the aligned left side; branches (cases) make few operations wide.
    fits = estimated_width(answer["lhs"]) + _RELATION_PT + estimated_width(written_out) <= TEXT_WIDTH_PT
    if sp.count_ops(expanded) <= MOST_OPERATIONS_WRITTEN_OUT and fits:
        answer["expanded"] = written_out
        return answer
    for layer in range(role.layer, max(sections) + 1):
        delta = sections[layer].chain(f"layer{layer}.delta")
        at = {q.unit_index(layer, "cur"): parameter.indices[-1]} if layer == role.layer else {}
        rhs = delta.steps[-1].expr.xreplace(at)
        answer["recursion"].append((writer.math(delta.lhs.xreplace(at)), writer.math(rhs)))
    return answer


LINE_VARIABLE = sp.Symbol("x")


def _exercise_numbers(normalised: bool, batch_normalised: bool = False, windowed: bool = False) -> dict[str, int]:
    parts = ["chain", "forward", *(["normalisation"] if normalised else []), "backward", "step",
             *(["batch_norm"] if batch_normalised else []), *(["window"] if windowed else []), "descent"]
    return {part: number for number, part in enumerate(parts, start=1)}


def _line(slope: sp.Expr, intercept: sp.Expr, variable: sp.Expr = LINE_VARIABLE) -> sp.Expr:
    """slope x + intercept, the slope's term first where the printer allows (y = 4x - 2, y = -x - 1)."""
    term = slope * variable
    return term if intercept == 0 else sp.Add(term, intercept, evaluate=False)


def _line_symbols(sheet: Worksheet, notation_name: str, writer_class: type[Writer] = Writer) -> dict | None:
    """The line exercise's symbols in the sheet's notation; None for the lab's, which writes it with
    theta = (w, b) and y-hat as the lab does."""
    if notation_name == "lab":
        return None
    line_notation = notation_for(sheet.descent.spec, notation_name)
    line_writer = writer_class(line_notation.with_macros() if writer_class.uses_macros else line_notation)
    weight, bias, source = q.weight(1)[1, 1], q.bias(1)[1], q.inputs()[1]
    return {"x": line_writer.math(source), "output": line_writer.math(q.act(1)[1]),
            "target": line_writer.math(q.targets()[1]), "weight": line_writer.math(weight),
            "bias": line_writer.math(bias), "model": line_writer.math(weight * source + bias),
            "loss": line_writer.math(q.LOSS), "rate": line_writer.math(q.LEARNING_RATE),
            "formula": line_writer.math(_line(sheet.descent.slope, sheet.descent.intercept, source))}


def penalised_objective(spec, network: Section | None = None) -> sp.Expr:
    """One sample's loss plus the weight penalties, the penalties summed as the derivation's loss L writes them
    (``network``: the spec's network section, when it is at hand)."""
    network = network or network_section(net_of(spec))
    loss = network.chain("network.loss").steps[-1].expr
    penalties = [term for term in sp.Add.make_args(loss) if not term.has(q.sample_losses())]
    return sp.Add(q.SAMPLE_LOSS, *penalties)


def _penalty_rows(writer: Writer, hand) -> list[dict]:
    """For each penalised weight: its penalty's term in the gradient (SymPy's derivative of the penalty, as a formula
    of the weight and as a number), and the gradient of the penalised loss, the sample's gradient plus that term."""
    rows = []
    for parameter, penalty in hand.penalties.items():
        term = hand.penalty_terms[parameter]
        rows.append({"term": _entry(writer, q.Partial(penalty.term(parameter), parameter), term),
                     "formula": writer.math(penalty.derivative(parameter)),
                     "sum": writer.math(sp.Add(q.Partial(q.SAMPLE_LOSS, parameter), term, evaluate=False)),
                     "total": _entry(writer, q.Partial(q.PENALISED_LOSS, parameter),
                                     hand.penalised_gradient(parameter))})
    return rows


def _penalised(writer: Writer, answer: dict, hand, parameter) -> dict:
    """A chain-rule answer for a penalised weight: the gradient of the penalised loss is the sample's gradient, as
    ``_derive_answer`` gives it, plus the derivative of the weight's penalty."""
    penalty = hand.penalties.get(parameter)
    if penalty is None:
        return {**answer, "penalty": None}
    data = q.Partial(q.SAMPLE_LOSS, parameter)
    return {**answer, "penalty": {
        "lhs": writer.math(q.Partial(q.PENALISED_LOSS, parameter)),
        "split": writer.math(sp.Add(data, q.Partial(penalty.term(parameter), parameter), evaluate=False)),
        "derived": writer.math(sp.Add(data, *sp.Add.make_args(penalty.derivative(parameter)), evaluate=False))}}


def _in_brief(block: Block) -> Block:
    """A derivation's first and last line only: the sheet gives the result, the derivation has the steps."""
    first, last = block.lines[0], block.lines[-1]
    return Block(block.key, (Line(first.lhs, first.relation, last.rhs, ""),), block.boxed)


def _batch_norm_view(writer: Writer, sheet: Worksheet, spec) -> dict | None:
    """The batch-normalised layer's exercise (symbp.worksheet.batchnorm): its givens, and its answers forward and
    back, each named in the sheet's notation."""
    exercise = sheet.batch_norm
    if exercise is None:
        return None
    layer = exercise.layer
    j = q.unit_index(layer, "cur")
    n, other = q.sample_index(), q.unit_index(0, "sample'")
    return {
        "layer": writer.notation.layer_name(layer),
        "units": exercise.units,
        "inputs": exercise.fan_in,
        "samples": exercise.inputs.rows,
        "given": [_entry(writer, quantity, value) for quantity, value in exercise.given()],
        "forward": [_entry(writer, quantity, value) for quantity, value in exercise.forward.items()],
        "backward": [_entry(writer, quantity, value) for quantity, value in exercise.backward.items()],
        "weighted": writer.math(q.weighted(layer)[n, j]),
        "mean": writer.math(q.layer_statistic("mean", layer)[j]),
        "other": writer.math(other),
        "loss": writer.math(q.LOSS),
        "stabiliser": writer.math(q.layer_statistic("stabiliser", layer)),
        "replaced": [index + 1 for index, each in enumerate(spec.layers) if each.normalization == "batch"],
    }


_WINDOW_KINDS = {"conv1d": "1-D convolution", "conv2d": "2-D convolution", "max_pool1d": "1-D max pooling",
                 "max_pool2d": "2-D max pooling", "avg_pool1d": "1-D average pooling",
                 "avg_pool2d": "2-D average pooling"}


def _sizes(shape) -> str:
    return r" \times ".join(str(size) for size in shape)


def _window_view(writer: Writer, sheet: Worksheet, spec) -> dict | None:
    """The window layer's exercise (symbp.worksheet.windows): its geometry, givens and answers, each named in the
    sheet's notation."""
    exercise = sheet.window
    if exercise is None:
        return None
    return {
        "layer": writer.notation.layer_name(exercise.layer),
        "kind": _WINDOW_KINDS[exercise.kind],
        "pooling": exercise.pooling,
        "maximum": exercise.maximum,
        "bias": bool(exercise.bias),
        "input": _sizes(exercise.input_shape[1:]),
        "window": _sizes(exercise.window),
        "stride": ", ".join(map(str, exercise.stride)),
        "padding": ", ".join(map(str, exercise.padding)),
        "padded": any(exercise.padding),
        "output": _sizes(exercise.output_shape[1:]),
        "given": [_entry(writer, quantity, value) for quantity, value in exercise.given()],
        "forward": [_entry(writer, quantity, value) for quantity, value in exercise.forward.items()],
        "backward": [_entry(writer, quantity, value) for quantity, value in exercise.backward.items()],
        "loss": writer.math(q.LOSS),
        "replaced": [index + 1 for index, each in enumerate(spec.layers) if each.window is not None],
    }


def worksheet_context(spec_source, notation: str | None = None, variant: int = 0, solutions: bool = False,
                      key_only: bool = False, writer_class: type[Writer] = Writer) -> dict:
    spec = load_spec(spec_source)
    check_spec_typesettable(spec)
    chosen = notation_for(spec, notation)
    sheet: Worksheet = build_worksheet(spec, variant, chosen.error_sign)
    hand = sheet.hand
    hand_notation = notation_for(hand.spec, chosen.name)
    # Symbols printed as the macros the preamble defines (see symbp.render.latex.notation).
    writer = writer_class(hand_notation.with_macros() if writer_class.uses_macros else hand_notation)
    # The sections the sheet prints from, derived for the hand network (not the whole derivation:
    # the sheet needs no matrix form, update rules or every weight's simplified gradient).
    net = net_of(hand.spec)
    sign = conventions_of(hand_notation).error_sign
    network, activations = network_section(net), activation_section(net)
    layer_sections = {net.depth: output_section(net, sign)}
    layer_sections.update({layer: hidden_section(net, layer, sign) for layer in range(net.depth - 1, 0, -1)})
    depth = len(hand.spec.layers)

    given = [_entry(writer, q.inputs()[i], value) for i, value in enumerate(hand.x, start=1)]
    given += [_entry(writer, q.targets()[k], value) for k, value in enumerate(hand.y, start=1)]
    # A dropout layer's mask is part of the exercise: fixed, given with the input.
    given += [_entry(writer, q.mask(int(name[1:]))[i], value)
              for name, mask in hand.masks.items() for i, value in enumerate(mask, start=1)]
    parameters = [parameter for parameter in hand.gradients]
    given += [_entry(writer, parameter, hand.values[parameter]) for parameter in parameters]
    # A normalised layer's epsilon is given; its other quantities are its own exercise, forward and back.
    stage_kinds = {"weighted", "mean", "variance", "scale", "normalised"}
    normalisation_forward, normalisation_backward = [], []
    for quantity, value in hand.normalisation.items():
        kind = q.ROLES[quantity.base if isinstance(quantity, sp.Indexed) else quantity].kind
        if kind == "stabiliser":
            given.append(_entry(writer, quantity, value))
        else:
            (normalisation_forward if kind in stage_kinds else normalisation_backward).append(
                _entry(writer, quantity, value))
    forward = []
    for layer in range(1, depth + 1):
        for j in range(1, hand.spec.sizes[layer] + 1):
            forward.append(_entry(writer, q.pre(layer)[j], hand.values[q.pre(layer)[j]]))
            forward.append(_entry(writer, q.act(layer)[j], hand.values[q.act(layer)[j]]))
    forward.append(_entry(writer, q.SAMPLE_LOSS, hand.loss))
    deltas = [_entry(writer, symbol, value) for symbol, value in hand.deltas.items()]
    deltas.sort(key=lambda entry: entry.symbol)
    gradients = [_entry(writer, q.Partial(q.SAMPLE_LOSS, parameter), value)
                 for parameter, value in hand.gradients.items()]
    # A notation that writes a parameter after the step as before it (w -> w - ...) would give the answers
    # the old symbols: those answers are labelled "new" instead.
    penalty_rows = _penalty_rows(writer, hand)
    first = parameters[0]
    updated_named = writer.math(q.Updated(first)) != writer.math(first)
    updated = [_entry(writer, q.Updated(parameter) if updated_named else parameter, value)
               for parameter, value in hand.updated.items()]
    updated = [replace(entry, symbol=entry.symbol if updated_named else rf"\text{{new }}{entry.symbol}")
               for entry in updated]
    descent = sheet.descent
    history = [{"step": t, "w": writer.math(w), "b": writer.math(b),
                "w_decimal": _decimal(w), "b_decimal": _decimal(b), "w_value": w, "b_value": b,
                "w_relation": _relation(w), "b_relation": _relation(b)}
               for t, (w, b) in enumerate(descent.history)]
    return {
        "marker": MARKER,
        "version": __version__,
        "spec": spec,
        "title": spec.title or spec.name,
        # The name may break after an underscore: a long file name must not run into the margin.
        "breakable_name": r"\_\allowbreak{}".join(tex_text(part) for part in spec.name.split("_")),
        "notation": chosen,
        "variant": variant,
        "rounding_rule": RULE,
        "solutions": solutions or key_only,
        "key_only": key_only,
        "hand": hand,
        "drawing": network_drawing(hand.spec, hand_notation),
        "given": given,
        "masked": bool(hand.masks),
        "forward": forward,
        "normalisation_forward": normalisation_forward,
        "normalisation_backward": normalisation_backward,
        "normalised_layers": [hand_notation.layer_name(layer.index) for layer in net.layers
                              if hasattr(layer, "index_statistics")],
        # Exercise numbers: a network with a normalised layer has an exercise on it after the forward pass, one with
        # a batch-normalised layer an exercise on that layer over a batch after the step.
        "number": _exercise_numbers(bool(normalisation_forward), sheet.batch_norm is not None,
                                    sheet.window is not None),
        "batch_norm": _batch_norm_view(writer, sheet, spec),
        "window": _window_view(writer, sheet, spec),
        "deltas": deltas,
        "gradients": gradients,
        "updated": updated,
        "rate": writer.math(hand.rate),
        "rate_symbol": writer.math(q.LEARNING_RATE),
        "loss_symbol": writer.math(q.SAMPLE_LOSS),
        "objective_symbol": writer.math(q.PENALISED_LOSS),
        "loss_formula": writer.block(network.chain("network.sample_loss")),
        # With weight penalties the exercise's loss is the sample's plus the penalties, named as the derivation does.
        "objective": writer.block(chain("worksheet.objective", q.PENALISED_LOSS,
                                        step(penalised_objective(hand.spec, network)))) if hand.penalties else None,
        "penalised_layers": [hand_notation.layer_name(index) for index in
                             sorted({q.ROLES[parameter.base].layer for parameter in hand.penalties})],
        "penalty_rows": penalty_rows,
        "to_derive": [writer.math(q.Partial(q.PENALISED_LOSS if parameter in hand.penalties else q.SAMPLE_LOSS,
                                            parameter)) for parameter in sheet.to_derive],
        "derived": [_penalised(writer, _derive_answer(writer, layer_sections, parameter), hand, parameter)
                    for parameter in sheet.to_derive],
        "activations": sorted({writer.notation.activation(layer.activation) for layer in hand.spec.layers}),
        "activation_rows": rows_of(_in_brief(writer.block(chain))
                                   for chain in activations.chains),
        "descent_rate": writer.math(sheet.descent.rate),
        "line": _line_symbols(sheet, chosen.name, writer_class),
        "descent": descent,
        # Printed by SymPy, so a slope of -1 reads "- x - 1", never "-1 x - 1".
        "line_formula": writer.math(_line(descent.slope, descent.intercept)),
        "descent_rows": list(zip(descent.xs, descent.ys)),
        "history": history,
        "steps": len(descent.history) - 1,
        "delta_symbol": writer.math(q.delta(depth)[1]),
        "error_sign": chosen.error_sign,
        "time_next": writer.math(q.Updated(first)),
        "time_now": writer.math(first),
        "updated_named": updated_named,
    }


def worksheet_document(spec_source: SpecSource, notation: str | None = None, variant: int = 0,
                       solutions: bool = False, key_only: bool = False) -> str:
    """The LaTeX source of a worksheet for a spec; ``solutions`` appends the answer key, ``key_only`` gives it alone."""
    return render("latex/worksheet.tex.j2", **worksheet_context(spec_source, notation, variant, solutions, key_only))
