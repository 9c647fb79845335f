"""Layer kinds: what a layer is, in every form the pipeline needs, and the registry of kinds.

A layer maps the previous layer's output ``A`` to its pre-activation ``Z`` with parameters of its own, and
then applies its activation. Everything that depends on *how* ``Z`` is computed lives on the layer kind:
its parameters (names, shapes, roles), ``Z`` in matrix form (for code and the matrix derivation), in index form
(for the index derivation), in expanded scalars (for the oracle, the explicit gradients and the worksheet) and
on numbers; and its pullback rules, the vector-Jacobian products ``d/dP tr(G^T Z)`` that SymPy's matrix
calculus derives. Consumers ask the layer; none of them writes ``A W + 1 b`` or the names ``W1``, ``b1``.

``LAYER_KINDS`` holds one entry per kind; dense is the first. A new kind is a class following ``Layer`` and
one ``register_layer_kind`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import Protocol

import sympy as sp
from sympy import MatrixSymbol, OneMatrix, Trace

from symbp.registry import rules
from symbp.registry.calculus import ActivationCalculus
from symbp.symbolic import quantities as q
from symbp.symbolic.quantities import unit_index

n_samples = sp.Symbol("N", integer=True, positive=True)


@dataclass(frozen=True)
class Parameter:
    """One parameter array of a layer."""

    name: str  # the key in a parameter dict and the array's name in generated code: "W1"
    role: str  # what the texts call it, and the kind of its named quantity: "weight" or "bias"
    shape: tuple[int, ...]  # as stored in a parameter dict: (fan_in, units), (units,)
    symbol: MatrixSymbol  # in the matrix form: a vector is a 1 x units row
    fan_in: int
    fan_out: int
    layer: int  # 1-based
    given: list | None = None  # the spec's values for it (stored shape, nested lists), or None: drawn at random

    def indexed(self, index: tuple[int, ...]) -> sp.Indexed:
        """One entry (a stored, 0-based index) as the named quantity of the index form, counted from 1."""
        return q.quantity(self.role, self.layer)[tuple(i + 1 for i in index)]

    def stored_index(self, indices) -> tuple[int, ...]:
        """The stored, 0-based index of a named quantity's entry (the inverse of ``indexed``)."""
        return tuple(int(i) - 1 for i in indices)

    def indexed_matrix(self) -> sp.Matrix:
        """The whole parameter as a matrix (``symbol``'s shape) of its named quantities."""
        matrix = sp.zeros(*self.symbol.shape)
        for index in self.entries():
            matrix[self.matrix_entry(index)] = self.indexed(index)
        return matrix

    def entries(self) -> list[tuple[int, ...]]:
        """Every index of the stored array, row-major."""
        if len(self.shape) == 1:
            return [(j,) for j in range(self.shape[0])]
        return [(i, j) for i in range(self.shape[0]) for j in range(self.shape[1])]

    def matrix_entry(self, index: tuple[int, ...]) -> tuple[int, int]:
        """The stored index as a (row, column) of ``symbol``."""
        return index if len(index) == 2 else (0, index[0])


class Layer(Protocol):
    """What every layer kind provides. Units are counted from 0 in numbers and from 1 in index form."""

    kind: str
    # True when each unit is a weighted sum of the layer's inputs plus its bias, one weight per input and unit
    # (z_j = sum_i w_ij a_i + b_j): the structure the fast expanded oracle and the worked chains follow.
    # A kind that leaves it out is treated as not fully connected (see ``fully_connected``).
    fully_connected: bool
    index: int  # 1-based, as in W^(1)
    fan_in: int
    units: int
    bias: bool
    calculus: ActivationCalculus
    inputs: MatrixSymbol  # A^(l-1); the data X for the first layer
    preactivation_symbol: MatrixSymbol  # Z^(l)
    output: MatrixSymbol  # A^(l)
    delta: MatrixSymbol  # dL/dZ^(l)

    @property
    def parameters(self) -> tuple[Parameter, ...]: ...

    @property
    def preactivation(self) -> sp.MatrixExpr:
        """Z in matrix form, over a batch of ``n_samples`` rows."""

    def gradient(self, parameter: Parameter) -> sp.MatrixExpr:
        """dL/dP in matrix form, in the layer's error term ``delta``: the pullback of ``delta`` to P."""

    @property
    def input_gradient(self) -> sp.MatrixExpr:
        """dL/dA^(l-1), the pullback of ``delta`` to the inputs."""

    def index_preactivation(self, j, summed=None) -> sp.Expr:
        """z^(l)_j over the named quantities of ``symbp.symbolic.quantities``."""

    def index_parameters(self) -> list[tuple[sp.Indexed, sp.Expr]]:
        """Every scalar parameter in index form, with dz_j/dp (what it multiplies), in the lesson's order."""

    def index_input_partial(self, k, j) -> sp.Expr:
        """dz^(l)_k / da^(l-1)_j: how the error term of unit k reaches unit j of the layer below."""

    def index_gradients(self) -> list[tuple[Parameter, sp.Indexed, sp.Expr]]:
        """Each parameter at a generic entry, with dl/dp in the layer's error term: (parameter, p, dl/dp / sign)."""

    def expanded_symbols(self) -> dict[str, sp.Matrix]:
        """Each parameter as a matrix (``symbol``'s shape) of scalar symbols."""

    def expanded_preactivation(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> list[sp.Expr]:
        """Each unit's pre-activation in scalars, from the previous layer's outputs and parameter matrices."""

    def numeric_preactivation(self, previous, params: Mapping):
        """Z on numbers: ``previous`` an array of samples (or one sample), ``params`` arrays by name."""

    # Optional, for a kind whose parameters or inputs reach Z through a quantity of their own (a normalised layer's
    # weighted sums u): ``index_routes()``, each parameter's ``Route``, and ``index_input_route(k, summed)``, the
    # quantity of unit k that the inputs enter, with its error term and formula; ``parameter_routes`` and
    # ``input_route`` below give a dense layer's (everything enters z, whose error term is delta) to a kind without.
    # ``numeric_stages(previous, params, pin)``: the named quantities on the way to Z on numbers, each passed
    # through ``pin(kind, values)`` (the checker's way to move one of them) before the next is computed.
    # Optional, for a kind that is more than one matrix expression (``symbp.symbolic.layernorm``):
    # ``forward_steps`` and ``backward_steps``, the arrays its generated code computes on the way to Z and from
    # delta to what ``gradient`` and ``input_gradient`` read (a module with such a layer trains on the plain
    # step); ``connections()``, its edges for the drawings; ``expanded_per_parameter``, True when its expanded
    # loss is to be differentiated one parameter at a time at the check's point rather than written whole.
    # A kind whose units are normalised over the batch (``symbp.symbolic.batchnorm``) also has ``statistics``, the
    # running arrays kept beside its parameters, and ``expanded_batch_preactivation``, every sample's pre-activations
    # written at once: its training-mode loss is no sum of per-sample losses.


@dataclass(frozen=True)
class Route:
    """How one parameter of unit j reaches the loss within its layer: the quantity ``through`` of unit j that it
    enters directly (z_j, or a normalised layer's weighted sum u_j), the error term of that quantity (the same
    sign as delta), that quantity written out over a summed index (``formula``), and d through / dp (``source``)."""

    parameter: Parameter
    indexed: sp.Indexed
    through: sp.Indexed
    error: sp.Indexed
    formula: sp.Expr
    source: sp.Expr


def parameter_routes(layer: Layer) -> list[Route]:
    """Each parameter of unit j with its route to the loss, from the kind (``index_routes``) or, for a kind whose
    parameters all enter z_j, from ``index_gradients``: dl/dp is delta_j times what p multiplies."""
    if hasattr(layer, "index_routes"):
        return layer.index_routes()
    j, other = unit_index(layer.index, "cur"), unit_index(layer.index - 1, "prev'")
    error = q.delta(layer.index)[j]
    formula = layer.index_preactivation(j, other)
    return [Route(parameter, indexed, q.pre(layer.index)[j], error, formula,
                  gradient.xreplace({error: sp.Integer(1)}))
            for parameter, indexed, gradient in layer.index_gradients()]


def input_route(layer: Layer, k, summed) -> tuple[sp.Indexed, sp.Indexed, sp.Expr]:
    """The quantity of unit k that the layer's inputs enter, its error term and its formula over ``summed`` (an
    index of the layer below): z_k, delta_k and z_k's sum, unless the kind says otherwise (``index_input_route``)."""
    if hasattr(layer, "index_input_route"):
        return layer.index_input_route(k, summed)
    return q.pre(layer.index)[k], q.delta(layer.index)[k], layer.index_preactivation(k, summed)


def activate(calculus: ActivationCalculus, preactivations: Sequence[sp.Expr],
             forward: sp.Expr | None = None) -> list[sp.Expr]:
    """The activation of each unit, for concrete pre-activations; the one place a row-wise activation
    (softmax) is written out for a concrete number of units. ``forward`` replaces the registry's formula
    (for one with its decimals made exact, say)."""
    forward = calculus.forward if forward is None else forward
    if not calculus.rowwise:
        return [forward.subs(rules.z, pre) for pre in preactivations]
    return [expr.xreplace(dict(zip(_unit_symbols(len(preactivations)), preactivations)))
            for expr in concrete_rowwise(forward, len(preactivations))]


@cache
def _unit_symbols(units: int) -> tuple[sp.Symbol, ...]:
    return sp.symbols(f"__z0:{units}", real=True)


@cache
def concrete_rowwise(forward: sp.Expr, units: int) -> tuple[sp.Expr, ...]:
    """A row-wise activation's formula (over z[k], k < K) for ``units`` units, in one symbol per unit."""
    variables = _unit_symbols(units)
    outputs = []
    for unit in range(units):
        concrete = forward.subs({rules.K: units, rules.k: unit}).doit()
        outputs.append(concrete.replace(lambda e: isinstance(e, sp.Indexed) and e.base == rules.z_vec,
                                        lambda e: variables[int(e.indices[0])]))
    return tuple(outputs)


def rowwise_variables(units: int) -> tuple[sp.Symbol, ...]:
    """The symbols ``concrete_rowwise`` writes the pre-activations of a row as."""
    return _unit_symbols(units)


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
        generic["bias"] = MatrixSymbol("b", 1, units)
        preactivation = preactivation + OneMatrix(n_samples, 1) * generic["bias"]
    pairing = Trace(generic["delta"].T * preactivation)
    return {role: pairing.diff(matrix) for role, matrix in generic.items() if role != "delta"}, generic


def _scalar_symbols(prefix: str, column_only: bool = False):
    def entry(i: int, jj: int) -> sp.Symbol:
        suffix = f"{jj + 1}" if column_only else f"{i + 1},{jj + 1}"
        return sp.Symbol(f"{prefix}_{suffix}", real=True)

    return entry


@dataclass(frozen=True)
class DenseLayer:
    """Z = A W + 1 b: every unit a weighted sum of the previous layer's outputs, plus its bias."""

    index: int
    fan_in: int
    units: int
    bias: bool
    calculus: ActivationCalculus
    inputs: MatrixSymbol
    preactivation_symbol: MatrixSymbol
    output: MatrixSymbol
    delta: MatrixSymbol
    weights_given: tuple[tuple[float, ...], ...] | None = None
    biases_given: tuple[float, ...] | None = None
    kind: str = "dense"
    fully_connected: bool = True

    @cached_property
    def weight(self) -> MatrixSymbol:
        return MatrixSymbol(f"W{self.index}", self.fan_in, self.units)

    @cached_property
    def bias_row(self) -> MatrixSymbol | None:
        return MatrixSymbol(f"b{self.index}", 1, self.units) if self.bias else None

    @cached_property
    def parameters(self) -> tuple[Parameter, ...]:
        weights = [list(row) for row in self.weights_given] if self.weights_given else None
        weight = Parameter(self.weight.name, "weight", (self.fan_in, self.units), self.weight, self.fan_in, self.units,
                           self.index, weights)
        if self.bias_row is None:
            return (weight,)
        biases = list(self.biases_given) if self.biases_given else None
        bias = Parameter(self.bias_row.name, "bias", (self.units,), self.bias_row, self.fan_in, self.units, self.index,
                         biases)
        return weight, bias

    # -- matrix form
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
            ours[generic["bias"]] = self.bias_row
        return rule[role].xreplace(ours)

    def gradient(self, parameter: Parameter) -> sp.MatrixExpr:
        return self._pullback(parameter.role)

    @cached_property
    def weight_gradient(self) -> sp.MatrixExpr:
        return self._pullback("weight")

    @cached_property
    def bias_gradient(self) -> sp.MatrixExpr | None:
        return None if self.bias_row is None else self._pullback("bias")

    @cached_property
    def input_gradient(self) -> sp.MatrixExpr:
        return self._pullback("inputs")

    # -- index form
    def index_preactivation(self, j, summed=None) -> sp.Expr:
        """z^(l)_j = sum_i w^(l)_ij a^(l-1)_i + b^(l)_j, summing over ``summed`` (an index of layer l - 1)."""
        i = summed if summed is not None else unit_index(self.index - 1, "prev")
        total = sp.Sum(q.weight(self.index)[i, j] * q.act(self.index - 1)[i], (i, 1, self.fan_in))
        return total + q.bias(self.index)[j] if self.bias else total

    def index_parameters(self) -> list[tuple[sp.Indexed, sp.Expr]]:
        """Each bias, then the weights row by row."""
        units = range(1, self.units + 1)
        out = [(q.bias(self.index)[j], sp.Integer(1)) for j in units] if self.bias else []
        for i in range(1, self.fan_in + 1):
            out += [(q.weight(self.index)[i, j], q.act(self.index - 1)[i]) for j in units]
        return out

    def index_input_partial(self, k, j) -> sp.Expr:
        """dz_k/da_j = w_jk: the only term of z_k that holds a_j."""
        return q.weight(self.index)[j, k]

    def index_gradients(self) -> list[tuple[Parameter, sp.Indexed, sp.Expr]]:
        """dl/dw_ij = delta_j a_i and dl/db_j = delta_j, at the generic units i (below) and j."""
        j, i = unit_index(self.index, "cur"), unit_index(self.index - 1, "prev")
        delta = q.delta(self.index)[j]
        forms = [(self.parameters[0], q.weight(self.index)[i, j], delta * q.act(self.index - 1)[i])]
        if self.bias:
            forms.append((self.parameters[1], q.bias(self.index)[j], delta))
        return forms

    # -- expanded scalars
    def expanded_symbols(self) -> dict[str, sp.Matrix]:
        symbols = {self.weight.name: sp.Matrix(self.fan_in, self.units, _scalar_symbols(f"w^{self.index}"))}
        if self.bias_row is not None:
            symbols[self.bias_row.name] = sp.Matrix(1, self.units, _scalar_symbols(f"b^{self.index}", True))
        return symbols

    def expanded_preactivation(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> list[sp.Expr]:
        w = values[self.weight.name]
        pre = [sum(previous[i] * w[i, jj] for i in range(self.fan_in)) for jj in range(self.units)]
        if self.bias_row is not None:
            b = values[self.bias_row.name]
            pre = [pre[jj] + b[0, jj] for jj in range(self.units)]
        return pre

    # -- numbers
    def numeric_preactivation(self, previous, params: Mapping):
        pre = previous @ params[self.weight.name]
        return pre + params[self.bias_row.name] if self.bias_row is not None else pre


@dataclass(frozen=True)
class LayerSymbols:
    """The matrices every layer has, whatever its kind, named after its position."""

    index: int
    fan_in: int
    units: int
    inputs: MatrixSymbol
    preactivation_symbol: MatrixSymbol
    output: MatrixSymbol
    delta: MatrixSymbol


# A layer kind: built from its position's matrices, the spec's layer and the activation's calculus.
LayerFactory = Callable[[LayerSymbols, object, ActivationCalculus], Layer]
LAYER_KINDS: dict[str, LayerFactory] = {}


def fully_connected(layer: Layer) -> bool:
    """Whether a layer is a weighted sum of its inputs plus a bias (``Layer.fully_connected``), False if unsaid."""
    return bool(getattr(layer, "fully_connected", False))


def register_layer_kind(kind: str, factory: LayerFactory) -> None:
    LAYER_KINDS[kind] = factory


def layer_kind(kind: str) -> LayerFactory:
    return LAYER_KINDS[kind]


def _dense(symbols: LayerSymbols, layer_spec, calculus: ActivationCalculus) -> DenseLayer:
    return DenseLayer(symbols.index, symbols.fan_in, symbols.units, layer_spec.bias, calculus, symbols.inputs,
                      symbols.preactivation_symbol, symbols.output, symbols.delta, layer_spec.weights,
                      layer_spec.biases)


register_layer_kind("dense", _dense)
