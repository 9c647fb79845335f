"""How generating a module grows with an expression's nesting and a network's layer count.

Prints one table: seconds to generate the module (spec already parsed) for tanh nested 1..6 deep
(the most the expression grammar accepts), ReLU6-style min/max nesting, and 10..100 one-unit layers
(the most a spec accepts). Run: python benchmarks/generation_depth.py
"""

from __future__ import annotations

import time

from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec


def _spec(layers: list[dict]) -> dict:
    return {"name": "net", "inputs": 1, "layers": layers}


def _cases():
    for depth in range(1, 7):
        yield f"tanh nested {depth} deep", _spec([{"units": 1, "activation": {"expr": "tanh(" * depth + "x" +
                                                                                   ")" * depth}}])
    for depth in (1, 2, 3):
        expr = "min(max(" * depth + "x" + ", 0), 6)" * depth
        yield f"min(max(...)) nested {2 * depth} deep", _spec([{"units": 1, "activation": {"expr": expr}}])
    for count in (10, 25, 50, 100):
        yield f"{count} one-unit sigmoid layers", _spec([{"units": 1, "activation": "sigmoid"}] * count)


def main() -> None:
    generate_module(load_spec(_spec([{"units": 1, "activation": "sigmoid"}])))  # imports and caches warm
    print(f"{'case':<34} {'generate (s)':>12}")
    for label, raw in _cases():
        spec = load_spec(raw)
        started = time.perf_counter()
        generate_module(spec)
        print(f"{label:<34} {time.perf_counter() - started:>12.2f}")


if __name__ == "__main__":
    main()
