"""The spec catalogue: every check in test_gradients runs against every network built here."""

from __future__ import annotations

import numpy as np
import pytest

from symbp.data.datasets import write_idx
from symbp.registry.rules import ACTIVATIONS, LOSSES

ELEMENTWISE = [name for name, activation in ACTIVATIONS.items() if not activation.rowwise]


# Custom activations and losses written in a spec's expr, run through every check like the built-in ones.
CUSTOM_ACTIVATIONS = {
    "softsign": {"expr": "x / (1 + abs(x))", "name": "softsign"},
    "swish": {"expr": "z / (1 + exp(-z))"},
    "elu": {"expr": "where(x > 0, x, exp(x) - 1)", "name": "elu"},
    "gelu-tanh": {"expr": "0.5 * x * (1 + tanh(0.7978845608 * (x + 0.044715 * x**3)))", "name": "gelu"},
    "max-leaky": {"expr": "max(x, 0.1 * x)"},
    "bent": {"expr": "(sqrt(x**2 + 1) - 1) / 2 + x", "name": "bent_identity"},
}
CUSTOM_LOSSES = {
    "quartic": {"expr": "(yhat - y)**4", "name": "quartic"},
    "logcosh": {"expr": "log(cosh(yhat - y))", "name": "logcosh", "scale": 2.0, "reduction": "sum"},
    "huber": {"expr": "where(abs(yhat - y) < 0.5, (yhat - y)**2 / 2, 0.5 * (abs(yhat - y) - 0.25))"},
}


def _spec(name, inputs, layers, loss="squared_error", **loss_options):
    return {"name": name, "inputs": inputs, "layers": layers, "loss": {"name": loss, **loss_options}}


def output_combinations():
    """Every loss with every output activation it accepts."""
    for loss_name, loss in LOSSES.items():
        for activation in ACTIVATIONS:
            if loss.requires_output in (None, activation):
                yield loss_name, activation


def catalogue():
    specs = {}
    for loss_name, activation in output_combinations():
        for bias in (True, False):
            tag = f"{loss_name}-{activation}-{'bias' if bias else 'nobias'}"
            specs[f"out-{tag}"] = _spec(
                "net", 3,
                [
                    {"units": 4, "activation": "tanh", "bias": bias},
                    {"units": 3, "activation": activation, "bias": bias},
                ],
                loss_name,
            )
            specs[f"single-{tag}"] = _spec("net", 2, [{"units": 2, "activation": activation, "bias": bias}], loss_name)
    for hidden in ELEMENTWISE:
        for bias in (True, False):
            specs[f"hidden-{hidden}-{'bias' if bias else 'nobias'}"] = _spec(
                "net", 3,
                [{"units": 3, "activation": hidden, "bias": bias}, {"units": 2, "activation": "linear", "bias": bias}],
            )
        specs[f"deep-{hidden}"] = _spec(
            "net", 2,
            [
                {"units": 3, "activation": hidden},
                {"units": 3, "activation": "sigmoid", "bias": False},
                {"units": 2, "activation": hidden},
                {"units": 2, "activation": "softmax"},
            ],
            "cross_entropy",
        )
    specs["sum-half-squared"] = _spec(
        "net", 2, [{"units": 5, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
        scale=0.5, reduction="sum",
    )
    specs["leaky-alpha"] = _spec(
        "net", 2,
        [{"units": 3, "activation": {"name": "leaky_relu", "alpha": 0.2}}, {"units": 1, "activation": "linear"}],
    )
    for tag, activation in CUSTOM_ACTIVATIONS.items():
        specs[f"custom-hidden-{tag}"] = _spec(
            "net", 3, [{"units": 3, "activation": activation}, {"units": 2, "activation": "linear"}],
        )
        specs[f"custom-output-{tag}"] = _spec(
            "net", 2, [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": activation, "bias": False}],
        )
    for tag, loss in CUSTOM_LOSSES.items():
        specs[f"custom-loss-{tag}"] = {
            "name": "net", "inputs": 2, "loss": loss,
            "layers": [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "sigmoid"}],
        }
    specs["custom-loss-through-softmax"] = {
        "name": "net", "inputs": 2, "loss": {"expr": "-y * log(yhat)", "name": "my_cross_entropy"},
        "layers": [{"units": 3, "activation": "tanh"}, {"units": 3, "activation": "softmax"}],
    }
    specs["wide-no-expansion"] = _spec(
        "net", 20, [{"units": 16, "activation": "relu"}, {"units": 10, "activation": "softmax"}], "cross_entropy"
    )
    return specs


CATALOGUE = catalogue()


def pytest_collection_modifyitems(items):
    # Everything in the typesetting test files compiles catalogue documents; CI selects them with -m.
    for item in items:
        if item.path.name.startswith("test_typesetting"):
            item.add_marker(pytest.mark.typesetting)


def pytest_generate_tests(metafunc):
    if "catalogue_spec" in metafunc.fixturenames:
        metafunc.parametrize("catalogue_spec", list(CATALOGUE.values()), ids=list(CATALOGUE))


@pytest.fixture
def tiny_mnist(tmp_path):
    """A folder of the four MNIST IDX files, small: each digit lights its own band of rows, plus noise."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 200), ("t10k", 50)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for image, label in zip(images, labels):
            image[2 + 2 * label: 4 + 2 * label, 4:24] = 255
        # One file of each pair compressed, as downloads often are.
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder
