"""The residual layer kind: a dense layer whose input is added to its pre-activation, Z = A W + 1 b + A.

The skip needs the layer's input and output to have the same width (the spec refuses it otherwise). Its
pullbacks are SymPy's matrix calculus on that formula: the parameters' are the dense layer's, and the input's
gains the error term itself, dL/dA = delta W^T + delta: the hidden error below a residual layer is what reaches
it through the weights plus what reaches it through the skip unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import sympy as sp
from sympy import MatrixSymbol, OneMatrix, Trace

from symbp.registry.calculus import ActivationCalculus
from symbp.symbolic import quantities as q
from symbp.symbolic.layers import DenseLayer, LayerSymbols, n_samples, register_layer_kind

KIND = "residual"


@cache
def _pullback_rules(bias: bool) -> tuple[dict[str, sp.MatrixExpr], dict[str, MatrixSymbol]]:
    """d/dP tr(G^T Z) for each P of Z = A W (+ 1 b) + A, derived once on square matrices of symbolic size."""
    width = sp.Symbol("width", integer=True, positive=True)
    generic = {
        "inputs": MatrixSymbol("A", n_samples, width),
        "weight": MatrixSymbol("W", width, width),
        "delta": MatrixSymbol("G", n_samples, width),
    }
    preactivation = generic["inputs"] * generic["weight"] + generic["inputs"]
    if bias:
        generic["bias"] = MatrixSymbol("b", 1, width)
        preactivation = preactivation + OneMatrix(n_samples, 1) * generic["bias"]
    pairing = Trace(generic["delta"].T * preactivation)
    return {role: pairing.diff(matrix) for role, matrix in generic.items() if role != "delta"}, generic


@dataclass(frozen=True)
class ResidualLayer(DenseLayer):
    """Z = A W + 1 b + A: a dense layer with a skip connection from its input."""

    kind: str = KIND
    fully_connected: bool = False  # each unit also adds its own input: more than a weighted sum plus a bias

    # -- matrix form
    @cached_property
    def preactivation(self) -> sp.MatrixExpr:
        dense = self.inputs * self.weight
        if self.bias_row is not None:
            dense = dense + OneMatrix(n_samples, 1) * self.bias_row
        return dense + self.inputs

    def _pullback(self, role: str) -> sp.MatrixExpr:
        rule, generic = _pullback_rules(self.bias_row is not None)
        ours = {generic["inputs"]: self.inputs, generic["weight"]: self.weight, generic["delta"]: self.delta}
        if self.bias_row is not None:
            ours[generic["bias"]] = self.bias_row
        return rule[role].xreplace(ours)

    # -- index form (the skip holds no parameter: index_gradients, dl/dw_ij and dl/db_j, are the dense layer's)
    def index_preactivation(self, j, summed=None) -> sp.Expr:
        """z^(l)_j = sum_i w^(l)_ij a^(l-1)_i + b^(l)_j + a^(l-1)_j: unit j's input arrives once more, unweighted."""
        return super().index_preactivation(j, summed) + q.act(self.index - 1)[j]

    def index_input_partial(self, k, j) -> sp.Expr:
        """dz_k/da_j = w_jk + [j = k]: through the weight, and through the skip for the unit of the same place."""
        return q.weight(self.index)[j, k] + sp.KroneckerDelta(j, k)

    # -- expanded scalars
    def expanded_preactivation(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> list[sp.Expr]:
        dense = super().expanded_preactivation(previous, values)
        return [pre + previous[jj] for jj, pre in enumerate(dense)]

    # -- numbers
    def numeric_preactivation(self, previous, params: Mapping):
        return super().numeric_preactivation(previous, params) + previous


def _residual(symbols: LayerSymbols, layer_spec, calculus: ActivationCalculus) -> ResidualLayer:
    if symbols.units != symbols.fan_in:
        raise ValueError(f"a residual layer has as many units as its input ({symbols.fan_in}), not {symbols.units}")
    return ResidualLayer(symbols.index, symbols.fan_in, symbols.units, layer_spec.bias, calculus, symbols.inputs,
                         symbols.preactivation_symbol, symbols.output, symbols.delta, layer_spec.weights,
                         layer_spec.biases)


register_layer_kind(KIND, _residual)


def residual_layers(network) -> tuple[ResidualLayer, ...]:
    """The network's layers that add their input to their pre-activation, first to last."""
    return tuple(layer for layer in network.layers if isinstance(layer, ResidualLayer))
