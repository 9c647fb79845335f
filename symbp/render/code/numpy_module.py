"""Turns the symbolic network into the plain data the NumPy module template lays out."""

from __future__ import annotations

import hashlib
import itertools
import json
import textwrap
from dataclasses import dataclass, field

import sympy as sp
from sympy import MatrixSymbol

from symbp import __version__
from symbp.registry.calculus import ActivationCalculus, a_vec, g_vec
from symbp.registry.rules import RowMax, RowSum, y, y_vec, yhat, z, z_vec
from symbp.render.code.inplace import InPlacePrinter, Workspace
from symbp.render.code.printing import ArraySum, numpy_code
from symbp.render.code.runtime_source import OPTIONAL_RUNTIME_MODULES, RUNTIME_MODULES, import_block, runtime_source
from symbp.render.templating import render
from symbp.spec.expressions import NotFinite, evaluate_everywhere
from symbp.spec.schema import SpecSource
from symbp.symbolic.batchnorm import batch_norm_layers
from symbp.symbolic.dropout import dropout_layers, evaluation_mode
from symbp.symbolic.network import Layer, Network, build_network, n_samples
from symbp.symbolic.penalties import weight_penalties
from symbp.symbolic.windows import window_layers

MARKER = "# symbp-generated-module"
# Networks no wider than this train with a sample per column: a few long rows beat many short ones.
# Measured: full batches gain 10-40% at every width up to 64, but gathering a mini-batch's columns
# costs a random access per value, and from 16 units wide that loses 10% (2x at 64 inputs).
SAMPLES_AS_COLUMNS_UP_TO = 8
# Parameters that start at a fixed value whatever the spec's init: biases and shifts at 0, gains at 1.
FIXED_STARTS = ("bias", "shift", "gain")


@dataclass(frozen=True)
class Line:
    target: str
    code: str
    comment: str = ""
    expr: object = None  # the SymPy expression the code computes, for the in-place step


@dataclass(frozen=True)
class StepLine:
    """One assignment of the in-place training step: what it computes and the ufunc calls that do it."""

    target: str
    reads_as: str
    calls: list[str]


@dataclass(frozen=True)
class WorkArray:
    """An array of the in-place step's workspace: the NumPy function that allocates it, and its shape."""

    allocate: str
    shape: str


@dataclass(frozen=True)
class DiagnosedLayer:
    """What diagnose() measures for one layer, with the code that measures it."""

    index: int
    activation: str
    units: int
    params: tuple[str, ...]
    output: str
    extremes: tuple[float, float] | None  # the output's limits at -inf and +inf, when both are finite
    derivative: str | None  # code for phi'(Z), when it can be exactly zero (a unit can die)


@dataclass(frozen=True)
class MaskView:
    """A dropout layer's mask, as the module names and draws it."""

    name: str  # "M2": the mask on layer 2's inputs
    layer: int
    rate: float
    width: int  # the layer's inputs: the mask's columns


@dataclass(frozen=True)
class ParamView:
    name: str
    shape: tuple[int, ...]
    kind: str  # "weight" or "bias"
    fan_in: int
    fan_out: int
    explicit: list | None


def spec_digest(network: Network) -> str:
    canonical = json.dumps(network.spec.canonical(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _code(expr, bindings: dict | None = None, arrays=()) -> str:
    return numpy_code(expr, bindings, names={"N": "n"}, arrays=arrays)


def incoming_first(vjp: sp.Expr) -> sp.Expr:
    """Writes g[j] * phi' with the incoming gradient first, the way backprop is read aloud."""
    local, incoming = vjp.as_independent(g_vec)
    if local == 1 or not isinstance(vjp, sp.Mul):
        return vjp
    return sp.Mul(incoming, *sp.Mul.make_args(local), evaluate=False)


def _layer_bindings(layer: Layer) -> dict:
    return {a_vec: layer.output, z_vec: layer.preactivation_symbol}


# Stands for a hidden layer's pre-activation in its activation's lines, bound to Z1, Z2, ... when they are printed.
_HIDDEN_PRE = sp.Symbol("__hidden_preactivation__", real=True)


def activation_parts(layer: Layer, pre: sp.Symbol,
                     library_forms: bool = False) -> tuple[list[tuple[sp.Symbol, sp.Expr]], sp.Expr]:
    """A hidden layer's activation as code evaluates it (the registry's stable form, or with library_forms its
    library form where it has one) over pre, a symbol that stands for its pre-activation: the temporaries
    (name, value) that hold what it would compute twice, then its value over them. The sigmoid's exp(-|z|)
    enters its numerator and its denominator, and is computed once: E1 for layer 1 (E for an exponential,
    ``shared`` for anything else)."""
    calculus = layer.calculus
    evaluated = calculus.library_forward if library_forms else calculus.numeric_forward
    forward = index_free(evaluated, {z_vec: pre}) if calculus.rowwise else evaluated.xreplace({z: pre})
    placeholders = (sp.Symbol(f"__shared{i}__", real=True) for i in itertools.count())
    shared, (value,) = sp.cse([forward], symbols=placeholders, optimizations=None, order="none")
    names: dict = {}
    for placeholder, part in shared:
        stem = f"E{layer.index}" if isinstance(part, sp.exp) else f"shared{layer.index}"
        taken = {name.name for name in names.values()}
        name = next(n for n in itertools.chain([stem], (f"{stem}_{i}" for i in itertools.count(1))) if n not in taken)
        names[placeholder] = sp.Symbol(name, real=True)
    return [(names[p], part.xreplace(names)) for p, part in shared], value.xreplace(names)


def activation_lines(layer: Layer, code=_code, library_forms: bool = False) -> list[Line]:
    """The lines of a hidden layer's activation: its temporaries, then its output A."""
    shared, value = activation_parts(layer, _HIDDEN_PRE, library_forms)
    bindings = {_HIDDEN_PRE: layer.preactivation_symbol}
    temporaries = [name for name, _ in shared]
    assignments = [*shared, (layer.output, value)]
    comment = activation_comment(layer, library_forms)
    return [Line(str(target), code(expr, bindings, temporaries), comment if i == 0 else "", expr)
            for i, (target, expr) in enumerate(assignments)]


def hidden_lines(network: Network, code=_code, training: bool = False, library_forms: bool = False) -> list[Line]:
    """The forward pass up to the output layer's pre-activation, printed by code (an array library's printer).

    In evaluation mode (by default) every dropout mask is all ones, which leaves the plain network; with
    ``training``, each dropout layer multiplies its inputs by its mask (the arrays M1, M2, ...). With
    library_forms, activations are the registry's library forms where they have one (see activation_parts)."""
    lines = []
    for layer in network.layers:
        preactivation = layer.preactivation if training else evaluation_mode(network, layer.preactivation)
        lines += _steps(layer, "forward_steps", code) or [Line(layer.preactivation_symbol.name, code(preactivation))]
        if layer is network.layers[-1]:
            break
        lines += activation_lines(layer, code, library_forms)
    return lines


def _steps(layer: Layer, stage: str, code) -> list[Line]:
    """The arrays a layer kind computes on its way to Z (``forward_steps``) or from delta to what its
    gradients read (``backward_steps``); none for a kind whose pre-activation and pullbacks are one expression each."""
    return [Line(step.target.name, code(step.expr, step.bindings), step.comment)
            for step in getattr(layer, stage, ())]


def in_place_step(network: Network) -> bool:
    """Whether the in-place training step can express every layer: not those that compute arrays of their own
    on the way (layer normalisation), which train on the plain step."""
    return not any(getattr(layer, "forward_steps", ()) for layer in network.layers)


def activation_comment(layer: Layer, library_forms: bool = False) -> str:
    calculus = layer.calculus
    if library_forms and calculus.activation.library_expr is not None:
        return f"{calculus.short_name}: the array library's own function where it has one"
    rewritten = calculus.numeric_forward != calculus.forward
    return f"{calculus.short_name}, in an equivalent form that cannot overflow" if rewritten else ""


@dataclass(frozen=True)
class OutputBlock:
    """The output layer's activation, loss terms and error term, sharing their common subexpressions."""

    lines: list[Line]
    loss_terms: str | None
    delta: str | None
    terms_expr: object = None
    delta_expr: object = None
    bindings: dict = field(default_factory=dict)
    temporaries: list = field(default_factory=list)


def index_free(expr: sp.Expr, arrays: dict) -> sp.Expr:
    """A row-wise expression without indices: every unit of a sample's row is computed at once."""
    expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda e: RowSum(e.function))
    expr = expr.replace(lambda e: isinstance(e, sp.Indexed), lambda e: arrays[e.base])
    return expr.replace(lambda e: isinstance(e, RowMax), lambda e: RowMax(arrays[e.args[0]]))


def output_block(network: Network, *, with_loss: bool, with_delta: bool, code=_code,
                 library_forms: bool = False) -> OutputBlock:
    """The output layer's lines (for the prediction, the loss terms, the error term), printed by code; with
    library_forms, its activation is the registry's library form where it has one (see activation_parts)."""
    last = network.layers[-1]
    # Stand-ins that print as the arrays they are bound to; symbols, so that cse can work on them.
    # Real, as what they stand for is: otherwise SymPy asks whether tanh(tanh(...)) of them is real, at a
    # cost that grows exponentially with the nesting. The temporaries are real too, so that products
    # keep the order of their factors.
    output, target, pre = sp.symbols("__output__ __target__ __preactivation__", real=True)
    arrays = {a_vec: output, y_vec: target, z_vec: pre}
    scalars = {z: pre, yhat: output, y: target}
    bindings = {output: last.output, target: network.targets, pre: last.preactivation_symbol}

    def row_form(expr):
        return index_free(expr, arrays).xreplace(scalars)

    activation = row_form(last.calculus.library_forward if library_forms else last.calculus.numeric_forward)
    loss = network.output.loss
    terms = row_form(loss.expr if loss.stable_expr is None else loss.stable_expr)
    delta = row_form(network.loss_coefficient * network.output.delta)
    need_activation = with_delta or not with_loss or terms.has(output)
    wanted = [activation if need_activation else None, terms if with_loss else None, delta if with_delta else None]
    names = (sp.Symbol(f"t{i}", real=True) for i in itertools.count())
    shared, reduced = sp.cse([e for e in wanted if e is not None], symbols=names, optimizations=None, order="none")
    # Temporaries that need the prediction come after its line; the others before it.
    after: set[sp.Symbol] = set()
    for name, value in shared:
        if value.has(output) or value.free_symbols & after:
            after.add(name)
    temporaries = [name for name, _ in shared]

    def temporary_lines(names_wanted):
        chosen = [(name, value) for name, value in shared if name in names_wanted]
        return [Line(str(name), code(value, bindings, temporaries), "" if i else "shared by the lines below", value)
                for i, (name, value) in enumerate(chosen)]

    reduced_iter = iter(reduced)
    exprs = [next(reduced_iter) if expr is not None else None for expr in wanted]
    results = [code(expr, bindings, temporaries) if expr is not None else None for expr in exprs]
    lines = temporary_lines(set(temporaries) - after)
    if results[0] is not None:
        lines.append(Line(last.output.name, results[0], activation_comment(last, library_forms), exprs[0]))
    lines += temporary_lines(after)
    return OutputBlock(lines, results[1], results[2], exprs[1], exprs[2], bindings, temporaries)


def loss_comment(network: Network) -> str:
    loss = network.output.loss
    if loss.stable_expr is None:
        return ""
    return (f"{loss.short_name} from Z{network.layers[-1].index} directly, never the log of a probability "
            "that rounded to zero")


def backward_lines(network: Network, output_delta: str, code=_code, name_window_errors: bool = False) -> list[Line]:
    """The backward pass from the output's error term (its code, output_delta), printed by code: one builder
    for every array library, so their modules cannot drift apart. With name_window_errors, the error that a
    window layer carries back to its input (im2col's adjoint) gets a line of its own, deltaA1 for layer 1's
    output, before the activation's derivative multiplies it: the array API's longer names would not fit one."""
    lines = []
    last = network.layers[-1]
    lines.append(
        Line(
            last.delta.name,
            output_delta,
            f"dL/dZ{last.index}: {network.output.loss.short_name} through {last.calculus.short_name}",
        )
    )
    for layer in reversed(network.layers):
        lines += _steps(layer, "backward_steps", code)
        for parameter in layer.parameters:
            lines.append(Line(f"grad_{parameter.name}", code(layer.gradient(parameter)), f"dL/d{parameter.name}"))
        if layer.index == 1:
            break
        previous = network.layers[layer.index - 2]
        hidden_delta = incoming_first(previous.calculus.vjp)
        incoming = layer.input_gradient
        if name_window_errors and not isinstance(incoming, sp.MatrixExpr):
            carried = MatrixSymbol(f"deltaA{previous.index}", *previous.output.shape)
            lines.append(Line(carried.name, code(incoming), f"dL/dA{previous.index}: each window's error added back "
                                                            "onto the entries it read"))
            incoming = carried
        lines.append(
            Line(
                previous.delta.name,
                code(hidden_delta, {**_layer_bindings(previous), g_vec: incoming}),
                f"dL/dZ{previous.index} = (dL/dA{previous.index}) * {previous.calculus.short_name}'",
            )
        )
    return lines


def _sum_of_squares(block: OutputBlock) -> str | None:
    """np.vdot(t, t) for loss terms that are the square of a temporary array t: one call, no temporary."""
    terms = block.terms_expr
    if terms is not None and terms.is_Pow and terms.exp == 2 and terms.base in block.temporaries:
        return f"np.vdot({terms.base}, {terms.base})"
    return None


def _shape_code(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _transposed_symbols(network: Network) -> dict:
    """Each (N, k) matrix symbol as the transpose of a (k, N) symbol of the same name."""
    batch_wide = [network.data, network.targets, *(layer.mask for layer in dropout_layers(network))]
    for layer in network.layers:
        batch_wide += [layer.preactivation_symbol, layer.output, layer.delta]
    return {m: MatrixSymbol(m.name, m.shape[1], m.shape[0]).T for m in batch_wide}


def _inplace_step(network: Network, block: OutputBlock, samples_as_columns: bool,
                  with_gradient: bool = True) -> tuple[list[StepLine], str, dict]:
    """The training step as ufunc calls into a workspace: lines, the loss value's code, the arrays.
    Without with_gradient, the forward pass and the loss alone (block then needs no error term).

    With samples_as_columns, every array that runs over the batch holds a sample per column, so
    that a narrow layer's arrays are a few long contiguous rows: each expression is then
    transposed (Z = X W becomes Z^T = W^T X^T) before it is printed.
    """
    workspace = Workspace()
    steps: list[StepLine] = []
    known: dict = {}
    columns = _transposed_symbols(network) if samples_as_columns else {}

    def arranged(expr, transpose=True):
        """expr over the arrays the step holds: transposed whole when it runs over the batch (or is a
        bias's gradient, kept as a column); a weight's gradient keeps its shape."""
        if not samples_as_columns:
            return expr
        moved = expr.xreplace(columns)
        return sp.transpose(moved) if transpose else moved.doit()

    def printer_for(bindings):
        bindings = {name: arranged(value) for name, value in (bindings or {}).items()}
        return InPlacePrinter(bindings, known, workspace, names={"N": "n"}, samples_as_columns=samples_as_columns)

    def write(target, expr, units_or_shape, bindings=None):
        printer = printer_for(bindings)
        shape = printer.batch_shape(units_or_shape) if isinstance(units_or_shape, int) else units_or_shape
        steps.append(StepLine(target, printer.doprint(expr), printer.assign(target, expr, shape)))
        return shape

    last = network.layers[-1]
    for layer in network.layers:
        # The training step multiplies a dropout layer's inputs by its mask; the loss alone is measured in
        # evaluation mode, every mask all ones (train()'s loss per epoch).
        preactivation = layer.preactivation if with_gradient else evaluation_mode(network, layer.preactivation)
        write(layer.preactivation_symbol.name, arranged(preactivation), layer.units)
        if layer is last:
            break
        shared, value = activation_parts(layer, _HIDDEN_PRE)
        bindings = {_HIDDEN_PRE: layer.preactivation_symbol}
        for name, expr in shared:
            known[name] = write(name.name, expr, printer_for(bindings).shape_of(expr) or layer.units, bindings)
        write(layer.output.name, value, layer.units, bindings)
    for line in block.lines:
        shape = printer_for(block.bindings).shape_of(line.expr) or last.units
        shape = write(line.target, line.expr, shape, block.bindings)
        if line.target != last.output.name:
            known[sp.Symbol(line.target, real=True)] = shape
    terms = block.terms_expr
    total = _sum_of_squares(block)
    if total is None:
        write("loss_terms", terms, printer_for(block.bindings).shape_of(terms) or last.units, block.bindings)
        total = "np.sum(loss_terms)"
    if not with_gradient:
        return steps, total, _work_arrays(workspace)
    write(last.delta.name, block.delta_expr, last.units, block.bindings)
    for layer in reversed(network.layers):
        for parameter in layer.parameters:
            # A matrix's gradient keeps its shape; a vector's is computed as a row and stored flat.
            matrix = len(parameter.shape) == 2
            write(f"grad_{parameter.name}", arranged(layer.gradient(parameter), transpose=not matrix), parameter.shape)
        if layer.index == 1:
            break
        previous = network.layers[layer.index - 2]
        incoming, output, pre = sp.symbols("__incoming__ __output__ __pre__", real=True)
        vjp = index_free(incoming_first(previous.calculus.vjp), {g_vec: incoming, a_vec: output, z_vec: pre})
        bindings = {incoming: layer.input_gradient, output: previous.output, pre: previous.preactivation_symbol}
        write(previous.delta.name, vjp, previous.units, bindings)
    return steps, total, _work_arrays(workspace)


def _work_arrays(workspace: Workspace) -> dict:
    return {name: WorkArray("ones" if name in workspace.filled_with_ones else "empty", _shape_code(shape))
            for name, shape in workspace.shapes.items()}


def penalty_total(network: Network, code=_code) -> str:
    """The weight penalties' sum over every penalised entry, printed by code; "" when the spec has none."""
    penalties = weight_penalties(network)
    if not penalties:
        return ""
    terms = []
    for penalty in penalties:
        w = penalty.entry
        terms += [coefficient * ArraySum(each) for coefficient, each in ((penalty.l1, sp.Abs(w)), (penalty.l2, w**2))
                  if coefficient != 0]
    return code(sp.Add(*terms, evaluate=False)) if terms else ""


def penalty_gradients(network: Network, code=_code) -> list[Line]:
    """What each penalty adds to its weight's gradient, d/dw (l1 |w| + l2 w^2), printed by code on the whole array."""
    lines = []
    for penalty in weight_penalties(network):
        derivative = penalty.derivative()
        if derivative != 0:
            name = penalty.parameter.name
            lines.append(Line(f"grad_{name}", code(derivative),
                              f"dL/d{name} gains the derivative of the penalty {code(penalty.term())} on each entry"))
    return lines


def param_views(network: Network) -> list[ParamView]:
    return [ParamView(p.name, p.shape, p.role, p.fan_in, p.fan_out, p.given) for p in network.parameters]


def architecture(network: Network) -> str:
    shape = network.spec.input_shape
    parts = [f"{network.spec.inputs} {list(shape)}" if shape else str(network.spec.inputs)]
    for layer in network.layers:
        window = getattr(layer, "window", None)
        if window is not None:
            size = "x".join(str(w) for w in window.geometry.window)
            filters = "" if window.pooling else f" {window.filters} filters"
            activation = "" if window.pooling else f", {layer.calculus.short_name}"
            parts.append(f"{layer.units} {list(window.output_shape)} ({window.kind}{filters} {size}{activation})")
            continue
        kind = getattr(layer, "kind", "")
        normalised = {"layer_norm": ", layer norm", "batch_norm": ", batch norm"}
        detail = normalised.get(kind, "" if layer.bias else ", no bias")
        parts.append(f"{layer.units} ({layer.calculus.short_name}{detail})")
    return " -> ".join(parts)


def _value_at(calculus: ActivationCalculus, point: float) -> float | None:
    try:
        return evaluate_everywhere(calculus.forward, {z: point})
    except (NotFinite, TypeError):
        return None


def _extremes(calculus: ActivationCalculus) -> tuple[float, float] | None:
    """The activation's limits at -inf and +inf when both are finite (it can saturate), else None."""
    if calculus.rowwise:
        return None
    limits = []
    for far, farther in ((-30.0, -60.0), (30.0, 60.0)):
        near, beyond = _value_at(calculus, far), _value_at(calculus, farther)
        if near is None or beyond is None or abs(near - beyond) > 1e-9:
            return None
        limits.append(round(beyond, 9) + 0.0)
    return tuple(limits) if limits[0] != limits[1] else None


def _can_die(calculus: ActivationCalculus) -> bool:
    """True when phi' is zero on a whole branch (relu): a unit whose input stays there gets no gradient."""
    derivative = calculus.derivative
    return not calculus.rowwise and isinstance(derivative, sp.Piecewise) and any(
        branch == 0 for branch, _ in derivative.args
    )


def _diagnosed_layers(network: Network) -> list[DiagnosedLayer]:
    views = []
    for layer in network.layers:
        calculus = layer.calculus
        derivative = _code(calculus.derivative, {z: layer.preactivation_symbol}) if _can_die(calculus) else None
        window = getattr(layer, "window", None)
        # A pooling layer has no activation of its own: its kind says what it does.
        activation = window.kind if window is not None and window.pooling else calculus.short_name
        views.append(DiagnosedLayer(
            layer.index, activation, layer.units, tuple(p.name for p in layer.parameters),
            layer.output.name, _extremes(calculus), derivative,
        ))
    return views


def _grows_fast(calculus: ActivationCalculus) -> bool:
    if calculus.rowwise:
        return False
    value = _value_at(calculus, 50.0)
    return value is None or abs(value) > 1e15


def likely_causes(network: Network) -> list[str]:
    """Besides the learning rate, why this network's loss may stop being finite: for train()'s message."""
    causes = []
    for layer in network.layers:
        if not _grows_fast(layer.calculus):
            continue
        name = layer.calculus.short_name
        where = "output layer" if layer is network.layers[-1] else f"layer {layer.index}"
        if layer.calculus.activation.overflow_advice:
            causes.append(f"the {name} {where} {layer.calculus.activation.overflow_advice}")
        else:
            causes.append(f"the {name} activation of the {where} grows very fast and can overflow for large "
                          "pre-activations: start from smaller weights")
    return causes


def _lines_for_diagnose(forward_lines: list[Line], layers: list[DiagnosedLayer]) -> list[Line]:
    """The forward lines up to the last array diagnose() reads: a layer's output where it can saturate,
    its pre-activation where its units can die. Each line feeds the next, so none before it is spare."""
    read = {layer.output for layer in layers if layer.extremes} | {
        f"Z{layer.index}" for layer in layers if layer.derivative}
    last = max((i for i, line in enumerate(forward_lines) if line.target in read), default=-1)
    return forward_lines[: last + 1]


def architecture_lines(network: Network, width: int = 116) -> list[str]:
    """"Network: 3 -> 4 (tanh) -> ...", cut between layers where window layers' shapes make it long."""
    lines = ["Network:"]
    for position, piece in enumerate(architecture(network).split(" -> ")):
        joined = f"{lines[-1]} {'-> ' if position else ''}{piece}"
        if position and len(joined) > width:
            lines.append(f"    -> {piece}")
        else:
            lines[-1] = joined
    return lines


def name_list(names: list[str], indent: int, width: int = 116) -> str:
    """Names joined by commas on one line, or broken between names where the line would pass width, each
    further line indented by indent (the column after an opening bracket)."""
    lines = [names[0]]
    for name in names[1:]:
        if indent + len(lines[-1]) + len(name) + 3 > width:
            lines[-1] += ","
            lines.append(name)
        else:
            lines[-1] += f", {name}"
    return f"\n{' ' * indent}".join(lines)


def _unpacking_targets(names: list[str]) -> str:
    """The targets of diagnose()'s unpacking of the forward pass: a, b, c; [a] for one; in brackets, broken
    between names, where they would not fit one line."""
    if len(names) == 1:
        return f"[{names[0]}]"
    one_line = ", ".join(names)
    return one_line if len(one_line) <= 80 else f"[{name_list(names, indent=9, width=88)}]"


def wrapped(text: str, width: int = 96) -> list[str]:
    """text cut into pieces of at most width characters that join back into it exactly."""
    return textwrap.wrap(text, width, drop_whitespace=False, break_on_hyphens=False) or [text]


def module_context(network: Network, samples_as_columns: bool | None = None) -> dict:
    """The template's data. samples_as_columns forces the training step's layout; by default
    narrow networks (no layer wider than SAMPLES_AS_COLUMNS_UP_TO) get a sample per column."""
    spec = network.spec
    hidden = hidden_lines(network)
    prediction = output_block(network, with_loss=False, with_delta=False)
    for_loss = output_block(network, with_loss=True, with_delta=False)
    for_gradient = output_block(network, with_loss=True, with_delta=True)
    if samples_as_columns is None:
        samples_as_columns = max(spec.sizes) <= SAMPLES_AS_COLUMNS_UP_TO
    dropped = dropout_layers(network)
    in_place = in_place_step(network)
    step_lines, step_total, workspace = _inplace_step(network, for_gradient, samples_as_columns) \
        if in_place else ([], "", {})
    loss_step_lines, loss_step_total, loss_workspace = _inplace_step(
        network, for_loss, samples_as_columns, with_gradient=False) if in_place else ([], "", {})
    training = spec.training
    diagnosed_layers = _diagnosed_layers(network)
    params = param_views(network)
    diagnose_lines = _lines_for_diagnose(hidden + prediction.lines, diagnosed_layers)
    normalised = batch_norm_layers(network)
    statistics = [statistic for layer in normalised for statistic in layer.statistics]
    # The dropout, batch-normalisation and window runtimes go only into modules that use them: every other module
    # stays as it was.
    wanted = {"masks": bool(dropped), "dropout": bool(dropped), "batchnorm": bool(normalised),
              "windows": bool(window_layers(network))}
    runtime_modules = (*RUNTIME_MODULES, *(name for name in OPTIONAL_RUNTIME_MODULES if wanted[name]))
    return {
        "spec": spec,
        "marker": MARKER,
        "version": __version__,
        "digest": spec_digest(network),
        "architecture_lines": architecture_lines(network),
        "params": params,
        # init_params needs its random generator only when some weight is drawn rather than given.
        "draws": training.init != "zeros" and any(p.explicit is None and p.kind not in FIXED_STARTS for p in params),
        "title": textwrap.fill(f"{spec.title or spec.name}: a NumPy trainer for the network in spec '{spec.name}'.",
                               96),
        "layers": network.layers,
        "hidden_lines": hidden,
        "hidden_names": name_list([line.target for line in hidden], indent=12),
        # The left-hand side that unpacks _forward_pass's list.
        "hidden_targets": _unpacking_targets([line.target for line in hidden]),
        "last_preactivation": network.layers[-1].preactivation_symbol.name,
        "prediction_lines": prediction.lines,
        "loss_output_lines": for_loss.lines,
        "gradient_forward_lines": (hidden_lines(network, training=True) if dropped else hidden) + for_gradient.lines,
        "in_place": in_place,
        "step_lines": step_lines,
        "widest": max(spec.sizes),
        "samples_as_columns": samples_as_columns,
        "sample_axis": 1 if samples_as_columns else 0,
        "step_total": step_total,
        "workspace": workspace,
        "loss_step_lines": loss_step_lines,
        "loss_step_total": loss_step_total,
        "loss_workspace": loss_workspace,
        "runtime": runtime_source(runtime_modules).parts,
        "imports": import_block("import math", "import numpy as np", modules=runtime_modules),
        "dropout": [MaskView(layer.mask.name, layer.index, layer.rate, layer.fan_in) for layer in dropped],
        # The masks' unpacking, as the parameters' is: "M1, M2 = masks['M1'], masks['M2']".
        "mask_unpack": (", ".join(layer.mask.name for layer in dropped) + " = "
                        + ", ".join(f"masks[{layer.mask.name!r}]" for layer in dropped)) if dropped else "",
        "backward_lines": backward_lines(network, for_gradient.delta),
        "penalty_total": penalty_total(network),
        "penalty_params": [penalty.parameter.name for penalty in weight_penalties(network)],
        "penalty_gradients": penalty_gradients(network),
        "loss_terms": for_loss.loss_terms,
        "gradient_loss_total": _sum_of_squares(for_gradient) or f"np.sum({for_gradient.loss_terms})",
        "prediction": network.prediction.name,
        "loss_coefficient": _code(network.loss_coefficient),
        "loss_coefficient_is_one": network.loss_coefficient == 1,
        # A batch-normalised layer's means divide by the batch's size.
        "loss_uses_n": network.loss_coefficient.has(n_samples) or bool(normalised),
        "batch_norm": statistics,
        # The running statistics' unpacking, as the parameters' is.
        "statistics_unpack": (", ".join(statistic.name for statistic in statistics) + " = "
                              + ", ".join(f"params[{statistic.name!r}]" for statistic in statistics)) if statistics
        else "",
        # The batch's statistics a training step returns, by the running statistic's name.
        "statistics_lines": [Line(statistic.name, _code(statistic.batch, layer.statistic_bindings))
                             for layer in normalised for statistic in layer.statistics],
        "loss_name": network.output.loss.short_name,
        "loss_comment": loss_comment(network),
        "training": training,
        "likely_causes": [wrapped(cause) for cause in likely_causes(network)],
        "diagnosed_layers": diagnosed_layers,
        # diagnose() takes the hidden layers from _forward_pass, and the output layer's lines when it reads them.
        "diagnose_output_lines": diagnose_lines[len(hidden):],
    }


def generate_module(spec_source: SpecSource | Network, samples_as_columns: bool | None = None) -> str:
    """The source text of the standalone NumPy module for a spec (see module_context for the layout)."""
    network = spec_source if isinstance(spec_source, Network) else build_network(spec_source)
    return render("numpy/module.py.j2", **module_context(network, samples_as_columns))
