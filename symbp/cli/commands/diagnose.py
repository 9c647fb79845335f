"""symbp diagnose: saturated and dead units, gradient norms per layer and the loss trend, with hints."""

from __future__ import annotations

import sys
import warnings
import zipfile
from pathlib import Path

from symbp.checks.diagnostics import report_for
from symbp.checks.gradients import load_module_from_source
from symbp.cli.options import training_values
from symbp.data.datafiles import load_training_data
from symbp.errors import SymbpError
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec


def register(commands) -> None:
    diagnose = commands.add_parser(
        "diagnose", help="check a network on data for saturated or dead units and vanishing gradients, with hints",
        description="Generates the spec's NumPy module and runs its diagnose() on the data: per layer, the "
        "share of saturated sigmoid/tanh units, of dead ReLUs and the gradient norm; then hints in words.",
    )
    diagnose.add_argument("spec", help="a .toml or .json spec, or a bundled example's name")
    diagnose.add_argument("--params", metavar="PARAMS.npz",
                          help="parameters to examine, as symbp train writes them (default: the initial ones)")
    diagnose.add_argument("--data", metavar="PATH",
                          help="a .csv or .npz file, or an MNIST folder, as for symbp train (default: the spec's data)")
    diagnose.add_argument("--epochs", type=int, default=0, metavar="N",
                          help="first train N epochs with the spec's settings, so the report covers the loss trend")
    diagnose.add_argument("--seed", type=int, help="seed for the initial parameters (default: the spec's)")
    diagnose.set_defaults(run=run)


def _read_params(module, path: Path) -> dict:
    if not path.is_file():
        raise SymbpError(f"{path}: no such parameter file; give the .npz file that symbp train wrote")
    not_params = f"{path}: not a parameter file; give the .npz file that symbp train wrote"
    try:
        return module.load_params(path)
    except ValueError as error:
        # load_params names the file in its own messages (a missing or misshapen array); NumPy does not.
        message = " ".join(str(error).split())
        raise SymbpError(message if message.startswith(f"{path}:") else not_params) from None
    except (OSError, zipfile.BadZipFile, EOFError):
        raise SymbpError(not_params) from None


def run(args) -> int:
    training_values({"epochs": ("--epochs", args.epochs), "seed": ("--seed", args.seed)})
    spec = load_spec(args.spec)
    data = load_training_data(spec, args.data)
    module = load_module_from_source(generate_module(spec), spec.name)
    if args.params:
        params = _read_params(module, Path(args.params))
    else:
        params = module.init_params(spec.training.seed if args.seed is None else args.seed)
    history = None
    if args.epochs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            params, history = module.train(params, data.X, data.Y, epochs=args.epochs)
        for warning in caught:
            print(f"symbp: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    trained = f", after {len(history['loss'])} epochs of training" if history is not None else ""
    print(f"{spec.name}: {'parameters from ' + args.params if args.params else 'initial parameters'}{trained}")
    print(report_for(module, params, data.X, data.Y, history))
    return 0
