"""The registry of activations and losses: one SymPy expression per entry.

An elementwise activation is written in the scalar pre-activation ``z``; a row-wise one (softmax)
in the indexed pre-activation ``z[k]`` of a layer with ``K`` units. A loss is written in one
prediction ``yhat`` and its target ``y``; the network's loss sums it over outputs and samples.
Nothing here states a derivative: ``symbp.calculus`` asks SymPy for every one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

z = sp.Symbol("z", real=True)
yhat = sp.Symbol("yhat", real=True)
y = sp.Symbol("y", real=True)
alpha = sp.Symbol("alpha", positive=True)

K = sp.Symbol("K", integer=True, positive=True)
k, m = sp.symbols("k m", integer=True, nonnegative=True)
z_vec = sp.IndexedBase("z", real=True)
y_vec = sp.IndexedBase("y", real=True)


@dataclass(frozen=True)
class Activation:
    name: str
    expr: sp.Expr
    rowwise: bool = False
    params: dict[sp.Symbol, float] = field(default_factory=dict)
    display: str = ""

    @property
    def label(self) -> str:
        return self.display or self.name


@dataclass(frozen=True)
class Loss:
    name: str
    expr: sp.Expr
    # Facts about valid targets that the derivation may use, e.g. one-hot rows sum to one.
    target_facts: tuple[tuple[sp.Expr, sp.Expr], ...] = ()
    requires_output: str | None = None
    display: str = ""


def _row_sum(expr: sp.Expr) -> sp.Sum:
    return sp.Sum(expr, (m, 0, K - 1))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("sigmoid", 1 / (1 + sp.exp(-z)), display=r"\sigma"),
        Activation("tanh", sp.tanh(z), display=r"\tanh"),
        Activation("relu", sp.Piecewise((z, z > 0), (0, True)), display=r"\operatorname{ReLU}"),
        Activation("exponential", sp.exp(z), display=r"\exp"),
        Activation("linear", z, display=r"\operatorname{id}"),
        Activation("softplus", sp.log(1 + sp.exp(z)), display=r"\operatorname{softplus}"),
        Activation(
            "leaky_relu",
            sp.Piecewise((z, z > 0), (alpha * z, True)),
            params={alpha: 0.01},
            display=r"\operatorname{LReLU}",
        ),
        Activation(
            "softmax",
            sp.exp(z_vec[k]) / _row_sum(sp.exp(z_vec[m])),
            rowwise=True,
            display=r"\operatorname{softmax}",
        ),
    )
}

ACTIVATION_ALIASES = {"exp": "exponential", "identity": "linear", "logistic": "sigmoid"}

LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("squared_error", (yhat - y) ** 2),
        Loss(
            "cross_entropy",
            -y * sp.log(yhat),
            target_facts=((sp.Sum(y_vec[k], (k, 0, K - 1)), sp.Integer(1)),),
            requires_output="softmax",
        ),
        Loss(
            "binary_cross_entropy",
            -(y * sp.log(yhat) + (1 - y) * sp.log(1 - yhat)),
            requires_output="sigmoid",
        ),
    )
}
