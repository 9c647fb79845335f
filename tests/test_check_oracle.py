"""SymPy's expanded-loss oracle at the check's point: right, able to fail, bounded, and never silent."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import CATALOGUE

from symbp.checks import oracle
from symbp.checks.gradients import TOLERANCE, _derivative, check_gradients, load_module_from_source, random_problem
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic.expanded import EXPANDED_PARAMETER_LIMIT, expand_network

# A hang guard far above the few seconds these take, for a machine shared with other work.
HANG_GUARD_S = 60

TRIG = {"expr": "sin(x)*cos(3*x)", "name": "trig"}
# The 3-layer, 48-parameter network of a trigonometric activation that took the old oracle minutes.
TRIG_48 = {"name": "trig", "inputs": 1, "layers": [{"units": 4, "activation": TRIG}] * 3}

AGREEMENT_SPECS = {
    "sigmoid": CATALOGUE["out-squared_error-sigmoid-bias"],
    "softmax-cross-entropy": CATALOGUE["out-cross_entropy-softmax-bias"],
    "leaky-relu": CATALOGUE["leaky-alpha"],
    "custom-trig": {"name": "net", "inputs": 2,
                    "layers": [{"units": 3, "activation": TRIG}, {"units": 2, "activation": "linear"}]},
    "no-bias": CATALOGUE["hidden-tanh-nobias"],
    "sum-loss": CATALOGUE["sum-half-squared"],
}


def _point(spec, samples=6, seed=0):
    """The check's own point: its random data and the module's parameters moved off their initial values."""
    module = load_module_from_source(generate_module(spec), "net")
    X, Y, rng = random_problem(spec, samples, seed)
    params = module.init_params(seed)
    for name in module.PARAMS:
        params[name] = params[name] + rng.normal(scale=0.5, size=params[name].shape)
    return module, params, X, Y


def _with_one_entry_off(module, name, index, relative):
    """The module, its gradient's entry ``name[index]`` moved by ``relative`` of that array's largest entry."""
    right = module.loss_and_grad

    def loss_and_grad(params, X, Y):
        value, grads = right(params, X, Y)
        grads = {key: array.copy() for key, array in grads.items()}
        grads[name][index] += relative * np.max(np.abs(grads[name]))
        return value, grads

    module.loss_and_grad = loss_and_grad
    return module


@pytest.mark.parametrize("raw", AGREEMENT_SPECS.values(), ids=AGREEMENT_SPECS.keys())
def test_the_oracle_agrees_with_finite_differences(raw):
    spec = load_spec(raw)
    module, params, X, Y = _point(spec)
    expanded = oracle.expanded_gradient(spec, params, X, Y)

    def loss(p):
        return module.loss(p, X, Y)

    for name in module.PARAMS:
        numeric = np.array([_derivative(loss, params, name, index)[0] for index in np.ndindex(params[name].shape)])
        numeric = numeric.reshape(params[name].shape)
        scale = np.max(np.abs(numeric))
        assert np.max(np.abs(expanded[name] - numeric)) <= 1e-8 * scale, (name, expanded[name], numeric)


@pytest.mark.parametrize("raw", [
    {"name": "net", "inputs": 2, "layers": [{"units": 2, "activation": "relu"}, {"units": 1, "activation": "linear"}]},
    {"name": "net", "inputs": 2, "layers": [{"units": 2, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
     "loss": {"expr": "where(abs(yhat - y) < 0.5, (yhat - y)**2 / 2, 0.5 * (abs(yhat - y) - 0.25))"}},
    {"name": "net", "inputs": 2, "layers": [{"units": 3, "activation": "softmax", "bias": False}],
     "loss": "cross_entropy"},
], ids=["relu", "huber-loss", "softmax"])
def test_the_oracle_is_the_whole_expanded_loss_differentiated_at_the_point(raw):
    spec = load_spec(raw)
    _, params, X, Y = _point(spec)
    whole = expand_network(spec).evaluate(params, X, Y)[1]
    at_point = oracle.expanded_gradient(spec, params, X, Y)
    for name, array in whole.items():
        np.testing.assert_allclose(at_point[name], array, rtol=1e-12, atol=1e-14 * np.max(np.abs(array)))


@pytest.mark.parametrize(("raw", "name", "index"), [
    (CATALOGUE["deep-relu"], "W1", (1, 2)),
    (CATALOGUE["deep-relu"], "b4", (0,)),
    (CATALOGUE["out-cross_entropy-softmax-bias"], "W2", (3, 1)),
    (TRIG_48, "W1", (0, 1)),
], ids=["deep-relu-first-layer", "deep-relu-output-bias", "softmax-hidden", "trig-48"])
def test_a_wrong_gradient_entry_fails_on_the_expanded_column(raw, name, index):
    spec = load_spec(raw)
    module = _with_one_entry_off(load_module_from_source(generate_module(spec), "net"), name, index, 1e-5)
    report = check_gradients(spec, module=module)
    assert not report.passed
    assert report.expanded_samples >= 1
    expanded = {p.name: p.expanded_error for p in report.parameters}
    assert expanded[name] > 10 * TOLERANCE, report.table()
    assert all(error < 1e-12 for other, error in expanded.items() if other != name), report.table()


def test_the_size_rule_takes_fewer_samples_and_says_so(monkeypatch):
    spec = load_spec(CATALOGUE["deep-relu"])
    _, params, X, Y = _point(spec)
    plan = oracle.plan_expanded(spec, params, X, Y)
    assert plan.samples == 6 and plan.note is None
    # ReLU units take different pieces on different samples: more samples, more differentiations.
    fewer = max(samples for samples in range(1, 6) if plan.cost(samples) < plan.cost(6))
    monkeypatch.setattr(oracle, "EXPANDED_COST_LIMIT", plan.cost(fewer))
    report = check_gradients(spec)
    assert report.passed and report.expanded_samples == fewer
    assert all(p.expanded_error is not None and p.expanded_error < 1e-12 for p in report.parameters)
    assert f"expanded oracle on {fewer} of 6 samples: all of them need {plan.differentiations[-1]} differentiations" \
        in report.table()
    # On those samples it still sees a wrong entry.
    module = _with_one_entry_off(load_module_from_source(generate_module(spec), "net"), "W2", (2, 1), 1e-5)
    report = check_gradients(spec, module=module)
    assert report.expanded_samples == fewer
    assert {p.name: p.expanded_error for p in report.parameters}["W2"] > 10 * TOLERANCE


def test_the_size_rule_skips_the_oracle_and_says_why(monkeypatch):
    spec = load_spec(CATALOGUE["deep-relu"])
    monkeypatch.setattr(oracle, "EXPANDED_COST_LIMIT", 10)
    report = check_gradients(spec)
    assert report.passed and report.expanded_samples == 0
    assert all(p.expanded_error is None for p in report.parameters)
    assert "expanded oracle skipped: one sample needs" in report.table()
    assert "over the limit of 10" in report.table()


def test_a_network_over_the_parameter_limit_is_said_to_skip_the_oracle():
    spec = load_spec(CATALOGUE["wide-no-expansion"])
    assert spec.parameter_count > EXPANDED_PARAMETER_LIMIT
    report = check_gradients(spec)
    assert all(p.expanded_error is None for p in report.parameters)
    assert f"expanded oracle skipped: {spec.parameter_count} parameters, over the {EXPANDED_PARAMETER_LIMIT}" \
        in report.table()


@pytest.mark.parametrize("raw", [CATALOGUE["deep-relu"], TRIG_48], ids=["deep-relu", "trig-48"])
def test_symbp_check_runs_the_oracle_on_the_slow_networks_of_old(tmp_path, raw):
    (tmp_path / "spec.json").write_text(json.dumps(raw))
    result = subprocess.run([sys.executable, "-m", "symbp", "check", "spec.json"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PASS" in result.stdout
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(("W", "b"))]
    assert rows and all(row[-1] != "-" for row in rows), result.stdout


def test_a_loss_that_grows_exponentially_with_depth_is_skipped_before_it_is_built(tmp_path):
    # x*sin(x) + cos(x) uses x three times: through twelve layers a first-layer weight's loss has 3**12 copies.
    wavy = {"expr": "x*sin(x) + cos(x)", "name": "wavy"}
    (tmp_path / "spec.json").write_text(json.dumps({"name": "wavy", "inputs": 1,
                                                    "layers": [{"units": 1, "activation": wavy}] * 12}))
    result = subprocess.run([sys.executable, "-m", "symbp", "check", "spec.json"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=HANG_GUARD_S)
    assert "Traceback" not in result.stderr
    skipped = [line for line in result.stdout.splitlines() if line.startswith("expanded oracle skipped")]
    assert len(skipped) == 1 and "over the limit of" in skipped[0], result.stdout
