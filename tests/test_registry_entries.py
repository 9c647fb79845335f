"""The registry entries' facts that consumers ask for: targets, how outputs are read, notation, overflow."""

from __future__ import annotations

import numpy as np
import pytest

from symbp.data.datafiles import check_fits
from symbp.data.datasets import Dataset
from symbp.errors import DataError
from symbp.registry.rules import ACTIVATIONS, LOSSES, activation_named, custom_activation, custom_loss, targets_for
from symbp.registry.targets import IN_UNIT_INTERVAL, ONE_HOT, REAL, TARGET_KINDS
from symbp.render.latex.notation import PRESETS
from symbp.spec.schema import load_spec


def test_each_loss_says_what_its_targets_must_be():
    assert {name: loss.targets.name for name, loss in LOSSES.items()} == {
        "squared_error": "real", "cross_entropy": "one-hot", "binary_cross_entropy": "in [0, 1]"}
    assert [name for name, loss in LOSSES.items() if loss.classifier] == ["cross_entropy", "binary_cross_entropy"]


@pytest.mark.parametrize("kind", TARGET_KINDS, ids=lambda kind: kind.name)
def test_random_targets_fit_their_kind(kind):
    Y = kind.random(np.random.default_rng(3), 40, 3)
    assert Y.shape == (40, 3) and kind.problem(Y, "Y", "the loss") is None
    if kind is not REAL:
        assert (Y >= 0).all() and (Y <= 1).all()


def test_a_target_kind_names_the_first_row_that_does_not_fit():
    inside = np.array([[0.0, 1.0], [0.5, 0.5], [0.2, 0.3]])
    assert ONE_HOT.problem(inside, "Y_test", "cross_entropy after softmax") == (
        "Y_test row 2 sums to 0.5; cross_entropy after softmax needs each target row to be one-hot "
        "(or probabilities summing to 1)")
    assert IN_UNIT_INTERVAL.problem(inside, "Y", "bce") is None
    outside = np.array([[0.0], [1.5]])
    assert IN_UNIT_INTERVAL.problem(outside, "Y", "bce") == (
        "Y row 1 has a target outside [0, 1]; bce needs targets between 0 and 1")
    assert REAL.problem(outside, "Y", "squared_error") is None


def test_data_files_are_checked_against_the_losses_targets():
    xor = load_spec({"name": "xor", "inputs": 2, "layers": [{"units": 2, "activation": "tanh"},
                     {"units": 1, "activation": "sigmoid"}], "loss": "binary_cross_entropy"})
    with pytest.raises(DataError, match=r"^Y row 1 has a target outside \[0, 1\]; binary_cross_entropy after "
                                        r"sigmoid needs targets between 0 and 1$"):
        check_fits(xor, Dataset(np.zeros((2, 2)), np.array([[0.0], [2.0]])))
    check_fits(xor, Dataset(np.zeros((2, 2)), np.array([[0.0], [1.0]])))


def test_the_targets_that_suit_a_network():
    sigmoid, softmax, linear = (ACTIVATIONS[name] for name in ("sigmoid", "softmax", "linear"))
    for loss in LOSSES.values():
        if loss.requires_output:
            assert targets_for(loss, ACTIVATIONS[loss.requires_output]) is loss.targets
    squared = LOSSES["squared_error"]
    assert targets_for(squared, sigmoid) is IN_UNIT_INTERVAL
    assert targets_for(squared, softmax) is ONE_HOT
    assert targets_for(squared, linear) is REAL


def test_how_predictions_are_read():
    assert {name for name, a in ACTIVATIONS.items() if a.output_name == "probability"} == {"softmax"}
    assert {name for name, loss in LOSSES.items() if loss.prediction_name == "probability"} == {
        "cross_entropy", "binary_cross_entropy"}
    assert {name for name, a in ACTIVATIONS.items() if a.natural_targets.classes} == {"sigmoid", "softmax"}


def test_facts_read_from_the_expressions():
    assert [name for name, a in ACTIVATIONS.items() if a.identity] == ["linear"]
    assert [name for name, a in ACTIVATIONS.items() if a.kinked] == ["relu", "leaky_relu"]
    assert [name for name, loss in LOSSES.items() if loss.least_squares] == ["squared_error"]
    assert custom_activation("x", "same").identity and custom_activation("max(x, 0)", "ramp").kinked
    assert custom_loss("yhat**2 - 2*yhat*y + y**2", "sq").least_squares
    assert not custom_loss("abs(yhat - y)", "l1").least_squares


def test_notation_slots_name_an_attribute_of_every_preset():
    slots = {a.notation_slot for a in ACTIVATIONS.values() if a.notation_slot}
    assert slots == {"sigmoid_symbol"}
    for preset in PRESETS.values():
        for slot in slots:
            assert isinstance(getattr(preset, slot), str)


def test_overflow_advice_is_a_clause():
    advised = {name: a.overflow_advice for name, a in ACTIVATIONS.items() if a.overflow_advice}
    assert list(advised) == ["exponential"]
    assert advised["exponential"].startswith("overflows once") and "709" in advised["exponential"]


def test_custom_entries_take_the_defaults():
    activation = activation_named(custom_activation("x / (1 + abs(x))", "soft").name)
    assert (activation.natural_targets, activation.output_name, activation.notation_slot,
            activation.overflow_advice) == (REAL, "output", "", "")
    loss = custom_loss("log(cosh(yhat - y))", "logcosh")
    assert (loss.targets, loss.prediction_name, loss.classifier, loss.requirement) == (
        REAL, "prediction", False, "logcosh")
