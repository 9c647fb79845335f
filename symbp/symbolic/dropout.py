"""The dropout layer kind: a dense layer whose inputs are masked while training, Z = (A o M) W + 1 b.

Inverted dropout, as PyTorch's ``nn.Dropout`` and Keras's ``Dropout`` placed before the layer compute it: each
entry of the mask ``M`` (one per sample and input) is 0 with probability ``rate`` and ``1 / (1 - rate)``
otherwise, so that an input's expected value is unchanged, and evaluation (``M`` all ones) needs no rescaling.

The mask is an input of the layer, like the data, not a parameter: nothing is learnt or differentiated for it,
and a computation without one is the network in evaluation mode. Its pullbacks are SymPy's matrix calculus on
the formula above: dL/dW = (A o M)^T delta, dL/db = 1^T delta, and the error reaching the layer below is
dL/dA = (delta W^T) o M: a dropped input passes no error down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import sympy as sp
from sympy import HadamardProduct, MatrixSymbol, OneMatrix, Trace, Transpose

from symbp.errors import SymbpError
from symbp.registry.calculus import ActivationCalculus
from symbp.spec.schema import exact_value
from symbp.symbolic import quantities as q
from symbp.symbolic.layers import DenseLayer, LayerSymbols, n_samples, register_layer_kind
from symbp.symbolic.quantities import unit_index

KIND = "dropout"


def _transposes_outside(expr: sp.MatrixExpr) -> sp.MatrixExpr:
    """A^T o M^T written (A o M)^T: the same matrix, read as the transpose of the dropped inputs."""
    def gathered(product: HadamardProduct) -> sp.MatrixExpr:
        if all(isinstance(factor, Transpose) for factor in product.args):
            return Transpose(HadamardProduct(*(factor.arg for factor in product.args)))
        return product

    return expr.replace(lambda e: isinstance(e, HadamardProduct), gathered)


@cache
def _pullback_rules(bias: bool) -> tuple[dict[str, sp.MatrixExpr], dict[str, MatrixSymbol]]:
    """d/dP tr(G^T Z) for each P of Z = (A o M) W (+ 1 b), derived once on matrices of symbolic shape."""
    fan_in, units = sp.symbols("fan_in units", integer=True, positive=True)
    generic = {
        "inputs": MatrixSymbol("A", n_samples, fan_in),
        "mask": MatrixSymbol("M", n_samples, fan_in),
        "weight": MatrixSymbol("W", fan_in, units),
        "delta": MatrixSymbol("G", n_samples, units),
    }
    preactivation = HadamardProduct(generic["inputs"], generic["mask"]) * generic["weight"]
    if bias:
        generic["bias"] = MatrixSymbol("b", 1, units)
        preactivation = preactivation + OneMatrix(n_samples, 1) * generic["bias"]
    pairing = Trace(generic["delta"].T * preactivation)
    # The mask is an input of the layer, never differentiated: no rule for it.
    return {role: _transposes_outside(pairing.diff(matrix)) for role, matrix in generic.items()
            if role not in ("delta", "mask")}, generic


def mask_symbol(index: int, fan_in: int) -> MatrixSymbol:
    """The mask of layer ``index``'s inputs over a batch: M1 drops the data's inputs, M2 the first layer's outputs."""
    return MatrixSymbol(f"M{index}", n_samples, fan_in)


@dataclass(frozen=True)
class DropoutLayer(DenseLayer):
    """Z = (A o M) W + 1 b: a dense layer whose inputs are multiplied by a dropout mask M."""

    rate: float = 0.0  # the probability that an input is dropped, as the spec gives it
    kind: str = KIND
    # Each unit is a weighted sum of its masked inputs: the per-unit oracle and the worked chains, which read
    # the plain inputs, do not apply; the whole expanded loss (with the mask's entries as symbols) does.
    fully_connected: bool = False

    @cached_property
    def mask(self) -> MatrixSymbol:
        return mask_symbol(self.index, self.fan_in)

    @cached_property
    def exact_rate(self) -> sp.Rational:
        return exact_value(self.rate)

    @cached_property
    def kept_value(self) -> sp.Rational:
        """The value of a kept entry of the mask, 1 / (1 - rate)."""
        return 1 / (1 - self.exact_rate)

    @cached_property
    def dropped_inputs(self) -> sp.MatrixExpr:
        return HadamardProduct(self.inputs, self.mask)

    # -- matrix form
    @cached_property
    def preactivation(self) -> sp.MatrixExpr:
        product = self.dropped_inputs * self.weight
        if self.bias_row is None:
            return product
        return product + OneMatrix(n_samples, 1) * self.bias_row

    def _pullback(self, role: str) -> sp.MatrixExpr:
        rule, generic = _pullback_rules(self.bias_row is not None)
        ours = {generic["inputs"]: self.inputs, generic["mask"]: self.mask, generic["weight"]: self.weight,
                generic["delta"]: self.delta}
        if self.bias_row is not None:
            ours[generic["bias"]] = self.bias_row
        return rule[role].xreplace(ours)

    # -- index form
    def index_preactivation(self, j, summed=None) -> sp.Expr:
        """z^(l)_j = sum_i w^(l)_ij m^(l)_i a^(l-1)_i + b^(l)_j: input i arrives through its mask entry."""
        i = summed if summed is not None else unit_index(self.index - 1, "prev")
        total = sp.Sum(q.weight(self.index)[i, j] * q.mask(self.index)[i] * q.act(self.index - 1)[i],
                       (i, 1, self.fan_in))
        return total + q.bias(self.index)[j] if self.bias else total

    def index_parameters(self) -> list[tuple[sp.Indexed, sp.Expr]]:
        """Each bias, then the weights row by row, each weight multiplying its masked input."""
        units = range(1, self.units + 1)
        out = [(q.bias(self.index)[j], sp.Integer(1)) for j in units] if self.bias else []
        for i in range(1, self.fan_in + 1):
            masked = q.mask(self.index)[i] * q.act(self.index - 1)[i]
            out += [(q.weight(self.index)[i, j], masked) for j in units]
        return out

    def index_input_partial(self, k, j) -> sp.Expr:
        """dz_k/da_j = w_jk m_j: a dropped input (m_j = 0) passes no error down."""
        return q.weight(self.index)[j, k] * q.mask(self.index)[j]

    def index_gradients(self):
        """dl/dw_ij = delta_j m_i a_i and dl/db_j = delta_j, at the generic units i (below) and j."""
        j, i = unit_index(self.index, "cur"), unit_index(self.index - 1, "prev")
        delta = q.delta(self.index)[j]
        forms = [(self.parameters[0], q.weight(self.index)[i, j],
                  delta * q.mask(self.index)[i] * q.act(self.index - 1)[i])]
        if self.bias:
            forms.append((self.parameters[1], q.bias(self.index)[j], delta))
        return forms

    def indexed_inputs(self) -> dict[str, sp.Matrix]:
        """The mask as a row of its named quantities m^(l)_i, under the mask's name (for ``expanded_preactivation``)."""
        return {self.mask.name: sp.Matrix(1, self.fan_in, lambda _, i: q.mask(self.index)[i + 1])}

    # -- expanded scalars
    def expanded_inputs(self) -> dict[str, sp.Matrix]:
        """What the layer reads besides its parameters and the layer below, as scalar symbols: one sample's
        mask, a row m^(l)_i under the mask's name."""
        return {self.mask.name: sp.Matrix(1, self.fan_in, lambda _, i: sp.Symbol(f"m^{self.index}_{i + 1}",
                                                                                 real=True))}

    def expanded_preactivation(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> list[sp.Expr]:
        """With ``values`` holding the mask (a 1 x fan_in matrix under its name), the inputs are masked;
        without it, this is evaluation mode: every input counts once."""
        mask = values.get(self.mask.name)
        dropped = previous if mask is None else [previous[i] * mask[0, i] for i in range(self.fan_in)]
        return super().expanded_preactivation(dropped, values)

    # -- numbers
    def numeric_preactivation(self, previous, params: Mapping):
        """``params`` may hold the mask under its name (an array shaped as ``previous``); else evaluation mode."""
        mask = params.get(self.mask.name)
        return super().numeric_preactivation(previous if mask is None else previous * mask, params)


def dropout_layers(network) -> tuple[DropoutLayer, ...]:
    """The network's layers that drop their inputs while training, first to last."""
    return tuple(layer for layer in network.layers if isinstance(layer, DropoutLayer))


def evaluation_mode(network, expr: sp.MatrixExpr) -> sp.MatrixExpr:
    """``expr`` with every dropout mask all ones: the network as it predicts."""
    ones = {layer.mask: OneMatrix(*layer.mask.shape) for layer in dropout_layers(network)}
    if not ones:
        return expr
    return expr.xreplace(ones).replace(
        lambda e: isinstance(e, HadamardProduct) and any(isinstance(f, OneMatrix) for f in e.args),
        lambda e: HadamardProduct(*(f for f in e.args if not isinstance(f, OneMatrix))).doit())


def _dropout(symbols: LayerSymbols, layer_spec, calculus: ActivationCalculus) -> DropoutLayer:
    return DropoutLayer(symbols.index, symbols.fan_in, symbols.units, layer_spec.bias, calculus, symbols.inputs,
                        symbols.preactivation_symbol, symbols.output, symbols.delta, layer_spec.weights,
                        layer_spec.biases, rate=layer_spec.dropout)


register_layer_kind(KIND, _dropout)


def refuse_dropout(spec, where: str) -> None:
    """One line naming the first layer with dropout, for a product that does not carry dropout masks yet."""
    for index, layer_spec in enumerate(spec.layers):
        if getattr(layer_spec, "dropout", 0.0):
            raise SymbpError(f"layers[{index}].dropout: {where} has no dropout yet; remove dropout for it "
                             "(or use the NumPy module, which trains with it)")
