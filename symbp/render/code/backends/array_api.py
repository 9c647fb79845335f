"""The array-API module: the NumPy module's derivation, printed for any array library.

The lines are the same SymPy expressions as the NumPy module's forward pass, loss and backward
pass (codegen builds them); only the printer differs, so the two modules compute the same steps.
There is no in-place step: every function is pure, which is what jax.jit and torch.compile trace.
"""

from __future__ import annotations

import textwrap

import sympy as sp

from symbp import __version__
from symbp.render.code.backends.printing import array_api_code
from symbp.render.code.numpy_module import (
    FIXED_STARTS,
    MARKER,
    Line,
    MaskView,
    OutputBlock,
    architecture,
    backward_lines,
    hidden_lines,
    likely_causes,
    loss_comment,
    output_block,
    param_views,
    penalty_gradients,
    penalty_total,
    spec_digest,
    wrapped,
)
from symbp.render.code.runtime_source import import_block, runtime_source
from symbp.render.templating import render
from symbp.symbolic.batchnorm import batch_norm_layers, training
from symbp.symbolic.dropout import dropout_layers
from symbp.symbolic.network import Network, build_network, n_samples
from symbp.symbolic.penalties import weight_penalties
from symbp.symbolic.windows import window_layers

ARRAY_API_RUNTIME = ("optimizers",)
# Added, each only for the networks that need it: the masks of dropout (NumPy's draws, so a seed gives the NumPy
# module's masks), the running statistics of batch normalisation, and the windows of convolution and pooling.
OPTIONAL_ARRAY_API_RUNTIME = ("masks", "array_batchnorm", "array_windows")


def _code(expr, bindings: dict | None = None, arrays=()) -> str:
    return array_api_code(expr, bindings, names={"N": "n"}, arrays=arrays)


def _evaluation_code(expr, bindings: dict | None = None, arrays=()) -> str:
    """Code for expr in evaluation mode: a choice on the training flag (batch normalisation's statistics) is made
    here, so forward() reads the running statistics directly and has no flag to take."""
    chosen = expr.subs(training, False) if isinstance(expr, sp.Basic) and expr.has(training) else expr
    return _code(chosen, bindings, arrays)


def _total(block: OutputBlock, terms) -> str:
    """Code for the sum of the loss terms: sum(t * t) when they are the square of a temporary t."""
    if terms.is_Pow and terms.exp == 2 and terms.base in block.temporaries:
        return f"xp.sum({terms.base} * {terms.base})"
    return f"xp.sum({_code(terms, block.bindings, block.temporaries)})"


def _held_transpose_code(network: Network):
    """A printer of the backward pass that reads X's transpose from X_T, an array the caller may hold.

    XLA reads a transposed operand of a product slowly: the first layer's weight gradient X^T delta1 runs
    several times faster on JAX when X^T is an array of its own, laid out row by row. Full-batch training
    holds one for the whole run (the data do not change), so the gradient takes it as an argument. Returns
    the printer and a function that says whether any line it printed reads X_T.
    """
    held = sp.MatrixSymbol("X_T", network.spec.inputs, n_samples)
    replacement = {sp.Transpose(network.data): held}
    printed_with_it = []

    def code(expr, bindings: dict | None = None, arrays=()):
        if isinstance(expr, sp.Basic) and expr.has(sp.Transpose(network.data)):
            expr = expr.xreplace(replacement)
            printed_with_it.append(True)
        return _code(expr, bindings, arrays)

    return code, lambda: bool(printed_with_it)


def _needs_dtype(lines: list[Line]) -> bool:
    return any(getattr(line.code, "needs_dtype", False) for line in lines)


def module_context(network: Network) -> dict:
    spec = network.spec
    hidden = hidden_lines(network, _code, library_forms=True)
    normalised = batch_norm_layers(network)
    # forward() computes in evaluation mode: a batch-normalised layer's lines there read the running statistics.
    evaluation_hidden = hidden_lines(network, _evaluation_code, library_forms=True) if normalised else hidden
    prediction = output_block(network, with_loss=False, with_delta=False, code=_code, library_forms=True)
    for_loss = output_block(network, with_loss=True, with_delta=False, code=_code, library_forms=True)
    for_gradient = output_block(network, with_loss=True, with_delta=True, code=_code, library_forms=True)
    coefficient = network.loss_coefficient
    params = param_views(network)
    dropped = dropout_layers(network)
    # The gradient's forward pass multiplies each dropout layer's inputs by its mask; forward and loss do not.
    training_hidden = hidden_lines(network, _code, training=True, library_forms=True) if dropped else hidden
    forward_lines = evaluation_hidden + prediction.lines
    loss_lines = hidden + for_loss.lines
    # With dropout every step draws its masks on the host and is compiled alone: there is no run of
    # full-batch steps to hold X's transpose for.
    backward_code, reads_held_transpose = _held_transpose_code(network) if not dropped else (_code, lambda: False)
    backward = backward_lines(network, for_gradient.delta, backward_code, name_window_errors=True)
    gradient_lines = training_hidden + for_gradient.lines + backward
    statistics = [statistic for layer in normalised for statistic in layer.statistics]
    wanted = {"masks": bool(dropped), "array_batchnorm": bool(normalised),
              "array_windows": bool(window_layers(network))}
    # The logistic function, which the standard lacks: the module calls the library's own where it has one.
    logistic = any(layer.calculus.activation.library_expr is not None for layer in network.layers)
    compat_names = ("array_namespace", "device", "is_dask_namespace", "is_jax_namespace",
                    *(("is_torch_namespace",) if logistic else ()), "to_device")
    runtime_modules = (*ARRAY_API_RUNTIME, *(name for name in OPTIONAL_ARRAY_API_RUNTIME if wanted[name]))
    return {
        "spec": spec,
        "marker": MARKER,
        "version": __version__,
        "digest": spec_digest(network),
        "architecture": textwrap.fill(architecture(network), 110, subsequent_indent="    ", break_on_hyphens=False),
        "params": params,
        "title": textwrap.fill(f"{spec.title or spec.name}: an array-API trainer for the network in spec "
                               f"'{spec.name}'.", 96),
        # init_params needs its random generator only when some weight is drawn rather than given.
        "draws": spec.training.init != "zeros" and any(p.explicit is None and p.kind not in FIXED_STARTS
                                                      for p in params),
        "forward_lines": forward_lines,
        "loss_lines": loss_lines,
        "gradient_forward_lines": training_hidden + for_gradient.lines,
        "backward_lines": backward,
        "held_transpose": reads_held_transpose(),
        "logistic": logistic,
        "forward_needs_dtype": _needs_dtype(forward_lines),
        "loss_needs_dtype": _needs_dtype(loss_lines),
        "gradient_needs_dtype": _needs_dtype(gradient_lines),
        "loss_total": _total(for_loss, for_loss.terms_expr),
        "gradient_loss_total": _total(for_gradient, for_gradient.terms_expr),
        "prediction": network.prediction.name,
        "loss_coefficient": _code(coefficient),
        "loss_coefficient_is_one": coefficient == 1,
        # A batch-normalised layer's means divide by the batch's size.
        "loss_uses_n": coefficient.has(n_samples) or bool(normalised),
        "loss_name": network.output.loss.short_name,
        "loss_comment": loss_comment(network),
        "training": spec.training,
        # The array-API module computes its own steps; it shares the optimizers' rules with the NumPy module
        # (and, with dropout, how masks are drawn).
        "runtime": runtime_source(runtime_modules).parts,
        "imports": import_block("import functools", "import math", "import warnings",
                                f"from array_api_compat import {', '.join(compat_names)}", modules=runtime_modules),
        "dropout": [MaskView(layer.mask.name, layer.index, layer.rate, layer.fan_in) for layer in dropped],
        "mask_names": [layer.mask.name for layer in dropped],
        "penalty_total": penalty_total(network, _code),
        "penalty_params": [penalty.parameter.name for penalty in weight_penalties(network)],
        "penalty_gradients": penalty_gradients(network, _code),
        "batch_norm": statistics,
        "windows": bool(window_layers(network)),
        # The batch's statistics a training step moves the running ones towards, by the running statistic's name.
        "statistics_lines": [Line(statistic.name, _code(statistic.batch, layer.statistic_bindings))
                             for layer in normalised for statistic in layer.statistics],
        "likely_causes": [wrapped(cause) for cause in likely_causes(network)],
    }


def generate_array_api_module(spec_source) -> str:
    """The source text of the array-API module for a spec: the NumPy module's steps, on any array library."""
    network = spec_source if isinstance(spec_source, Network) else build_network(spec_source)
    return render("array_api/module.py.j2", **module_context(network))


