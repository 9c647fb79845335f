"""The worksheet's view-model: exercises and answers printed in a notation, for templates/latex/worksheet.tex.j2."""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symbp import __version__
from symbp import quantities as q
from symbp.decimals import RULE, decimal_latex, rounded
from symbp.derivation import derive
from symbp.document import MARKER, Block, Line, Writer, conventions_of, notation_for, rows_of
from symbp.drawing import network_drawing
from symbp.spec import load_spec
from symbp.templating import render, tex_text
from symbp.worksheet import Worksheet, build_worksheet

# An Exercise 1 answer is written out in full up to this many operations; beyond, by its error terms.
MOST_OPERATIONS_WRITTEN_OUT = 16


@dataclass(frozen=True)
class Entry:
    """One quantity of an exercise: its symbol, its exact value (when rational) and a decimal.

    ``exact`` is empty unless the value is a rational reached by rational arithmetic; ``decimal`` is
    empty when it would add nothing (an integer), and ``approximate`` says whether it is rounded
    (by ``symbp.decimals``' rule). ``value`` is the number itself.
    """

    symbol: str
    exact: str
    decimal: str
    approximate: bool = True
    value: sp.Expr | None = None


def _decimal(value: sp.Expr) -> str:
    return "" if value.is_Integer else decimal_latex(value)


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


def _derive_answer(writer: Writer, derivation, parameter) -> dict:
    """The gradient of one parameter: the chain rule, the delta rule's factors, and then either the
    gradient written out in the network's quantities (when it is short enough to read) or the
    recursion of error terms that gives it, one layer a line."""
    explicit = derivation.section("explicit")
    shared = explicit.facts["shared"]
    chain = next(c for c in explicit.chains if c.lhs == q.Partial(q.SAMPLE_LOSS, parameter))
    expanded = chain.steps[0].expr
    while expanded.has(*shared):
        expanded = expanded.xreplace(shared)
    # The chain rule as the derivation writes it for this layer, at this parameter's units.
    role = q.ROLES[parameter.base]
    sections = {s.layer: s for s in derivation.sections if s.kind in ("output", "hidden")}
    general = sections[role.layer].chain(f"layer{role.layer}.{role.kind}")
    units = {q.unit_index(role.layer, "cur"): parameter.indices[-1]}
    if role.kind == "weight":
        units[q.unit_index(role.layer - 1, "prev")] = parameter.indices[0]
    leibniz = general.steps[0].expr.xreplace(units)
    answer = {"lhs": writer.math(chain.lhs), "leibniz": writer.math(leibniz),
              "factors": writer.math(chain.steps[-1].expr), "expanded": "", "recursion": []}
    if sp.count_ops(expanded) <= MOST_OPERATIONS_WRITTEN_OUT:
        answer["expanded"] = writer.math(expanded)
        return answer
    for layer in range(role.layer, max(sections) + 1):
        delta = sections[layer].chain(f"layer{layer}.delta")
        at = {q.unit_index(layer, "cur"): parameter.indices[-1]} if layer == role.layer else {}
        rhs = delta.steps[-1].expr.xreplace(at)
        answer["recursion"].append((writer.math(delta.lhs.xreplace(at)), writer.math(rhs)))
    return answer


def _in_brief(block: Block) -> Block:
    """A derivation's first and last line only: the sheet gives the result, the derivation has the steps."""
    first, last = block.lines[0], block.lines[-1]
    return Block(block.key, (Line(first.lhs, first.relation, last.rhs, ""),), block.boxed)


def worksheet_context(spec_source, notation: str | None = None, variant: int = 0, solutions: bool = False,
                      key_only: bool = False) -> dict:
    spec = load_spec(spec_source)
    chosen = notation_for(spec, notation)
    sheet: Worksheet = build_worksheet(spec, variant, chosen.error_sign)
    hand = sheet.hand
    hand_notation = notation_for(hand.spec, chosen.name)
    writer = Writer(hand_notation)
    net_derivation = derive(hand.spec, conventions_of(hand_notation))
    depth = len(hand.spec.layers)

    given = [_entry(writer, q.inputs()[i], value) for i, value in enumerate(hand.x, start=1)]
    given += [_entry(writer, q.targets()[k], value) for k, value in enumerate(hand.y, start=1)]
    parameters = [parameter for parameter in hand.gradients]
    given += [_entry(writer, parameter, hand.values[parameter]) for parameter in parameters]
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
    updated = [_entry(writer, q.Updated(parameter), value) for parameter, value in hand.updated.items()]
    descent = sheet.descent
    history = [{"step": t, "w": writer.math(w), "b": writer.math(b),
                "w_decimal": _decimal(w), "b_decimal": _decimal(b), "w_value": w, "b_value": b}
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
        "drawing": network_drawing(hand.spec.sizes, tuple(layer.bias for layer in hand.spec.layers), hand_notation),
        "given": given,
        "forward": forward,
        "deltas": deltas,
        "gradients": gradients,
        "updated": updated,
        "rate": writer.math(hand.rate),
        "rate_symbol": writer.math(q.LEARNING_RATE),
        "loss_symbol": writer.math(q.SAMPLE_LOSS),
        "loss_formula": writer.block(net_derivation.section("network").chain("network.sample_loss")),
        "to_derive": [writer.math(q.Partial(q.SAMPLE_LOSS, parameter)) for parameter in sheet.to_derive],
        "derived": [_derive_answer(writer, net_derivation, parameter) for parameter in sheet.to_derive],
        "activations": sorted({hand_notation.activation(layer.activation) for layer in hand.spec.layers}),
        "activation_rows": rows_of(_in_brief(writer.block(chain))
                                   for chain in net_derivation.section("activations").chains),
        "descent_rate": writer.math(sheet.descent.rate),
        "descent": descent,
        "descent_rows": list(zip(descent.xs, descent.ys)),
        "history": history,
        "steps": len(descent.history) - 1,
        "delta_symbol": writer.math(q.delta(depth)[1]),
        "error_sign": chosen.error_sign,
        "time_next": writer.math(q.Updated(parameters[0])),
    }


def worksheet_document(spec_source, notation: str | None = None, variant: int = 0, solutions: bool = False,
                       key_only: bool = False) -> str:
    """The LaTeX source of a worksheet for a spec; ``solutions`` appends the answer key, ``key_only`` gives it alone."""
    return render("latex/worksheet.tex.j2", **worksheet_context(spec_source, notation, variant, solutions, key_only))
