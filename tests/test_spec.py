"""Spec parsing: every malformed spec in tests/bad_specs/ is rejected with one clear line; valid specs parse."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from symbp.errors import SpecError
from symbp.spec.schema import LayerSpec, LossSpec, Spec, TrainingSpec, load_spec, parse_spec

BAD_SPECS = Path(__file__).parent / "bad_specs"

# file name -> (field path the error must start with, text the message must contain)
EXPECTED: dict[str, tuple[str, str]] = {
    # syntax
    "syntax_unquoted_string.toml": ("syntax_unquoted_string.toml", "invalid TOML at line 6, column 14"),
    "syntax_unclosed_array.toml": ("syntax_unclosed_array.toml", "close the list with ']'"),
    "syntax_duplicate_key.toml": ("syntax_duplicate_key.toml", "a key is given twice"),
    "syntax_bad_table_header.toml": ("syntax_bad_table_header.toml", "Expected ']]'"),
    "syntax_unterminated_string.toml": ("syntax_unterminated_string.toml", "matching quote"),
    "syntax_missing_value.toml": ("syntax_missing_value.toml", 'give a value after "="'),
    "syntax_json_in_toml.toml": ("syntax_json_in_toml.toml", "invalid TOML at line 1"),
    "json_trailing_comma.json": ("json_trailing_comma.json", "trailing comma"),
    "json_single_quotes.json": ("json_single_quotes.json", "keys need double quotes"),
    "json_truncated.json": ("json_truncated.json", "invalid JSON at line 1"),
    "json_duplicate_key.json": ("json_duplicate_key.json", "'inputs' appears twice"),
    "json_missing_comma.json": ("json_missing_comma.json", "a comma or a closing bracket is missing"),
    "json_deep_nesting.json": ("json_deep_nesting.json", "nested too deeply"),
    "json_top_level_list.json": ("spec", "expected a table, got a list"),
    # encodings and junk
    "empty.toml": ("empty.toml", "file is empty"),
    "whitespace_only.toml": ("whitespace_only.toml", "only whitespace"),
    "binary_junk.toml": ("binary_junk.toml", "NUL bytes"),
    "nul_bytes.toml": ("nul_bytes.toml", "NUL bytes (first on line 2)"),
    "invalid_utf8.toml": ("invalid_utf8.toml", "save the spec as UTF-8"),
    "utf16.toml": ("utf16.toml", "is UTF-16 text"),
    "spec.yaml": ("spec.yaml", "use a .toml or .json spec file"),
    # wrong types
    "units_string.toml": ("layers[0].units", "write the number without quotes"),
    "units_float.toml": ("layers[0].units", "got a number 2.5; use a whole number"),
    "units_bool.toml": ("layers[0].units", "got a boolean true"),
    "json_units_float.json": ("layers[0].units", "write 2 without a decimal point"),
    "inputs_list.toml": ("inputs", "without brackets"),
    "bias_string.toml": ("layers[0].bias", "expected true or false, got a string 'yes'"),
    "learning_rate_string.toml": ("training.learning_rate", "expected a number, got a string 'fast'"),
    "learning_rate_quoted_number.toml": ("training.learning_rate", "without quotes"),
    "epochs_negative.toml": ("training.epochs", "must be at least 0, got -1"),
    "title_number.toml": ("title", "expected a string, got an integer 5"),
    "title_multiline.toml": ("title", "must be one line"),
    "title_backslash.toml": ("title", "backslashes"),
    "activation_number.toml": ("layers[0].activation", "expected the name of an activation as a string"),
    "loss_number.toml": ("loss", "expected a table, got an integer 3"),
    "training_string.toml": ("training", "expected a table, got a string 'adam'"),
    "json_name_number.json": ("name", "expected a string, got an integer 5"),
    "json_layers_string.json": ("layers", "expected a list of layers, got a string"),
    "batch_size_zero.toml": ("training.batch_size", "must be at least 1, got 0"),
    "seed_negative.toml": ("training.seed", "must be at least 0, got -5"),
    "momentum_one.toml": ("training.momentum", "must be less than 1"),
    "learning_rate_400_digits.toml": ("training.learning_rate", "about 401 digits"),
    "units_5000_digits.toml": ("units_5000_digits.toml", "too many digits"),
    "json_units_5000_digits.json": ("json_units_5000_digits.json", "too many digits"),
    # missing keys
    "missing_name.toml": ("name", "missing; give the network a name"),
    "missing_inputs.toml": ("inputs", "missing; give the number of input features"),
    "missing_layers.toml": ("layers", "missing; add at least one [[layers]] table"),
    "missing_units.toml": ("layers[0].units", "missing; give the number of units"),
    "missing_activation.toml": ("layers[1].activation", "missing; name an activation"),
    "activation_table_missing_name.toml": ("layers[0].activation.name", "missing; name the activation"),
    # unknown or misplaced keys
    "unknown_top_key_layer.toml": ("layer", "did you mean 'layers'?"),
    "unknown_top_key_epochs.toml": ("epochs", "it belongs in the [training] table"),
    "unknown_layer_key_unit.toml": ("layers[0].unit", "unknown key 'unit'; did you mean 'units'?"),
    "unknown_layer_key_activaton.toml": ("layers[0].activaton", "did you mean 'activation'?"),
    "unknown_loss_key.toml": ("loss.scal", "did you mean 'scale'?"),
    "unknown_training_key.toml": ("training.learning_rte", "did you mean 'learning_rate'?"),
    "unknown_data_key.toml": ("data.builtins", "did you mean 'builtin'?"),
    "loss_after_layers.toml": ("layers[1].loss", "put it above the first [[layers]]"),
    "quoted_key_with_newline.toml": ("layers[0].'unit\\ns'", "did you mean 'units'?"),
    # unknown names
    "activation_sigmod.toml": ("layers[1].activation", "unknown 'sigmod'; did you mean 'sigmoid'?"),
    "activation_relu6.toml": ("layers[0].activation", "unknown 'relu6'; did you mean 'relu'?"),
    "activation_long_name.toml": ("layers[0].activation", "choose one of"),
    "loss_squared_eror.toml": ("loss.name", "did you mean 'squared_error'?"),
    "loss_shorthand_unknown.toml": ("loss", "did you mean 'cross_entropy'?"),
    "optimizer_adma.toml": ("training.optimizer", "did you mean 'adam'?"),
    "reduction_avg.toml": ("loss.reduction", "unknown 'avg'; choose one of mean, sum"),
    "init_unknown.toml": ("training.init", "unknown 'xavier'; choose one of"),
    # sizes
    "units_zero.toml": ("layers[0].units", "must be at least 1, got 0"),
    "units_negative.toml": ("layers[1].units", "must be at least 1, got -1"),
    "inputs_zero.toml": ("inputs", "must be at least 1, got 0"),
    "units_huge.toml": ("layers[0].units", "must be at most 1000000, got 10000000000"),
    "inputs_huge.toml": ("inputs", "must be at most 1000000, got 999999999"),
    "too_many_parameters.toml": ("layers", "over the limit of 50,000,000"),
    "layers_empty.toml": ("layers", "is empty"),
    "layers_table.toml": ("layers", "write [[layers]] (double brackets)"),
    "layers_not_tables.toml": ("layers[0]", "expected a table, got an integer 2"),
    # loss against output activation, softmax placement
    "cross_entropy_without_softmax.toml": ("loss", "'cross_entropy' needs a softmax output layer"),
    "bce_with_tanh.toml": ("loss.name", "the last layer uses 'tanh'"),
    "softmax_hidden.toml": ("layers[0].activation", "only allowed on the last layer"),
    "softmax_one_unit.toml": ("layers[1].activation", "over 1 unit always outputs 1"),
    # explicit weights and biases
    "weights_wrong_rows.toml": ("layers[0].weights", "expected a 2 x 2 matrix, got 1 row"),
    "weights_wrong_cols.toml": ("layers[0].weights[1]", "expected 2 numbers (one per unit), got 1"),
    "weights_non_number.toml": ("layers[0].weights[1][1]", "expected a number, got a string 'x'"),
    "weights_transposed.toml": ("layers[1].weights", "transpose it"),
    "weights_not_list.toml": ("layers[0].weights", "expected a 2 x 2 matrix, got a number"),
    "biases_wrong_length.toml": ("layers[0].biases", "expected 2 numbers (one per unit), got 3"),
    "biases_without_bias.toml": ("layers[0].biases", "remove biases or set bias = true"),
    # network names
    "name_with_space.toml": ("name", 'e.g. "my_net"'),
    "name_leading_digit.toml": ("name", 'not starting with a digit, e.g. "net_1abc"'),
    "name_keyword.toml": ("name", "'class' is a Python keyword"),
    "name_non_ascii.toml": ("name", 'non-ASCII characters; use ASCII letters, digits and \'_\', e.g. "naive"'),
    "name_empty.toml": ("name", "is empty"),
    # loss scale
    "scale_zero.toml": ("loss.scale", "must be greater than 0, got 0.0"),
    "scale_negative.toml": ("loss.scale", "must be greater than 0, got -1.5"),
    "scale_nan.toml": ("loss.scale", "must be a finite number, got nan"),
    "scale_inf.toml": ("loss.scale", "must be a finite number, got inf"),
    "json_scale_nan.json": ("loss.scale", "must be a finite number, got nan"),
    # activation parameters
    "leaky_relu_alpha_string.toml": ("layers[0].activation.alpha", "expected a number, got a string 'big'"),
    "leaky_relu_unknown_param.toml": ("layers[0].activation.beta", "'leaky_relu' takes only alpha"),
    "leaky_relu_alpha_negative.toml": ("layers[0].activation.alpha", "must be greater than 0"),
    "sigmoid_with_alpha.toml": ("layers[0].activation.alpha", "'sigmoid' takes no parameters; remove 'alpha'"),
}

BAD_FILES = sorted(path.name for path in BAD_SPECS.iterdir() if path.is_file())


def test_every_bad_spec_has_an_expectation_and_vice_versa():
    assert len(BAD_FILES) >= 45
    assert sorted(EXPECTED) == BAD_FILES


@pytest.mark.parametrize("filename", BAD_FILES)
def test_bad_spec_is_rejected_with_one_clear_line(filename):
    field, substring = EXPECTED[filename]
    with pytest.raises(Exception) as caught:
        load_spec(BAD_SPECS / filename)
    error = caught.value
    assert type(error) is SpecError, f"{type(error).__name__}: {error}"
    text = str(error)
    assert "\n" not in text and "\r" not in text
    assert text.isprintable(), repr(text)
    assert len(text) < 200, text
    assert error.field == field
    assert text.startswith(f"{field}: ")
    assert substring in error.message


# --------------------------------------------------------------------------- valid specs

MINIMAL = """
name = "xor"
inputs = 2

[[layers]]
units = 2
activation = "tanh"

[[layers]]
units = 1
activation = "sigmoid"
"""

FULL_TOML = """
name = "iris"
title = "Iris classifier"
inputs = 4

[loss]
name = "cross_entropy"
scale = 0.5
reduction = "sum"

[training]
optimizer = "adam"
learning_rate = 0.05
epochs = 200
seed = 7

[data]
builtin = "iris"

[[layers]]
units = 3
activation = { name = "leaky_relu", alpha = 0.2 }
weights = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], [1.0, 1.1, 1.2]]
biases = [0.0, 0.5, -0.5]

[[layers]]
units = 3
activation = "softmax"
bias = false
"""

FULL_DICT = {
    "name": "iris",
    "title": "Iris classifier",
    "inputs": 4,
    "loss": {"name": "cross_entropy", "scale": 0.5, "reduction": "sum"},
    "training": {"optimizer": "adam", "learning_rate": 0.05, "epochs": 200, "seed": 7},
    "data": {"builtin": "iris"},
    "layers": [
        {
            "units": 3,
            "activation": {"name": "leaky_relu", "alpha": 0.2},
            "weights": [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9], [1.0, 1.1, 1.2]],
            "biases": [0.0, 0.5, -0.5],
        },
        {"units": 3, "activation": "softmax", "bias": False},
    ],
}


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _without_source(spec: Spec) -> Spec:
    return dataclasses.replace(spec, source="")


def test_defaults(tmp_path):
    spec = load_spec(_write(tmp_path, "xor.toml", MINIMAL))
    assert spec.name == "xor"
    assert spec.title == ""
    assert spec.inputs == 2
    assert all(layer.bias for layer in spec.layers)
    assert all(layer.weights is None and layer.biases is None for layer in spec.layers)
    assert spec.layers[0] == LayerSpec(units=2, activation="tanh")
    assert spec.loss == LossSpec("squared_error", 1.0, "mean")
    assert spec.training == TrainingSpec()
    assert spec.training.optimizer == "gd"
    assert spec.training.batch_size is None
    assert spec.data == ()
    assert spec.source == str(tmp_path / "xor.toml")


def test_sgd_gets_a_default_batch_size():
    base = {"name": "xor", "inputs": 2, "layers": [{"units": 1, "activation": "sigmoid"}]}
    assert parse_spec({**base, "training": {"optimizer": "sgd"}}).training.batch_size == 32
    assert parse_spec({**base, "training": {"optimizer": "sgd", "batch_size": 8}}).training.batch_size == 8
    assert parse_spec({**base, "training": {"optimizer": "adam"}}).training.batch_size is None


@pytest.mark.parametrize(("given", "canonical"), [("exp", "exponential"), ("identity", "linear"),
                                                  ("logistic", "sigmoid"), ("relu", "relu")])
def test_activation_aliases(given, canonical):
    spec = parse_spec({"name": "net", "inputs": 1, "layers": [{"units": 1, "activation": given}]})
    assert spec.layers[0].activation == canonical
    table_form = parse_spec({"name": "net", "inputs": 1, "layers": [{"units": 1, "activation": {"name": given}}]})
    assert table_form.layers[0].activation == canonical


def test_activation_table_form_gives_parameters(tmp_path):
    text = MINIMAL.replace('activation = "tanh"', 'activation = { name = "leaky_relu", alpha = 0.2 }')
    spec = load_spec(_write(tmp_path, "leaky.toml", text))
    assert spec.layers[0].activation == "leaky_relu"
    assert spec.layers[0].activation_params == (("alpha", 0.2),)
    without_alpha = load_spec(_write(tmp_path, "leaky2.toml", text.replace(", alpha = 0.2", "")))
    assert without_alpha.layers[0].activation_params == ()


def test_loss_string_shorthand(tmp_path):
    text = MINIMAL.replace('inputs = 2', 'inputs = 2\nloss = "cross_entropy"')
    text = text.replace('units = 1\nactivation = "sigmoid"', 'units = 3\nactivation = "softmax"')
    spec = load_spec(_write(tmp_path, "classes.toml", text))
    assert spec.loss == LossSpec("cross_entropy", 1.0, "mean")
    assert spec.outputs == 3


def test_toml_json_and_dict_give_equal_specs(tmp_path):
    from_toml = load_spec(_write(tmp_path, "iris.toml", FULL_TOML))
    from_json = load_spec(_write(tmp_path, "iris.json", json.dumps(FULL_DICT, indent=2)))
    from_dict = parse_spec(FULL_DICT)
    via_load = load_spec(FULL_DICT)
    assert from_toml.source.endswith("iris.toml")
    assert from_json.source.endswith("iris.json")
    assert from_dict.source == "<dict>"
    assert _without_source(from_toml) == _without_source(from_json) == _without_source(from_dict)
    assert _without_source(via_load) == _without_source(from_dict)

    spec = from_toml
    assert spec.title == "Iris classifier"
    assert spec.layers[0].activation_params == (("alpha", 0.2),)
    assert spec.layers[0].weights == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6), (0.7, 0.8, 0.9), (1.0, 1.1, 1.2))
    assert spec.layers[0].biases == (0.0, 0.5, -0.5)
    assert spec.layers[1].bias is False
    assert spec.loss == LossSpec("cross_entropy", 0.5, "sum")
    assert spec.training.optimizer == "adam"
    assert spec.training.learning_rate == 0.05
    assert spec.training.epochs == 200
    assert spec.training.seed == 7
    assert spec.data == (("builtin", "iris"),)
    assert load_spec(spec) is spec


def test_sizes_and_parameter_count():
    spec = parse_spec({
        "name": "net",
        "inputs": 3,
        "layers": [
            {"units": 4, "activation": "relu"},
            {"units": 5, "activation": "tanh", "bias": False},
            {"units": 2, "activation": "linear"},
        ],
    })
    assert spec.sizes == (3, 4, 5, 2)
    assert spec.outputs == 2
    assert spec.parameter_count == (3 * 4 + 4) + (4 * 5) + (5 * 2 + 2)


def test_utf8_byte_order_mark_is_accepted(tmp_path):
    toml_path = tmp_path / "bom.toml"
    toml_path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode())
    json_path = tmp_path / "bom.json"
    json_path.write_bytes(b"\xef\xbb\xbf" + json.dumps(FULL_DICT).encode())
    assert load_spec(toml_path).name == "xor"
    assert load_spec(json_path).name == "iris"


def test_integers_are_accepted_where_numbers_are_expected():
    spec = parse_spec({
        "name": "net",
        "inputs": 1,
        "loss": {"scale": 2},
        "training": {"learning_rate": 1},
        "layers": [{"units": 1, "activation": "linear", "weights": [[1]], "biases": [0]}],
    })
    assert spec.loss.scale == 2.0 and isinstance(spec.loss.scale, float)
    assert spec.training.learning_rate == 1.0
    assert spec.layers[0].weights == ((1.0,),)


# --------------------------------------------------------------------------- the Python dict API


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "my net"}, "name"),
        ({"inputs": "3"}, "inputs"),
        ({"layers": [{"units": 0, "activation": "relu"}]}, "layers[0].units"),
        ({"layers": [{"units": 2, "activation": "relu"}, {"units": 1, "activation": "sigmod"}]},
         "layers[1].activation"),
        ({"layers": [{"units": 1, "activation": "linear", "weights": ((1.0, 2.0),)}]}, "layers[0].weights[0]"),
        ({"loss": {"name": "squared_error", "scale": float("nan")}}, "loss.scale"),
        ({"training": {"optimizer": "adma"}}, "training.optimizer"),
        ({"training": None}, "training"),
        ({"title": None}, "title"),
        ({"extra": 1}, "extra"),
        ({1: "x"}, "1"),
    ],
)
def test_parse_spec_dict_errors_name_the_field(change, field):
    raw = {"name": "net", "inputs": 1, "layers": [{"units": 1, "activation": "sigmoid"}], **change}
    with pytest.raises(SpecError) as caught:
        parse_spec(raw)
    assert caught.value.field == field
    text = str(caught.value)
    assert text.startswith(f"{field}: ") and "\n" not in text and len(text) < 200


def test_parse_spec_rejects_a_non_table():
    with pytest.raises(SpecError) as caught:
        parse_spec(["name", "inputs"])
    assert caught.value.field == "spec"


@pytest.mark.parametrize("source", [42, None, 3.5, b"spec.toml", ["a.toml"]])
def test_load_spec_rejects_sources_that_are_not_paths(source):
    with pytest.raises(SpecError) as caught:
        load_spec(source)
    assert caught.value.field == "spec"


@pytest.mark.parametrize("name", ["no_such_spec_anywhere", "missing.toml", "bad\x00path.toml"])
def test_load_spec_of_a_missing_file(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SpecError) as caught:
        load_spec(name)
    text = str(caught.value)
    assert "\n" not in text and text.isprintable() and len(text) < 200


def test_load_spec_of_a_directory(tmp_path):
    with pytest.raises(SpecError, match="is a directory"):
        load_spec(tmp_path)
