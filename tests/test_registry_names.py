"""What the rest of symbp knows about an activation or a loss, it asks the registry entry.

No module outside ``symbp/registry/`` and no template compares anything with an activation's or a
loss's name, or keeps a list of such names: such a test belongs on the entry (``Activation``/``Loss``
in ``symbp/registry/rules.py``) as an attribute, so adding an entry is one place and custom entries
behave like built-in ones.
The names checked are the registry's own; aliases never reach a consumer (the spec reader resolves them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import jinja2
from jinja2 import nodes

from symbp.registry.rules import ACTIVATIONS, LOSSES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "symbp"
REGISTRY = PACKAGE / "registry"
TEMPLATES = ROOT / "templates"
NAMES = frozenset(ACTIVATIONS) | frozenset(LOSSES)


def _strings(node: ast.AST) -> list[str]:
    """The string constants a comparison operand stands for: itself, or the items of a literal collection."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [text for item in node.elts for text in _strings(item)]
    return []


def _names_only(texts: list[str]) -> list[str]:
    return texts if texts and all(text in NAMES for text in texts) else []


def name_tests_in_python(source: str) -> list[tuple[int, str]]:
    """(line, name) for each comparison or match case against a registry name in Python source, and for each
    list of registry names kept outside the registry (a tuple to test membership in, a dict keyed by names)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            names = [text for operand in (node.left, *node.comparators) for text in _strings(operand) if text in NAMES]
        elif isinstance(node, ast.MatchValue):
            names = [text for text in _strings(node.value) if text in NAMES]
        elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            names = _names_only(_strings(node))
        elif isinstance(node, ast.Dict):
            names = _names_only([text for key in node.keys if key is not None for text in _strings(key)])
        else:
            continue
        found += [(node.lineno, name) for name in names]
    return sorted(set(found))


def name_tests_in_template(source: str) -> list[tuple[int, str]]:
    """(line, name) for each comparison against a registry name in a Jinja template."""
    found = []
    for compare in jinja2.Environment().parse(source).find_all(nodes.Compare):
        operands = [compare.expr, *(operand.expr for operand in compare.ops)]
        for operand in operands:
            items = operand.items if isinstance(operand, (nodes.Tuple, nodes.List)) else [operand]
            found += [(compare.lineno, item.value) for item in items
                      if isinstance(item, nodes.Const) and item.value in NAMES]
    return found


def test_the_checks_find_name_tests():
    python = 'if spec.loss.name == "cross_entropy" or last.activation in ("softmax", "sigmoid"):\n    pass\n'
    assert name_tests_in_python(python) == [(1, "cross_entropy"), (1, "sigmoid"), (1, "softmax")]
    assert name_tests_in_python('match name:\n    case "relu":\n        pass\n') == [(2, "relu")]
    assert name_tests_in_python('CLASSIFIERS = ["cross_entropy"]\nSYMBOLS = {"sigmoid": "S"}\n') == [
        (1, "cross_entropy"), (2, "sigmoid")]
    harmless = 'load({"activation": "linear"})\nif kind == "one-hot":\n    pass\nF = {"tanh": 1, "exp": 2}\n'
    assert name_tests_in_python(harmless) == []
    template = '{% if spec.loss.name == "binary_cross_entropy" %}x{% endif %}\n{{ a if b in ["tanh"] }}'
    assert name_tests_in_template(template) == [(1, "binary_cross_entropy"), (2, "tanh")]


def test_no_module_outside_the_registry_tests_an_entry_name():
    found = [f"{path.relative_to(ROOT)}:{line}: {name!r}"
             for path in sorted(PACKAGE.rglob("*.py")) if REGISTRY not in path.parents
             for line, name in name_tests_in_python(path.read_text(encoding="utf-8"))]
    assert not found, "ask the registry entry instead of testing its name:\n" + "\n".join(found)


def test_no_template_tests_an_entry_name():
    found = [f"{path.relative_to(ROOT)}:{line}: {name!r}"
             for path in sorted(TEMPLATES.rglob("*.j2"))
             for line, name in name_tests_in_template(path.read_text(encoding="utf-8"))]
    assert not found, "pass the registry entry's attribute to the template instead:\n" + "\n".join(found)
