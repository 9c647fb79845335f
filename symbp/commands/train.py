"""symbp train: generate a spec's trainer, train it on data, and write the parameters and pictures."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from pathlib import Path

from symbp.check import load_module_from_source
from symbp.codegen import generate_module
from symbp.datafiles import accuracy, load_training_data, target_kind
from symbp.options import training_values
from symbp.output import NPZ_MARKER, PNG_MARKER, Output, claim_outputs, write_binary_atomically
from symbp.plots import check_drawable, loss_curve_png, network_png, require_matplotlib
from symbp.progress import ProgressBar
from symbp.spec import OPTIMIZERS, load_spec

# What the spec parser gives an "sgd" spec without a batch size; the same holds for --optimizer sgd.
DEFAULT_SGD_BATCH = 32
# A data folder (MNIST's IDX files) is read file by file; outputs must not land on any of them.
MAX_DATA_FOLDER_ENTRIES = 1000
EXIT_FAILED = 1


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
    train.add_argument("--force", action="store_true", help="overwrite files that symbp did not write")
    train.add_argument("--diagnose", action="store_true",
                       help="after training, report saturated or dead units, vanishing or exploding gradients")
    train.add_argument("--quiet", action="store_true", help="print only the final loss and accuracy")
    train.add_argument("--progress", action="store_true",
                       help="show the progress bar even when stderr is not a terminal")
    train.set_defaults(run=run)


def _overrides(args, spec) -> dict:
    """The train() keyword arguments the command line changes, checked as the spec parser checks them."""
    chosen = training_values({
        "epochs": ("--epochs", args.epochs),
        "learning_rate": ("--learning-rate", args.learning_rate),
        "batch_size": ("--batch-size", args.batch_size),
        "seed": ("--seed", args.seed),
    })
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


def _inputs(spec, data: str | None) -> list[Path]:
    """The files this run reads: the spec, and the data file or the files of the data folder."""
    named = data if data is not None else dict(spec.data).get("path")
    paths = [Path(spec.source)]
    if named is not None:
        path = Path(str(named))
        if data is None and not path.is_absolute():
            path = Path(spec.source).parent / path
        paths.append(path)
        if path.is_dir():
            try:
                with os.scandir(path) as entries:
                    paths += [Path(entry.path) for entry, _ in zip(entries, range(MAX_DATA_FOLDER_ENTRIES))]
            except OSError:
                pass  # an unreadable folder is reported by the data loader, with its fix
    return paths


def run(args) -> int:
    spec = load_spec(args.spec)
    chosen = _overrides(args, spec)
    # Every output is checked before training, so a long run never ends in an unwritable path.
    params_path = Path(args.output) if args.output else Path(f"{spec.name}.npz")
    pictures = [Path(path) for path in (args.plot, args.draw) if path]
    outputs = [Output(params_path, NPZ_MARKER), *(Output(path, PNG_MARKER) for path in pictures)]
    claim_outputs(outputs, inputs=_inputs(spec, args.data), force=args.force)
    if args.draw:
        check_drawable(spec)
    if pictures:
        require_matplotlib()
    data = load_training_data(spec, args.data)
    module = load_module_from_source(generate_module(spec), spec.name)

    epochs = chosen.get("epochs", spec.training.epochs)
    bar = ProgressBar(epochs, enabled=False if args.quiet else (True if args.progress else None))

    def show_progress(epoch, loss, params):
        bar.update(epoch, loss)
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
    messages = [" ".join(str(warning.message).split()) for warning in caught]
    with warnings.catch_warnings():
        # A diverged model's loss overflows again here; that is reported below, once.
        warnings.simplefilter("ignore", RuntimeWarning)
        final_loss = float(module.loss(params, data.X, data.Y))
    stopped = history.get("stopped") if isinstance(history, dict) else None
    if stopped == "diverged" or not math.isfinite(final_loss):
        # A model without a finite loss is not a trained model: one line, exit 1, nothing written.
        why = "; ".join(messages) or f"the final loss is {final_loss:g}; try a smaller --learning-rate"
        print(f"symbp: error: training diverged, nothing was written: {why}", file=sys.stderr)
        return EXIT_FAILED
    for message in messages:
        print(f"symbp: warning: {message}", file=sys.stderr)
    force = args.force
    write_binary_atomically(params_path, lambda stream: module.save_params(stream, params),
                            marker=NPZ_MARKER, force=force)
    if args.plot:
        write_binary_atomically(Path(args.plot), lambda stream: loss_curve_png(history, stream, f"{spec.name}: loss"),
                                marker=PNG_MARKER, force=force)
    if args.draw:
        write_binary_atomically(Path(args.draw), lambda stream: network_png(spec, params, stream),
                                marker=PNG_MARKER, force=force)

    if not args.quiet:
        print(f"{spec.name}: {len(history)} epochs of {_settings(spec, chosen)} on {len(data.X)} samples "
              f"in {seconds:.1f} s")
    print(f"final loss {final_loss:.6g} (training set)")
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
