"""The array-API module's train() on PyTorch tensors against PyTorch eager, taking turns in one warm process.

    python benchmarks/warm_torch.py                          # W2, float64 and float32, 12 rounds
    python benchmarks/warm_torch.py --workloads W1 W2 --dtypes float64 --rounds 20
    python benchmarks/warm_torch.py --saved before/          # also before/w2_array_api.py, a module generated
                                                             # earlier, in the same rounds

run.py starts a process for every run, so each run pays PyTorch's first calls and lands wherever the
machine's load happens to be; on W2 in float64, where both spend most of a step in the same MKL
products, its spreads can exceed the difference. Here the implementations run in turn, round after
round, in one process after a first run that is not timed: drift in the machine's speed falls on them
alike, and the ratio of the medians (and of the fastest rounds) is taken within this one run. Each run
is what run.py times, one epoch (W2) or all steps (W1, W3) ending with the loss on the whole set.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from implementations import _array_api_source, _array_api_train, torch_eager  # noqa: E402
from workloads import WORKLOADS  # noqa: E402


def _runs(workload, dtype, saved):
    X, Y = workload.data(dtype)
    params = workload.initial(dtype)
    runs = {
        "PyTorch eager": lambda: torch_eager(workload, X, Y, params)[0],
        "symbp on PyTorch": lambda: _array_api_train(workload, X, Y, params, _array_api_source(workload, False),
                                                     "torch")[0],
    }
    if saved is not None:
        source = (saved / f"{workload.spec['name']}_array_api.py").read_text()
        runs["symbp on PyTorch (saved)"] = lambda: _array_api_train(workload, X, Y, params, source, "torch")[0]
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="*", default=["W2"], choices=sorted(WORKLOADS))
    parser.add_argument("--dtypes", nargs="*", default=["float64", "float32"], choices=["float64", "float32"])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--saved", type=Path, help="a folder of array-API modules generated earlier, "
                                                   "SPEC_NAME_array_api.py")
    args = parser.parse_args(argv)
    import torch

    print(f"# PyTorch {torch.__version__} on {torch.get_num_threads()} threads; ms per step over {args.rounds} "
          "rounds, taken in turn in one process")
    print(f"{'workload':8} {'dtype':8} {'implementation':26} {'median':>8} {'fastest':>8} {'/ eager':>8}")
    for name in args.workloads:
        workload = WORKLOADS[name]
        for dtype in args.dtypes:
            runs = _runs(workload, np.dtype(dtype), args.saved)
            for run in runs.values():  # PyTorch's first calls, outside the timing
                run()
            times = {label: [] for label in runs}
            for _ in range(args.rounds):
                for label, run in runs.items():
                    times[label].append(run() / workload.steps * 1e3)
            eager = statistics.median(times["PyTorch eager"])
            for label, values in times.items():
                median = statistics.median(values)
                print(f"{name:8} {dtype:8} {label:26} {median:8.3f} {min(values):8.3f} {median / eager:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
