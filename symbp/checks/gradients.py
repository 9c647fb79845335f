"""Numerical proof that a generated module's gradient is right.

Two independent oracles: central finite differences of the module's own loss in float64, and, for
small networks, SymPy's derivative of the fully expanded loss, taken at the check's point
(``symbp.checks.oracle``). When the size rule keeps that oracle from some samples or all of them, the
report says so.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import numpy as np

from symbp.checks.oracle import plan_expanded
from symbp.errors import SymbpError
from symbp.registry.rules import loss_named
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import Spec, SpecSource, load_spec

TOLERANCE = 1e-7
MAX_ENTRIES_PER_ARRAY = 64


@dataclass
class ParameterCheck:
    name: str
    entries_checked: int
    finite_difference_error: float
    expanded_error: float | None = None
    mode: str = ""  # "training" or "evaluation" for a network with batch normalisation, which is checked in both


@dataclass
class CheckReport:
    """What ``check_gradients`` found: the worst relative error per parameter array, ``passed``, ``table()``."""

    spec: Spec
    samples: int
    tolerance: float
    parameters: list[ParameterCheck] = field(default_factory=list)
    loss_agreement: float | None = None
    expanded_samples: int = 0  # samples SymPy's expanded loss was checked on
    expanded_note: str | None = None  # why the expanded oracle took fewer samples, or none
    masks_note: str | None = None  # the dropout masks held fixed while checking, or none
    modes_note: str | None = None  # how batch normalisation's two modes were checked, or none

    @property
    def worst(self) -> float:
        errors = [p.finite_difference_error for p in self.parameters]
        errors += [p.expanded_error for p in self.parameters if p.expanded_error is not None]
        if self.loss_agreement is not None:
            errors.append(self.loss_agreement)
        return max(errors, default=0.0)

    @property
    def passed(self) -> bool:
        return self.worst < self.tolerance

    def table(self) -> str:
        width = max([10, *(len(p.name) + len(p.mode) + 3 for p in self.parameters if p.mode)])
        header = f"{'parameter':<{width}} {'entries':>8} {'vs finite diff':>15} {'vs expanded':>13}"
        rows = [header, "-" * len(header)]
        for p in self.parameters:
            expanded = "-" if p.expanded_error is None else f"{p.expanded_error:.2e}"
            name = f"{p.name} ({p.mode})" if p.mode else p.name
            rows.append(f"{name:<{width}} {p.entries_checked:>8} {p.finite_difference_error:>15.2e} {expanded:>13}")
        rows += [note for note in (self.expanded_note, self.masks_note, self.modes_note) if note]
        return "\n".join(rows)


def load_module_from_source(source: str, name: str) -> ModuleType:
    """Imports generated source as a module of its own, as a user's import would."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        module_spec = importlib.util.spec_from_file_location(f"symbp_checked_{name}", path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
    sys.modules.pop(module_spec.name, None)
    return module


def random_problem(spec: Spec, samples: int, seed: int):
    """Random inputs, targets that suit the loss, and parameters away from special values."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, spec.inputs))
    Y = loss_named(spec.loss.name).targets.random(rng, samples, spec.outputs)
    return X, Y, rng


def _relative_error(got: np.ndarray, want: np.ndarray, resolution: np.ndarray | None = None,
                    tolerance: float = TOLERANCE) -> float:
    """Largest entry of |got - want|, relative to the largest entry of the gradient array.

    With ``resolution`` (how far each finite difference may be from the true derivative), an entry is
    measured against resolution / tolerance where that is larger: a discrepancy that finite differences
    cannot resolve (a gradient far below the loss's rounding) does not count as an error.
    """
    if not got.size:
        return 0.0
    scale = max(float(np.max(np.abs(got))), float(np.max(np.abs(want))), 1e-300)
    if resolution is None:
        return float(np.max(np.abs(got - want))) / scale
    return float(np.max(np.abs(got - want) / np.maximum(scale, resolution / tolerance)))


# Ridders' extrapolation: each step is the last divided by _SHRINK, for at most _STEPS steps.
_SHRINK = 1.4
_STEPS = 10
_MARGIN = 10


def _finite_difference(loss, params, name, index, step) -> tuple[float, float]:
    """The derivative by Ridders' extrapolation of central differences, and an estimate of its error.

    Central differences at shrinking steps are extrapolated to step zero (Richardson), and the most
    consistent estimate is kept: no single step has to fit the function's scale, so fast oscillations
    (a trigonometric activation) and flat stretches are both measured to near rounding.
    """
    original = params[name][index]
    # Rounding in the loss hides any change below a few eps * |loss|: the finest slope a difference
    # over the starting step can see.
    floor = 8 * np.finfo(np.float64).eps * abs(loss(params)) / step

    def central(h):
        params[name][index] = original + h
        ahead = loss(params)
        params[name][index] = original - h
        behind = loss(params)
        # Differences first: a loss that does not move (a dead unit) then gives exactly zero, not rounding noise.
        return (ahead - behind) / (2 * h)

    try:
        table = [[central(step)]]
        best, error = table[0][0], np.inf
        for i in range(1, _STEPS):
            step /= _SHRINK
            row = [central(step)]
            factor = _SHRINK**2
            for j in range(1, i + 1):
                row.append((row[j - 1] * factor - table[i - 1][j - 1]) / (factor - 1))
                factor *= _SHRINK**2
                spread = max(abs(row[j] - row[j - 1]), abs(row[j] - table[i - 1][j - 1]))
                if spread <= error:
                    best, error = row[j], spread
            table.append(row)
            # Rounding has taken over once the newest extrapolation strays from the previous one.
            if abs(row[i] - table[i - 1][i - 1]) >= 2 * error:
                break
    finally:
        params[name][index] = original
    # The spread of the last extrapolations estimates the error but does not bound it: a margin of ten.
    return best, max(_MARGIN * error, floor)


def _derivative(loss, params, name, index) -> tuple[float, float]:
    """The finite-difference estimate, from two starting steps, whose own error estimate is smaller.

    A function that bends within the larger steps (a steep polynomial, a kink of relu) is caught by a smaller one.
    """
    size = 1 + abs(params[name][index])
    with np.errstate(all="ignore"):
        best = min((_finite_difference(loss, params, name, index, fraction * size) for fraction in (0.1, 1e-2, 1e-3)),
                   key=lambda estimate: estimate[1])
    if not np.isfinite(best[1]):
        raise SymbpError(f"check: the loss is not finite near the random test point "
                         f"when {name}{list(index)} moves; the network overflows float64 there, so its gradient "
                         "cannot be checked; use smaller exponents or fewer layers")
    return best


def check_gradients(spec_source: SpecSource, *, samples: int = 6, seed: int = 0, module: ModuleType | None = None,
                    expanded: bool | None = None, tolerance: float = TOLERANCE) -> CheckReport:
    """Checks the spec's generated gradient (or ``module``'s) on random data: ``report.passed``, ``report.table()``.

    Every parameter array against central finite differences in float64 and, on networks small enough
    (or with ``expanded=True``), against SymPy's derivative of the expanded loss.
    """
    spec = load_spec(spec_source)
    statistics = getattr(module, "STATISTICS", None) if module is not None else \
        any(layer.normalization == "batch" for layer in spec.layers)
    if statistics and samples < 2:
        raise SymbpError(f"samples: {samples}, but a batch-normalised layer normalises over the batch's samples, "
                         "and one sample has no variance; check on 2 samples or more (--samples 2)")
    if module is None:
        module = load_module_from_source(generate_module(spec), spec.name)
    X, Y, rng = random_problem(spec, samples, seed)
    params = module.init_params(seed)
    for name in module.PARAMS:
        params[name] = params[name] + rng.normal(scale=0.5, size=params[name].shape)
    # A network with dropout is checked in training mode: one drawn set of masks, held fixed throughout, so
    # that the loss is a function of the parameters alone (and its evaluation mode is the plain network's).
    masks = module.draw_masks(rng, samples) if getattr(module, "DROPOUT", None) else None
    report = CheckReport(spec, samples, tolerance)
    if not getattr(module, "STATISTICS", None):
        _check_mode(report, module, params, X, Y, rng, masks, expanded, seed)
        return report
    # Batch normalisation: training mode (the batch's statistics, the gradient through them) and evaluation mode
    # (running statistics drawn away from their starting values, constants of the loss) are different functions.
    for name in module.STATISTICS:
        size = params[name].shape
        params[name] = rng.uniform(0.5, 2.0, size) if name.startswith("running_var") else rng.normal(0, 0.5, size)
    for training in (True, False):
        _check_mode(report, module, params, X, Y, rng, masks, expanded, seed, training)
    report.modes_note = (f"batch normalisation: training mode normalises by the {samples} samples' statistics; "
                         "evaluation mode by drawn running statistics")
    return report


def _check_mode(report: CheckReport, module: ModuleType, params: dict, X: np.ndarray, Y: np.ndarray, rng,
                masks: dict | None, expanded: bool | None, seed: int, training: bool | None = None) -> None:
    """Adds to ``report`` the check of every parameter array at ``params``, in batch normalisation's ``training``
    mode (True or False) or, for a network without it, None."""
    spec, samples, tolerance = report.spec, report.samples, report.tolerance
    with_masks = {} if masks is None else {"masks": masks}
    if training is not None:
        with_masks["training"] = training
    with np.errstate(all="ignore"):
        value, grads = module.loss_and_grad(params, X, Y, **with_masks)
    if not (np.isfinite(value) and all(np.isfinite(grads[name]).all() for name in module.PARAMS)):
        what = f"the loss is {value}" if not np.isfinite(value) else "the gradient is not finite"
        raise SymbpError(f"check: {what} at the random test point (seed {seed}): the network overflows float64 "
                         "there, so its gradient cannot be checked; use smaller exponents or fewer layers")
    agreement = abs(value - module.loss(params, X, Y, **with_masks)) / max(abs(value), 1e-300)
    report.loss_agreement = max(report.loss_agreement or 0.0, agreement)
    if masks is not None:
        dropped = sum(int(np.count_nonzero(mask == 0)) for mask in masks.values())
        entries = sum(mask.size for mask in masks.values())
        report.masks_note = (f"dropout: one drawn mask per layer ({', '.join(masks)}) held fixed, "
                             f"{dropped} of {entries} inputs dropped")

    def loss(p):
        return module.loss(p, X, Y, **with_masks)

    statistics = None if training is not False else {name: params[name] for name in module.STATISTICS}
    plan = plan_expanded(spec, params, X, Y, expanded, masks, statistics)
    report.expanded_samples, report.expanded_note = plan.samples, plan.note
    oracle = None
    if plan.samples:
        # The oracle's samples are the first ones; the module's gradient is taken on the same.
        oracle = plan.gradient()
        with np.errstate(all="ignore"):
            oracle_grads = grads if plan.samples == samples else module.loss_and_grad(
                params, X[:plan.samples], Y[:plan.samples],
                **({} if masks is None else {"masks": {name: m[:plan.samples] for name, m in masks.items()}}),
                **({} if training is None else {"training": training}))[1]
    for name in module.PARAMS:
        grad = grads[name]
        count = grad.size
        flat = rng.permutation(count)[:MAX_ENTRIES_PER_ARRAY] if count > MAX_ENTRIES_PER_ARRAY else range(count)
        indices = [np.unravel_index(i, grad.shape) for i in flat]
        estimates = [_derivative(loss, params, name, index) for index in indices]
        numeric = np.array([value for value, _ in estimates])
        resolution = np.array([error for _, error in estimates])
        analytic = np.array([grad[index] for index in indices])
        check = ParameterCheck(name, len(indices), _relative_error(analytic, numeric, resolution, tolerance),
                               mode={True: "training", False: "evaluation"}.get(training, ""))
        if oracle is not None:
            check.expanded_error = _relative_error(oracle_grads[name], oracle[name])
        report.parameters.append(check)
