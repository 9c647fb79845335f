"""The benchmark workloads: each a spec, its data, its initial parameters and its schedule.

Every implementation trains the same network on the same data in the same mini-batch order, so
they must end at the same parameters; run.py checks that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Workload:
    name: str
    spec: dict
    learning_rate: float
    steps: int
    batch_size: int | None

    def data(self, dtype):
        X, Y = _DATA[self.name]()
        return X.astype(dtype), Y.astype(dtype)

    def initial(self, dtype):
        rng = np.random.default_rng(1)
        params = {}
        for index, layer in enumerate(self.spec["layers"], start=1):
            fan_in = self.spec["inputs"] if index == 1 else self.spec["layers"][index - 2]["units"]
            if "weights" in layer:
                params[f"W{index}"] = np.array(layer["weights"], dtype=dtype)
            else:
                params[f"W{index}"] = rng.normal(0, (2 / (fan_in + layer["units"])) ** 0.5,
                                                 (fan_in, layer["units"])).astype(dtype)
            if layer.get("bias", True):
                params[f"b{index}"] = np.zeros(layer["units"], dtype=dtype)
        return params

    def batch_order(self, n):
        """Row order for the one shuffled epoch; contiguous batches of it are the mini-batches."""
        return np.random.default_rng(0).permutation(n)


def _lab_data():
    X = np.random.RandomState(0).randn(10000, 3)
    W1 = np.array([[0.25, 0.75], [0.5, 0.5], [0.75, 0.25]])
    W2 = np.array([[2.0], [3.0]])
    return X, np.exp((1 / (1 + np.exp(-X @ W1))) @ W2)


def _mnist_like():
    rng = np.random.default_rng(7)
    X = rng.random((60000, 784))
    Y = np.eye(10)[rng.integers(0, 10, 60000)]
    return X, Y


def _house_prices():
    X = np.array([[2104, 3], [1600, 3], [2400, 3], [1416, 2], [3000, 4], [1985, 4], [1534, 3], [1427, 3],
                  [1380, 3], [1494, 3]], dtype=float)
    Y = np.array([[399900], [329900], [369000], [232000], [539900], [299900], [314900], [198999], [212000],
                  [242500]], dtype=float)
    return (X - X.mean(0)) / X.std(0), (Y - Y.mean()) / Y.std()


_DATA = {"W1": _lab_data, "W2": _mnist_like, "W3": _house_prices}

WORKLOADS = {
    "W1": Workload(
        "W1",
        {"name": "w1", "inputs": 3,
         "layers": [{"units": 2, "activation": "sigmoid", "bias": False,
                     "weights": [[0.2, 0.4], [0.6, 0.8], [1.0, 1.2]]},
                    {"units": 1, "activation": "exponential", "bias": False, "weights": [[1.0], [2.0]]}],
         "loss": {"name": "squared_error", "scale": 1.0, "reduction": "mean"}},
        learning_rate=0.0005, steps=5000, batch_size=None,
    ),
    "W2": Workload(
        "W2",
        {"name": "w2", "inputs": 784,
         "layers": [{"units": 32, "activation": "sigmoid"}, {"units": 10, "activation": "sigmoid"}],
         "loss": {"name": "squared_error", "scale": 0.5, "reduction": "mean"}},
        learning_rate=0.5, steps=235, batch_size=256,
    ),
    "W3": Workload(
        "W3",
        {"name": "w3", "inputs": 2,
         "layers": [{"units": 5, "activation": "sigmoid"}, {"units": 1, "activation": "sigmoid"}],
         "loss": {"name": "squared_error", "scale": 0.5, "reduction": "sum"}},
        learning_rate=0.01, steps=5000, batch_size=None,
    ),
}
