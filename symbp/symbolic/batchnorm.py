"""The batch-normalisation kind: U = A W, each unit's column of U normalised over the batch's samples, then scaled
and shifted unit by unit (PyTorch's ``nn.BatchNorm1d`` with ``affine``, Keras's ``BatchNormalization``):

    mu_j = mean_n u_nj,   sigma^2_j = mean_n (u_nj - mu_j)^2 (the biased variance),   sigma_hat_j = sqrt(sigma^2_j +
    epsilon),   x_hat_nj = (u_nj - mu_j) / sigma_hat_j,   z_nj = gamma_j x_hat_nj + beta_j.

It is layer normalisation (``symbp.symbolic.layernorm``) turned on its side: the row normalised is one unit's
values over the batch, of length N, so the chain rule through mu and sigma^2 is the same index-form derivation
by SymPy (``normalisation_calculus(N)``), with the sums running over samples. That is the point of the layer:
every sample's loss reaches every other sample's weighted sums, and the loss of a batch no longer splits into a
sum of per-sample losses.

In evaluation (``forward``, ``predict``, ``loss`` unless asked for training) mu and sigma^2 are the layer's
running statistics, not the batch's: constants, through which no gradient flows, so dL/du_nj = g_nj / sigma_hat_j
(SymPy's derivative of x_hat with mu and sigma^2 held). Each training step updates them as PyTorch does:
running = (1 - momentum) running + momentum batch, with the batch's unbiased variance N / (N - 1) sigma^2.
They are not parameters (no gradient, no optimizer): they are stored beside them under ``statistics``' names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
import sympy as sp
from sympy import MatrixSymbol

from symbp.errors import SymbpError
from symbp.registry.calculus import ActivationCalculus
from symbp.registry.rules import Flag, SampleSum
from symbp.symbolic import quantities as q
from symbp.symbolic.layernorm import (
    CodeStep,
    LayerNormLayer,
    epsilon_symbol,
    g_vec,
    j,
    k,
    m,
    mean_g_symbol,
    mean_gx_symbol,
    mean_symbol,
    normalisation_calculus,
    row_mean,
    scale_symbol,
    u_vec,
    variance_symbol,
    x_vec,
)
from symbp.symbolic.layers import LayerSymbols, n_samples, register_layer_kind

KIND = "batch_norm"

# The generated functions' flag: True normalises by the batch's statistics (a training step), False by the running
# ones (evaluation). The code printer writes a Piecewise on it as Python's conditional expression.
training = Flag("training")
centred_vec = sp.IndexedBase("c", real=True)  # u - mu, along a unit's column
running_mean_symbol, running_variance_symbol = sp.symbols("mu_running sigma2_running", real=True)


@cache
def evaluation_derivative() -> sp.Expr:
    """dL/du_j = sum_k g_k d x_hat_k / du_j with mu and sigma^2 constants (the running statistics), by SymPy."""
    calculus = normalisation_calculus(n_samples)
    normalised = calculus.normalised.subs(calculus.scale, scale_symbol)
    total = sp.Sum(g_vec[k] * sp.diff(normalised, u_vec[j]), (k, 0, n_samples - 1)).doit()
    return total.replace(lambda e: isinstance(e, sp.Piecewise), lambda e: e.args[0].expr)


@dataclass(frozen=True)
class RunningStatistic:
    """One array a batch-normalised layer keeps beside its parameters: what it starts at, and the batch's value
    that each training step moves it towards."""

    name: str  # "running_mean2": the key in a parameter dict and in a saved .npz file
    shape: tuple[int, ...]  # (units,)
    start: float  # 0 for the mean, 1 for the variance (PyTorch's)
    momentum: float
    batch: sp.Expr  # the batch's statistic, over the arrays of the generated training step


@dataclass(frozen=True)
class BatchNormLayer(LayerNormLayer):
    """U = A W; Z = gamma o (U - mu) / sqrt(sigma^2 + epsilon) + beta, mu and sigma^2 over the batch per unit."""

    momentum: float = 0.1
    kind: str = KIND

    # -- the arrays of the generated code, besides layer normalisation's U, C, H and deltas
    @cached_property
    def mean(self) -> MatrixSymbol:
        """mu: one per unit, a row (the batch's while training, the running one in evaluation)."""
        return MatrixSymbol(f"mean{self.index}", 1, self.units)

    @cached_property
    def variance(self) -> MatrixSymbol:
        """sigma^2: one per unit, a row, biased (divided by N)."""
        return MatrixSymbol(f"var{self.index}", 1, self.units)

    @cached_property
    def scale(self) -> MatrixSymbol:
        """sigma_hat: one per unit, a row."""
        return MatrixSymbol(f"S{self.index}", 1, self.units)

    @cached_property
    def running_mean(self) -> MatrixSymbol:
        return MatrixSymbol(f"running_mean{self.index}", 1, self.units)

    @cached_property
    def running_variance(self) -> MatrixSymbol:
        return MatrixSymbol(f"running_var{self.index}", 1, self.units)

    @cached_property
    def statistics(self) -> tuple[RunningStatistic, RunningStatistic]:
        """The running mean and (unbiased) variance, in the order they are stored."""
        unbiased = n_samples / (n_samples - 1) * variance_symbol
        return (
            RunningStatistic(self.running_mean.name, (self.units,), 0.0, self.momentum, mean_symbol),
            RunningStatistic(self.running_variance.name, (self.units,), 1.0, self.momentum, unbiased),
        )

    @cached_property
    def statistic_bindings(self) -> dict:
        """What the symbols of ``RunningStatistic.batch`` stand for in the generated step."""
        return {mean_symbol: self.mean, variance_symbol: self.variance}

    def _column(self, expr: sp.Expr) -> sp.Expr:
        """An index expression along a unit's column: its sums over samples become sums down each column."""
        expr = expr.replace(lambda e: isinstance(e, sp.Sum), lambda e: SampleSum(e.function))
        return expr.subs(epsilon_symbol, sp.Float(self.epsilon))

    @cached_property
    def forward_steps(self) -> tuple[CodeStep, ...]:
        """U, mu, the centred values, sigma^2, sigma_hat, X_hat and Z, from ``normalisation_calculus(N)``'s
        definitions; mu and sigma^2 are the batch's while training and the running statistics otherwise."""
        calculus = normalisation_calculus(n_samples)
        in_centred = {u_vec[m]: mean_symbol + centred_vec[m], u_vec[k]: mean_symbol + centred_vec[k]}
        batch_mean = sp.Piecewise((self._column(calculus.mean), training), (running_mean_symbol, True))
        batch_variance = sp.Piecewise((self._column(calculus.variance.xreplace(in_centred)), training),
                                      (running_variance_symbol, True))
        return (
            CodeStep(self.weighted, self.inputs * self.weight, {}, "the weighted sums U, before normalising"),
            CodeStep(self.mean, batch_mean, {u_vec: self.weighted, running_mean_symbol: self.running_mean},
                     "each unit's mean: over the batch's samples while training, else the running mean"),
            CodeStep(self.centred, u_vec[k] - mean_symbol, {u_vec: self.weighted, mean_symbol: self.mean},
                     "U less its unit's mean"),
            CodeStep(self.variance, batch_variance, {centred_vec: self.centred,
                                                     running_variance_symbol: self.running_variance},
                     "each unit's variance: the batch's biased one while training, else the running variance"),
            CodeStep(self.scale, self._column(calculus.scale), {variance_symbol: self.variance},
                     "sqrt(variance + epsilon), one per unit"),
            CodeStep(self.normalised, calculus.normalised.xreplace(in_centred).subs(calculus.scale, scale_symbol),
                     {centred_vec: self.centred, scale_symbol: self.scale}, "the normalised values x_hat"),
            CodeStep(self.preactivation_symbol, self.preactivation, {}, "scaled by gamma, shifted by beta"),
        )

    @cached_property
    def backward_steps(self) -> tuple[CodeStep, ...]:
        """dL/dX_hat, its two column means, and dL/dU: SymPy's chain rule through the batch's mean and variance
        while training (the compact form), through constants in evaluation."""
        compact = normalisation_calculus(n_samples).compact
        g_mean, gx_mean = (MatrixSymbol(f"{name}{self.index}", 1, self.units)
                           for name in ("mean_deltaH", "mean_deltaH_H"))
        means = {sp.Sum(g_vec[k], (k, 0, n_samples - 1)): n_samples * mean_g_symbol,
                 sp.Sum(g_vec[k] * x_vec[k], (k, 0, n_samples - 1)): n_samples * mean_gx_symbol}
        arrays = {g_vec: self.normalised_delta, x_vec: self.normalised, scale_symbol: self.scale,
                  mean_g_symbol: g_mean, mean_gx_symbol: gx_mean}
        weighted_delta = sp.Piecewise((compact.xreplace(means), training), (evaluation_derivative(), True))
        return (
            CodeStep(self.normalised_delta, self.normalised_gradient, {}, f"dL/dH{self.index} = delta * gamma"),
            CodeStep(g_mean, self._column(row_mean(g_vec[k], k, n_samples)), arrays,
                     "its mean over the batch, per unit (read while training)"),
            CodeStep(gx_mean, self._column(row_mean(g_vec[k] * x_vec[k], k, n_samples)), arrays,
                     "and the mean of its product with the normalised values"),
            CodeStep(self.weighted_delta, weighted_delta, arrays,
                     f"dL/dU{self.index}: through the batch's mean and variance while training, SymPy's chain rule"),
        )

    # -- index form over the batch: each unit's statistics are sums over the batch's samples
    def batch_statistics(self, j, other) -> tuple[tuple[sp.Basic, sp.Expr], ...]:
        """Unit ``j``'s mu, sigma^2 (biased) and sigma_hat over the batch, each a sum over the samples ``other``
        (n' = 1 .. N), in the order they are computed."""
        mean, variance, scale = (q.layer_statistic(kind, self.index)[j] for kind in ("mean", "variance", "scale"))
        u = q.weighted(self.index)
        return (
            (mean, sp.Sum(u[other, j], (other, 1, q.N_SAMPLES)) / q.N_SAMPLES),
            (variance, sp.Sum((u[other, j] - mean) ** 2, (other, 1, q.N_SAMPLES)) / q.N_SAMPLES),
            (scale, sp.sqrt(variance + q.layer_statistic("stabiliser", self.index))),
        )

    def batch_normalised(self, n, j) -> sp.Expr:
        """x_hat_nj = (u_nj - mu_j) / sigma_hat_j."""
        return ((q.weighted(self.index)[n, j] - q.layer_statistic("mean", self.index)[j])
                / q.layer_statistic("scale", self.index)[j])

    # -- expanded scalars: evaluation mode per sample, training mode over a batch
    def _weighted_sums(self, previous: Sequence[sp.Expr], w: sp.Matrix) -> list[sp.Expr]:
        return [sum(previous[i] * w[i, jj] for i in range(self.fan_in)) for jj in range(self.units)]

    def expanded_preactivation(self, previous: Sequence[sp.Expr], values: Mapping[str, sp.Matrix]) -> list[sp.Expr]:
        """One sample in evaluation mode: ``values`` holds the running statistics (1 x units) under their names.
        Training mode has no per-sample form: see ``expanded_batch_preactivation``."""
        if self.running_mean.name not in values:
            raise SymbpError(f"layer {self.index} is batch-normalised: in training mode its pre-activations are "
                             "written over the whole batch (expanded_batch_preactivation), not one sample")
        w, gain, shift = (values[name] for name in (self.weight.name, self.gain.name, self.shift.name))
        mean, variance = values[self.running_mean.name], values[self.running_variance.name]
        weighted = self._weighted_sums(previous, w)
        return [gain[0, jj] * (weighted[jj] - mean[0, jj]) / sp.sqrt(variance[0, jj] + self.exact_epsilon)
                + shift[0, jj] for jj in range(self.units)]

    def expanded_batch_preactivation(self, rows: Sequence[Sequence[sp.Expr]],
                                     values: Mapping[str, sp.Matrix]) -> list[list[sp.Expr]]:
        """Every sample's pre-activations in training mode, each unit normalised over the batch ``rows``."""
        w, gain, shift = (values[name] for name in (self.weight.name, self.gain.name, self.shift.name))
        weighted = [self._weighted_sums(row, w) for row in rows]
        count = len(rows)
        out = [[None] * self.units for _ in rows]
        for jj in range(self.units):
            column = [sample[jj] for sample in weighted]
            mean = sp.Add(*column) / count
            variance = sp.Add(*((each - mean) ** 2 for each in column)) / count
            scale = sp.sqrt(variance + self.exact_epsilon)
            for n, each in enumerate(column):
                out[n][jj] = gain[0, jj] * (each - mean) / scale + shift[0, jj]
        return out

    # -- numbers
    def numeric_preactivation(self, previous, params: Mapping):
        """With the running statistics in ``params``, evaluation mode; without, training mode over the rows of
        ``previous`` (a batch)."""
        weighted = np.atleast_2d(np.asarray(previous)) @ np.asarray(params[self.weight.name])
        if self.running_mean.name in params:
            mean = np.asarray(params[self.running_mean.name])
            variance = np.asarray(params[self.running_variance.name])
        else:
            mean, variance = weighted.mean(axis=0), weighted.var(axis=0)
        normalised = (weighted - mean) / np.sqrt(variance + self.epsilon)
        out = np.asarray(params[self.gain.name]) * normalised + np.asarray(params[self.shift.name])
        return out if np.ndim(previous) == 2 else out[0]


    def batch_numeric_stages(self, previous, row_params: Sequence[Mapping], pin) -> dict[str, np.ndarray]:
        """The named quantities of the layer on a batch in training mode, for the checker: the rows of
        ``previous`` are the samples, each with its own copy of the parameters (``row_params``, so that one sample's
        share of a gradient can be taken); ``pin`` may move each quantity before the next is computed. Per-sample
        quantities are (samples, units), the statistics (units,)."""
        rows = range(len(previous))
        stages = {"weighted": pin("weighted", np.array([np.asarray(previous[r]) @ np.asarray(
            row_params[r][self.weight.name]) for r in rows]))}
        weighted = stages["weighted"]
        stages["mean"] = pin("mean", weighted.mean(axis=0))
        stages["variance"] = pin("variance", ((weighted - stages["mean"]) ** 2).mean(axis=0))
        stages["stabiliser"] = np.array([self.epsilon])
        stages["scale"] = pin("scale", np.sqrt(stages["variance"] + self.epsilon))
        stages["normalised"] = pin("normalised", (weighted - stages["mean"]) / stages["scale"])
        stages["pre"] = np.array([np.asarray(row_params[r][self.gain.name]) * stages["normalised"][r]
                                  + np.asarray(row_params[r][self.shift.name]) for r in rows])
        return stages


def batch_norm_layers(network) -> tuple[BatchNormLayer, ...]:
    """The network's batch-normalised layers, first to last."""
    return tuple(layer for layer in network.layers if isinstance(layer, BatchNormLayer))


def _batch_norm(symbols: LayerSymbols, layer_spec, calculus: ActivationCalculus) -> BatchNormLayer:
    return BatchNormLayer(symbols.index, symbols.fan_in, symbols.units, calculus, symbols.inputs,
                          symbols.preactivation_symbol, symbols.output, symbols.delta, layer_spec.epsilon,
                          layer_spec.weights, momentum=layer_spec.momentum)


register_layer_kind(KIND, _batch_norm)


def refuse_batch_normalization(spec, where: str) -> None:
    """One line naming the first batch-normalised layer, for a product that does not carry batch normalisation."""
    for index, layer_spec in enumerate(spec.layers):
        if getattr(layer_spec, "normalization", "") == "batch":
            raise SymbpError(f"layers[{index}].normalization: {where} has no batch normalisation yet; use the "
                             "NumPy module (symbp generate, check, train, predict), or remove normalization")
