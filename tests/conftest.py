"""The spec catalogue: every check in test_gradients runs against every network built here."""

from __future__ import annotations

from symbp.rules import ACTIVATIONS, LOSSES

ELEMENTWISE = [name for name, activation in ACTIVATIONS.items() if not activation.rowwise]


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
    specs["wide-no-expansion"] = _spec(
        "net", 20, [{"units": 16, "activation": "relu"}, {"units": 10, "activation": "softmax"}], "cross_entropy"
    )
    return specs


CATALOGUE = catalogue()


def pytest_generate_tests(metafunc):
    if "catalogue_spec" in metafunc.fixturenames:
        metafunc.parametrize("catalogue_spec", list(CATALOGUE.values()), ids=list(CATALOGUE))
