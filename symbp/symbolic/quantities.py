"""The named quantities a derivation talks about, as SymPy objects that know their meaning.

A derivation is written in SymPy expressions over these objects: ``pre(2)[j]`` is the
pre-activation of unit ``j`` of layer 2, ``weight(2)[i, j]`` the weight from unit ``i`` of layer 1
to unit ``j`` of layer 2, ``Partial(sample_loss(), pre(2)[j])`` the Leibniz quotient. Indices are
1-based, as the texts write them. How each prints is the notation's business; what each is worth
on data is the checker's. Nothing here knows LaTeX.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import sympy as sp

# A normalised layer's quantities: per unit, its weighted sum u, the normalised value x_hat, and the error terms at
# them (sign * dl/du, sign * dl/dx_hat); per layer and sample, the mean, the variance, the scale sqrt(variance +
# epsilon) and epsilon itself, each one number, so the base itself is the quantity (as the skip indicator).
NORMALISATION_UNIT_KINDS = ("weighted", "normalised", "weighted_delta", "normalised_delta")
NORMALISATION_LAYER_KINDS = ("mean", "variance", "scale", "stabiliser")
# What each kind of indexed quantity is, for the printer and the numerical checker.
KINDS = ("input", "target", "prediction", "pre", "act", "weight", "bias", "gain", "shift", "delta", "incoming",
         "sample_loss", "mask", "skip", "first_max", *NORMALISATION_UNIT_KINDS, *NORMALISATION_LAYER_KINDS)
# The indices of a window layer's quantities (symbp.symbolic.windows), each over one axis of the layer: its output
# channel (a filter), an input channel, an output position, a window offset and an input position; a 2-D layer's
# second spatial axis adds "2" (position2). Their letters are the notation's, kept apart from its unit indices.
WINDOW_INDEX_ROLES = ("filter", "channel", "position", "position2", "offset", "offset2", "source", "source2")
MATRIX_KINDS = ("data", "targets", "pre", "act", "weight", "bias", "delta", "mask")


@dataclass(frozen=True)
class Role:
    kind: str
    layer: int | sp.Expr = 0  # a number, or a general layer (L, l + 1, ...)


@dataclass(frozen=True)
class IndexRole:
    """A unit index ranging over layer ``layer``; ``relation`` says how it stands to the layer in focus."""

    layer: int | sp.Expr
    relation: str  # "prev", "cur", "next" or "sample"


# The layers of the general equations, stated for any depth: the output layer L and a hidden layer l.
DEPTH = sp.Symbol("L", integer=True, positive=True)
LAYER = sp.Symbol("l", integer=True, positive=True)
# A quantity of a general layer is named after it ("delta" + "l + 1"); these are the layers it can be.
_GENERAL_LAYERS = {str(base + offset): base + offset for base in (DEPTH, LAYER) for offset in range(-2, 3)}


def _layer_named(text: str):
    """The layer a quantity's name ends with: a number, or one of the general layers; None if neither."""
    if text.isdigit():
        return int(text)
    return _GENERAL_LAYERS.get(text)


def _kind_and_layer(name: str, kinds) -> tuple[str, int | sp.Expr] | None:
    """("weight", 2) from "weight2": the kind a quantity was made with, and its layer."""
    for kind in sorted(kinds, key=len, reverse=True):
        layer = _layer_named(name[len(kind):]) if name.startswith(kind) else None
        if layer is not None:
            return kind, layer
    return None


@lru_cache(maxsize=4096)
def _quantity_role(base) -> Role | None:
    if not isinstance(base, sp.IndexedBase) or not base.label.is_real:
        return None
    found = _kind_and_layer(base.label.name, KINDS)
    return Role(*found) if found else None


@lru_cache(maxsize=4096)
def _index_role(symbol) -> IndexRole | None:
    if type(symbol) is not sp.Symbol or not (symbol.is_integer and symbol.is_positive):
        return None
    relation, _, text = symbol.name.rpartition("_")
    layer = _layer_named(text)
    return IndexRole(layer, relation) if relation and layer is not None else None


@lru_cache(maxsize=4096)
def _matrix_role(symbol) -> Role | None:
    if not isinstance(symbol, sp.MatrixSymbol) or "_" not in symbol.name:
        return None
    found = _kind_and_layer(symbol.name.partition("_")[0], [kind.upper() for kind in MATRIX_KINDS])
    return Role(found[0].lower(), found[1]) if found else None


class RoleLookup:
    """The role of a quantity, read off the quantity itself: no table is filled as quantities are made.

    A quantity's kind and layer are part of what it is (``weight(2)`` is the IndexedBase ``weight2``),
    so any copy of it, made in any order, has its role. Reads like a read-only dict.
    """

    def __init__(self, role_of):
        self._role_of = role_of

    def get(self, key, default=None):
        try:
            role = self._role_of(key)
        except TypeError:  # an unhashable key is no quantity
            return default
        return default if role is None else role

    def __getitem__(self, key):
        role = self.get(key)
        if role is None:
            raise KeyError(key)
        return role

    def __contains__(self, key) -> bool:
        return self.get(key) is not None


ROLES = RoleLookup(_quantity_role)
INDEX_ROLES = RoleLookup(_index_role)
MATRIX_ROLES = RoleLookup(_matrix_role)


@cache
def quantity(kind: str, layer: int = 0) -> sp.IndexedBase:
    if kind not in KINDS:
        raise ValueError(f"unknown quantity kind {kind!r}")
    return sp.IndexedBase(f"{kind}{layer}", real=True)


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


def mask(layer: int) -> sp.IndexedBase:
    """The dropout mask on a layer's inputs: m^(l)_i multiplies input i of layer l (0, or 1 / (1 - rate))."""
    return quantity("mask", layer)


def skip(layer: int) -> sp.IndexedBase:
    """Whether a layer adds its input to its pre-activation: s^(l) is 1 for a residual layer, 0 for any other.
    One number per layer, so the base itself is the quantity, never one of its entries."""
    return quantity("skip", layer)


def gain(layer: int) -> sp.IndexedBase:
    """A normalised layer's gain gamma_j, which scales unit j's normalised value."""
    return quantity("gain", layer)


def shift(layer: int) -> sp.IndexedBase:
    """A normalised layer's shift beta_j, added to unit j after the normalisation (in place of a bias)."""
    return quantity("shift", layer)


def weighted(layer: int) -> sp.IndexedBase:
    """A normalised layer's weighted sums u_j = sum_i w_ij a_i, before normalising."""
    return quantity("weighted", layer)


def normalised(layer: int) -> sp.IndexedBase:
    """A normalised layer's normalised values x_hat_j = (u_j - mu) / sigma_hat."""
    return quantity("normalised", layer)


def weighted_delta(layer: int) -> sp.IndexedBase:
    """The error term at a normalised layer's weighted sums: (sign) dl/du_j, as delta is (sign) dl/dz_j."""
    return quantity("weighted_delta", layer)


def normalised_delta(layer: int) -> sp.IndexedBase:
    """The error term at a normalised layer's normalised values: (sign) dl/dx_hat_j (the literature's g_j)."""
    return quantity("normalised_delta", layer)


def layer_statistic(kind: str, layer: int) -> sp.IndexedBase:
    """One number of a normalised layer on one sample (``NORMALISATION_LAYER_KINDS``): the base is the quantity."""
    if kind not in NORMALISATION_LAYER_KINDS:
        raise ValueError(f"unknown statistic {kind!r}")
    return quantity(kind, layer)


def is_layer_statistic(expr) -> bool:
    role = ROLES.get(expr) if isinstance(expr, sp.IndexedBase) else None
    return role is not None and role.kind in NORMALISATION_LAYER_KINDS


def first_max(layer: int) -> sp.IndexedBase:
    """A max-pooling layer's routing: chi^(l)_{c,p,t} is 1 when offset t holds the first largest entry of channel c's
    window at position p, 0 otherwise."""
    return quantity("first_max", layer)


def window_index(layer: int, role: str, primes: int = 0) -> sp.Symbol:
    """An index over one axis of window layer ``layer`` (``WINDOW_INDEX_ROLES``), primed for a second one."""
    if role not in WINDOW_INDEX_ROLES:
        raise ValueError(f"unknown window index {role!r}")
    return unit_index(layer, role + "'" * primes)


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
    return sp.Symbol(f"{relation}_{layer}", integer=True, positive=True)


def sample_index() -> sp.Symbol:
    return unit_index(0, "sample")


@cache
def matrix(kind: str, layer: int, rows, cols) -> sp.MatrixSymbol:
    if kind not in MATRIX_KINDS:
        raise ValueError(f"unknown matrix kind {kind!r}")
    return sp.MatrixSymbol(f"{kind.upper()}{layer}_{rows}x{cols}", rows, cols)


# Scalars with a fixed meaning.
SAMPLE_LOSS = sp.Symbol("ell", real=True)  # the loss on one sample
LOSS = sp.Symbol("L", real=True)  # the loss on the data set
# A worksheet's one sample's loss plus the weight penalties (kernel_regularizer): the data set's loss on that sample.
PENALISED_LOSS = sp.Symbol("L_penalised", real=True)
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
