"""The named quantities a derivation talks about, as SymPy objects that know their meaning.

A derivation is written in SymPy expressions over these objects: ``pre(2)[j]`` is the
pre-activation of unit ``j`` of layer 2, ``weight(2)[i, j]`` the weight from unit ``i`` of layer 1
to unit ``j`` of layer 2, ``Partial(sample_loss(), pre(2)[j])`` the Leibniz quotient. Indices are
1-based, as the texts write them. How each prints is the notation's business; what each is worth
on data is the checker's. Nothing here knows LaTeX.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sympy as sp

# What each kind of indexed quantity is, for the printer and the numerical checker.
KINDS = ("input", "target", "prediction", "pre", "act", "weight", "bias", "delta", "incoming", "sample_loss")
MATRIX_KINDS = ("data", "targets", "pre", "act", "weight", "bias", "delta")


@dataclass(frozen=True)
class Role:
    kind: str
    layer: int = 0


@dataclass(frozen=True)
class IndexRole:
    """A unit index ranging over layer ``layer``; ``relation`` says how it stands to the layer in focus."""

    layer: int
    relation: str  # "prev", "cur", "next" or "sample"


ROLES: dict[sp.Basic, Role] = {}
INDEX_ROLES: dict[sp.Symbol, IndexRole] = {}
MATRIX_ROLES: dict[sp.MatrixSymbol, Role] = {}


@cache
def quantity(kind: str, layer: int = 0) -> sp.IndexedBase:
    if kind not in KINDS:
        raise ValueError(f"unknown quantity kind {kind!r}")
    base = sp.IndexedBase(f"{kind}{layer}", real=True)
    ROLES[base] = Role(kind, layer)
    return base


def inputs() -> sp.IndexedBase:
    return quantity("input")


def targets() -> sp.IndexedBase:
    return quantity("target")


def predictions() -> sp.IndexedBase:
    return quantity("prediction")


def pre(layer: int) -> sp.IndexedBase:
    return quantity("pre", layer)


def act(layer: int) -> sp.IndexedBase:
    """The activations of a layer; layer 0 is the input."""
    return quantity("input") if layer == 0 else quantity("act", layer)


def weight(layer: int) -> sp.IndexedBase:
    return quantity("weight", layer)


def bias(layer: int) -> sp.IndexedBase:
    return quantity("bias", layer)


def delta(layer: int) -> sp.IndexedBase:
    return quantity("delta", layer)


def incoming(layer: int) -> sp.IndexedBase:
    """The error a hidden unit receives from the layer above, before its own derivative (Fausett's delta_in)."""
    return quantity("incoming", layer)


def sample_losses() -> sp.IndexedBase:
    """The loss on sample n, as a term of the data set's loss."""
    return quantity("sample_loss")


@cache
def unit_index(layer: int, relation: str) -> sp.Symbol:
    symbol = sp.Symbol(f"{relation}_{layer}", integer=True, positive=True)
    INDEX_ROLES[symbol] = IndexRole(layer, relation)
    return symbol


def sample_index() -> sp.Symbol:
    return unit_index(0, "sample")


@cache
def matrix(kind: str, layer: int, rows, cols) -> sp.MatrixSymbol:
    if kind not in MATRIX_KINDS:
        raise ValueError(f"unknown matrix kind {kind!r}")
    symbol = sp.MatrixSymbol(f"{kind.upper()}{layer}_{rows}x{cols}", rows, cols)
    MATRIX_ROLES[symbol] = Role(kind, layer)
    return symbol


# Scalars with a fixed meaning.
SAMPLE_LOSS = sp.Symbol("ell", real=True)  # the loss on one sample
LOSS = sp.Symbol("L", real=True)  # the loss on the data set
LEARNING_RATE = sp.Symbol("eta", positive=True)
N_SAMPLES = sp.Symbol("N", integer=True, positive=True)  # the same symbol as symbp.symbolic.network.n_samples
VARIABLE = sp.Symbol("z", real=True)  # the argument of an activation, in its own derivation
# An optimizer's state, for any one weight or bias.
PARAMETER = sp.Symbol("theta", real=True)
VELOCITY = sp.Symbol("v", real=True)
MOMENT = sp.Symbol("m", real=True)
STEP = sp.Symbol("t", integer=True, positive=True)
MOMENTUM = sp.Symbol("mu", positive=True)
BETA1 = sp.Symbol("beta_1", positive=True)
BETA2 = sp.Symbol("beta_2", positive=True)
EPSILON = sp.Symbol("epsilon", positive=True)


@cache
def activation_function(name: str) -> sp.FunctionClass:
    """An undefined SymPy function standing for a registry activation, e.g. sigma(z)."""
    return sp.Function(f"act_{name}", real=True)


def activation_name(function) -> str | None:
    name = getattr(function, "__name__", "")
    return name[len("act_"):] if name.startswith("act_") else None


class Partial(sp.Expr):
    """The Leibniz quotient d(numerator)/d(denominator), kept unevaluated for display.

    ``doit`` asks SymPy for the derivative where the numerator is an explicit expression; a
    quotient of two named quantities (dL/da) has no SymPy value and is given one by the checker.
    """

    is_commutative = True

    def __new__(cls, numerator, denominator):
        return sp.Expr.__new__(cls, sp.sympify(numerator), sp.sympify(denominator))

    @property
    def numerator(self) -> sp.Basic:
        return self.args[0]

    @property
    def denominator(self) -> sp.Basic:
        return self.args[1]

    def doit(self, **hints):
        numerator = self.numerator.doit(**hints) if hints.get("deep", True) else self.numerator
        return sp.diff(numerator, self.denominator)


class AtSample(sp.Expr):
    """``expr`` computed on sample ``n`` of the data set."""

    is_commutative = True

    def __new__(cls, expr, n):
        return sp.Expr.__new__(cls, sp.sympify(expr), sp.sympify(n))

    @property
    def expr(self) -> sp.Basic:
        return self.args[0]

    @property
    def sample(self) -> sp.Basic:
        return self.args[1]


class Updated(sp.Expr):
    """A parameter after one optimizer step (w^(t+1), w(new))."""

    is_commutative = True

    def __new__(cls, parameter):
        return sp.Expr.__new__(cls, sp.sympify(parameter))

    @property
    def parameter(self) -> sp.Basic:
        return self.args[0]


class Current(sp.Expr):
    """A parameter before the step (w^(t), w(old)); numerically it is the parameter itself."""

    is_commutative = True

    def __new__(cls, parameter):
        return sp.Expr.__new__(cls, sp.sympify(parameter))

    @property
    def parameter(self) -> sp.Basic:
        return self.args[0]
