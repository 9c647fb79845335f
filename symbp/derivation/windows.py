"""A convolution or pooling layer, forward and backward, in its own indices (section "window").

A window layer's entries are indexed by channel and position, not by unit: z^(l)_{f,p} is filter f at output
position p (p, q on two axes), and each reads the input entries a^(l-1)_{c, s (p - 1) + t - padding} of its window,
t running over the window's offsets. The section states the layer's definition
(``symbp.symbolic.windows``), the error that reaches its outputs, its error term, and by SymPy's differentiation of
the definition: the kernel's gradient (a correlation of the input with the error terms), the bias's (a sum of
them), and the error passed back to the input (the sum over the output positions whose window holds the input
entry; with stride 1 a full convolution with the flipped kernel). Max pooling sends each window's error to its
first largest entry, as the generated module does; average pooling shares it equally. Where a line is SymPy's
result rewritten, the two are evaluated on random numbers over the layer's whole index ranges and must agree
exactly before the line is printed; ``symbp.checks.verify`` evaluates every line on the network's own numbers.
"""

from __future__ import annotations

import itertools
import random

import sympy as sp

from symbp.derivation.indexform import local_derivative
from symbp.derivation.model import Chain, Reason, Section, chain, fact, product, step
from symbp.symbolic import quantities as q
from symbp.symbolic.network import Network
from symbp.symbolic.quantities import SAMPLE_LOSS, VARIABLE, Partial


def window_layers_of(net: Network) -> tuple[int, ...]:
    """The layers of a network that slide a window (they state ``index_definition``), first to last."""
    return tuple(layer.index for layer in net.layers if hasattr(layer, "index_definition"))


def _always_within(expr: sp.Expr, low, high, layer) -> bool:
    """Whether ``expr``, an expression in the layer's indices, lies in low..high at every value of its indices."""
    free = sorted((s for s in expr.free_symbols if s in q.INDEX_ROLES), key=str)
    ranges = [range(1, layer.index_extent(s) + 1) for s in free]
    return all(low <= expr.xreplace(dict(zip(free, values))) <= high for values in itertools.product(*ranges))


def _picked(total: sp.Sum, layer, outside_zero: bool = False, only=None) -> sp.Expr:
    """A sum whose terms hold brackets [v = e] over its own index v (among ``only``, if given), each such index set
    to e and its sum dropped: where e is always in v's range, or (``outside_zero``) where what it indexes is 0
    outside its range. Its callers prove the result equal to the sum itself (``_check_picked``)."""
    body, kept = total.function, []
    for index, low, high in total.limits:
        if only is not None and index not in only:
            kept.append((index, low, high))
            continue
        brackets = [factor for factor in sp.Mul.make_args(body)
                    if isinstance(factor, sp.KroneckerDelta) and factor.has(index)]
        value = None
        for bracket in brackets:
            solved = sp.solve(sp.Eq(*bracket.args), index)
            if len(solved) == 1 and (outside_zero or _always_within(solved[0], low, high, layer)):
                value = solved[0]
                break
        if value is None:
            kept.append((index, low, high))
            continue
        body = body.xreplace({index: value})
    written = sp.Sum(body, *kept) if kept else body
    return written


def _one_sum(expr: sp.Expr) -> sp.Expr:
    """A constant times a sum, as one sum of the constant times each term (``expr`` itself if it is no such product)."""
    if isinstance(expr, sp.Mul):
        sums = [factor for factor in expr.args if isinstance(factor, sp.Sum)]
        if len(sums) == 1:
            constant = sp.Mul(*(factor for factor in expr.args if factor is not sums[0]))
            return sp.Sum(constant * sums[0].function, *sums[0].limits)
    return expr


def _check_picked(derived: sp.Expr, written: sp.Expr, layer, net) -> sp.Expr:
    """``written``, once proven equal to ``derived`` on the layer's index ranges."""
    _proven_equal(derived, written, layer, net)
    return written


def _primed(expr: sp.Expr, symbols, primes: int = 1) -> sp.Expr:
    """``expr`` with each of ``symbols`` (the indices a sum runs over) primed, so that the free ones stay free."""
    renamed = {}
    for symbol in symbols:
        role = q.INDEX_ROLES[symbol]
        renamed[symbol] = q.unit_index(role.layer, role.relation + "'" * primes)
    return expr.xreplace(renamed)


def _zero_extended_values(exprs, layer, net: Network, draws: int = 2) -> list:
    """Each of ``exprs`` at the values of their free indices (all of them, or the corners and a fixed draw of 38
    more), their quantities drawn at random as exact rationals, the same entry the same number in every expression,
    and each entry of an input or an error term outside its layer's positions 0."""
    free = sorted((s for s in set().union(*(e.free_symbols for e in exprs)) if s in q.INDEX_ROLES), key=str)
    ranges = [range(1, layer.index_extent(s) + 1) for s in free]
    combinations = list(itertools.product(*ranges))
    if len(combinations) > 40:
        combinations = [combinations[0], combinations[-1], *random.Random(3).sample(combinations[1:-1], 38)]
    rng = random.Random(7)
    out = []
    for _ in range(draws):
        values: dict = {}

        def entry(indexed, values=values):
            role = q.ROLES[indexed.base]
            shape = _shape_of(net, role.layer)
            if role.kind in ("act", "input", "delta", "incoming") and shape is not None:
                if not all(1 <= int(i) <= n for i, n in zip(indexed.indices, shape)):
                    return sp.Integer(0)
            if indexed not in values:
                values[indexed] = sp.Rational(rng.randint(-9, 9), rng.randint(1, 5))
            return values[indexed]

        for combination in combinations:
            at = {symbol: sp.Integer(v) for symbol, v in zip(free, combination)}
            out.append(tuple(expr.xreplace(at).doit().replace(lambda e: isinstance(e, sp.Indexed) and e.base in q.ROLES,
                                                               entry) for expr in exprs))
    return out


def _shape_of(net: Network, layer: int) -> tuple[int, ...] | None:
    """The shape a layer's output is read in (channels first); the input's for layer 0; None for a flat one."""
    if layer == 0:
        return net.spec.input_shape or None
    kind = net.layer(layer)
    return kind.window.output_shape if hasattr(kind, "index_definition") else None


def _proven_equal(derived: sp.Expr, written: sp.Expr, layer, net: Network) -> None:
    """The written form equals SymPy's at every index value on random numbers, or the derivation stops."""
    if any(left != right for left, right in _zero_extended_values((derived, written), layer, net)):
        raise ArithmeticError(f"{written} is not SymPy's {derived} on layer {layer.index}")


def _in_own_indices(passed: Chain, layer) -> sp.Expr:
    """The error that the window layer above passes back to this layer's outputs (its "input" chain, over its
    channel c and input positions r), in this layer's indices: c and r become the output channel and positions,
    and the sums' own indices are primed so that none prints like one of them."""
    bound = {limit[0] for total in passed.result.atoms(sp.Sum) for limit in total.limits}
    renamed = passed.result.xreplace({symbol: q.unit_index(q.INDEX_ROLES[symbol].layer,
                                                           q.INDEX_ROLES[symbol].relation + "'") for symbol in bound})
    channel, *sources = passed.lhs.indices
    return renamed.xreplace(dict(zip((channel, *sources), (layer.output_channel(), *layer.positions_index()))))


def window_section(net: Network, index: int, sign: int, passed: Chain | None = None) -> Section:
    """The section of window layer ``index``; ``passed`` is the chain by which the window layer above, if any, passes
    its error back to this layer's outputs."""
    layer = net.layer(index)
    prefix = f"window{index}"
    channel_out, positions, offsets = layer.output_channel(), layer.positions_index(), layer.offsets_index()
    z, a = layer.index_output("pre"), layer.index_output("act")
    incoming, delta = layer.index_output("incoming"), layer.index_output("delta")
    definition = layer.index_definition()
    chains = [chain(f"{prefix}.pre", z, step(definition), relation=":=")]
    if layer.pooling and layer.maximum:
        chains.append(chain(f"{prefix}.selected", z, step(definition), step(layer.index_selected(),
                                                                           Reason("first_max"))))
    if not layer.pooling:
        function = q.activation_function(net.activation(index).name)
        chains.append(chain(f"{prefix}.act", a, step(function(z))))

    # -- the error reaching the outputs: from the dense layer above through its weights, or from the window layer
    # above, whose section passes it back
    above = net.layer(index + 1) if index < net.depth else None
    incoming_steps = [step(sign * Partial(SAMPLE_LOSS, a), Reason("definition"))]
    if above is not None and not hasattr(above, "index_definition"):
        k = q.unit_index(index + 1, "next")
        unit = layer.flat_unit(channel_out, positions)
        reaches = above.index_input_partial(k, unit)
        units_above = net.units(index + 1)
        incoming_steps += [
            step(sign * sp.Sum(product(Partial(SAMPLE_LOSS, q.pre(index + 1)[k]), Partial(q.pre(index + 1)[k], a)),
                               (k, 1, units_above)), Reason("total_derivative")),
            step(sp.Sum(q.delta(index + 1)[k] * reaches, (k, 1, units_above)), Reason("delta"),
                 Reason("substitute", (fact(Partial(q.pre(index + 1)[k], a), reaches),))),
        ]
    elif passed is not None:
        incoming_steps.append(step(_in_own_indices(passed, layer), Reason("passed_back")))
    chains.append(chain(f"{prefix}.incoming", incoming, *incoming_steps, relation=":="))

    # -- the error term at the pre-activations
    delta_steps = [step(sign * Partial(SAMPLE_LOSS, z), Reason("delta"))]
    if layer.pooling:
        delta_steps.append(step(incoming, Reason("fact", (fact(a, z),))))
    else:
        function = q.activation_function(net.activation(index).name)
        local = local_derivative(net, index, (channel_out, *positions))
        chains.append(chain(f"{prefix}.da_dz", Partial(a, z), step(sp.Derivative(function(z), z), Reason("definition")),
                            step(local, Reason("derivative_of", about=function(VARIABLE)))))
        delta_steps += [step(product(sign, Partial(SAMPLE_LOSS, a), Partial(a, z)), Reason("chain_rule")),
                        step(product(incoming, Partial(a, z)), Reason("definition")),
                        step(sp.Mul(incoming, local), Reason("derivative_of", about=function(VARIABLE)))]
    chains.append(chain(f"{prefix}.delta", delta, *delta_steps, relation=":=", boxed=True))

    # -- the parameters: every output position of the filter holds them
    other = layer.output_channel(1)
    z_other = layer.index_output("pre", 1)
    delta_other = layer.index_output("delta", 1)
    channel = q.window_index(index, "channel")
    written_other = _primed(layer.index_definition(1), [channel, *offsets])
    count = layer.geometry.channels if layer.pooling else layer.window.filters

    def through_every_output(target) -> sp.Sum:
        """dl/d target as the total derivative through every output entry of the layer."""
        return layer.index_positions_sum(sp.Sum(product(Partial(SAMPLE_LOSS, z_other), Partial(z_other, target)),
                                                (other, 1, count)))

    if not layer.pooling:
        parameters = [(layer.index_kernel(), "weight", "w")]
        parameters += [(q.bias(index)[channel_out], "bias", "b")] if layer.bias else []
        for parameter, role, key in parameters:
            derived = sp.diff(written_other, parameter)
            dz = _check_picked(derived, _picked(derived, layer), layer, net) if isinstance(derived, sp.Sum) \
                else derived
            chains.append(chain(f"{prefix}.dz_d{key}", Partial(z_other, parameter),
                                step(Partial(written_other, parameter), Reason("definition")), step(dz)))
            inner = sp.Sum(delta_other * dz, (other, 1, count))
            total = layer.index_positions_sum(inner)
            picked = layer.index_positions_sum(_check_picked(inner, _picked(inner, layer), layer, net))
            chains.append(chain(
                f"{prefix}.{role}", Partial(SAMPLE_LOSS, parameter),
                step(through_every_output(parameter), Reason("total_derivative")),
                step(sign * total, Reason("delta"), Reason("substitute", (fact(Partial(z_other, parameter), dz),))),
                step(sign * picked, Reason("bracket_picks")),
                boxed=True,
            ))

    # -- the error passed back to the input, for the window layer below
    if index > 1:
        sources = layer.sources_index()
        below = layer.index_input(channel, sources)
        if layer.pooling and layer.maximum:
            written_other = _primed(layer.index_selected(1), offsets)
        derived = _one_sum(sp.diff(written_other, below))
        # SymPy's derivative holds a bracket per summed index: the channel's picks one term; the offsets' stay,
        # since they say which output positions read the entry.
        dz = _check_picked(derived, _picked(derived, layer), layer, net)
        dz = dz.xreplace({q.unit_index(index, q.INDEX_ROLES[t].relation + "'"): t for t in offsets})
        chains.append(chain(f"{prefix}.dz_da", Partial(z_other, below),
                            step(Partial(written_other, below), Reason("definition")), step(dz)))
        total = layer.index_positions_sum(sp.Sum(delta_other * dz, (other, 1, count)))
        # One sum over the filters, the positions and the offsets, the error term inside the offsets' sum.
        position_limits = [(p, 1, size) for p, size in zip(positions, layer.geometry.positions)]
        flat = sp.Sum(delta_other * dz.function, *dz.limits, *position_limits, (other, 1, count))
        picked = _check_picked(flat, _picked(flat, layer, only={other}), layer, net)
        if not layer.pooling:
            picked = picked.xreplace({other: channel_out})  # one filter index in the line: f, not f'
        steps = [
            step(sign * Partial(SAMPLE_LOSS, below), Reason("definition")),
            step(sign * through_every_output(below), Reason("total_derivative")),
            step(total, Reason("delta"), Reason("substitute", (fact(Partial(z_other, below), dz),))),
            step(picked, Reason("constant_factor"), *((Reason("bracket_picks"),) if layer.pooling else ())),
        ]
        if not layer.pooling and all(stride == 1 for stride in layer.geometry.stride):
            # A full convolution with the flipped kernel: the brackets pick the output position of each offset.
            full = _picked(picked, layer, outside_zero=True, only=set(positions))
            if not full.has(sp.KroneckerDelta):
                _proven_equal(picked, full, layer, net)
                steps.append(step(full, Reason("bracket_picks"), Reason("zero_outside")))
        chains.append(chain(f"{prefix}.input", q.incoming(index - 1)[(channel, *sources)], *steps, relation=":=",
                            boxed=True))
    return Section("window", tuple(chains), index, facts=_facts(net, layer))


def _facts(net: Network, layer) -> dict:
    g = layer.geometry
    above = net.layer(layer.index + 1) if layer.index < net.depth else None
    return {
        "kind": layer.kind, "pooling": layer.pooling, "maximum": layer.pooling and layer.maximum,
        "dims": layer.dims, "input_shape": g.input_shape, "output_shape": layer.window.output_shape,
        "window": g.window, "stride": g.stride, "padding": g.padding, "filters": layer.window.filters,
        "first": layer.index == 1, "above_dense": above is not None and not hasattr(above, "index_definition"),
        "unit_stride": all(s == 1 for s in g.stride), "bias": layer.bias,
    }
