"""The digits_conv example's training step at batch 128: symbp's generated NumPy module against PyTorch eager.

    python benchmarks/conv_step.py
    python benchmarks/conv_step.py --batch 256 --repeats 200 --dtype float32
    python benchmarks/conv_step.py --module before.py   # a module generated earlier, as one more row

One step is the loss and every parameter's gradient on one batch of the 8 x 8 digits (random rows of the
same shape when scikit-learn is missing): ``loss_and_grad`` for symbp, ``conv2d``/``max_pool2d``/``linear``
forward and ``backward()`` for PyTorch on the CPU (its threads as it sets them). The implementations take turns,
a block of repeats each per round, so that a busy spell of a shared machine falls on all of them; the table gives
each one's fastest step and its median, in microseconds, and the ratio of the fastest steps within this run. On
demand, never asserted by the tests.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from symbp.checks.gradients import load_module_from_source  # noqa: E402
from symbp.render.code.numpy_module import generate_module  # noqa: E402
from symbp.spec.schema import load_spec  # noqa: E402


def _batch(batch: int, dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
        rows = rng.choice(len(digits.target), size=batch, replace=False)
        X, labels = digits.data[rows] / 16.0, digits.target[rows]
    except ImportError:
        X, labels = rng.random((batch, 64)), rng.integers(0, 10, batch)
    return X.astype(dtype), np.eye(10, dtype=dtype)[labels]


def _timed_us(steps: dict, repeats: int, rounds: int) -> dict[str, list[float]]:
    """Each step's times in microseconds: rounds of a block of repeats per step, in turn, after a warm-up."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        for _ in range(max(3, repeats // 10)):
            step()
    for _ in range(rounds):
        for name, step in steps.items():
            for _ in range(repeats):
                start = time.perf_counter()
                step()
                times[name].append((time.perf_counter() - start) * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=100, help="steps per block (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="blocks per implementation, in turn (default 5)")
    parser.add_argument("--module", type=Path, help="a digits_conv module generated earlier, timed as one more row")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    spec = load_spec("digits_conv")
    module = load_module_from_source(generate_module(spec), spec.name)
    params = module.init_params(0, dtype=dtype)
    X, Y = _batch(args.batch, dtype)
    steps = {"symbp (NumPy)": lambda: module.loss_and_grad(params, X, Y)}
    if args.module is not None:
        earlier = load_module_from_source(args.module.read_text(), spec.name)
        steps[f"symbp ({args.module.name})"] = lambda: earlier.loss_and_grad(params, X, Y)
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        functional = torch.nn.functional
        tensors = {name: torch.tensor(array, requires_grad=True) for name, array in params.items()}
        images, targets = torch.tensor(X).reshape(-1, 1, 8, 8), torch.tensor(Y).argmax(dim=1)

        def torch_step():
            for tensor in tensors.values():
                tensor.grad = None
            hidden = functional.max_pool2d(torch.relu(functional.conv2d(images, tensors["W1"], tensors["b1"])), 2)
            logits = hidden.reshape(len(images), -1) @ tensors["W3"] + tensors["b3"]
            functional.cross_entropy(logits, targets).backward()

        steps[f"PyTorch eager ({torch.get_num_threads()} threads)"] = torch_step
    times = _timed_us(steps, args.repeats, args.rounds)
    fastest = min(min(each) for each in times.values())
    print(f"digits_conv training step, batch {args.batch}, {args.dtype}, {args.rounds} rounds of {args.repeats}")
    print(f"{'implementation':<30} {'fastest us':>10} {'median us':>10} {'x fastest':>10}")
    for name, each in times.items():
        print(f"{name:<30} {min(each):>10.0f} {statistics.median(each):>10.0f} {min(each) / fastest:>10.2f}")


if __name__ == "__main__":
    main()
