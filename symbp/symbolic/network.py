"""The symbolic network: built once from a spec, read by every stage in the form it needs.

A ``Network`` is its layers (``symbp.symbolic.layers``: each knows its parameters, its pre-activation in
matrix, index, expanded and numeric form, and its pullback rules), the activation and loss calculus of
``symbp.registry.calculus``, and the loss coefficient. Its views:

- matrix form: ``layer.preactivation``, ``layer.gradient(parameter)``, ``layer.input_gradient`` (code, the
  matrix derivation); the gradients come from SymPy's matrix calculus: for a layer whose output gradient is
  ``G`` (a matrix symbol), ``d/dP tr(G^T Z)``. Sizes enter only as shapes, so a 784-32-10 network costs no
  more to derive than a 3-2-1;
- index form: ``units``, ``has_bias``, ``activation``, ``layer.index_preactivation`` (the derivation);
- expanded scalar form: ``symbp.symbolic.expanded`` (the oracle, explicit gradients, the worksheet).

Nothing here knows LaTeX or array syntax.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp
from sympy import MatrixSymbol

from symbp.registry.calculus import ActivationCalculus, OutputCalculus, activation_calculus, output_calculus
from symbp.spec.schema import Spec, exact_value, load_spec
from symbp.symbolic import batchnorm, dropout, layernorm, residual, windows  # noqa: F401  (register the layer kinds)
from symbp.symbolic.layers import Layer, LayerSymbols, Parameter, layer_kind, n_samples

__all__ = [
    "Layer", "Network", "Parameter", "build_network", "loss_coefficient", "n_samples", "network_of",
    "sample_coefficient",
]


def sample_coefficient(spec: Spec, samples=n_samples) -> sp.Expr:
    """c in L = c * sum over samples of the sample losses: 1/N for a mean, else 1.

    ``samples`` is the symbol N by default; a number gives the coefficient for that many samples, exactly.
    """
    return 1 / sp.sympify(samples) if spec.loss.reduction == "mean" else sp.Integer(1)


def loss_coefficient(spec: Spec, samples=n_samples) -> sp.Expr:
    """The constant c in L = c * sum over samples and outputs of l(yhat, y): scale/N for a mean, else scale."""
    return exact_value(spec.loss.scale) * sample_coefficient(spec, samples)


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
        return loss_coefficient(self.spec)

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return tuple(p for layer in self.layers for p in layer.parameters)

    @property
    def prediction(self) -> MatrixSymbol:
        return self.layers[-1].output

    # -- index form: layers counted from 1, layer 0 the input
    @property
    def depth(self) -> int:
        return len(self.layers)

    def layer(self, index: int) -> Layer:
        return self.layers[index - 1]

    def units(self, layer: int) -> int:
        return self.spec.sizes[layer]

    def has_bias(self, layer: int) -> bool:
        return self.layers[layer - 1].bias

    def activation(self, layer: int) -> ActivationCalculus:
        return self.layers[layer - 1].calculus

    @property
    def calculus(self) -> tuple[ActivationCalculus, ...]:
        return tuple(layer.calculus for layer in self.layers)

    @property
    def scale(self) -> sp.Expr:
        return exact_value(self.spec.loss.scale)

    @property
    def sample_coefficient(self) -> sp.Expr:
        """c in L = c * sum over samples of the sample losses (the loss's scale is in each sample's loss)."""
        return sample_coefficient(self.spec)


def build_network(spec_source) -> Network:
    return network_of(load_spec(spec_source))


@cache
def network_of(spec: Spec) -> Network:
    """The spec's network; one per spec, as nothing changes it."""
    data = MatrixSymbol("X", n_samples, spec.inputs)
    targets = MatrixSymbol("Y", n_samples, spec.outputs)
    layers = []
    previous = data
    for index, (fan_in, layer_spec) in enumerate(zip(spec.sizes, spec.layers), start=1):
        units = layer_spec.units
        symbols = LayerSymbols(
            index=index,
            fan_in=fan_in,
            units=units,
            inputs=previous,
            preactivation_symbol=MatrixSymbol(f"Z{index}", n_samples, units),
            output=MatrixSymbol(f"A{index}", n_samples, units),
            delta=MatrixSymbol(f"delta{index}", n_samples, units),
        )
        calculus = activation_calculus(layer_spec.activation, layer_spec.activation_params)
        layer = layer_kind(getattr(layer_spec, "kind", "dense"))(symbols, layer_spec, calculus)
        layers.append(layer)
        previous = layer.output
    last = spec.layers[-1]
    output = output_calculus(spec.loss.name, last.activation, last.activation_params)
    return Network(spec, tuple(layers), data, targets, output)
