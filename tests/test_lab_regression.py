"""The lab's linear regression, written as the lab writes it: Steps 1-3, Equations (1) and (2), the update rule."""

from symbp.checks.verify import verify
from symbp.derivation.backprop import Derivation, derive, net_of
from symbp.derivation.regression import is_regression
from symbp.render.latex.document import derivation_context, derivation_document
from symbp.spec.schema import load_spec


def test_the_lab_derives_linear_regression_in_its_own_steps():
    source = derivation_document("linear_regression", "lab")
    body = source.split(r"\begin{document}", 1)[1]
    for words in (r"\textbf{Step 1.}", r"\textbf{Step 2.}", r"\textbf{Step 3.}", r"\tag{1}", r"\tag{2}"):
        assert words in body
    assert r"\hat{y}(x_{i}; \boldsymbol{\theta}^{(t)}) &= w^{(t)}\,x_{i} + b^{(t)}" in body
    assert r"\boxed{\frac{2}{N} \sum_{i=1}^{N} \left(\hat{y}(x_{i}; \boldsymbol{\theta}^{(t)}) - y_{i}\right)}" in body
    assert r"w^{(t+1)} &= w^{(t)} - \rate\," in body
    # Not a network of one unit with an error term.
    assert r"\err" not in body and "w^{(1)}_{1,1}" not in body


def test_every_line_is_checked_against_the_module():
    derivation = derive("linear_regression")
    regression = derivation.section("regression")
    report = verify(Derivation(derivation.spec, derivation.conventions, (regression,)))
    assert report.passed and report.checked >= 20


def test_other_notations_and_other_specs_are_unchanged():
    kinds = [section.kind for section in derivation_context("linear_regression", "slides")["sections"]]
    assert "regression" not in kinds and "output" in kinds
    assert not is_regression(net_of(load_spec("actuarial")))
    wider = {"name": "two_inputs", "inputs": 2, "layers": [{"units": 1, "activation": "linear"}]}
    assert not is_regression(net_of(load_spec(wider)))
    assert derive(wider).section("regression") is None
