"""The CuPy module: the NumPy module's in-place step on a GPU, with each layer's elementwise work fused.

A step is the matrix products (cuBLAS, through ``cupy.matmul`` with ``out=``) and, per layer, one
``cupy.ElementwiseKernel`` that adds the bias and applies the activation (forward) or multiplies
the incoming gradient by the activation's derivative (backward); the output layer's kernel also
writes the loss terms and the error term. The kernels' bodies are CUDA C printed from the same
SymPy expressions that the NumPy module prints as NumPy calls (see cuda.py). Generating the module
needs neither CuPy nor a GPU; running it needs both.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import sympy as sp
from sympy import HadamardProduct
from sympy.matrices.expressions.special import OneMatrix

from symbp import __version__
from symbp.errors import SymbpError
from symbp.registry.calculus import a_vec, g_vec
from symbp.registry.rules import z_vec
from symbp.render.code.backends.cuda import PREAMBLE, Kernel, plan
from symbp.render.code.numpy_module import (
    MARKER,
    MaskView,
    activation_parts,
    architecture,
    incoming_first,
    index_free,
    likely_causes,
    output_block,
    param_views,
    spec_digest,
    wrapped,
)
from symbp.render.code.printing import numpy_code
from symbp.render.code.runtime_source import import_block, runtime_source
from symbp.render.templating import render
from symbp.symbolic.dropout import dropout_layers
from symbp.symbolic.layernorm import refuse_normalization
from symbp.symbolic.network import Layer, Network, build_network, n_samples
from symbp.symbolic.penalties import refuse_penalties
from symbp.symbolic.windows import refuse_windows

# The runtime the module trains with, copied verbatim as into the NumPy module: the same loop and update rules.
CUPY_RUNTIME = ("optimizers", "training")
# Added for networks with dropout: the NumPy module's mask draws and training steps with masks.
DROPOUT_RUNTIME = ("masks", "dropout")

# The name the kernels give the batch's size (n and names starting with _ are CuPy's own).
ROWS = "rows"
# The stand-ins of the output block (numpy_module.output_block) and of a hidden layer's derivative.
OUTPUT, TARGET, PRE = sp.symbols("__output__ __target__ __preactivation__", real=True)
INCOMING, HIDDEN_OUTPUT, HIDDEN_PRE = sp.symbols("__incoming__ __output__ __pre__", real=True)


@dataclass(frozen=True)
class MatMul:
    """out = left @ right (or, with sum_rows, the sum of right's rows: a bias's gradient)."""

    out: str
    left: str
    right: str
    comment: str = ""
    sum_rows: bool = False


def _symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def _bias_added(layer: Layer) -> sp.Expr:
    """Z = P + b, P being the product already in the workspace."""
    product = _symbol(f"P{layer.index}")
    return product + _symbol(layer.bias_row.name) if layer.bias_row is not None else product


def _layer_shapes(layer: Layer) -> dict:
    shapes = {f"P{layer.index}": (None, layer.units), layer.preactivation_symbol.name: (None, layer.units),
              layer.output.name: (None, layer.units), f"G{layer.index}": (None, layer.units)}
    if layer.bias_row is not None:
        shapes[layer.bias_row.name] = (layer.units,)
    return shapes


def _mask(layer: Layer):
    """The dropout mask on the layer's inputs (a layer input, not a parameter), or None."""
    return getattr(layer, "mask", None)


def _check_dense(layer: Layer) -> None:
    """The products below are the layer's own pullbacks, as the symbolic model derives them: a dense layer's,
    on its inputs or (dropout) on its inputs times their mask, D = A o M."""
    mask = _mask(layer)
    inputs = layer.inputs if mask is None else layer.dropped_inputs
    product = inputs * layer.weight
    passed_down = layer.delta * layer.weight.T
    expected = {
        "preactivation": product + OneMatrix(n_samples, 1) * layer.bias_row if layer.bias_row is not None else product,
        "weight_gradient": inputs.T * layer.delta,
        "input_gradient": passed_down if mask is None else HadamardProduct(passed_down, mask),
    }
    if layer.bias_row is not None:
        expected["bias_gradient"] = OneMatrix(1, n_samples) * layer.delta
    for role, expr in expected.items():
        # Compared as SymPy writes each in its plainest form: (A o M)^T and A^T o M^T are one matrix.
        if getattr(layer, role).doit() != expr.doit():
            raise ValueError(f"layer {layer.index}: the CuPy module expects {role} = {expr}, "
                             f"got {getattr(layer, role)}")


def _hidden_forward(layer: Layer, shapes: dict) -> list:
    """The kernels (and any row-wise reductions) of a hidden layer's forward pass."""
    pre, output = _symbol(layer.preactivation_symbol.name), _symbol(layer.output.name)
    # The NumPy module's lines: what the activation would compute twice (the sigmoid's exp(-|z|)) is a local.
    shared, value = activation_parts(layer, pre)
    assignments = [(pre, _bias_added(layer)), *shared, (output, value)]
    wanted = [output]
    if _symbol(layer.preactivation_symbol.name) in _hidden_backward_expr(layer).free_symbols:
        wanted.append(pre)
    return plan(f"layer{layer.index}_forward", assignments, _product_and_bias(layer), {}, wanted, shapes)


def _product_and_bias(layer: Layer) -> dict:
    """The arrays a layer's first kernel reads: its matrix product P and its bias b (if it has one)."""
    arrays = {_symbol(f"P{layer.index}"): f"P{layer.index}"}
    if layer.bias_row is not None:
        arrays[_symbol(layer.bias_row.name)] = layer.bias_row.name
    return arrays


def _hidden_backward_expr(layer: Layer, mask=None) -> sp.Expr:
    """delta = G * phi'(...), over the incoming gradient G, the layer's output A and pre-activation Z; with
    the mask M of the layer above on these outputs, the gradient that reaches them is G o M."""
    vjp = index_free(incoming_first(layer.calculus.vjp), {g_vec: INCOMING, a_vec: HIDDEN_OUTPUT, z_vec: HIDDEN_PRE})
    incoming = _symbol(f"G{layer.index}")
    return vjp.xreplace({INCOMING: incoming if mask is None else incoming * _symbol(mask.name),
                         HIDDEN_OUTPUT: _symbol(layer.output.name),
                         HIDDEN_PRE: _symbol(layer.preactivation_symbol.name)})


def _hidden_backward(layer: Layer, above: Layer, shapes: dict) -> list:
    mask = _mask(above)
    names = [f"G{layer.index}", layer.output.name, layer.preactivation_symbol.name, *([mask.name] if mask else [])]
    delta = _symbol(layer.delta.name)
    shapes[delta.name] = (None, layer.units)
    return plan(f"layer{layer.index}_backward", [(delta, _hidden_backward_expr(layer, mask))],
                {_symbol(name): name for name in names}, {}, [delta], shapes)


def _dropout_stages(layer: Layer, shapes: dict) -> list:
    """The training step's D = A o M, the layer's inputs times their mask, which its product and its weight's
    gradient read (forward, loss and predict take every mask as ones: the plain inputs)."""
    inputs, mask, dropped = _symbol(layer.inputs.name), _symbol(layer.mask.name), _symbol(f"D{layer.index}")
    shapes[mask.name] = shapes[dropped.name] = shapes[inputs.name] = (None, layer.fan_in)
    return plan(f"layer{layer.index}_dropout", [(dropped, inputs * mask)],
                {inputs: layer.inputs.name, mask: layer.mask.name}, {}, [dropped], shapes)


def _step_inputs(layer: Layer) -> str:
    """What the training step's product for the layer reads: its inputs, or with dropout D = A o M."""
    return layer.inputs.name if _mask(layer) is None else f"D{layer.index}"


def _output_stages(network: Network, shapes: dict, *, with_loss: bool, with_delta: bool, name: str) -> list:
    """The output layer's kernels: activation, loss terms and error term from one output block."""
    last = network.layers[-1]
    block = output_block(network, with_loss=with_loss, with_delta=with_delta)
    output = _symbol(last.output.name)
    rename = {OUTPUT: output, PRE: _symbol(last.preactivation_symbol.name), TARGET: _symbol("Y")}
    assignments = [(rename[PRE], _bias_added(last))]
    for line in block.lines:
        target = output if line.target == last.output.name else _symbol(line.target)
        assignments.append((target, line.expr.xreplace(rename)))
    wanted = []
    if with_loss:
        assignments.append((_symbol("terms"), block.terms_expr.xreplace(rename)))
        wanted.append(_symbol("terms"))
    if with_delta:
        delta = _symbol(last.delta.name)
        assignments.append((delta, block.delta_expr.xreplace(rename)))
        wanted.append(delta)
    if not wanted:
        wanted = [output]
    arrays = {**_product_and_bias(last), _symbol("Y"): "Y"}
    shapes["Y"] = (None, last.units)
    return plan(name, assignments, arrays, {n_samples: ROWS}, wanted, shapes)


def _forward_products(network: Network, training: bool = False) -> dict:
    """Each layer's P = A W; with training, P = D W for a layer with dropout (D = A o M)."""
    products = {}
    for layer in network.layers:
        inputs = _step_inputs(layer) if training else layer.inputs.name
        products[layer.index] = MatMul(f"P{layer.index}", inputs, layer.weight.name,
                                       f"P{layer.index} = {inputs} {layer.weight.name}")
    return products


def _backward_products(network: Network) -> dict:
    """Per layer: its parameters' gradients, then the gradient it passes to the layer below."""
    products = {}
    for layer in network.layers:
        inputs = _step_inputs(layer)
        steps = [MatMul(f"grad_{layer.weight.name}", f"{inputs}.T", layer.delta.name,
                        f"dL/d{layer.weight.name} = {inputs}^T delta{layer.index}")]
        if layer.bias_row is not None:
            steps.append(MatMul(f"grad_{layer.bias_row.name}", "", layer.delta.name,
                                f"dL/d{layer.bias_row.name} = 1^T delta{layer.index}", sum_rows=True))
        if layer.index > 1:
            steps.append(MatMul(f"G{layer.index - 1}", layer.delta.name, f"{layer.weight.name}.T",
                                f"dL/dA{layer.index - 1} = delta{layer.index} {layer.weight.name}^T"))
        products[layer.index] = steps
    return products


def _stage_lines(stages: list) -> list[str]:
    """A kernel launch, or a row-wise reduction by CuPy, per stage."""
    lines = []
    for stage in stages:
        if isinstance(stage, Kernel):
            lines.append(f"_{stage.name}({stage.arguments})")
        else:
            lines.append(f"{stage.target} = cp.{stage.kind}({stage.argument}, axis=1, keepdims=True)")
    return lines


def _product_lines(product: MatMul) -> list[str]:
    if product.sum_rows:
        # A sum over the batch as a matrix-vector product: cuBLAS does it faster than a reduction.
        return [f"# {product.comment}", f"cp.matmul(ones, {product.right}, out={product.out})"]
    return [f"# {product.comment}", f"cp.matmul({product.left}, {product.right}, out={product.out})"]


def _bodies(network: Network, hidden: dict, backward: dict, outputs: dict, dropping: dict) -> dict:
    """The lines of the forward computation, the loss and the training step, in order."""
    forward, step = [], []
    evaluated, trained = _forward_products(network), _forward_products(network, training=True)
    for layer in network.layers:
        forward += _product_lines(evaluated[layer.index])
        if layer.index in dropping:
            step.append(f"# D{layer.index} = {layer.inputs.name} o {layer.mask.name}: the inputs that the step keeps")
            step += _stage_lines(dropping[layer.index])
        step += _product_lines(trained[layer.index])
        if layer is not network.layers[-1]:
            forward += _stage_lines(hidden[layer.index])
            step += _stage_lines(hidden[layer.index])
    last = network.layers[-1]
    step += [f"# The output layer: activation, loss terms and error term dL/dZ{last.index}."]
    step += _stage_lines(outputs["step"])
    step.append("value = " + ("" if network.loss_coefficient == 1 else
                              f"{numpy_code(network.loss_coefficient, names={'N': ROWS})} * ") + "float(cp.sum(terms))")
    products = _backward_products(network)
    for layer in reversed(network.layers):
        for product in products[layer.index]:
            step += _product_lines(product)
        if layer.index > 1:
            below = network.layers[layer.index - 2]
            kept = f" o {layer.mask.name}" if _mask(layer) is not None else ""
            step.append(f"# dL/dZ{below.index} = (dL/dA{below.index}{kept}) * {below.calculus.short_name}'")
            step += _stage_lines(backward[below.index])
    return {"forward": forward + _stage_lines(outputs["forward"]),
            "loss": forward + _stage_lines(outputs["loss"]), "step": step}


def _unpack_lines(network: Network) -> list[str]:
    """W1, b1 = params['W1'], params['b1']: a line per layer."""
    return [f"{', '.join(p.name for p in layer.parameters)} = "
            f"{', '.join(f'params[{p.name!r}]' for p in layer.parameters)}" for layer in network.layers]


def _workspace(stages: list, shapes: dict, extra: list[str]) -> dict:
    """Every array the stages write (reductions allocate their own), with its shape."""
    written = list(extra)
    for stage in stages:
        if isinstance(stage, Kernel):
            written += [name for name in stage.outputs if name not in written]
    return {name: shapes[name] for name in written}


def _shape_code(shape: tuple) -> str:
    parts = [str(size) for size in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def module_context(network: Network) -> dict:
    for layer in network.layers:
        _check_dense(layer)
    spec = network.spec
    shapes: dict = {"ones": (None,)}
    for layer in network.layers:
        shapes.update(_layer_shapes(layer))
    hidden = {layer.index: _hidden_forward(layer, shapes) for layer in network.layers[:-1]}
    dropping = {layer.index: _dropout_stages(layer, shapes) for layer in dropout_layers(network)}
    backward = {layer.index: _hidden_backward(layer, network.layers[layer.index], shapes)
                for layer in network.layers[:-1]}
    dropout_stages = [s for stages in dropping.values() for s in stages]
    # Each computation names its own temporaries: one shape table each.
    variant_shapes = {kind: dict(shapes) for kind in ("forward", "loss", "step")}
    outputs = {
        kind: _output_stages(network, variant_shapes[kind], with_loss=kind != "forward", with_delta=kind == "step",
                             name=f"output_{kind}")
        for kind in variant_shapes
    }
    products = [f"P{layer.index}" for layer in network.layers]
    forward_stages = [s for stages in hidden.values() for s in stages]
    workspaces = {
        "forward": _workspace(forward_stages + outputs["forward"], variant_shapes["forward"], products),
        "loss": _workspace(forward_stages + outputs["loss"], variant_shapes["loss"], products),
        "step": _workspace(dropout_stages + forward_stages + outputs["step"]
                           + [s for st in backward.values() for s in st],
                           variant_shapes["step"],
                           products + [f"G{layer.index}" for layer in network.layers[:-1]]
                           + (["ones"] if any(layer.bias_row is not None for layer in network.layers) else [])),
    }
    for kind in workspaces:
        workspaces[kind] = {name: _shape_code(shape) for name, shape in workspaces[kind].items()}
    gradients = {}
    for layer in network.layers:
        gradients[f"grad_{layer.weight.name}"] = _shape_code((layer.fan_in, layer.units))
        if layer.bias_row is not None:
            gradients[f"grad_{layer.bias_row.name}"] = _shape_code((layer.units,))
    workspaces["step"].update(gradients)
    kernels = {}
    for stages in [*dropping.values(), *hidden.values(), *backward.values(), *outputs.values()]:
        for stage in stages:
            if isinstance(stage, Kernel):
                kernels[stage.name] = stage
    coefficient = network.loss_coefficient
    dropped = dropout_layers(network)
    runtime_modules = CUPY_RUNTIME + DROPOUT_RUNTIME if dropped else CUPY_RUNTIME
    needs = {}
    for kind, stages in outputs.items():
        everything = forward_stages + stages + ([s for st in backward.values() for s in st] if kind == "step" else [])
        scalars = {name for stage in everything if isinstance(stage, Kernel) for name in stage.scalars}
        needs[kind] = scalars | ({"T"} if scalars else set())
        if kind != "forward" and coefficient.has(n_samples):
            needs[kind].add(ROWS)
    return {
        "needs": needs,
        "bodies": _bodies(network, hidden, backward, outputs, dropping),
        "unpack_lines": _unpack_lines(network),
        "spec": spec,
        "marker": MARKER,
        "version": __version__,
        "digest": spec_digest(network),
        "architecture": architecture(network),
        "params": param_views(network),
        "draws": spec.training.init != "zeros" and any(
            p.explicit is None and p.kind != "bias" for p in param_views(network)),
        "title": textwrap.fill(f"{spec.title or spec.name}: a CuPy (GPU) trainer for the network in spec "
                               f"'{spec.name}'.", 96),
        "layers": network.layers,
        "last": network.layers[-1],
        "hidden": hidden,
        "backward": backward,
        "outputs": outputs,
        "forward_products": _forward_products(network),
        "backward_products": _backward_products(network),
        "workspaces": workspaces,
        "kernels": list(kernels.values()),
        "preamble": PREAMBLE,
        "prediction": network.prediction.name,
        "loss_coefficient": numpy_code(coefficient, names={"N": "rows"}),
        "loss_coefficient_is_one": coefficient == 1,
        "loss_name": network.output.loss.short_name,
        "training": spec.training,
        "likely_causes": [wrapped(cause) for cause in likely_causes(network)],
        "runtime": runtime_source(runtime_modules).parts,
        "imports": import_block("import math", "import numpy as np", modules=runtime_modules),
        "dropout": [MaskView(layer.mask.name, layer.index, layer.rate, layer.fan_in) for layer in dropped],
        "mask_names": [layer.mask.name for layer in dropped],
    }


def generate_cupy_module(spec_source) -> str:
    """The source text of the CuPy module for a spec: the NumPy module's step, fused into GPU kernels."""
    network = spec_source if isinstance(spec_source, Network) else build_network(spec_source)
    refuse_normalization(network.spec, "the CuPy backend")
    refuse_penalties(network.spec, "the CuPy backend")
    _refuse_residual(network.spec)
    refuse_windows(network.spec, "the CuPy backend")
    return render("cupy/module.py.j2", **module_context(network))


def _refuse_residual(spec) -> None:
    """One line naming the first residual layer: the kernels add no skip."""
    for index, layer_spec in enumerate(spec.layers):
        if getattr(layer_spec, "residual", False):
            raise SymbpError(f"layers[{index}].residual: the CuPy backend has no residual layers yet; use the "
                             "NumPy module (symbp generate, check, train), or remove residual")
