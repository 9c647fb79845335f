"""The symbolic network at layer level and its backpropagation, derived by SymPy.

Every layer is ``Z = A_prev W + 1 b`` followed by its activation. The gradients of the affine map
come from SymPy's matrix calculus: for a layer whose output gradient is ``G`` (a matrix symbol),
``d/dW tr(G^T Z)`` is ``A_prev^T G``, and likewise for ``b`` and ``A_prev``. The activation's part
comes from ``symbp.registry.calculus``. Sizes enter only as shapes, so a 784-32-10 network costs no more to
derive than a 3-2-1. Nothing here knows LaTeX or NumPy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import sympy as sp
from sympy import MatrixSymbol, OneMatrix, Trace

from symbp.registry.calculus import (
    ActivationCalculus,
    OutputCalculus,
    activation_calculus,
    output_calculus,
)
from symbp.spec.schema import Spec, exact_value, load_spec

n_samples = sp.Symbol("N", integer=True, positive=True)


@cache
def _pullback_rules(bias: bool) -> tuple[dict[str, sp.MatrixExpr], dict[str, MatrixSymbol]]:
    """d/dP tr(G^T Z) for each P of Z = A W (+ 1 b), derived once on matrices of symbolic shape.

    Every layer's gradients are these rules with its own matrices put in: deriving them layer by layer
    would cost the same matrix calculus again for each layer of a deep network.
    """
    fan_in, units = sp.symbols("fan_in units", integer=True, positive=True)
    generic = {
        "inputs": MatrixSymbol("A", n_samples, fan_in),
        "weight": MatrixSymbol("W", fan_in, units),
        "delta": MatrixSymbol("G", n_samples, units),
    }
    preactivation = generic["inputs"] * generic["weight"]
    if bias:
        generic["bias_row"] = MatrixSymbol("b", 1, units)
        preactivation = preactivation + OneMatrix(n_samples, 1) * generic["bias_row"]
    pairing = Trace(generic["delta"].T * preactivation)
    return {role: pairing.diff(matrix) for role, matrix in generic.items() if role != "delta"}, generic


@dataclass(frozen=True)
class Layer:
    index: int  # 1-based, as in W^(1)
    fan_in: int
    units: int
    bias: bool
    calculus: ActivationCalculus
    weight: MatrixSymbol
    bias_row: MatrixSymbol | None
    inputs: MatrixSymbol  # A^(l-1); the data X for the first layer
    preactivation_symbol: MatrixSymbol  # Z^(l)
    output: MatrixSymbol  # A^(l)
    delta: MatrixSymbol  # dL/dZ^(l)

    @cached_property
    def preactivation(self) -> sp.MatrixExpr:
        product = self.inputs * self.weight
        if self.bias_row is None:
            return product
        return product + OneMatrix(n_samples, 1) * self.bias_row

    def _pullback(self, role: str) -> sp.MatrixExpr:
        rule, generic = _pullback_rules(self.bias_row is not None)
        ours = {generic["inputs"]: self.inputs, generic["weight"]: self.weight, generic["delta"]: self.delta}
        if self.bias_row is not None:
            ours[generic["bias_row"]] = self.bias_row
        return rule[role].xreplace(ours)

    @cached_property
    def weight_gradient(self) -> sp.MatrixExpr:
        return self._pullback("weight")

    @cached_property
    def bias_gradient(self) -> sp.MatrixExpr | None:
        return None if self.bias_row is None else self._pullback("bias_row")

    @cached_property
    def input_gradient(self) -> sp.MatrixExpr:
        """dL/dA^(l-1): what the previous layer's error term is built from."""
        return self._pullback("inputs")

    @property
    def parameters(self) -> tuple[MatrixSymbol, ...]:
        return (self.weight,) if self.bias_row is None else (self.weight, self.bias_row)


@dataclass(frozen=True)
class Network:
    spec: Spec
    layers: tuple[Layer, ...]
    data: MatrixSymbol
    targets: MatrixSymbol
    output: OutputCalculus

    @property
    def loss_coefficient(self) -> sp.Expr:
        """The constant c in L = c * sum over samples and outputs of l(yhat, y)."""
        scale = exact_value(self.spec.loss.scale)
        return scale / n_samples if self.spec.loss.reduction == "mean" else scale

    @property
    def parameters(self) -> tuple[MatrixSymbol, ...]:
        return tuple(p for layer in self.layers for p in layer.parameters)

    @property
    def prediction(self) -> MatrixSymbol:
        return self.layers[-1].output


def build_network(spec_source) -> Network:
    spec = load_spec(spec_source)
    data = MatrixSymbol("X", n_samples, spec.inputs)
    targets = MatrixSymbol("Y", n_samples, spec.outputs)
    layers = []
    previous = data
    for index, (fan_in, layer_spec) in enumerate(zip(spec.sizes, spec.layers), start=1):
        units = layer_spec.units
        layer = Layer(
            index=index,
            fan_in=fan_in,
            units=units,
            bias=layer_spec.bias,
            calculus=activation_calculus(layer_spec.activation, layer_spec.activation_params),
            weight=MatrixSymbol(f"W{index}", fan_in, units),
            bias_row=MatrixSymbol(f"b{index}", 1, units) if layer_spec.bias else None,
            inputs=previous,
            preactivation_symbol=MatrixSymbol(f"Z{index}", n_samples, units),
            output=MatrixSymbol(f"A{index}", n_samples, units),
            delta=MatrixSymbol(f"delta{index}", n_samples, units),
        )
        layers.append(layer)
        previous = layer.output
    last = spec.layers[-1]
    output = output_calculus(spec.loss.name, last.activation, last.activation_params)
    return Network(spec, tuple(layers), data, targets, output)
