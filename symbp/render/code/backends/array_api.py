"""The array-API module: the NumPy module's derivation, printed for any array library.

The lines are the same SymPy expressions as the NumPy module's forward pass, loss and backward
pass (codegen builds them); only the printer differs, so the two modules compute the same steps.
There is no in-place step: every function is pure, which is what jax.jit and torch.compile trace.
"""

from __future__ import annotations

import textwrap

from symbp import __version__
from symbp.registry.calculus import a_vec, g_vec
from symbp.registry.rules import z, z_vec
from symbp.render.code.backends.printing import array_api_code
from symbp.render.code.numpy_module import (
    MARKER,
    Line,
    OutputBlock,
    _activation_comment,
    _architecture,
    _incoming_first,
    _likely_causes,
    _loss_comment,
    _output_block,
    _params,
    _wrapped,
    spec_digest,
)
from symbp.render.templating import render
from symbp.symbolic.network import Network, build_network, n_samples
from symbp.symbolic.penalties import refuse_penalties


def _code(expr, bindings: dict | None = None, arrays=()) -> str:
    return array_api_code(expr, bindings, names={"N": "n"}, arrays=arrays)


def _hidden_lines(network: Network) -> list[Line]:
    lines = []
    for layer in network.layers:
        lines.append(Line(layer.preactivation_symbol.name, _code(layer.preactivation)))
        if layer is network.layers[-1]:
            break
        calculus = layer.calculus
        forward = calculus.numeric_forward
        bindings = {z_vec: layer.preactivation_symbol} if calculus.rowwise else {z: layer.preactivation_symbol}
        lines.append(Line(layer.output.name, _code(forward, bindings), _activation_comment(layer)))
    return lines


def _reprinted(block: OutputBlock) -> list[Line]:
    """The output block's lines (codegen's, with their shared subexpressions) printed for the array API."""
    return [Line(line.target, _code(line.expr, block.bindings, block.temporaries), line.comment, line.expr)
            for line in block.lines]


def _total(block: OutputBlock, terms) -> str:
    """Code for the sum of the loss terms: sum(t * t) when they are the square of a temporary t."""
    if terms.is_Pow and terms.exp == 2 and terms.base in block.temporaries:
        return f"xp.sum({terms.base} * {terms.base})"
    return f"xp.sum({_code(terms, block.bindings, block.temporaries)})"


def _backward_lines(network: Network, block: OutputBlock) -> list[Line]:
    last = network.layers[-1]
    lines = [Line(last.delta.name, _code(block.delta_expr, block.bindings, block.temporaries),
                  f"dL/dZ{last.index}: {network.output.loss.short_name} through {last.calculus.short_name}")]
    for layer in reversed(network.layers):
        for parameter in layer.parameters:
            lines.append(Line(f"grad_{parameter.name}", _code(layer.gradient(parameter)), f"dL/d{parameter.name}"))
        if layer.index == 1:
            break
        previous = network.layers[layer.index - 2]
        bindings = {a_vec: previous.output, z_vec: previous.preactivation_symbol, g_vec: layer.input_gradient}
        lines.append(Line(previous.delta.name, _code(_incoming_first(previous.calculus.vjp), bindings),
                          f"dL/dZ{previous.index} = (dL/dA{previous.index}) * {previous.calculus.short_name}'"))
    return lines


def _needs_dtype(lines: list[Line]) -> bool:
    return any(getattr(line.code, "needs_dtype", False) for line in lines)


def module_context(network: Network) -> dict:
    spec = network.spec
    hidden = _hidden_lines(network)
    prediction = _output_block(network, with_loss=False, with_delta=False)
    for_loss = _output_block(network, with_loss=True, with_delta=False)
    for_gradient = _output_block(network, with_loss=True, with_delta=True)
    coefficient = network.loss_coefficient
    params = _params(network)
    forward_lines = hidden + _reprinted(prediction)
    loss_lines = hidden + _reprinted(for_loss)
    gradient_lines = hidden + _reprinted(for_gradient) + _backward_lines(network, for_gradient)
    return {
        "spec": spec,
        "marker": MARKER,
        "version": __version__,
        "digest": spec_digest(network),
        "architecture": _architecture(network),
        "params": params,
        "title": textwrap.fill(f"{spec.title or spec.name}: an array-API trainer for the network in spec "
                               f"'{spec.name}'.", 96),
        # init_params needs its random generator only when some weight is drawn rather than given.
        "draws": spec.training.init != "zeros" and any(p.explicit is None and p.kind != "bias" for p in params),
        "forward_lines": forward_lines,
        "loss_lines": loss_lines,
        "gradient_forward_lines": hidden + _reprinted(for_gradient),
        "backward_lines": _backward_lines(network, for_gradient),
        "forward_needs_dtype": _needs_dtype(forward_lines),
        "loss_needs_dtype": _needs_dtype(loss_lines),
        "gradient_needs_dtype": _needs_dtype(gradient_lines),
        "loss_total": _total(for_loss, for_loss.terms_expr),
        "gradient_loss_total": _total(for_gradient, for_gradient.terms_expr),
        "prediction": network.prediction.name,
        "loss_coefficient": _code(coefficient),
        "loss_coefficient_is_one": coefficient == 1,
        "loss_uses_n": coefficient.has(n_samples),
        "loss_name": network.output.loss.short_name,
        "loss_comment": _loss_comment(network),
        "training": spec.training,
        "likely_causes": [_wrapped(cause) for cause in _likely_causes(network)],
    }


def generate_array_api_module(spec_source) -> str:
    """The source text of the array-API module for a spec: the NumPy module's steps, on any array library."""
    network = spec_source if isinstance(spec_source, Network) else build_network(spec_source)
    refuse_penalties(network.spec, "the array-API backend")
    return render("array_api/module.py.j2", **module_context(network))


