"""The CuPy module: the NumPy module's in-place step on a GPU, with each layer's elementwise work fused.

A step is the matrix products (cuBLAS, through ``cupy.matmul`` with ``out=``) and, per layer, one
``cupy.ElementwiseKernel`` that adds the bias (and a residual layer's input) and applies the
activation (forward) or multiplies the incoming gradient (with what a residual layer's skip or a
dropout mask adds to it) by the activation's derivative (backward); the output layer's kernel also
writes the loss terms and the error term. The kernels' bodies are CUDA C printed from the same
SymPy expressions that the NumPy module prints as NumPy calls (see cuda.py). Layer kinds that
compute arrays of their own on the way (normalisation, convolution, pooling) bring their steps
through cupy_steps.py; weight penalties are a kernel each for their value and their gradient.
Generating the module needs neither CuPy nor a GPU; running it needs both.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import sympy as sp
from sympy import HadamardProduct, MatAdd
from sympy.matrices.expressions.special import OneMatrix

from symbp import __version__
from symbp.registry.calculus import a_vec, g_vec
from symbp.registry.rules import z_vec
from symbp.render.code.backends.cuda import PREAMBLE, Kernel, plan
from symbp.render.code.backends.cupy_steps import (
    ROWS,
    elementwise,
    kernels_in,
    line_code,
    register_shapes,
    stage_lines,
    stages_of,
    uses_rows,
)
from symbp.render.code.numpy_module import (
    FIXED_STARTS,
    MARKER,
    MaskView,
    activation_parts,
    architecture_lines,
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
from symbp.symbolic.batchnorm import batch_norm_layers
from symbp.symbolic.dropout import dropout_layers
from symbp.symbolic.network import Layer, Network, build_network, n_samples
from symbp.symbolic.penalties import weight_penalties
from symbp.symbolic.residual import ResidualLayer
from symbp.symbolic.windows import window_layers

# The runtime the module trains with, copied verbatim as into the NumPy module: the same loop and update rules.
CUPY_RUNTIME = ("optimizers", "training")
# Added where the network needs them, as into the NumPy module: the mask draws and training steps of dropout,
# the running statistics of batch normalisation, and im2col for convolution and pooling (on CuPy's arrays).
OPTIONAL_RUNTIME = ("masks", "dropout", "batchnorm", "windows")
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


@dataclass(frozen=True)
class PenaltyKernels:
    """A penalised weight's two kernels: its penalty on each entry, and its gradient with the penalty's added."""

    parameter: str
    terms: Kernel
    gradient: Kernel


def _symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def own_steps(layer: Layer) -> bool:
    """Whether a layer kind computes arrays of its own on the way to Z (normalisation, windows): cupy_steps.py
    prints them. The others (dense, residual, dropout) are a matrix product and elementwise work around it."""
    return bool(getattr(layer, "forward_steps", ()))


def _terms(expr) -> tuple:
    return expr.args if isinstance(expr, MatAdd) else (expr,)


def _preactivation_expr(layer: Layer) -> sp.Expr:
    """Z over the product P already in the workspace: P + b for a dense layer, P + b + A for a residual one, as
    the layer's own pre-activation writes it with its product A W (or (A o M) W) held in P."""
    product = next(term for term in _terms(layer.preactivation) if layer.weight in term.atoms(sp.MatrixSymbol)
                   and not term.has(OneMatrix))
    return elementwise(layer.preactivation, products={product: _symbol(f"P{layer.index}")})


def _layer_shapes(layer: Layer) -> dict:
    shapes = {layer.preactivation_symbol.name: (None, layer.units), layer.output.name: (None, layer.units),
              f"G{layer.index}": (None, layer.units), layer.delta.name: (None, layer.units),
              layer.inputs.name: (None, layer.fan_in)}
    if not own_steps(layer):
        shapes[f"P{layer.index}"] = (None, layer.units)
        if layer.bias_row is not None:
            shapes[layer.bias_row.name] = (layer.units,)
    return shapes


def _mask(layer: Layer):
    """The dropout mask on the layer's inputs (a layer input, not a parameter), or None."""
    return getattr(layer, "mask", None)


def _check_dense(layer: Layer) -> None:
    """The products below are the layer's own pullbacks, as the symbolic model derives them: a dense layer's,
    on its inputs or (dropout) on its inputs times their mask, D = A o M; a residual layer adds its input to Z
    and passes delta itself down beside delta W^T."""
    mask = _mask(layer)
    inputs = layer.inputs if mask is None else layer.dropped_inputs
    product = inputs * layer.weight
    passed_down = layer.delta * layer.weight.T
    skip = isinstance(layer, ResidualLayer)
    preactivation = product + OneMatrix(n_samples, 1) * layer.bias_row if layer.bias_row is not None else product
    expected = {
        "preactivation": preactivation + layer.inputs if skip else preactivation,
        "weight_gradient": inputs.T * layer.delta,
        "input_gradient": (passed_down + layer.delta if skip else passed_down) if mask is None
        else HadamardProduct(passed_down, mask),
    }
    if layer.bias_row is not None:
        expected["bias_gradient"] = OneMatrix(1, n_samples) * layer.delta
    for role, expr in expected.items():
        # Compared as SymPy writes each in its plainest form: (A o M)^T and A^T o M^T are one matrix.
        if getattr(layer, role).doit() != expr.doit():
            raise ValueError(f"layer {layer.index}: the CuPy module expects {role} = {expr}, "
                             f"got {getattr(layer, role)}")


def _activation_start(layer: Layer) -> list:
    """The assignments a layer's first kernel begins with: Z from the product (a dense-like layer), or none when
    Z is an array its own steps computed."""
    if own_steps(layer):
        return []
    return [(_symbol(layer.preactivation_symbol.name), _preactivation_expr(layer))]


def _arrays(assignments: list, scalars=(n_samples,)) -> dict:
    """Every symbol the assignments read and do not assign, as the array of the same name."""
    assigned = {target for target, _ in assignments}
    read = set().union(*(expr.free_symbols for _, expr in assignments)) - assigned - set(scalars)
    return {symbol: symbol.name for symbol in read}


def _hidden_forward(layer: Layer, above: Layer, shapes: dict) -> list:
    """The kernels (and any row-wise reductions) of a hidden layer's forward pass."""
    pre, output = _symbol(layer.preactivation_symbol.name), _symbol(layer.output.name)
    # The NumPy module's lines: what the activation would compute twice (the sigmoid's exp(-|z|)) is a local.
    shared, value = activation_parts(layer, pre)
    assignments = [*_activation_start(layer), *shared, (output, value)]
    wanted = [output]
    if not own_steps(layer) and pre in _hidden_backward_expr(layer, above).free_symbols:
        wanted.append(pre)
    return plan(f"layer{layer.index}_forward", assignments, _arrays(assignments), {}, wanted, shapes)


def _incoming(layer: Layer, above: Layer) -> sp.Expr:
    """dL/dA of a hidden layer, as its backward kernel reads it: the array G that the layer above's own steps
    computed, or, above a dense-like layer, its input gradient with the product delta W^T held in G (cuBLAS's),
    and what the layer adds elementwise: its mask (G o M), its skip (G + delta)."""
    incoming = _symbol(f"G{layer.index}")
    if own_steps(above):
        return incoming
    product = next(node for node in sp.preorder_traversal(above.input_gradient)
                   if isinstance(node, sp.MatMul) and above.weight.T in node.args)
    return elementwise(above.input_gradient, products={product: incoming})


def _hidden_backward_expr(layer: Layer, above: Layer) -> sp.Expr:
    """delta = dL/dA * phi'(...), over the layer's output A and pre-activation Z."""
    vjp = index_free(incoming_first(layer.calculus.vjp), {g_vec: INCOMING, a_vec: HIDDEN_OUTPUT, z_vec: HIDDEN_PRE})
    return vjp.xreplace({INCOMING: _incoming(layer, above), HIDDEN_OUTPUT: _symbol(layer.output.name),
                         HIDDEN_PRE: _symbol(layer.preactivation_symbol.name)})


def _hidden_backward(layer: Layer, above: Layer, shapes: dict) -> list:
    delta = _symbol(layer.delta.name)
    assignments = [(delta, _hidden_backward_expr(layer, above))]
    return plan(f"layer{layer.index}_backward", assignments, _arrays(assignments), {}, [delta], shapes)


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
    assignments = _activation_start(last)
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
    shapes["Y"] = (None, last.units)
    return plan(name, assignments, _arrays(assignments), {n_samples: ROWS}, wanted, shapes)


def _forward_products(network: Network, training: bool = False) -> dict:
    """Each dense-like layer's P = A W; with training, P = D W for a layer with dropout (D = A o M)."""
    products = {}
    for layer in network.layers:
        if own_steps(layer):
            continue
        inputs = _step_inputs(layer) if training else layer.inputs.name
        products[layer.index] = MatMul(f"P{layer.index}", inputs, layer.weight.name,
                                       f"P{layer.index} = {inputs} {layer.weight.name}")
    return products


def _backward_products(network: Network) -> dict:
    """Per dense-like layer: its parameters' gradients, then the product it passes to the layer below."""
    products = {}
    for layer in network.layers:
        if own_steps(layer):
            continue
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


def _product_lines(product: MatMul) -> list[str]:
    if product.sum_rows:
        # A sum over the batch as a matrix-vector product: cuBLAS does it faster than a reduction.
        return [f"# {product.comment}", f"cp.matmul(ones, {product.right}, out={product.out})"]
    return [f"# {product.comment}", f"cp.matmul({product.left}, {product.right}, out={product.out})"]


@dataclass(frozen=True)
class OwnSteps:
    """A layer kind's own stages (cupy_steps.py): forward to Z, and backward from delta to its gradients and
    the gradient it passes down, each with its comment."""

    forward: tuple
    backward: tuple

    @staticmethod
    def _opened(pairs) -> list:
        return [stage for _, stages in pairs for stage in stages]

    @property
    def forward_stages(self) -> list:
        return self._opened(self.forward)

    @property
    def backward_stages(self) -> list:
        return self._opened(self.backward)


def _own_steps(layer: Layer, shapes: dict) -> OwnSteps:
    matrices = []
    for step in (*layer.forward_steps, *layer.backward_steps):
        matrices += [step.target, *step.expr.atoms(sp.MatrixSymbol),
                     *(value for value in step.bindings.values() if isinstance(value, sp.MatrixSymbol))]
    for parameter in layer.parameters:
        shapes[parameter.name] = parameter.shape
        shapes[f"grad_{parameter.name}"] = parameter.shape
    register_shapes(shapes, *(m for m in matrices if m.name not in shapes))
    name = f"layer{layer.index}"

    def staged(target, expr, bindings, comment):
        target_name = target if isinstance(target, str) else target.name
        return comment, stages_of(f"{name}_{target_name}", target, expr, bindings, shapes)

    forward = tuple(staged(step.target, step.expr, step.bindings, step.comment) for step in layer.forward_steps)
    backward = [staged(step.target, step.expr, step.bindings, step.comment) for step in layer.backward_steps]
    backward += [staged(f"grad_{p.name}", layer.gradient(p), {}, f"dL/d{p.name}") for p in layer.parameters]
    if layer.index > 1:
        backward.append(staged(f"G{layer.index - 1}", layer.input_gradient, {}, f"dL/dA{layer.index - 1}"))
    return OwnSteps(forward, tuple(backward))


def _commented(pairs) -> list[str]:
    lines = []
    for comment, stages in pairs:
        lines.append(f"# {comment}")
        lines += stage_lines(stages)
    return lines


def _penalty_kernels(network: Network, shapes: dict) -> list[PenaltyKernels]:
    """Per penalised weight: a kernel writing l1 |w| + l2 w^2 for each entry (the loss adds their sum) and one
    adding the penalty's derivative, SymPy's, to the data's gradient."""
    kernels = []
    for penalty in weight_penalties(network):
        name = penalty.parameter.name
        weight, gradient = _symbol(name), _symbol(f"grad_{name}")
        shapes[name] = shapes[gradient.name] = penalty.parameter.shape
        terms, with_penalty = _symbol(f"penalty_{name}"), _symbol(f"penalised_grad_{name}")
        (terms_kernel,) = plan(f"penalty_{name}", [(terms, penalty.term())], {weight: name}, {}, [terms], shapes,
                               allocates=True)
        (gradient_kernel,) = plan(f"penalty_gradient_{name}", [(with_penalty, gradient + penalty.derivative())],
                                  {weight: name, gradient: gradient.name}, {}, [with_penalty], shapes,
                                  allocates=True)
        kernels.append(PenaltyKernels(name, terms_kernel, gradient_kernel))
    return kernels


def _bodies(network: Network, hidden: dict, backward: dict, outputs: dict, dropping: dict, own: dict,
            penalties: list[PenaltyKernels]) -> dict:
    """The lines of the forward computation, the loss and the training step, in order."""
    forward, step = [], []
    evaluated, trained = _forward_products(network), _forward_products(network, training=True)
    for layer in network.layers:
        if layer.index in own:
            lines = _commented(own[layer.index].forward)
            forward += lines
            step += lines
        else:
            forward += _product_lines(evaluated[layer.index])
            if layer.index in dropping:
                step.append(f"# D{layer.index} = {layer.inputs.name} o {layer.mask.name}: the inputs that the step "
                            "keeps")
                step += stage_lines(dropping[layer.index])
            step += _product_lines(trained[layer.index])
        if layer is not network.layers[-1]:
            forward += stage_lines(hidden[layer.index])
            step += stage_lines(hidden[layer.index])
    last = network.layers[-1]
    step += [f"# The output layer: activation, loss terms and error term dL/dZ{last.index}."]
    step += stage_lines(outputs["step"])
    step.append("value = " + ("" if network.loss_coefficient == 1 else
                              f"{numpy_code(network.loss_coefficient, names={'N': ROWS})} * ") + "float(cp.sum(terms))")
    products = _backward_products(network)
    for layer in reversed(network.layers):
        if layer.index in own:
            step += _commented(own[layer.index].backward)
        else:
            for product in products[layer.index]:
                step += _product_lines(product)
        if layer.index > 1:
            below = network.layers[layer.index - 2]
            step.append(f"# dL/dZ{below.index} = (dL/dA{below.index}) * {below.calculus.short_name}'")
            step += stage_lines(backward[below.index])
    for penalty in penalties:
        step.append(f"# dL/d{penalty.parameter} gains the derivative of its penalty on each entry")
        step.append(f"grad_{penalty.parameter} = _{penalty.gradient.name}({penalty.gradient.arguments})")
    return {"forward": forward + stage_lines(outputs["forward"]),
            "loss": forward + stage_lines(outputs["loss"]), "step": step}


def _unpack_lines(network: Network) -> list[str]:
    """W1, b1 = params['W1'], params['b1']: a line per layer (and one for a batch-normalised layer's running
    statistics)."""
    lines = [f"{', '.join(p.name for p in layer.parameters)} = "
             f"{', '.join(f'params[{p.name!r}]' for p in layer.parameters)}"
             for layer in network.layers if layer.parameters]
    for layer in batch_norm_layers(network):
        names = [statistic.name for statistic in layer.statistics]
        lines.append(f"{', '.join(names)} = {', '.join(f'params[{name!r}]' for name in names)}")
    return lines


def _workspace(stages: list, shapes: dict, extra: list[str]) -> dict:
    """Every array the stages' kernels write into (reductions and allocating kernels make their own), with its
    shape."""
    written = list(extra)
    for stage in stages:
        if isinstance(stage, Kernel) and not stage.allocates:
            written += [name for name in stage.outputs if name not in written]
    return {name: shapes[name] for name in written}


def _shape_code(shape: tuple) -> str:
    parts = [str(size) for size in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def _own_steps_note(network: Network) -> str:
    """For the module's docstring: which layers compute arrays of their own, and where that work runs."""
    kinds = [f"{layer.index} ({layer.kind})" for layer in network.layers if own_steps(layer)]
    if not kinds:
        return ""
    windows = " and im2col on the GPU (cupy.lib.stride_tricks.as_strided) for their windows" \
        if window_layers(network) else ""
    return textwrap.fill(f"Layer{'s' if len(kinds) > 1 else ''} {', '.join(kinds)} compute arrays of their own: in "
                         f"kernels too where the work is elementwise, with CuPy's sums for their statistics{windows}.",
                         96)


def module_context(network: Network) -> dict:
    for layer in network.layers:
        if not own_steps(layer):
            _check_dense(layer)
    spec = network.spec
    layers = network.layers
    shapes: dict = {"ones": (None,), "X": (None, spec.inputs)}
    for layer in layers:
        shapes.update(_layer_shapes(layer))
    own = {layer.index: _own_steps(layer, shapes) for layer in layers if own_steps(layer)}
    hidden = {layer.index: _hidden_forward(layer, layers[layer.index], shapes) for layer in layers[:-1]}
    dropping = {layer.index: _dropout_stages(layer, shapes) for layer in dropout_layers(network)}
    backward = {layer.index: _hidden_backward(layer, layers[layer.index], shapes) for layer in layers[:-1]}
    penalties = _penalty_kernels(network, shapes)
    dropout_stages = [s for stages in dropping.values() for s in stages]
    # Each computation names its own temporaries: one shape table each.
    variant_shapes = {kind: dict(shapes) for kind in ("forward", "loss", "step")}
    outputs = {
        kind: _output_stages(network, variant_shapes[kind], with_loss=kind != "forward", with_delta=kind == "step",
                             name=f"output_{kind}")
        for kind in variant_shapes
    }
    dense_like = [layer for layer in layers if not own_steps(layer)]
    products = [f"P{layer.index}" for layer in dense_like]
    forward_stages = [s for stages in hidden.values() for s in stages]
    own_forward = [s for steps in own.values() for s in steps.forward_stages]
    own_backward = [s for steps in own.values() for s in steps.backward_stages]
    backward_stages = [s for stages in backward.values() for s in stages]
    # dL/dA of a layer below a dense-like one is cuBLAS's product, written into the workspace.
    passed_down = [f"G{layer.index - 1}" for layer in dense_like if layer.index > 1]
    workspaces = {
        "forward": _workspace(forward_stages + outputs["forward"], variant_shapes["forward"], products),
        "loss": _workspace(forward_stages + outputs["loss"], variant_shapes["loss"], products),
        "step": _workspace(dropout_stages + forward_stages + outputs["step"] + backward_stages,
                           variant_shapes["step"],
                           products + passed_down
                           + (["ones"] if any(layer.bias_row is not None for layer in dense_like) else [])),
    }
    for kind in workspaces:
        workspaces[kind] = {name: _shape_code(shape) for name, shape in workspaces[kind].items()}
    gradients = {}
    for layer in dense_like:
        gradients[f"grad_{layer.weight.name}"] = _shape_code((layer.fan_in, layer.units))
        if layer.bias_row is not None:
            gradients[f"grad_{layer.bias_row.name}"] = _shape_code((layer.units,))
    workspaces["step"].update(gradients)
    kernels = {}
    every_stage = [*dropout_stages, *own_forward, *forward_stages, *own_backward, *backward_stages,
                   *(s for stages in outputs.values() for s in stages),
                   *(kernel for penalty in penalties for kernel in (penalty.terms, penalty.gradient))]
    for kernel in kernels_in(every_stage):
        kernels[kernel.name] = kernel
    coefficient = network.loss_coefficient
    dropped = dropout_layers(network)
    normalised = batch_norm_layers(network)
    statistics = [statistic for layer in normalised for statistic in layer.statistics]
    wanted = {"masks": bool(dropped), "dropout": bool(dropped), "batchnorm": bool(normalised),
              "windows": bool(window_layers(network))}
    runtime_modules = CUPY_RUNTIME + tuple(name for name in OPTIONAL_RUNTIME if wanted[name])
    needs = {}
    for kind, stages in outputs.items():
        everything = own_forward + forward_stages + stages
        if kind == "step":
            everything += own_backward + backward_stages
        scalars = {name for kernel in kernels_in(everything) for name in kernel.scalars}
        needs[kind] = scalars | ({"T"} if scalars else set())
        if uses_rows(everything) or (kind != "forward" and coefficient.has(n_samples)) or (
                kind == "step" and statistics):
            needs[kind].add(ROWS)
    return {
        "needs": needs,
        "bodies": _bodies(network, hidden, backward, outputs, dropping, own, penalties),
        "unpack_lines": _unpack_lines(network),
        "spec": spec,
        "marker": MARKER,
        "version": __version__,
        "digest": spec_digest(network),
        "architecture_lines": architecture_lines(network),
        "params": param_views(network),
        "draws": spec.training.init != "zeros" and any(
            p.explicit is None and p.kind not in FIXED_STARTS for p in param_views(network)),
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
        "penalties": penalties,
        "own_steps_note": _own_steps_note(network),
        "batch_norm": statistics,
        # The batch's statistics a training step returns, by the running statistic's name.
        "statistics_lines": [(statistic.name, line_code(statistic.batch, layer.statistic_bindings))
                             for layer in normalised for statistic in layer.statistics],
    }

def generate_cupy_module(spec_source) -> str:
    """The source text of the CuPy module for a spec: the NumPy module's step, fused into GPU kernels."""
    network = spec_source if isinstance(spec_source, Network) else build_network(spec_source)
    return render("cupy/module.py.j2", **module_context(network))

