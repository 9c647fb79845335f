"""The command line: a thin layer over symbp's Python API."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

from symbp import __version__
from symbp.backends import backend
from symbp.check import check_gradients, load_module_from_source
from symbp.codegen import MARKER, generate_module
from symbp.errors import SymbpError
from symbp.examples import EXAMPLES, bundled_spec_paths
from symbp.output import write_atomically
from symbp.spec import load_spec


def _generate(args) -> int:
    chosen = backend(args.backend)
    generate = chosen.generator()
    if args.all_examples:
        folder = Path(args.output or "generated")
        if not folder.is_dir():
            raise SymbpError(f"{folder}: directory does not exist; create it or give another with -o")
        for path in bundled_spec_paths():
            spec = load_spec(path)
            target = folder / f"{spec.name}{chosen.suffix}.py"
            write_atomically(target, generate(spec), marker=MARKER, force=args.force)
            print(f"wrote {target}")
        return 0
    if not args.spec:
        raise SymbpError("generate: give a SPEC (a .toml or .json file, or an example name) or --all-examples")
    spec = load_spec(args.spec)
    source = generate(spec)
    target = Path(args.output) if args.output else Path("generated") / f"{spec.name}{chosen.suffix}.py"
    write_atomically(target, source, marker=MARKER, force=args.force)
    print(f"wrote {target} ({spec.parameter_count} parameters)")
    return 0


def _check(args) -> int:
    spec = load_spec(args.spec)
    report = check_gradients(spec, samples=args.samples, seed=args.seed)
    print(f"{spec.name}: gradient check on {report.samples} random samples (max relative error per parameter)")
    print(report.table())
    verdict = "PASS" if report.passed else "FAIL"
    print(f"{verdict}: worst {report.worst:.2e} (tolerance {report.tolerance:.0e})")
    return 0 if report.passed else 1


def _examples(args) -> int:
    specs = [load_spec(path) for path in bundled_spec_paths()]
    width = max(len(spec.name) for spec in specs) + 2
    for spec in specs:
        example = EXAMPLES.get(spec.name)
        print(f"{spec.name:<{width}}{example.summary if example else spec.title}")
    return 0


def _demo(args) -> int:
    from symbp.reproduce import reproduce

    name = args.example
    if name not in EXAMPLES:
        raise SymbpError(f"demo: no published result for '{name}'; choose one of {', '.join(EXAMPLES)}")
    spec = load_spec(name)
    started = time.perf_counter()
    source = generate_module(spec)
    module = load_module_from_source(source, spec.name)
    print(f"1. generated a {len(source.splitlines())}-line NumPy module for '{spec.name}' "
          f"in {time.perf_counter() - started:.2f} s")
    report = check_gradients(spec, module=module)
    print(f"2. gradient check: worst relative error {report.worst:.1e} "
          f"({'pass' if report.passed else 'FAIL'}; finite differences and SymPy's expanded loss)")
    outcome = reproduce(name)
    if outcome.passed is None:
        raise SymbpError(f"demo: {name}: {outcome.obtained}")
    for number, (heading, lines) in enumerate(outcome.details, start=3):
        print(f"{number}. {heading}")
        for line in lines:
            print(f"   {line}")
    agrees = outcome.passed and report.passed
    print(f"{'PASS' if agrees else 'FAIL'}: {outcome.obtained}")
    return 0 if agrees else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="symbp",
        description="Backpropagation derived by SymPy: standalone NumPy trainers, checked numerically.",
    )
    parser.add_argument("--version", action="version", version=f"symbp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser("generate", help="write the NumPy trainer module for a spec")
    generate.add_argument("spec", nargs="?", help="a .toml or .json spec, or a bundled example's name")
    generate.add_argument("-o", "--output", help="output file (default generated/NAME.py); folder for --all-examples")
    generate.add_argument("--all-examples", action="store_true", help="regenerate every bundled example")
    generate.add_argument("--backend", default="numpy", metavar="NAME",
                          help="array library of the module: numpy (default) or array-api (NumPy, PyTorch, JAX, Dask)")
    generate.add_argument("--force", action="store_true", help="overwrite a file that symbp did not write")
    generate.set_defaults(run=_generate)

    check = commands.add_parser("check", help="check the generated gradient against two independent oracles")
    check.add_argument("spec", help="a .toml or .json spec, or a bundled example's name")
    check.add_argument("--samples", type=int, default=6, help="random samples to check on (default 6)")
    check.add_argument("--seed", type=int, default=0, help="seed for the random data and parameters")
    check.set_defaults(run=_check)

    demo = commands.add_parser("demo", help="generate, check and train a bundled example; compare with its source")
    demo.add_argument("example", nargs="?", default="actuarial", help="example name (default actuarial)")
    demo.set_defaults(run=_demo)

    examples = commands.add_parser("examples", help="list the bundled example specs")
    examples.set_defaults(run=_examples)

    import symbp.commands

    for module in sorted(pkgutil.iter_modules(symbp.commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"symbp.commands.{module.name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except SymbpError as error:
        print(f"symbp: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("symbp: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
