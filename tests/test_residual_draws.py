"""Drawn architectures mixing dense and residual layers, with and without weight penalties: the generated
module's loss and gradient equal PyTorch autograd's in float64 (the test skips without torch).

``SYMBP_LAYER_DRAWS`` sets how many are drawn (default 200), ``SYMBP_LAYER_SEED`` the seed (default 0).
"""

from __future__ import annotations

import os
import random

import pytest
from torch_reference import assert_pytorchs_loss_and_gradient, drawn_problem

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec

DRAWS = int(os.environ.get("SYMBP_LAYER_DRAWS", "200"))
SEED = int(os.environ.get("SYMBP_LAYER_SEED", "0"))
_HIDDEN = ("tanh", "sigmoid", "relu", "softplus", "linear")
_OUTPUTS = (("linear", "squared_error"), ("sigmoid", "binary_cross_entropy"), ("softmax", "cross_entropy"),
            ("tanh", "squared_error"))
_PENALTIES = (None, {"l2": 0.01}, {"l1": 0.02}, {"l1": 0.005, "l2": 0.03})


def _drawn(draw: int) -> dict:
    rng = random.Random(SEED * 100_003 + draw)
    inputs = rng.randint(1, 4)
    layers, width = [], inputs
    for _ in range(rng.randint(1, 4)):
        residual = rng.random() < 0.5
        units = width if residual else rng.randint(1, 5)
        layer = {"units": units, "activation": rng.choice(_HIDDEN), "residual": residual, "bias": rng.random() < 0.8}
        penalty = rng.choice(_PENALTIES)
        if penalty:
            layer["kernel_regularizer"] = penalty
        layers.append(layer)
        width = units
    activation, loss = rng.choice(_OUTPUTS)
    output = {"units": 2 + rng.randint(0, 2) if activation == "softmax" else rng.randint(1, 3),
              "activation": activation}
    if rng.random() < 0.5:
        output["kernel_regularizer"] = rng.choice(_PENALTIES[1:])
    reduction = rng.choice(("mean", "sum"))
    return {"name": f"drawn{draw}", "inputs": inputs, "layers": [*layers, output],
            "loss": {"name": loss, "reduction": reduction, "scale": 0.5 if loss == "squared_error" else 1.0}}


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_has_pytorchs_gradient(draw):
    torch = pytest.importorskip("torch")
    spec = load_spec(_drawn(draw))
    module = load_module_from_source(generate_module(spec), spec.name)
    params, X, Y, _ = drawn_problem(spec, module, draw)
    value, grads = module.loss_and_grad(params, X, Y)
    assert_pytorchs_loss_and_gradient(torch, spec, value, grads, params, X, Y)


def test_the_draws_mix_every_kind_and_penalty():
    layers = [layer for draw in range(DRAWS) for layer in _drawn(draw)["layers"]]
    assert sum(layer.get("residual", False) for layer in layers) >= DRAWS // 4
    penalties = [layer["kernel_regularizer"] for layer in layers if "kernel_regularizer" in layer]
    assert any("l1" in p for p in penalties) and any("l2" in p for p in penalties)
