"""PyTorch's loss for a spec's network, written independently of symbp's model, for the drawn-architecture tests.

Every layer kind symbp has: dense, residual (the layer's input added), dropout (the inputs times a given mask,
or PyTorch's own dropout in evaluation mode when there are no masks), layer normalisation
(``torch.nn.functional.layer_norm``), batch normalisation (``torch.nn.functional.batch_norm``, what
``nn.BatchNorm1d`` computes: over the batch in training mode, by running statistics in evaluation mode), convolution
and pooling (``torch.nn.functional.conv1d``, ``conv2d``, ``max_pool1d``, ``max_pool2d``, ``avg_pool1d``,
``avg_pool2d``), and L1/L2 weight penalties.
"""

from __future__ import annotations

import numpy as np
import pytest


def torch_loss(torch, spec, tensors, X, Y, masks=None, running=None, training=True):
    """The spec's loss on (X, Y) at the parameters ``tensors`` (by name), in float64.

    ``running``: batch normalisation's running statistics (tensors by name, "running_mean2"), which PyTorch
    updates in place with the layer's momentum while ``training``, and normalises by when not.
    """
    functions = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z,
                 # Not torch's softplus: it returns z itself above z = 20, an error of exp(-20) in the loss.
                 "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
                 "softmax": lambda z: torch.softmax(z, dim=1)}
    a, total = torch.tensor(X), torch.zeros((), dtype=torch.float64)
    for index, layer in enumerate(spec.layers, start=1):
        if layer.window is not None:
            z = _window(torch, layer, a, tensors, index)
            a, logits = functions[layer.activation](z), z
            continue
        if layer.dropout:
            if masks is None:
                a = torch.nn.functional.dropout(a, p=layer.dropout, training=False)
            else:
                a = a * torch.tensor(masks[f"M{index}"])
        weight = tensors[f"W{index}"]
        z = a @ weight
        if layer.normalization == "layer":
            z = torch.nn.functional.layer_norm(z, (layer.units,), weight=tensors[f"gamma{index}"],
                                               bias=tensors[f"beta{index}"], eps=layer.epsilon)
        if layer.normalization == "batch":
            mean, variance = (None, None) if running is None else (running[f"running_mean{index}"],
                                                                   running[f"running_var{index}"])
            z = torch.nn.functional.batch_norm(z, mean, variance, weight=tensors[f"gamma{index}"],
                                               bias=tensors[f"beta{index}"], training=training,
                                               momentum=layer.momentum, eps=layer.epsilon)
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


def torch_outputs(torch, spec, tensors, X, running):
    """The network's outputs on X in evaluation mode (batch normalisation by ``running``, no dropout)."""
    functions = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z,
                 "softplus": lambda z: torch.logaddexp(z, torch.zeros_like(z)),
                 "softmax": lambda z: torch.softmax(z, dim=1)}
    a = torch.tensor(X)
    for index, layer in enumerate(spec.layers, start=1):
        z = a @ tensors[f"W{index}"]
        if layer.normalization == "layer":
            z = torch.nn.functional.layer_norm(z, (layer.units,), weight=tensors[f"gamma{index}"],
                                               bias=tensors[f"beta{index}"], eps=layer.epsilon)
        if layer.normalization == "batch":
            z = torch.nn.functional.batch_norm(z, running[f"running_mean{index}"], running[f"running_var{index}"],
                                               weight=tensors[f"gamma{index}"], bias=tensors[f"beta{index}"],
                                               training=False, eps=layer.epsilon)
        if layer.bias:
            z = z + tensors[f"b{index}"]
        if layer.residual:
            z = z + a
        a = functions[layer.activation](z)
    return a


def _window(torch, layer, a, tensors, index):
    """A convolution or pooling by torch.nn.functional, on the flat rows read as (channels, *spatial)."""
    functional, window = torch.nn.functional, layer.window
    geometry = window.geometry
    images = a.reshape(-1, *geometry.input_shape)
    dims = len(geometry.window)
    if window.kind.startswith("conv"):
        convolution = functional.conv1d if dims == 1 else functional.conv2d
        bias = tensors[f"b{index}"] if layer.bias else None
        out = convolution(images, tensors[f"W{index}"], bias, stride=geometry.stride, padding=geometry.padding)
    elif window.kind.startswith("max"):
        pool = functional.max_pool1d if dims == 1 else functional.max_pool2d
        out = pool(images, geometry.window, stride=geometry.stride)
    else:
        pool = functional.avg_pool1d if dims == 1 else functional.avg_pool2d
        out = pool(images, geometry.window, stride=geometry.stride)
    return out.reshape(out.shape[0], -1)


def drawn_problem(spec, module, draw):
    """Parameters, 7 samples and targets of the loss's kind, drawn for ``draw``; and the generator, to draw on."""
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


def assert_pytorchs_loss_and_gradient(torch, spec, value, grads, params, X, Y, masks=None, mode="", training=True):
    """The module's loss ``value`` and gradients ``grads`` at ``params`` equal PyTorch autograd's; batch
    normalisation in training mode, or (``training`` False) by the running statistics in ``params``."""
    tensors = {name: torch.tensor(array, requires_grad=True) for name, array in params.items() if name in grads}
    running = {name: torch.tensor(array) for name, array in params.items() if name not in grads}
    expected = torch_loss(torch, spec, tensors, X, Y, masks, running if not training else None, training)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12), mode
    for name, tensor in tensors.items():
        np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-9,
                                   atol=1e-12 * max(1.0, abs(value)), err_msg=name)
