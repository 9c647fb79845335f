"""symbp predict: a trained network's predictions from saved parameters, with loss and accuracy on targets."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

# Rows shown when the predictions are printed rather than written to a file.
SHOWN_ROWS = 10


def register(commands) -> None:
    predict = commands.add_parser("predict", help="predict with saved parameters")
    predict.add_argument("spec", help="a .toml or .json spec, or a bundled example's name")
    predict.add_argument("--params", metavar="PARAMS.npz", required=True,
                         help="the parameters symbp train wrote")
    predict.add_argument("--data", metavar="PATH",
                         help="a .csv file (inputs, optionally followed by targets or a class label) or an .npz "
                         "file with X (and optionally Y); default: the spec's data (its test part when it has one)")
    predict.add_argument("-o", "--output", metavar="OUT.csv",
                         help="write every prediction to this CSV file instead of printing the first rows")
    predict.add_argument("--force", action="store_true", help="overwrite a file that symbp did not write")
    predict.set_defaults(run=run)


@dataclass
class Inputs:
    """Rows to predict, their targets when the data holds them, and where they came from."""

    X: object
    Y: object | None
    source: str


def read_params(module, path: Path) -> dict:
    """The parameters in ``path``, checked against the module's names and shapes before use: one
    ``SymbpError`` line naming the array and the expected shape when they do not fit."""
    import numpy as np

    from symbp.errors import SymbpError

    if not path.is_file():
        raise SymbpError(f"--params: {path}: no such file; give the .npz file that symbp train wrote")
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        raise SymbpError(f"--params: {path}: not an .npz file; give the .npz file that symbp train wrote") from None
    # A batch-normalised network's running statistics are stored beside its parameters, and read like them.
    stored = (*module.PARAMS, *getattr(module, "STATISTICS", ()))
    expected = ", ".join(f"{name} {tuple(module.SHAPES[name])}" for name in stored)
    for name in stored:
        if name not in arrays:
            raise SymbpError(f"--params: {path}: missing array {name}, expected shape {tuple(module.SHAPES[name])}; "
                             f"the spec's parameters are {expected}")
    extra = sorted(set(arrays) - set(stored))
    if extra:
        raise SymbpError(f"--params: {path}: unexpected array {extra[0]}; the spec's parameters are {expected} "
                         "(was the file written for another spec?)")
    params = {}
    for name in stored:
        array, shape = arrays[name], tuple(module.SHAPES[name])
        if array.shape != shape:
            raise SymbpError(f"--params: {path}: {name} has shape {array.shape}, expected {shape} "
                             "(was the file written for another spec?)")
        if array.dtype.kind not in "biuf" or not np.isfinite(array).all():
            raise SymbpError(f"--params: {path}: {name} must hold finite numbers")
        params[name] = array.astype(np.float64)
    return params


def _inputs(spec, data: str | None) -> Inputs:
    """The rows to predict: a file of inputs with or without targets, or the spec's own data."""
    import numpy as np

    from symbp.data.datafiles import load_csv, load_training_data, shape_hint
    from symbp.errors import DataError

    if data is None:
        dataset = load_training_data(spec)
        if dataset.X_test is not None:
            return Inputs(dataset.X_test, dataset.Y_test, "the spec's test data")
        return Inputs(dataset.X, dataset.Y, "the spec's data")
    path = Path(data)
    if path.is_file() and path.suffix.lower() == ".csv":
        try:
            # Inputs alone: as many columns as the network has inputs.
            inputs_only = load_csv(path, spec.inputs, 0)
        except DataError:
            inputs_only = None
        if inputs_only is not None:
            return Inputs(inputs_only.X, None, str(path))
    if path.is_file() and path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as stored:
                names = set(stored.files)
                X = stored["X"] if names == {"X"} else None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            X = None
        if X is not None:
            if X.dtype.kind not in "biuf" or X.ndim != 2 or X.shape[1] != spec.inputs or not len(X):
                raise DataError(f"{path}: X has shape {X.shape}; the spec needs (rows, {spec.inputs}), "
                                f"one column per input{shape_hint(spec)}")
            X = X.astype(np.float64)
            if not np.isfinite(X).all():
                raise DataError(f"{path}: X holds NaN or infinite values; every value must be finite")
            return Inputs(X, None, str(path))
    dataset = load_training_data(spec, path)
    return Inputs(dataset.X, dataset.Y, str(path))


def _columns(spec) -> list[str]:
    from symbp.registry.rules import activation_named, loss_named

    if spec.outputs == 1:
        return [loss_named(spec.loss.name).prediction_name]
    prefix = activation_named(spec.layers[-1].activation).output_name
    return [f"{prefix}_{k}" for k in range(spec.outputs)]


def _classes(spec, prediction):
    """Each row's class (largest output, or output above 1/2 for a single one)."""
    if spec.outputs == 1:
        return (prediction[:, 0] > 0.5).astype(int)
    return prediction.argmax(axis=1)


def _csv_text(spec, prediction, classes) -> str:
    header = _columns(spec) + (["class"] if classes is not None else [])
    lines = [",".join(header)]
    for index, row in enumerate(prediction):
        cells = [repr(float(value)) for value in row]
        if classes is not None:
            cells.append(str(int(classes[index])))
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _table(spec, prediction, classes, targets) -> str:
    header = ["row", *_columns(spec)]
    rows = []
    shown = min(len(prediction), SHOWN_ROWS)
    for index in range(shown):
        cells = [str(index + 1), *(f"{value:.4g}" for value in prediction[index])]
        if classes is not None:
            cells.append(str(int(classes[index])))
            if targets is not None:
                cells.append(str(int(targets[index])))
        rows.append(cells)
    if classes is not None:
        header.append("class")
        if targets is not None:
            header.append("target")
    widths = [max(len(cells[column]) for cells in [header, *rows]) for column in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(cells, widths)) for cells in [header, *rows]]
    if shown < len(prediction):
        lines.append(f"... {len(prediction) - shown} more rows (-o FILE.csv writes them all)")
    return "\n".join(lines)


def run(args) -> int:
    from symbp.checks.gradients import load_module_from_source
    from symbp.data.datafiles import accuracy
    from symbp.data.splits import is_classification
    from symbp.output import NO_MARKER, Output, claim_outputs, write_binary_atomically
    from symbp.render.code.numpy_module import generate_module
    from symbp.spec.schema import load_spec

    spec = load_spec(args.spec)
    output = Path(args.output) if args.output else None
    if output is not None:
        # A CSV carries no marker: an existing file is replaced only with --force.
        read = [spec.source, args.params, *([args.data] if args.data else [])]
        claim_outputs([Output(output, NO_MARKER)], inputs=read, force=args.force)
    module = load_module_from_source(generate_module(spec), spec.name)
    params = read_params(module, Path(args.params))
    inputs = _inputs(spec, args.data)
    prediction = module.predict(params, inputs.X)
    classes = targets = None
    if is_classification(spec, inputs.Y):
        classes = _classes(spec, prediction)
        targets = None if inputs.Y is None else _classes(spec, inputs.Y)

    print(f"{spec.name}: predictions for {len(inputs.X)} rows of {inputs.source}")
    if output is None:
        print(_table(spec, prediction, classes, targets))
    if inputs.Y is not None:
        loss = module.loss(params, inputs.X, inputs.Y)
        print(f"loss {loss:.6g} (the spec's {spec.loss.name} on these {len(inputs.X)} rows)")
        if classes is not None:
            score = accuracy(prediction, inputs.Y)
            print(f"accuracy {score:.4f} ({round(score * len(inputs.Y))}/{len(inputs.Y)})")
    if output is not None:
        text = _csv_text(spec, prediction, classes)
        write_binary_atomically(output, lambda stream: stream.write(text.encode("utf-8")), force=args.force)
        print(f"wrote {output}")
    return 0
