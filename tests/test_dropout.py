"""Dropout, Z = (A o M) W + 1 b with an inverted-dropout mask M on a layer's inputs: the spec's rate refused
in one line when malformed, the mask's semantics (PyTorch's), evaluation mode equal to the plain network, the
gradient with a fixed mask against central differences and SymPy's expanded loss, seeded training, the
backends that refuse it, and the derivation and worksheet showing the mask, checked and typeset."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import sympy as sp
from typesetting_catalogue import CATALOGUE, NOTATIONS, inspect_tex

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.checks.oracle import WholeLossOracle
from symbp.checks.verify import verify
from symbp.cli.main import main
from symbp.derivation.backprop import derive
from symbp.errors import SymbpError
from symbp.render.code.numpy_module import generate_module
from symbp.render.latex.document import derivation_document
from symbp.render.latex.worksheet_document import worksheet_document
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q
from symbp.symbolic.network import network_of
from symbp.worksheet.exercises import build_worksheet


def _spec_dict(first: float = 0.25, second: float = 0.5) -> dict:
    return {
        "name": "dropped",
        "inputs": 3,
        "layers": [{"units": 4, "activation": "tanh", "dropout": first},
                   {"units": 2, "activation": "sigmoid", "dropout": second}],
        "loss": {"name": "squared_error", "scale": 0.5},
        "training": {"optimizer": "sgd", "batch_size": 4, "learning_rate": 0.3, "epochs": 30, "seed": 5},
    }


def _without_dropout(spec_dict: dict) -> dict:
    layers = [{key: value for key, value in layer.items() if key != "dropout"} for layer in spec_dict["layers"]]
    return {**spec_dict, "name": "plain", "layers": layers}


@pytest.fixture(scope="module")
def spec():
    return load_spec(_spec_dict())


@pytest.fixture(scope="module")
def module(spec):
    return load_module_from_source(generate_module(spec), spec.name)


@pytest.fixture(scope="module")
def plain():
    spec = load_spec(_without_dropout(_spec_dict()))
    return load_module_from_source(generate_module(spec), spec.name)


def _problem(module, seed=1, samples=6):
    rng = np.random.default_rng(seed)
    params = {name: rng.normal(size=value.shape) for name, value in module.init_params(0).items()}
    return params, rng.normal(size=(samples, module.INPUTS)), rng.uniform(0.1, 0.9, size=(samples, module.OUTPUTS)), rng


# -- the spec

@pytest.mark.parametrize("rate", [1, 1.0, 1.5, -0.1, "0.5", "half", True, [0.5], float("nan"), 10**400])
def test_a_malformed_rate_is_refused_in_one_line_naming_the_field(rate):
    layers = _spec_dict()["layers"]
    with pytest.raises(SymbpError) as caught:
        load_spec({**_spec_dict(), "layers": [{**layers[0], "dropout": rate}, layers[1]]})
    message = str(caught.value)
    assert message.startswith("layers[0].dropout:") and "\n" not in message
    assert "from 0 up to (not including) 1" in message or "without" in message  # what to write instead


@pytest.mark.parametrize(("rate", "shown"), [(1, "got 1;"), (1.5, "got 1.5;"), (-0.1, "got -0.1;"), (2, "got 2;")])
def test_a_rate_out_of_range_is_shown_as_written(rate, shown):
    layers = _spec_dict()["layers"]
    with pytest.raises(SymbpError, match=shown):
        load_spec({**_spec_dict(), "layers": [{**layers[0], "dropout": rate}, layers[1]]})


def test_dropout_with_residual_is_refused_in_one_line():
    with pytest.raises(SymbpError) as caught:
        load_spec({"name": "both", "inputs": 2, "layers": [
            {"units": 2, "activation": "tanh", "residual": True, "dropout": 0.5},
            {"units": 1, "activation": "linear"}]})
    message = str(caught.value)
    assert message.startswith("layers[0].dropout:") and "remove dropout or residual" in message
    assert "\n" not in message


@pytest.mark.parametrize("rate", ["1", "-0.5", "true", '"0.2"'])
def test_the_command_line_refuses_it_with_exit_2_and_writes_nothing(tmp_path, capsys, rate):
    text = _spec_dict()
    (tmp_path / "net.toml").write_text(
        f'name = "bad"\ninputs = 2\n[[layers]]\nunits = 2\nactivation = "tanh"\ndropout = {rate}\n', encoding="utf-8")
    (tmp_path / "net.json").write_text(json.dumps(text), encoding="utf-8")
    target = tmp_path / "net.py"
    assert main(["generate", str(tmp_path / "net.toml"), "-o", str(target)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("symbp: error: layers[0].dropout:")
    assert not target.exists()


def test_a_rate_of_zero_leaves_a_dense_layer_and_the_canonical_spec_unchanged():
    zero = load_spec(_spec_dict(first=0.0, second=0))
    plain = load_spec(_without_dropout(_spec_dict()))
    assert [layer.kind for layer in zero.layers] == ["dense", "dense"]
    assert zero.canonical()["layers"] == plain.canonical()["layers"]
    assert [layer.kind for layer in load_spec(_spec_dict()).layers] == ["dropout", "dropout"]
    assert load_spec(_spec_dict()).canonical()["layers"][0]["dropout"] == 0.25


# -- the symbolic layer

def test_sympy_derives_the_masked_pullbacks(spec):
    layer = network_of(spec).layer(2)
    assert layer.kind == "dropout" and layer.mask.name == "M2"
    assert layer.mask not in [p.symbol for p in layer.parameters]  # an input, not a parameter
    two = {sp.Symbol("N", integer=True, positive=True): 2}
    inputs = sp.Matrix([[1, -2, 3, 0], [2, 1, -1, 4]])
    mask = sp.Matrix([[2, 0, 2, 2], [0, 2, 2, 0]])
    weights = sp.Matrix([[1, 2], [0, 1], [5, 0], [-1, 3]])
    delta = sp.Matrix([[1, 0], [3, -1]])
    point = {sp.MatrixSymbol("A1", 2, 4): inputs, sp.MatrixSymbol("M2", 2, 4): mask,
             sp.MatrixSymbol("W2", 4, 2): weights, sp.MatrixSymbol("delta2", 2, 2): delta}

    def value(expr):
        return sp.Matrix(expr.subs(two).subs(point).doit())

    dropped = inputs.multiply_elementwise(mask)
    assert value(layer.gradient(layer.parameters[0])) == dropped.T * delta
    assert value(layer.input_gradient) == (delta * weights.T).multiply_elementwise(mask)


# -- the generated module

def test_masks_are_inverted_dropout_as_pytorch_draws_them(module):
    torch = pytest.importorskip("torch")
    masks = module.draw_masks(np.random.default_rng(0), 20_000)
    assert module.DROPOUT == {"M1": 0.25, "M2": 0.5} and module.MASK_WIDTHS == {"M1": 3, "M2": 4}
    for name, rate in module.DROPOUT.items():
        mask = masks[name]
        assert mask.shape == (20_000, module.MASK_WIDTHS[name])
        assert set(np.unique(mask)) == {0.0, 1 / (1 - rate)}
        assert abs(np.mean(mask == 0) - rate) < 0.01
        assert abs(mask.mean() - 1) < 0.02  # an input's expected value is kept
        # PyTorch's dropout on ones gives the same two values: its mask.
        theirs = torch.nn.functional.dropout(torch.ones(2000, 3, dtype=torch.float64), p=rate, training=True)
        assert set(np.unique(theirs.numpy())) == {0.0, 1 / (1 - rate)}
    again = module.draw_masks(np.random.default_rng(0), 20_000)
    assert all(np.array_equal(masks[name], again[name]) for name in masks)
    assert module.draw_masks(np.random.default_rng(0), 3, np.float32)["M1"].dtype == np.float32


def test_the_masked_forward_pass_multiplies_each_layers_inputs(module):
    params, X, Y, rng = _problem(module)
    masks = module.draw_masks(rng, X.shape[0])
    hidden = np.tanh((X * masks["M1"]) @ params["W1"] + params["b1"])
    output = 1 / (1 + np.exp(-((hidden * masks["M2"]) @ params["W2"] + params["b2"])))
    expected = 0.5 * np.sum((output - Y) ** 2) / X.shape[0]
    assert module.loss_and_grad(params, X, Y, masks)[0] == pytest.approx(expected, rel=1e-13)
    assert module.loss(params, X, Y, masks) == pytest.approx(expected, rel=1e-13)
    assert module.loss(params, X, Y) != pytest.approx(expected, rel=1e-6)


def test_evaluation_mode_is_the_plain_network(module, plain):
    params, X, Y, _ = _problem(module, samples=50)
    np.testing.assert_array_equal(module.forward(params, X), plain.forward(params, X))
    np.testing.assert_array_equal(module.predict(params, X), plain.predict(params, X))
    assert module.loss(params, X, Y) == plain.loss(params, X, Y)
    value, grads = module.loss_and_grad(params, X, Y)
    plain_value, plain_grads = plain.loss_and_grad(params, X, Y)
    assert value == pytest.approx(plain_value, rel=1e-15)
    for name in grads:
        np.testing.assert_allclose(grads[name], plain_grads[name], rtol=1e-14, atol=1e-15)
    # Masks of ones are evaluation mode too; a large set's in-place loss agrees as well.
    ones = {name: np.ones((X.shape[0], width)) for name, width in module.MASK_WIDTHS.items()}
    assert module.loss_and_grad(params, X, Y, ones)[0] == pytest.approx(value, rel=1e-15)
    big_X = np.random.default_rng(3).normal(size=(3000, 3))
    big_Y = np.random.default_rng(4).uniform(size=(3000, 2))
    assert module.loss(params, big_X, big_Y) == pytest.approx(plain.loss(params, big_X, big_Y), rel=1e-13)


def test_malformed_masks_are_refused(module):
    params, X, Y, rng = _problem(module)
    masks = module.draw_masks(rng, X.shape[0])
    with pytest.raises(ValueError, match="masks: expected exactly M1, M2"):
        module.loss_and_grad(params, X, Y, {"M1": masks["M1"]})
    with pytest.raises(ValueError, match=r"masks\['M2'\]: expected shape \(6, 4\)"):
        module.loss_and_grad(params, X, Y, {**masks, "M2": masks["M2"][:3]})


def test_the_gradient_with_a_fixed_mask_agrees_with_central_differences_and_sympys_expanded_loss(spec):
    report = check_gradients(spec, expanded=True)
    assert report.passed, report.table()
    assert all(p.expanded_error is not None and p.expanded_error < 1e-10 for p in report.parameters)
    assert "held fixed" in report.table() and report.masks_note


def test_the_expanded_oracle_sees_the_mask(spec, module):
    # The same point in evaluation mode and with a mask gives different gradients: the oracle is not blind to it.
    params, X, Y, rng = _problem(module)
    masks = module.draw_masks(rng, X.shape[0])
    with_mask = WholeLossOracle(spec, params, X, Y, masks).gradient(X.shape[0])
    without = WholeLossOracle(spec, params, X, Y).gradient(X.shape[0])
    module_grads = module.loss_and_grad(params, X, Y, masks)[1]
    plain_grads = module.loss_and_grad(params, X, Y)[1]
    for name in module_grads:
        np.testing.assert_allclose(with_mask[name], module_grads[name], rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(without[name], plain_grads[name], rtol=1e-10, atol=1e-13)
    assert not np.allclose(with_mask["W1"], without["W1"])


def test_training_is_reproducible_with_a_seed_and_predicts_without_masks(module):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    Y = 1 / (1 + np.exp(-np.stack([X[:, 0] - X[:, 1], X[:, 2]], axis=1)))
    start = module.init_params(1)
    first, history = module.train(start, X, Y, seed=7)
    again, _ = module.train(start, X, Y, seed=7)
    other, _ = module.train(start, X, Y, seed=8)
    assert all(np.array_equal(first[name], again[name]) for name in first)
    assert not all(np.array_equal(first[name], other[name]) for name in first)
    # The masks change the steps, not the shuffling: the seed's batches are those of the plain network.
    assert history["loss"][-1] == pytest.approx(module.loss(first, X, Y), rel=1e-12)
    assert history["loss"][-1] < 0.7 * module.loss(start, X, Y)
    # Full-batch training reports evaluation-mode losses too (each is loss() at that epoch's parameters).
    seen = []
    module.train(start, X, Y, batch_size=None, epochs=3, seed=2,
                 callback=lambda epoch, logs, params: seen.append((logs["loss"], module.loss(params, X, Y))))
    assert all(logged == pytest.approx(measured, rel=1e-12) for logged, measured in seen)


def test_a_training_step_uses_fresh_masks(module):
    params, X, Y, _ = _problem(module)
    step = module._trainable(3).loss_and_grad
    first, second = step(params, X, Y)[1], step(params, X, Y)[1]
    assert not np.allclose(first["W1"], second["W1"])
    # Each is the gradient of one draw of the masks from the seeded generator.
    generator = module.mask_generator(3)
    expected = module.loss_and_grad(params, X, Y, module.draw_masks(generator, X.shape[0]))[1]
    np.testing.assert_allclose(first["W1"], expected["W1"], rtol=1e-14)


def test_symbp_train_trains_with_dropout_reproducibly(tmp_path, capsys):
    spec_path = tmp_path / "dropped.json"
    data = np.random.default_rng(0).normal(size=(40, 5))
    data[:, 3:] = 1 / (1 + np.exp(-data[:, :2]))
    np.savetxt(tmp_path / "data.csv", data, delimiter=",")
    spec_path.write_text(json.dumps(_spec_dict()), encoding="utf-8")
    runs = []
    for name in ("a.npz", "b.npz"):
        assert main(["train", str(spec_path), "--data", str(tmp_path / "data.csv"), "--epochs", "5", "--quiet",
                     "-o", str(tmp_path / name)]) == 0
        runs.append(np.load(tmp_path / name))
    assert all(np.array_equal(runs[0][key], runs[1][key]) for key in runs[0].files)


def test_symbp_check_reports_the_fixed_mask(tmp_path, capsys):
    spec_path = tmp_path / "dropped.json"
    spec_path.write_text(json.dumps(_spec_dict()), encoding="utf-8")
    assert main(["check", str(spec_path)]) == 0
    out = capsys.readouterr().out
    assert "held fixed" in out and "PASS" in out


# -- the derivation and the worksheet

def test_the_derivation_shows_the_mask_and_checks_out_on_numbers(spec):
    derivation = derive(spec)
    text = derivation_document(spec, "lab")
    assert r"m^{(1)}_{i}" in text and r"\mathbf{M}^{(2)}" in text
    # The forward step multiplies each input by its mask entry; the weight's gradient and the error term sent
    # down carry it.
    hidden = derivation.section("hidden", 1)
    j, k = q.unit_index(1, "cur"), q.unit_index(2, "next")
    assert hidden.chain("layer1.dz_da").result == q.weight(2)[j, k] * q.mask(2)[j]
    report = verify(derivation)
    assert report.passed and report.checked > 100, report.mismatches[:3]


@pytest.mark.parametrize("notation", NOTATIONS)
def test_the_derivation_and_worksheet_build_in_every_notation(spec, notation):
    assert "m" in derivation_document(spec, notation)
    sheet = worksheet_document(spec, notation, solutions=True)
    assert "dropout" in sheet and "fixed mask" in sheet


def test_the_worksheet_gives_a_fixed_mask_and_exact_answers(spec):
    sheet = build_worksheet(spec, variant=2)
    hand = sheet.hand
    assert set(hand.masks) == {"M1", "M2"}
    for name, rate in (("M1", sp.Rational(1, 4)), ("M2", sp.Rational(1, 2))):
        assert set(hand.masks[name]) <= {0, 1 / (1 - rate)} and any(hand.masks[name])
    # Some input is dropped in some variant, and the answers are exact where the numbers are rational.
    dropped = any(0 in build_worksheet(spec, variant=v).hand.masks[name] for v in range(6) for name in ("M1", "M2"))
    assert dropped
    assert all(value.is_Rational or value.is_Float for value in hand.gradients.values())
    assert build_worksheet(spec, variant=2).hand.masks == hand.masks  # a variant is always the same sheet


def test_the_catalogue_holds_a_dropout_network():
    assert any(any("dropout" in layer for layer in entry["layers"]) for entry in CATALOGUE.values())


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
@pytest.mark.parametrize("notation", NOTATIONS)
def test_the_derivation_and_worksheet_typeset_cleanly(spec, notation):
    for kind, source in (("derivation", derivation_document(spec, notation)),
                         ("worksheet", worksheet_document(spec, notation, solutions=True))):
        report = inspect_tex(source, f"dropout_{kind}_{notation}")
        assert not report.problems(), (kind, report.problems())


def test_the_html_page_shows_the_mask(spec, tmp_path):
    spec_path = tmp_path / "dropped.json"
    spec_path.write_text(json.dumps(_spec_dict()), encoding="utf-8")
    target = tmp_path / "dropped.html"
    assert main(["derive", str(spec_path), "--html", "-o", str(target)]) == 0
    page = target.read_text(encoding="utf-8")
    # Each mask entry m, and the mask matrices in bold M (U+1D40C), which a plain network's page has none of.
    assert "<msubsup><mi>m</mi>" in page and "&#x1D40C;" in page


def test_the_readmes_dropout_example_loads_and_its_gradient_checks():
    import tomllib
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Dropout", 1)[1]
    example = load_spec(tomllib.loads(section.split("```toml", 1)[1].split("```", 1)[0]))
    assert [layer.kind for layer in example.layers] == ["dense", "dropout"]
    assert check_gradients(example).passed


def test_the_grader_carries_the_sheets_mask_forward(spec):
    from symbp.classroom.answers import answers_of, given_numbers
    from symbp.classroom.grading import Sheet, agrees, grade

    for variant in range(4):
        sheet = build_worksheet(spec, variant)
        right = {answer.name: answer.value for answer in answers_of(sheet)}
        assert grade(sheet, right, "s").first is None
        # Each answer follows from the right earlier ones through the mask, as the grader recomputes it.
        model = Sheet(sheet, answers_of(sheet))
        for name, value in right.items():
            assert agrees(model.expected(name, model.true), value), (variant, name)
        assert given_numbers(sheet)[-1] == tuple((name, tuple(mask)) for name, mask in sorted(sheet.hand.masks.items()))


def test_diagnose_reads_the_network_in_evaluation_mode(module):
    params, X, Y, _ = _problem(module, samples=30)
    report = module.diagnose(params, X, Y)
    grads = module.loss_and_grad(params, X, Y)[1]
    first = report["layers"][0]["gradient_norm"]
    assert first == pytest.approx(np.sqrt(np.sum(grads["W1"] ** 2) + np.sum(grads["b1"] ** 2)), rel=1e-12)


@pytest.mark.parametrize("samples_as_columns", [True, False])
def test_the_in_place_training_step_takes_the_masks(spec, samples_as_columns):
    module = load_module_from_source(generate_module(spec, samples_as_columns), spec.name)
    params, X, Y, rng = _problem(module)
    masks = module.draw_masks(rng, X.shape[0])
    value, grads = module.loss_and_grad(params, X, Y, masks)
    work = module._workspace(X.shape[0], np.float64)
    arrange = (lambda array: np.ascontiguousarray(array.T)) if samples_as_columns else np.ascontiguousarray
    step_value, step_grads = module._loss_and_grad_into(params, arrange(X), arrange(Y), work,
                                                       {name: arrange(mask) for name, mask in masks.items()})
    assert step_value == pytest.approx(value, rel=1e-12)
    for name in grads:
        np.testing.assert_allclose(step_grads[name], grads[name], rtol=1e-10, atol=1e-14)
    # train()'s two routes draw the same masks from the same seed: a run does not depend on which one a batch takes.
    allocating = module._trainable(4).loss_and_grad(params, X, Y)
    in_place = module._trainable(4).loss_and_grad_into(params, arrange(X), arrange(Y), work)
    assert allocating[0] == pytest.approx(in_place[0], rel=1e-12) == module.loss(params, X, Y)
    for name in grads:
        np.testing.assert_allclose(in_place[1][name], allocating[1][name], rtol=1e-10, atol=1e-14)


def test_float32_training_keeps_float32_masks_and_parameters(module):
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3000, 3)), rng.uniform(size=(3000, 2))
    trained, history = module.train(module.init_params(0), X, Y, dtype=np.float32, epochs=2, batch_size=1500)
    assert all(array.dtype == np.float32 for array in trained.values())
    assert np.isfinite(history["loss"]).all()


def test_a_line_with_dropout_is_derived_with_its_mask_not_as_the_labs_regression():
    # The lab's regression section writes yhat = w x + b; with a mask the model is w m x + b, so the general
    # sections (which carry m) derive it, and the worksheet's descent exercise is the lab's plain line.
    line = load_spec({"name": "line", "inputs": 1, "layers": [{"units": 1, "activation": "linear", "dropout": 0.5}]})
    derivation = derive(line)
    assert all(section.kind != "regression" for section in derivation.sections)
    report = verify(derivation)
    assert report.passed, report.mismatches[:3]
    sheet = build_worksheet(line, variant=1)
    assert sheet.descent.spec.layers[0].kind == "dense" and set(sheet.hand.masks) == {"M1"}
    assert "m^{(1)}_{1}" in worksheet_document(line, "lab", variant=1, solutions=True)


def test_the_general_equations_carry_the_mask(spec):
    general = derive(spec).section("general")
    j, k = q.unit_index(q.LAYER, "cur"), q.unit_index(q.LAYER + 1, "next")
    i = q.unit_index(q.LAYER - 1, "prev")
    hidden = general.chain("general.hidden_delta").result
    assert hidden.has(q.mask(q.LAYER + 1)[j]) and hidden.has(q.weight(q.LAYER + 1)[j, k])
    assert general.chain("general.weight").result == q.delta(q.LAYER)[j] * q.mask(q.LAYER)[i] * q.act(q.LAYER - 1)[i]
    plain = derive(load_spec(_without_dropout(_spec_dict()))).section("general")
    assert not plain.chain("general.weight").result.has(q.mask(q.LAYER)[i])
    assert "dropout mask $m$" in derivation_document(spec, "lab")


def test_dropout_with_normalization_on_one_layer_is_refused_in_one_line():
    with pytest.raises(SymbpError) as caught:
        load_spec({"name": "both", "inputs": 2, "layers": [
            {"units": 3, "activation": "tanh", "normalization": "layer", "dropout": 0.5},
            {"units": 1, "activation": "linear"}]})
    message = str(caught.value)
    assert message.startswith("layers[0].dropout:") and "normalization" in message and "\n" not in message


def test_a_dropout_layer_after_a_normalised_one_checks_against_the_expanded_loss_and_pytorch():
    torch = pytest.importorskip("torch")
    spec = load_spec({"name": "mixed", "inputs": 2, "layers": [
        {"units": 3, "activation": "tanh", "normalization": "layer"},
        {"units": 2, "activation": "sigmoid", "dropout": 0.4}], "loss": "binary_cross_entropy"})
    # The one-parameter-at-a-time oracle (for the normalised layer) holds the masks fixed as well.
    report = check_gradients(spec, expanded=True, samples=3)
    assert report.passed and report.masks_note, report.table()
    assert all(p.expanded_error is not None for p in report.parameters)
    module = load_module_from_source(generate_module(spec), spec.name)
    params, X, Y, rng = _problem(module)
    masks = module.draw_masks(rng, X.shape[0])
    value, grads = module.loss_and_grad(params, X, Y, masks)
    tensors = {name: torch.tensor(array, requires_grad=True) for name, array in params.items()}
    u = torch.tensor(X) @ tensors["W1"]
    hidden = torch.tanh(torch.nn.functional.layer_norm(u, (3,), tensors["gamma1"], tensors["beta1"], eps=1e-5))
    logits = (hidden * torch.tensor(masks["M2"])) @ tensors["W2"] + tensors["b2"]
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(Y), reduction="sum") / len(X)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    for name, tensor in tensors.items():
        np.testing.assert_allclose(grads[name], tensor.grad.numpy(), rtol=1e-9, atol=1e-13, err_msg=name)
