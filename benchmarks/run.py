"""Per-step training time of symbp's generated trainers against the alternatives, as a table.

    python benchmarks/run.py                      # every workload, 5 interleaved rounds, then generation
    python benchmarks/run.py --workloads W1 --rounds 3
    python benchmarks/run.py --workloads generation  # only the time to generate and import each example
    python benchmarks/run.py --workloads W1 W2 W3 --rounds 15 --best \
        --implementations symbp jax_jit symbp_jax torch symbp_torch   # the array-API module on JAX and PyTorch

Each implementation runs in a process of its own; rounds are interleaved so that drift in the
machine's speed touches every implementation alike. Times are medians over rounds (with --best, the
fastest round: on a machine shared with other work, the run least disturbed), with the spread
(max - min) beside them, and ratios are taken within this one run. Implementations whose
library is not installed are left out. Every implementation gives what symbp's train() gives, the
parameters and the loss on the whole training set after each epoch; the script fails if any ends at
parameters or a last loss that differ from symbp's.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from implementations import IMPLEMENTATIONS  # noqa: E402
from workloads import WORKLOADS  # noqa: E402

OPTIONAL = {"torch": "torch", "jax_jit": "jax", "autograd": "autograd", "symbp_jax": "jax", "symbp_jax_saved": "jax",
            "symbp_torch": "torch", "symbp_torch_saved": "torch"}
AGREEMENT = {"float64": 1e-8, "float32": 2e-3}


def _worker(args) -> None:
    workload = WORKLOADS[args.workload]
    dtype = np.dtype(args.dtype)
    X, Y = workload.data(dtype)
    result = IMPLEMENTATIONS[args.implementation](workload, X, Y, workload.initial(dtype))
    if result is None:
        print(json.dumps(None))
        return
    seconds, compile_seconds, params, final_loss = result
    if params is not None:
        np.savez(args.params, **{k: np.asarray(v, dtype=np.float64) for k, v in params.items()})
    print(json.dumps({"seconds": seconds, "compile": compile_seconds, "steps": workload.steps,
                      "has_params": params is not None,
                      "loss": None if final_loss is None else float(final_loss)}))


def _available(name: str) -> bool:
    module = OPTIONAL.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def _run_once(implementation, workload, dtype, folder):
    params = Path(folder) / f"{implementation}-{workload}-{dtype}.npz"
    command = [sys.executable, __file__, "--worker", implementation, "--workload", workload, "--dtype", dtype,
               "--params", str(params)]
    output = subprocess.run(command, capture_output=True, text=True)
    if output.returncode != 0:
        raise SystemExit(f"{implementation} on {workload} ({dtype}) failed:\n{output.stderr}")
    result = json.loads(output.stdout.strip().splitlines()[-1])
    if result and result["has_params"]:
        with np.load(params) as stored:
            result["params"] = {k: stored[k] for k in stored}
    return result


def _versions() -> str:
    parts = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    for label, module in (("PyTorch", "torch"), ("JAX", "jax"), ("autograd", "autograd")):
        if importlib.util.find_spec(module):
            parts.append(f"{label} {importlib.metadata.version(module)}")
    return ", ".join(parts)


def _gemm_rate(dtype) -> float:
    """Measured GFLOP/s of a mid-sized matrix product on this machine, for the floor column."""
    import time

    a = np.random.default_rng(0).random((512, 512)).astype(dtype)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - started)
    return 2 * 512**3 / best / 1e9


def _flops_per_step(workload) -> float:
    sizes = [workload.spec["inputs"]] + [layer["units"] for layer in workload.spec["layers"]]
    rows = workload.batch_size or workload.data(np.float64)[0].shape[0]
    forward = sum(2 * rows * a * b for a, b in zip(sizes, sizes[1:]))
    backward = forward + sum(2 * rows * a * b for a, b in zip(sizes[1:-1], sizes[2:]))
    return forward + backward


_GENERATION_WORKER = """
import sys, time
from symbp.render.code.numpy_module import generate_module
from symbp.render.latex.document import derivation_document
from symbp.spec.schema import load_spec
from symbp.render.latex.worksheet_document import worksheet_document
make = {"module": generate_module, "derivation": derivation_document,
        "worksheet": lambda spec: worksheet_document(spec, solutions=True)}[sys.argv[2]]
spec = load_spec(sys.argv[1])
started = time.perf_counter()
make(spec)
print(time.perf_counter() - started)
"""

_IMPORT_WORKER = """
import sys, time
import numpy
before = set(sys.modules)
started = time.perf_counter()
__import__(sys.argv[1])
print(time.perf_counter() - started, sorted(set(sys.modules) - before - {sys.argv[1]}))
"""


def _generation_table(rounds: int) -> None:
    """Seconds from spec to module, derivation and worksheet, each in a fresh process (SymPy's caches
    start empty, nothing is shared between the three), and what importing the generated module costs
    once NumPy is loaded."""
    from symbp.examples import EXAMPLES

    def run(*command, cwd=None):
        return subprocess.run([sys.executable, "-c", *command], capture_output=True, text=True, check=True,
                              cwd=cwd).stdout

    products = ("module", "derivation", "worksheet")
    print("\nGeneration: seconds from spec to each product, median of fresh processes; import in ms after NumPy's")
    header = f"{'example':<20} {'module':>7} {'derivation':>10} {'worksheet':>9} {'import ms':>9}  other imports"
    print(header)
    print("-" * len(header))
    for name in EXAMPLES:
        seconds = {product: statistics.median(float(run(_GENERATION_WORKER, name, product)) for _ in range(rounds))
                   for product in products}
        imports = [run(_IMPORT_WORKER, name, cwd=HERE.parent / "generated").split(" ", 1) for _ in range(rounds)]
        import_ms = statistics.median(float(taken) for taken, _ in imports) * 1e3
        print(f"{name:<20} {seconds['module']:>7.2f} {seconds['derivation']:>10.2f} {seconds['worksheet']:>9.2f} "
              f"{import_ms:>9.2f}  {imports[0][1].strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="*", default=["W1", "W2", "W3", "generation"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--implementations", nargs="*", default=list(IMPLEMENTATIONS))
    parser.add_argument("--best", action="store_true",
                        help="report each implementation's fastest round, not the median")
    parser.add_argument("--worker")
    parser.add_argument("--workload")
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--params")
    args = parser.parse_args()
    if args.worker:
        args.implementation = args.worker
        _worker(args)
        return

    implementations = [name for name in args.implementations if _available(name)]
    print(f"symbp benchmark on {platform.machine()}, {_versions()}")
    print(f"left out (not installed): {', '.join(n for n in args.implementations if not _available(n)) or 'none'}")
    print(f"ms/step: the {'fastest' if args.best else 'median'} of {args.rounds} rounds")
    failures = []
    for workload_name in args.workloads:
        if workload_name == "generation":
            _generation_table(min(args.rounds, 3))
            continue
        workload = WORKLOADS[workload_name]
        for dtype in (("float64", "float32") if workload_name == "W2" else ("float64",)):
            runs = {name: [] for name in implementations}
            with tempfile.TemporaryDirectory() as folder:
                for _ in range(args.rounds):
                    for name in implementations:
                        runs[name].append(_run_once(name, workload_name, dtype, folder))
            runs = {name: results for name, results in runs.items() if results[0] is not None}
            per_step = {name: [r["seconds"] / r["steps"] * 1e3 for r in results] for name, results in runs.items()}
            pick = min if args.best else statistics.median
            median = {name: pick(times) for name, times in per_step.items()}
            reference = runs["symbp"][0]["params"]
            floor_ms = _flops_per_step(workload) / (_gemm_rate(np.dtype(dtype)) * 1e9) * 1e3
            print(f"\n{workload_name} ({dtype}): {workload.steps} steps, batch {workload.batch_size or 'full'}; "
                  f"FLOP floor at this machine's GEMM rate {floor_ms:.4f} ms/step")
            header = (f"{'implementation':<14} {'ms/step':>9} {'spread':>8} {'x symbp':>8} {'vs jax':>7} "
                      f"{'vs torch':>8} {'compile s':>9} {'max |dparam|':>12}")
            print(header)
            print("-" * len(header))
            for name in runs:
                row = runs[name]
                difference = "-"
                if row[0].get("params") is not None:
                    diff = max(float(np.max(np.abs(row[0]["params"][k] - reference[k]))) for k in reference)
                    difference = f"{diff:.1e}"
                    if diff > AGREEMENT[dtype]:
                        failures.append(f"{name} on {workload_name} ({dtype}) ends {diff:.1e} away from symbp")
                final_loss, symbp_loss = row[0].get("loss"), runs["symbp"][0]["loss"]
                tolerance = AGREEMENT[dtype] * max(1.0, abs(symbp_loss))
                if final_loss is not None and abs(final_loss - symbp_loss) > tolerance:
                    failures.append(f"{name} on {workload_name} ({dtype}) reports a last loss of {final_loss!r}, "
                                    f"symbp {symbp_loss!r}")
                spread = max(per_step[name]) - min(per_step[name])
                vs_jax = f"{median[name] / median['jax_jit']:.2f}" if "jax_jit" in median else "-"
                vs_torch = f"{median[name] / median['torch']:.2f}" if "torch" in median else "-"
                compile_seconds = statistics.median(r["compile"] for r in row)
                print(f"{name:<14} {median[name]:>9.4f} {spread:>8.4f} {median[name] / median['symbp']:>8.2f} "
                      f"{vs_jax:>7} {vs_torch:>8} {compile_seconds:>9.2f} {difference:>12}")
    if failures:
        raise SystemExit("parameters disagree:\n" + "\n".join(failures))


if __name__ == "__main__":
    main()
