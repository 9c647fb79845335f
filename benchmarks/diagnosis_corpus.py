"""Runs with known conditions, and how well symbp's diagnostics name them: precision and recall per condition.

    python benchmarks/diagnosis_corpus.py

Each run trains a small generated network into a state whose condition is known by construction
(healthy runs of several kinds, a learning rate too high, saturated sigmoid layers, dead ReLUs,
vanishing gradients in a deep sigmoid net, exploding ones under huge output weights), then asks
``diagnose`` and ``symbp.checks.diagnostics.hints`` what is wrong. A run's condition is what the hints must
name; `also` lists conditions the construction brings with it, which are not counted as false alarms.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

from symbp.checks.diagnostics import hints  # noqa: E402
from symbp.checks.gradients import load_module_from_source  # noqa: E402
from symbp.data.datasets import load_builtin  # noqa: E402
from symbp.render.code.numpy_module import generate_module  # noqa: E402

HEALTHY = "healthy"
CONDITIONS = ("rising loss", "saturation", "dead units", "vanishing gradients", "exploding gradients")


@dataclass(frozen=True)
class Case:
    name: str
    condition: str  # HEALTHY or one of CONDITIONS
    spec: dict
    data: str  # a key of DATA
    training: dict = field(default_factory=dict)
    # Changes to the initial parameters: name -> function of (array, rng) giving the new array.
    start: dict = field(default_factory=dict)
    also: tuple = ()


def _blobs(classes, rows=240, inputs=2, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.5, size=(classes, inputs))
    labels = rng.integers(0, classes, rows)
    X = centres[labels] + rng.normal(scale=spread, size=(rows, inputs))
    return X, np.eye(classes)[labels]


def _wave(rows=200, seed=1):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(rows, 2))
    return X, np.sin(X[:, :1]) + 0.5 * X[:, 1:]


def _iris():
    data = load_builtin("iris")
    return data.X, data.Y


def _binary(rows=240, seed=2):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 2))
    return X, (X[:, :1] + X[:, 1:] > 0).astype(float)


def _wide(rows=200, inputs=8, seed=3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, inputs))
    return X, X[:, :1] - X[:, 1:2]


DATA = {
    "wave": _wave,
    "iris": _iris,
    "blobs": lambda: _blobs(3),
    "binary": _binary,
    "wave x 40": lambda: (_wave()[0] * 40, _wave()[1]),
    "wide": _wide,
}


def _net(name, inputs, layers, loss="squared_error", init="glorot_uniform", **loss_options):
    return {"name": name, "inputs": inputs, "layers": [{"units": units, "activation": activation}
                                                      for units, activation in layers],
            "loss": {"name": loss, **loss_options}, "training": {"init": init}}


CASES = (
    Case("tanh regression, gradient descent", HEALTHY, _net("h1", 2, [(8, "tanh"), (1, "linear")]), "wave",
         {"optimizer": "gd", "learning_rate": 0.1, "epochs": 400}),
    Case("iris, the slides' per-sample SGD", HEALTHY,
         _net("h2", 4, [(5, "sigmoid"), (3, "sigmoid")], init="normal", scale=0.5, reduction="sum"), "iris",
         {"optimizer": "sgd", "batch_size": 1, "learning_rate": 0.1, "epochs": 100}),
    Case("softmax classifier, adam, mini-batches", HEALTHY,
         _net("h3", 2, [(8, "relu"), (3, "softmax")], loss="cross_entropy"), "blobs",
         {"optimizer": "adam", "learning_rate": 0.01, "batch_size": 16, "epochs": 60}),
    Case("confident sigmoid classifier", HEALTHY,
         _net("h4", 2, [(6, "tanh"), (1, "sigmoid")], loss="binary_cross_entropy"), "binary",
         {"optimizer": "adam", "learning_rate": 0.05, "epochs": 300}),
    Case("relu regression, momentum, mini-batches", HEALTHY,
         _net("h5", 2, [(16, "relu"), (1, "linear")], init="he_normal"), "wave",
         {"optimizer": "momentum", "learning_rate": 0.01, "batch_size": 20, "epochs": 80}),
    Case("learning rate too high, gradient descent", "rising loss",
         _net("r1", 2, [(8, "tanh"), (1, "linear")]), "wave",
         {"optimizer": "gd", "learning_rate": 1.3, "epochs": 200}),
    Case("learning rate too high, mini-batches", "rising loss",
         _net("r2", 2, [(8, "tanh"), (1, "linear")]), "wave",
         {"optimizer": "sgd", "learning_rate": 0.9, "batch_size": 10, "epochs": 60}),
    Case("sigmoid layer fed unscaled inputs", "saturation",
         _net("s1", 2, [(8, "sigmoid"), (1, "linear")], init="normal"), "wave x 40",
         {"optimizer": "gd", "learning_rate": 0.05, "epochs": 100}, also=("vanishing gradients",)),
    Case("tanh layer started from huge weights", "saturation",
         _net("s2", 2, [(8, "tanh"), (1, "linear")]), "wave",
         {"optimizer": "gd", "learning_rate": 0.05, "epochs": 100}, {"W1": lambda W, rng: W * 60},
         also=("vanishing gradients",)),
    Case("relu layer with negative biases", "dead units",
         _net("d1", 2, [(16, "relu"), (1, "linear")], init="he_normal"), "wave",
         {"optimizer": "gd", "learning_rate": 0.05, "epochs": 100}, {"b1": lambda b, rng: b - 20.0},
         also=("stalled",)),
    Case("relu layers killed by one huge step", "dead units",
         _net("d2", 2, [(16, "relu"), (16, "relu"), (1, "linear")], init="he_normal"), "wave",
         {"optimizer": "sgd", "learning_rate": 0.5, "batch_size": 200, "epochs": 1},
         also=("stalled", "rising loss", "vanishing gradients")),
    Case("deep sigmoid net", "vanishing gradients",
         _net("v1", 2, [(6, "sigmoid")] * 8 + [(1, "linear")]), "wave",
         {"optimizer": "gd", "learning_rate": 1e-3, "epochs": 5}),
    Case("output weights started a thousand times too large", "exploding gradients",
         _net("e1", 2, [(8, "tanh"), (1, "linear")]), "wave",
         {"optimizer": "gd", "learning_rate": 1e-9, "epochs": 5}, {"W2": lambda W, rng: W * 1000}),
)


@dataclass
class Outcome:
    case: Case
    found: set


def run_case(case: Case) -> Outcome:
    module = load_module_from_source(generate_module(case.spec), case.spec["name"])
    X, Y = DATA[case.data]()
    rng = np.random.default_rng(0)
    params = module.init_params(0)
    for name, change in case.start.items():
        params[name] = change(params[name], rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        params, history = module.train(params, X, Y, seed=0, tolerance=None, **case.training)
    return Outcome(case, {hint.problem for hint in hints(module.diagnose(params, X, Y, history))})


def run_corpus(cases=CASES) -> list[Outcome]:
    return [run_case(case) for case in cases]


def false_alarms(outcome: Outcome) -> set:
    return outcome.found - {outcome.case.condition, *outcome.case.also}


def scores(outcomes: list[Outcome]) -> list[tuple[str, int, int, int, float, float]]:
    """(condition, runs with it, named, false alarms, precision, recall) for each condition."""
    rows = []
    for condition in CONDITIONS:
        sick = [o for o in outcomes if o.case.condition == condition]
        named = sum(condition in o.found for o in sick)
        alarms = sum(condition in false_alarms(o) for o in outcomes)
        precision = named / (named + alarms) if named + alarms else float("nan")
        recall = named / len(sick) if sick else float("nan")
        rows.append((condition, len(sick), named, alarms, precision, recall))
    return rows


def table(outcomes: list[Outcome]) -> str:
    lines = ["| run | condition | diagnosed |", "| --- | --- | --- |"]
    for o in outcomes:
        lines.append(f"| {o.case.name} | {o.case.condition} | {', '.join(sorted(o.found)) or 'nothing'} |")
    lines += ["", "| condition | runs | named | false alarms | precision | recall |",
              "| --- | --- | --- | --- | --- | --- |"]
    for condition, runs, named, alarms, precision, recall in scores(outcomes):
        lines.append(f"| {condition} | {runs} | {named} | {alarms} | {precision:.2f} | {recall:.2f} |")
    healthy = [o for o in outcomes if o.case.condition == HEALTHY]
    flagged = sum(bool(o.found) for o in healthy)
    lines.append(f"\nhealthy runs flagged: {flagged} of {len(healthy)}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run_corpus()))
