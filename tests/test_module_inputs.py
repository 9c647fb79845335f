"""The generated module checks its inputs' shapes and kinds once per public call, naming what it expected."""

import numpy as np
import pytest

from symbp.checks.gradients import load_module_from_source
from symbp.render.code.numpy_module import generate_module

CLASSIFIER = {"name": "three_way", "inputs": 4, "layers": [{"units": 5, "activation": "tanh"},
                                                        {"units": 3, "activation": "softmax"}],
              "loss": {"name": "cross_entropy"}}
REGRESSION = {"name": "line", "inputs": 2, "layers": [{"units": 1, "activation": "linear"}]}


@pytest.fixture(scope="module")
def classifier():
    return load_module_from_source(generate_module(CLASSIFIER), "three_way")


@pytest.fixture(scope="module")
def regression():
    return load_module_from_source(generate_module(REGRESSION), "line")


def _data(rows=12):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 4))
    return X, np.eye(3)[rng.integers(0, 3, rows)]


def _every_public_call(module, params, X, Y):
    yield "forward", lambda: module.forward(params, X)
    yield "predict", lambda: module.predict(params, X)
    yield "loss", lambda: module.loss(params, X, Y)
    yield "loss_and_grad", lambda: module.loss_and_grad(params, X, Y)
    yield "train", lambda: module.train(params, X, Y, epochs=1)
    yield "diagnose", lambda: module.diagnose(params, X, Y)


@pytest.mark.parametrize("columns", [3, 5])
def test_x_with_the_wrong_number_of_columns_is_named(classifier, columns):
    X, Y = _data()
    wrong = np.zeros((12, columns))
    for _name, call in _every_public_call(classifier, classifier.init_params(), wrong, Y):
        with pytest.raises(ValueError, match=rf"^X: expected shape \(N, 4\).*got \(12, {columns}\)"):
            call()


def test_a_single_sample_gets_the_reshape_hint(classifier):
    with pytest.raises(ValueError, match=r"X: expected shape \(N, 4\).*got \(4,\); one sample is X.reshape\(1, -1\)"):
        classifier.predict(classifier.init_params(), np.ones(4))


def test_integer_class_labels_for_one_hot_targets_are_named(classifier):
    X, Y = _data()
    labels = Y.argmax(axis=1)
    for targets in (labels, labels[:, None]):
        for name, call in _every_public_call(classifier, classifier.init_params(), X, targets):
            if name in ("forward", "predict"):
                continue
            with pytest.raises(ValueError, match=rf"^Y: expected shape \(12, 3\).*got {re_shape(targets.shape)}; "
                               r"class labels 0..2 become one-hot rows with np.eye\(3\)"):
                call()


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_y_with_the_wrong_rows_or_as_a_flat_vector(classifier, regression):
    X, Y = _data()
    with pytest.raises(ValueError, match=r"^Y: expected shape \(12, 3\), a row of 3 targets per row of X, "
                       r"got \(11, 3\)"):
        classifier.loss(classifier.init_params(), X, Y[:11])
    X2 = X[:, :2]
    with pytest.raises(ValueError, match=r"^Y: expected shape \(12, 1\).*got \(12,\); a column is Y.reshape\(-1, 1\)"):
        regression.loss_and_grad(regression.init_params(), X2, X2[:, 0])


def test_params_missing_or_misshapen_are_named(classifier):
    X, Y = _data()
    params = classifier.init_params()
    missing = {name: value for name, value in params.items() if name != "b2"}
    for _name, call in _every_public_call(classifier, missing, X, Y):
        with pytest.raises(ValueError, match=r"^params: missing b2; expected W1, b1, W2, b2"):
            call()
    misshapen = dict(params, W2=np.zeros((3, 5)))
    for _name, call in _every_public_call(classifier, misshapen, X, Y):
        with pytest.raises(ValueError, match=r"^params\['W2'\]: expected shape \(5, 3\), got \(3, 5\)"):
            call()
    with pytest.raises(ValueError, match=r"params\['W2'\]: expected shape"):
        classifier.save_params("never-written.npz", misshapen)


def test_text_is_not_numbers(classifier):
    X, Y = _data()
    with pytest.raises(ValueError, match=r"^X: expected numbers, got an array of dtype <U"):
        classifier.predict(classifier.init_params(), X.astype(str))


def test_validation_data_is_checked_under_its_own_names(classifier):
    X, Y = _data()
    with pytest.raises(ValueError, match=r"^X_val: expected shape \(N, 4\).*got \(12, 3\)"):
        classifier.train(classifier.init_params(), X, Y, epochs=1, validation=(X[:, :3], Y))
    with pytest.raises(ValueError, match=r"^Y_val: expected shape \(12, 3\).*got \(12,\)"):
        classifier.train(classifier.init_params(), X, Y, epochs=1, validation=(X, Y.argmax(axis=1)))
    with pytest.raises(ValueError, match=r"^validation: expected a pair"):
        classifier.train(classifier.init_params(), X, Y, epochs=1, validation=(X, Y, Y))


def test_lists_and_integer_one_hot_rows_are_accepted(classifier):
    X, Y = _data()
    params = classifier.init_params()
    as_lists = {name: value.tolist() for name, value in params.items()}
    assert classifier.loss(as_lists, X.tolist(), Y.astype(int).tolist()) == classifier.loss(params, X, Y)


def test_the_checks_run_once_per_call_not_per_step(classifier, monkeypatch):
    X, Y = _data(64)
    calls = []
    checked = classifier._checked_data

    def counted(*args, **kwargs):
        calls.append(kwargs.get("names", ("X", "Y"))[0])
        return checked(*args, **kwargs)

    monkeypatch.setattr(classifier, "_checked_data", counted)
    classifier.train(classifier.init_params(), X, Y, epochs=3, batch_size=4)
    # Once, for train itself: neither the 48 steps nor each epoch's loss on the whole set check again.
    assert len(calls) == 1
