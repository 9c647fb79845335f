"""Generated modules are linted code: ruff, with the project's settings, finds nothing to say about them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from symbp.render.code.numpy_module import generate_module

ROOT = Path(__file__).resolve().parent.parent
SPECS = {
    # Every weight given, a summed loss: no random draws and no batch size in the step.
    "given": {"name": "given", "title": "A long title " * 12, "inputs": 2,
              "layers": [{"units": 2, "activation": "sigmoid", "weights": [[1, 2], [3, 4]], "biases": [0, 0]},
                         {"units": 1, "activation": "exponential", "weights": [[1], [2]], "biases": [0]}],
              "loss": {"name": "squared_error", "reduction": "sum"}},
    "relu_softmax": {"name": "relu_softmax", "inputs": 3, "layers": [{"units": 40, "activation": "relu"},
                                                                    {"units": 4, "activation": "softmax"}],
                     "loss": "cross_entropy"},
    "linear": {"name": "linear", "inputs": 1, "layers": [{"units": 1, "activation": "linear"}]},
    # Layer normalisation: arrays of its own on the way to Z, and the plain training step only.
    "layer_norm": {"name": "layer_norm", "inputs": 3, "layers": [
        {"units": 4, "activation": "relu", "normalization": "layer", "epsilon": 1e-3},
        {"units": 2, "activation": "softmax", "normalization": "layer"}], "loss": "cross_entropy"},
    # Dropout on the inputs and the hidden layer, and an L2 penalty: the masks' tables, draws and steps.
    "dropped": {"name": "dropped", "inputs": 3, "layers": [
        {"units": 12, "activation": "tanh", "dropout": 0.2, "kernel_regularizer": {"l2": 0.01}},
        {"units": 2, "activation": "softmax", "dropout": 0.5}], "loss": "cross_entropy"},
}


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed")
def test_generated_modules_pass_ruff(tmp_path):
    for name, spec in SPECS.items():
        (tmp_path / f"{name}.py").write_text(generate_module(spec))
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    result = subprocess.run([ruff, "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
