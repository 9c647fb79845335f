"""What a drawing of a layer shows: which input reaches which unit, and through which parameter.

A fully connected layer (``Layer.fully_connected``) joins every input to every unit through a weight,
and a bias unit to every unit through its bias. Any other kind is read off its own expanded pre-activation,
so a new kind is drawn right with nothing written for it here: an input whose coefficient in z_j is a
parameter is joined to unit j through that parameter; one whose coefficient holds a constant term as well
(a residual layer's a_j in z_j = ... + a_j w_jj + a_j) also reaches it unweighted, as a skip; a parameter
that stands alone in z_j is a bias.
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
    parameter: Parameter | None  # None: the input is added as it is (a skip connection)
    entry: tuple[int, ...] | None  # the parameter's stored, 0-based index

    @property
    def quantity(self) -> sp.Expr | None:
        """The parameter's entry as a named quantity (what a drawing writes on the edge)."""
        return None if self.parameter is None else self.parameter.indexed(self.entry)


def connections(layer: Layer) -> tuple[Connection, ...]:
    """Every edge into the layer's units, unit by unit: its weighted inputs, then any skip, then its bias."""
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
        for i, a in enumerate(inputs):
            coefficient = pre.coeff(a)
            for term in sp.Add.make_args(sp.expand(coefficient)):
                if term in owner:
                    edges.append(Connection(i + 1, j + 1, *owner[term]))
                elif term.is_number and term != 0:
                    skips.append(Connection(i + 1, j + 1, None, None))
        edges += skips
        rest = pre.subs({a: 0 for a in inputs})
        edges += [Connection(None, j + 1, *owner[term]) for term in sp.Add.make_args(rest) if term in owner]
    return tuple(edges)
