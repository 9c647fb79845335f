"""A one-line progress bar for training, redrawn in place with carriage returns.

It writes only to a terminal (or when forced), so logs and pipes never fill with half-drawn lines.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressBar:
    """``update(epoch, loss, val_loss)`` after each epoch; ``close()`` ends the line.

    ``loss`` is the spec's loss on the whole training set, ``val_loss`` the same on the validation
    set (None without one): the figures of ``history["loss"]`` and ``history["val_loss"]``.
    """

    def __init__(self, total: int, *, stream: TextIO | None = None, enabled: bool | None = None,
                 width: int = 30, min_interval: float = 0.1):
        self.total = max(total, 1)
        self.stream = sys.stderr if stream is None else stream
        self.enabled = _is_terminal(self.stream) if enabled is None else enabled
        self.width = width
        # Redrawing on every epoch would cost more than the epochs of a small network.
        self.min_interval = min_interval
        self._started = time.monotonic()
        self._last_drawn = float("-inf")
        self._drawn = False
        self._width_drawn = 0
        self._pending: tuple[int, float, float | None] | None = None

    def update(self, epoch: int, loss: float, val_loss: float | None = None) -> None:
        if not self.enabled:
            return
        done = epoch + 1
        now = time.monotonic()
        if done < self.total and now - self._last_drawn < self.min_interval:
            # Kept, so that a run that stops early still ends its line on its last epoch.
            self._pending = (epoch, loss, val_loss)
            return
        self._pending = None
        self._last_drawn = now
        filled = min(self.width, self.width * done // self.total)
        elapsed = now - self._started
        remaining = elapsed / done * (self.total - done)
        line = (f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} epochs  "
                f"loss {loss:.6g}{'' if val_loss is None else f'  val_loss {val_loss:.6g}'}  "
                f"{_duration(elapsed)} elapsed, {_duration(remaining)} left")
        # Spaces cover the tail of a longer line drawn before.
        self.stream.write("\r" + line.ljust(self._width_drawn))
        self._width_drawn = len(line)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._pending is not None:
            epoch, loss, val_loss = self._pending
            self._last_drawn = float("-inf")
            self.update(epoch, loss, val_loss)
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
