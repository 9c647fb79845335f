"""View-models for the LaTeX documents: a derivation's chains printed in a notation, ready to lay out.

Templates under ``templates/latex/`` only loop over what is built here and place it on the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import sympy as sp
from sympy.core.function import AppliedUndef
from sympy.printing.precedence import PRECEDENCE

from symbp import __version__
from symbp.checks import numcheck
from symbp.checks.numcheck import numerical_check
from symbp.derivation.backprop import derive
from symbp.derivation.explicit import EXPLICIT_PARAMETER_LIMIT
from symbp.derivation.general import units_of
from symbp.derivation.indexform import local_derivative, net_of
from symbp.derivation.model import Chain, Conventions, Derivation, Reason
from symbp.render.latex.drawing import network_drawing
from symbp.render.latex.layout import TEXT_WIDTH_PT, estimated_width
from symbp.render.latex.notation import DEFAULT_NOTATION, Notation, Shape, lab_regression, notation_named
from symbp.render.latex.printer import NotationPrinter
from symbp.render.latex.texchars import check_typesettable
from symbp.render.templating import render
from symbp.spec.schema import Spec, SpecSource, load_spec
from symbp.symbolic import quantities as q
from symbp.symbolic.layers import input_route
from symbp.symbolic.network import network_of, sample_coefficient

MARKER = "% symbp-generated-document"

# The words each kind of reason is given on the page.
REASON_WORDS = {
    "definition": "definition",
    "chain_rule": "chain rule",
    "total_derivative": "total derivative",
    "sum_rule": "sum rule",
    "constant_factor": "constant factor",
    "product_rule": "product rule",
    "power_rule": "power rule",
    "constant": "",
    "only_term": "only one term of the sum depends on it",
    "simplify": "simplify",
    "in_terms_of_output": "in terms of the output",
    "substitute": "substitute",
    "fact": "",
    "delta": "definition of the error term",
    "cse": "SymPy's common subexpressions",
    "delta_rule": "delta rule",
    "sum_over_samples": "sum over the samples",
    "matrix_calculus": "SymPy's matrix calculus",
    "elementwise": "the index form, entry by entry",
    "split": "split the fraction",
    "factor": "take out the common factor",
    "kink": "|w| has a kink at 0, where sign(0) = 0 is taken",
    "update": "",
    "bracket_picks": "each bracket picks one term of its sum",
    "zero_outside": "an error term is 0 outside its layer's positions",
    "first_max": "the first largest entry, which a small change does not move",
    "passed_back": "passed back by the layer above",
}


# SymPy functions whose name is not how a text writes them: printed applied, |z| or sign(z).
_WRITTEN_AS_APPLIED = {"Abs", "sign", "Heaviside", "Max", "Min", "re", "im"}


@dataclass(frozen=True)
class Line:
    lhs: str
    relation: str
    rhs: str
    reason: str
    # Set by ``fitted``: the justification goes on a row of its own under the step, in a box this wide (pt).
    reason_below: bool = False
    reason_width: float = 0.0
    tag: str = ""  # the equation's number in the reference text, e.g. BP1


# Widths, in points, that a display adds around its printed parts: the relation and the space before
# a justification (align* puts 2em between column pairs).
_RELATION_PT = 16.0
_REASON_GAP_PT = 24.0


def fitted(lines) -> list[Line]:
    """The lines of one display, with every justification moved under its step when the columns
    (widest left side, widest right side, widest justification) would not fit the text block."""
    lines = list(lines)
    reasons = [estimated_width(line.reason) for line in lines if line.reason]
    if not reasons:
        return lines
    left = max(estimated_width(line.lhs) for line in lines)
    right = max(estimated_width(line.rhs) for line in lines)
    if left + _RELATION_PT + right + _REASON_GAP_PT + max(reasons) <= TEXT_WIDTH_PT:
        return [replace(line, reason_below=False) for line in lines]
    # The box starts a \qquad into the right-hand column.
    room = TEXT_WIDTH_PT - left - _RELATION_PT - 22.0 - 12.0
    width = max(140.0, min(room, max(reasons) + 12.0))
    return [replace(line, reason_below=bool(line.reason), reason_width=round(width)) for line in lines]


@dataclass(frozen=True)
class Block:
    key: str
    lines: tuple[Line, ...]
    boxed: bool


@dataclass(frozen=True)
class Row:
    """A line of an align* environment; ``gap`` opens a little space above it (a new chain begins)."""

    line: Line
    gap: bool




def rows_of(blocks) -> list[Row]:
    """The lines of several chains, for one align* environment, fitted to the text block together."""
    rows = []
    for block in blocks:
        rows += [Row(line, gap=bool(rows) and position == 0) for position, line in enumerate(block.lines)]
    lines = fitted(row.line for row in rows)
    return [Row(line, row.gap) for row, line in zip(rows, lines)]


def notation_for(spec: Spec, name: str | None = None) -> Notation:
    """The preset asked for, else the spec's own, else the lab's; bound to the spec's network."""
    chosen = name or getattr(spec, "notation", "") or DEFAULT_NOTATION
    layers = spec.layers
    shape = Shape(spec.sizes, tuple(layer.bias for layer in layers), tuple(layer.activation for layer in layers),
                  tuple(getattr(layer, "window", None) is not None for layer in layers))
    return notation_named(chosen).for_network(shape)


def conventions_of(notation: Notation) -> Conventions:
    return Conventions(notation.error_sign, notation.column_vectors, notation.numbers_layers)


class DocumentPrinter(NotationPrinter):
    """The notation's printer, and the general equations' sums: over every unit k of a layer, \\sum_k."""

    def _print_Sum(self, expr):
        if not all(isinstance(high, AppliedUndef) and high.func == units_of for _, _, high in expr.limits):
            return super()._print_Sum(expr)
        signs = " ".join(rf"\sum_{{{self._print(index)}}}" for index, _, _ in reversed(expr.limits))
        return f"{signs} {self.parenthesize(expr.function, PRECEDENCE['Add'])}"

    def _print_AtSample(self, expr):
        # Where x_i and y_i already name sample i's values (the lab's regression), the mark would repeat it.
        if self.notation.samples_implicit:
            inner = self._print(expr.expr)
            return rf"\left({inner}\right)" if expr.expr.is_Add else inner
        return super()._print_AtSample(expr)


class Writer:
    """Prints derivation data in one notation: expressions, reasons, chains."""

    # Symbols printed as the macros a LaTeX preamble defines; a page without that preamble sets this False.
    uses_macros = True

    def __init__(self, notation: Notation):
        self.notation = notation
        # Thin spaces between factors: s w a, not sw a.
        self.printer = DocumentPrinter(notation, {"mul_symbol": r"\,"})

    def math(self, expr) -> str:
        return self.printer.doprint(expr)

    def reason_parts(self, reason: Reason) -> tuple[str, str, list[str]]:
        """What a justification says, for any renderer: its words, the printed name of a function that
        ends them ("derivative of" sigma), and the printed facts it cites."""
        facts = [self.math(fact) for fact in reason.facts]
        if reason.kind == "derivative_of" and reason.about is not None:
            if isinstance(reason.about, sp.Piecewise):
                return "derivative of each piece", "", facts
            return "derivative of ", self.function_name(reason.about), facts
        if reason.kind == "delta" and facts:
            return "", "", facts
        return REASON_WORDS[reason.kind], "", facts

    def reason(self, reason: Reason) -> str:
        words, function, facts = self.reason_parts(reason)
        if reason.kind == "delta" and facts:
            return r"\text{since }" + ", ".join(facts)
        if function:
            words += "$" + function + "$"
        if facts:
            since = r"\text{since }" + r",\ \allowbreak ".join(facts)
            return since if not words else rf"\text{{{words}; }}{since}"
        return rf"\text{{{words}}}" if words else ""

    def function_name(self, applied) -> str:
        name = q.activation_name(applied.func)
        if name is not None:
            return self.notation.activation(name)
        name = applied.func.__name__
        if name == "exp":
            return r"\exp"
        if name in _WRITTEN_AS_APPLIED:
            return self.math(applied)  # |z|, not "Abs"
        return self.printer._hprint_Function(name)

    def reasons(self, reasons: tuple[Reason, ...]) -> str:
        texts = [self.reason(reason) for reason in reasons]
        # A justification set under its step may wrap between its reasons, never inside one.
        return r";\ \allowbreak ".join(text for text in texts if text)

    def block(self, chain: Chain, breaks: bool = True) -> Block:
        """A chain's lines; with ``breaks``, a right side too wide for the page continues on further rows."""
        relation = {"=": "=", ":=": r"\coloneqq", "update": self.update_relation}[chain.relation]
        lhs = self.math(chain.lhs)
        room = TEXT_WIDTH_PT - estimated_width(lhs) - _RELATION_PT - 4.0
        lines, previous, last_broken = [], lhs, False
        for step in chain.steps:
            rhs = self.math(step.expr)
            if rhs == previous:
                continue  # the notation writes both the same way
            rows = self.rows_within(step.expr, room) if breaks and estimated_width(rhs) > room else [rhs]
            lines.append(Line(lhs if not lines else "", relation if not lines else "=", rows[0],
                              self.reasons(step.reasons)))
            lines += [Line("", "", r"\quad " + row, "") for row in rows[1:]]
            previous, last_broken = rhs, len(rows) > 1
        if chain.boxed and lines and not last_broken:
            last = lines[-1]
            lines[-1] = replace(last, rhs=rf"\boxed{{{last.rhs}}}")
        return Block(chain.key, tuple(fitted(lines)), chain.boxed)

    def rows_within(self, expr, room: float) -> list[str]:
        """The printed expression over as few rows as keep each within ``room`` points (the first row
        set flush, the others indented by a quad)."""
        rows: list[str] = []
        pieces = self.printer.pieces(expr)
        if len(pieces) == 1:
            pieces = self.factor_pieces(expr)
        for piece in pieces:
            limit = room - (11.0 if rows else 0.0)
            if rows and estimated_width(rows[-1] + " " + piece) <= limit:
                rows[-1] += " " + piece
            else:
                rows.append(piece)
        return rows

    def factor_pieces(self, expr) -> list[str]:
        """A long product (a sum over paths of a chain of factors) cut between its factors, in the order
        the chain was built; the sum sign goes with the first factor."""
        limits = ()
        if isinstance(expr, sp.Sum) and isinstance(expr.function, sp.Mul):
            expr, limits = expr.function, expr.limits
        if not isinstance(expr, sp.Mul) or len(expr.args) < 2:
            return [self.math(expr)]
        def factor_text(factor) -> str:
            return self.printer.parenthesize(factor, PRECEDENCE["Mul"]) if factor.is_Add else self.math(factor)

        first, *rest = expr.args
        head = self.math(sp.Sum(first, *limits)) if limits else factor_text(first)
        return [head, *(factor_text(factor) for factor in rest)]

    @property
    def update_relation(self) -> str:
        return {"time": "=", "arrow": r"\leftarrow", "new_old": "="}[self.notation.update_style]


# --------------------------------------------------------------------------- the derivation document

SECTION_TITLES = {
    "network": "The network",
    "activations": "Derivatives of the activations",
    "regression": "Linear regression by gradient descent",
    "general": "The equations of backpropagation",
    "worked": "Two weights followed to the loss",
    "output": "The output layer",
    "hidden": "A hidden layer",
    "matrix": "The matrix form",
    "explicit": "The gradient of every weight",
    "update": "The update rule",
    "normalisation": "Normalisation",
    "batch_normalisation": "Batch normalisation",
    "window": "A window layer",
}
# What each window layer kind is called in a section's title.
_WINDOW_NAMES = {"conv1d": "convolution", "conv2d": "convolution", "max_pool1d": "max pooling",
                 "max_pool2d": "max pooling", "avg_pool1d": "average pooling", "avg_pool2d": "average pooling"}


@dataclass
class SectionView:
    kind: str
    title: str
    layer: int | None
    blocks: dict[str, Block]
    symbols: dict[str, str]
    facts: dict
    groups: dict[str, list[Block]] = field(default_factory=dict)

    def rows(self, keys) -> list[Row]:
        """The lines of the named chains that this section has, for one align* environment."""
        return rows_of(self.blocks[key] for key in keys if key in self.blocks)


def legend(writer: Writer, spec: Spec) -> list[dict]:
    """One row per layer: how the notation names its units, weights, biases and error terms."""
    rows = []
    for current in network_of(spec).layers:
        layer, j = current.index, q.unit_index(current.index, "cur")
        if hasattr(current, "index_output"):  # a window layer's entries by channel and position
            j = current.index_output().indices
        named = {parameter.role: writer.math(indexed) for parameter, indexed, _ in current.index_gradients()}
        rows.append({
            "layer": writer.notation.layer_name(layer),
            "units": spec.sizes[layer],
            # A pooling layer has no activation: the column names its reduction of each window.
            "activation": (r"\max" if current.maximum else r"\operatorname{mean}") if getattr(current, "pooling", False)
            else writer.notation.activation(spec.layers[layer - 1].activation),
            "pre": writer.math(q.pre(layer)[j]),
            "act": writer.math(q.act(layer)[j]),
            "weight": named.get("weight"),
            "bias": named.get("bias"),
            "delta": writer.math(q.delta(layer)[j]),
        })
    return rows


def _symbols(writer: Writer, layer: int | None, spec: Spec) -> dict[str, str]:
    out = {
        "sample_loss": writer.math(q.SAMPLE_LOSS),
        "loss": writer.math(q.LOSS),
        "rate": writer.math(q.LEARNING_RATE),
        "input": writer.math(q.inputs()[q.unit_index(0, "prev")]),
        "target": writer.math(q.targets()[q.unit_index(len(spec.layers), "cur")]),
        "target_index": writer.math(q.unit_index(len(spec.layers), "cur")),
        "last_act": writer.math(q.act(len(spec.layers))[q.unit_index(len(spec.layers), "cur")]),
        "prediction": writer.math(q.predictions()[q.unit_index(len(spec.layers), "cur")]),
        "samples": writer.math(q.N_SAMPLES),
        "sample": writer.math(q.sample_index()),
        "sample_loss_n": writer.math(q.sample_losses()[q.sample_index()]),
    }
    if layer is not None:
        j, i = q.unit_index(layer, "cur"), q.unit_index(layer - 1, "prev")
        out.update({
            "layer": writer.notation.layer_name(layer),
            "j": writer.math(j),
            "i": writer.math(i),
            "pre": writer.math(q.pre(layer)[j]),
            "act": writer.math(q.act(layer)[j]),
            "prev_act": writer.math(q.act(layer - 1)[i]),
            "weight": writer.math(q.weight(layer)[i, j]),
            "bias": writer.math(q.bias(layer)[j]),
            "delta": writer.math(q.delta(layer)[j]),
            "activation": writer.notation.activation(spec.layers[layer - 1].activation),
        })
        if layer < len(spec.layers):
            k = q.unit_index(layer + 1, "next")
            out.update({"k": writer.math(k), "next_layer": writer.notation.layer_name(layer + 1),
                        "next_pre": writer.math(q.pre(layer + 1)[k]), "next_delta": writer.math(q.delta(layer + 1)[k]),
                        "incoming": writer.math(q.incoming(layer)[j])})
    return out


def _normalisation_symbols(writer: Writer, layer: int) -> dict[str, str]:
    """How the notation names a normalised layer's quantities, for the prose."""
    j, k = q.unit_index(layer, "cur"), q.unit_index(layer, "cur'")
    out = {name: writer.math(quantity(layer)[j]) for name, quantity in (
        ("weighted", q.weighted), ("normalised", q.normalised), ("gain", q.gain), ("shift", q.shift),
        ("weighted_delta", q.weighted_delta), ("normalised_delta", q.normalised_delta))}
    out.update({kind: writer.math(q.layer_statistic(kind, layer)) for kind in q.NORMALISATION_LAYER_KINDS})
    out.update({"k": writer.math(k), "normalised_k": writer.math(q.normalised(layer)[k])})
    return out


def _batch_normalisation_symbols(writer: Writer, layer: int, spec: Spec) -> dict[str, str]:
    """How the notation names a batch-normalised layer's quantities over the batch, for the prose."""
    j, n, other = q.unit_index(layer, "cur"), q.sample_index(), q.unit_index(0, "sample'")
    out = {f"{name}_n": writer.math(quantity(layer)[n, j]) for name, quantity in (
        ("weighted", q.weighted), ("normalised", q.normalised), ("weighted_delta", q.weighted_delta),
        ("normalised_delta", q.normalised_delta))}
    out.update({f"{kind}_j": writer.math(q.layer_statistic(kind, layer)[j]) for kind in ("mean", "variance", "scale")})
    coefficient = sample_coefficient(spec, q.N_SAMPLES)
    out.update({"other": writer.math(other), "normalised_other": writer.math(q.normalised(layer)[other, j]),
                "inverse_coefficient": "" if coefficient == 1 else writer.math(1 / coefficient)})
    return out


def _window_symbols(writer: Writer, layer) -> dict[str, str]:
    """How the notation names a window layer's entries and indices, for the prose."""
    math = writer.math
    channel_out, channel = layer.output_channel(), q.window_index(layer.index, "channel")
    positions, offsets, sources = layer.positions_index(), layer.offsets_index(), layer.sources_index()
    out = {
        "output": math(layer.index_output("pre")), "output_act": math(layer.index_output("act")),
        "out_channel": math(channel_out), "other_channel": math(layer.output_channel(1)),
        "channel": math(channel), "positions": ", ".join(math(p) for p in positions),
        "offsets": ", ".join(math(t) for t in offsets),
        "read": math(layer.index_input(channel_out if layer.pooling else channel,
                                       layer.read_positions(positions, offsets))),
        "below": math(layer.index_input(channel, sources)),
        "flat": math(layer.flat_unit(channel_out, positions)),
        "bracket": math(sp.KroneckerDelta(layer.output_channel(1), channel_out, evaluate=False)),
    }
    if layer.pooling and layer.maximum:
        out["chi"] = math(q.first_max(layer.index)[(channel_out, *positions, *offsets)])
    else:
        out["kernel"] = "" if layer.pooling else math(layer.index_kernel())
        out["bias"] = math(q.bias(layer.index)[channel_out]) if layer.bias else ""
    return out


def _window_facts(facts: dict) -> dict:
    """A window layer's sizes as the prose writes them: 3 \\times 3, a stride of 2."""
    def axes(values) -> str:
        return r" \times ".join(str(v) for v in values)

    return {"window_text": axes(facts["window"]), "stride_text": axes(facts["stride"]),
            "padding_text": axes(facts["padding"]), "input_text": axes(facts["input_shape"]),
            "output_text": axes(facts["output_shape"]), "size": math.prod(facts["window"]),
            "padded": any(facts["padding"])}


def _section_view(writer: Writer, section, spec: Spec) -> SectionView:
    # Keys lose their section's prefix ("layer2.delta" is "delta" in its section).
    blocks = {chain.key.split(".", 1)[1]: writer.block(chain) for chain in section.chains}
    blocks = {key: block for key, block in blocks.items() if block.lines}
    title = SECTION_TITLES[section.kind]
    if section.layer is not None:
        name = writer.notation.layer_name(section.layer).replace("~", " ")
        # "The hidden layer H" names itself; "layer 2" needs the section's own title in front.
        title = name[0].upper() + name[1:] if name.startswith("the ") else f"{title}: {name}"
    facts = dict(section.facts)
    # Where an Iverson bracket first appears, the text says what it means.
    facts["indicator"] = any(step.expr.has(sp.KroneckerDelta) for chain in section.chains for step in chain.steps)
    view = SectionView(section.kind, title, section.layer, blocks, _symbols(writer, section.layer, spec), facts)
    if section.kind in ("general", "regression"):
        _tag(view, writer.notation)
    if section.kind == "general":
        _general_facts(view, writer.notation, section)
        if section.facts["skipped"]:
            _skip_facts(view, writer, section)
    if section.kind == "normalisation":
        view.title = f"The normalisation of {writer.notation.layer_name(section.layer).replace('~', ' ')}"
        view.symbols.update(_normalisation_symbols(writer, section.layer))
        view.facts["epsilon_tex"] = tex_number(section.facts["epsilon"])
    if section.kind == "batch_normalisation":
        view.title = f"The batch normalisation of {writer.notation.layer_name(section.layer).replace('~', ' ')}"
        view.symbols.update(_normalisation_symbols(writer, section.layer))
        view.symbols.update(_batch_normalisation_symbols(writer, section.layer, spec))
        view.facts["epsilon_tex"] = tex_number(section.facts["epsilon"])
        view.facts["momentum_tex"] = tex_number(section.facts["momentum"])
        view.facts["keep_tex"] = tex_number(section.facts["keep"])
    if section.kind == "window":
        view.title = (f"The {_WINDOW_NAMES[section.facts['kind']]} of "
                      f"{writer.notation.layer_name(section.layer).replace('~', ' ')}")
        view.symbols.update(_window_symbols(writer, network_of(spec).layer(section.layer)))
        view.facts.update(_window_facts(section.facts))
    if section.kind in ("output", "hidden") and section.facts.get("normalised"):
        view.symbols.update(_normalisation_symbols(writer, section.layer))
    if section.kind == "worked":
        view.facts["walks"] = [_walk(writer, blocks, walk) for walk in section.facts["paths"]]
    if section.kind == "explicit":
        shared = {symbol.name for symbol in section.facts["shared"]}
        gradients = [block for key, block in blocks.items() if key not in shared]
        view.groups = {"shared": [block for key, block in blocks.items() if key in shared], "gradients": gradients}
        # Side by side (SymPy's form, then the delta rule's) where both fit the line, else one under the other.
        widths = [max((estimated_width(block.lines[n].rhs) for block in gradients if len(block.lines) > n), default=0)
                  for n in (0, 1)]
        left = max((estimated_width(block.lines[0].lhs) for block in gradients), default=0)
        view.facts["stacked"] = any(len(block.lines) > 2 for block in gradients) or \
            left + _RELATION_PT + widths[0] + 2 * _REASON_GAP_PT + widths[1] > TEXT_WIDTH_PT
        view.groups["gradient_rows"] = rows_of(gradients) if view.facts["stacked"] else []
    return view


def _tag(view: SectionView, notation: Notation) -> None:
    """Numbers a section's equations as the notation's text does."""
    for key, tag in notation.equation_tags.items():
        block = view.blocks.get(key)
        if block is not None:
            lines = list(block.lines)
            last = max(position for position, line in enumerate(lines) if line.relation)
            lines[last] = replace(lines[last], tag=tag)
            view.blocks[key] = replace(block, lines=tuple(lines))


def _general_facts(view: SectionView, notation: Notation, section) -> None:
    """Names the layers the general equations speak of."""
    facts = section.facts
    view.facts["output_layer"] = notation.layer_name(facts["output"])
    view.facts["output_number"] = notation.layer_text(facts["output"]) if notation.numbers_layers else ""
    view.facts["hidden_layer"] = view.facts["above_layer"] = None  # a network of one layer has no hidden layer
    if facts["hidden"] is not None:
        view.facts["hidden_layer"] = notation.layer_name(facts["hidden"])
        view.facts["above_layer"] = notation.layer_name(facts["hidden"] + 1)
    view.facts["generic"] = notation.generic_symbol


def _skip_facts(view: SectionView, writer: Writer, section) -> None:
    """Names the skip indicator of the layer above the hidden one, the bracket that picks the skip's unit, and
    the network's residual layers."""
    hidden = section.facts["hidden"]
    j, k = q.unit_index(hidden, "cur"), q.unit_index(hidden + 1, "next")
    view.facts["skip"] = writer.math(q.skip(hidden + 1))
    view.facts["bracket"] = writer.math(sp.KroneckerDelta(j, k))
    view.facts["bracket_equal"] = writer.math(sp.Eq(j, k, evaluate=False))
    view.facts["skip_unit"] = writer.math(j)
    view.facts["residual_layers"] = [writer.notation.layer_name(layer) for layer in section.facts["residual"]]
    # Layers by name are this network's own, so the indicator has a value: 1 if the layer above is residual.
    named = not section.facts["symbolic"]
    view.facts["skip_value"] = int(hidden + 1 in section.facts["residual"]) if named else None


def _walk(writer: Writer, blocks: dict[str, Block], walk: dict) -> dict:
    """One worked weight: its path to the loss, its factors with their derivatives, and the product."""
    weight, *rest = walk["path"]
    return {
        "weight": writer.math(weight),
        "layer": writer.notation.layer_name(walk["layer"]),
        "path": r" \to ".join(writer.math(quantity) for quantity in walk["path"]),
        "branches": [writer.notation.layer_name(layer) for layer in walk["branches"]],
        "reused": walk["reused"],
        "factor_rows": rows_of(blocks[f"{walk['key']}.{key}"] for key in walk["factors"]
                               if f"{walk['key']}.{key}" in blocks),
        "rows": rows_of([blocks[walk["key"]]]),
    }


def check_spec_typesettable(spec: Spec) -> None:
    """The spec's text that goes on the page, checked before any work (see symbp.render.latex.texchars)."""
    check_typesettable(spec.title or "", "title")
    check_typesettable(spec.name, "name")


def tex_number(value, digits: int = 12) -> str:
    """A number as a textbook writes it, to ``digits`` significant digits: 0.05, 0.999, 10^{-7},
    2.5 \\cdot 10^{-8}."""
    value = float(value)
    if value == 0 or 1e-4 <= abs(value) < 1e6:
        return format(value, f".{digits}g")
    exponent = math.floor(math.log10(abs(value)))
    mantissa = float(format(value / 10**exponent, f".{digits}g"))
    if abs(mantissa) >= 10:  # rounding carried into the next power
        mantissa, exponent = mantissa / 10, exponent + 1
    power = f"10^{{{exponent}}}"
    if mantissa == 1:
        return power
    return f"{mantissa:.{digits}g} \\cdot {power}"


def _settings(training) -> dict[str, str]:
    names = ("learning_rate", "momentum", "beta1", "beta2", "epsilon")
    return {name: tex_number(getattr(training, name)) for name in names if getattr(training, name, None) is not None}


# The text block is 16.4 cm wide (A4, 2.3 cm margins); TikZ scales coordinates, not the 1 cm units
# nor the captions under the outermost layers (about 2 cm wide).
_TEXT_WIDTH_CM = 16.4
_EDGE_CM = 2.4


def drawing_scale(drawing) -> float:
    """The largest scale (at most 1) at which the drawing, units and captions included, fits the text block."""
    xs = [node.x for node in drawing.nodes] + [x for x, _, _ in drawing.captions]
    span = max(xs) - min(xs) if xs else 0.0
    if span <= 0:
        return 1.0
    return min(1.0, round((_TEXT_WIDTH_CM - _EDGE_CM) / span, 3))


def _last(derivation: Derivation, kind: str, layer: int | None, key: str):
    section = derivation.section(kind, layer)
    found = section.chain(key) if section else None
    return found.steps[-1].expr if found else None


# A normalised layer's definitions on the way to z, and its error terms on the way back (section "normalisation").
_NORMALISATION_FORWARD = ("weighted", "mean", "variance", "scale", "normalised")
_NORMALISATION_ERRORS = ("normalised_delta", "weighted_delta")


def _normalisation_chains(derivation: Derivation, layer: int, keys) -> list[Chain]:
    for kind, prefix in (("normalisation", "norm"), ("batch_normalisation", "batchnorm")):
        section = derivation.section(kind, layer)
        if section is not None:
            return [section.chain(f"{prefix}{layer}.{key}") for key in keys]
    return []


def fausett_algorithm(writer: Writer, derivation: Derivation, spec: Spec) -> list[dict]:
    """Fausett's training algorithm as the post numbers it: feedforward, error terms with delta_in,
    corrections Delta w = alpha delta z, and the update w(new) = w(old) + Delta w; one entry per step."""
    net = net_of(spec)
    depth = len(spec.layers)
    math = writer.math

    def rows(*pairs) -> list[Row]:
        lines = tuple(Line(lhs, "=", rhs, "") for lhs, rhs in pairs)
        return rows_of([Block("fausett", lines, False)])

    steps = []
    for layer in range(1, depth + 1):
        j = q.unit_index(layer, "cur")
        network = derivation.section("network")
        pre = network.chain(f"network.pre{layer}").steps[-1].expr
        act = network.chain(f"network.act{layer}").steps[0].expr
        # A normalised layer computes its weighted sums and their statistics first (its own section's definitions).
        before = [(math(chain.lhs), math(chain.result)) for chain in _normalisation_chains(derivation, layer,
                                                                                              _NORMALISATION_FORWARD)]
        steps.append({"kind": "forward", "layer": writer.notation.layer_name(layer),
                      "rows": rows(*before, (math(q.pre(layer)[j]), math(pre)), (math(q.act(layer)[j]), math(act)))})
    for layer in range(depth, 0, -1):
        j = q.unit_index(layer, "cur")
        pairs = []
        if layer == depth:
            pairs.append((math(q.delta(layer)[j]), math(_last(derivation, "output", layer, f"layer{layer}.delta"))))
        else:
            k = q.unit_index(layer + 1, "next")
            reaches = net.layer(layer + 1).index_input_partial(k, j)
            error_above = input_route(net.layer(layer + 1), k, q.unit_index(layer, "cur'"))[1]
            received = sp.Sum(error_above * reaches, (k, 1, spec.sizes[layer + 1]))
            pairs.append((math(q.incoming(layer)[j]), math(received)))
            pairs.append((math(q.delta(layer)[j]), math(q.incoming(layer)[j] * local_derivative(net, layer, j))))
        pairs += [(math(chain.lhs), math(chain.result)) for chain in _normalisation_chains(derivation, layer,
                                                                                             _NORMALISATION_ERRORS)]
        for _, parameter, gradient in net.layer(layer).index_gradients():
            pairs.append((r"\Delta " + math(parameter), math(q.LEARNING_RATE * gradient)))
        steps.append({"kind": "error", "layer": writer.notation.layer_name(layer), "rows": rows(*pairs)})
    updates = []
    for layer in net.layers:
        for _, parameter, _ in layer.index_gradients():
            updates.append((math(q.Updated(parameter)), math(q.Current(parameter)) + r" + \Delta " + math(parameter)))
    steps.append({"kind": "update", "layer": "", "rows": rows(*updates)})
    return steps


def numerical_check_rows(writer: Writer, spec: Spec) -> list[dict[str, str]]:
    """The numerical check's table (symbp.checks.numcheck), each parameter named in the document's notation."""
    named = {parameter.name: parameter for parameter in network_of(spec).parameters}
    rows = []
    for row in numerical_check(spec):
        quantity = named[row.name].indexed(tuple(n - 1 for n in row.index))
        rows.append({
            "parameter": writer.math(quantity),
            "backpropagation": tex_number(row.backpropagation, 10),
            "central_difference": tex_number(row.central_difference, 10),
            "relative_difference": tex_number(row.relative_difference, 2),
        })
    return rows


# The roles of the parameters, in the order a layer's are listed: weights and biases, a normalised layer's gains
# and shifts.
_PARAMETER_ROLES = ("weight", "bias", "gain", "shift")


def derivation_context(spec_source, notation: str | None = None, writer_class: type[Writer] = Writer) -> dict:
    """The derivation's view-model; ``writer_class`` prints its justifications (symbp.render.html gives its own)."""
    spec = load_spec(spec_source)
    check_spec_typesettable(spec)
    chosen = notation_for(spec, notation)
    derivation: Derivation = derive(spec, conventions_of(chosen))
    shown = [section for section in derivation.sections if section.kind != "regression"]
    regression = derivation.section("regression")
    if regression is not None and chosen.name == "lab":
        # The lab writes linear regression its own way (Steps 1-3), not as a network of one unit.
        chosen, shown = lab_regression(chosen), [regression]
    # The body prints the notation's symbols as the macros its preamble defines, so a teacher renames one in one line.
    if writer_class.uses_macros:
        chosen = chosen.with_macros()
    writer = writer_class(chosen)
    sections = [_section_view(writer, section, spec) for section in shown]
    training = spec.training
    layers = range(1, len(spec.layers) + 1)
    drawing = network_drawing(spec, chosen)
    return {
        "marker": MARKER,
        "version": __version__,
        "spec": spec,
        "title": spec.title or spec.name,
        "notation": chosen,
        "legend": legend(writer, spec),
        "drawing": drawing,
        "drawing_scale": drawing_scale(drawing),
        "sections": sections,
        "symbols": _symbols(writer, None, spec),
        "explicit_limit": EXPLICIT_PARAMETER_LIMIT,
        "parameter_count": spec.parameter_count,
        "fausett_sign": chosen.error_sign < 0,
        "training": training,
        "settings": _settings(training),
        "numerical_check": numerical_check_rows(writer, spec),
        # Fausett's algorithm is stated for dense units; a network with window layers has their sections instead.
        "fausett_steps": fausett_algorithm(writer, derivation, spec) if chosen.name == "fausett"
        and derivation.section("window") is None else [],
        "check": {"samples": numcheck.SAMPLES, "seed": numcheck.SEED, "step": tex_number(numcheck.STEP)},
        "loss": spec.loss,
        # The order in which multi-layer chains are laid out.
        "forward_keys": [f"{kind}{layer}" for layer in layers for kind in ("pre", "act")],
        "backward_keys": [f"delta{layer}" for layer in reversed(layers)],
        "gradient_keys": [f"{kind}{layer}" for layer in reversed(layers) for kind in ("weight", "bias")],
        "update_gradient_keys": [f"gradient.{kind}{layer}" for layer in layers for kind in _PARAMETER_ROLES],
        "update_keys": [f"{kind}{layer}" for layer in layers for kind in _PARAMETER_ROLES],
        "normalised_layers": [chosen.layer_name(section.layer) for section in derivation.sections
                              if section.kind in ("normalisation", "batch_normalisation")],
        "batch_normalised": any(section.kind == "batch_normalisation" for section in derivation.sections),
    }


def derivation_document(spec_source: SpecSource, notation: str | None = None) -> str:
    """The LaTeX source of the derivation of backpropagation for a spec."""
    return render("latex/derivation.tex.j2", **derivation_context(spec_source, notation))
