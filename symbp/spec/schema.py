"""Reading and validating architecture specs (TOML, JSON or a dict) into plain dataclasses.

Every problem is reported as one ``SpecError`` whose field is a path such as ``layers[1].activation``
(layer indices start at zero) and whose message is one short line saying what is wrong and how to fix it.
"""

from __future__ import annotations

import codecs
import difflib
import json
import keyword
import math
import numbers
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sympy as sp

from symbp.errors import SpecError
from symbp.registry.rules import (
    ACTIVATION_ALIASES,
    ACTIVATIONS,
    LOSSES,
    activation_named,
    custom_activation,
    custom_loss,
    loss_named,
)
from symbp.spec import windows

OPTIMIZERS = ("gd", "sgd", "momentum", "adam")
# The notation presets a spec may name: those of symbp.render.latex.notation, which a test holds to this list
# (the renderer depends on the spec, not the other way round).
NOTATION_NAMES = ("lab", "article", "lesson", "slides", "fausett")
REDUCTIONS = ("mean", "sum")
INITIALIZERS = ("glorot_normal", "glorot_uniform", "he_normal", "normal", "uniform", "zeros")
MAX_SIZE = 1_000_000
MAX_PARAMETERS = 50_000_000
MAX_NAME_LENGTH = 100
MAX_TITLE_LENGTH = 200
MAX_FILE_BYTES = 64 * 2**20
# Deriving and printing cost time per layer; far deeper than any network symbp's documents explain.
MAX_LAYERS = 100
# The LaTeX notation presets a spec may choose (symbp.render.latex.notation defines each; a test keeps the
# two lists equal), named here so that reading a spec needs nothing from the renderers.
NOTATION_NAMES = ("lab", "article", "lesson", "slides", "fausett")
# The normalisations a layer may name, their default epsilon (PyTorch's nn.LayerNorm and nn.BatchNorm1d), and
# batch normalisation's default momentum for its running statistics (nn.BatchNorm1d's).
NORMALIZATIONS = ("layer", "batch")
LAYER_NORM_EPSILON = 1e-5
BATCH_NORM_MOMENTUM = 0.1


@dataclass(frozen=True)
class LayerSpec:
    units: int
    activation: str
    activation_params: tuple[tuple[str, float], ...] = ()
    bias: bool = True
    weights: tuple[tuple[float, ...], ...] | None = None
    biases: tuple[float, ...] | None = None
    residual: bool = False  # Z = A W + b + A: the layer's input added to its pre-activation
    # Weight penalties added to the loss, Keras's names and convention: ("l1", c) adds c * sum |w|,
    # ("l2", c) adds c * sum w^2 over the layer's weights (not its biases).
    kernel_regularizer: tuple[tuple[str, float], ...] = ()
    # "layer": Z = gamma * (U - mean) / sqrt(variance + epsilon) + beta over each sample's units, U = A W
    # (PyTorch's nn.LayerNorm, Keras's LayerNormalization); "" for none. Such a layer has no bias: beta replaces it.
    # "batch": the same over each unit's values across the batch's samples while training, and by running
    # statistics (updated with ``momentum`` each training step) in evaluation (PyTorch's nn.BatchNorm1d).
    normalization: str = ""
    epsilon: float = LAYER_NORM_EPSILON
    # Inverted dropout of the layer's inputs while training: each input is zeroed with this probability and the
    # others scaled by 1 / (1 - dropout); 0 drops nothing. Evaluation (predict, forward, loss) uses every input.
    dropout: float = 0.0
    # Batch normalisation's: running = (1 - momentum) * running + momentum * the batch's statistic, each step.
    momentum: float = BATCH_NORM_MOMENTUM
    window: windows.WindowLayer | None = None  # a convolution or pooling (symbp.spec.windows); None: dense

    @property
    def kind(self) -> str:
        """The layer kind of ``symbp.symbolic.layers`` that computes this layer."""
        if self.window is not None:
            return self.window.kind
        if self.normalization == "layer":
            return "layer_norm"
        if self.normalization == "batch":
            return "batch_norm"
        if self.dropout:
            return "dropout"
        return "residual" if self.residual else "dense"

    @property
    def parameter_count(self) -> int:
        """Besides the weights: a bias per unit, or a gain and a shift per unit for a normalised layer."""
        if self.window is not None:
            return self.window.filters if self.bias else 0
        per_unit = 2 if self.normalization else int(self.bias)
        return per_unit * self.units

    def weight_count(self, fan_in: int) -> int:
        return fan_in * self.units if self.window is None else self.window.weight_count


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
    """A network's spec, every field checked: its inputs, layers (units and activation each), loss and training.

    Activation and loss names are the registry's (``symbp.registry.rules``); ask the entry for what they mean.
    """

    name: str
    inputs: int
    layers: tuple[LayerSpec, ...]
    loss: LossSpec = field(default_factory=LossSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    title: str = ""
    data: tuple[tuple[str, Any], ...] = ()
    source: str = "<dict>"
    notation: str = ""  # the LaTeX notation preset its documents use by default (symbp.render.latex.notation)
    input_shape: tuple[int, ...] = ()  # (channels, *spatial) of each flat input row, for window layers; () if none

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.inputs, *(layer.units for layer in self.layers))

    @property
    def outputs(self) -> int:
        return self.layers[-1].units

    @property
    def parameter_count(self) -> int:
        return sum(
            layer.weight_count(fan_in) + layer.parameter_count
            for fan_in, layer in zip(self.sizes[:-1], self.layers, strict=True)
        )

    def canonical(self) -> dict[str, Any]:
        """The spec as plain data, independent of the file it came from (for headers and hashes)."""
        out: dict[str, Any] = {"name": self.name, "title": self.title, "inputs": self.inputs}
        if self.input_shape:
            out["input_shape"] = list(self.input_shape)
        out["layers"] = [
            {
                "units": layer.units,
                "activation": layer.activation,
                "activation_params": dict(layer.activation_params),
                "bias": layer.bias,
                "weights": layer.weights,
                "biases": layer.biases,
                # Keys beyond the dense layer's appear only when used, so a dense spec's canonical form is unchanged.
                **({"residual": True} if layer.residual else {}),
                **({"kernel_regularizer": dict(layer.kernel_regularizer)} if layer.kernel_regularizer else {}),
                **({"normalization": layer.normalization, "epsilon": layer.epsilon} if layer.normalization else {}),
                **({"momentum": layer.momentum} if layer.normalization == "batch" else {}),
                **({"dropout": layer.dropout} if layer.dropout else {}),
                **(layer.window.canonical() if layer.window else {}),
            }
            for layer in self.layers
        ]
        out["loss"] = vars(self.loss).copy()
        out["training"] = vars(self.training).copy()
        out["data"] = dict(self.data)
        return out


def exact_value(number: float) -> sp.Rational:
    """A spec's number as the exact fraction its shortest decimal form writes, e.g. 1e-40 -> 1/10**40.

    Symbolic work then keeps it as given: a tiny Float would be simplified to 0, and ``nsimplify``
    may replace a number by a nearby simpler one (0.3333333333 by 1/3, 1.4142135623730951 by sqrt(2)).
    """
    return sp.Rational(repr(float(number)))


# --------------------------------------------------------------------------- helpers

_TOP_KEYS = ("name", "title", "inputs", "input_shape", "layers", "loss", "training", "data", "notation")
_LAYER_KEYS = ("units", "activation", "bias", "weights", "biases", "residual", "kernel_regularizer", "normalization",
               "epsilon", "momentum", "dropout")
PENALTIES = ("l1", "l2")
_LOSS_KEYS = ("name", "expr", "scale", "reduction")
_TRAINING_KEYS = tuple(TrainingSpec.__dataclass_fields__)
_DATA_KEYS = ("builtin", "path", "format", "split", "seed")

_IN_TRAINING = "it belongs in the [training] table"
_IN_LOSS = "it belongs in the [loss] table"
_IN_LAYER = "it belongs in a [[layers]] table"
_AT_TOP = "it belongs at the top level, so in TOML put it above the first [[layers]]"

# Keys that are valid somewhere else in a spec, by the table they were wrongly put in.
_MISPLACED_AT_TOP = {
    **{key: _IN_LAYER for key in _LAYER_KEYS},
    "scale": _IN_LOSS,
    "reduction": _IN_LOSS,
    **{key: _IN_TRAINING for key in _TRAINING_KEYS},
}
_MISPLACED_IN_LAYER = {
    **{key: _IN_TRAINING for key in _TRAINING_KEYS},
    "scale": _IN_LOSS,
    "reduction": _IN_LOSS,
    **{key: _AT_TOP for key in _TOP_KEYS if key != "layers"},
}
_MISPLACED_IN_LOSS = {key: _IN_TRAINING for key in _TRAINING_KEYS}
_MISPLACED_IN_TRAINING = {
    "scale": _IN_LOSS,
    "reduction": _IN_LOSS,
    "loss": _AT_TOP,
    **{key: _IN_LAYER for key in _LAYER_KEYS},
}

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,24}")
_LONGEST_MESSAGE = 190
_PLAIN_FILE = re.compile(r"[A-Za-z0-9_.+-]{1,60}")
_HUGE = 10**30


def _quote(text: str, limit: int = 40) -> str:
    """``text`` quoted on one line (control characters escaped), cut short when long."""
    return repr(text) if len(text) <= limit else repr(text[: limit - 3]) + "..."


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _int_text(value: int) -> str:
    if -_HUGE < value < _HUGE:
        return str(value)
    digits = int(abs(value).bit_length() * math.log10(2)) + 1
    return f"{'a negative ' if value < 0 else 'an '}integer with about {digits} digits"


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _show(value: Any) -> str:
    """A short, one-line rendering of a spec value in TOML-like notation."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return _int_text(int(value))
    if isinstance(value, numbers.Real):
        try:
            return _float_text(float(value))
        except OverflowError:
            return "a very large number"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, (list, tuple)):
        if len(value) <= 4 and not any(isinstance(item, (list, tuple, dict)) for item in value):
            text = "[" + ", ".join(_show(item) for item in value) + "]"
            if len(text) <= 50:
                return text
        return f"a list of {_plural(len(value), 'item')}"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, numbers.Integral):
        return "an integer"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def _got(value: Any) -> str:
    """``value`` described for a 'got ...' clause, e.g. "a string 'yes'" or "a list [3]"."""
    shown = _show(value)
    kind = _type_name(value)
    if shown == kind or shown.startswith(("a ", "an ")) or value is None:
        return shown
    return f"{kind} {shown}"


def _key_text(key: Any) -> str:
    """A key as written in field paths and messages: bare when plain, else quoted and cut short."""
    if isinstance(key, str):
        return key if _PLAIN_KEY.fullmatch(key) else _quote(key, 24)
    return _show(key)


def _key_quote(key: Any) -> str:
    return _quote(key, 24) if isinstance(key, str) else _got(key)


def _join(path: str, key: Any) -> str:
    return f"{path}.{_key_text(key)}" if path else _key_text(key)


def _suggest(word: Any, choices, listed=None) -> str:
    """'; did you mean ...?' for a near miss among ``choices``, else the list of ``listed`` (or ``choices``)."""
    choices = list(choices)
    close = difflib.get_close_matches(word[:100], choices, n=1, cutoff=0.6) if isinstance(word, str) else []
    if close:
        return f"; did you mean '{close[0]}'?"
    return f"; choose one of {', '.join(sorted(listed or choices))}"


def _check_keys(table: dict, allowed: tuple[str, ...], path: str, misplaced: dict[str, str] | None = None) -> None:
    for key in table:
        if key in allowed:
            continue
        hint = (misplaced or {}).get(key) if isinstance(key, str) else None
        hint = f"; {hint}" if hint else _suggest(key, allowed)
        raise SpecError(_join(path, key), f"unknown key {_key_quote(key)}{hint}")


def _require(table: dict, key: str, path: str, hint: str) -> Any:
    if key not in table:
        raise SpecError(_join(path, key), f"missing; {hint}")
    return table[key]


def _number_hint(value: Any, *, integer: bool = False) -> str:
    """How to fix a value that is not a number, or (with ``integer``) not a whole number."""
    if isinstance(value, str):
        try:
            float(value.strip())
        except ValueError:
            return ""
        return "; write the number without quotes"
    if isinstance(value, (list, tuple)) and len(value) == 1 and isinstance(value[0], numbers.Real) \
            and not isinstance(value[0], bool):
        return "; write the number without brackets"
    if integer and isinstance(value, float) and math.isfinite(value):
        return f"; write {int(value)} without a decimal point" if value.is_integer() else "; use a whole number"
    return ""


def _integer(value: Any, path: str, low: int = 1, high: int = MAX_SIZE) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecError(path, f"expected an integer, got {_got(value)}{_number_hint(value, integer=True)}")
    value = int(value)
    if value < low:
        raise SpecError(path, f"must be at least {low}, got {_int_text(value)}")
    if value > high:
        raise SpecError(path, f"must be at most {high}, got {_int_text(value)}")
    return value


def _number(value: Any, path: str, *, positive: bool = False, low: float | None = None,
            high: float | None = None, below: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(path, f"expected a number, got {_got(value)}{_number_hint(value)}")
    if positive:
        wanted = "a number greater than 0"
    elif low is not None and below is not None:
        wanted = f"a number from {_float_text(low)} up to (not including) {_float_text(below)}"
    elif low is not None and high is not None:
        wanted = f"a number from {_float_text(low)} to {_float_text(high)}"
    else:
        wanted = "an ordinary number"
    try:
        number = float(value)
    except OverflowError:
        raise SpecError(path, f"is too large to be a number, got {_got(value)}; use {wanted}") from None
    if not math.isfinite(number):
        raise SpecError(path, f"must be a finite number, got {_float_text(number)}; use {wanted}")
    if positive and number <= 0:
        raise SpecError(path, f"must be greater than 0, got {_float_text(number)}")
    if low is not None and number < low:
        raise SpecError(path, f"must be at least {_float_text(low)}, got {_float_text(number)}")
    if high is not None and number > high:
        raise SpecError(path, f"must be at most {_float_text(high)}, got {_float_text(number)}")
    if below is not None and number >= below:
        raise SpecError(path, f"must be less than {_float_text(below)}, got {_float_text(number)}")
    return number


def _choice(value: Any, choices, path: str, what: str, example: str, listed=None) -> str:
    if not isinstance(value, str):
        raise SpecError(path, f"expected the name of {what} as a string, got {_got(value)}; e.g. {example}")
    if value not in choices:
        raise SpecError(path, f"unknown {_quote(value, 30)}{_suggest(value, choices, listed)}")
    return value


def _table(value: Any, path: str, hint: str = "") -> dict:
    if not isinstance(value, dict):
        raise SpecError(path, f"expected a table, got {_got(value)}{'; ' + hint if hint else ''}")
    return value


def _sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


# --------------------------------------------------------------------------- sections


def _identifier_like(name: str) -> str:
    """A Python identifier close to ``name``, offered as the fix for a bad network name."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    fixed = re.sub(r"[^A-Za-z0-9_]+", "_", ascii_name).strip("_")[:40] or "net"
    if fixed[0].isdigit():
        fixed = f"net_{fixed}"
    if keyword.iskeyword(fixed):
        fixed = f"{fixed}_net"
    return f'"{fixed}"'


def _name(value: Any) -> str:
    if not isinstance(value, str):
        raise SpecError("name", f"expected a string, got {_got(value)}; e.g. name = \"xor\"")
    if not value:
        raise SpecError("name", "is empty; give the network a name, e.g. name = \"xor\"")
    if len(value) > MAX_NAME_LENGTH:
        raise SpecError("name", f"is {len(value)} characters long; use at most {MAX_NAME_LENGTH}, "
                                f"e.g. {_identifier_like(value)}")
    if keyword.iskeyword(value):
        raise SpecError("name", f"{_quote(value)} is a Python keyword; choose another name, "
                                f"e.g. {_identifier_like(value)}")
    if not value.isascii():
        raise SpecError("name", f"{_quote(value)} has non-ASCII characters; use ASCII letters, digits and '_', "
                                f"e.g. {_identifier_like(value)}")
    if not value.isidentifier():
        raise SpecError("name", f"{_quote(value)} is not a Python identifier; use letters, digits and '_', "
                                f"not starting with a digit, e.g. {_identifier_like(value)}")
    return value


def _title(value: Any) -> str:
    if not isinstance(value, str):
        raise SpecError("title", f"expected a string, got {_got(value)}; e.g. title = \"XOR network\"")
    if len(value) > MAX_TITLE_LENGTH:
        raise SpecError("title", f"is {len(value)} characters long; use at most {MAX_TITLE_LENGTH}")
    for char in value:
        if unicodedata.category(char) in ("Cc", "Zl", "Zp"):
            raise SpecError("title", f"must be one line of text; remove the {char!r} character")
    # The title is copied into the generated module's docstring.
    if "\\" in value or '"""' in value:
        raise SpecError("title", "must not contain backslashes or '\"\"\"'; they would break the generated docstring")
    return value


def _activation(value: Any, path: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    known = tuple(ACTIVATIONS) + tuple(ACTIVATION_ALIASES)
    example = 'activation = "relu" or { name = "leaky_relu", alpha = 0.1 }'
    if not isinstance(value, dict):
        name = _choice(value, known, path, "an activation", example, ACTIVATIONS)
        return ACTIVATION_ALIASES.get(name, name), ()
    if "expr" in value:
        return _custom_activation(value, path), ()
    if "name" not in value:
        for key in value:
            if isinstance(key, str) and difflib.get_close_matches(key, ["name"], n=1, cutoff=0.6):
                raise SpecError(_join(path, key), f"unknown key {_quote(key, 24)}; did you mean 'name'?")
        raise SpecError(f"{path}.name", 'missing; name the activation, e.g. { name = "leaky_relu", alpha = 0.1 }, '
                                        'or define one, e.g. { expr = "x / (1 + abs(x))" }')
    name = _choice(value["name"], known, f"{path}.name", "an activation", 'name = "leaky_relu"', ACTIVATIONS)
    name = ACTIVATION_ALIASES.get(name, name)
    params = tuple(symbol.name for symbol in ACTIVATIONS[name].params)
    for key in value:
        if key == "name" or key in params:
            continue
        if not params:
            raise SpecError(_join(path, key), f"'{name}' takes no parameters; remove {_key_quote(key)}")
        close = difflib.get_close_matches(key, params, n=1, cutoff=0.6) if isinstance(key, str) else []
        fix = f"did you mean '{close[0]}'?" if close else f"'{name}' takes only {', '.join(params)}"
        raise SpecError(_join(path, key), f"unknown parameter {_key_quote(key)}; {fix}")
    given = tuple((key, _number(value[key], f"{path}.{key}", positive=True)) for key in params if key in value)
    return name, given


def _custom_label(value: Any, path: str, taken, what: str) -> str:
    """The optional name of a custom activation or loss: an identifier that is not already a built-in."""
    if value is None:
        return "custom"
    if not isinstance(value, str) or not value.isidentifier() or not value.isascii() or len(value) > 40:
        raise SpecError(path, f"expected a short identifier naming the custom {what}, got {_got(value)}; "
                              "e.g. name = \"softsign\"")
    if value in taken:
        raise SpecError(path, f"'{value}' is a built-in {what}; give the custom one another name, or remove expr")
    return value


def _custom_activation(value: dict, path: str) -> str:
    for key in value:
        if key not in ("expr", "name"):
            raise SpecError(_join(path, key), f"unknown key {_key_quote(key)}; a custom activation takes "
                                              "only expr and name")
    label = _custom_label(value.get("name"), f"{path}.name", (*ACTIVATIONS, *ACTIVATION_ALIASES), "activation")
    return custom_activation(_expression_text(value["expr"], f"{path}.expr", 'expr = "x / (1 + abs(x))"'),
                             label, f"{path}.expr").name


def _expression_text(value: Any, path: str, example: str) -> str:
    if not isinstance(value, str):
        raise SpecError(path, f"expected the expression as a string, got {_got(value)}; e.g. {example}")
    return value


def _matrix(value: Any, rows: int, cols: int, path: str) -> tuple[tuple[float, ...], ...]:
    hint = f"give {_plural(rows, 'row')} (one per input of the layer) of {_plural(cols, 'number')} (one per unit)"
    if not _sequence(value):
        raise SpecError(path, f"expected a {rows} x {cols} matrix, got {_got(value)}; {hint}")
    if len(value) != rows:
        if rows != cols and len(value) == cols and all(_sequence(row) and len(row) == rows for row in value):
            raise SpecError(path, f"expected a {rows} x {cols} matrix, got {cols} x {rows}; transpose it: {hint}")
        raise SpecError(path, f"expected a {rows} x {cols} matrix, got {_plural(len(value), 'row')}; {hint}")
    numbers_per_row = _plural(cols, "number")
    out = []
    for i, row in enumerate(value):
        if not _sequence(row):
            raise SpecError(f"{path}[{i}]", f"expected a list of {numbers_per_row}, got {_got(row)}; {hint}")
        if len(row) != cols:
            raise SpecError(f"{path}[{i}]", f"expected {numbers_per_row} (one per unit), got {len(row)}; {hint}")
        out.append(tuple(_number(x, f"{path}[{i}][{c}]") for c, x in enumerate(row)))
    return tuple(out)


def _vector(value: Any, size: int, path: str) -> tuple[float, ...]:
    if not _sequence(value):
        raise SpecError(path, f"expected a list of {_plural(size, 'number')} (one per unit), got {_got(value)}")
    if len(value) != size:
        raise SpecError(path, f"expected {_plural(size, 'number')} (one per unit), got {len(value)}")
    return tuple(_number(x, f"{path}[{i}]") for i, x in enumerate(value))


def _layer(value: Any, index: int, fan_in: int, is_output: bool, shape: tuple[int, ...] | None = None) -> LayerSpec:
    path = f"layers[{index}]"
    table = _table(value, path, 'write each layer as a table, e.g. { units = 4, activation = "relu" }')
    if windows.layer_kind(table, path) != "dense":
        previous = f"layers[{index - 1}]" if index else "input_shape" if shape else "the input (inputs = n)"
        window, activation, params, bias = windows.parse_window_layer(table, path, shape, previous, _activation)
        if math.prod(window.output_shape) > MAX_SIZE:
            raise SpecError(path, f"outputs {math.prod(window.output_shape):,} values a sample, over the limit of "
                                  f"{MAX_SIZE:,}; use fewer filters or a larger stride")
        if activation_named(activation).rowwise:
            raise SpecError(f"{path}.activation", f"'{activation}' is for a dense output layer; use an elementwise "
                                                  "activation such as \"relu\" here")
        return LayerSpec(math.prod(window.output_shape), activation, params, bias, window=window)
    table = {key: value for key, value in table.items() if key != "kind"}
    _check_keys(table, _LAYER_KEYS, path, _MISPLACED_IN_LAYER)
    units = _integer(_require(table, "units", path, "give the number of units, e.g. units = 4"), f"{path}.units")
    activation, params = _activation(
        _require(table, "activation", path, "name an activation, e.g. activation = \"sigmoid\""),
        f"{path}.activation",
    )
    if activation_named(activation).rowwise:
        if not is_output:
            raise SpecError(f"{path}.activation", f"'{activation}' is only allowed on the last layer; "
                                                  "use an elementwise activation such as \"relu\" here")
        if units < 2:
            raise SpecError(f"{path}.activation", f"'{activation}' over 1 unit always outputs 1; "
                                                  "give units = 2 or more, or use \"sigmoid\" for one output")
    bias = table.get("bias", True)
    if not isinstance(bias, bool):
        raise SpecError(f"{path}.bias", f"expected true or false, got {_got(bias)}")
    weights = None
    if "weights" in table:
        weights = _matrix(table["weights"], fan_in, units, f"{path}.weights")
    biases = None
    if "biases" in table:
        if not bias:
            raise SpecError(f"{path}.biases", "the layer has bias = false; remove biases or set bias = true")
        biases = _vector(table["biases"], units, f"{path}.biases")
    residual = table.get("residual", False)
    if not isinstance(residual, bool):
        raise SpecError(f"{path}.residual", f"expected true or false, got {_got(residual)}")
    if residual and units != fan_in:
        raise SpecError(f"{path}.residual", f"adds the layer's {_plural(fan_in, 'input')} to its {units} units; "
                                            f"give units = {fan_in} or remove residual")
    regularizer = _kernel_regularizer(table["kernel_regularizer"], f"{path}.kernel_regularizer") \
        if "kernel_regularizer" in table else ()
    normalization, epsilon, momentum = _normalization(table, path, units, residual)
    if normalization:
        bias = False  # the shift beta is the layer's bias, added after the normalisation
    dropout = _dropout(table["dropout"], f"{path}.dropout") if "dropout" in table else 0.0
    if dropout and residual:
        raise SpecError(f"{path}.dropout", "a residual layer cannot drop its inputs (the skip would carry them "
                                           "undropped); remove dropout or residual")
    if dropout and normalization:
        raise SpecError(f"{path}.dropout", "is not combined with normalization in one layer; remove one of them")
    return LayerSpec(units, activation, params, bias, weights, biases, residual, regularizer, normalization, epsilon,
                     dropout, momentum)


def _normalization(table: dict, path: str, units: int, residual: bool) -> tuple[str, float, float]:
    """The layer's normalization, its epsilon and its momentum, after checking that the layer can have them."""
    if "normalization" not in table:
        for key in ("epsilon", "momentum"):
            if key in table:
                raise SpecError(f"{path}.{key}", f'is the normalisation\'s; add normalization = "batch" (or "layer") '
                                                 f"or remove {key}")
        return "", LAYER_NORM_EPSILON, BATCH_NORM_MOMENTUM
    normalization = table["normalization"]
    allowed = ", ".join(f'"{name}"' for name in NORMALIZATIONS)
    if normalization not in NORMALIZATIONS:
        raise SpecError(f"{path}.normalization", f"expected one of {allowed} (layer or batch normalisation), "
                                                 f"got {_got(normalization)}")
    if normalization == "layer" and units < 2:
        raise SpecError(f"{path}.normalization", "the variance over 1 unit is always 0; give units = 2 or more, "
                                                 'or use normalization = "batch", or remove normalization')
    if residual:
        raise SpecError(f"{path}.normalization", "is not combined with residual; remove one of them")
    # A bias added before the mean is subtracted cancels exactly; the shift beta takes its place.
    if table.get("bias") is True or "biases" in table:
        key = "biases" if "biases" in table else "bias"
        raise SpecError(f"{path}.{key}", "a normalised layer has no bias: its shift beta (starting at 0) takes "
                                         f"its place; remove {key}")
    epsilon = table.get("epsilon", LAYER_NORM_EPSILON)
    if isinstance(epsilon, bool) or not isinstance(epsilon, (int, float)) or not math.isfinite(epsilon) \
            or epsilon <= 0:
        raise SpecError(f"{path}.epsilon", f"expected a positive number, got {_got(epsilon)}; e.g. epsilon = 1e-5")
    momentum = BATCH_NORM_MOMENTUM
    if "momentum" in table:
        if normalization != "batch":
            raise SpecError(f"{path}.momentum", "is batch normalisation's, for its running statistics; layer "
                                                "normalisation keeps none: remove momentum")
        momentum = _number(table["momentum"], f"{path}.momentum", low=0.0, high=1.0)
    return normalization, float(epsilon), float(momentum)


def _dropout(value: Any, path: str) -> float:
    """The fraction of the layer's inputs dropped while training: 0 or more, less than 1."""
    example = "e.g. dropout = 0.5 drops half of the layer's inputs while training"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(path, f"expected a number from 0 up to (not including) 1, got {_got(value)}"
                              f"{_number_hint(value) or '; ' + example}")
    try:
        rate = float(value)
    except OverflowError:
        rate = math.inf
    if not (math.isfinite(rate) and 0.0 <= rate < 1.0):
        raise SpecError(path, f"must be from 0 up to (not including) 1, got {_show(value)}; {example}")
    return rate


def _kernel_regularizer(value: Any, path: str) -> tuple[tuple[str, float], ...]:
    """{l2 = 1e-4}, {l1 = ...} or both: each a coefficient of 0 or more, in the order l1, l2."""
    example = "e.g. kernel_regularizer = { l2 = 1e-4 }"
    table = _table(value, path, example)
    if not table:
        raise SpecError(path, f"is empty; give l1, l2 or both, {example}")
    for key in table:
        if key not in PENALTIES:
            raise SpecError(f"{path}.{_key_text(key)}", f"unknown penalty{_suggest(key, PENALTIES)}")
    return tuple((name, _number(table[name], f"{path}.{name}", low=0.0)) for name in PENALTIES if name in table)


def _loss(value: Any, output_activation: str) -> LossSpec:
    shorthand = isinstance(value, str)
    name_path = "loss" if shorthand else "loss.name"
    if shorthand:
        table = {"name": value}
    else:
        table = _table(value, "loss", 'e.g. loss = "squared_error", or a [loss] table with name, scale and reduction')
    _check_keys(table, _LOSS_KEYS, "loss", _MISPLACED_IN_LOSS)
    if "expr" in table:
        label = _custom_label(table.get("name"), "loss.name", LOSSES, "loss")
        name = custom_loss(_expression_text(table["expr"], "loss.expr", 'expr = "(yhat - y)**2"'), label,
                           "loss.expr").name
    else:
        name = _choice(table.get("name", "squared_error"), LOSSES, name_path, "a loss", 'name = "squared_error"')
    required = loss_named(name).requires_output
    if required and output_activation != required:
        raise SpecError(
            name_path,
            f"'{name}' needs a {required} output layer, but the last layer uses "
            f"'{activation_named(output_activation).short_name}'; "
            f"set the last layer's activation to \"{required}\" or choose another loss",
        )
    scale = _number(table.get("scale", 1.0), "loss.scale", positive=True)
    reduction = _choice(table.get("reduction", "mean"), REDUCTIONS, "loss.reduction", "a reduction",
                        'reduction = "mean"')
    return LossSpec(name, scale, reduction)


def _training(value: Any) -> TrainingSpec:
    table = _table(value, "training", 'e.g. a [training] table with optimizer = "adam" and learning_rate = 0.01')
    _check_keys(table, _TRAINING_KEYS, "training", _MISPLACED_IN_TRAINING)
    out: dict[str, Any] = {}
    if "optimizer" in table:
        out["optimizer"] = _choice(table["optimizer"], OPTIMIZERS, "training.optimizer", "an optimizer",
                                   'optimizer = "adam"')
    if "init" in table:
        out["init"] = _choice(table["init"], INITIALIZERS, "training.init", "an initializer",
                              'init = "glorot_normal"')
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
            out[key] = _number(table[key], f"training.{key}", low=0.0, below=1.0)
    if "epsilon" in table:
        out["epsilon"] = _number(table["epsilon"], "training.epsilon", positive=True)
    if "tolerance" in table:
        out["tolerance"] = _number(table["tolerance"], "training.tolerance", positive=True)
    if out.get("optimizer") == "sgd" and "batch_size" not in out:
        out["batch_size"] = 32
    return TrainingSpec(**out)


def _data(value: Any) -> tuple[tuple[str, Any], ...]:
    table = _table(value, "data", 'e.g. a [data] table with builtin = "xor"')
    _check_keys(table, _DATA_KEYS, "data")
    for key, item in table.items():
        if isinstance(item, (dict, list, tuple)):
            raise SpecError(f"data.{key}", f"expected a single value, got {_got(item)}")
    return tuple(sorted(table.items()))


def _check_size(spec: Spec) -> None:
    per_layer = [
        layer.weight_count(fan_in) + layer.parameter_count
        for fan_in, layer in zip(spec.sizes[:-1], spec.layers, strict=True)
    ]
    total = sum(per_layer)
    if total > MAX_PARAMETERS:
        worst = max(range(len(per_layer)), key=per_layer.__getitem__)
        raise SpecError("layers", f"{total:,} parameters is over the limit of {MAX_PARAMETERS:,} "
                                  f"(layers[{worst}] has {per_layer[worst]:,}); use fewer inputs or units")


def _clipped(error: SpecError) -> SpecError:
    """``error`` itself, or a copy cut to one short line should some rendered value make it too long."""
    if len(str(error)) <= _LONGEST_MESSAGE:
        return error
    field = error.field if len(error.field) <= 60 else error.field[:57] + "..."
    room = max(_LONGEST_MESSAGE - len(field) - 2, 20)
    message = error.message if len(error.message) <= room else error.message[: room - 3] + "..."
    return SpecError(field, message)


def parse_spec(raw: Any, source: str = "<dict>") -> Spec:
    """Validates a spec given as plain data; raises SpecError naming the first bad field."""
    try:
        return _parse_spec(raw, source)
    except SpecError as error:
        clipped = _clipped(error)
        if clipped is error:
            raise
        raise clipped from None


def _check_text(value: Any, path: str, depth: int = 0) -> None:
    """Refuses text that cannot be written as UTF-8 (a lone surrogate such as JSON's "\\ud800"), anywhere.

    Every string of a spec may reach a file (a docstring, a document, a message), so each is checked first.
    """
    if depth > 20:
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise SpecError(path or "spec", f"has a character that is not text (code point "
                                            f"U+{ord(value[error.start]):04X} at position {error.start}); "
                                            "remove it or write the character itself") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, path or "spec", depth + 1)
            _check_text(item, _join(path, key), depth + 1)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_text(item, f"{path}[{index}]", depth + 1)


def _parse_spec(raw: Any, source: str) -> Spec:
    table = _table(raw, "spec", "a spec is a table with name, inputs and layers at the top level")
    _check_text(table, "")
    _check_keys(table, _TOP_KEYS, "", _MISPLACED_AT_TOP)
    name = _name(_require(table, "name", "", "give the network a name, e.g. name = \"xor\""))
    title = _title(table.get("title", ""))
    shape = windows.input_shape(table["input_shape"]) if "input_shape" in table else None
    if shape is None or "inputs" in table:
        inputs = _integer(_require(table, "inputs", "", "give the number of input features, e.g. inputs = 3"),
                          "inputs")
    if shape is not None and "inputs" in table and inputs != math.prod(shape):
        raise SpecError("inputs", f"is {inputs}, but input_shape {list(shape)} has {math.prod(shape)} entries; "
                                  "remove inputs or make the two agree")
    inputs = math.prod(shape) if shape is not None else inputs
    if inputs > MAX_SIZE:
        raise SpecError("input_shape", f"has {inputs:,} entries, over the limit of {MAX_SIZE:,} inputs")
    layers_raw = _require(table, "layers", "", "add at least one [[layers]] table with units and activation")
    if isinstance(layers_raw, dict):
        raise SpecError("layers", "expected a list of layers, got a table; in TOML write [[layers]] (double brackets) "
                                  "once per layer, in JSON a list of objects")
    if not _sequence(layers_raw):
        raise SpecError("layers", f"expected a list of layers, got {_got(layers_raw)}; "
                                  "add one [[layers]] table per layer with units and activation")
    if not layers_raw:
        raise SpecError("layers", "is empty; add at least one [[layers]] table with units and activation")
    if len(layers_raw) > MAX_LAYERS:
        raise SpecError("layers", f"has {len(layers_raw)} layers; use at most {MAX_LAYERS}")
    layers, fan_in, input_shape = [], inputs, shape
    for index, layer_raw in enumerate(layers_raw):
        layer = _layer(layer_raw, index, fan_in, index == len(layers_raw) - 1, shape)
        layers.append(layer)
        fan_in = layer.units
        shape = layer.window.output_shape if layer.window else None
    loss = _loss(table.get("loss", {}), layers[-1].activation)
    training = _training(table.get("training", {}))
    data = _data(table.get("data", {}))
    notation = ""
    if "notation" in table:
        notation = _choice(table["notation"], NOTATION_NAMES, "notation", "a notation", 'notation = "lab"')
    spec = Spec(name, inputs, tuple(layers), loss, training, title, data, source, notation, input_shape or ())
    _check_size(spec)
    _check_batch_normalisation(spec)
    return spec


def _check_batch_normalisation(spec: Spec) -> None:
    """A batch-normalised layer trains on batches of 2 samples or more: one sample has no variance across it."""
    if spec.training.batch_size != 1:
        return
    for index, layer in enumerate(spec.layers):
        if layer.normalization == "batch":
            raise SpecError("training.batch_size", f"layers[{index}] is batch-normalised, over each batch's samples, "
                                                   "and one sample has no variance; use batch_size = 2 or more")


# --------------------------------------------------------------------------- files

_TOML_HINTS = (
    ("Invalid value", 'give a value after "=" and put text in double quotes, e.g. activation = "relu"'),
    ("Cannot overwrite", "a key is given twice, keep one (use [[layers]] for each layer)"),
    ("Cannot declare", "a table is declared twice, keep one (use [[layers]] for each layer)"),
    ("Cannot mutate", "a table is declared twice, keep one (use [[layers]] for each layer)"),
    ("Unterminated string", "close each string with a matching quote"),
    ("Found invalid character", "close each string with a matching quote on the same line"),
    ("Illegal character", "close each string with a matching quote on the same line"),
    ("Unclosed array", "close the list with ']'"),
    ("Unclosed inline table", "close the inline table with '}' on the same line"),
    ("Expected ']", "close the table header with ']' (or ']]' for [[layers]])"),
    ("Expected '=' after a key", "write key = value"),
    ("Expected newline or end of document", "put one key = value per line and check that value's syntax"),
    ("Invalid statement", "each line must be key = value, a [table] header or a [[layers]] header"),
    ("Invalid initial character for a key", "keys are bare words or quoted strings; check the syntax there"),
)

_JSON_HINTS = (
    ("Expecting property name", "keys need double quotes, and objects no trailing comma"),
    ("Expecting value", "check for a missing value, a trailing comma or single quotes"),
    ("Expecting ',' delimiter", "a comma or a closing bracket is missing"),
    ("Expecting ':' delimiter", "write \"key\": value"),
    ("Extra data", "there is text after the end of the top-level object"),
    ("Unterminated string", "close each string with a double quote"),
    ("Invalid control character", "strings cannot span lines; write \\n for a line break"),
)


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _one_line(text: str, limit: int = 80) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _hint(message: str, hints: tuple[tuple[str, str], ...], fallback: str) -> str:
    return next((hint for start, hint in hints if message.startswith(start)), fallback)


def _file_label(path: Path) -> str:
    name = path.name or str(path)
    return name if _PLAIN_FILE.fullmatch(name) else _quote(name)


def _parse_toml(text: str, where: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = re.fullmatch(r"(.*) \((at [^()]*)\)", message)
        what, at = (found.group(1), found.group(2)) if found else (message, "")
        hint = _hint(what, _TOML_HINTS, "fix the TOML syntax there")
        raise SpecError(where, f"invalid TOML{' ' + at if at else ''}: {_one_line(what)}; {hint}") from None
    except RecursionError:
        raise SpecError(where, "TOML is nested too deeply; a spec needs only a few levels of tables") from None
    except ValueError:
        raise SpecError(where, "a number in the file has too many digits; use an ordinary number") from None


def _parse_json(text: str, where: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as error:
        raise SpecError(where, f"key {_quote(error.key)} appears twice in one JSON object; keep one") from None
    except json.JSONDecodeError as error:
        hint = _hint(error.msg, _JSON_HINTS, "fix the JSON syntax there")
        raise SpecError(where, f"invalid JSON at line {error.lineno}, column {error.colno}: "
                               f"{_one_line(error.msg)}; {hint}") from None
    except RecursionError:
        raise SpecError(where, "JSON is nested too deeply; a spec needs only a few levels of objects") from None
    except ValueError:
        raise SpecError(where, "a number in the file has too many digits; use an ordinary number") from None


def read_spec_file(path: Path) -> Any:
    """Parses a TOML or JSON file into plain data, turning every failure into a SpecError."""
    try:
        path = Path(path)
    except TypeError:
        raise SpecError("spec", f"expected a file path, got {_got(path)}") from None
    try:
        return _read_spec_file(path)
    except SpecError as error:
        clipped = _clipped(error)
        if clipped is error:
            raise
        raise clipped from None


def _read_spec_file(path: Path) -> Any:
    where = _file_label(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SpecError(where, "file not found; give the path of a .toml or .json spec, or an example name "
                               "from 'symbp examples'") from None
    except IsADirectoryError:
        raise SpecError(where, "is a directory; give the path of a .toml or .json spec file") from None
    except OSError as error:
        reason = _one_line(error.strerror or type(error).__name__, 60)
        raise SpecError(where, f"cannot be read ({reason}); check the path and its permissions") from None
    except ValueError:
        raise SpecError(where, "is not a valid path; give the path of a .toml or .json spec file") from None
    if len(data) > MAX_FILE_BYTES:
        raise SpecError(where, f"is over {MAX_FILE_BYTES // 2**20} MiB; a spec file is a short TOML or JSON text")
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json", ""):
        raise SpecError(where, f"unknown file type {_quote(path.suffix, 20)}; use a .toml or .json spec file")
    if not data:
        raise SpecError(where, "file is empty; a spec needs at least name, inputs and [[layers]]")
    if not data.strip():
        raise SpecError(where, "file is empty (only whitespace); a spec needs at least name, inputs and [[layers]]")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise SpecError(where, "is UTF-16 text; save the spec as UTF-8")
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise SpecError(where, f"contains NUL bytes (first on line {line}); a spec is a TOML or JSON text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise SpecError(where, f"is not UTF-8 text (bad byte on line {line}); save the spec as UTF-8") from None
    if suffix == ".json":
        return _parse_json(text, where)
    return _parse_toml(text, where)


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def _bundled_example(name: str) -> Path | None:
    try:
        from symbp.examples import example_path
    except ImportError:
        return None
    return example_path(name)


# What every public function accepts as a spec: a Spec, a dict, a .toml/.json path, or a bundled example's name.
SpecSource = Spec | Mapping[str, Any] | str | os.PathLike[str]


def load_spec(source: SpecSource) -> Spec:
    """Loads a spec from a dict, a Spec, a file path, or the name of a bundled example."""
    if isinstance(source, Spec):
        return source
    if isinstance(source, dict):
        return parse_spec(source)
    if not isinstance(source, (str, os.PathLike)):
        raise SpecError("spec", f"expected a file path, an example name, a dict or a Spec, got {_got(source)}")
    try:
        path = Path(source)
    except TypeError:
        raise SpecError("spec", "expected a file path given as text, an example name, a dict or a Spec") from None
    if not _exists(path) and path.suffix == "" and str(source).isidentifier():
        bundled = _bundled_example(str(source))
        if bundled is not None:
            path = bundled
    return parse_spec(read_spec_file(path), source=str(path))
