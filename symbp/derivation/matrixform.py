"""The matrix form of the backward pass: the index-form results lifted to whole matrices.

The products and transposes (``A^T Delta``, ``Delta W^T``, ``1^T Delta``) come from SymPy's matrix
calculus in ``symbp.symbolic.network``; the elementwise parts (``(A - Y) o A``) are the index-form
expressions of ``symbp.registry.calculus`` lifted entry by entry: a product of entries becomes a Hadamard
product, a function of one entry becomes that function applied to every entry.
"""

from __future__ import annotations

import sympy as sp
from sympy import HadamardPower, HadamardProduct, MatAdd, OneMatrix
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symbp.derivation.indexform import in_layer, local_derivative
from symbp.derivation.model import Chain, Conventions, Reason, Section, penalty_reasons, step
from symbp.derivation.steps import present
from symbp.symbolic import quantities as q
from symbp.symbolic.network import Network, n_samples
from symbp.symbolic.penalties import weight_penalties
from symbp.symbolic.quantities import LOSS, SAMPLE_LOSS, Partial, unit_index


def _bound(expr, bindings) -> bool:
    return any(isinstance(node, sp.Indexed) and node.base in bindings for node in sp.preorder_traversal(expr))


def _entries(expr, bindings) -> set:
    return {node for node in sp.preorder_traversal(expr) if isinstance(node, sp.Indexed) and node.base in bindings}


class NotLiftable(ValueError):
    """An entry's formula that has no matrix form in terms of Hadamard products and elementwise functions."""


def _elementwise_of(expr, entry, matrix):
    variable = sp.Dummy("u", real=True)
    return ElementwiseApplyFunction(sp.Lambda(variable, expr.xreplace({entry: variable})), matrix)


def lift(expr: sp.Expr, bindings: dict, shape: tuple, column: bool = False) -> sp.Basic:
    """The matrix whose every entry is ``expr`` at that entry; NotLiftable if there is no such form."""
    if isinstance(expr, sp.Indexed) and expr.base in bindings:
        return bindings[expr.base]
    if not _bound(expr, bindings):
        return expr
    entries = _entries(expr, bindings)
    if len(entries) == 1 and not expr.is_Mul and not expr.is_Add and not isinstance(expr, sp.Sum):
        (entry,) = entries
        return _elementwise_of(expr, entry, bindings[entry.base])
    if isinstance(expr, sp.Sum):
        # A sum over the units of a row: every entry of the row gets the same total.
        (index, _, _), = expr.limits
        units = shape[0] if column else shape[1]
        every = expr.function.xreplace({index: unit_index(0, "element")})
        ones = OneMatrix(units, units)
        inner = lift(every, bindings, shape, column)
        return ones * inner if column else inner * ones
    if expr.is_Mul:
        scalars = [f for f in expr.args if not _bound(f, bindings)]
        matrices = []
        for factor in expr.args:
            if _bound(factor, bindings):
                lifted = lift(factor, bindings, shape, column)
                matrices.extend(lifted.args if isinstance(lifted, HadamardProduct) else [lifted])
        product = matrices[0] if len(matrices) == 1 else HadamardProduct(*matrices)
        return sp.Mul(*scalars) * product if scalars else product
    if expr.is_Add:
        constant, rest = expr.as_independent(*entries, as_Add=True)
        if len(entries) == 1:
            (entry,) = entries
            return _elementwise_of(expr, entry, bindings[entry.base])
        lifted = MatAdd(*(lift(term, bindings, shape, column) for term in sp.Add.make_args(rest)))
        return lifted if constant == 0 else MatAdd(lifted, constant * OneMatrix(*shape))
    if expr.is_Pow and expr.exp.is_Integer and expr.exp > 0:
        return HadamardPower(lift(expr.base, bindings, shape, column), expr.exp)
    if isinstance(expr, sp.Function) and len(expr.args) == 1:
        variable = sp.Dummy("u", real=True)
        return ElementwiseApplyFunction(sp.Lambda(variable, expr.func(variable)),
                                        lift(expr.args[0], bindings, shape, column))
    raise NotLiftable(f"no matrix form for {expr}")


def elementwise_derivative(name: str, matrix) -> ElementwiseApplyFunction:
    """phi'(Z), phi' applied to each entry of Z."""
    variable = sp.Dummy("u", real=True)
    function = q.activation_function(name)
    return ElementwiseApplyFunction(sp.Lambda(variable, sp.Derivative(function(variable), variable)), matrix)


def elementwise(name: str, matrix) -> ElementwiseApplyFunction:
    variable = sp.Dummy("u", real=True)
    return ElementwiseApplyFunction(sp.Lambda(variable, q.activation_function(name)(variable)), matrix)


def matrix_section(net: Network, conventions: Conventions) -> Section:
    network = net
    column = conventions.column_vectors
    sign = conventions.error_sign
    rows = sp.Integer(1) if column else n_samples

    def shaped(kind, layer, units):
        return q.matrix(kind, layer, units, 1) if column else q.matrix(kind, layer, rows, units)

    acts = {layer: shaped("act", layer, net.units(layer)) for layer in range(net.depth + 1)}
    pres = {layer: shaped("pre", layer, net.units(layer)) for layer in range(1, net.depth + 1)}
    deltas = {layer: shaped("delta", layer, net.units(layer)) for layer in range(1, net.depth + 1)}
    targets = shaped("targets", net.depth, net.units(net.depth))
    # Each parameter as the texts write it: W^(l) a + b per sample is the transpose of A W + 1 b over a batch.
    shown = {parameter.name: q.matrix(parameter.role, layer.index,
                                      *(reversed(parameter.symbol.shape) if column else parameter.symbol.shape))
             for layer in network.layers for parameter in layer.parameters}

    # SymPy's matrix-calculus results are written in symbp.symbolic.network's symbols; rename them, and for the
    # column form (one sample) transpose them: a row of A is a^T, and W here is W^T there.
    # One sample: N is 1, and a column of ones is the number 1.
    renames = {network.data: acts[0], network.targets: targets}
    if column:
        renames = {network.data: acts[0].T, network.targets: targets.T, n_samples: sp.Integer(1)}
    for spec_layer in network.layers:
        layer = spec_layer.index
        ours_of = {spec_layer.output: acts[layer], spec_layer.delta: deltas[layer],
                   spec_layer.preactivation_symbol: pres[layer]}
        ours_of.update({parameter.symbol: shown[parameter.name] for parameter in spec_layer.parameters})
        mask = getattr(spec_layer, "mask", None)  # a dropout layer's mask on its inputs
        if mask is not None:
            ours_of[mask] = shaped("mask", layer, spec_layer.fan_in)
        renames.update({theirs: mine.T if column else mine for theirs, mine in ours_of.items()})

    def ours(expr):
        renamed = expr.xreplace(renames)
        if column:
            renamed = renamed.T.doit().xreplace({OneMatrix(1, 1): sp.Integer(1)})
        return renamed

    loss = SAMPLE_LOSS if column else LOSS
    scope = "column" if column else "batch"
    chains = []
    for spec_layer in network.layers:
        layer = spec_layer.index
        pre = ours(spec_layer.preactivation)
        chains.append(Chain(f"matrix.pre{layer}", pres[layer], (step(pre),), scope))
        if not net.activation(layer).rowwise:
            chains.append(Chain(f"matrix.act{layer}", acts[layer], (step(elementwise(net.activation(layer).name,
                                                                                      pres[layer])),), scope))

    last = net.depth
    out = net.output
    j = unit_index(last, "cur")
    coefficient = 1 if column else net.sample_coefficient
    index_delta = present(sign * net.scale * in_layer(out.delta, net, last, j))
    bindings = {q.act(last): acts[last], q.targets(): targets, q.pre(last): pres[last]}
    shape = (net.units(last), 1) if column else (rows, net.units(last))
    delta_steps = [step(sign * Partial(loss, pres[last]), Reason("delta"))]
    try:
        lifted = lift(index_delta, bindings, shape, column)
        delta_steps.append(step(coefficient * lifted if coefficient != 1 else lifted, Reason("elementwise")))
    except NotLiftable:
        pass  # the index form stands on its own
    chains.append(Chain(f"matrix.delta{last}", deltas[last], tuple(delta_steps), scope, ":=", True))

    for layer in range(last - 1, 0, -1):
        above = network.layers[layer]  # layer + 1, 0-based
        received = ours(above.input_gradient)
        local = local_derivative(net, layer, j)
        generic = elementwise_derivative(net.activation(layer).name, pres[layer])
        steps = [
            step(sign * Partial(loss, pres[layer]), Reason("delta")),
            step(HadamardProduct(received, generic), Reason("matrix_calculus")),
        ]
        try:
            local_lifted = lift(local, {q.act(layer): acts[layer], q.pre(layer): pres[layer]},
                                (net.units(layer), 1) if column else (rows, net.units(layer)), column)
            steps.append(step(_hadamard(received, local_lifted), Reason("derivative_of", about=q.activation_function(
                net.activation(layer).name)(q.VARIABLE))))
        except NotLiftable:
            pass
        steps = tuple(steps)
        chains.append(Chain(f"matrix.delta{layer}", deltas[layer], steps, scope, ":=", True))

    # The weight penalties are on the batch's loss L; one sample's loss (the column form) has none.
    penalties = {} if column else {penalty.parameter.name: penalty for penalty in weight_penalties(net)}
    for spec_layer in reversed(network.layers):
        layer = spec_layer.index
        for parameter in spec_layer.parameters:
            gradient, reasons = sign * ours(spec_layer.gradient(parameter)), (Reason("matrix_calculus"),)
            penalty = penalties.get(parameter.name)
            if penalty is not None:
                gradient = gradient + _elementwise_of(penalty.derivative(), penalty.entry, shown[parameter.name])
                entry = q.quantity(parameter.role, layer)[unit_index(layer - 1, "prev"), unit_index(layer, "cur")]
                reasons += penalty_reasons(penalty, entry)
            chains.append(Chain(f"matrix.{parameter.role}{layer}", Partial(loss, shown[parameter.name]),
                                (step(gradient, *reasons),), scope, boxed=True))
    return Section("matrix", tuple(chains), facts={"column": column})


def _hadamard(left, right):
    if isinstance(right, HadamardProduct):
        return HadamardProduct(left, *right.args)
    if right == 1 or right == sp.Integer(1):
        return left
    return HadamardProduct(left, right)

