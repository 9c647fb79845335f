"""The bundled example specs that every product takes: the derivation, worksheets and every backend.

A spec with convolution or pooling (``input_shape``) is left out of the derivable ones: its derivation leaves out
the sections that speak of dense units, and tests/test_window_derivation.py and tests/test_window_worksheet.py
cover its documents.
"""

from __future__ import annotations

from pathlib import Path

from symbp.examples import bundled_spec_paths
from symbp.spec.schema import load_spec


def derivable_spec_paths() -> list[Path]:
    return [path for path in bundled_spec_paths() if not load_spec(path).input_shape]
