"""Drawn architectures mixing dense, dropout and residual layers, with and without weight penalties: the generated
module's loss and gradient equal PyTorch autograd's in float64, in training mode (one drawn mask, given to both)
and in evaluation mode (no masks: PyTorch's dropout with training=False). The test skips without torch.

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


def _torch_loss(torch, spec, tensors, X, Y, masks):
    """PyTorch's loss: with masks, each dropout layer's inputs times its mask; without, PyTorch's own dropout
    in evaluation mode (training=False), which is the identity."""
    functions = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z,
                 # Not torch's softplus: it returns z itself above z = 20, an error of exp(-20) in the loss.
                 "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
                 "softmax": lambda z: torch.softmax(z, dim=1)}
    a, total = torch.tensor(X), torch.zeros((), dtype=torch.float64)
    for index, layer in enumerate(spec.layers, start=1):
        if layer.dropout:
            if masks is None:
                a = torch.nn.functional.dropout(a, p=layer.dropout, training=False)
            else:
                a = a * torch.tensor(masks[f"M{index}"])
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


def _problem(spec, module, draw):
    rng = np.random.default_rng(draw)
    params = {name: rng.normal(scale=0.7, size=value.shape) for name, value in module.init_params(0).items()}
    X = rng.normal(size=(7, spec.inputs))
    if spec.loss.name == "cross_entropy":
        Y = np.eye(spec.outputs)[rng.integers(0, spec.outputs, size=7)]
    elif spec.loss.name == "binary_cross_entropy":
        Y = rng.uniform(0.1, 0.9, size=(7, spec.outputs))
    else:
        Y = rng.normal(size=(7, spec.outputs))
    return params, X, Y, rng


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_with_dropout_has_pytorchs_gradient_in_both_modes(draw):
    torch = pytest.importorskip("torch")
    spec = load_spec(_drawn(draw))
    module = load_module_from_source(generate_module(spec), spec.name)
    params, X, Y, rng = _problem(spec, module, draw)
    training_masks = module.draw_masks(rng, X.shape[0])
    for masks in (training_masks, None):
        value, grads = module.loss_and_grad(params, X, Y, masks)
        tensors = {name: torch.tensor(array, requires_grad=True) for name, array in params.items()}
        expected = _torch_loss(torch, spec, tensors, X, Y, masks)
        expected.backward()
        assert value == pytest.approx(expected.item(), rel=1e-12), "training" if masks else "evaluation"
        for name, tensor in tensors.items():
            np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-9,
                                       atol=1e-12 * max(1.0, abs(value)), err_msg=name)
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
