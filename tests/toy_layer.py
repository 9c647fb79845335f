"""A layer kind defined outside symbp: each unit scales its input by a learned factor, z = a * s (elementwise).

It follows ``symbp.symbolic.layers.Layer`` and is registered with ``register_layer_kind``: nothing in symbp
names it. Its gradients are not written here: SymPy's matrix calculus derives them from the matrix form.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import sympy as sp
from sympy import HadamardProduct, MatrixSymbol, OneMatrix, Trace

from symbp.registry.calculus import ActivationCalculus
from symbp.spec.schema import LayerSpec, Spec, load_spec
from symbp.symbolic import quantities as q
from symbp.symbolic.layers import LayerSymbols, Parameter, n_samples, register_layer_kind
from symbp.symbolic.quantities import unit_index

KIND = "elementwise_scale"


@dataclass(frozen=True)
class ScaleLayerSpec(LayerSpec):
    """A spec's layer of the toy kind: as many units as its input, no bias."""

    kind: str = field(default=KIND)


@dataclass(frozen=True)
class DiagonalParameter(Parameter):
    """The factors s_j, written in index form as the diagonal weights w_jj of the layer."""

    def indexed(self, index: tuple[int, ...]) -> sp.Indexed:
        (j,) = index
        return q.weight(self.layer)[j + 1, j + 1]

    def stored_index(self, indices) -> tuple[int, ...]:
        return (int(indices[0]) - 1,)


@dataclass(frozen=True)
class ScaleLayer:
    index: int
    fan_in: int
    units: int
    calculus: ActivationCalculus
    inputs: MatrixSymbol
    preactivation_symbol: MatrixSymbol
    output: MatrixSymbol
    delta: MatrixSymbol
    bias: bool = False
    kind: str = KIND

    @cached_property
    def factors(self) -> MatrixSymbol:
        return MatrixSymbol(f"s{self.index}", 1, self.units)

    @cached_property
    def parameters(self) -> tuple[Parameter, ...]:
        # Its role is a weight's: the factor s_j multiplies the input a_j as the weight w_jj would.
        return (DiagonalParameter(self.factors.name, "weight", (self.units,), self.factors, self.fan_in, self.units,
                          self.index),)

    @cached_property
    def preactivation(self) -> sp.MatrixExpr:
        return HadamardProduct(self.inputs, OneMatrix(n_samples, 1) * self.factors)

    def _pullback(self, matrix: MatrixSymbol) -> sp.MatrixExpr:
        return Trace(self.delta.T * self.preactivation).diff(matrix)

    def gradient(self, parameter: Parameter) -> sp.MatrixExpr:
        return self._pullback(parameter.symbol)

    @cached_property
    def input_gradient(self) -> sp.MatrixExpr:
        return self._pullback(self.inputs)

    def index_preactivation(self, j, summed=None) -> sp.Expr:
        return q.weight(self.index)[j, j] * q.act(self.index - 1)[j]

    def index_parameters(self) -> list[tuple[sp.Indexed, sp.Expr]]:
        return [(q.weight(self.index)[j, j], q.act(self.index - 1)[j]) for j in range(1, self.units + 1)]

    def index_input_partial(self, k, j) -> sp.Expr:
        return sp.KroneckerDelta(j, k) * q.weight(self.index)[k, k]

    def index_gradients(self) -> list[tuple[Parameter, sp.Indexed, sp.Expr]]:
        j = unit_index(self.index, "cur")
        gradient = q.delta(self.index)[j] * q.act(self.index - 1)[j]
        return [(self.parameters[0], q.weight(self.index)[j, j], gradient)]

    def expanded_symbols(self) -> dict[str, sp.Matrix]:
        return {self.factors.name: sp.Matrix(1, self.units,
                                             lambda _, j: sp.Symbol(f"s^{self.index}_{j + 1}", real=True))}

    def expanded_preactivation(self, previous, values) -> list[sp.Expr]:
        factors = values[self.factors.name]
        return [previous[j] * factors[0, j] for j in range(self.units)]

    def numeric_preactivation(self, previous, params):
        return previous * params[self.factors.name]


def _scale_layer(symbols: LayerSymbols, layer_spec, calculus: ActivationCalculus) -> ScaleLayer:
    if symbols.units != symbols.fan_in:
        raise ValueError(f"an {KIND} layer has as many units as its input ({symbols.fan_in}), not {symbols.units}")
    return ScaleLayer(symbols.index, symbols.fan_in, symbols.units, calculus, symbols.inputs,
                      symbols.preactivation_symbol, symbols.output, symbols.delta)


def register() -> None:
    register_layer_kind(KIND, _scale_layer)


def toy_spec() -> Spec:
    """3 inputs -> dense 3 (tanh) -> scale 3 (sigmoid) -> dense 1 (linear), half the squared error."""
    base = load_spec({
        "name": "toy_scale",
        "inputs": 3,
        "layers": [{"units": 3, "activation": "tanh"}, {"units": 3, "activation": "sigmoid"},
                   {"units": 1, "activation": "linear"}],
        "loss": {"name": "squared_error", "scale": 0.5, "reduction": "mean"},
        "training": {"optimizer": "gd", "learning_rate": 0.1, "epochs": 200},
    })
    middle = base.layers[1]
    scaled = ScaleLayerSpec(middle.units, middle.activation, middle.activation_params, bias=False)
    return replace(base, layers=(base.layers[0], scaled, base.layers[2]))
