"""The command line: a thin layer over symbp's Python API.

Only the command being run is imported: ``symbp --version`` and ``symbp --help`` load neither SymPy
nor NumPy, and each command module imports its heavy dependencies itself.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from symbp import __version__
from symbp.errors import SymbpError

# The folder `symbp generate` writes to when no -o is given; created on first use.
DEFAULT_FOLDER = Path("generated")
# More samples add nothing to a gradient check but time.
MAX_CHECK_SAMPLES = 10_000
# Exit statuses: 2 for bad input (as argparse), 70 (EX_SOFTWARE) for a fault in symbp, 130 for Ctrl-C.
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a program whose reader went away


@dataclass(frozen=True)
class Command:
    """What the help says about one command, and the module that defines it (None: this module)."""

    summary: str
    description: str
    example: str
    module: str | None = None


COMMANDS: dict[str, Command] = {
    "generate": Command(
        "write the standalone NumPy trainer module for a spec",
        "Derives the spec's loss and gradients with SymPy and writes them as a NumPy module that trains the "
        "network on its own (it imports NumPy only). The module is written to generated/NAME.py unless -o "
        "names another file; the folder generated/ is created when it is missing. A file that symbp did not "
        "write is never overwritten without --force. --backend array-api writes NAME_array_api.py instead, one "
        "module for NumPy, PyTorch, JAX and Dask arrays (needs symbp[array-api]); --backend cupy writes "
        "NAME_cupy.py, the training step on a CUDA GPU with one fused kernel per layer (runs with symbp[cupy]).",
        "symbp generate xor\nsymbp generate my_net.toml -o my_net.py\nsymbp generate xor --backend array-api\n"
        "symbp generate --all-examples -o generated",
    ),
    "check": Command(
        "check the generated gradient against finite differences and SymPy",
        "Compares the generated module's gradient with central finite differences in float64 and, for "
        "networks of up to 60 parameters, with SymPy's derivative of the fully expanded loss, on random "
        "data and parameters. Prints the largest relative error per parameter array; exits 1 on failure.",
        "symbp check actuarial\nsymbp check my_net.toml --samples 20 --seed 3",
    ),
    "derive": Command(
        "write the step-by-step LaTeX derivation of backpropagation",
        "Writes a LaTeX document deriving every gradient of the spec's network step by step, in the "
        "notation of one of the reference texts (--notation). With --pdf it is also compiled (needs TeX Live); "
        "--html writes a self-contained web page instead (MathML, readable without TeX).",
        "symbp derive house_prices --pdf\nsymbp derive my_net.toml --notation slides -o my_net.tex\n"
        "symbp derive actuarial --html",
        "symbp.cli.commands.latex",
    ),
    "worksheet": Command(
        "write a LaTeX worksheet on backpropagation by hand, with an answer key",
        "Writes exercises on the spec's network: derive named gradients, one forward pass, backward pass and "
        "update by hand on small numbers, and a few steps of gradient descent on a line. --solutions adds "
        "the answer key in exact arithmetic; --variant N gives another set of numbers, the same every time. "
        "--roster writes a sheet per student with one answer key and answers.csv; --format exports the "
        "exercises to Moodle XML, QTI (and Canvas) or PrairieLearn; --html (--format html) writes web pages.",
        "symbp worksheet linear_regression --solutions\nsymbp worksheet xor --notation slides --variant 7\n"
        "symbp worksheet xor --roster students.csv -o class\nsymbp worksheet xor --format moodle -o quiz\n"
        "symbp worksheet xor --html --solutions",
        "symbp.cli.commands.latex",
    ),
    "grade": Command(
        "grade students' answers to their worksheets, naming the first slip",
        "Reads the answers.csv that 'symbp worksheet SPEC --roster' wrote, filled in with the students' own "
        "numbers, and reports for each student the first answer that does not follow from their own earlier "
        "answers: which layer's error term, which weight's gradient, and the slip where it is recognisable (a "
        "wrong sign, a missing derivative factor, a transposed product, a wrong learning rate).",
        "symbp grade xor class/answers.csv",
        "symbp.cli.commands.grade",
    ),
    "train": Command(
        "train a spec's network on data; write its parameters, loss curve and drawing",
        "Generates the spec's NumPy trainer and trains it on the spec's bundled data or on --data (CSV, NPZ "
        "or an MNIST folder). The progress bar, the history, the plot and the final loss all show the "
        "spec's loss on the whole training set. --validation holds out a fraction (or --validation-data a "
        "file) whose loss is shown beside it; --patience stops early and restores the best parameters. "
        "--dask trains on data larger than memory, read a chunk at a time.",
        "symbp train iris --validation 0.2 --patience 20 --history history.csv --plot loss.png\n"
        "symbp train my_net.toml --data points.csv --epochs 500 -o my_net.npz --draw net.png\n"
        "symbp train my_net.toml --dask --data X.npy --targets Y.npy -o my_net.npz",
        "symbp.cli.commands.train",
    ),
    "predict": Command(
        "predict with saved parameters; accuracy and loss when the data has targets",
        "Loads the parameters that symbp train wrote, runs the network on --data and prints the first "
        "predictions (for classifiers the class) with the loss and accuracy when the data holds targets. "
        "-o writes every prediction to a CSV file with a header.",
        "symbp predict iris --params iris.npz\nsymbp predict my_net.toml --params my_net.npz --data new.csv "
        "-o predictions.csv",
        "symbp.cli.commands.predict",
    ),
    "diagnose": Command(
        "look for saturated or dead units and vanishing or exploding gradients",
        "Runs the generated module's diagnose() on the data with the given (or initial) parameters: per "
        "layer the share of saturated sigmoid/tanh units, of dead ReLUs and the gradient norm, the loss "
        "trend when --epochs trains first, and hints in words.",
        "symbp diagnose iris --params iris.npz\nsymbp diagnose house_prices --epochs 300",
        "symbp.cli.commands.diagnose",
    ),
    "reproduce": Command(
        "run the reference texts' examples and compare with what the texts report",
        "Runs each bundled example as its text did (fast settings unless --full) and prints a table: what "
        "the source reports, what symbp gets, and the command that shows it.",
        "symbp reproduce --all\nsymbp reproduce parity --full",
        "symbp.cli.commands.reproduce",
    ),
    "demo": Command(
        "generate, check and train a bundled example; compare with its source",
        "Generates the example's module, checks its gradient, trains it as its text did and compares the "
        "result with the published values (default: the actuarial lab's 3-2-1 network).",
        "symbp demo\nsymbp demo fausett",
    ),
    "examples": Command(
        "list the bundled example specs",
        "Lists the bundled example specs by name; a name can be given wherever a SPEC is asked for.",
        "symbp examples",
    ),
}


def _describe(parser: argparse.ArgumentParser, command: Command) -> None:
    parser.description = textwrap.fill(command.description, width=78)
    heading = "example:" if "\n" not in command.example else "examples:"
    parser.epilog = heading + "\n" + textwrap.indent(command.example, "  ")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def _generate(args) -> int:
    from symbp.examples import bundled_spec_paths
    from symbp.output import ModuleMarker, Output, claim_outputs, write_atomically
    from symbp.render.code.backends import backend
    from symbp.render.code.numpy_module import MARKER
    from symbp.spec.schema import load_spec

    marker = ModuleMarker(MARKER)
    chosen = backend(args.backend)
    generate = chosen.generator()
    if args.all_examples:
        folder = Path(args.output) if args.output else _default_folder()
        if not folder.is_dir():
            raise SymbpError(f"{folder}: directory does not exist; create it or give another with -o")
        specs = [load_spec(path) for path in bundled_spec_paths()]
        targets = [folder / f"{spec.name}{chosen.suffix}.py" for spec in specs]
        claim_outputs([Output(target, marker) for target in targets],
                      inputs=[spec.source for spec in specs], force=args.force)
        for spec, target in zip(specs, targets, strict=True):
            write_atomically(target, generate(spec), marker=marker, force=args.force)
            print(f"wrote {target}")
        return 0
    if not args.spec:
        raise SymbpError("generate: give a SPEC (a .toml or .json file, or an example name) or --all-examples")
    spec = load_spec(args.spec)
    target = Path(args.output) if args.output else _default_folder() / f"{spec.name}{chosen.suffix}.py"
    claim_outputs([Output(target, marker)], inputs=[spec.source], force=args.force)
    source = generate(spec)
    write_atomically(target, source, marker=marker, force=args.force)
    print(f"wrote {target} ({spec.parameter_count} parameters)")
    return 0


def _default_folder() -> Path:
    """generated/, created (with a note saying so) when a command first writes there."""
    if not DEFAULT_FOLDER.exists():
        DEFAULT_FOLDER.mkdir()
        print(f"created folder {DEFAULT_FOLDER}/")
    return DEFAULT_FOLDER


def _check(args) -> int:
    from symbp.checks.gradients import check_gradients
    from symbp.cli.options import training_values
    from symbp.spec.schema import load_spec

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
    from symbp.examples import EXAMPLES, bundled_spec_paths
    from symbp.spec.schema import load_spec

    specs = [load_spec(path) for path in bundled_spec_paths()]
    width = max(len(spec.name) for spec in specs) + 2
    for spec in specs:
        example = EXAMPLES.get(spec.name)
        print(f"{spec.name:<{width}}{example.summary if example else spec.title}")
    return 0


def _demo(args) -> int:
    from symbp.checks.gradients import check_gradients, load_module_from_source
    from symbp.examples import EXAMPLES
    from symbp.examples.reproduce import reproduce
    from symbp.render.code.numpy_module import generate_module
    from symbp.spec.schema import load_spec

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
    oracles = "finite differences and SymPy's expanded loss" if report.expanded_samples else "finite differences"
    print(f"2. gradient check: worst relative error {report.worst:.1e} "
          f"({'pass' if report.passed else 'FAIL'}; {oracles})")
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


def _register_builtin(commands) -> None:
    generate = commands.add_parser("generate", help=COMMANDS["generate"].summary)
    generate.add_argument("spec", nargs="?", help="a .toml or .json spec, or a bundled example's name")
    generate.add_argument("-o", "--output", help="output file (default generated/NAME.py); folder for --all-examples")
    generate.add_argument("--all-examples", action="store_true", help="regenerate every bundled example")
    generate.add_argument("--backend", default="numpy", metavar="NAME",
                          help="array library of the module: numpy (default), array-api (NumPy, PyTorch, JAX, Dask) "
                               "or cupy (CUDA GPU)")
    generate.add_argument("--force", action="store_true", help="overwrite a file that symbp did not write")
    generate.set_defaults(run=_generate)

    check = commands.add_parser("check", help=COMMANDS["check"].summary)
    check.add_argument("spec", help="a .toml or .json spec, or a bundled example's name")
    check.add_argument("--samples", type=int, default=6, help="random samples to check on (default 6)")
    check.add_argument("--seed", type=int, default=0, help="seed for the random data and parameters")
    check.set_defaults(run=_check)

    demo = commands.add_parser("demo", help=COMMANDS["demo"].summary)
    demo.add_argument("example", nargs="?", default="actuarial", help="example name (default actuarial)")
    demo.set_defaults(run=_demo)

    examples = commands.add_parser("examples", help=COMMANDS["examples"].summary)
    examples.set_defaults(run=_examples)


def _command_modules() -> list[str]:
    import symbp.cli.commands

    return [f"symbp.cli.commands.{module.name}"
            for module in sorted(pkgutil.iter_modules(symbp.cli.commands.__path__), key=lambda m: m.name)]


def build_parser(command: str | None = None, *, every: bool = False) -> argparse.ArgumentParser:
    """The parser with the options of ``command`` (of every command when ``every``); the others are
    listed in the help by their summary, and their modules are imported only when they are chosen."""
    parser = _Parser(
        prog="symbp",
        description="Backpropagation derived by SymPy: standalone NumPy trainers and LaTeX derivations, "
        "checked numerically.",
        epilog="Run 'symbp COMMAND --help' for a command's options and an example.\n"
        "SPEC is a .toml or .json file, or the name of a bundled example ('symbp examples' lists them).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"symbp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    if every or command is not None:
        _register_builtin(commands)
        if every or command not in COMMANDS:
            # A command module that the table does not name yet is found by loading them all.
            modules = _command_modules()
        else:
            modules = [COMMANDS[command].module] if COMMANDS[command].module else []
        for name in modules:
            importlib.import_module(name).register(commands)
    for name, entry in COMMANDS.items():
        if name in commands.choices:
            _describe(commands.choices[name], entry)
        else:
            commands.add_parser(name, help=entry.summary)
    _order_as_listed(commands)
    return parser


def _order_as_listed(commands) -> None:
    """The help lists the commands in COMMANDS's order, whichever were registered first."""
    rank = {name: index for index, name in enumerate(COMMANDS)}
    commands._choices_actions.sort(key=lambda action: rank.get(action.dest, len(rank)))


def _chosen_command(argv: list[str]) -> str | None:
    """The first word that is not an option: the command (the top level has no option with a value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _one_line(text: str, limit: int = 300) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[:limit - 3] + "..."


def _raised_by_interrupt(error: BaseException) -> bool:
    """Whether a KeyboardInterrupt is among the exceptions that led to ``error``."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        command = _chosen_command(argv)
        parser = build_parser(command)
        if command is None and not any(word in ("-h", "--help", "--version") for word in argv):
            parser.print_help()
            return 0
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
        if _raised_by_interrupt(error):
            # A Ctrl-C that landed inside a library's import and came out as that library's import error.
            print("symbp: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        # A fault in symbp itself, not in the input: one line, and the traceback on request.
        if os.environ.get("SYMBP_DEBUG"):
            raise
        detail = _one_line(f"{type(error).__name__}: {error}")
        print(f"symbp: internal error: {detail}; run again with SYMBP_DEBUG=1 to see the traceback, "
              "and please report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
