"""The layer-normalisation kind: U = A W, each sample's row of U normalised over the layer's units, then scaled
and shifted unit by unit (PyTorch's ``nn.LayerNorm`` with ``elementwise_affine``, Keras's ``LayerNormalization``):

    mu = mean_k u_k,   sigma^2 = mean_k (u_k - mu)^2 (the biased variance),   sigma_hat = sqrt(sigma^2 + epsilon),
    x_hat_j = (u_j - mu) / sigma_hat,   z_j = gamma_j x_hat_j + beta_j.

The layer has no bias (beta takes its place: a bias added to U would cancel against the mean). It is three maps
in a row, and each pullback comes from SymPy:

- U = A W: the dense layer's matrix calculus, with the error term at U in place of delta;
- Z = X_hat o 1 gamma + 1 beta: SymPy's matrix calculus on the Hadamard product gives dL/dgamma, dL/dbeta and
  dL/dX_hat = delta o 1 gamma;
- X_hat from U, row by row: the chain rule through mu and sigma^2, derived by SymPy in index form over a row of
  K units (``normalisation_calculus``). Every unit's x_hat depends on every u of its sample, which is the point:
  dL/du_j = (1/sigma_hat) (g_j - mean(g) - x_hat_j mean(g o x_hat)) with g = dL/dx_hat, an identity SymPy
  proves against its own derivative before anything uses it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
import sympy as sp
from sympy import HadamardProduct, MatrixSymbol, OneMatrix, Trace

from symbp.registry.calculus import ActivationCalculus
from symbp.registry.rules import RowSum
from symbp.spec.schema import exact_value
from symbp.symbolic import quantities as q
from symbp.symbolic.connections import Connection
from symbp.symbolic.layers import (
    LayerSymbols,
    Parameter,
    Route,
    _pullback_rules,
    _scalar_symbols,
    n_samples,
    register_layer_kind,
)
from symbp.symbolic.quantities import unit_index

KIND = "layer_norm"

# One row of the layer, in the registry's index convention: units k, m counted from 0 up to K - 1.
K = sp.Symbol("K", integer=True, positive=True)
j, k, m = sp.symbols("j k m", integer=True, nonnegative=True)
u_vec = sp.IndexedBase("u", real=True)  # the row of U = A W
x_vec = sp.IndexedBase("xhat", real=True)  # the normalised row
g_vec = sp.IndexedBase("g", real=True)  # dL/dx_hat along the row
gain_vec = sp.IndexedBase("gamma", real=True)
shift_vec = sp.IndexedBase("beta", real=True)
mean_symbol = sp.Symbol("mu", real=True)
variance_symbol = sp.Symbol("sigma2", nonnegative=True)
scale_symbol = sp.Symbol("sigmahat", positive=True)  # sqrt(sigma^2 + epsilon)
epsilon_symbol = sp.Symbol("epsilon", positive=True)
mean_g_symbol, mean_gx_symbol = sp.symbols("gbar gxbar", real=True)  # mean(g), mean(g o x_hat) over the row


def _in_range(expr: sp.Expr) -> sp.Expr:
    """SymPy guards a sum of a Kronecker delta by 0 <= j <= K - 1; j is one of the row's units."""
    return expr.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0].expr)


def _linear_sums(expr: sp.Expr) -> sp.Expr:
    """Each sum split into its terms, constants taken out: Sum(2 mu - 2 u_m) = 2 K mu - 2 Sum(u_m)."""
    def split(total: sp.Sum) -> sp.Expr:
        out = sp.Integer(0)
        for term in sp.Add.make_args(sp.expand(total.function)):
            constant, rest = term.as_independent(*total.variables, as_Add=False)
            out += constant * sp.Sum(rest, *total.limits).doit()
        return out

    return expr.replace(lambda e: isinstance(e, sp.Sum), split)


def row_mean(expr: sp.Expr, index=m, length: sp.Symbol = K) -> sp.Expr:
    """The mean over the row's ``length`` (K) units of ``expr`` written at unit ``index``."""
    return sp.Sum(expr, (index, 0, length - 1)) / length


@dataclass(frozen=True)
class NormalisationCalculus:
    """The row-wise normalisation and what SymPy derives from it, per sample over K units."""

    mean: sp.Expr  # mu, in u[m]
    variance: sp.Expr  # sigma^2, in u[m] and mu
    scale: sp.Expr  # sigma_hat = sqrt(sigma^2 + epsilon), in sigma^2
    normalised: sp.Expr  # x_hat[k], in u[k], mu and sigma_hat
    partials: tuple[tuple[str, sp.Expr], ...]  # the chain rule's pieces: d mu/du_j, d sigma^2/du_j, d x_hat_k/du_j
    derived: sp.Expr  # dL/du_j = sum_k g_k d x_hat_k/du_j, as SymPy writes it (in g, x_hat, sigma_hat)
    compact: sp.Expr  # (1/sigma_hat)(g_j - mean(g) - x_hat_j mean(g o x_hat)), proven equal to ``derived``


def _pull_constants(total: sp.Sum) -> sp.Expr:
    constant, rest = total.function.as_independent(*total.variables, as_Add=False)
    return constant * sp.Sum(rest, *total.limits)


@cache
def normalisation_calculus(length: sp.Symbol = K) -> NormalisationCalculus:
    """The chain rule through mu and sigma^2, by SymPy, on a row of symbolic length K (``length``: batch
    normalisation's row is one unit's values over the batch's samples, of length N).

    x_hat_k depends on u_j directly (k = j), through mu and through sigma^2 (which itself depends on mu). The
    one fact used is the definition of mu: sum_m u_m = K mu, so sum_m (u_m - mu) = 0.
    """
    mean = row_mean(u_vec[m], m, length)
    variance = row_mean((u_vec[m] - mean_symbol) ** 2, m, length)
    scale = sp.sqrt(variance_symbol + epsilon_symbol)
    normalised = (u_vec[k] - mean_symbol) / scale
    d_mean = _in_range(sp.diff(mean, u_vec[j]).doit())
    d_variance_direct = _in_range(sp.diff(variance, u_vec[j]).doit())
    d_variance_by_mean = _linear_sums(sp.diff(variance, mean_symbol)).subs(sp.Sum(u_vec[m], (m, 0, length - 1)),
                                                                           length * mean_symbol)
    d_variance = sp.simplify(d_variance_direct + d_variance_by_mean * d_mean)
    d_normalised = (sp.diff(normalised, u_vec[j]) + sp.diff(normalised, mean_symbol) * d_mean
                    + sp.diff(normalised, variance_symbol) * d_variance)
    # In the normalised values: u - mu = x_hat sigma_hat, and sqrt(sigma^2 + epsilon) = sigma_hat.
    in_normalised = {u_vec[k]: mean_symbol + scale_symbol * x_vec[k], u_vec[j]: mean_symbol + scale_symbol * x_vec[j]}
    d_normalised = sp.expand(d_normalised.subs(scale, scale_symbol).subs(in_normalised))
    terms = [_in_range(sp.Sum(g_vec[k] * term, (k, 0, length - 1)).doit()) for term in sp.Add.make_args(d_normalised)]
    derived = sp.Add(*terms).replace(lambda e: isinstance(e, sp.Sum), _pull_constants)
    compact = (g_vec[j] - row_mean(g_vec[k], k, length)
               - x_vec[j] * row_mean(g_vec[k] * x_vec[k], k, length)) / scale_symbol
    if sp.simplify(derived - compact) != 0:
        raise AssertionError(f"SymPy's derivative {derived} is not the compact form {compact}")
    partials = (("mean", d_mean), ("variance", d_variance), ("normalised", d_normalised.subs(in_normalised)))
    return NormalisationCalculus(mean, variance, scale, normalised, partials, derived, compact)


@cache
def _affine_rules() -> tuple[dict[str, sp.MatrixExpr], dict[str, MatrixSymbol]]:
    """d/dP tr(G^T Z) for Z = X_hat o (1 gamma) + 1 beta, by SymPy's matrix calculus on symbolic shapes."""
    units = sp.Symbol("units", integer=True, positive=True)
    generic = {
        "normalised": MatrixSymbol("H", n_samples, units),
        "gain": MatrixSymbol("gamma", 1, units),
        "shift": MatrixSymbol("beta", 1, units),
        "delta": MatrixSymbol("G", n_samples, units),
    }
    preactivation = (HadamardProduct(generic["normalised"], OneMatrix(n_samples, 1) * generic["gain"])
                     + OneMatrix(n_samples, 1) * generic["shift"])
    pairing = Trace(generic["delta"].T * preactivation)
    return {role: pairing.diff(matrix) for role, matrix in generic.items() if role != "delta"}, generic


@dataclass(frozen=True)
class CodeStep:
    """One array the generated code computes for the layer: its matrix, an expression, and what the
    expression's indexed bases and scalar symbols stand for (the arrays of ``TrainerPrinter``'s bindings)."""

    target: MatrixSymbol
    expr: sp.Expr
    bindings: dict
    comment: str = ""


@dataclass(frozen=True)
class LayerNormLayer:
    """U = A W; Z = gamma o (U - mu) / sqrt(sigma^2 + epsilon) + beta, mu and sigma^2 over each sample's units."""

    index: int
    fan_in: int
    units: int
    calculus: ActivationCalculus
    inputs: MatrixSymbol
    preactivation_symbol: MatrixSymbol
    output: MatrixSymbol
    delta: MatrixSymbol
    epsilon: float
    weights_given: tuple[tuple[float, ...], ...] | None = None
    kind: str = KIND
    fully_connected: bool = False  # each unit depends on every unit's weighted sum, through the mean and variance
    bias: bool = False  # beta is added after the normalisation; no bias before it
    # Written whole, the expanded loss nests a square root of a sum over every unit of the layer in every unit:
    # the check's oracle differentiates it one parameter at a time, the others numbers.
    expanded_per_parameter: bool = True

    # -- the arrays of the matrix form
    @cached_property
    def weight(self) -> MatrixSymbol:
        return MatrixSymbol(f"W{self.index}", self.fan_in, self.units)

    @cached_property
    def gain(self) -> MatrixSymbol:
        return MatrixSymbol(f"gamma{self.index}", 1, self.units)

    @cached_property
    def shift(self) -> MatrixSymbol:
        return MatrixSymbol(f"beta{self.index}", 1, self.units)

    @cached_property
    def weighted(self) -> MatrixSymbol:
        """U = A W."""
        return MatrixSymbol(f"U{self.index}", n_samples, self.units)

    @cached_property
    def normalised(self) -> MatrixSymbol:
        """X_hat: U's rows normalised."""
        return MatrixSymbol(f"H{self.index}", n_samples, self.units)

    @cached_property
    def scale(self) -> MatrixSymbol:
        """sigma_hat: one per sample, a column."""
        return MatrixSymbol(f"S{self.index}", n_samples, 1)

    @cached_property
    def weighted_delta(self) -> MatrixSymbol:
        """dL/dU, the error term at the weighted sums."""
        return MatrixSymbol(f"deltaU{self.index}", n_samples, self.units)

    @cached_property
    def exact_epsilon(self) -> sp.Rational:
        return exact_value(self.epsilon)

    @cached_property
    def parameters(self) -> tuple[Parameter, ...]:
        weights = [list(row) for row in self.weights_given] if self.weights_given else None
        return (
            Parameter(self.weight.name, "weight", (self.fan_in, self.units), self.weight, self.fan_in, self.units,
                      self.index, weights),
            Parameter(self.gain.name, "gain", (self.units,), self.gain, self.fan_in, self.units, self.index),
            Parameter(self.shift.name, "shift", (self.units,), self.shift, self.fan_in, self.units, self.index),
        )

    # -- matrix form
    @cached_property
    def preactivation(self) -> sp.MatrixExpr:
        """Z = X_hat o 1 gamma + 1 beta, X_hat the normalised rows of U = A W."""
        return (HadamardProduct(self.normalised, OneMatrix(n_samples, 1) * self.gain)
                + OneMatrix(n_samples, 1) * self.shift)

    def _affine(self, role: str, delta: MatrixSymbol | None = None) -> sp.MatrixExpr:
        rule, generic = _affine_rules()
        ours = {generic["normalised"]: self.normalised, generic["gain"]: self.gain, generic["shift"]: self.shift,
                generic["delta"]: self.delta if delta is None else delta}
        return rule[role].xreplace(ours)

    def _weighted(self, role: str) -> sp.MatrixExpr:
        """The pullback of dL/dU through U = A W: the dense layer's rule without a bias."""
        rule, generic = _pullback_rules(False)
        ours = {generic["inputs"]: self.inputs, generic["weight"]: self.weight,
                generic["delta"]: self.weighted_delta}
        return rule[role].xreplace(ours)

    def gradient(self, parameter: Parameter) -> sp.MatrixExpr:
        if parameter.role == "weight":
            return self._weighted("weight")
        return self._affine(parameter.role)

    @cached_property
    def normalised_gradient(self) -> sp.MatrixExpr:
        """dL/dX_hat = delta o 1 gamma."""
        return self._affine("normalised")

    @cached_property
    def input_gradient(self) -> sp.MatrixExpr:
        return self._weighted("inputs")

    # -- the generated code's steps, in the order they run: row-wise expressions over bound arrays
    @cached_property
    def centred(self) -> MatrixSymbol:
        """U less each sample's mean."""
        return MatrixSymbol(f"C{self.index}", n_samples, self.units)

    @cached_property
    def normalised_delta(self) -> MatrixSymbol:
        """dL/dX_hat."""
        return MatrixSymbol(f"deltaH{self.index}", n_samples, self.units)

    def _row(self, expr: sp.Expr) -> sp.Expr:
        """A row-wise index expression for this layer: sums over the row's units become sums along each row."""
        expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda e: RowSum(e.function))
        return expr.subs({K: self.units, epsilon_symbol: sp.Float(self.epsilon)})

    @cached_property
    def forward_steps(self) -> tuple[CodeStep, ...]:
        """U, the centred rows, sigma_hat, X_hat and Z, each from the definitions of ``normalisation_calculus``."""
        calculus = normalisation_calculus()
        centred = sp.IndexedBase("c", real=True)
        in_centred = {u_vec[m]: mean_symbol + centred[m], u_vec[k]: mean_symbol + centred[k]}
        scale = calculus.scale.subs(variance_symbol, calculus.variance.xreplace(in_centred))
        return (
            CodeStep(self.weighted, self.inputs * self.weight, {}, "the weighted sums U, before normalising"),
            CodeStep(self.centred, self._row(u_vec[k] - calculus.mean), {u_vec: self.weighted},
                     "U less each sample's mean over the layer's units"),
            CodeStep(self.scale, self._row(scale),
                     {centred: self.centred},
                     "sqrt(variance + epsilon), one per sample: the biased variance over the units"),
            CodeStep(self.normalised, calculus.normalised.xreplace(in_centred).subs(calculus.scale, scale_symbol),
                     {centred: self.centred, scale_symbol: self.scale}, "the normalised values x_hat"),
            CodeStep(self.preactivation_symbol, self.preactivation, {}, "scaled by gamma, shifted by beta"),
        )

    @cached_property
    def backward_steps(self) -> tuple[CodeStep, ...]:
        """dL/dX_hat, the two row means of the compact form, and dL/dU, from delta = dL/dZ, before the
        parameters' gradients (dL/dW reads dL/dU)."""
        compact = normalisation_calculus().compact
        g_mean, gx_mean = (MatrixSymbol(f"{name}{self.index}", n_samples, 1)
                           for name in ("mean_deltaH", "mean_deltaH_H"))
        # Each row mean as a symbol bound to its column of per-sample values.
        means = {sp.Sum(g_vec[k], (k, 0, K - 1)): K * mean_g_symbol,
                 sp.Sum(g_vec[k] * x_vec[k], (k, 0, K - 1)): K * mean_gx_symbol}
        arrays = {g_vec: self.normalised_delta, x_vec: self.normalised, scale_symbol: self.scale,
                  mean_g_symbol: g_mean, mean_gx_symbol: gx_mean}
        return (
            CodeStep(self.normalised_delta, self.normalised_gradient, {}, f"dL/dH{self.index} = delta * gamma"),
            CodeStep(g_mean, self._row(row_mean(g_vec[k], k)), arrays, "its mean over each sample's units"),
            CodeStep(gx_mean, self._row(row_mean(g_vec[k] * x_vec[k], k)), arrays,
                     "and the mean of its product with the normalised values"),
            CodeStep(self.weighted_delta, self._row(compact.xreplace(means)), arrays,
                     f"dL/dU{self.index}: through each sample's mean and variance, SymPy's chain rule"),
        )

    # -- index form: z_j = gamma_j x_hat_j + beta_j; the weights enter u_j, and reach the loss through every x_hat
    def index_preactivation(self, j, summed=None) -> sp.Expr:
        """z^(l)_j = gamma_j x_hat_j + beta_j: the normalised value scaled and shifted."""
        return q.gain(self.index)[j] * q.normalised(self.index)[j] + q.shift(self.index)[j]

    def index_weighted(self, j, summed=None) -> sp.Expr:
        """u^(l)_j = sum_i w_ij a_i, the weighted sum before normalising (no bias: beta takes its place)."""
        i = summed if summed is not None else unit_index(self.index - 1, "prev")
        return sp.Sum(q.weight(self.index)[i, j] * q.act(self.index - 1)[i], (i, 1, self.fan_in))

    def index_statistics(self, k) -> tuple[tuple[sp.Basic, sp.Expr], ...]:
        """The definitions on one sample, in the order they are computed: mu, sigma^2 (biased), sigma_hat, each a
        sum over the layer's units k, and x_hat_j in them (at unit ``j`` of ``index_normalised``)."""
        mean, variance, scale, stabiliser = (q.layer_statistic(kind, self.index)
                                             for kind in ("mean", "variance", "scale", "stabiliser"))
        u = q.weighted(self.index)
        return (
            (mean, sp.Sum(u[k], (k, 1, self.units)) / self.units),
            (variance, sp.Sum((u[k] - mean) ** 2, (k, 1, self.units)) / self.units),
            (scale, sp.sqrt(variance + stabiliser)),
        )

    def index_normalised(self, j) -> sp.Expr:
        """x_hat_j = (u_j - mu) / sigma_hat."""
        return ((q.weighted(self.index)[j] - q.layer_statistic("mean", self.index))
                / q.layer_statistic("scale", self.index))

    def index_input_partial(self, k, j) -> sp.Expr:
        """du_k/da_j = w_jk: the inputs reach the layer through its weighted sums (``index_input_route``)."""
        return q.weight(self.index)[j, k]

    def index_input_route(self, k, summed):
        """The inputs enter u_k, whose error term is (sign) dl/du_k."""
        return q.weighted(self.index)[k], q.weighted_delta(self.index)[k], self.index_weighted(k, summed)

    def index_routes(self) -> list[Route]:
        """w_ij enters u_j (its error term (sign) dl/du_j); gamma_j and beta_j enter z_j (delta_j)."""
        j, i, other = (unit_index(self.index, "cur"), unit_index(self.index - 1, "prev"),
                       unit_index(self.index - 1, "prev'"))
        weight, gain, shift = self.parameters
        pre, delta = q.pre(self.index)[j], q.delta(self.index)[j]
        z = self.index_preactivation(j)
        return [
            Route(weight, q.weight(self.index)[i, j], q.weighted(self.index)[j], q.weighted_delta(self.index)[j],
                  self.index_weighted(j, other), q.act(self.index - 1)[i]),
            Route(gain, q.gain(self.index)[j], pre, delta, z, q.normalised(self.index)[j]),
            Route(shift, q.shift(self.index)[j], pre, delta, z, sp.Integer(1)),
        ]

    def index_gradients(self) -> list[tuple[Parameter, sp.Indexed, sp.Expr]]:
        """dl/dw_ij = (dl/du_j) a_i, dl/dgamma_j = delta_j x_hat_j, dl/dbeta_j = delta_j (over the sign)."""
        return [(route.parameter, route.indexed, route.error * route.source) for route in self.index_routes()]

    def index_parameters(self) -> list[tuple[sp.Indexed, sp.Expr]]:
        """gamma and beta with dz_j/dp; the weights, which reach z_j only through the normalisation, with du_j/dw."""
        units = range(1, self.units + 1)
        out = [(q.shift(self.index)[jj], sp.Integer(1)) for jj in units]
        out += [(q.gain(self.index)[jj], q.normalised(self.index)[jj]) for jj in units]
        for i in range(1, self.fan_in + 1):
            out += [(q.weight(self.index)[i, jj], q.act(self.index - 1)[i]) for jj in units]
        return out

    def index_weighted_errors(self, errors: Sequence[sp.Expr]) -> list[sp.Expr]:
        """(sign) dl/du_j of each unit from its error terms ``errors`` (delta_1 .. delta_H, as values or symbols):
        SymPy's compact form (``normalisation_calculus``) for this layer's units, in its named gains, normalised
        values and scale, with g_k = delta_k gamma_k."""
        compact = normalisation_calculus().compact.subs(K, self.units).doit()
        gains, normalised = q.gain(self.index), q.normalised(self.index)
        row = {g_vec[unit]: errors[unit] * gains[unit + 1] for unit in range(self.units)}
        row.update({x_vec[unit]: normalised[unit + 1] for unit in range(self.units)})
        row[scale_symbol] = q.layer_statistic("scale", self.index)
        return [compact.subs(j, unit).xreplace(row) for unit in range(self.units)]

    def exact_stages(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> dict:
        """The layer's named quantities on one sample, in exact arithmetic where it is exact (u, mu, sigma^2)
        and SymPy's square root otherwise: {quantity: value}, in the order they are computed."""
        w = values[self.weight.name]
        u = [sp.Add(*(previous[i] * w[i, jj] for i in range(self.fan_in))) for jj in range(self.units)]
        mean = sp.Add(*u) / self.units
        variance = sp.Add(*((each - mean) ** 2 for each in u)) / self.units
        scale = sp.sqrt(variance + self.exact_epsilon)
        out = {q.weighted(self.index)[jj + 1]: u[jj] for jj in range(self.units)}
        out.update({q.layer_statistic("mean", self.index): mean, q.layer_statistic("variance", self.index): variance,
                    q.layer_statistic("scale", self.index): scale})
        out.update({q.normalised(self.index)[jj + 1]: (u[jj] - mean) / scale for jj in range(self.units)})
        return out

    # -- the named quantities on numbers, for the checker: each may be moved (``pin``) before the next is computed
    def numeric_stages(self, previous, params: Mapping, pin) -> dict[str, np.ndarray]:
        stages = {"weighted": pin("weighted", np.asarray(previous) @ np.asarray(params[self.weight.name]))}
        weighted = stages["weighted"]
        stages["mean"] = pin("mean", np.array([weighted.mean()]))
        stages["variance"] = pin("variance", np.array([((weighted - stages["mean"][0]) ** 2).mean()]))
        stages["stabiliser"] = np.array([self.epsilon])
        stages["scale"] = pin("scale", np.sqrt(stages["variance"] + self.epsilon))
        stages["normalised"] = pin("normalised", (weighted - stages["mean"][0]) / stages["scale"][0])
        stages["pre"] = (np.asarray(params[self.gain.name]) * stages["normalised"]
                         + np.asarray(params[self.shift.name]))
        return stages

    def connections(self) -> tuple[Connection, ...]:
        """What a drawing draws: every input weighted into every unit, and each unit's shift in place of a bias.
        The gain scales a unit's normalised value and joins no two units, so it has no edge."""
        weight, _, shift = self.parameters
        edges = []
        for jj in range(self.units):
            edges += [Connection(i + 1, jj + 1, weight, (i, jj)) for i in range(self.fan_in)]
            edges.append(Connection(None, jj + 1, shift, (jj,)))
        return tuple(edges)

    # -- expanded scalars
    def expanded_symbols(self) -> dict[str, sp.Matrix]:
        return {
            self.weight.name: sp.Matrix(self.fan_in, self.units, _scalar_symbols(f"w^{self.index}")),
            self.gain.name: sp.Matrix(1, self.units, _scalar_symbols(f"gamma^{self.index}", True)),
            self.shift.name: sp.Matrix(1, self.units, _scalar_symbols(f"beta^{self.index}", True)),
        }

    def expanded_preactivation(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> list[sp.Expr]:
        w, gain, shift = (values[name] for name in (self.weight.name, self.gain.name, self.shift.name))
        weighted = [sum(previous[i] * w[i, jj] for i in range(self.fan_in)) for jj in range(self.units)]
        mean = sum(weighted[1:], weighted[0]) / self.units
        variance = sum(((each - mean) ** 2 for each in weighted[1:]), (weighted[0] - mean) ** 2) / self.units
        # Arrays of floats (the worksheet's vectorised draws) take NumPy's square root, expressions SymPy's.
        if isinstance(variance, np.ndarray):
            scale = np.sqrt(variance + self.epsilon)
        else:
            scale = sp.sqrt(variance + self.exact_epsilon)
        return [gain[0, jj] * (weighted[jj] - mean) / scale + shift[0, jj] for jj in range(self.units)]

    # -- numbers
    def numeric_preactivation(self, previous, params: Mapping):
        weighted = np.asarray(previous) @ np.asarray(params[self.weight.name])
        centred = weighted - weighted.mean(axis=-1, keepdims=True)
        scale = np.sqrt((centred**2).mean(axis=-1, keepdims=True) + self.epsilon)
        return np.asarray(params[self.gain.name]) * centred / scale + np.asarray(params[self.shift.name])


def _layer_norm(symbols: LayerSymbols, layer_spec, calculus: ActivationCalculus) -> LayerNormLayer:
    if symbols.units < 2:
        raise ValueError("layer normalisation over 1 unit has variance 0; give the layer 2 units or more")
    return LayerNormLayer(symbols.index, symbols.fan_in, symbols.units, calculus, symbols.inputs,
                          symbols.preactivation_symbol, symbols.output, symbols.delta, layer_spec.epsilon,
                          layer_spec.weights)


register_layer_kind(KIND, _layer_norm)
