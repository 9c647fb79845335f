"""The console entry point: Ctrl-C handling installed before anything heavy (SymPy, NumPy) is imported."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; Ctrl-C at any moment, even while SymPy loads, ends with exit status 130."""
    try:
        from symbp.cli import main as run

        return run(argv)
    except KeyboardInterrupt:
        print("symbp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
