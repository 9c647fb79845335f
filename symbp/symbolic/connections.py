"""What a drawing of a layer shows: which input reaches which unit, and through which parameter.

A fully connected layer (``Layer.fully_connected``) joins every input to every unit through a weight,
and a bias unit to every unit through its bias. Any other kind is read off its own expanded pre-activation,
so a new kind is drawn right with nothing written for it here: an input whose coefficient in z_j is a
parameter is joined to unit j through that parameter; one whose coefficient holds a constant term of 1 as
well (a residual layer's a_j in z_j = ... + a_j w_jj + a_j) also reaches it unweighted, as a skip; one that
reaches z_j in any other way, through no parameter (average pooling's a_i / k, max pooling's max(a_i, ...)),
is joined to it as a fixed edge, which holds no weight; a parameter that stands alone in z_j is a bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from symbp.symbolic.layers import Layer, Parameter, fully_connected


@dataclass(frozen=True)
class Connection:
    """One edge into unit ``target`` (counted from 1) of a layer."""

    source: int | None  # the input unit (counted from 1), or None for the bias unit
    target: int
    parameter: Parameter | None  # None: the input is added as it is (a skip connection), or is a fixed edge
    entry: tuple[int, ...] | None  # the parameter's stored, 0-based index
    # The input reaches the unit through no parameter and not as it is: one entry of a pooling window.
    fixed: bool = False

    @property
    def skip(self) -> bool:
        """The input added to the unit's pre-activation as it is, unweighted (a residual layer's)."""
        return self.parameter is None and not self.fixed

    @property
    def quantity(self) -> sp.Expr | None:
        """The parameter's entry as a named quantity (what a drawing writes on the edge)."""
        return None if self.parameter is None else self.parameter.indexed(self.entry)


def connections(layer: Layer) -> tuple[Connection, ...]:
    """Every edge into the layer's units, unit by unit: its weighted and fixed inputs, then any skip, then its bias."""
    if fully_connected(layer):
        return _dense_connections(layer)
    own = getattr(layer, "connections", None)  # a kind whose expanded form is too deep to read edges off
    return own() if own is not None else _read_connections(layer)


def _dense_connections(layer: Layer) -> tuple[Connection, ...]:
    weight, *bias = layer.parameters
    edges = []
    for j in range(layer.units):
        edges += [Connection(i + 1, j + 1, weight, (i, j)) for i in range(layer.fan_in)]
        if bias:
            edges.append(Connection(None, j + 1, bias[0], (j,)))
    return tuple(edges)


def _read_connections(layer: Layer) -> tuple[Connection, ...]:
    inputs = sp.symbols(f"__a0:{layer.fan_in}", real=True)
    values = layer.expanded_symbols()
    owner = {}  # each parameter entry's scalar symbol -> (parameter, stored index)
    for parameter in layer.parameters:
        for entry in parameter.entries():
            owner[values[parameter.name][parameter.matrix_entry(entry)]] = (parameter, entry)
    edges = []
    for j, pre in enumerate(layer.expanded_preactivation(inputs, values)):
        pre = sp.expand(pre)
        skips = []
        reached = pre.free_symbols
        for i, a in enumerate(inputs):
            if a not in reached:
                continue
            terms = sp.Add.make_args(sp.expand(pre.coeff(a)))
            weighted = [term for term in terms if term in owner]
            edges += [Connection(i + 1, j + 1, *owner[term]) for term in weighted]
            if sp.Add(*(term for term in terms if term.is_number)) == 1:
                skips.append(Connection(i + 1, j + 1, None, None))
            elif not weighted:
                edges.append(Connection(i + 1, j + 1, None, None, fixed=True))
        edges += skips
        rest = pre.subs({a: 0 for a in inputs})
        edges += [Connection(None, j + 1, *owner[term]) for term in sp.Add.make_args(rest) if term in owner]
    return tuple(edges)
