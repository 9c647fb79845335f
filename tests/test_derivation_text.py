"""What the reader sees in a derivation: no tautology, no clutter, no glyph TeX lacks, simplified gradients."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from symbp.render.latex.document import derivation_document, tex_number
from symbp.render.latex.tex import compile_pdf, tex_available
from symbp.render.latex.texchars import TYPESETTABLE, check_typesettable

ROOT = Path(__file__).resolve().parent.parent


def _spec(layers, loss, **extra):
    return {"name": "net", "inputs": 2, "layers": layers, "loss": {"name": loss}, **extra}


SOFTMAX = _spec([{"units": 3, "activation": "tanh"}, {"units": 3, "activation": "softmax"}], "cross_entropy")
BCE = _spec([{"units": 2, "activation": "leaky_relu"}, {"units": 1, "activation": "sigmoid"}],
            "binary_cross_entropy")


def _explicit_lines(text):
    section = text.split(r"\section{The gradient of every weight}")[1].split(r"\section")[0]
    return [line for line in section.splitlines() if line.lstrip().startswith(r"\frac{\partial")]


def test_softmax_indicator_is_an_iverson_bracket_that_the_text_explains():
    text = derivation_document(SOFTMAX)
    assert r"\mathbb{1}" not in text
    assert r"\left[j' = j\right]" in text
    assert "Iverson" in text


def test_softmax_gradients_use_that_one_hot_targets_sum_to_one():
    text = derivation_document(SOFTMAX)
    lines = _explicit_lines(text)
    output_bias = [line for line in lines if r"\partial b^{(2)}_{1}}" in line]
    assert output_bias and "s_{1}" in output_bias[0]
    assert re.search(r"s_\{1\} &\\coloneqq a\^\{\(2\)\}_\{1\} - y_\{1\}", text)
    assert r"\sum_{j} y_{j} = 1" in text  # the text says where the fact is used
    assert "1 - y_{1} - y_{2}" not in text


def test_binary_cross_entropy_gradient_reads_a_minus_y():
    text = derivation_document(BCE)
    assert re.search(r"s &\\coloneqq a\^\{\(2\)\}_\{1\} - y_\{1\}", text), _explicit_lines(text)[:3]
    assert r"\left(1 - y_{1}\right)\,a^{(2)}_{1}" not in text


def test_no_tautological_definition_of_a_function_sympy_knows():
    text = derivation_document(SOFTMAX)
    assert not re.search(r"\\tanh\\left\(z\\right\) &= \\tanh", text)
    assert r"\tanh'\left(z\right)" in text


def test_derivative_of_abs_is_written_as_a_textbook_does():
    softsign = {"expr": "z / (1 + abs(z))", "name": "softsign"}
    spec = _spec([{"units": 2, "activation": softsign}, {"units": 1, "activation": "linear"}], "squared_error")
    text = derivation_document(spec)
    assert "Abs" not in text


def test_a_layer_without_bias_says_none():
    spec = _spec([{"units": 2, "activation": "sigmoid", "bias": False}, {"units": 1, "activation": "linear"}],
                 "squared_error")
    text = derivation_document(spec)
    assert "$---$" not in text
    assert r"\textit{none}" in text


def test_settings_are_numbers_not_computer_notation():
    assert tex_number(1e-7) == "10^{-7}"
    assert tex_number(2.5e-8) == r"2.5 \cdot 10^{-8}"
    assert tex_number(0.001) == "0.001"
    assert tex_number(0.9) == "0.9"
    spec = dict(SOFTMAX, training={"optimizer": "adam", "learning_rate": 0.01})
    text = derivation_document(spec)
    assert "e-07" not in text and "1e-" not in text
    assert r"\epsilon = 10^{-" in text
    # The square of the gradient, bracketed, not a derivative of a square.
    assert r"{\partial \theta}\right)^{2}" in text
    # The optimizer's state carries its step: m^{(t+1)} = ... m^{(t)}, never m = m + ...
    assert "m &= m +" not in text and "m^{(t+1)}" in text


def test_one_sample_batches_are_singular():
    spec = dict(BCE, training={"optimizer": "sgd", "learning_rate": 0.1, "batch_size": 1})
    text = derivation_document(spec)
    assert "1 samples" not in text
    assert "one sample here" in text


def test_lesson_title_quotes_open_and_close():
    text = derivation_document("house_prices", "lesson")
    assert "``Neural networks I''" in text
    assert "'Neural networks I'" not in text


def test_shared_factor_sentence_only_when_there_are_shared_factors():
    spec = _spec([{"units": 1, "activation": "linear"}], "squared_error")
    spec["inputs"] = 1
    text = derivation_document(spec)
    shared = "finds the factors that the gradients share:"
    if shared in text:
        after = text.split(shared)[1].lstrip()
        assert after.startswith(r"\begin{align*}")


@pytest.mark.parametrize("title", ["反向传播", "Backprop 🚀", "Ἀριστοτέλης", "þorn"])
def test_titles_tex_cannot_typeset_are_refused_before_writing(tmp_path, title):
    spec = tmp_path / "net.json"
    import json

    spec.write_text(json.dumps(dict(BCE, title=title)), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "symbp", "derive", str(spec)], capture_output=True, text=True,
                            cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("symbp: error: title: contains ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == ["net.json"]


def test_accented_titles_are_accepted():
    check_typesettable("Réseaux de neurones — Übung, Łódź", "title")
    text = derivation_document(dict(BCE, title="Réseaux de neurones — Übung"))
    assert "Réseaux" in text


@pytest.mark.skipif(not tex_available(), reason="pdflatex is not installed here")
def test_every_character_allowed_in_a_title_compiles():
    title = "".join(sorted(char for char in TYPESETTABLE if char.isprintable() and char != "\\"))
    for start in range(0, len(title), 200):
        spec = _spec([{"units": 1, "activation": "linear"}], "squared_error", title=title[start:start + 200].strip())
        assert compile_pdf(derivation_document(spec), "title")
