"""The generated module: deterministic, standalone, and what generated/ holds."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from symbp import __version__
from symbp.examples import bundled_spec_paths
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec

ROOT = Path(__file__).resolve().parent.parent
SMALL = {"name": "tiny", "inputs": 2, "layers": [{"units": 3, "activation": "relu"},
                                                 {"units": 2, "activation": "softmax"}], "loss": "cross_entropy"}


def test_same_spec_same_bytes_across_processes():
    script = ("from symbp.render.code.numpy_module import generate_module; import sys; "
              "sys.stdout.write(generate_module('actuarial'))")
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT,
                       env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] == generate_module("actuarial")


def test_header_names_spec_and_version():
    source = generate_module(SMALL)
    head = "\n".join(source.splitlines()[:12])
    assert "spec 'tiny'" in head and f"symbp {__version__}" in head
    assert "sha256=" in head


def test_module_imports_where_symbp_cannot(tmp_path):
    (tmp_path / "tiny.py").write_text(generate_module(SMALL))
    script = (
        "import sys; sys.modules['symbp'] = None\n"
        "import numpy as np, tiny\n"
        "p = tiny.init_params(0)\n"
        "X = np.ones((4, 2)); Y = np.eye(2)[[0, 1, 0, 1]]\n"
        "v, g = tiny.loss_and_grad(p, X, Y)\n"
        "print(sorted(g), tiny.PARAMS, tiny.SHAPES)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "['W1', 'W2', 'b1', 'b2'] ('W1', 'b1', 'W2', 'b2')" in result.stdout


def test_params_shapes_and_explicit_initial_values():
    import importlib.util
    path = ROOT / "generated" / "actuarial.py"
    spec = importlib.util.spec_from_file_location("generated_actuarial", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PARAMS == ("W1", "W2")
    assert module.SHAPES == {"W1": (3, 2), "W2": (2, 1)}
    params = module.init_params()
    assert np.array_equal(params["W1"], [[0.2, 0.4], [0.6, 0.8], [1.0, 1.2]])


def test_random_initialisation_is_seeded():
    from symbp.checks.gradients import load_module_from_source
    module = load_module_from_source(generate_module(SMALL), "tiny")
    assert np.array_equal(module.init_params(4)["W1"], module.init_params(4)["W1"])
    assert not np.array_equal(module.init_params(4)["W1"], module.init_params(5)["W1"])
    assert np.all(module.init_params(4)["b1"] == 0)


def test_generated_folder_is_fresh():
    for path in bundled_spec_paths():
        spec = load_spec(path)
        committed = ROOT / "generated" / f"{spec.name}.py"
        assert committed.exists(), f"generated/{spec.name}.py is missing; run symbp generate --all-examples"
        assert committed.read_text() == generate_module(spec), f"generated/{spec.name}.py is stale"


def test_generated_code_has_no_python_loop_over_units():
    source = generate_module({"name": "wide", "inputs": 784, "layers": [{"units": 32, "activation": "sigmoid"},
                                                                        {"units": 10, "activation": "sigmoid"}]})
    body = source.split("def loss_and_grad")[1].split("def train(")[0]
    assert not any(line.strip().startswith("for ") for line in body.splitlines())
    assert "X.T @ delta1" in body
