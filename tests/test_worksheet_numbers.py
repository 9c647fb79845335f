"""Worksheet numbers: decimally rounded keys, fractions only where exact, and no degenerate variant."""

import decimal
from fractions import Fraction

import numpy as np
import pytest
import sympy as sp
from bundled import derivable_spec_paths

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.render.latex.worksheet_document import worksheet_context
from symbp.spec.schema import load_spec
from symbp.worksheet.decimals import decimal_latex, rounded
from symbp.worksheet.exercises import _rng, build_worksheet, hand_spec
from symbp.worksheet.numbers import draw_hand_numbers, line_problem, line_problems

BUNDLED = [load_spec(path) for path in derivable_spec_paths()]
VARIANTS = 10_000


def _by_decimal_module(value: sp.Expr) -> decimal.Decimal:
    """Four significant digits, halves to even, by ``Decimal.quantize`` on 60 digits of the value."""
    exact = decimal.Decimal(str(sp.N(value, 60)))
    return exact.quantize(decimal.Decimal(1).scaleb(exact.adjusted() - 3), rounding=decimal.ROUND_HALF_EVEN)


@pytest.mark.parametrize(("value", "printed"), [
    (sp.Rational(585149, 10**6), "0.5851"), (sp.Rational(12345, 10**5), "0.1234"),
    (sp.Rational(12355, 10**5), "0.1236"),
    (sp.Rational(-99999, 10**5), "-1.000"), (sp.exp(12), r"1.628 \times 10^{5}"), (sp.Rational(1, 30000),
                                                                                 r"3.333 \times 10^{-5}"),
])
def test_decimals_are_rounded_in_decimal(value, printed):
    assert decimal_latex(value) == printed


@pytest.mark.parametrize("spec", BUNDLED, ids=lambda spec: spec.name)
def test_every_decimal_in_the_key_is_rounded_by_the_stated_rule(spec):
    for variant in (0, 3):
        context = worksheet_context(spec, variant=variant, solutions=True)
        entries = context["forward"] + context["deltas"] + context["gradients"] + context["updated"]
        values = [entry.value for entry in entries if entry.decimal]
        values += [row[key] for row in context["history"] for key in ("w_value", "b_value") if not row[key].is_Integer]
        assert values
        for value in values:
            assert rounded(value) == _by_decimal_module(value), value


@pytest.mark.parametrize("spec", BUNDLED, ids=lambda spec: spec.name)
def test_fractions_only_where_the_value_is_rational(spec):
    context = worksheet_context(spec, variant=1, solutions=True)
    for entry in context["given"] + context["forward"] + context["deltas"] + context["gradients"] + context["updated"]:
        assert bool(entry.exact) == bool(entry.value.is_Rational), entry
        if entry.value.is_Rational:
            assert entry.approximate == (entry.value != sp.Rational(str(rounded(entry.value)))) or not entry.decimal


def test_a_leaky_relu_slope_given_as_a_decimal_is_exact_and_a_sigmoid_after_it_is_not():
    spec = {"name": "leaky", "inputs": 2, "layers": [{"units": 2, "activation": "leaky_relu"},
                                                      {"units": 1, "activation": "sigmoid"}],
            "loss": {"name": "binary_cross_entropy"}}
    context = worksheet_context(spec, variant=1, solutions=True)
    hidden = [entry for entry in context["forward"] if entry.value.is_Rational]
    assert hidden and all(not entry.value.has(sp.Float) for entry in hidden)
    deltas = [entry for entry in context["deltas"] if not entry.value.is_Rational]
    assert deltas and all(entry.exact == "" and entry.approximate for entry in deltas)


def _module(spec):
    small, _ = hand_spec(spec)
    return small, load_module_from_source(generate_module(small), small.name)


@pytest.mark.parametrize("spec", BUNDLED, ids=lambda spec: spec.name)
def test_no_variant_has_a_zero_gradient_and_no_two_are_alike(spec):
    small, module = _module(spec)
    sheets = set()
    for variant in range(VARIANTS):
        numbers = draw_hand_numbers(small, _rng(spec, variant))
        params = {name: np.array(rows, dtype=float).reshape(module.SHAPES[name])
                  for name, rows in numbers.params.items()}
        X = np.array([[float(v) for v in numbers.x]])
        Y = np.array([[float(v) for v in numbers.y]])
        loss, grads = module.loss_and_grad(params, X, Y)
        for name, gradient in grads.items():
            assert np.all(np.abs(gradient) > 1e-7), (variant, name, gradient)
        line = line_problem(variant)
        sheets.add((numbers.x, numbers.y, tuple(numbers.params.values()), line))
    assert len(sheets) == VARIANTS


def test_the_line_problems_are_all_different_and_never_stand_still():
    problems = line_problems()
    assert len(problems) >= VARIANTS and len(set(problems)) == len(problems)
    assert line_problem(0) not in problems
    for problem in problems:
        ys = [problem.slope * x + problem.intercept for x in problem.xs]
        w, b = Fraction(problem.start[0]), Fraction(problem.start[1])
        for _ in range(3):
            # The mean squared error's gradient: 2/N sum (w x + b - y) (x, 1); never zero on a sheet.
            residuals = [w * x + b - y for x, y in zip(problem.xs, ys)]
            step = (sum(r * x for r, x in zip(residuals, problem.xs)), sum(residuals))
            assert step != (0, 0), problem
            w, b = w - Fraction(2, 10 * len(ys)) * step[0], b - Fraction(2, 10 * len(ys)) * step[1]


@pytest.mark.parametrize("variant", [1, 19, 23])
def test_the_xor_variants_that_once_stood_on_the_line_move(variant):
    sheet = build_worksheet("xor", variant)
    history = sheet.descent.history
    assert all(before != after for before, after in zip(history, history[1:]))
    assert all(gradient != 0 for gradient in sheet.hand.gradients.values())


@pytest.mark.parametrize("name", ["xor", "iris", "house_prices"])
def test_the_lazy_expansion_agrees_with_the_full_one(name):
    from symbp.symbolic.expanded import expand_network, gradient_at

    hand = build_worksheet(name, variant=4).hand
    network = expand_network(hand.spec)
    at = {symbol: hand.params[array][index if len(index) == 2 else (0, index[0])]
          for array, index, symbol in network.parameter_symbols}
    at.update(zip(network.inputs, hand.x))
    at.update(zip(network.targets, hand.y))
    lazy = gradient_at(hand.spec, hand.x, hand.y, hand.params)
    for array, index, symbol in network.parameter_symbols:
        full = float(sp.N(network.gradient[symbol].subs(at), 30))
        assert float(lazy[(array, index)]) == pytest.approx(full, rel=1e-14, abs=1e-15)
