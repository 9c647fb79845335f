"""symbp train: generate a spec's trainer, train it on data, and write the parameters, history and pictures.

Every figure printed, plotted or written is the spec's loss on the whole training set (and, with a
validation set, on the whole validation set): ``history["loss"]`` and ``history["val_loss"]`` of the
generated ``train()``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import warnings
from pathlib import Path

from symbp.cli.scheduler import DEFAULT_TIMEOUT_S

# What the spec parser gives an "sgd" spec without a batch size; the same holds for --optimizer sgd.
DEFAULT_SGD_BATCH = 32
OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
BACKEND_NAMES = ("numpy", "array-api")
# A data folder (MNIST's IDX files) is read file by file; outputs must not land on any of them.
MAX_DATA_FOLDER_ENTRIES = 1000
EXIT_FAILED = 1


def register(commands) -> None:
    train = commands.add_parser("train", help="train a spec's network on data")
    train.add_argument("spec", help="a .toml or .json spec, or a bundled example's name")
    train.add_argument("--data", metavar="PATH",
                       help="a .csv file (inputs then targets, or a class label last), an .npz file with arrays "
                       "X and Y (optionally X_test and Y_test), or a folder of MNIST IDX files")
    train.add_argument("--epochs", type=int, metavar="N", help="epochs to train (default: the spec's)")
    train.add_argument("--learning-rate", type=float, metavar="RATE", help="step size (default: the spec's)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer (default: the spec's)")
    train.add_argument("--batch-size", type=int, metavar="N", help="mini-batch size (default: the spec's)")
    train.add_argument("--seed", type=int,
                       help="seed for the initial weights, the shuffling and the validation split "
                       "(default: the spec's)")
    train.add_argument("--validation", type=float, metavar="FRACTION",
                       help="hold out this fraction of the training data (e.g. 0.2) to measure the validation loss; "
                       "classes keep their proportions")
    train.add_argument("--validation-data", metavar="PATH",
                       help="a separate validation set, in any format --data accepts")
    train.add_argument("--patience", type=int, metavar="N",
                       help="stop when the validation loss has not improved for N epochs and restore the best "
                       "parameters (needs --validation or --validation-data)")
    train.add_argument("-o", "--output", metavar="PARAMS.npz", help="where to write the parameters (default NAME.npz)")
    train.add_argument("--history", metavar="FILE.csv", help="also write the loss per epoch (epoch, loss, val_loss)")
    train.add_argument("--plot", metavar="LOSS.png", help="also draw the loss curves as a PNG (needs matplotlib)")
    train.add_argument("--draw", metavar="NET.png",
                       help="also draw the trained network, weights as the width and colour of its edges "
                       "(needs matplotlib)")
    train.add_argument("--force", action="store_true", help="overwrite files that symbp did not write")
    train.add_argument("--diagnose", action="store_true",
                       help="after training, report saturated or dead units, vanishing or exploding gradients")
    train.add_argument("--quiet", action="store_true", help="print only the final loss and accuracy")
    train.add_argument("--progress", action="store_true",
                       help="show the progress bar even when stderr is not a terminal")
    out_of_memory = train.add_argument_group(
        "data larger than memory (Dask)",
        "--dask reads --data a chunk at a time: X.npy with --targets Y.npy, an .npz written by numpy.savez, "
        "or a folder of chunk files X_000.npy, Y_000.npy, ...")
    out_of_memory.add_argument("--backend", choices=BACKEND_NAMES,
                               help="the generated module that trains: numpy (the default) or array-api "
                               "(the default with --dask)")
    out_of_memory.add_argument("--dask", action="store_true", help="train on Dask arrays read a chunk at a time")
    out_of_memory.add_argument("--scheduler", metavar="ADDRESS",
                               help="run Dask's tasks on the dask.distributed scheduler at ADDRESS (e.g. "
                               "tcp://10.0.0.5:8786; its workers must see the data files at the same paths); "
                               "default: threads of this process")
    out_of_memory.add_argument("--scheduler-timeout", type=float, metavar="SECONDS", default=DEFAULT_TIMEOUT_S,
                               help=f"how long to wait for the scheduler and a worker (default {DEFAULT_TIMEOUT_S:g})")
    out_of_memory.add_argument("--targets", metavar="Y.npy", help="the targets, when --data is an inputs' .npy file")
    out_of_memory.add_argument("--chunk-rows", type=int, metavar="N",
                               help="rows per chunk (default: as many as make about 64 MiB of float64 for a task: "
                               "its rows and each layer's arrays); each file of a folder is a chunk, or several "
                               "when it is longer")
    train.set_defaults(run=run)


def _overrides(args, spec) -> dict:
    """The train() keyword arguments the command line changes, checked as the spec parser checks them."""
    from symbp.cli.options import training_values

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


def _check_validation_options(args) -> None:
    from symbp.errors import SymbpError

    if args.validation is not None and args.validation_data is not None:
        raise SymbpError("--validation: give a fraction to hold out or --validation-data PATH, not both")
    if args.validation is not None and not 0 < args.validation < 1:
        raise SymbpError(f"--validation: must be a fraction between 0 and 1 (e.g. 0.2), got {args.validation:g}")
    if args.patience is not None:
        if args.patience < 1:
            raise SymbpError(f"--patience: must be at least 1 epoch, got {args.patience}")
        if args.validation is None and args.validation_data is None:
            raise SymbpError("--patience: early stopping watches a validation loss; add --validation 0.2 "
                             "or --validation-data PATH")


def _settings(spec, chosen: dict) -> str:
    training = spec.training
    optimizer = chosen.get("optimizer", training.optimizer)
    rate = chosen.get("learning_rate", training.learning_rate)
    batch = chosen.get("batch_size", training.batch_size)
    return f"{optimizer}, learning rate {rate:g}" + (f", batches of {batch}" if batch else ", full batch")


def history_csv(history: dict) -> str:
    """One row per epoch: epoch (from 1), loss and, with a validation set, val_loss; full precision."""
    validation = history.get("val_loss")
    lines = ["epoch,loss" + (",val_loss" if validation is not None else "")]
    for epoch, loss in enumerate(history["loss"], start=1):
        cells = [str(epoch), repr(float(loss))]
        if validation is not None:
            cells.append(repr(float(validation[epoch - 1])))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _which(part: str, spec, rows: int) -> str:
    """The set a loss was measured on; for a loss summed over samples, how many it sums."""
    return f"{part}; summed over {rows} samples" if spec.loss.reduction == "sum" else part


def loss_label(spec) -> str:
    """The spec's loss in words, for an axis: e.g. '0.5 x squared_error, summed over samples'."""
    scale = "" if spec.loss.scale == 1 else f"{spec.loss.scale:g} x "
    return f"{scale}{spec.loss.name}, {'summed' if spec.loss.reduction == 'sum' else 'mean'} over samples"


def _stopped(history: dict, patience: int | None) -> str | None:
    """A sentence on why training ended before its last epoch, or None when it ran them all."""
    reason = history.get("stopped", "epochs")
    if reason == "early_stopping":
        best = history.get("best_epoch")
        restored = f"; the parameters of epoch {best + 1} restored" if best is not None else ""
        return f"stopped early: no better validation loss in {patience} epochs{restored}"
    if reason == "tolerance":
        return "stopped early: the loss changed by less than the spec's tolerance"
    if reason == "callback":
        return "stopped early by the callback"
    return None


def _inputs(spec, *data: str | None) -> list[Path]:
    """The files this run reads: the spec, and each data file or the files of each data folder."""
    paths = [Path(spec.source)]
    named = [(path, False) for path in data if path is not None]
    if data[0] is None and dict(spec.data).get("path") is not None:
        named.append((str(dict(spec.data)["path"]), True))
    for name, from_spec in named:
        path = Path(name)
        if from_spec and not path.is_absolute():
            path = Path(spec.source).parent / path
        paths.append(path)
        if path.is_dir():
            try:
                with os.scandir(path) as entries:
                    paths += [Path(entry.path) for entry, _ in zip(entries, range(MAX_DATA_FOLDER_ENTRIES))]
            except OSError:
                pass  # an unreadable folder is reported by the data loader, with its fix
    return paths


def _uses_dask(args) -> bool:
    """Whether this run trains on Dask arrays, after checking that the options fit together."""
    from symbp.errors import SymbpError

    if not args.dask:
        for option, value in (("--scheduler", args.scheduler), ("--targets", args.targets),
                              ("--chunk-rows", args.chunk_rows)):
            if value is not None:
                raise SymbpError(f"{option}: reads data for Dask; add --dask")
    else:
        if args.backend == "numpy":
            raise SymbpError("--dask: trains the array-API module (the NumPy module steps in place, on arrays in "
                             "memory); use --backend array-api, or leave --backend out")
        if args.validation is not None:
            raise SymbpError("--validation: a held-out fraction is not drawn from data read a chunk at a time; "
                             "give a separate validation set with --validation-data PATH")
        if not 0 < args.scheduler_timeout < float("inf"):
            raise SymbpError(f"--scheduler-timeout: must be a positive number of seconds, got "
                             f"{args.scheduler_timeout:g}")
    if args.diagnose and (args.dask or args.backend == "array-api"):
        raise SymbpError("--diagnose: diagnoses the NumPy module's training; leave out --dask and --backend "
                         "array-api (or run symbp diagnose on the parameters this run writes)")
    if args.dask:
        from symbp.data.chunks import require_dask

        require_dask()  # names the extra that installs Dask and array-api-compat alike
    if args.dask or args.backend == "array-api":
        from symbp.render.code.backends import backend

        backend("array-api")  # one line naming the extra when array-api-compat is missing, before any data is read
    return args.dask


def _trainer(spec, array_api: bool):
    """The spec's generated module that trains: the NumPy module, or the array-API module."""
    from symbp.checks.gradients import load_module_from_source

    if array_api:
        from symbp.render.code.backends.array_api import generate_array_api_module

        return load_module_from_source(generate_array_api_module(spec), spec.name)
    from symbp.render.code.numpy_module import generate_module

    return load_module_from_source(generate_module(spec), spec.name)


def _on_host(params: dict) -> dict:
    """Parameters as NumPy arrays (Dask's computed), for writing and drawing."""
    import numpy as np

    if any(hasattr(value, "dask") for value in params.values()):
        import dask

        params = dict(zip(params, dask.compute(*params.values()), strict=True))
    return {name: np.asarray(value) for name, value in params.items()}


def run(args) -> int:
    from symbp.errors import SymbpError

    # Dask's scheduler (a client of a distributed one) is held from training to the last figure printed.
    with contextlib.ExitStack() as scope:
        try:
            return _run(args, scope)
        except SymbpError:
            raise
        except OSError as error:
            if not args.dask:
                raise
            # A task reads its chunk when it runs, on whichever worker runs it: the files were there when checked.
            reason = " ".join(str(error).split())[:160] or type(error).__name__
            raise SymbpError(f"--data: a chunk could not be read during training ({reason}); the files must stay "
                             "in place while symbp trains, and with --scheduler every worker must see them at the "
                             "same paths") from None


def _run(args, scope: contextlib.ExitStack) -> int:
    from symbp.cli.plots import drawing_plan, loss_curve_png, network_png, require_matplotlib
    from symbp.cli.progress import ProgressBar
    from symbp.data.datafiles import load_training_data
    from symbp.data.splits import is_classification, validation_split
    from symbp.errors import SymbpError
    from symbp.output import NO_MARKER, NPZ_MARKER, PNG_MARKER, Output, claim_outputs, write_binary_atomically
    from symbp.spec.schema import load_spec

    spec = load_spec(args.spec)
    chosen = _overrides(args, spec)
    _check_validation_options(args)
    use_dask = _uses_dask(args)
    if use_dask:
        from symbp.symbolic.windows import refuse_windows

        # Refused before any data is read: im2col reshapes each sample's row into rows of windows, which Dask's
        # arrays do not do across chunks.
        refuse_windows(spec, "--dask", "train without --dask (--backend array-api or the NumPy module, on data "
                                       "in memory)")
    if use_dask:
        from symbp.data.chunks import load_chunked_data
    # Every output is checked before training, so a long run never ends in an unwritable path.
    params_path = Path(args.output) if args.output else Path(f"{spec.name}.npz")
    history_path = Path(args.history) if args.history else None
    pictures = [Path(path) for path in (args.plot, args.draw) if path]
    # A CSV carries no marker: an existing one is replaced only with --force.
    outputs = [Output(params_path, NPZ_MARKER), *([Output(history_path, NO_MARKER)] if history_path else []),
               *(Output(path, PNG_MARKER) for path in pictures)]
    claim_outputs(outputs, inputs=_inputs(spec, args.data, args.validation_data, args.targets), force=args.force)
    if pictures:
        require_matplotlib()
    # Decided before training: how much of the network a drawing can label (it never refuses one).
    plan = drawing_plan(spec) if args.draw else None
    if use_dask:
        data = load_chunked_data(spec, args.data, args.targets, chunk_rows=args.chunk_rows)
    else:
        data = load_training_data(spec, args.data)
    seed = chosen.get("seed", spec.training.seed)
    X, Y = data.X, data.Y
    validation = None
    if args.validation is not None:
        X, Y, X_val, Y_val = validation_split(X, Y, args.validation, seed=seed)
        validation = (X_val, Y_val)
    elif args.validation_data is not None:
        held_out = (load_chunked_data(spec, args.validation_data, chunk_rows=args.chunk_rows) if use_dask
                    else load_training_data(spec, args.validation_data))
        validation = (held_out.X, held_out.Y)
    module = _trainer(spec, use_dask or args.backend == "array-api")
    start = module.init_params(seed)
    if use_dask:
        import dask.array as da

        from symbp.cli.scheduler import dask_scheduler

        start = {name: da.from_array(value) for name, value in start.items()}
        where = scope.enter_context(dask_scheduler(args.scheduler, args.scheduler_timeout))

    epochs = chosen.get("epochs", spec.training.epochs)
    bar = ProgressBar(epochs, enabled=False if args.quiet else (True if args.progress else None))

    def show_progress(epoch, logs, params):
        bar.update(epoch, logs["loss"], logs.get("val_loss"))
        return False

    extra = {}
    if validation is not None:
        extra["validation"] = validation
    if args.patience is not None:
        extra["patience"] = args.patience
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            params, history = module.train(start, X, Y, callback=show_progress, **chosen, **extra)
        except ValueError as error:
            # The module refuses to start from a loss that is not finite, or from data of the wrong shape.
            raise SymbpError(f"{spec.name}: training cannot start: {error}") from None
        finally:
            bar.close()
    seconds = time.perf_counter() - started
    if history.get("stopped") != "diverged":
        for warning in caught:
            print(f"symbp: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    if history.get("stopped") == "diverged":
        # A failure like any other: one line, and no parameters whose loss is not finite are written.
        cause = " ".join(str(caught[-1].message).split()) if caught else "the loss stopped being finite"
        print(f"symbp: error: {spec.name}: training diverged: {cause}; nothing written", file=sys.stderr)
        return EXIT_FAILED

    force = args.force
    found = _on_host(params)
    write_binary_atomically(params_path, lambda stream: module.save_params(stream, found),
                            marker=NPZ_MARKER, force=force)
    if history_path:
        text = history_csv(history)
        write_binary_atomically(history_path, lambda stream: stream.write(text.encode("utf-8")), force=force)
    if args.plot:
        counts = (len(X), None if validation is None else len(validation[0]))
        write_binary_atomically(Path(args.plot), lambda stream: loss_curve_png(history, stream, spec.name,
                                                                               loss_label(spec), counts),
                                marker=PNG_MARKER, force=force)
    if args.draw:
        write_binary_atomically(Path(args.draw), lambda stream: network_png(spec, found, stream, plan),
                                marker=PNG_MARKER, force=force)

    epochs_run = len(history["loss"])
    if not args.quiet:
        on = f"{len(X)} samples" + (f" (validation: {len(validation[0])})" if validation is not None else "")
        if use_dask:
            on += f" in {X.numblocks[0]} chunks on {where}"
        count = f"{epochs_run} epoch{'' if epochs_run == 1 else 's'}"
        print(f"{spec.name}: {count} of {_settings(spec, chosen)} on {on} in {seconds:.1f} s")
        stopped = _stopped(history, args.patience)
        if stopped:
            print(stopped)
    print(f"final loss {float(module.loss(params, X, Y)):.6g} ({_which('training set', spec, len(X))})")
    if validation is not None:
        print(f"validation loss {float(module.loss(params, *validation)):.6g} "
              f"({_which('validation set', spec, len(validation[0]))})")
    if data.X_test is not None:
        print(f"test loss {float(module.loss(params, data.X_test, data.Y_test)):.6g} "
              f"({_which('test set', spec, len(data.X_test))})")
    # Telling class targets from others takes a pass over the data: with Dask, the spec's loss and outputs say.
    if is_classification(spec, None if use_dask else Y):
        _print_accuracy(module, params, (X, Y), validation, data)
    if args.diagnose:
        from symbp.checks.diagnostics import report_for

        print(report_for(module, params, X, Y, history))
    if not args.quiet:
        for path in (params_path, *([history_path] if history_path else []), *pictures):
            print(f"wrote {path}")
    if plan is not None and plan.note and not args.quiet:
        print(f"note: {args.draw}: {plan.note}")
    return 0


def _print_accuracy(module, params, training, validation, data) -> None:
    from symbp.data.datafiles import accuracy

    if data.X_test is not None:
        X, Y, which = data.X_test, data.Y_test, "test"
    elif validation is not None:
        (X, Y), which = validation, "validation"
    else:
        (X, Y), which = training, "training"
    score = accuracy(module.predict(params, X), Y)
    print(f"{which} accuracy {score:.4f} ({round(score * len(Y))}/{len(Y)})")

