"""symbp predict: predictions from saved parameters, checked against the module's own predict()."""

import csv

import numpy as np
import pytest

from symbp.checks.gradients import load_module_from_source
from symbp.cli.main import main
from symbp.render.code.numpy_module import generate_module

IRIS_ROWS = "5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n"


@pytest.fixture(scope="module")
def iris_params(tmp_path_factory):
    folder = tmp_path_factory.mktemp("iris")
    assert main(["train", "iris", "--epochs", "30", "--quiet", "-o", str(folder / "iris.npz")]) == 0
    return folder / "iris.npz"


@pytest.fixture(scope="module")
def iris():
    return load_module_from_source(generate_module("iris"), "iris")


def one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("symbp: error: --params: "), err
    for fragment in fragments:
        assert fragment in err, err


def test_predict_writes_every_prediction_and_the_class(iris_params, iris, tmp_path, capsys):
    capsys.readouterr()
    out_csv = tmp_path / "out.csv"
    (tmp_path / "new.csv").write_text("sepal_length,sepal_width,petal_length,petal_width\n" + IRIS_ROWS)
    assert main(["predict", "iris", "--params", str(iris_params), "--data", str(tmp_path / "new.csv"),
                 "-o", str(out_csv)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"iris: predictions for 2 rows of {tmp_path / 'new.csv'}", f"wrote {out_csv}"]
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["output_0", "output_1", "output_2", "class"]
    expected = iris.predict(iris.load_params(iris_params), np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]))
    np.testing.assert_array_equal(np.array([[float(cell) for cell in row[:3]] for row in rows[1:]]), expected)
    assert [int(row[3]) for row in rows[1:]] == list(expected.argmax(axis=1))


def test_predict_prints_a_short_table_loss_and_accuracy_on_targets(iris_params, iris, capsys):
    capsys.readouterr()
    assert main(["predict", "iris", "--params", str(iris_params)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "iris: predictions for 30 rows of the spec's test data"
    assert lines[1].split() == ["row", "output_0", "output_1", "output_2", "class", "target"]
    assert len(lines) == 1 + 1 + 10 + 1 + 2
    assert lines[12] == "... 20 more rows (-o FILE.csv writes them all)"
    from symbp.data.datafiles import accuracy, load_training_data
    from symbp.spec.schema import load_spec

    data = load_training_data(load_spec("iris"))
    params = iris.load_params(iris_params)
    loss = iris.loss(params, data.X_test, data.Y_test)
    assert lines[13] == f"loss {loss:.6g} (the spec's squared_error on these 30 rows)"
    score = accuracy(iris.predict(params, data.X_test), data.Y_test)
    assert lines[14] == f"accuracy {score:.4f} ({round(score * 30)}/30)"


def test_a_regression_prints_predictions_without_classes(tmp_path, capsys):
    params = tmp_path / "house.npz"
    assert main(["train", "house_prices", "--epochs", "3", "--quiet", "-o", str(params)]) == 0
    capsys.readouterr()
    assert main(["predict", "house_prices", "--params", str(params)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["row", "prediction"]
    assert lines[-1].startswith("loss ") and not any(line.startswith("accuracy") for line in lines)


@pytest.mark.parametrize("change, fragments", [
    (lambda arrays: arrays.pop("b2"), ["missing array b2, expected shape (3,)"]),
    (lambda arrays: arrays.update(W9=np.zeros(2)), ["unexpected array W9"]),
    (lambda arrays: arrays.update(W1=np.zeros((3, 5))), ["W1 has shape (3, 5), expected (4, 5)"]),
    (lambda arrays: arrays.update(b1=np.full(5, np.nan)), ["b1 must hold finite numbers"]),
])
def test_a_parameter_file_that_does_not_fit_is_one_line(iris_params, tmp_path, capsys, change, fragments):
    arrays = dict(np.load(iris_params))
    change(arrays)
    np.savez(tmp_path / "bad.npz", **arrays)
    out = tmp_path / "out.csv"
    assert main(["predict", "iris", "--params", str(tmp_path / "bad.npz"), "-o", str(out)]) == 2
    one_line_error(capsys, *fragments)
    assert not out.exists()


def test_a_missing_or_foreign_parameter_file_is_one_line(tmp_path, capsys):
    assert main(["predict", "iris", "--params", str(tmp_path / "none.npz")]) == 2
    one_line_error(capsys, "no such file")
    (tmp_path / "text.npz").write_text("not a zip")
    assert main(["predict", "iris", "--params", str(tmp_path / "text.npz")]) == 2
    one_line_error(capsys, "not an .npz file")


def test_inputs_alone_from_an_npz_file(iris_params, iris, tmp_path, capsys):
    X = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]])
    np.savez(tmp_path / "new.npz", X=X)
    out_csv = tmp_path / "out.csv"
    assert main(["predict", "iris", "--params", str(iris_params), "--data", str(tmp_path / "new.npz"),
                 "-o", str(out_csv)]) == 0
    rows = list(csv.reader(out_csv.open()))
    expected = iris.predict(iris.load_params(iris_params), X)
    np.testing.assert_array_equal(np.array([[float(cell) for cell in row[:3]] for row in rows[1:]]), expected)
    np.savez(tmp_path / "wide.npz", X=np.zeros((2, 5)))
    capsys.readouterr()
    assert main(["predict", "iris", "--params", str(iris_params), "--data", str(tmp_path / "wide.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbp: error: ") and "X has shape (2, 5); the spec needs (rows, 4)" in err
