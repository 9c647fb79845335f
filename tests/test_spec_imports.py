"""Reading a spec needs only the stages below the renderers: the spec, the registry and the errors."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from symbp.render.latex.notation import NOTATION_NAMES as PRESET_NAMES
from symbp.spec.schema import NOTATION_NAMES

ROOT = Path(__file__).resolve().parent.parent
# symbp.examples holds the bundled specs as data (and imports nothing of symbp's).
ALLOWED = ("symbp.spec", "symbp.registry", "symbp.errors", "symbp.examples")


def _symbp_imports(path: Path) -> set[str]:
    """Every symbp module a file imports, at its top or inside a function."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {name for name in imported if name == "symbp" or name.startswith("symbp.")}


def test_the_spec_and_the_registry_import_nothing_from_later_stages():
    files = [*sorted((ROOT / "symbp" / "spec").glob("*.py")), *sorted((ROOT / "symbp" / "registry").glob("*.py"))]
    later = {f"{path.relative_to(ROOT)}: {name}" for path in files for name in _symbp_imports(path)
             if not name.startswith(ALLOWED)}
    assert not later


def test_loading_a_spec_loads_no_renderer():
    code = ("import sys; from symbp.spec.schema import load_spec; load_spec('xor'); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('symbp.'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = result.stdout.split()
    assert "symbp.spec.schema" in loaded
    assert [name for name in loaded if not name.startswith(ALLOWED)] == []


def test_a_spec_offers_exactly_the_notation_presets():
    assert NOTATION_NAMES == PRESET_NAMES
