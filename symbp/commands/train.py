"""symbp train: generate a spec's trainer, train it on data, and write the parameters and pictures."""

from __future__ import annotations

import math
import sys
import time
import warnings
from pathlib import Path

from symbp.check import load_module_from_source
from symbp.codegen import generate_module
from symbp.datafiles import accuracy, load_training_data, target_kind
from symbp.errors import SymbpError
from symbp.output import check_writable, write_binary_atomically
from symbp.plots import check_drawable, loss_curve_png, network_png, require_matplotlib
from symbp.progress import ProgressBar
from symbp.spec import OPTIMIZERS, load_spec

# What the spec parser gives an "sgd" spec without a batch size; the same holds for --optimizer sgd.
DEFAULT_SGD_BATCH = 32


def register(commands) -> None:
    train = commands.add_parser(
        "train", help="train a spec's generated module on data; write its parameters, loss curve and drawing",
        description="Generates the spec's NumPy trainer, trains it on the spec's bundled data (or --data), "
        "writes the trained parameters, and prints the final loss and, for classifiers, the accuracy.",
    )
    train.add_argument("spec", help="a .toml or .json spec, or a bundled example's name")
    train.add_argument("--data", metavar="PATH",
                       help="a .csv file (inputs then targets, or a class label last), an .npz file with arrays "
                       "X and Y (optionally X_test and Y_test), or a folder of MNIST IDX files")
    train.add_argument("--epochs", type=int, help="epochs to train (default: the spec's)")
    train.add_argument("--learning-rate", type=float, metavar="RATE", help="step size (default: the spec's)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer (default: the spec's)")
    train.add_argument("--batch-size", type=int, metavar="N", help="mini-batch size (default: the spec's)")
    train.add_argument("--seed", type=int, help="seed for the initial weights and the shuffling (default: the spec's)")
    train.add_argument("-o", "--output", metavar="PARAMS.npz", help="where to write the parameters (default NAME.npz)")
    train.add_argument("--plot", metavar="LOSS.png", help="also draw the loss curve as a PNG (needs matplotlib)")
    train.add_argument("--draw", metavar="NET.png",
                       help="also draw the trained network with its weights on the edges (needs matplotlib)")
    train.add_argument("--diagnose", action="store_true",
                       help="after training, report saturated or dead units, vanishing or exploding gradients")
    train.add_argument("--quiet", action="store_true", help="print only the final loss and accuracy")
    train.add_argument("--progress", action="store_true",
                       help="show the progress bar even when stderr is not a terminal")
    train.set_defaults(run=run)


def _overrides(args, spec) -> dict:
    """The train() keyword arguments the command line changes, checked as the spec parser checks them."""
    chosen: dict = {}
    if args.epochs is not None:
        if args.epochs < 0:
            raise SymbpError(f"--epochs: must be 0 or more, got {args.epochs}")
        chosen["epochs"] = args.epochs
    if args.learning_rate is not None:
        if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
            raise SymbpError(f"--learning-rate: must be a number greater than 0, got {args.learning_rate}")
        chosen["learning_rate"] = args.learning_rate
    if args.batch_size is not None:
        if args.batch_size < 1:
            raise SymbpError(f"--batch-size: must be at least 1, got {args.batch_size}")
        chosen["batch_size"] = args.batch_size
    if args.seed is not None:
        if not 0 <= args.seed < 2**32:
            raise SymbpError(f"--seed: must be from 0 to {2**32 - 1}, got {args.seed}")
        chosen["seed"] = args.seed
    if args.optimizer is not None:
        chosen["optimizer"] = args.optimizer
        if args.optimizer == "sgd" and "batch_size" not in chosen and spec.training.batch_size is None:
            chosen["batch_size"] = DEFAULT_SGD_BATCH
    return chosen


def _settings(spec, chosen: dict) -> str:
    training = spec.training
    optimizer = chosen.get("optimizer", training.optimizer)
    rate = chosen.get("learning_rate", training.learning_rate)
    batch = chosen.get("batch_size", training.batch_size)
    return f"{optimizer}, learning rate {rate:g}" + (f", batches of {batch}" if batch else ", full batch")


def run(args) -> int:
    spec = load_spec(args.spec)
    chosen = _overrides(args, spec)
    # Every output is checked before training, so a long run never ends in an unwritable path.
    params_path = Path(args.output) if args.output else Path(f"{spec.name}.npz")
    pictures = [Path(path) for path in (args.plot, args.draw) if path]
    for path in (params_path, *pictures):
        check_writable(path)
    if args.draw:
        check_drawable(spec)
    if pictures:
        require_matplotlib()
    data = load_training_data(spec, args.data)
    module = load_module_from_source(generate_module(spec), spec.name)

    epochs = chosen.get("epochs", spec.training.epochs)
    bar = ProgressBar(epochs, enabled=False if args.quiet else (True if args.progress else None))

    def show_progress(epoch, logs, params):
        bar.update(epoch, logs["loss"])
        return False

    seed = chosen.get("seed", spec.training.seed)
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            params, history = module.train(module.init_params(seed), data.X, data.Y, callback=show_progress, **chosen)
        finally:
            bar.close()
    seconds = time.perf_counter() - started
    losses = history["loss"]
    for warning in caught:
        print(f"symbp: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)

    write_binary_atomically(params_path, lambda stream: module.save_params(stream, params))
    if args.plot:
        write_binary_atomically(Path(args.plot), lambda stream: loss_curve_png(losses, stream, f"{spec.name}: loss"))
    if args.draw:
        write_binary_atomically(Path(args.draw), lambda stream: network_png(spec, params, stream))

    if not args.quiet:
        print(f"{spec.name}: {len(losses)} epochs of {_settings(spec, chosen)} on {len(data.X)} samples "
              f"in {seconds:.1f} s")
    print(f"final loss {module.loss(params, data.X, data.Y):.6g} (training set)")
    if data.X_test is not None:
        print(f"test loss {module.loss(params, data.X_test, data.Y_test):.6g}")
    if spec.loss.name == "cross_entropy" or target_kind(data.Y) is not None:
        X, Y, which = (data.X_test, data.Y_test, "test") if data.X_test is not None else (data.X, data.Y, "training")
        score = accuracy(module.predict(params, X), Y)
        print(f"{which} accuracy {score:.4f} ({round(score * len(Y))}/{len(Y)})")
    if args.diagnose:
        from symbp.diagnostics import report_for

        print(report_for(module, params, data.X, data.Y, history))
    if not args.quiet:
        for path in (params_path, *pictures):
            print(f"wrote {path}")
    return 0
