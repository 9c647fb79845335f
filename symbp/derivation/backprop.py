"""Backpropagation for a spec, derived step by step, as data: the sections, assembled in a lecture's order.

``derive(spec)`` returns sections of chains: each chain is one ``align*`` block of the document,
``lhs = step_1 = step_2 ...``, each step a SymPy expression over ``symbp.symbolic.quantities`` with the
reasons that justify it. The derivatives themselves come from ``symbp.registry.calculus`` (the registry's
activations and losses, differentiated by SymPy) and from ``symbp.derivation.steps`` (the same derivatives
taken one rule at a time); each section lives in its own module and depends only on ``symbp.derivation.model``
and the network. It knows nothing of LaTeX: ``symbp.render.latex.document`` prints it, and
``symbp.checks.verify`` evaluates every expression.
"""

from __future__ import annotations

from functools import cache

from symbp.derivation.backward import hidden_section, output_section
from symbp.derivation.batchnormalisation import batch_normalisation_section, batch_normalised_layers
from symbp.derivation.explicit import explicit_section
from symbp.derivation.forward import activation_section, network_section
from symbp.derivation.general import general_section
from symbp.derivation.indexform import net_of
from symbp.derivation.matrixform import matrix_section
from symbp.derivation.model import Conventions, Derivation
from symbp.derivation.normalisation import normalisation_section, normalised_layers
from symbp.derivation.regression import regression_section
from symbp.derivation.updates import update_section
from symbp.derivation.windows import window_layers_of, window_section
from symbp.derivation.worked import worked_section
from symbp.spec.schema import Spec, load_spec
from symbp.symbolic.windows import refuse_window_output


def derive(spec_source, conventions: Conventions | None = None) -> Derivation:
    """The derivation of backpropagation for a spec, section by section."""
    spec = load_spec(spec_source)
    refuse_window_output(spec, "the derivation")
    return _derive(spec, conventions or Conventions())


@cache
def _derive(spec: Spec, conventions: Conventions) -> Derivation:
    # Cached: a derivation is data that nothing changes, and SymPy takes seconds over a large one.
    net = net_of(spec)
    sign = conventions.error_sign
    if window_layers_of(net):
        return Derivation(spec, conventions, _windowed(net, sign))
    output = output_section(net, sign)
    normalised = normalised_layers(net)
    batch_normalised = batch_normalised_layers(net)
    sections = [network_section(net), activation_section(net), general_section(net, sign, conventions.numbered_layers),
                worked_section(net, sign, output), output]
    for layer in range(net.depth, 0, -1):
        if layer < net.depth:
            sections.append(hidden_section(net, layer, sign))
        if layer in batch_normalised:
            # Right after the section that finds the layer's error term delta, which the normalisation reads.
            sections.append(batch_normalisation_section(net, layer, sign))
        elif layer in normalised:
            sections.append(normalisation_section(net, layer, sign))
    # A normalised layer is more than one matrix product, and its expanded loss nests a square root of a sum in
    # every unit: the matrix form and the explicit gradients are written for networks without one.
    if not normalised:
        sections.append(matrix_section(net, conventions))
        explicit = explicit_section(net, sign)
        if explicit is not None:
            sections.append(explicit)
    sections.append(update_section(net, sign))
    # The lab's own derivation of linear regression, for a spec that is one: the lab's document prints it instead.
    regression = regression_section(net)
    if regression is not None:
        sections.append(regression)
    return Derivation(spec, conventions, tuple(s for s in sections if s.chains))


def _windowed(net, sign: int) -> tuple:
    """The sections of a network that begins with convolution or pooling layers: the forward pass, the activations,
    the dense layers' sections from the top, then each window layer's own section in its channel and position
    indices (``symbp.derivation.windows``), and the update. The general equations, the worked weights, the matrix
    form and the explicit gradients speak of dense units, and are written for networks of dense layers."""
    windows = set(window_layers_of(net))
    sections = [network_section(net), activation_section(net), output_section(net, sign)]
    for layer in range(net.depth - 1, 0, -1):
        if layer not in windows:
            sections.append(hidden_section(net, layer, sign))
            continue
        # The window layer above passes its error back to this layer's outputs in the chain "input" of its section.
        above = sections[-1].chain(f"window{layer + 1}.input") if layer + 1 in windows else None
        sections.append(window_section(net, layer, sign, above))
    sections.append(update_section(net, sign))
    return tuple(section for section in sections if section.chains)
