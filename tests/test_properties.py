"""Property-based: any small valid spec generates a module that imports and passes the gradient check."""

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbp.checks.gradients import TOLERANCE, check_gradients, load_module_from_source
from symbp.registry.calculus import activation_calculus
from symbp.registry.rules import ACTIVATIONS, LOSSES
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec

ELEMENTWISE = sorted(name for name, activation in ACTIVATIONS.items() if not activation.rowwise)
CUSTOM_ACTIVATIONS = [
    {"expr": "x / (1 + abs(x))", "name": "softsign"},
    {"expr": "where(x > 0, x, exp(x) - 1)"},
    {"expr": "atan(x)"},
]
CUSTOM_LOSSES = [{"expr": "log(cosh(yhat - y))"}, {"expr": "(yhat - y)**4 / 4", "name": "quartic"}]

# Few examples: each one derives, generates, imports and checks a whole network (a fraction of a second).
PROPERTY_SETTINGS = settings(max_examples=30, deadline=None, derandomize=True, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


@st.composite
def activations(draw):
    kind = draw(st.sampled_from(["builtin", "builtin", "builtin", "leaky", "custom"]))
    if kind == "leaky":
        return {"name": "leaky_relu", "alpha": draw(st.floats(0.01, 0.5))}
    if kind == "custom":
        return draw(st.sampled_from(CUSTOM_ACTIVATIONS))
    return draw(st.sampled_from(ELEMENTWISE))


@st.composite
def specs(draw):
    """A network of 1 to 3 layers of 1 to 3 units whose loss and output layer suit each other."""
    inputs = draw(st.integers(1, 3))
    depth = draw(st.integers(1, 3))
    layers = [{"units": draw(st.integers(1, 3)), "activation": draw(activations()), "bias": draw(st.booleans())}
              for _ in range(depth)]
    loss_name = draw(st.sampled_from([*LOSSES, "custom"]))
    if loss_name == "custom":
        loss = dict(draw(st.sampled_from(CUSTOM_LOSSES)))
    else:
        loss = {"name": loss_name}
        required = LOSSES[loss_name].requires_output
        if required is not None:
            layers[-1]["activation"] = required
            if ACTIVATIONS[required].rowwise:
                layers[-1]["units"] = max(layers[-1]["units"], 2)
    loss["reduction"] = draw(st.sampled_from(["mean", "sum"]))
    loss["scale"] = draw(st.sampled_from([0.5, 1.0, 2.0]))
    return {"name": "prop", "inputs": inputs, "layers": layers, "loss": loss}


@PROPERTY_SETTINGS
@given(specs())
def test_random_specs_generate_import_and_pass_the_gradient_check(raw):
    spec = load_spec(raw)
    source = generate_module(spec)
    assert source == generate_module(spec)
    imports = {line for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports == {"import math", "import warnings", "import numpy as np"}
    module = load_module_from_source(source, "prop")
    X = np.random.default_rng(0).normal(size=(4, spec.inputs))
    assert module.forward(module.init_params(0), X).shape == (4, spec.outputs)
    report = check_gradients(spec, samples=4, seed=1, module=module, expanded=True)
    assert all(p.expanded_error < 1e-10 for p in report.parameters), report.table()
    assert report.loss_agreement < 1e-12
    # A finite difference that straddles a kink (relu at 0) measures neither side's slope, and random
    # networks put some sample near one sooner or later; there SymPy's expanded loss is the oracle.
    kinked = any(activation_calculus(layer.activation, layer.activation_params).derivative.has(sp.Piecewise, sp.sign)
                 for layer in spec.layers)
    if not kinked:
        assert all(p.finite_difference_error < TOLERANCE for p in report.parameters), report.table()
