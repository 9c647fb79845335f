"""The actuarial lab's 3-2-1 network reproduces the lab's printed final weights."""

import numpy as np

from symbp.checks.gradients import load_module_from_source
from symbp.data.datasets import load_builtin
from symbp.examples import EXAMPLES
from symbp.render.code.numpy_module import generate_module


def test_lab_network_reaches_the_printed_weights():
    module = load_module_from_source(generate_module("actuarial"), "actuarial")
    data = load_builtin("actuarial_lab")
    params, history = module.train(module.init_params(), data.X, data.Y)
    assert len(history["loss"]) == 5000 and history["stopped"] == "epochs"
    example = EXAMPLES["actuarial"]
    for name, published in example.published.items():
        assert np.max(np.abs(params[name] - np.array(published))) < 1e-6
    assert history["loss"][-1] < 1e-7 < history["loss"][0]
