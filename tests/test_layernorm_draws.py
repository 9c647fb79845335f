"""Drawn architectures mixing dense, residual and layer-normalised layers, with and without weight penalties: the
generated module's loss and gradient equal PyTorch autograd's (``torch.nn.functional.layer_norm``) in float64.

``SYMBP_LAYER_DRAWS`` sets how many are drawn (default 200), ``SYMBP_LAYER_SEED`` the seed (default 0).
"""

from __future__ import annotations

import os
import random

import pytest
from test_residual_draws import _OUTPUTS, _PENALTIES
from torch_reference import assert_pytorchs_loss_and_gradient, drawn_problem

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec

DRAWS = int(os.environ.get("SYMBP_LAYER_DRAWS", "200"))
SEED = int(os.environ.get("SYMBP_LAYER_SEED", "0"))
_HIDDEN = ("tanh", "sigmoid", "relu", "softplus", "linear")
_EPSILONS = (None, 1e-3, 0.1)


def _normalised(layer: dict, rng: random.Random) -> dict:
    layer = {key: value for key, value in layer.items() if key not in ("bias", "residual")}
    layer["normalization"] = "layer"
    epsilon = rng.choice(_EPSILONS)
    if epsilon is not None:
        layer["epsilon"] = epsilon
    return layer


def _drawn(draw: int) -> dict:
    rng = random.Random(SEED * 100_003 + draw)
    inputs = rng.randint(1, 4)
    layers, width = [], inputs
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(("dense", "residual", "layer", "layer"))
        units = width if kind == "residual" else rng.randint(2 if kind == "layer" else 1, 5)
        layer = {"units": units, "activation": rng.choice(_HIDDEN), "residual": kind == "residual",
                 "bias": rng.random() < 0.8}
        if kind == "layer":
            layer = _normalised(layer, rng)
        penalty = rng.choice(_PENALTIES)
        if penalty:
            layer["kernel_regularizer"] = penalty
        layers.append(layer)
        width = units
    activation, loss = rng.choice(_OUTPUTS)
    units = 2 + rng.randint(0, 2) if activation == "softmax" else rng.randint(1, 3)
    output = {"units": units, "activation": activation}
    if units >= 2 and rng.random() < 0.3:
        output = _normalised(output, rng)
    if rng.random() < 0.5:
        output["kernel_regularizer"] = rng.choice(_PENALTIES[1:])
    reduction = rng.choice(("mean", "sum"))
    return {"name": f"drawn{draw}", "inputs": inputs, "layers": [*layers, output],
            "loss": {"name": loss, "reduction": reduction, "scale": 0.5 if loss == "squared_error" else 1.0}}


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_with_layer_norm_has_pytorchs_gradient(draw):
    torch = pytest.importorskip("torch")
    spec = load_spec(_drawn(draw))
    module = load_module_from_source(generate_module(spec), spec.name)
    params, X, Y, _ = drawn_problem(spec, module, draw)
    value, grads = module.loss_and_grad(params, X, Y)
    assert_pytorchs_loss_and_gradient(torch, spec, value, grads, params, X, Y)


def test_the_draws_mix_normalised_residual_and_dense_layers_and_penalties():
    layers = [layer for draw in range(DRAWS) for layer in _drawn(draw)["layers"]]
    normalised = [layer for layer in layers if layer.get("normalization") == "layer"]
    assert len(normalised) >= DRAWS // 2
    assert sum(layer.get("residual", False) for layer in layers) >= DRAWS // 8
    assert sum(not layer.get("residual", False) and "normalization" not in layer for layer in layers) >= DRAWS // 4
    assert any("kernel_regularizer" in layer for layer in normalised)
    assert {layer.get("epsilon") for layer in normalised} == set(_EPSILONS)
    assert sum(all("normalization" in layer for layer in _drawn(draw)["layers"][:-1]) for draw in range(DRAWS)) > 0
