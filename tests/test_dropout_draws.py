"""Drawn architectures mixing dense, dropout and residual layers, with and without weight penalties: the generated
module's loss and gradient equal PyTorch autograd's in float64, in training mode (one drawn mask, given to both)
and in evaluation mode (no masks: PyTorch's dropout with training=False). The test skips without torch.

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
_PENALTIES = (None, {"l2": 0.01}, {"l1": 0.02})
_RATES = (0.1, 0.25, 0.5, 0.8)


def _drawn(draw: int) -> dict:
    """At least one dropout layer; residual layers (which take no dropout) and plain dense ones besides."""
    rng = random.Random(SEED * 100_003 + draw)
    inputs = rng.randint(1, 4)
    layers, width = [], inputs
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("dense", "dropout", "dropout", "residual"))
        units = width if kind == "residual" else rng.randint(1, 5)
        layer = {"units": units, "activation": rng.choice(_HIDDEN), "bias": rng.random() < 0.8}
        if kind == "residual":
            layer["residual"] = True
        if kind == "dropout":
            layer["dropout"] = rng.choice(_RATES)
        penalty = rng.choice(_PENALTIES)
        if penalty:
            layer["kernel_regularizer"] = penalty
        layers.append(layer)
        width = units
    activation, loss = rng.choice(_OUTPUTS)
    output = {"units": 2 + rng.randint(0, 2) if activation == "softmax" else rng.randint(1, 3),
              "activation": activation}
    # The output layer drops its inputs in most draws, and always when no hidden layer does.
    if rng.random() < 0.7 or not any("dropout" in layer for layer in layers):
        output["dropout"] = rng.choice(_RATES)
    reduction = rng.choice(("mean", "sum"))
    return {"name": f"drawn{draw}", "inputs": inputs, "layers": [*layers, output],
            "loss": {"name": loss, "reduction": reduction, "scale": 0.5 if loss == "squared_error" else 1.0}}


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_with_dropout_has_pytorchs_gradient_in_both_modes(draw):
    torch = pytest.importorskip("torch")
    spec = load_spec(_drawn(draw))
    module = load_module_from_source(generate_module(spec), spec.name)
    params, X, Y, rng = drawn_problem(spec, module, draw)
    training_masks = module.draw_masks(rng, X.shape[0])
    for masks in (training_masks, None):
        value, grads = module.loss_and_grad(params, X, Y, masks)
        assert_pytorchs_loss_and_gradient(torch, spec, value, grads, params, X, Y, masks,
                                          "training" if masks else "evaluation")
    # Evaluation mode is what loss() and forward() compute.
    assert module.loss(params, X, Y) == pytest.approx(module.loss_and_grad(params, X, Y)[0], rel=1e-12)


def test_the_draws_mix_every_kind_rate_and_penalty():
    specs = [_drawn(draw) for draw in range(DRAWS)]
    layers = [layer for spec in specs for layer in spec["layers"]]
    assert all(any("dropout" in layer for layer in spec["layers"]) for spec in specs)
    assert sum(layer.get("residual", False) for layer in layers) >= DRAWS // 4
    hidden = [layer for spec in specs for layer in spec["layers"][:-1]]
    assert sum("dropout" in layer for layer in hidden) >= DRAWS // 4  # hidden layers drop too, not only outputs
    assert {layer["dropout"] for layer in layers if "dropout" in layer} == set(_RATES)
    penalties = [layer["kernel_regularizer"] for layer in layers if "kernel_regularizer" in layer]
    assert any("l1" in p for p in penalties) and any("l2" in p for p in penalties)
