"""Drawn architectures mixing dense, residual and layer-normalised layers, with and without weight penalties: the
generated module's loss and gradient equal PyTorch autograd's (``torch.nn.functional.layer_norm``) in float64.

``SYMBP_LAYER_DRAWS`` sets how many are drawn (default 200), ``SYMBP_LAYER_SEED`` the seed (default 0).
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from test_residual_draws import _OUTPUTS, _PENALTIES

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


def _torch_loss(torch, spec, tensors, X, Y):
    functions = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z,
                 # Not torch's softplus: it returns z itself above z = 20, an error of exp(-20) in the loss.
                 "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
                 "softmax": lambda z: torch.softmax(z, dim=1)}
    a, total = torch.tensor(X), torch.zeros((), dtype=torch.float64)
    for index, layer in enumerate(spec.layers, start=1):
        weight = tensors[f"W{index}"]
        z = a @ weight
        if layer.normalization == "layer":
            z = torch.nn.functional.layer_norm(z, (layer.units,), weight=tensors[f"gamma{index}"],
                                               bias=tensors[f"beta{index}"], eps=layer.epsilon)
        if layer.bias:
            z = z + tensors[f"b{index}"]
        if layer.residual:
            z = z + a
        a, logits = functions[layer.activation](z), z
        penalty = dict(layer.kernel_regularizer)
        total = total + penalty.get("l1", 0.0) * weight.abs().sum() + penalty.get("l2", 0.0) * (weight**2).sum()
    y = torch.tensor(Y)
    if spec.loss.name == "squared_error":
        terms = (a - y) ** 2
    elif spec.loss.name == "cross_entropy":
        terms = -y * torch.log_softmax(logits, dim=1)
    else:
        terms = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    divisor = len(X) if spec.loss.reduction == "mean" else 1
    return total + spec.loss.scale * terms.sum() / divisor


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_with_layer_norm_has_pytorchs_gradient(draw):
    torch = pytest.importorskip("torch")
    spec = load_spec(_drawn(draw))
    module = load_module_from_source(generate_module(spec), spec.name)
    rng = np.random.default_rng(draw)
    params = {name: rng.normal(scale=0.7, size=value.shape) for name, value in module.init_params(0).items()}
    X = rng.normal(size=(7, spec.inputs))
    if spec.loss.name == "cross_entropy":
        Y = np.eye(spec.outputs)[rng.integers(0, spec.outputs, size=7)]
    elif spec.loss.name == "binary_cross_entropy":
        Y = rng.uniform(0.1, 0.9, size=(7, spec.outputs))
    else:
        Y = rng.normal(size=(7, spec.outputs))
    value, grads = module.loss_and_grad(params, X, Y)
    tensors = {name: torch.tensor(array, requires_grad=True) for name, array in params.items()}
    expected = _torch_loss(torch, spec, tensors, X, Y)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    for name, tensor in tensors.items():
        np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-9, atol=1e-12 * max(1.0, abs(value)))


def test_the_draws_mix_normalised_residual_and_dense_layers_and_penalties():
    layers = [layer for draw in range(DRAWS) for layer in _drawn(draw)["layers"]]
    normalised = [layer for layer in layers if layer.get("normalization") == "layer"]
    assert len(normalised) >= DRAWS // 2
    assert sum(layer.get("residual", False) for layer in layers) >= DRAWS // 8
    assert sum(not layer.get("residual", False) and "normalization" not in layer for layer in layers) >= DRAWS // 4
    assert any("kernel_regularizer" in layer for layer in normalised)
    assert {layer.get("epsilon") for layer in normalised} == set(_EPSILONS)
    assert sum(all("normalization" in layer for layer in _drawn(draw)["layers"][:-1]) for draw in range(DRAWS)) > 0
