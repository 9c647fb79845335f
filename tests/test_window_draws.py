"""Drawn architectures mixing 1-D and 2-D convolution, max and average pooling and dense layers: the generated
module's loss and gradient equal PyTorch autograd's (``torch.nn.functional.conv1d``/``conv2d``/``max_pool``/
``avg_pool``) in float64, to 1e-9 relative.

``SYMBP_WINDOW_DRAWS`` sets how many are drawn (default 120), ``SYMBP_WINDOW_SEED`` the seed (default 0).
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from test_residual_draws import _OUTPUTS
from torch_reference import assert_pytorchs_loss_and_gradient, drawn_problem

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec

DRAWS = int(os.environ.get("SYMBP_WINDOW_DRAWS", "120"))
SEED = int(os.environ.get("SYMBP_WINDOW_SEED", "0"))
_HIDDEN = ("tanh", "sigmoid", "relu", "softplus", "linear")


def _window_layer(rng: random.Random, shape: list[int]) -> tuple[dict, list[int]]:
    """A convolution or pooling that fits ``shape`` (channels, *spatial), and the shape it outputs."""
    dims = len(shape) - 1
    kind = rng.choice(("conv", "conv", "max_pool", "avg_pool"))
    spatial = shape[1:]
    if kind == "conv":
        padding = [rng.randint(0, 1) for _ in spatial]
        kernel = [rng.randint(1, min(3, size + 2 * pad)) for size, pad in zip(spatial, padding)]
        stride = [rng.randint(1, 2) for _ in spatial]
        filters = rng.randint(1, 3)
        layer = {"kind": f"conv{dims}d", "filters": filters, "kernel_size": kernel, "stride": stride,
                 "padding": padding, "activation": rng.choice(_HIDDEN), "bias": rng.random() < 0.8}
        if rng.random() < 0.3 and len(set(kernel)) == 1 and len(set(padding)) == 1:
            layer["kernel_size"], layer["padding"] = kernel[0], padding[0]  # one number for every axis
        channels = filters
    else:
        padding = [0] * dims
        kernel = [rng.randint(1, min(3, size)) for size in spatial]
        stride = kernel if rng.random() < 0.5 else [rng.randint(1, 2) for _ in spatial]
        layer = {"kind": f"{kind}{dims}d", "pool_size": kernel}
        if stride != kernel:
            layer["stride"] = stride
        channels = shape[0]
    positions = [(size + 2 * pad - k) // s + 1 for size, pad, k, s in zip(spatial, padding, kernel, stride)]
    return layer, [channels, *positions]


def _drawn(draw: int) -> dict:
    rng = random.Random(SEED * 100_003 + draw)
    dims = rng.choice((1, 2))
    shape = [rng.randint(1, 3), *(rng.randint(3, 7) for _ in range(dims))]
    input_shape = list(shape)
    layers = []
    for _ in range(rng.randint(1, 3)):
        layer, shape = _window_layer(rng, shape)
        layers.append(layer)
    if rng.random() < 0.4:
        layers.append({"units": rng.randint(1, 4), "activation": rng.choice(_HIDDEN)})
    activation, loss = rng.choice(_OUTPUTS)
    units = 2 + rng.randint(0, 2) if activation == "softmax" else rng.randint(1, 3)
    reduction = rng.choice(("mean", "sum"))
    return {"name": f"windows{draw}", "input_shape": input_shape, "layers": [*layers,
            {"units": units, "activation": activation}],
            "loss": {"name": loss, "reduction": reduction, "scale": 0.5 if loss == "squared_error" else 1.0}}


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_with_windows_has_pytorchs_gradient(draw):
    torch = pytest.importorskip("torch")
    spec = load_spec(_drawn(draw))
    module = load_module_from_source(generate_module(spec), spec.name)
    params, X, Y, _ = drawn_problem(spec, module, draw)
    value, grads = module.loss_and_grad(params, X, Y)
    assert_pytorchs_loss_and_gradient(torch, spec, value, grads, params, X, Y)


def test_max_pooling_sends_a_tied_windows_error_to_its_first_largest_entry_as_pytorch():
    torch = pytest.importorskip("torch")
    spec = load_spec({"name": "ties", "input_shape": [2, 4, 4],
                      "layers": [{"kind": "max_pool2d", "pool_size": 2, "stride": 1},
                                 {"units": 2, "activation": "linear"}]})
    module = load_module_from_source(generate_module(spec), spec.name)
    rng = np.random.default_rng(0)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    X = rng.integers(0, 2, size=(5, 32)).astype(float)  # windows of 0s and 1s: ties in most of them
    Y = rng.normal(size=(5, 2))
    value, grads = module.loss_and_grad(params, X, Y)
    assert_pytorchs_loss_and_gradient(torch, spec, value, grads, params, X, Y)
    tensor = torch.tensor(X.reshape(5, 2, 4, 4), requires_grad=True)
    torch.nn.functional.max_pool2d(tensor, 2, stride=1).sum().backward()
    # The error reaching the input goes to one entry of each window, PyTorch's: the first of the ties.
    ours = module._patches_adjoint(
        module._first_max_mask(module._patches(X.reshape(-1, 16), (1, 4, 4), (2, 2), (1, 1), (0, 0))) * 1.0,
        (1, 4, 4), (2, 2), (1, 1), (0, 0))
    np.testing.assert_array_equal(ours.reshape(5, 2, 4, 4), tensor.grad.numpy())


def test_the_draws_cover_every_window_kind_both_dimensions_padding_and_strides():
    layers = [layer for draw in range(DRAWS) for layer in _drawn(draw)["layers"]]
    kinds = {layer.get("kind", "dense") for layer in layers}
    assert kinds == {"dense", "conv1d", "conv2d", "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"}
    convolutions = [layer for layer in layers if layer.get("kind", "").startswith("conv")]
    assert any(np.max(layer["padding"]) > 0 for layer in convolutions)
    assert any(np.max(layer["stride"]) > 1 for layer in convolutions)
    assert any(not layer["bias"] for layer in convolutions)
    assert any("stride" in layer for layer in layers if "pool" in layer.get("kind", ""))
