"""Hostile inputs: every one ends, within a hang guard, in one line naming the field, or is computed right.

Each case runs the real command line in a subprocess and checks the exit code, a single line on stderr
that names the field, no traceback, the inputs left as they were, and no new file in the folder.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec

# A hang guard, far above the 10 s each case is meant to take, for a machine shared with other work.
HANG_GUARD_S = 120


def _spec(layers=None, **top) -> dict:
    return {"name": "net", "inputs": 1, "layers": layers or [{"units": 1, "activation": "sigmoid"}], **top}


def _activation(expr, units=1, layers=1) -> dict:
    return _spec([{"units": units, "activation": {"expr": expr}}] * layers)


def _folder_state(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def run_symbp(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symbp", *args], cwd=folder, capture_output=True, text=True,
                          timeout=HANG_GUARD_S, env={**os.environ, **(env or {})})


def assert_refused(folder: Path, args: list[str], field: str, *, code: int = 2, env: dict | None = None) -> str:
    before = _folder_state(folder)
    result = run_symbp(folder, *args, env=env)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("symbp: error: "), result.stderr[-2000:]
    assert field in lines[0], lines[0]
    assert _folder_state(folder) == before, "a file was written or changed"
    return lines[0]


# --------------------------------------------------------------------------- specs (rule 3)

SURROGATE_TITLE = '{"name": "net", "title": "\\ud800", "inputs": 1, "layers": [{"units": 1, "activation": "relu"}]}'

HOSTILE_SPECS = {
    "lone_surrogate_title": (SURROGATE_TITLE, "title:"),
    "lone_surrogate_key": (SURROGATE_TITLE.replace('"title"', '"\\udc80"'), "not text"),
    "lone_surrogate_data_path": (json.dumps(_spec(data={"path": "PLACE"})).replace("PLACE", "a\\udc80.csv"),
                                 "data.path:"),
    "expr_as_list": (json.dumps(_activation(["x"])), "layers[0].activation.expr:"),
    "expr_as_table": (json.dumps(_activation({"x": 1})), "layers[0].activation.expr:"),
    "loss_expr_as_list": (json.dumps(_spec(loss={"expr": ["(yhat - y)**2"]})), "loss.expr:"),
    "tanh_nested_29_deep": (json.dumps(_activation("tanh(" * 29 + "x" + ")" * 29)), "nested more than"),
    "max_nested_12_deep": (json.dumps(_activation("max(" * 12 + "x" + ", 0)" * 12)), "nested more than"),
    "where_nested_7_deep": (json.dumps(_activation("where(x > 0, " * 7 + "x" + ", 0.1 * x)" * 7)),
                            "nested more than"),
    "long_expression": (json.dumps(_activation(" + ".join(["x"] * 300))), "characters long"),
    "long_product": (json.dumps(_activation("*".join(f"tanh({i}*x)" for i in range(1, 40)))),
                     "layers[0].activation.expr:"),
    "huge_exponent": (json.dumps(_activation("x**1000000")), "out of range"),
    "nested_exponents": (json.dumps(_activation("(x**9)**9")), "combined exponent"),
    "nul_in_expression": (json.dumps(_activation("x\u0000+1")), "control characters"),
    "weird_unicode_operator": (json.dumps(_activation("x \u2212 1")), "layers[0].activation.expr:"),
    "layers_1000": (json.dumps(_spec([{"units": 1, "activation": "sigmoid"}] * 1000)), "layers:"),
    "units_enormous": (json.dumps(_spec([{"units": 10**40, "activation": "sigmoid"}])), "layers[0].units:"),
    "scale_nan": ('{"name": "net", "inputs": 1, "layers": [{"units": 1, "activation": "relu"}], '
                  '"loss": {"scale": NaN}}', "loss.scale:"),
    "rate_infinity": ('{"name": "net", "inputs": 1, "layers": [{"units": 1, "activation": "relu"}], '
                      '"training": {"learning_rate": Infinity}}', "training.learning_rate:"),
    "duplicate_key": ('{"name": "net", "name": "other", "inputs": 1, "layers": []}', "appears twice"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SPECS))
def test_hostile_spec_is_one_line_for_every_command(tmp_path, case):
    text, field = HOSTILE_SPECS[case]
    (tmp_path / "spec.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    for command in (["generate", "spec.json", "-o", "out.py"], ["check", "spec.json"]):
        assert_refused(tmp_path, command, field)


@pytest.mark.parametrize("command", [["generate", "spec.toml", "-o", "out.py"], ["check", "spec.toml"],
                                     ["derive", "spec.toml", "-o", "out.tex"]])
def test_huge_integer_in_toml_is_one_line(tmp_path, command):
    (tmp_path / "spec.toml").write_text('name = "net"\ninputs = 1' + "0" * 5000 + '\n[[layers]]\nunits = 1\n'
                                        'activation = "relu"\n')
    assert_refused(tmp_path, command, "spec.toml:")


def test_the_layer_limit_is_stated_in_the_message(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(_spec([{"units": 1, "activation": "sigmoid"}] * 101)))
    assert "use at most 100" in assert_refused(tmp_path, ["generate", "spec.json", "-o", "out.py"], "layers:")


# --------------------------------------------------------------------------- accepted, and computed (rule 4)

ACCEPTED = {
    "tanh_nested_6_deep": "tanh(" * 6 + "x" + ")" * 6,
    "relu6": "min(max(x, 0), 6)",
    "min_max_nested_6_deep": "min(max(" * 3 + "x" + ", 0), 6)" * 3,
    "trig_product": "sin(x)*cos(x)*sin(2*x)*cos(3*x)",
    "fast_trig_sum": " + ".join(f"sin({i}*x)*cos(x/{i})" for i in range(1, 12)),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_expression_generates_and_passes_check(tmp_path, case):
    (tmp_path / "spec.json").write_text(json.dumps(_activation(ACCEPTED[case], units=2, layers=2)))
    generated = run_symbp(tmp_path, "generate", "spec.json", "-o", "out.py")
    assert generated.returncode == 0, generated.stderr[-2000:]
    checked = run_symbp(tmp_path, "check", "spec.json")
    assert checked.returncode == 0 and "PASS" in checked.stdout, checked.stdout + checked.stderr[-2000:]


@pytest.mark.parametrize("expr", ["tanh(exp(-atan(cos(sinh(x)))**2))", "sin(cos(atan(exp(sinh(x)))))"])
def test_nested_transcendental_activation_derives_quickly(tmp_path, expr):
    """Deciding whether a gradient term vanishes never asks SymPy for cos(sinh(2**61))."""
    (tmp_path / "spec.json").write_text(json.dumps(
        {"name": "net", "inputs": 2, "layers": [{"units": 2, "activation": {"expr": expr}},
                                                {"units": 1, "activation": "linear"}]}))
    started = time.perf_counter()
    derived = run_symbp(tmp_path, "derive", "spec.json", "-o", "net.tex")
    assert derived.returncode == 0, derived.stderr[-2000:]
    # A hang guard, not a speed test: the rule is that no input keeps symbp busy for minutes.
    assert time.perf_counter() - started < 60


def test_relu6_computes_relu6():
    spec = load_spec(_activation("min(max(x, 0), 6)"))
    module = load_module_from_source(generate_module(spec), "relu6")
    params = {"W1": np.array([[1.0]]), "b1": np.array([0.0])}
    X = np.array([[-3.0], [0.5], [5.0], [7.0], [100.0]])
    np.testing.assert_array_equal(module.predict(params, X)[:, 0], [0.0, 0.5, 5.0, 6.0, 6.0])


def test_deep_layers_at_the_limit_generate(tmp_path):
    (tmp_path / "spec.json").write_text(json.dumps(_spec([{"units": 1, "activation": "sigmoid"}] * 100)))
    result = run_symbp(tmp_path, "generate", "spec.json", "-o", "out.py")
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("scale", [1e-40, 1e-300])
def test_tiny_loss_scale_survives(scale):
    spec = load_spec(_spec(loss={"name": "squared_error", "scale": scale}))
    module = load_module_from_source(generate_module(spec), "tiny")
    params = module.init_params(0)
    X, Y = np.array([[1.0], [2.0]]), np.array([[0.0], [1.0]])
    value, grads = module.loss_and_grad(params, X, Y)
    unscaled = load_module_from_source(generate_module(load_spec(_spec())), "unscaled")
    reference, reference_grads = unscaled.loss_and_grad(params, X, Y)
    assert value == pytest.approx(scale * reference, rel=1e-12)
    np.testing.assert_allclose(grads["W1"], scale * reference_grads["W1"], rtol=1e-12)


def test_check_still_fails_a_wrong_gradient_of_a_trig_activation():
    spec = load_spec(_activation("sin(x)*cos(3*x)", units=2, layers=2))
    source = generate_module(spec).replace("grad_W1 = X.T @ delta1", "grad_W1 = 1.0001 * (X.T @ delta1)")
    assert source != generate_module(spec)
    report = check_gradients(spec, module=load_module_from_source(source, "broken"), expanded=False)
    assert not report.passed
    assert {p.name: p for p in report.parameters}["W1"].finite_difference_error > 1e-5


def test_check_on_an_overflowing_polynomial_is_one_line(tmp_path):
    layer = {"units": 1, "activation": {"expr": "x**10"}, "weights": [[100.0]], "biases": [0.0]}
    (tmp_path / "spec.json").write_text(json.dumps(_spec([layer] * 3)))
    assert "overflows float64" in assert_refused(tmp_path, ["check", "spec.json"], "check:")


# --------------------------------------------------------------------------- data files (rule 3, numerics)

SPEC_TOML = 'name = "net"\ninputs = 1\n[[layers]]\nunits = 1\nactivation = "sigmoid"\n'


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC_TOML)
    return tmp_path


def _train(data: str) -> list[str]:
    return ["train", "spec.toml", "--data", data, "-o", "p.npz", "--quiet"]


def test_csv_cell_over_the_csv_field_limit(folder):
    (folder / "d.csv").write_text("1," + "9" * 200_000 + "\n")
    assert_refused(folder, _train("d.csv"), "d.csv: line 1")


def test_csv_symlink_to_dev_zero_is_refused(folder):
    (folder / "d.csv").symlink_to("/dev/zero")
    assert "not a regular file" in assert_refused(folder, _train("d.csv"), "d.csv:")


def test_npz_whose_header_claims_72_tib(folder):
    header = {"descr": "<f8", "fortran_order": False, "shape": (3 * 2**40, 1)}
    member = np.lib.format.magic(1, 0) + _npy_header(header)
    with zipfile.ZipFile(folder / "d.npz", "w") as archive:
        archive.writestr("X.npy", member)
        archive.writestr("Y.npy", member)
    message = assert_refused(folder, _train("d.npz"), "d.npz:")
    assert "SYMBP_MAX_DATA_BYTES" in message and "TiB" in message


def _npy_header(header: dict) -> bytes:
    text = repr(header).encode("latin1")
    padding = 64 - (10 + len(text) + 1) % 64
    text += b" " * padding + b"\n"
    return len(text).to_bytes(2, "little") + text


def _mnist_folder(folder: Path, images_count: int, body: bytes = b"") -> Path:
    mnist = folder / "mnist"
    mnist.mkdir()
    for stem, shape in (("train-images-idx3-ubyte", (images_count, 28, 28)), ("train-labels-idx1-ubyte", (2,)),
                        ("t10k-images-idx3-ubyte", (2, 28, 28)), ("t10k-labels-idx1-ubyte", (2,))):
        header = bytes([0, 0, 0x08, len(shape)]) + np.array(shape, dtype=">u4").tobytes()
        (mnist / f"{stem}.gz").write_bytes(gzip.compress(header + body))
    return mnist


def test_small_gzip_idx_that_would_expand_to_gigabytes(folder):
    # 300 MB of uint8 pixels, 2.4 GB as float64: refused from the header, nothing decompressed past it.
    _mnist_folder(folder, 300_000_000 // 784)
    (folder / "spec.toml").write_text('name = "net"\ninputs = 784\nloss = "cross_entropy"\n'
                                      '[[layers]]\nunits = 10\nactivation = "softmax"\n')
    message = assert_refused(folder, _train("mnist"), "train-images-idx3-ubyte.gz")
    assert "as float64, over the limit of 2 GiB" in message


def test_the_data_limit_is_settable(folder):
    (folder / "d.csv").write_text("".join(f"{i},{i % 2}\n" for i in range(100)))
    message = assert_refused(folder, _train("d.csv"), "d.csv:", env={"SYMBP_MAX_DATA_BYTES": "1000"})
    assert "1600 bytes" in message or "1.56 KiB" in message
    assert_refused(folder, _train("d.csv"), "SYMBP_MAX_DATA_BYTES:", env={"SYMBP_MAX_DATA_BYTES": "2GiB"})


def test_nan_in_csv_is_named_before_training(folder):
    (folder / "d.csv").write_text("1,0\nnan,1\n2,inf\n3,nan\n4,nan\n5,nan\n")
    message = assert_refused(folder, _train("d.csv"), "d.csv: line 2, column 1 is nan, line 3, column 2 is inf")
    assert "(and 2 more)" in message


def test_nan_in_npz_is_named_before_training(folder):
    np.savez(folder / "d.npz", X=np.array([[1.0], [np.nan]]), Y=np.array([[0.0], [1.0]]))
    assert_refused(folder, _train("d.npz"), "d.npz: X[1, 0] is nan")


def test_csv_text_over_the_limit_is_not_read_past_it(folder):
    (folder / "d.csv").write_text("".join(f"{i},{i % 2}\n" for i in range(100)))
    message = assert_refused(folder, _train("d.csv"), "d.csv:", env={"SYMBP_MAX_DATA_BYTES": "100"})
    assert "over 100 bytes of text" in message and "SYMBP_MAX_DATA_BYTES" in message


def test_fifo_as_data_is_refused_without_blocking(folder):
    os.mkfifo(folder / "d.csv")
    assert "not a regular file" in assert_refused(folder, _train("d.csv"), "d.csv:")


@pytest.mark.parametrize("command", [["generate", "spec.json", "-o", "out.py"], ["check", "spec.json"],
                                     ["derive", "spec.json", "-o", "out.tex"], ["worksheet", "spec.json"],
                                     ["train", "spec.json", "-o", "p.npz"], ["diagnose", "spec.json"]])
def test_lone_surrogate_title_is_one_line_in_every_command(tmp_path, command):
    (tmp_path / "spec.json").write_text(SURROGATE_TITLE)
    assert_refused(tmp_path, command, "title:")
