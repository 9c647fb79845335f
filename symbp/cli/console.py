"""The console entry point: Ctrl-C handling installed before anything heavy (SymPy, NumPy) is imported."""

from __future__ import annotations

import os
import sys

EXIT_INTERRUPTED = 130


def _interrupted() -> int:
    """Ends an interrupted run at once, with status 130.

    The interpreter's own shutdown is skipped: a Ctrl-C that landed while a library was being imported
    can leave it half initialised, and finalising it would end the process by the signal instead.
    Nothing is lost, as every file is written to a temporary name first and renamed into place.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; Ctrl-C at any moment, even while SymPy loads, ends with exit status 130."""
    try:
        from symbp.cli.main import main as run

        status = run(argv)
    except KeyboardInterrupt:
        print("symbp: interrupted", file=sys.stderr)
        return _interrupted()
    if status == EXIT_INTERRUPTED:
        return _interrupted()
    return status


if __name__ == "__main__":
    sys.exit(main())
