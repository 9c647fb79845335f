"""The digits_conv example's training step at batch 128: symbp's generated NumPy module against PyTorch eager.

    python benchmarks/conv_step.py
    python benchmarks/conv_step.py --batch 256 --repeats 200 --dtype float32

One step is the loss and every parameter's gradient on one batch of the 8 x 8 digits (random rows of the
same shape when scikit-learn is missing): ``loss_and_grad`` for symbp, ``conv2d``/``max_pool2d``/``linear``
forward and ``backward()`` for PyTorch on the CPU (its threads as it sets them). Medians of the repeats, in
microseconds, with the ratio within this run; on demand, never asserted by the tests.
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


def _median_us(step, repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    args = parser.parse_args()
    dtype = np.dtype(args.dtype)
    spec = load_spec("digits_conv")
    module = load_module_from_source(generate_module(spec), spec.name)
    params = module.init_params(0, dtype=dtype)
    X, Y = _batch(args.batch, dtype)
    rows = [("symbp (NumPy)", _median_us(lambda: module.loss_and_grad(params, X, Y), args.repeats))]
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

        rows.append((f"PyTorch eager ({torch.get_num_threads()} threads)", _median_us(torch_step, args.repeats)))
    fastest = min(time_us for _, time_us in rows)
    print(f"digits_conv training step, batch {args.batch}, {args.dtype}, median of {args.repeats}")
    print(f"{'implementation':<30} {'us/step':>10} {'x fastest':>10}")
    for name, time_us in rows:
        print(f"{name:<30} {time_us:>10.0f} {time_us / fastest:>10.2f}")


if __name__ == "__main__":
    main()
