"""The runtime's source, as the generated NumPy module includes it: imports apart, code verbatim.

Each module of symbp.runtime is cut in two with ast: its import statements, which are merged with
the generated module's own into one import block, and everything after the last of them (the code,
its comments included), which is copied as it stands. The module docstring and the runtime's imports
of itself are dropped: in the generated module all the runtime's names are defined side by side.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import symbp.runtime

# In the order they are copied: a module's names are defined before the code that runs at import time uses them.
RUNTIME_MODULES = ("optimizers", "diagnostics", "training")
# Copied after those, and only into the modules that need them: the masks of a network with dropout, the running
# statistics of one with batch normalisation, the windows of one with convolution or pooling.
OPTIONAL_RUNTIME_MODULES = ("masks", "dropout", "batchnorm", "windows")


@dataclass(frozen=True)
class RuntimePart:
    module: str  # e.g. "symbp.runtime.training"
    summary: str  # the first line of its docstring
    code: str  # its code after the imports, verbatim


@dataclass(frozen=True)
class RuntimeSource:
    imports: tuple[ast.stmt, ...]
    parts: tuple[RuntimePart, ...]


def _split(name: str) -> tuple[list[ast.stmt], RuntimePart]:
    path = Path(symbp.runtime.__file__).with_name(f"{name}.py")
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    if not imports or any(isinstance(node, ast.Import | ast.ImportFrom) for node in tree.body[tree.body.index(
            imports[-1]) + 1:]):
        raise ValueError(f"{path}: the runtime's imports must all come before its code")
    code = "".join(text.splitlines(keepends=True)[imports[-1].end_lineno:]).strip("\n") + "\n"
    docstring = ast.get_docstring(tree) or ""
    outside = [node for node in imports
               if not (isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[:2] == ["symbp", "runtime"])
               and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
    return outside, RuntimePart(f"symbp.runtime.{name}", docstring.splitlines()[0] if docstring else "", code)


@cache
def runtime_source(modules: tuple[str, ...] = RUNTIME_MODULES) -> RuntimeSource:
    """The named runtime modules (all of them by default; the array-API module takes the optimizers alone)."""
    imports, parts = [], []
    for name in modules:
        found, part = _split(name)
        imports += found
        parts.append(part)
    return RuntimeSource(tuple(imports), tuple(parts))


def import_block(*extra: str, modules: tuple[str, ...] = RUNTIME_MODULES) -> str:
    """The generated module's imports: the runtime's and `extra` (statements such as "import math"), merged,
    deduplicated and laid out as isort would: the standard library first, plain imports before from-imports."""
    nodes = [*runtime_source(modules).imports, *(ast.parse(statement).body[0] for statement in extra)]
    plain: set[str] = set()
    froms: dict[str, set[str]] = {}
    for node in nodes:
        if isinstance(node, ast.Import):
            plain.update(ast.unparse(ast.Import([alias])) for alias in node.names)
        else:
            froms.setdefault(node.module, set()).update(ast.unparse(alias) for alias in node.names)
    statements = [(name.split()[1], name) for name in plain]
    statements += [(module, f"from {module} import {', '.join(sorted(names))}") for module, names in froms.items()]

    def section(standard: bool) -> list[str]:
        chosen = [(module, text) for module, text in statements
                  if (module.split(".")[0] in sys.stdlib_module_names) == standard]
        # isort's order: plain imports first, then from-imports, each sorted by module.
        return [text for _, text in sorted(chosen, key=lambda item: (item[1].startswith("from "), item[0]))]

    return "\n\n".join("\n".join(lines) for lines in (section(True), section(False)) if lines)
