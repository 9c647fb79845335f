"""The console entry point: Ctrl-C handling installed before anything heavy (SymPy, NumPy) is imported."""

from __future__ import annotations

import os
import signal
import sys
import threading

EXIT_INTERRUPTED = 130
# How long a Ctrl-C may take to end the run before it is ended for it. Python drops a KeyboardInterrupt that
# lands inside a finaliser (a destructor, a garbage-collection callback, common while a library is being
# imported), reporting "Exception ignored" and going on: without this, such a Ctrl-C would be lost and a long
# training run would carry on.
INTERRUPT_GRACE_SECONDS = 2.0
# Set once a Ctrl-C arrives. A KeyboardInterrupt raised while a library is being imported can surface as
# another exception (the library's own import error), which the command line would report as a fault.
_interrupt_received = threading.Event()


def _interrupted() -> int:
    """Ends an interrupted run at once, with status 130.

    The interpreter's own shutdown is skipped: a Ctrl-C that landed while a library was being imported
    can leave it half initialised, and finalising it would end the process by the signal instead.
    Nothing is lost, as every file is written to a temporary name first and renamed into place.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _end_if_still_running() -> None:
    print("symbp: interrupted", file=sys.stderr)
    _interrupted()


def _on_interrupt(signum, frame) -> None:
    """Ctrl-C as Python's own handler takes it (a KeyboardInterrupt here), and a timer that ends the run
    after INTERRUPT_GRACE_SECONDS in case the KeyboardInterrupt is dropped on its way."""
    _interrupt_received.set()
    timer = threading.Timer(INTERRUPT_GRACE_SECONDS, _end_if_still_running)
    timer.daemon = True
    timer.start()
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; Ctrl-C at any moment, even while SymPy loads, ends with exit status 130."""
    signal.signal(signal.SIGINT, _on_interrupt)
    try:
        from symbp.cli.main import main as run

        status = run(argv)
    except KeyboardInterrupt:
        print("symbp: interrupted", file=sys.stderr)
        return _interrupted()
    except Exception:
        if not _interrupt_received.is_set():
            raise
        print("symbp: interrupted", file=sys.stderr)
        return _interrupted()
    if status == EXIT_INTERRUPTED:
        return _interrupted()
    if status != 0 and _interrupt_received.is_set():
        # The run failed after a Ctrl-C: the interrupt is what ended it, whatever it surfaced as.
        print("symbp: interrupted", file=sys.stderr)
        return _interrupted()
    return status


if __name__ == "__main__":
    sys.exit(main())
