"""What a user installs: the licence, the typing marker, and a public API with type hints."""

import subprocess
import sys
import typing
import zipfile
from pathlib import Path

import pytest

import symbp

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_the_licence_and_py_typed(tmp_path):
    pytest.importorskip("hatchling")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = tmp_path.glob("symbp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "symbp/py.typed" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)
    metadata = zipfile.ZipFile(wheel).read(next(name for name in names if name.endswith("METADATA"))).decode()
    assert "License-Expression: MIT" in metadata and "Requires-Python: >=3.11" in metadata


def test_licence_names_the_authors():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the symbp authors\n")


def test_changelog_has_an_unreleased_section():
    text = (ROOT / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in text and "keepachangelog.com" in text


def test_the_public_api_is_importable_from_symbp_with_type_hints():
    for name in symbp.__all__:
        if name == "__version__":
            continue
        value = getattr(symbp, name)
        if callable(value) and not isinstance(value, type) and name != "SpecSource":
            hints = typing.get_type_hints(value)
            assert "return" in hints, name
            assert all(parameter in hints for parameter in value.__code__.co_varnames[:value.__code__.co_argcount]
                       ), name
    assert sorted(symbp.__all__) == sorted(dir(symbp))
