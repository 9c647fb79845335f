"""Networks unlike the bundled examples, for timing the documents: up to 4 layers and 12 units per layer.

Each entry is a spec as a dict. They cover what the bundled examples leave out: deep and narrow,
wide, softmax outputs, custom activations (softsign, trigonometric, polynomial), layers without
biases, a different activation in every layer, binary cross-entropy and regression. The small ones
(at most 60 parameters) get the derivation's explicit per-weight section, the slowest part.
"""

from __future__ import annotations

import random

SOFTSIGN = {"expr": "x / (1 + abs(x))", "name": "softsign"}
SINE = {"expr": "sin(x)", "name": "sine"}
CUBIC = {"expr": "x + x**3 / 3", "name": "cubic"}
SWISH = {"expr": "x / (1 + exp(-x))", "name": "swish"}


def _spec(name, sizes, activations, loss="squared_error", bias=True):
    """A spec dict: sizes are the inputs then each layer's units; bias is one flag or one per layer."""
    biases = bias if isinstance(bias, (list, tuple)) else [bias] * len(activations)
    layers = [{"units": units, "activation": activation, "bias": has_bias}
              for units, activation, has_bias in zip(sizes[1:], activations, biases)]
    return {"name": name, "inputs": sizes[0], "layers": layers, "loss": {"name": loss}}


NETWORKS = {
    "2-2-2-2-1 sigmoid deep": _spec("deep_narrow", [2, 2, 2, 2, 1], ["sigmoid"] * 4),
    "1-3-3-3-1 tanh deep": _spec("deep_tanh", [1, 3, 3, 3, 1], ["tanh", "tanh", "tanh", "linear"]),
    "2-3-3-3-2 sigmoid deep": _spec("small_deep", [2, 3, 3, 3, 2], ["sigmoid"] * 4),
    "3-4-3 softmax": _spec("softmax_small", [3, 4, 3], ["sigmoid", "softmax"], "cross_entropy"),
    "2-3-3-3 softmax deep": _spec("softmax_deep", [2, 3, 3, 3], ["tanh", "relu", "softmax"], "cross_entropy"),
    "2-4-4-1 softsign": _spec("softsign", [2, 4, 4, 1], [SOFTSIGN, SOFTSIGN, "linear"]),
    "2-3-3-1 sine": _spec("sine", [2, 3, 3, 1], [SINE, "tanh", "linear"]),
    "3-3-2-1 cubic/swish": _spec("custom_mix", [3, 3, 2, 1], [CUBIC, SWISH, "sigmoid"]),
    "3-4-4-4-3 mixed no bias": _spec("mixed_no_bias", [3, 4, 4, 4, 3], ["tanh", "sigmoid", "softplus", "softmax"],
                                     "cross_entropy", bias=False),
    "2-4-3-2 mixed bias-free hidden": _spec("mixed_hidden", [2, 4, 3, 2], ["relu", "tanh", "sigmoid"],
                                            bias=[False, False, True]),
    "4-5-3-1 binary cross-entropy": _spec("bce", [4, 5, 3, 1], ["relu", "tanh", "sigmoid"], "binary_cross_entropy"),
    "2-4-1 leaky/sigmoid bce": _spec("leaky_bce", [2, 4, 1], ["leaky_relu", "sigmoid"], "binary_cross_entropy"),
    "5-1 linear regression": _spec("regression", [5, 1], ["linear"]),
    "6-8-1 softplus regression": _spec("softplus_regression", [6, 8, 1], ["softplus", "linear"]),
    "4-12-12-3 wide softmax": _spec("wide_softmax", [4, 12, 12, 3], ["relu", "tanh", "softmax"], "cross_entropy"),
    "12-12-12-12-12 widest": _spec("widest", [12] * 5, ["relu", "tanh", "sigmoid", "softmax"], "cross_entropy"),
    "3-8-8-6-1 exp out": _spec("deep_exp", [3, 8, 8, 6, 1], ["sigmoid", "tanh", "sigmoid", "exponential"]),
}


# What a drawn network's layers may be: every built-in activation that is not an output-only one, and two
# custom ones, so that the draws cover what the fixed list above does not think of.
_HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "linear", SOFTSIGN, SINE)
_OUTPUTS = {
    "regression": (("linear", "sigmoid", "tanh", "exponential"), "squared_error"),
    "softmax": (("softmax",), "cross_entropy"),
    "binary": (("sigmoid",), "binary_cross_entropy"),
}


def drawn_network(seed: int) -> dict:
    """A network drawn from seed: 1 to 4 layers of 1 to 12 units, each layer's activation and bias drawn, an
    output and loss that go together, mean or sum. The same seed gives the same spec on every machine."""
    rng = random.Random(seed)
    depth = rng.randint(1, 4)
    sizes = [rng.randint(1, 12) for _ in range(depth + 1)]
    kind = rng.choice(sorted(_OUTPUTS))
    outputs, loss = _OUTPUTS[kind]
    if kind == "softmax":
        sizes[-1] = max(2, sizes[-1])
    elif kind == "binary":
        sizes[-1] = 1
    activations = [rng.choice(_HIDDEN) for _ in range(depth - 1)] + [rng.choice(outputs)]
    biases = [rng.random() < 0.7 for _ in range(depth)]
    spec = _spec(f"drawn_{seed}", sizes, activations, loss, bias=biases)
    spec["loss"]["reduction"] = rng.choice(["mean", "sum"])
    return spec


def drawn_name(seed: int) -> str:
    """The benchmark's name for the network drawn from seed: its seed and sizes."""
    spec = drawn_network(seed)
    return f"drawn {seed}: " + "-".join(str(n) for n in [spec["inputs"], *(layer["units"] for layer in spec["layers"])])


def network_spec(name: str) -> dict:
    """The spec of a listed network, or of a drawn one by its name ("drawn 17: 3-4-1")."""
    if name.startswith("drawn "):
        return drawn_network(int(name.split()[1].rstrip(":")))
    return NETWORKS[name]
