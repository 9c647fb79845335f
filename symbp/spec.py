"""Reading and validating architecture specs (TOML, JSON or a dict) into plain dataclasses."""

from __future__ import annotations

import difflib
import json
import keyword
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from symbp.errors import SpecError
from symbp.rules import ACTIVATION_ALIASES, ACTIVATIONS, LOSSES

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
REDUCTIONS = ("mean", "sum")
INITIALIZERS = ("glorot_normal", "glorot_uniform", "he_normal", "normal", "uniform", "zeros")
MAX_SIZE = 1_000_000
MAX_PARAMETERS = 50_000_000


@dataclass(frozen=True)
class LayerSpec:
    units: int
    activation: str
    activation_params: tuple[tuple[str, float], ...] = ()
    bias: bool = True
    weights: tuple[tuple[float, ...], ...] | None = None
    biases: tuple[float, ...] | None = None


@dataclass(frozen=True)
class LossSpec:
    name: str = "squared_error"
    scale: float = 1.0
    reduction: str = "mean"


@dataclass(frozen=True)
class TrainingSpec:
    optimizer: str = "gd"
    learning_rate: float = 0.01
    epochs: int = 100
    batch_size: int | None = None
    seed: int = 0
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    tolerance: float | None = None
    init: str = "glorot_normal"


@dataclass(frozen=True)
class Spec:
    name: str
    inputs: int
    layers: tuple[LayerSpec, ...]
    loss: LossSpec = field(default_factory=LossSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    title: str = ""
    data: tuple[tuple[str, Any], ...] = ()
    source: str = "<dict>"

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *(layer.units for layer in self.layers))

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    @property
    def parameter_count(self) -> int:
        return sum(
            fan_in * layer.units + (layer.units if layer.bias else 0)
            for fan_in, layer in zip(self.sizes, self.layers)
        )

    def canonical(self) -> dict[str, Any]:
        """The spec as plain data, independent of the file it came from (for headers and hashes)."""
        out: dict[str, Any] = {"name": self.name, "title": self.title, "inputs": self.inputs}
        out["layers"] = [
            {
                "units": layer.units,
                "activation": layer.activation,
                "activation_params": dict(layer.activation_params),
                "bias": layer.bias,
                "weights": layer.weights,
                "biases": layer.biases,
            }
            for layer in self.layers
        ]
        out["loss"] = vars(self.loss).copy()
        out["training"] = vars(self.training).copy()
        out["data"] = dict(self.data)
        return out


# --------------------------------------------------------------------------- helpers


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else f"; choose one of {', '.join(sorted(choices))}"


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _check_keys(table: dict, allowed: tuple[str, ...], path: str) -> None:
    for key in table:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(where, f"unknown key '{key}'{_suggest(key, allowed)}")


def _require(table: dict, key: str, path: str, hint: str) -> Any:
    if key not in table:
        where = f"{path}.{key}" if path else key
        raise SpecError(where, f"missing; {hint}")
    return table[key]


def _integer(value: Any, path: str, low: int = 1, high: int = MAX_SIZE) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(path, f"expected an integer, got {_type_name(value)} {value!r}")
    if value < low:
        raise SpecError(path, f"must be at least {low}, got {value}")
    if value > high:
        raise SpecError(path, f"{value} is too large; the limit is {high}")
    return value


def _number(value: Any, path: str, *, positive: bool = False, low: float | None = None,
            high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(path, f"expected a number, got {_type_name(value)} {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise SpecError(path, f"must be a finite number, got {value}")
    if positive and value <= 0:
        raise SpecError(path, f"must be positive, got {value:g}")
    if low is not None and value < low:
        raise SpecError(path, f"must be at least {low:g}, got {value:g}")
    if high is not None and value > high:
        raise SpecError(path, f"must be at most {high:g}, got {value:g}")
    return value


def _choice(value: Any, choices, path: str, what: str) -> str:
    if not isinstance(value, str):
        raise SpecError(path, f"expected the name of {what} as a string, got {_type_name(value)} {value!r}")
    if value not in choices:
        raise SpecError(path, f"unknown '{value}'{_suggest(value, choices)}")
    return value


def _table(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(path, f"expected a table, got {_type_name(value)}")
    return value


# --------------------------------------------------------------------------- sections


def _activation(value: Any, path: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    known = tuple(ACTIVATIONS) + tuple(ACTIVATION_ALIASES)
    if isinstance(value, dict):
        name = _require(value, "name", path, f"name the activation, e.g. {{ name = \"leaky_relu\", alpha = 0.1 }}")
        name = _choice(name, known, f"{path}.name", "an activation")
        name = ACTIVATION_ALIASES.get(name, name)
        params = ACTIVATIONS[name].params
        allowed = ("name", *(symbol.name for symbol in params))
        _check_keys(value, allowed, path)
        given = tuple(
            (key, _number(value[key], f"{path}.{key}"))
            for key in allowed[1:]
            if key in value
        )
        return name, given
    name = _choice(value, known, path, "an activation")
    return ACTIVATION_ALIASES.get(name, name), ()


def _matrix(value: Any, rows: int, cols: int, path: str) -> tuple[tuple[float, ...], ...]:
    hint = f"give {rows} rows (one per input of the layer) of {cols} numbers (one per unit)"
    if not isinstance(value, list) or len(value) != rows:
        got = f"{len(value)} rows" if isinstance(value, list) else _type_name(value)
        raise SpecError(path, f"expected a {rows} x {cols} matrix, got {got}; {hint}")
    out = []
    for i, row in enumerate(value):
        if not isinstance(row, list) or len(row) != cols:
            got = f"{len(row)} entries" if isinstance(row, list) else _type_name(row)
            raise SpecError(f"{path}[{i}]", f"expected {cols} numbers, got {got}; {hint}")
        out.append(tuple(_number(x, f"{path}[{i}][{c}]") for c, x in enumerate(row)))
    return tuple(out)


def _vector(value: Any, size: int, path: str) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != size:
        got = f"{len(value)} entries" if isinstance(value, list) else _type_name(value)
        raise SpecError(path, f"expected {size} numbers (one per unit), got {got}")
    return tuple(_number(x, f"{path}[{i}]") for i, x in enumerate(value))


def _layer(value: Any, index: int, fan_in: int, is_output: bool) -> LayerSpec:
    path = f"layers[{index}]"
    table = _table(value, path)
    _check_keys(table, ("units", "activation", "bias", "weights", "biases"), path)
    units = _integer(_require(table, "units", path, "give the number of units, e.g. units = 4"), f"{path}.units")
    activation, params = _activation(
        _require(table, "activation", path, "name an activation, e.g. activation = \"sigmoid\""),
        f"{path}.activation",
    )
    if ACTIVATIONS[activation].rowwise and not is_output:
        raise SpecError(f"{path}.activation", f"'{activation}' is only allowed on the output layer")
    bias = table.get("bias", True)
    if not isinstance(bias, bool):
        raise SpecError(f"{path}.bias", f"expected true or false, got {_type_name(bias)} {bias!r}")
    weights = None
    if "weights" in table:
        weights = _matrix(table["weights"], fan_in, units, f"{path}.weights")
    biases = None
    if "biases" in table:
        if not bias:
            raise SpecError(f"{path}.biases", "the layer has bias = false; remove biases or set bias = true")
        biases = _vector(table["biases"], units, f"{path}.biases")
    return LayerSpec(units, activation, params, bias, weights, biases)


def _loss(value: Any, output_activation: str) -> LossSpec:
    if isinstance(value, str):
        value = {"name": value}
    table = _table(value, "loss")
    _check_keys(table, ("name", "scale", "reduction"), "loss")
    name = _choice(table.get("name", "squared_error"), LOSSES, "loss.name", "a loss")
    required = LOSSES[name].requires_output
    if required and output_activation != required:
        raise SpecError(
            "loss.name",
            f"'{name}' needs a {required} output layer, but the last layer uses '{output_activation}'; "
            f"set the last layer's activation to \"{required}\" or choose another loss",
        )
    scale = _number(table.get("scale", 1.0), "loss.scale", positive=True)
    reduction = _choice(table.get("reduction", "mean"), REDUCTIONS, "loss.reduction", "a reduction")
    return LossSpec(name, scale, reduction)


def _training(value: Any) -> TrainingSpec:
    table = _table(value, "training")
    fields = TrainingSpec.__dataclass_fields__
    _check_keys(table, tuple(fields), "training")
    out: dict[str, Any] = {}
    if "optimizer" in table:
        out["optimizer"] = _choice(table["optimizer"], OPTIMIZERS, "training.optimizer", "an optimizer")
    if "init" in table:
        out["init"] = _choice(table["init"], INITIALIZERS, "training.init", "an initializer")
    if "learning_rate" in table:
        out["learning_rate"] = _number(table["learning_rate"], "training.learning_rate", positive=True)
    if "epochs" in table:
        out["epochs"] = _integer(table["epochs"], "training.epochs", low=0, high=100_000_000)
    if "batch_size" in table:
        out["batch_size"] = _integer(table["batch_size"], "training.batch_size", high=100_000_000)
    if "seed" in table:
        out["seed"] = _integer(table["seed"], "training.seed", low=0, high=2**32 - 1)
    for key in ("momentum", "beta1", "beta2"):
        if key in table:
            out[key] = _number(table[key], f"training.{key}", low=0.0, high=0.999999999)
    if "epsilon" in table:
        out["epsilon"] = _number(table["epsilon"], "training.epsilon", positive=True)
    if "tolerance" in table:
        out["tolerance"] = _number(table["tolerance"], "training.tolerance", positive=True)
    if out.get("optimizer") == "sgd" and "batch_size" not in out:
        out["batch_size"] = 32
    return TrainingSpec(**out)


def _data(value: Any) -> tuple[tuple[str, Any], ...]:
    table = _table(value, "data")
    _check_keys(table, ("builtin", "path", "format", "split", "seed"), "data")
    for key, item in table.items():
        if isinstance(item, (dict, list)):
            raise SpecError(f"data.{key}", f"expected a single value, got {_type_name(item)}")
    return tuple(sorted(table.items()))


def parse_spec(raw: Any, source: str = "<dict>") -> Spec:
    """Validates a spec given as plain data; raises SpecError naming the first bad field."""
    table = _table(raw, "spec")
    _check_keys(table, ("name", "title", "inputs", "layers", "loss", "training", "data"), "")
    name = _require(table, "name", "", "give the network a name, e.g. name = \"xor\"")
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or not name.isascii():
        raise SpecError("name", f"{name!r} is not a Python identifier; use letters, digits and '_', e.g. \"house_prices\"")
    title = table.get("title", "")
    if not isinstance(title, str):
        raise SpecError("title", f"expected a string, got {_type_name(title)}")
    inputs = _integer(_require(table, "inputs", "", "give the number of input features, e.g. inputs = 3"), "inputs")
    layers_raw = _require(table, "layers", "", "add at least one [[layers]] table with units and activation")
    if not isinstance(layers_raw, list):
        raise SpecError("layers", f"expected a list of layer tables, got {_type_name(layers_raw)}")
    if not layers_raw:
        raise SpecError("layers", "is empty; add at least one [[layers]] table with units and activation")
    layers = []
    fan_in = inputs
    for index, layer_raw in enumerate(layers_raw):
        layer = _layer(layer_raw, index, fan_in, index == len(layers_raw) - 1)
        layers.append(layer)
        fan_in = layer.units
    loss = _loss(table.get("loss", {}), layers[-1].activation)
    training = _training(table.get("training", {}))
    data = _data(table.get("data", {}))
    spec = Spec(name, inputs, tuple(layers), loss, training, title, data, source)
    if spec.parameter_count > MAX_PARAMETERS:
        raise SpecError("layers", f"{spec.parameter_count} parameters is too many; the limit is {MAX_PARAMETERS}")
    return spec


def read_spec_file(path: Path) -> Any:
    """Parses a TOML or JSON file into plain data, turning every failure into a SpecError."""
    where = path.name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(where, "file not found; give the path of a .toml or .json spec, or an example name "
                               "from 'symbp examples'") from None
    except IsADirectoryError:
        raise SpecError(where, "is a directory; give the path of a .toml or .json spec file") from None
    except OSError as error:
        raise SpecError(where, f"cannot be read ({error.strerror})") from None
    if not data.strip():
        raise SpecError(where, "file is empty; a spec needs at least name, inputs and [[layers]]")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError(where, "is not UTF-8 text; a spec is a TOML or JSON text file") from None
    if "\x00" in text:
        raise SpecError(where, "contains NUL bytes; a spec is a TOML or JSON text file")
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise SpecError(where, f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
        except RecursionError:
            raise SpecError(where, "JSON is nested too deeply") from None
    if path.suffix.lower() not in (".toml", ""):
        raise SpecError(where, f"unknown file type '{path.suffix}'; use .toml or .json")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(where, f"invalid TOML: {error}") from None
    except RecursionError:
        raise SpecError(where, "TOML is nested too deeply") from None


def load_spec(source: Any) -> Spec:
    """Loads a spec from a dict, a Spec, a file path, or the name of a bundled example."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, dict):
        return parse_spec(source)
    path = Path(source)
    if not path.exists() and path.suffix == "" and str(source).isidentifier():
        from symbp.examples import example_path

        bundled = example_path(str(source))
        if bundled is not None:
            path = bundled
    return parse_spec(read_spec_file(path), source=str(path))
