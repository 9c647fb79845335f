"""Drawn architectures mixing dense and residual layers, with and without weight penalties: the generated
module's loss and gradient equal PyTorch autograd's in float64 (the test skips without torch).

``SYMBP_LAYER_DRAWS`` sets how many are drawn (default 200), ``SYMBP_LAYER_SEED`` the seed (default 0).
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

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


def _torch_loss(torch, spec, tensors, X, Y):
    functions = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z,
                 # Not torch's softplus: it returns z itself above z = 20, an error of exp(-20) in the loss.
                 "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
                 "softmax": lambda z: torch.softmax(z, dim=1)}
    a, total = torch.tensor(X), torch.zeros((), dtype=torch.float64)
    for index, layer in enumerate(spec.layers, start=1):
        weight = tensors[f"W{index}"]
        z = a @ weight
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
        # From the logits, as the generated module does: log(a) of a probability near 1 loses digits.
        terms = -y * torch.log_softmax(logits, dim=1)
    else:
        terms = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    divisor = len(X) if spec.loss.reduction == "mean" else 1
    return total + spec.loss.scale * terms.sum() / divisor


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_has_pytorchs_gradient(draw):
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


def test_the_draws_mix_every_kind_and_penalty():
    layers = [layer for draw in range(DRAWS) for layer in _drawn(draw)["layers"]]
    assert sum(layer.get("residual", False) for layer in layers) >= DRAWS // 4
    penalties = [layer["kernel_regularizer"] for layer in layers if "kernel_regularizer" in layer]
    assert any("l1" in p for p in penalties) and any("l2" in p for p in penalties)
