"""LaTeX derivations: the printer in each notation, and every displayed formula checked on numbers."""

import re

import pytest
import sympy as sp
from bundled import derivable_spec_paths

from symbp.checks.verify import Oracle, verify
from symbp.derivation.backprop import derive
from symbp.derivation.explicit import EXPLICIT_OPERATION_LIMIT, EXPLICIT_PARAMETER_LIMIT, _expanded_loss
from symbp.derivation.indexform import net_of
from symbp.derivation.model import Conventions, Step
from symbp.derivation.steps import present
from symbp.render.latex.document import Writer, conventions_of, derivation_document, notation_for
from symbp.render.latex.notation import NOTATION_NAMES, NotationError, Shape, notation_named
from symbp.render.latex.printer import latex_of
from symbp.spec.schema import load_spec
from symbp.symbolic import quantities as q

HOUSE = Shape((2, 5, 1), (True, True), ("sigmoid", "sigmoid"))
PREV, CUR = q.unit_index(1, "prev"), q.unit_index(2, "cur")


def printed(expr, name, shape=HOUSE):
    return latex_of(expr, notation_named(name).for_network(shape))


# --------------------------------------------------------------------------- the printer, exactly


@pytest.mark.parametrize(("name", "expected"), [
    ("lab", r"w^{(2)}_{i,j}"),
    ("article", r"W^{(3)}_{jk}"),
    ("slides", r"w^{2}_{jk}"),
    ("fausett", r"w_{jk}"),
    ("lesson", r"w_{15 + j + k}"),
])
def test_weight_of_the_output_layer(name, expected):
    assert printed(q.weight(2)[PREV, CUR], name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("lab", r"b^{(1)}_{2}"),
    ("article", r"b^{(2)}_{2}"),
    ("slides", r"b^{1}_{2}"),
    ("fausett", r"v_{02}"),
    ("lesson", r"w_{2}"),
])
def test_a_hidden_bias(name, expected):
    assert printed(q.bias(1)[2], name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("lab", r"z^{(2)}_{j} = \sum_{i=1}^{5} w^{(2)}_{i,j} a^{(1)}_{i} + b^{(2)}_{j}"),
    ("slides", r"z^{2}_{j} = \sum_{k=1}^{5} w^{2}_{jk} a^{1}_{k} + b^{2}_{j}"),
    ("fausett", r"y\_in_{k} = w_{0k} + \sum_{j=1}^{5} z_{j} w_{jk}"),
    ("lesson", r"\alpha_{Ok} = w_{15 + k} + \sum_{j=1}^{5} \beta_{Hj} w_{15 + j + k}"),
])
def test_pre_activation_of_the_output_layer(name, expected):
    k, j = q.unit_index(2, "cur"), q.unit_index(1, "prev")
    total = sp.Sum(q.weight(2)[j, k] * q.act(1)[j], (j, 1, 5)) + q.bias(2)[k]
    assert printed(sp.Eq(q.pre(2)[k], total, evaluate=False), name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("lab", r"\frac{\partial \ell}{\partial w^{(2)}_{i,j}}"),
    ("article", r"\frac{\partial E}{\partial W^{(3)}_{jk}}"),
    ("slides", r"\frac{\partial C_{x}}{\partial w^{2}_{jk}}"),
    ("fausett", r"\frac{\partial E}{\partial w_{jk}}"),
    ("lesson", r"\frac{\partial E}{\partial w_{15 + j + k}}"),
])
def test_leibniz_quotient(name, expected):
    assert printed(q.Partial(q.SAMPLE_LOSS, q.weight(2)[PREV, CUR]), name) == expected


@pytest.mark.parametrize(("name", "expected"), [
    ("lab", r"S'\left(z^{(2)}_{j}\right)"),
    ("article", r"\sigma'\left(z^{(3)}_{j}\right)"),
    ("fausett", r"f'\left(y\_in_{k}\right)"),
    ("lesson", r"f'\left(\alpha_{Ok}\right)"),
])
def test_derivative_of_the_activation(name, expected):
    sigmoid = q.activation_function("sigmoid")
    z = q.pre(2)[CUR]
    assert printed(sp.Derivative(sigmoid(z), z), name) == expected


def test_updates_in_each_texts_style():
    update = sp.Eq(q.Updated(q.weight(2)[PREV, CUR]), q.Current(q.weight(2)[PREV, CUR]), evaluate=False)
    assert printed(update, "lab") == r"w^{(t+1, 2)}_{i,j} = w^{(t, 2)}_{i,j}"
    assert printed(update, "fausett") == r"w_{jk}(\text{new}) = w_{jk}(\text{old})"
    assert printed(update, "lesson") == r"w_{15 + j + k}^{(t+1)} = w_{15 + j + k}^{(t)}"
    assert printed(q.LEARNING_RATE, "fausett") == r"\alpha"


def test_products_read_as_people_write_them():
    a, y = q.act(2)[CUR], q.targets()[CUR]
    delta = present(-2 * (a - 1) * (a - y) * a)  # as symbp.registry.calculus finds it
    assert printed(delta, "lab") == r"2 \left(a^{(2)}_{j} - y_{j}\right) a^{(2)}_{j} \left(1 - a^{(2)}_{j}\right)"
    assert printed(sp.Rational(1, 2) * (a - y) ** 2, "lab") == r"\frac{1}{2} \left(a^{(2)}_{j} - y_{j}\right)^{2}"


def test_matrix_form_uses_transpose_and_hadamard():
    A = q.matrix("act", 1, q.N_SAMPLES, 5)
    D = q.matrix("delta", 2, q.N_SAMPLES, 1)
    W = q.matrix("weight", 2, 5, 1)
    assert printed(A.T * D, "lab") == r"\left(\mathbf{A}^{(1)}\right)^{\top} \boldsymbol{\Delta}^{(2)}"
    assert printed(sp.HadamardProduct(D * W.T, A), "lab") == \
        r"\left(\boldsymbol{\Delta}^{(2)} \left(\mathbf{W}^{(2)}\right)^{\top}\right) \odot \mathbf{A}^{(1)}"


def test_unknown_notation_names_a_close_one():
    with pytest.raises(NotationError, match="did you mean 'slides'"):
        notation_named("slide")
    with pytest.raises(NotationError, match="choose one of lab, article"):
        notation_named("xyz")


# --------------------------------------------------------------------------- every formula, on numbers

# Each bundled example in the notation of the text it comes from (or the spec's own).
SOURCE_NOTATION = {"house_prices": "lesson", "fausett": "fausett", "parity": "article", "mnist": "article",
                   "xor": "slides", "iris": "slides"}


def _bundled():
    return [load_spec(path) for path in derivable_spec_paths()]


@pytest.mark.parametrize("spec", _bundled(), ids=lambda spec: spec.name)
def test_every_formula_of_every_bundled_example_matches_the_module(spec):
    notation = notation_for(spec, spec.notation or SOURCE_NOTATION.get(spec.name))
    derivation = derive(spec, Conventions(notation.error_sign, notation.column_vectors))
    report = verify(derivation)
    assert report.passed, "\n".join(map(str, report.mismatches[:10]))
    # Every chain was evaluated, several times over.
    assert report.checked > 3 * sum(len(chain.steps) for chain in derivation.chains()) // 2


@pytest.mark.parametrize("name", NOTATION_NAMES)
def test_every_notation_on_the_house_price_network(name):
    notation = notation_for(load_spec("house_prices"), name)
    report = verify(derive("house_prices", Conventions(notation.error_sign, notation.column_vectors)))
    assert report.passed, "\n".join(map(str, report.mismatches[:10]))


CATALOGUE_SAMPLE = [
    "out-cross_entropy-softmax-bias", "out-binary_cross_entropy-sigmoid-nobias", "out-squared_error-relu-bias",
    "out-squared_error-softmax-nobias", "hidden-leaky_relu-bias", "hidden-softplus-nobias",
    "custom-output-swish", "custom-loss-huber", "wide-no-expansion",
]


@pytest.mark.parametrize("key", CATALOGUE_SAMPLE)
def test_catalogue_networks_in_alternating_notations(key, request):
    from conftest import CATALOGUE

    if key not in CATALOGUE:
        pytest.skip(f"the catalogue no longer has {key}")
    name = NOTATION_NAMES[CATALOGUE_SAMPLE.index(key) % len(NOTATION_NAMES)]
    notation = notation_for(load_spec(CATALOGUE[key]), name)
    report = verify(derive(CATALOGUE[key], Conventions(notation.error_sign, notation.column_vectors)))
    assert report.passed, "\n".join(map(str, report.mismatches[:10]))


def test_two_hidden_layers_recurse_through_each_other():
    spec = {"name": "deep", "inputs": 2, "layers": [{"units": 2, "activation": "tanh"},
                                                    {"units": 3, "activation": "sigmoid", "bias": False},
                                                    {"units": 1, "activation": "linear"}]}
    for name in ("lab", "fausett", "lesson"):
        notation = notation_for(load_spec(spec), name)
        derivation = derive(spec, Conventions(notation.error_sign, notation.column_vectors))
        assert [section.layer for section in derivation.sections if section.kind == "hidden"] == [2, 1]
        report = verify(derivation)
        assert report.passed, "\n".join(map(str, report.mismatches[:10]))


def test_the_checker_catches_a_wrong_step():
    derivation = derive("xor")
    output = derivation.section("output")
    chains = list(output.chains)
    position = next(n for n, chain in enumerate(chains) if chain.key.endswith(".delta"))
    wrong = chains[position]
    # The slides' slip: (y - a) where (a - y) belongs.
    flipped = Step(-wrong.steps[-1].expr, wrong.steps[-1].reasons)
    chains[position] = type(wrong)(wrong.key, wrong.lhs, (*wrong.steps[:-1], flipped), wrong.scope,
                                   wrong.relation, wrong.boxed)
    sections = tuple(type(output)(output.kind, tuple(chains), output.layer, output.facts) if section is output
                     else section for section in derivation.sections)
    report = verify(type(derivation)(derivation.spec, derivation.conventions, sections), Oracle(derivation.spec))
    assert not report.passed
    assert {mismatch.chain for mismatch in report.mismatches} == {wrong.key}


# --------------------------------------------------------------------------- what the documents say


def test_the_output_error_term_has_the_right_sign_in_each_text():
    """The slides print delta^L_j = (y_j - a^L_j) sigma'; symbp writes the correct (a - y)."""
    slides = derivation_document("xor", "slides")
    assert r"\left(a^{2}_{j} - y_{j}\right)\,a^{2}_{j}\,\left(1 - a^{2}_{j}\right)" in slides
    fausett = derivation_document("fausett", "fausett")
    # Fausett's delta_k is the negative gradient: (t_k - y_k) f'(y_in_k), and w(new) = w(old) + alpha ...
    assert r"\left(t_{k} - y_{k}\right)\,y_{k}\,\left(1 - y_{k}\right)" in fausett
    assert r"w_{jk}(\text{new})" in fausett and r"+ \rate" in fausett and r"\newcommand{\rate}{\alpha}" in fausett


def test_sigmoid_derivative_is_derived_from_sympys_steps():
    derivation = derive("house_prices")
    chain = derivation.section("activations").chain("activation.sigmoid.derivative")
    kinds = [reason.kind for step in chain.steps for reason in step.reasons]
    assert "chain_rule" in kinds and "in_terms_of_output" in kinds
    a = q.activation_function("sigmoid")(q.VARIABLE)
    assert chain.result == a * (1 - a)


def test_house_prices_lists_every_weight_as_the_lesson_does():
    spec = load_spec("house_prices")
    assert spec.parameter_count <= EXPLICIT_PARAMETER_LIMIT
    derivation = derive(spec)
    explicit = derivation.section("explicit")
    gradients = [chain for chain in explicit.chains if isinstance(chain.lhs, q.Partial)]
    assert len(gradients) == 21
    writer = Writer(notation_for(spec, "lesson"))
    first = writer.block(gradients[0])
    assert first.lines[0].lhs == r"\frac{\partial E}{\partial w_{1}}"
    assert first.lines[0].rhs == r"s\,w_{17}\,\beta_{H1}\,\left(1 - \beta_{H1}\right)"
    assert first.lines[1].rhs == r"\delta_{H1}"
    (shared,) = explicit.facts["shared"].items()
    assert writer.math(shared[1]) == r"\left(\beta_{O1} - y\right)\,\beta_{O1}\,\left(1 - \beta_{O1}\right)"


def test_explicit_gradients_are_checked_against_the_delta_rule(monkeypatch):
    import symbp.derivation.explicit as explicit

    real = explicit.error_terms

    def off_by_a_factor(net, sign):
        return {key: 2 * value for key, value in real(net, sign).items()}

    monkeypatch.setattr(explicit, "error_terms", off_by_a_factor)
    with pytest.raises(ArithmeticError, match="does not match the delta rule"):
        explicit.explicit_section(net_of(load_spec("xor")), 1)


def test_large_networks_skip_the_explicit_list():
    derivation = derive("mnist")
    assert derivation.section("explicit") is None
    assert derivation.section("matrix") is not None


def test_a_small_network_whose_written_out_loss_is_too_long_skips_the_explicit_list():
    """56 parameters, but without biases every weight's gradient is a sum over every path: the loss written out
    has about 5,000 operations, and the list would take SymPy minutes and fill pages."""
    layers = [{"units": units, "activation": activation, "bias": False}
              for units, activation in zip((4, 4, 4, 3), ("tanh", "sigmoid", "softplus", "softmax"))]
    spec = load_spec({"name": "paths", "inputs": 3, "layers": layers, "loss": {"name": "cross_entropy"}})
    assert spec.parameter_count <= EXPLICIT_PARAMETER_LIMIT
    assert sp.count_ops(_expanded_loss(net_of(spec))[0]) > EXPLICIT_OPERATION_LIMIT
    derivation = derive(spec)
    assert derivation.section("explicit") is None
    assert derivation.section("matrix") is not None
    assert derive("house_prices").section("explicit") is not None


def test_document_prints_only_chains_of_the_derivation():
    """Every displayed line of the document is a step of a chain of the derivation (which verify() evaluates,
    or, for the general equations, evaluates through their specialisations)."""
    spec = load_spec("house_prices")
    notation = notation_for(spec, "lesson")
    writer = Writer(notation.with_macros())
    steps = {line.rhs.removeprefix(r"\boxed{").removesuffix("}")
             for chain in derive(spec, conventions_of(notation)).chains() for line in writer.block(chain).lines}
    document = derivation_document(spec, "lesson").split(r"\begin{document}", 1)[1]
    # A step's right side ends the row, or comes before its justification (beside it, or set under it).
    displayed = re.findall(r"&(?:=|\\coloneqq|\\leftarrow) (.*?)(?: &&.*| &\\qquad.*| \\\\ &\\qquad \\why.*| \\\\)?$",
                           document,
                           flags=re.M)
    assert len(displayed) > 50
    for rhs in displayed:
        assert rhs.strip().removeprefix(r"\boxed{").removesuffix("}") in steps, rhs


def test_spec_names_its_default_notation(tmp_path):
    spec = load_spec({"name": "net", "inputs": 2, "layers": [{"units": 2, "activation": "sigmoid"}],
                      "notation": "fausett"})
    assert notation_for(spec).name == "fausett"
    assert notation_for(spec, "lab").name == "lab"
    from symbp.errors import SpecError

    with pytest.raises(SpecError, match="did you mean 'fausett'"):
        load_spec({"name": "net", "inputs": 2, "layers": [{"units": 2, "activation": "sigmoid"}],
                   "notation": "fausset"})
