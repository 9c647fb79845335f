"""The command line: a thin layer over symbp's Python API."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

from symbp import __version__
from symbp.check import check_gradients, load_module_from_source
from symbp.codegen import MARKER, generate_module
from symbp.errors import SymbpError
from symbp.examples import EXAMPLES, bundled_spec_paths
from symbp.options import training_values
from symbp.output import ModuleMarker, Output, claim_outputs, write_atomically
from symbp.spec import load_spec

MODULE_MARKER = ModuleMarker(MARKER)
# More samples add nothing to a gradient check but time.
MAX_CHECK_SAMPLES = 10_000
# Exit statuses: 2 for bad input (as argparse), 70 (EX_SOFTWARE) for a fault in symbp, 130 for Ctrl-C.
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a program whose reader went away


def _generate(args) -> int:
    if args.all_examples:
        folder = Path(args.output or "generated")
        if not folder.is_dir():
            raise SymbpError(f"{folder}: directory does not exist; create it or give another with -o")
        specs = [load_spec(path) for path in bundled_spec_paths()]
        targets = [folder / f"{spec.name}.py" for spec in specs]
        claim_outputs([Output(target, MODULE_MARKER) for target in targets],
                      inputs=[spec.source for spec in specs], force=args.force)
        for spec, target in zip(specs, targets, strict=True):
            write_atomically(target, generate_module(spec), marker=MODULE_MARKER, force=args.force)
            print(f"wrote {target}")
        return 0
    if not args.spec:
        raise SymbpError("generate: give a SPEC (a .toml or .json file, or an example name) or --all-examples")
    spec = load_spec(args.spec)
    target = Path(args.output) if args.output else Path("generated") / f"{spec.name}.py"
    claim_outputs([Output(target, MODULE_MARKER)], inputs=[spec.source], force=args.force)
    source = generate_module(spec)
    write_atomically(target, source, marker=MODULE_MARKER, force=args.force)
    print(f"wrote {target} ({spec.parameter_count} parameters)")
    return 0


def _check(args) -> int:
    if not 1 <= args.samples <= MAX_CHECK_SAMPLES:
        raise SymbpError(f"--samples: must be from 1 to {MAX_CHECK_SAMPLES}, got {args.samples}")
    # The seed seeds the random parameters as the spec's training.seed does, so it has that field's range.
    training_values({"seed": ("--seed", args.seed)})
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


class _Parser(argparse.ArgumentParser):
    """Reports a command-line mistake in one line, as every other bad input is reported."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"symbp: error: {self.prog}: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="symbp",
        description="Backpropagation derived by SymPy: standalone NumPy trainers, checked numerically.",
    )
    parser.add_argument("--version", action="version", version=f"symbp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser("generate", help="write the NumPy trainer module for a spec")
    generate.add_argument("spec", nargs="?", help="a .toml or .json spec, or a bundled example's name")
    generate.add_argument("-o", "--output", help="output file (default generated/NAME.py); folder for --all-examples")
    generate.add_argument("--all-examples", action="store_true", help="regenerate every bundled example")
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


def _one_line(text: str, limit: int = 300) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[:limit - 3] + "..."


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        status = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at exit
        return status
    except SymbpError as error:
        print(f"symbp: error: {_one_line(str(error), 1000)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("symbp: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our output went away (symbp examples | head -1): stop quietly. Python would
        # otherwise complain again while flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as error:
        # A fault in symbp itself, not in the input: one line, and the traceback on request.
        if os.environ.get("SYMBP_DEBUG"):
            raise
        detail = _one_line(f"{type(error).__name__}: {error}")
        print(f"symbp: internal error: {detail}; run again with SYMBP_DEBUG=1 to see the traceback, "
              "and please report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
