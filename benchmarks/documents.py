"""How long symbp takes to write a derivation (and a worksheet) for networks up to 4 layers and 12 units wide.

    python benchmarks/documents.py [--worksheets] [--repeat N]

Prints one row per network: its sizes, its parameter count, and the best of N wall-clock times
for `derivation_document` (and `worksheet_document` with the answer key when --worksheets is given).
The target is under 5 s for each.
"""

from __future__ import annotations

import argparse
import time

NETWORKS = {
    "3-2-1 sigmoid/exp": ([3, 2, 1], ["sigmoid", "exponential"], "squared_error"),
    "2-12-1 tanh/linear": ([2, 12, 1], ["tanh", "linear"], "squared_error"),
    "4-6-3 tanh/softmax": ([4, 6, 3], ["tanh", "softmax"], "cross_entropy"),
    "2-4-1 leaky/sigmoid": ([2, 4, 1], ["leaky_relu", "sigmoid"], "binary_cross_entropy"),
    "3-8-8-6-1 deep": ([3, 8, 8, 6, 1], ["sigmoid", "tanh", "sigmoid", "linear"], "squared_error"),
    "12-12-12-12-12 widest": ([12, 12, 12, 12, 12], ["relu", "tanh", "sigmoid", "softmax"], "cross_entropy"),
    "2-3-3-3-2 small deep": ([2, 3, 3, 3, 2], ["sigmoid"] * 4, "squared_error"),
    "3-8-8-6-1 relu": ([3, 8, 8, 6, 1], ["relu", "relu", "relu", "linear"], "squared_error"),
}


def spec_of(name, sizes, activations, loss):
    layers = [{"units": units, "activation": activation} for units, activation in zip(sizes[1:], activations)]
    return {"name": "net_" + name.split()[0].replace("-", "_").replace("/", "_"), "inputs": sizes[0], "layers": layers,
            "loss": {"name": loss}}


def best_time(function, repeat: int) -> tuple[float, float]:
    """The best wall-clock and processor seconds of ``repeat`` runs (processor time is what a busy
    machine does not inflate)."""
    times = []
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        function()
        times.append((time.perf_counter() - started, time.process_time() - cpu))
    return min(wall for wall, _ in times), min(used for _, used in times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worksheets", action="store_true", help="time worksheets with their answer key too")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from symbp.render.latex.document import derivation_document
    from symbp.spec.schema import load_spec

    header = f"{'network':<24} {'params':>6} {'derive s':>9} {'cpu s':>6}" + (
        f" {'worksheet s':>12} {'cpu s':>6}" if args.worksheets else "")
    print(header)
    print("-" * len(header))
    for name, (sizes, activations, loss) in NETWORKS.items():
        spec = load_spec(spec_of(name, sizes, activations, loss))
        wall, cpu = best_time(lambda spec=spec: derivation_document(spec), args.repeat)
        row = f"{name:<24} {spec.parameter_count:>6} {wall:>9.2f} {cpu:>6.2f}"
        if args.worksheets:
            from symbp.render.latex.worksheet_document import worksheet_document

            wall, cpu = best_time(lambda spec=spec: worksheet_document(spec, solutions=True), args.repeat)
            row += f" {wall:>12.2f} {cpu:>6.2f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
