"""Weight penalties (a layer's ``kernel_regularizer``): terms added to the loss, one per penalised weight.

Keras's names and convention: ``l1 = c`` adds ``c * sum |w|`` and ``l2 = c`` adds ``c * sum w^2`` over the
layer's weights (not its biases), on top of the data loss, whatever the batch size. So L2's gradient is
``2 c w`` (PyTorch's ``weight_decay = d`` is ``l2 = d / 2``), and L1's is ``c sign(w)``: ``|w|`` has a kink at 0,
where ``sign(0) = 0`` is taken, the subgradient NumPy, Keras and PyTorch use.

Each penalty is written on one scalar entry ``w``; SymPy differentiates it. Nothing here knows LaTeX or code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import sympy as sp

from symbp.errors import SymbpError
from symbp.spec.schema import exact_value
from symbp.symbolic.layers import Parameter


@dataclass(frozen=True)
class WeightPenalty:
    """The penalty on one weight parameter: l1 * |w| + l2 * w^2 for each of its entries w."""

    parameter: Parameter
    l1: sp.Rational
    l2: sp.Rational

    @cached_property
    def entry(self) -> sp.Symbol:
        """A real symbol named as the parameter, standing for any one of its entries (or the whole array)."""
        return sp.Symbol(self.parameter.name, real=True)

    def term(self, w: sp.Expr | None = None) -> sp.Expr:
        """The penalty on one entry ``w`` (by default ``entry``)."""
        w = self.entry if w is None else w
        return self.l1 * sp.Abs(w) + self.l2 * w**2

    def derivative(self, w: sp.Expr | None = None) -> sp.Expr:
        """d(term)/dw, by SymPy: l1 sign(w) + 2 l2 w."""
        derived = sp.diff(self.term(), self.entry)
        return derived if w is None else derived.xreplace({self.entry: w})


def weight_penalties(network) -> tuple[WeightPenalty, ...]:
    """The penalties of a network's layers, in parameter order; none for a layer without kernel_regularizer."""
    out = []
    for layer, layer_spec in zip(network.layers, network.spec.layers, strict=True):
        coefficients = dict(getattr(layer_spec, "kernel_regularizer", ()))
        if not coefficients:
            continue
        l1, l2 = (exact_value(coefficients.get(name, 0.0)) for name in ("l1", "l2"))
        out += [WeightPenalty(p, l1, l2) for p in layer.parameters if p.role == "weight"]
    return tuple(out)


def refuse_penalties(spec, where: str) -> None:
    """One line naming the first penalised layer, for a product that does not carry weight penalties yet."""
    for index, layer_spec in enumerate(spec.layers):
        if getattr(layer_spec, "kernel_regularizer", ()):
            raise SymbpError(f"layers[{index}].kernel_regularizer: {where} has no weight penalties yet; "
                             "remove kernel_regularizer for it")


def penalty_of(penalties: tuple[WeightPenalty, ...], values: Mapping[str, sp.Matrix]) -> sp.Expr:
    """The sum of every penalty over every entry of its parameter, ``values`` holding each as a matrix."""
    return sp.Add(*(penalty.term(w) for penalty in penalties for w in values[penalty.parameter.name]))
