"""Drawn architectures mixing batch normalisation with every other kind (dense, residual, dropout with fixed masks,
layer normalisation) and weight penalties: the generated module's loss and gradient equal PyTorch autograd's
(``torch.nn.functional.batch_norm``, what ``nn.BatchNorm1d`` computes) in float64, in training mode (the batch's
statistics) and in evaluation mode (drawn running statistics).

``SYMBP_BATCH_DRAWS`` sets how many are drawn (default 200), ``SYMBP_BATCH_SEED`` the seed (default 0).
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

DRAWS = int(os.environ.get("SYMBP_BATCH_DRAWS", "200"))
SEED = int(os.environ.get("SYMBP_BATCH_SEED", "0"))
_HIDDEN = ("tanh", "sigmoid", "relu", "softplus", "linear")
_EPSILONS = (None, 1e-3, 0.1)
_MOMENTA = (None, 0.5, 1.0)
_KINDS = ("dense", "residual", "dropout", "layer", "batch", "batch")


def _normalised(layer: dict, rng: random.Random, how: str) -> dict:
    layer = {key: value for key, value in layer.items() if key not in ("bias", "residual")}
    layer["normalization"] = how
    epsilon = rng.choice(_EPSILONS)
    if epsilon is not None:
        layer["epsilon"] = epsilon
    momentum = rng.choice(_MOMENTA)
    if how == "batch" and momentum is not None:
        layer["momentum"] = momentum
    return layer


def _drawn(draw: int) -> dict:
    rng = random.Random(SEED * 100_003 + draw)
    inputs = rng.randint(1, 4)
    layers, width = [], inputs
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(_KINDS)
        units = width if kind == "residual" else rng.randint(2 if kind == "layer" else 1, 4)
        layer = {"units": units, "activation": rng.choice(_HIDDEN), "residual": kind == "residual",
                 "bias": rng.random() < 0.8}
        if kind in ("layer", "batch"):
            layer = _normalised(layer, rng, kind)
        if kind == "dropout":
            layer["dropout"] = rng.choice((0.2, 0.5))
        penalty = rng.choice(_PENALTIES)
        if penalty:
            layer["kernel_regularizer"] = penalty
        layers.append(layer)
        width = units
    activation, loss = rng.choice(_OUTPUTS)
    units = 2 + rng.randint(0, 2) if activation == "softmax" else rng.randint(1, 3)
    output = {"units": units, "activation": activation}
    if rng.random() < 0.3 or not any(layer.get("normalization") == "batch" for layer in layers):
        output = _normalised(output, rng, "batch")
    if rng.random() < 0.5:
        output["kernel_regularizer"] = rng.choice(_PENALTIES[1:])
    reduction = rng.choice(("mean", "sum"))
    return {"name": f"drawn{draw}", "inputs": inputs, "layers": [*layers, output],
            "loss": {"name": loss, "reduction": reduction, "scale": 0.5 if loss == "squared_error" else 1.0}}


@pytest.mark.parametrize("draw", range(DRAWS))
def test_a_drawn_architecture_with_batch_norm_has_pytorchs_gradient_in_both_modes(draw):
    torch = pytest.importorskip("torch")
    spec = load_spec(_drawn(draw))
    module = load_module_from_source(generate_module(spec), spec.name)
    params, X, Y, rng = drawn_problem(spec, module, draw)
    for name in module.STATISTICS:
        shape = params[name].shape
        params[name] = rng.uniform(0.3, 2.0, shape) if name.startswith("running_var") else rng.normal(0, 0.5, shape)
    masks = module.draw_masks(rng, X.shape[0]) if hasattr(module, "DROPOUT") else None
    for training in (True, False):
        # Training mode with the drawn dropout masks held fixed; evaluation mode as the network predicts.
        with_masks = {"masks": masks} if masks is not None and training else {}
        value, grads = module.loss_and_grad(params, X, Y, training=training, **with_masks)
        assert set(grads) == set(module.PARAMS)
        assert_pytorchs_loss_and_gradient(torch, spec, value, grads, params, X, Y,
                                          masks if training else None, "training" if training else "evaluation",
                                          training=training)


def test_the_draws_mix_batch_norm_with_every_kind_and_penalty():
    specs = [_drawn(draw) for draw in range(DRAWS)]
    layers = [layer for spec in specs for layer in spec["layers"]]
    batch = [layer for layer in layers if layer.get("normalization") == "batch"]
    assert all(any(layer.get("normalization") == "batch" for layer in spec["layers"]) for spec in specs)
    assert len(batch) >= DRAWS
    assert sum(layer.get("normalization") == "layer" for layer in layers) >= DRAWS // 8
    assert sum(layer.get("residual", False) for layer in layers) >= DRAWS // 8
    assert sum("dropout" in layer for layer in layers) >= DRAWS // 8
    assert sum(not layer.get("residual") and "normalization" not in layer and "dropout" not in layer
               for layer in layers) >= DRAWS // 4
    assert any("kernel_regularizer" in layer for layer in batch)
    assert {layer.get("epsilon") for layer in batch} == set(_EPSILONS)
    assert {layer.get("momentum") for layer in batch} == set(_MOMENTA)
    assert any(layer["units"] == 1 for layer in batch)
