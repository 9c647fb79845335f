"""The derivation as data: steps with their reasons, chains of steps, sections of chains, the whole derivation.

Every section module builds on this one and on the symbolic network; none of them imports another section.
``symbp.render.latex.document`` prints a ``Derivation``, ``symbp.checks.verify`` evaluates every step of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from symbp.spec.schema import Spec
from symbp.symbolic import quantities as q

# Reason kinds, in the words the documents use for them (see symbp.render.latex.document).
REASONS = (
    "definition", "chain_rule", "total_derivative", "sum_rule", "constant_factor", "product_rule",
    "power_rule", "derivative_of", "constant", "only_term", "simplify", "in_terms_of_output", "substitute",
    "fact", "delta", "factor", "cse", "delta_rule", "update", "sum_over_samples", "matrix_calculus",
    "elementwise", "split", "kink", "bracket_picks", "zero_outside", "first_max",
    "passed_back",
)


@dataclass(frozen=True)
class Reason:
    kind: str
    facts: tuple[sp.Basic, ...] = ()  # equations the step relies on, e.g. Eq(d y / d a, 0)
    about: sp.Basic | None = None  # the function whose derivative is taken, for "derivative_of"

    def __post_init__(self):
        if self.kind not in REASONS:
            raise ValueError(f"unknown reason {self.kind!r}")


@dataclass(frozen=True)
class Step:
    expr: sp.Basic
    reasons: tuple[Reason, ...] = ()


def fact(lhs, rhs) -> sp.Eq:
    return sp.Eq(lhs, rhs, evaluate=False)


def penalty_reasons(penalty, entry: sp.Expr) -> tuple[Reason, ...]:
    """Where a penalised weight's extra gradient term comes from: the derivative of its penalty
    (``symbp.symbolic.penalties.WeightPenalty``) at one entry, and for L1 the kink of |w| at 0."""
    if penalty is None:
        return ()
    reasons = (Reason("fact", (fact(q.Partial(penalty.term(entry), entry), penalty.derivative(entry)),)),)
    return reasons + ((Reason("kink"),) if penalty.l1 != 0 else ())


@dataclass(frozen=True)
class Conventions:
    """The few choices of a notation that change the mathematics on the page."""

    error_sign: int = 1  # delta = error_sign * dL/dz
    column_vectors: bool = False  # the matrix form as W a + b per sample, rather than A W + 1 b per batch
    numbered_layers: bool = True  # general equations for a layer l of any depth; else for the layers by name


@dataclass(frozen=True)
class Chain:
    """One displayed derivation: lhs = steps[0] = steps[1] = ...

    ``scope`` tells the checker what the expressions are functions of: one data sample ("sample"),
    the free variable of an activation ("function"), a batch ("batch"), one sample as column
    vectors ("column") or one optimizer step ("update").
    """

    key: str
    lhs: sp.Basic
    steps: tuple[Step, ...]
    scope: str = "sample"
    relation: str = "="  # "=", ":=" (a definition), or "update"
    boxed: bool = False

    @property
    def result(self) -> sp.Basic:
        return self.steps[-1].expr


@dataclass(frozen=True)
class Section:
    kind: str  # "network", "activations", "output", "hidden", "matrix", "explicit", "update"
    chains: tuple[Chain, ...]
    layer: int | None = None
    facts: dict = field(default_factory=dict)  # plain data for the prose (sizes, names)

    def chain(self, key: str) -> Chain | None:
        return next((c for c in self.chains if c.key == key), None)


@dataclass(frozen=True)
class Derivation:
    spec: Spec
    conventions: Conventions
    sections: tuple[Section, ...]

    def chains(self):
        for section in self.sections:
            yield from section.chains

    def section(self, kind: str, layer: int | None = None) -> Section | None:
        return next((s for s in self.sections if s.kind == kind and (layer is None or s.layer == layer)), None)


def step(expr, *reasons: Reason) -> Step:
    return Step(expr, tuple(reasons))


def product(*factors) -> sp.Expr:
    """A product kept in the order given, as a chain rule is read; a leading -1 stays a sign."""
    # Each factor stays whole, a(1 - a) as one derivative, so the printer orders inside it.
    kept = [sp.sympify(factor) for factor in factors if factor != 1]
    if not kept:
        return sp.Integer(1)
    if len(kept) == 1:
        return kept[0]
    return sp.Mul(*kept, evaluate=False)


def chain(key, lhs, *steps: Step, **options) -> Chain:
    return Chain(key, lhs, tuple(steps), **options)
