"""Where a training step's time goes: each call of the generated in-place step, timed in place.

    python benchmarks/step_profile.py W1
    python benchmarks/step_profile.py W2 --dtype float32
    python benchmarks/step_profile.py W1 --module before/w1.py   # a module generated earlier, for before and after

The step's lines run in their own order on the workload's real batches (so values stay what
training sees), each followed by a clock reading; the batch gather and the parameter update are
timed the same way, and train() itself once, for the share that is loop overhead. Microseconds
per step, medians over the steps.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from workloads import WORKLOADS  # noqa: E402

from symbp.checks.gradients import load_module_from_source  # noqa: E402
from symbp.render.code.numpy_module import generate_module  # noqa: E402


def _step_calls(source: str) -> list[str]:
    """The statements of _loss_and_grad_into that do arithmetic, in order, as written."""
    step = next(node for node in ast.parse(source).body
                if isinstance(node, ast.FunctionDef) and node.name == "_loss_and_grad_into")
    calls = []
    for statement in step.body:
        text = ast.get_source_segment(source, statement)
        if isinstance(statement, ast.Return) or "work[" in text:
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # the docstring
        calls.append(text)
    return calls


def _timed_step(calls: list[str], work_names, sample_axis: int):
    """A function that runs the step's statements and reads the clock after each one."""
    lines = ["def timed(params, X, Y, work, clock, marks):", f"    _SAMPLE_AXIS = {sample_axis}"]
    lines += [f"    {name} = work[{name!r}]" for name in work_names]
    lines.append("    marks.append(clock())")
    for statement in calls:
        lines += [f"    {statement}", "    marks.append(clock())"]
    namespace = {"np": np}
    exec(compile("\n".join(lines), "<step>", "exec"), namespace)
    return namespace["timed"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--module", type=Path, help="profile this module file (generated for the workload's spec, "
                        "by another version of symbp, say) rather than one generated now")
    args = parser.parse_args()
    workload, dtype = WORKLOADS[args.workload], np.dtype(args.dtype)
    source = args.module.read_text() if args.module else generate_module(workload.spec)
    module = load_module_from_source(source, workload.spec["name"])
    X, Y = workload.data(dtype)
    params = workload.initial(dtype)
    n = X.shape[0]
    size = workload.batch_size or n
    if size * module._WIDEST < module.IN_PLACE_FROM:
        raise SystemExit(f"{args.workload}: batches this small take loss_and_grad, not the in-place step")
    columns = module._SAMPLE_AXIS == 1
    X_step, Y_step = (np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)) if columns else (X, Y)
    batches = [slice(None)] if workload.batch_size is None else [
        rows for rows in np.array_split(workload.batch_order(n), range(size, n, size)) if len(rows) == size]

    calls = _step_calls(source)
    timed = _timed_step(calls, module._workspace(1, dtype), module._SAMPLE_AXIS)

    work = module._workspace(size, dtype)
    steps = workload.steps if workload.batch_size is None else len(batches)
    per_call = [[] for _ in calls]
    gather, updating = [], []
    step_update = module.optimizer_update("gd", workload.learning_rate, 0.0, 0.9, 0.999, 1e-7)
    clock = time.perf_counter
    with np.errstate(all="ignore"):
        for index in range(steps):
            rows = batches[index % len(batches)]
            started = clock()
            X_batch = module.gather(X_step, rows, work, "X_batch", module._SAMPLE_AXIS)
            Y_batch = module.gather(Y_step, rows, work, "Y_batch", module._SAMPLE_AXIS)
            gather.append(clock() - started)
            marks = []
            timed(params, X_batch, Y_batch, work, clock, marks)
            for slot, (before, after) in enumerate(zip(marks, marks[1:])):
                per_call[slot].append(after - before)
            started = clock()
            grads = {name: work[f"grad_{name}"] for name in module.PARAMS}
            step_update(params, grads, index + 1)
            updating.append(clock() - started)
        started = clock()
        epochs = 1 if workload.batch_size else steps
        module.train(workload.initial(dtype), X, Y, learning_rate=workload.learning_rate, epochs=epochs,
                     batch_size=workload.batch_size, seed=0, optimizer="gd")
        train = (clock() - started) / steps

    def micro(samples):
        return statistics.median(samples) * 1e6

    rows = [(statement, micro(samples)) for statement, samples in zip(calls, per_call)]
    step_total = sum(us for _, us in rows)
    accounted = step_total + micro(gather) + micro(updating)
    print(f"{args.workload} ({dtype}), batch {workload.batch_size or 'full'}, "
          f"{'a sample per column' if columns else 'a sample per row'}: train() {train * 1e6:.1f} us per step")
    print(f"{'us':>8} {'share':>6}  call")
    for statement, us in rows:
        print(f"{us:8.2f} {us / (train * 1e6):6.1%}  {statement}")
    for label, us in (("gathering the batch", micro(gather)), ("updating the parameters", micro(updating)),
                      ("train()'s loop and Python calls", train * 1e6 - accounted)):
        print(f"{us:8.2f} {us / (train * 1e6):6.1%}  [{label}]")


if __name__ == "__main__":
    main()
