"""The public API: every name importable from ``symbp``, documented, and doing its job on a bundled example."""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

import symbp

ROOT = Path(__file__).resolve().parent.parent
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)


@pytest.mark.parametrize("name", [name for name in symbp.__all__ if name != "__version__"])
def test_each_public_name_is_importable_and_documented(name):
    value = getattr(symbp, name)
    if name == "SpecSource":  # a type alias: what every function's spec argument accepts
        return
    doc = inspect.getdoc(value) or ""
    assert doc and not doc.startswith(f"{name}("), f"{name} has no docstring of its own"
    exec(f"from symbp import {name}", {})


def test_the_public_functions_cover_every_job():
    assert {"load_spec", "derivation_document", "worksheet_document", "generate_module", "load_module",
            "check_gradients", "train"} <= set(symbp.__all__)


def test_load_spec_reads_a_bundled_example_and_refuses_bad_input_in_one_line():
    spec = symbp.load_spec("xor")
    assert isinstance(spec, symbp.Spec) and spec.name == "xor" and spec.inputs == 2
    with pytest.raises(symbp.SymbpError, match=r"^layers\[0\]\.activation: .*"):
        symbp.load_spec({"name": "bad", "inputs": 1, "layers": [{"units": 1, "activation": "sigmoidd"}]})


def test_generate_module_writes_the_bundled_generated_module():
    assert symbp.generate_module("xor") == (ROOT / "generated" / "xor.py").read_text(encoding="utf-8")


def test_the_documents_are_latex_for_the_spec():
    derivation = symbp.derivation_document("linear_regression")
    worksheet = symbp.worksheet_document("linear_regression")
    with_key = symbp.worksheet_document("linear_regression", solutions=True)
    for document in (derivation, worksheet, with_key):
        assert document.lstrip("%").count(r"\begin{document}") == 1 and document.rstrip().endswith(r"\end{document}")
    assert len(with_key) > len(worksheet) and with_key != worksheet
    assert symbp.worksheet_document("linear_regression", variant=3) != worksheet


def test_load_module_imports_the_generated_module():
    module = symbp.load_module("xor")
    from_text = symbp.load_module_from_source(symbp.generate_module("xor"), "xor")
    params = module.init_params(0)
    assert sorted(params) == sorted(module.PARAMS)
    assert module.loss(params, XOR_X, XOR_Y) == from_text.loss(from_text.init_params(0), XOR_X, XOR_Y)


def test_check_gradients_passes_on_a_bundled_example():
    report = symbp.check_gradients("xor")
    assert isinstance(report, symbp.CheckReport)
    assert report.passed and report.worst < report.tolerance
    assert {check.name for check in report.parameters} == {"W1", "b1", "W2", "b2"}


def test_train_is_the_generated_modules_train_from_init_params():
    params, history = symbp.train("xor", XOR_X, XOR_Y, epochs=20, seed=3)
    module = symbp.load_module("xor")
    expected, expected_history = module.train(module.init_params(3), XOR_X, XOR_Y, epochs=20)
    assert history["loss"] == expected_history["loss"] and len(history["loss"]) == 20
    assert history["stopped"] == "epochs"
    for name in module.PARAMS:
        np.testing.assert_array_equal(params[name], expected[name])
    again, _ = symbp.train("xor", XOR_X, XOR_Y, params=params, epochs=1, learning_rate=0.0)
    for name in module.PARAMS:
        np.testing.assert_array_equal(again[name], params[name])


def _python_example() -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_readme import PYTHON_EXAMPLE, tagged_blocks
    finally:
        sys.path.remove(str(ROOT / "tests"))
    return tagged_blocks()[PYTHON_EXAMPLE]


def test_the_readme_python_example_imports_only_from_symbp():
    imported = []
    for node in ast.walk(ast.parse(_python_example())):
        if isinstance(node, ast.ImportFrom):
            imported.append(node.module)
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    assert "symbp" in imported
    assert not [name for name in imported if name.startswith("symbp.")]
    assert not [name for name in imported if name not in ("symbp", "numpy")]
