"""Training on data larger than memory: symbp's array-API module on Dask chunks under a memory limit.

    python benchmarks/out_of_memory.py                      # limit 768 MiB, data 4x that, 5 steps
    python benchmarks/out_of_memory.py --limit-mib 256 --steps 3 --folder /big/disk

The data (inputs and targets of a 16-8-1 regression, float64) are written first as memory-mapped
.npy files, `--factor` times the memory limit. Each measurement then runs in a child process that
sets that limit on its own address space (RLIMIT_AS: everything it maps counts, files included)
before it imports anything:

- the array-API module trains on all the rows through `symbp.data.chunks` (each Dask task maps
  just its chunk's rows), full-batch gradient descent, `--steps` steps on Dask's threads;
- the NumPy module loading all the rows: it must fail for lack of memory, or the limit proves nothing;
- the NumPy module and the array-API module on Dask, `--steps` steps each on the first rows, as
  many as fit in a sixteenth of the limit: the two must end at the same loss (1e-10 relative).

Rows per second count every row of every step (a step is one pass over the data for the gradient;
the loss of each epoch comes with it); CPU s / s is the run's processor time per second of it (at
most the number of threads; well below 1 when it waits on the disk). Checking the data (finite
values, one pass) is timed apart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SPEC = {
    "name": "wide_regression",
    "inputs": 16,
    "layers": [{"units": 8, "activation": "sigmoid"}, {"units": 1, "activation": "linear"}],
    "loss": {"name": "squared_error", "reduction": "mean"},
    "training": {"optimizer": "gd", "learning_rate": 0.5, "seed": 0},
}
ROW_BYTES = 8 * (SPEC["inputs"] + 1)
WRITE_BLOCK_ROWS = 1 << 18
AGREEMENT = 1e-10


def _write_npy(path: Path, rows: int, columns: int, blocks) -> None:
    """An .npy file of float64 written block by block from an iterator, never held whole (nor mapped)."""
    import numpy as np

    with open(path, "wb") as stream:
        np.lib.format.write_array_header_2_0(stream, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (rows, columns)})
        for block in blocks:
            stream.write(np.ascontiguousarray(block, dtype="<f8").tobytes())


def write_data(folder: Path, rows: int, first: int) -> tuple[Path, Path]:
    """X (rows, 16) and Y (rows, 1) from a fixed teacher network plus noise, written a block at a time;
    and their first rows again as X_first.npy and Y_first.npy."""
    import numpy as np

    rng = np.random.default_rng(0)
    teacher_hidden = rng.normal(size=(SPEC["inputs"], 8)) / 4
    teacher_out = rng.normal(size=(8, 1))

    def blocks(count, seed):
        """(inputs, targets) blocks of rows; the same seed gives the same rows, so X and Y are written apart."""
        draw = np.random.default_rng(seed)
        for start in range(0, count, WRITE_BLOCK_ROWS):
            inputs = draw.normal(size=(min(count, start + WRITE_BLOCK_ROWS) - start, SPEC["inputs"]))
            yield inputs, np.tanh(inputs @ teacher_hidden) @ teacher_out + 0.1 * draw.normal(size=(len(inputs), 1))

    X_path, Y_path = folder / "X.npy", folder / "Y.npy"
    _write_npy(X_path, rows, SPEC["inputs"], (inputs for inputs, _ in blocks(rows, 1)))
    _write_npy(Y_path, rows, 1, (targets for _, targets in blocks(rows, 1)))
    for path in (X_path, Y_path):
        np.save(path.with_name(f"{path.stem}_first.npy"), np.load(path, mmap_mode="r")[:first])
    return X_path, Y_path


# --- the measurements, each in a child process under the limit ---------------------------------------------------


def _limit(limit_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mib() -> float:
    """This process's largest resident set (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def child_dask(X_path: str, Y_path: str, chunk_rows: int, steps: int, threads: int) -> dict:
    import dask
    import dask.array as da

    from symbp.checks.gradients import load_module_from_source
    from symbp.data.chunks import load_chunked_data
    from symbp.render.code.backends.array_api import generate_array_api_module
    from symbp.spec.schema import load_spec

    spec = load_spec(SPEC)
    module = load_module_from_source(generate_array_api_module(spec), "wide_regression_array_api")
    with dask.config.set(scheduler="threads", num_workers=threads):
        started = time.perf_counter()
        data = load_chunked_data(spec, X_path, Y_path, chunk_rows=chunk_rows)
        checked = time.perf_counter() - started
        X, Y = data.X, data.Y
        start = {name: da.from_array(value) for name, value in module.init_params(0).items()}
        started, cpu = time.perf_counter(), _cpu_seconds()
        _, history = module.train(start, X, Y, epochs=steps)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {"rows": int(X.shape[0]), "chunks": int(X.numblocks[0]), "chunk_rows": int(max(X.chunks[0])),
            "seconds": seconds, "cpu": cpu, "check_seconds": checked, "loss": history["loss"][-1],
            "peak_mib": _peak_mib()}


def child_numpy(X_path: str, Y_path: str, steps: int) -> dict:
    import numpy as np

    from symbp.checks.gradients import load_module_from_source
    from symbp.render.code.numpy_module import generate_module

    module = load_module_from_source(generate_module(SPEC), "wide_regression")
    try:
        # np.load reads the arrays whole (no memory map): the NumPy module trains on arrays in memory.
        X, Y = np.load(X_path), np.load(Y_path)
    except MemoryError as error:
        return {"failed": f"MemoryError ({str(error).split(' for an array')[0]})", "peak_mib": _peak_mib()}
    started, cpu = time.perf_counter(), _cpu_seconds()
    _, history = module.train(module.init_params(0), X, Y, epochs=steps)
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {"rows": len(X), "seconds": seconds, "cpu": cpu, "loss": history["loss"][-1], "peak_mib": _peak_mib()}


def _run_child(kind: str, limit_bytes: int, *arguments) -> dict:
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
                   "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, __file__, "--child", kind, str(limit_bytes), *map(str, arguments)]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


def _child_main(argv: list[str]) -> None:
    kind, limit_bytes, *rest = argv
    _limit(int(limit_bytes))  # before any import that allocates
    if kind == "dask":
        report = child_dask(rest[0], rest[1], int(rest[2]), int(rest[3]), int(rest[4]))
    else:
        report = child_numpy(rest[0], rest[1], int(rest[2]))
    print(json.dumps(report))


# --- the table ---------------------------------------------------------------------------------------------------


def _mib(count: float) -> str:
    return f"{count / 2**20:,.0f} MiB"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-mib", type=int, default=768, help="the address-space limit of each run (MiB)")
    parser.add_argument("--factor", type=float, default=4.0, help="data size as a multiple of the limit")
    parser.add_argument("--steps", type=int, default=5, help="full-batch gradient steps per run")
    parser.add_argument("--chunk-rows", type=int, default=1 << 17, help="rows per Dask chunk")
    parser.add_argument("--threads", type=int, default=2, help="Dask's threads")
    parser.add_argument("--folder", type=Path, help="where to write the data (default: a temporary folder)")
    args = parser.parse_args(argv)

    limit = args.limit_mib * 2**20
    rows = int(args.factor * limit) // ROW_BYTES
    subset = limit // 16 // ROW_BYTES
    with tempfile.TemporaryDirectory(dir=args.folder) as scratch:
        started = time.perf_counter()
        X_path, Y_path = write_data(Path(scratch), rows, subset)
        written = time.perf_counter() - started
        data_bytes = X_path.stat().st_size + Y_path.stat().st_size
        print(f"data: {rows:,} rows x {SPEC['inputs']} inputs + 1 target, float64, {_mib(data_bytes)} "
              f"({data_bytes / limit:.1f} x the limit of {_mib(limit)}), written in {written:.0f} s", flush=True)
        first = (X_path.with_name("X_first.npy"), Y_path.with_name("Y_first.npy"))
        big = _run_child("dask", limit, X_path, Y_path, args.chunk_rows, args.steps, args.threads)
        whole = _run_child("numpy", limit, X_path, Y_path, args.steps)
        if "failed" not in whole:
            raise SystemExit("the NumPy module loaded all the data under the limit: the limit proves nothing; "
                             "raise --factor")
        small_numpy = _run_child("numpy", limit, *first, args.steps)
        small_dask = _run_child("dask", limit, *first, args.chunk_rows, args.steps, args.threads)
    agreement = abs(small_dask["loss"] - small_numpy["loss"]) / abs(small_numpy["loss"])
    if agreement > AGREEMENT:
        raise SystemExit(f"Dask and NumPy ended at different losses on the same rows: {small_dask['loss']!r} "
                         f"and {small_numpy['loss']!r}")

    print(f"{args.steps} full-batch gradient steps (train() passes over the data {args.steps + 2} times: the "
          f"starting gradient, one per step, the final loss); {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {args.threads} Dask threads")
    print()
    print("| run | rows | chunk rows | memory limit | rows/s | data MiB/s | CPU s / s | final loss | peak resident |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")

    def row(name, report, chunk):
        rate = report["rows"] * args.steps / report["seconds"]
        print(f"| {name} | {report['rows']:,} | {chunk} | {_mib(limit)} | {rate:,.0f} | "
              f"{rate * ROW_BYTES / 2**20:,.0f} | {report['cpu'] / report['seconds']:.2f} | {report['loss']:.10g} | "
              f"{report['peak_mib']:,.0f} MiB |")

    row(f"array-API module on Dask, all rows ({_mib(data_bytes)})", big, f"{big['chunk_rows']:,}")
    print(f"| NumPy module, all rows | {rows:,} | - | {_mib(limit)} | does not fit: {whole['failed']} | - | - | - | "
          f"{whole['peak_mib']:,.0f} MiB |")
    row("NumPy module, first rows", small_numpy, "-")
    row("array-API module on Dask, first rows", small_dask, f"{small_dask['chunk_rows']:,}")
    print()
    print(f"checking all rows before training (one pass): {big['check_seconds']:.1f} s; on the first rows the two "
          f"modules' final losses agree to {agreement:.1e} relative")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child_main(sys.argv[2:])
    else:
        sys.exit(main())
