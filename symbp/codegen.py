"""Turns the symbolic network into the plain data the NumPy module template lays out."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import sympy as sp

from symbp import __version__
from symbp.calculus import a_vec, g_vec
from symbp.network import Layer, Network, build_network, n_samples
from symbp.printing import numpy_code
from symbp.rules import y, y_vec, yhat, z, z_vec
from symbp.templating import render

MARKER = "# symbp-generated-module"


@dataclass(frozen=True)
class Line:
    target: str
    code: str
    comment: str = ""


@dataclass(frozen=True)
class ParamView:
    name: str
    shape: tuple[int, ...]
    kind: str  # "weight" or "bias"
    fan_in: int
    fan_out: int
    explicit: list | None


def spec_digest(network: Network) -> str:
    canonical = json.dumps(network.spec.canonical(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _code(expr, bindings: dict | None = None) -> str:
    return numpy_code(expr, bindings, names={"N": "n"})


def _activation_code(layer: Layer) -> str:
    calculus = layer.calculus
    if calculus.rowwise:
        return _code(calculus.forward, {z_vec: layer.preactivation_symbol})
    return _code(calculus.forward, {z: layer.preactivation_symbol})


def _incoming_first(vjp: sp.Expr) -> sp.Expr:
    """Writes g[j] * phi' with the incoming gradient first, the way backprop is read aloud."""
    local, incoming = vjp.as_independent(g_vec)
    if local == 1 or not isinstance(vjp, sp.Mul):
        return vjp
    return sp.Mul(incoming, *sp.Mul.make_args(local), evaluate=False)


def _layer_bindings(layer: Layer) -> dict:
    return {a_vec: layer.output, z_vec: layer.preactivation_symbol}


def _forward_lines(network: Network) -> list[Line]:
    lines = []
    for layer in network.layers:
        lines.append(Line(layer.preactivation_symbol.name, _code(layer.preactivation)))
        lines.append(Line(layer.output.name, _activation_code(layer), f"{layer.calculus.name}"))
    return lines


def _backward_lines(network: Network) -> list[Line]:
    lines = []
    last = network.layers[-1]
    output_delta = network.loss_coefficient * network.output.delta
    lines.append(
        Line(
            last.delta.name,
            _code(output_delta, {**_layer_bindings(last), y_vec: network.targets}),
            f"dL/dZ{last.index}: {network.spec.loss.name} through {last.calculus.name}",
        )
    )
    for layer in reversed(network.layers):
        lines.append(Line(f"grad_{layer.weight.name}", _code(layer.weight_gradient), f"dL/d{layer.weight.name}"))
        if layer.bias_gradient is not None:
            lines.append(Line(f"grad_{layer.bias_row.name}", _code(layer.bias_gradient), f"dL/d{layer.bias_row.name}"))
        if layer.index == 1:
            break
        previous = network.layers[layer.index - 2]
        hidden_delta = _incoming_first(previous.calculus.vjp)
        lines.append(
            Line(
                previous.delta.name,
                _code(hidden_delta, {**_layer_bindings(previous), g_vec: layer.input_gradient}),
                f"dL/dZ{previous.index} = (dL/dA{previous.index}) * {previous.calculus.name}'",
            )
        )
    return lines


def _params(network: Network) -> list[ParamView]:
    views = []
    for layer, layer_spec in zip(network.layers, network.spec.layers):
        views.append(
            ParamView(
                layer.weight.name,
                (layer.fan_in, layer.units),
                "weight",
                layer.fan_in,
                layer.units,
                [list(row) for row in layer_spec.weights] if layer_spec.weights else None,
            )
        )
        if layer.bias_row is not None:
            views.append(
                ParamView(
                    layer.bias_row.name,
                    (layer.units,),
                    "bias",
                    layer.fan_in,
                    layer.units,
                    list(layer_spec.biases) if layer_spec.biases else None,
                )
            )
    return views


def _architecture(network: Network) -> str:
    parts = [str(network.spec.inputs)]
    for layer in network.layers:
        parts.append(f"{layer.units} ({layer.calculus.name}{'' if layer.bias else ', no bias'})")
    return " -> ".join(parts)


def module_context(network: Network) -> dict:
    spec = network.spec
    loss_value = network.loss_coefficient * sp.Symbol("__loss_sum__")
    elementwise_loss = _code(spec_loss_expr(network), {yhat: network.prediction, y: network.targets})
    training = spec.training
    return {
        "spec": spec,
        "marker": MARKER,
        "version": __version__,
        "digest": spec_digest(network),
        "architecture": _architecture(network),
        "params": _params(network),
        "layers": network.layers,
        "forward_lines": _forward_lines(network),
        "backward_lines": _backward_lines(network),
        "prediction": network.prediction.name,
        "loss_coefficient": _code(network.loss_coefficient),
        "loss_coefficient_is_one": network.loss_coefficient == 1,
        "loss_uses_n": loss_value.has(n_samples),
        "elementwise_loss": elementwise_loss,
        "training": training,
    }


def spec_loss_expr(network: Network) -> sp.Expr:
    return network.output.loss.expr


def generate_module(spec_source) -> str:
    """The source text of the standalone NumPy module for a spec."""
    network = spec_source if isinstance(spec_source, Network) else build_network(spec_source)
    return render("numpy/module.py.j2", **module_context(network))
