"""What targets a loss accepts, and what targets an output layer's values can match.

Three kinds: rows of class indicators (``one-hot``, rows summing to one, as after softmax),
values ``in [0, 1]`` (a probability per output, as after sigmoid), and any ``real`` number. Each kind
knows how to check a data set's targets (one line naming the first row that does not fit), how to
draw random targets for a gradient check, and whether its targets are classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One-hot rows read from text may carry rounding; a sum this close to one counts as one.
ROW_SUM_SLACK = 1e-6


@dataclass(frozen=True)
class TargetKind:
    name: str  # "one-hot", "in [0, 1]" or "real"
    bounded: bool  # every target between 0 and 1
    rows_sum_to_one: bool
    # Whether targets of this kind are classes: a row's class is its largest entry, a single column's
    # class is whether it is above 1/2.
    classes: bool

    def problem(self, Y: np.ndarray, array: str, needed_by: str) -> str | None:
        """One line naming the first row of ``Y`` that does not fit this kind, or None when all fit.

        ``array`` names the targets (``Y``, ``Y_test``); ``needed_by`` the loss that requires them.
        """
        if self.bounded and ((Y < 0).any() or (Y > 1).any()):
            row = int(np.argwhere((Y < 0) | (Y > 1))[0][0])
            return f"{array} row {row} has a target outside [0, 1]; {needed_by} needs targets between 0 and 1"
        if self.rows_sum_to_one:
            sums = Y.sum(axis=1)
            off = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_SLACK)
            if off.size:
                row = int(off[0])
                return (f"{array} row {row} sums to {sums[row]:.6g}; {needed_by} needs each target row to be "
                        "one-hot (or probabilities summing to 1)")
        return None

    def random(self, rng: np.random.Generator, samples: int, outputs: int) -> np.ndarray:
        """Random targets of this kind, kept away from the ends of [0, 1] where a loss's log is steep."""
        if self.rows_sum_to_one:
            return np.eye(outputs)[rng.integers(0, outputs, samples)]
        if self.bounded:
            return rng.uniform(0.05, 0.95, size=(samples, outputs))
        return rng.normal(size=(samples, outputs))


ONE_HOT = TargetKind("one-hot", bounded=True, rows_sum_to_one=True, classes=True)
IN_UNIT_INTERVAL = TargetKind("in [0, 1]", bounded=True, rows_sum_to_one=False, classes=True)
REAL = TargetKind("real", bounded=False, rows_sum_to_one=False, classes=False)
TARGET_KINDS = (ONE_HOT, IN_UNIT_INTERVAL, REAL)
