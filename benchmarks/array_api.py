"""The array-API module against each library's own automatic differentiation, as a table.

    python benchmarks/array_api.py                    # W1 and W2, 3 interleaved rounds
    python benchmarks/array_api.py --workloads W1 --rounds 5 --steps 200
    python benchmarks/array_api.py --saved before/   # also before/w1.py, before/w2.py: array-API modules
                                                     # generated earlier, timed in the same rounds

For each workload the generated array-API module's loss_and_grad drives plain gradient descent on
JAX arrays (the step under jax.jit) and on PyTorch tensors (eager), against the same loop whose
gradient comes from jax.grad of the module's own loss (under jax.jit) and from PyTorch's autograd
on it. Full batch on JAX, the loop hands loss_and_grad the data's transpose (X_T), as train() does.
Same loss, same data, same batches, float64; each pair must end at the same parameters.
Times are the median per step over rounds (each round runs every implementation once, every other
round in the opposite order, so drift in the machine's speed touches them alike); ratios are taken
within this one run. A library that is not installed is left out. PyTorch runs on one thread. With
--saved, array-API modules generated earlier (by another version of symbp, say) step in the same
rounds, marked "(saved)", so that a change is measured before and after in one run. On a machine
shared with other work, --cpu-time times by the process's own CPU seconds (time.process_time) rather
than the wall clock, which then counts waiting for a core; run it with one thread per library, as
PyTorch's is (OPENBLAS_NUM_THREADS=1,
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1").
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from workloads import WORKLOADS  # noqa: E402

from symbp.checks.gradients import load_module_from_source  # noqa: E402
from symbp.render.code.backends.array_api import generate_array_api_module  # noqa: E402
from symbp.spec.schema import load_spec  # noqa: E402


def _batches(workload, n):
    if workload.batch_size is None:
        return [None]
    order = workload.batch_order(n)
    return [order[start:start + workload.batch_size] for start in range(0, n, workload.batch_size)]


def _jax_runs(modules, workload, X, Y, params, steps):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    rate = workload.learning_rate
    batches = [(jnp.asarray(X), jnp.asarray(Y)) if rows is None else (jnp.asarray(X[rows]), jnp.asarray(Y[rows]))
               for rows in _batches(workload, X.shape[0])]

    # Full batch, the data do not change: the loop holds their transpose for the gradient, as train() does
    # (a module generated before loss_and_grad took X_T reads it from X).
    held = {"X_T": jnp.asarray(np.ascontiguousarray(X.T))} if workload.batch_size is None else {}

    def generated(module):
        given = held if "X_T" in inspect.signature(module.loss_and_grad).parameters else {}

        def step(p, x, y):
            _, grads = module.loss_and_grad(p, x, y, **given)
            return {k: p[k] - rate * grads[k] for k in p}
        return step

    def autodiff(p, x, y):
        grads = jax.grad(modules[""].loss)(p, x, y)
        return {k: p[k] - rate * grads[k] for k in p}

    def runner(step):
        step = jax.jit(step)
        start = {k: jnp.asarray(v) for k, v in params.items()}
        # Compile outside the timing, once per batch shape: W2's last batch is shorter, and would
        # otherwise be traced and compiled inside the first round.
        for batch in {batch[0].shape: batch for batch in batches}.values():
            jax.block_until_ready(step(start, *batch))

        def run():
            p = start
            for index in range(steps):
                p = step(p, *batches[index % len(batches)])
            return {k: np.asarray(jax.block_until_ready(v)) for k, v in p.items()}
        return run

    runs = {f"symbp array-api{tag}, JAX jit": runner(generated(module)) for tag, module in modules.items()}
    return {**runs, "jax.grad under jax.jit": runner(autodiff)}


def _torch_runs(modules, workload, X, Y, params, steps):
    import torch

    # One thread: on a small shared machine PyTorch's thread pool mostly waits for cores.
    torch.set_num_threads(1)
    rate = workload.learning_rate
    batches = [(torch.from_numpy(X), torch.from_numpy(Y)) if rows is None
               else (torch.from_numpy(X[rows]), torch.from_numpy(Y[rows])) for rows in _batches(workload, X.shape[0])]

    def generated(module):
        def run():
            p = {k: torch.from_numpy(v.copy()) for k, v in params.items()}
            with torch.no_grad():
                for index in range(steps):
                    _, grads = module.loss_and_grad(p, *batches[index % len(batches)])
                    p = {k: p[k] - rate * grads[k] for k in p}
            return {k: v.numpy() for k, v in p.items()}
        return run

    def autograd():
        p = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in params.items()}
        for index in range(steps):
            value = modules[""].loss(p, *batches[index % len(batches)])
            grads = torch.autograd.grad(value, list(p.values()))
            with torch.no_grad():
                p = {k: (p[k] - rate * g).requires_grad_() for (k, g) in zip(p, grads)}
        return {k: v.detach().numpy() for k, v in p.items()}

    runs = {f"symbp array-api{tag}, PyTorch": generated(module) for tag, module in modules.items()}
    return {**runs, "PyTorch autograd": autograd}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=["W1", "W2"], choices=["W1", "W2"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: W1 500, W2 one epoch)")
    parser.add_argument("--saved", type=Path, help="a folder of array-API modules generated earlier, as SPEC_NAME.py")
    parser.add_argument("--cpu-time", action="store_true", help="time by the process's CPU seconds, not the wall clock")
    args = parser.parse_args(argv)
    clock = time.process_time if args.cpu_time else time.perf_counter
    print(f"# {platform.machine()}, Python {platform.python_version()}, NumPy {np.__version__}, float64, "
          f"{'CPU' if args.cpu_time else 'wall-clock'} time")
    print(f"{'workload':<9}{'implementation':<38}{'ms/step':>10}{'spread':>10}{'autodiff/symbp':>16}")
    for name in args.workloads:
        workload = WORKLOADS[name]
        modules = {"": load_module_from_source(generate_array_api_module(load_spec(workload.spec)), f"bench_{name}")}
        if args.saved:
            saved = (args.saved / f"{workload.spec['name']}.py").read_text()
            modules[" (saved)"] = load_module_from_source(saved, f"saved_{name}")
        X, Y = workload.data(np.float64)
        params = workload.initial(np.float64)
        steps = args.steps or (500 if workload.batch_size is None else -(-X.shape[0] // workload.batch_size))
        pairs = []
        if importlib.util.find_spec("jax"):
            pairs.append(_jax_runs(modules, workload, X, Y, params, steps))
        if importlib.util.find_spec("torch"):
            pairs.append(_torch_runs(modules, workload, X, Y, params, steps))
        times = {label: [] for pair in pairs for label in pair}
        for round_number in range(args.rounds):
            for pair in pairs:
                ends = {}
                # Every other round in the opposite order, so that no implementation always runs first (after
                # the other library's runs) or last.
                turns = list(pair.items())
                for label, run in turns[::-1] if round_number % 2 else turns:
                    started = clock()
                    ends[label] = run()
                    times[label].append((clock() - started) / steps * 1e3)
                *generated, reference = pair
                for label in generated:
                    for key in ends[reference]:
                        if not np.allclose(ends[label][key], ends[reference][key], rtol=1e-8, atol=1e-10):
                            raise SystemExit(f"{name}: {label} and {reference} end at different {key}")
        for pair in pairs:
            reference = list(pair)[-1]
            for label in pair:
                median = statistics.median(times[label])
                ratio = statistics.median(times[reference]) / median
                shown = f"{ratio:.2f}" if label != reference else ""
                print(f"{name:<9}{label:<38}{median:>10.3f}{max(times[label]) - min(times[label]):>10.3f}{shown:>16}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
