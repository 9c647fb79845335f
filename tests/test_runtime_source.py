"""Generated modules include the runtime verbatim, with one import block and no name defined twice."""

import ast
import inspect
from collections import Counter
from pathlib import Path

import pytest

from symbp.render.code.numpy_module import generate_module
from symbp.render.code.runtime_source import OPTIONAL_RUNTIME_MODULES, RUNTIME_MODULES, import_block, runtime_source
from symbp.runtime import diagnostics, dropout, optimizers, training

ROOT = Path(__file__).resolve().parent.parent
SPEC = {"name": "small", "inputs": 2, "layers": [{"units": 3, "activation": "relu"},
                                                 {"units": 2, "activation": "softmax"}], "loss": "cross_entropy"}
DROPPED = {**SPEC, "name": "dropped", "layers": [{"units": 3, "activation": "relu", "dropout": 0.5},
                                                 {"units": 2, "activation": "softmax"}]}


def _top_level(source):
    return {node.name: ast.get_source_segment(source, node) for node in ast.parse(source).body
            if isinstance(node, ast.FunctionDef | ast.ClassDef)}


def test_every_runtime_function_and_class_is_in_the_generated_module_as_written():
    generated = _top_level(generate_module(SPEC))
    for module in (optimizers, diagnostics, training):
        for name, text in _top_level(inspect.getsource(module)).items():
            assert generated.get(name) == text, f"{module.__name__}.{name}"


def test_the_dropout_runtime_goes_only_into_modules_with_dropout():
    generated = _top_level(generate_module(DROPPED))
    for name, text in _top_level(inspect.getsource(dropout)).items():
        assert generated.get(name) == text, f"{dropout.__name__}.{name}"
    plain = generate_module(SPEC)
    assert "symbp.runtime.dropout" not in plain and "def dropout_masks" not in plain


@pytest.mark.parametrize("spec", [SPEC, DROPPED])
def test_no_name_is_defined_twice_and_only_numpy_is_imported_besides_the_standard_library(spec):
    tree = ast.parse(generate_module(spec))
    names = Counter()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names[node.name] += 1
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
    assert [name for name, count in names.items() if count > 1] == []
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported == {"math", "warnings", "numpy"}


def test_the_import_block_merges_and_orders_as_isort_does():
    block = import_block("import numpy as np", "from os import path", "from collections import deque", "import math",
                         "from os import sep")
    assert block == ("import math\nimport warnings\nfrom collections import deque\nfrom os import path, sep\n\n"
                     "import numpy as np")


def test_the_runtime_modules_import_before_their_code_and_are_all_included():
    from symbp.render.code.backends.array_api import ARRAY_API_RUNTIME, OPTIONAL_ARRAY_API_RUNTIME

    assert {part.module for part in runtime_source().parts} == {f"symbp.runtime.{name}" for name in RUNTIME_MODULES}
    assert {path.stem for path in (ROOT / "symbp" / "runtime").glob("*.py")} - {"__init__"} == {
        *RUNTIME_MODULES, *OPTIONAL_RUNTIME_MODULES, *ARRAY_API_RUNTIME, *OPTIONAL_ARRAY_API_RUNTIME}
    every = runtime_source((*RUNTIME_MODULES, *OPTIONAL_RUNTIME_MODULES, *OPTIONAL_ARRAY_API_RUNTIME)).parts
    assert all(part.summary and "import " not in part.code.split("\n", 1)[0] for part in every)


@pytest.mark.parametrize("name", sorted(p.stem for p in (ROOT / "generated").glob("*.py") if p.stem != "__init__"))
def test_committed_modules_carry_the_current_runtime(name):
    text = (ROOT / "generated" / f"{name}.py").read_text()
    assert all(part.code in text for part in runtime_source().parts), f"generated/{name}.py: regenerate it"


def test_the_code_backends_share_public_builders_and_import_no_private_names():
    offenders = []
    for folder in ("symbp/render/code", "symbp/runtime"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("symbp"):
                    private = [alias.name for alias in node.names
                               if alias.name.startswith("_") and not alias.name.endswith("__")]
                    offenders += [f"{path.name}: {name}" for name in private]
    assert offenders == []


def test_the_array_api_module_runs_the_same_optimizer_rules():
    from symbp.render.code.backends.array_api import generate_array_api_module

    generated = _top_level(generate_array_api_module(SPEC))
    for name, text in _top_level(inspect.getsource(optimizers)).items():
        assert generated.get(name) == text, name
