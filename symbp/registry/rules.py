"""The registry of activations and losses: one SymPy expression per entry.

An elementwise activation is written in the scalar pre-activation ``z``; a row-wise one (softmax)
in the indexed pre-activation ``z[k]`` of a layer with ``K`` units. A loss is written in one
prediction ``yhat`` and its target ``y``; the network's loss sums it over outputs and samples.
Nothing here states a derivative: ``symbp.registry.calculus`` asks SymPy for every one.

Some entries also carry a *stable* form: the same function written so that NumPy does not overflow
(the sigmoid from exp(-|z|), softmax after subtracting the row maximum, losses on the pre-activation
instead of the log of a probability). Only the printed value uses it; derivatives come from ``expr``,
and the registry tests check that both forms agree. The sigmoid also carries a *library* form, one
call of ``Logistic``: the function that PyTorch and JAX have as a kernel of their own, though the array
API standard has none; the array-API module's printed value uses it.

Custom entries come from a spec's ``expr``: their registry name is ``custom:<label>:<expression>``,
which is all it takes to rebuild them, so specs stay plain data and caches can key on the name.

Everything the rest of symbp needs to know about one activation or loss is an attribute of its entry
(what targets it takes, how its outputs are read, what a notation calls it, why it may overflow), so
no module outside the registry tests an entry's name. Custom entries take the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import sympy as sp
from sympy.codegen.cfunctions import log1p
from sympy.codegen.numpy_nodes import logaddexp

from symbp.errors import SpecError
from symbp.registry.targets import IN_UNIT_INTERVAL, ONE_HOT, REAL, TargetKind
from symbp.spec.expressions import NotFinite, evaluate_everywhere, normalise, parse_expression

z = sp.Symbol("z", real=True)
yhat = sp.Symbol("yhat", real=True)
y = sp.Symbol("y", real=True)
alpha = sp.Symbol("alpha", positive=True)

K = sp.Symbol("K", integer=True, positive=True)
k, m = sp.symbols("k m", integer=True, nonnegative=True)
z_vec = sp.IndexedBase("z", real=True)
y_vec = sp.IndexedBase("y", real=True)

CUSTOM_PREFIX = "custom:"


class RowMax(sp.Function):
    """The largest pre-activation in a sample's row, max over m of z[m]; prints as ``Z.max(axis=1)``.

    Subtracting it before ``exp`` changes no softmax value and keeps every exponent at or below zero.
    """


class Logistic(sp.Function):
    """The logistic function 1 / (1 + exp(-x)) as one named function, as array libraries have it (torch.sigmoid,
    jax.nn.sigmoid): one pass over the array, where its overflow-free form takes several."""

    nargs = 1

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))


class RowSum(sp.Function):
    """The sum over a layer's units within each sample's row: Sum(f[m], (m, 0, K - 1)) with the index dropped.

    Code generation writes row-wise expressions without indices (every unit of a row at once);
    this is what such an expression's sums become.
    """


class Flag(sp.Symbol):
    """A true-or-false argument of a generated function (batch normalisation's ``training``): a Piecewise on it is
    a choice made once per call, which code generation writes as Python's conditional expression."""


class SampleSum(sp.Function):
    """The sum over a batch's samples within each unit's column: Sum(f[m], (m, 0, N - 1)) with the index dropped.

    Batch normalisation's means are these: code generation writes them for every unit of the layer at once.
    """


@dataclass(frozen=True)
class Activation:
    name: str
    expr: sp.Expr
    rowwise: bool = False
    params: dict[sp.Symbol, float] = field(default_factory=dict)
    display: str = ""
    # The same function in a form NumPy evaluates without overflow; used for the printed forward value.
    stable_expr: sp.Expr | None = None
    # The same function as one call of a function that array libraries have but the standard lacks (Logistic);
    # the array-API module's printed forward value, which falls back to stable_expr where a library lacks it.
    library_expr: sp.Expr | None = None
    title: str = ""  # a custom entry's label
    source: str = ""  # a custom entry's expression, as parsed
    # The targets its outputs can match: one-hot rows after softmax, values in [0, 1] after sigmoid.
    natural_targets: TargetKind = REAL
    # What one of its output units is called in a table of predictions ("probability_0", "output_0").
    output_name: str = "output"
    # The attribute of a LaTeX notation preset that holds the letter a text uses for this function
    # (e.g. S or sigma for the logistic function); empty when every notation writes ``display``.
    notation_slot: str = ""
    # Why its values may overflow in training, and what helps, when that is more specific than
    # "it grows fast": completes "the <name> <layer> ...".
    overflow_advice: str = ""

    @property
    def label(self) -> str:
        return self.display or self.name

    @property
    def identity(self) -> bool:
        """True for the identity map, a = z: the output layer of a linear regression."""
        return self.expr == z and not self.rowwise

    @property
    def kinked(self) -> bool:
        """True when it has a corner (relu's at zero, a custom abs or max): its derivative jumps there."""
        return self.expr.has(sp.Piecewise, sp.Abs, sp.Max, sp.Min, sp.Heaviside, sp.sign)

    @property
    def short_name(self) -> str:
        """What people call it: the registry name, or a custom entry's label."""
        return self.title or self.name


@dataclass(frozen=True)
class Loss:
    name: str
    expr: sp.Expr
    # Facts about valid targets that the derivation may use, e.g. one-hot rows sum to one.
    target_facts: tuple[tuple[sp.Expr, sp.Expr], ...] = ()
    requires_output: str | None = None
    display: str = ""
    # The loss with yhat = requires_output(z), written in the output's pre-activation z (z[k] for a
    # row-wise output) so that NumPy never takes the log of a probability that underflowed to zero.
    stable_expr: sp.Expr | None = None
    title: str = ""
    source: str = ""
    # What its targets must be; data files are checked against it and gradient checks draw from it.
    targets: TargetKind = REAL
    # What a single output is called in a table of predictions ("probability" or "prediction").
    prediction_name: str = "prediction"

    @property
    def short_name(self) -> str:
        return self.title or self.name

    @property
    def classifier(self) -> bool:
        """True when its targets are classes: a row's class is its largest output, one output's is above 1/2."""
        return self.targets.classes

    @property
    def least_squares(self) -> bool:
        """True when it is the plain squared error (yhat - y)^2."""
        return sp.expand(self.expr - (yhat - y) ** 2) == 0

    @property
    def requirement(self) -> str:
        """How messages name what needs the targets: the loss, with the output it requires."""
        return f"{self.short_name} after {self.requires_output}" if self.requires_output else self.short_name

    def target_problem(self, Y, array: str = "Y") -> str | None:
        """One line naming the first row of the targets ``Y`` that this loss cannot take, or None."""
        return self.targets.problem(Y, array, self.requirement)


def targets_for(loss: Loss, output: Activation) -> TargetKind:
    """The targets that suit a network: what its loss requires, else what its output layer's values can match."""
    return loss.targets if loss.targets is not REAL else output.natural_targets


def _row_sum(expr: sp.Expr) -> sp.Sum:
    return sp.Sum(expr, (m, 0, K - 1))


# exp(-|z|): in (0, 1] for every z, so it never overflows; the stable forms below share it.
_NEGATIVE_ABS_EXP = sp.exp(-sp.Abs(z))
# [z >= 0], 1 or 0: printed as a comparison, not a where().
_AT_LEAST_ZERO = sp.Piecewise((1, z >= 0), (0, True))


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        # With e = exp(-|z|): 1 / (1 + e) from zero up, e / (1 + e) below, both to a few ulps (the tanh form
        # loses the lower tail) and no exp of a positive number, so no overflow. The numerator, exp(min(z, 0)),
        # is max(e, [z >= 0]) (e is at most 1, and positive): one exponential per element, not two.
        Activation("sigmoid", 1 / (1 + sp.exp(-z)), display=r"\sigma",
                   stable_expr=sp.Max(_NEGATIVE_ABS_EXP, _AT_LEAST_ZERO) / (1 + _NEGATIVE_ABS_EXP),
                   library_expr=Logistic(z),
                   natural_targets=IN_UNIT_INTERVAL, notation_slot="sigmoid_symbol"),
        Activation("tanh", sp.tanh(z), display=r"\tanh"),
        Activation("relu", sp.Piecewise((z, z > 0), (0, True)), display=r"\operatorname{ReLU}"),
        Activation("exponential", sp.exp(z), display=r"\exp",
                   overflow_advice="overflows once its pre-activation passes about 709 (88 in float32): "
                                   "scale the targets down or start from smaller weights"),
        Activation("linear", z, display=r"\operatorname{id}"),
        Activation(
            "softplus", sp.log(1 + sp.exp(z)), display=r"\operatorname{softplus}", stable_expr=logaddexp(0, z)
        ),
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
            stable_expr=sp.exp(z_vec[k] - RowMax(z_vec)) / _row_sum(sp.exp(z_vec[m] - RowMax(z_vec))),
            natural_targets=ONE_HOT,
            output_name="probability",
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
            # log softmax through log-sum-exp.
            stable_expr=-y * (z_vec[k] - RowMax(z_vec) - sp.log(_row_sum(sp.exp(z_vec[m] - RowMax(z_vec))))),
            targets=ONE_HOT,
            prediction_name="probability",
        ),
        Loss(
            "binary_cross_entropy",
            -(y * sp.log(yhat) + (1 - y) * sp.log(1 - yhat)),
            requires_output="sigmoid",
            # The logits form: y log(1 + exp(-z)) + (1 - y) log(1 + exp(z)), with log(1 + exp(+-z)) =
            # max(+-z, 0) + log1p(exp(-|z|)). Every term is at least zero, so a confident right prediction's
            # small loss keeps its digits (log(1 + exp(z)) - y z would cancel), and the one exponential is the
            # sigmoid's own exp(-|z|), computed once for both.
            stable_expr=y * sp.Max(-z, 0) + (1 - y) * sp.Max(z, 0) + log1p(_NEGATIVE_ABS_EXP),
            targets=IN_UNIT_INTERVAL,
            prediction_name="probability",
        ),
    )
}


# --------------------------------------------------------------------------- custom entries

ACTIVATION_VARIABLES = {"x": z, "z": z}
LOSS_VARIABLES = {"yhat": yhat, "y": y}
# Where a custom function must be finite, with its derivative: both sides of zero for an activation;
# predictions inside (0, 1) and targets in [0, 1] for a loss, so that log(yhat) losses qualify.
_ACTIVATION_POINTS = tuple({z: value} for value in (-3.1, -1.7, -0.6, -0.05, 0.05, 0.45, 1.3, 2.9))
_LOSS_POINTS = tuple(
    {yhat: prediction, y: target} for prediction in (0.12, 0.37, 0.64, 0.91) for target in (0.0, 0.3, 1.0)
)


def custom_name(label: str, expression: str) -> str:
    """The registry name of a custom entry; ``activation_named``/``loss_named`` rebuild the entry from it."""
    return f"{CUSTOM_PREFIX}{label}:{normalise(expression)}"


def _custom_parts(name: str) -> tuple[str, str]:
    label, _, expression = name[len(CUSTOM_PREFIX):].partition(":")
    return label, expression


def activation_named(name: str) -> Activation:
    """The registry entry for a built-in name or a custom entry's name."""
    if name.startswith(CUSTOM_PREFIX):
        label, expression = _custom_parts(name)
        return custom_activation(expression, label)
    return ACTIVATIONS[name]


def loss_named(name: str) -> Loss:
    if name.startswith(CUSTOM_PREFIX):
        label, expression = _custom_parts(name)
        return custom_loss(expression, label)
    return LOSSES[name]


def _operator_name(label: str) -> str:
    return r"\operatorname{" + label.replace("_", r"\_") + "}"


@cache
def custom_activation(expression: str, label: str = "custom", field: str = "activation.expr") -> Activation:
    """An elementwise activation from a formula in x (or z); SpecError naming ``field`` if it is unusable."""
    expr, spellings = parse_expression(expression, ACTIVATION_VARIABLES, field)
    if not expr.has(z):
        raise SpecError(field, "does not depend on x, so its gradient is zero; write a formula in x")
    _screen(expr, z, _ACTIVATION_POINTS, spellings, field, "an activation must be finite for every input")
    return Activation(
        custom_name(label, expression), expr, display=_operator_name(label), title=label, source=normalise(expression)
    )


@cache
def custom_loss(expression: str, label: str = "custom", field: str = "loss.expr") -> Loss:
    """A per-output loss from a formula in yhat (the prediction) and y (the target)."""
    expr, _ = parse_expression(expression, LOSS_VARIABLES, field)
    if not expr.has(yhat):
        raise SpecError(field, "does not depend on yhat, so training cannot lower it; write a formula in yhat and y")
    _screen(expr, yhat, _LOSS_POINTS, {yhat: "yhat", y: "y"}, field,
            "a loss must be finite for predictions in (0, 1) and targets in [0, 1]")
    return Loss(custom_name(label, expression), expr, title=label, source=normalise(expression))


def _screen(expr: sp.Expr, variable: sp.Symbol, points, spellings: dict[sp.Symbol, str], field: str,
            requirement: str) -> None:
    """Refuses a function that SymPy cannot differentiate, or that is not finite at the sample points."""
    derivative = sp.diff(expr, variable)
    if derivative.has(sp.Derivative, sp.Subs):
        raise SpecError(field, "SymPy cannot differentiate it; use the listed functions")
    as_written = {symbol: sp.Symbol(name) for symbol, name in spellings.items()}
    for what, part in (("it", expr), ("its derivative", derivative)):
        for point in points:
            try:
                evaluate_everywhere(part, point)
            except NotFinite as error:
                at = ", ".join(f"{spellings.get(symbol, symbol)} = {value:g}" for symbol, value in point.items()
                               if symbol in spellings)
                shown = str(error.part.subs(as_written))
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise SpecError(field, f"{what} is not finite at {at} (in {shown}); {requirement}") from None
            except TypeError:
                raise SpecError(field, f"{what} uses a function the generated code cannot compute") from None
