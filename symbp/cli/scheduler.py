"""Where Dask runs the tasks of `symbp train --dask`: threads of this process, or a dask.distributed cluster."""

from __future__ import annotations

import contextlib
import logging

from symbp.errors import SymbpError

DEFAULT_TIMEOUT_S = 3.0  # a wrong address is reported soon; --scheduler-timeout gives slow links longer
DISTRIBUTED_EXTRA = 'pip install "symbp[dask]"'


@contextlib.contextmanager
def dask_scheduler(address: str | None, timeout: float = DEFAULT_TIMEOUT_S):
    """Runs the block's Dask work on Dask's threads, or on the scheduler at address; yields its name in words.

    A scheduler that does not answer within timeout seconds, or that has no worker by then, is one
    SymbpError line: training never waits on a cluster that cannot run it.
    """
    import dask

    if address is None:
        with dask.config.set(scheduler="threads"):
            yield "Dask's threads"
        return
    try:
        import distributed
    except ImportError:
        raise SymbpError(f"--scheduler: dask.distributed is not installed; install it with {DISTRIBUTED_EXTRA}") \
            from None
    # The client logs each failed attempt to connect; the one line below says it all.
    with _quiet("distributed"):
        try:
            client = distributed.Client(address, timeout=timeout, set_as_default=True)
        except (ValueError, TypeError) as error:
            reason = " ".join(str(error).split())[:120] or type(error).__name__
            raise SymbpError(f"--scheduler: {address!r} is not a scheduler's address ({reason}); give the address "
                             "`dask scheduler` prints, e.g. tcp://10.0.0.5:8786") from None
        except (OSError, TimeoutError) as error:
            reason = " ".join(str(error).split())[:120] or type(error).__name__
            raise SymbpError(f"--scheduler: no Dask scheduler answered at {address} within {timeout:g} s ({reason}); "
                             "start one with `dask scheduler` and give the address it prints, or leave out "
                             "--scheduler to run on this machine's threads") from None
    with client:
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            raise SymbpError(f"--scheduler: the scheduler at {address} has no workers after {timeout:g} s; start "
                             f"some with `dask worker {address}`") from None
        workers = len(client.scheduler_info()["workers"])
        yield f"the Dask scheduler at {address} ({workers} worker{'' if workers == 1 else 's'})"


@contextlib.contextmanager
def _quiet(name: str):
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
