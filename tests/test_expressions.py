"""Custom activations and losses: formulas become SymPy objects, and anything else is refused unrun."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

from symbp.checks.gradients import check_gradients, load_module_from_source
from symbp.cli.main import main
from symbp.errors import SpecError
from symbp.registry.rules import activation_named, custom_activation, custom_loss, loss_named, y, yhat, z
from symbp.render.code.numpy_module import generate_module
from symbp.spec.expressions import MAX_LENGTH
from symbp.spec.schema import load_spec

ROOT = Path(__file__).resolve().parent.parent

# Each would do something (import, read, write, run, loop forever, exhaust memory) if it were evaluated.
HOSTILE = [
    "__import__('os').system('touch CANARY')",
    "__import__('pathlib').Path('CANARY').touch()",
    "__builtins__",
    "__builtins__.open('CANARY', 'w')",
    "().__class__.__bases__[0].__subclasses__()",
    "x.__class__",
    "x.__dict__",
    "exp.__globals__",
    "exp.__module__",
    "(lambda: 1)()",
    "lambda x: x",
    "[c for c in ().__class__.__mro__]",
    "{k: 1 for k in 'ab'}",
    "(y := 1)",
    "f'{x}'",
    "f\"{__import__('os').system('touch CANARY')}\"",
    "eval('1')",
    "exec('import os')",
    "open('CANARY', 'w')",
    "getattr(x, 'real')",
    "globals()",
    "vars()",
    "print(x)",
    "breakpoint()",
    "compile('1', 'f', 'eval')",
    "type(x)",
    "sp.exp(x)",
    "sympy.sympify('x')",
    "numpy.exp(x)",
    "x.real",
    "exp(x).func",
    "x[0]",
    "x[::-1]",
    "'x'",
    "b'x'",
    "9**9**9",
    "2**1000",
    "x**100",
    "(x**10)**10",
    "x**(10**10)",
    "10**10**10",
    "exp(exp(exp(exp(x))))",
    "(" * 1000 + "x" + ")" * 1000,
    "(" * 240 + "x" + ")" * 240,
    "-" * 100 + "x",
    "exp(" * 40 + "x" + ")" * 40,
    "x" + "+x" * 300,
    "1" * 400 + "*x",
    "1e309*x",
    "1e999*x",
    "10000000*x",
    "x if x > 0 else 0",
    "x and 1",
    "not x",
    "~x",
    "x // 2",
    "x % 2",
    "x @ x",
    "x << 2",
    "x | 1",
    "x == 1",
    "x > 0",
    "exp(x=1)",
    "exp(*[x])",
    "max(x)",
    "where(x, x, 0)",
    "where(0 < x < 1, x, 0)",
    "(x, x)",
    "[x]",
    "{x}",
    "...",
    "None",
    "True",
    "1j * x",
    "x; import os",
    "x # comment",
    "x \\\n + 1",
    "import os",
    "await x",
    "yield x",
    "x\x00",
    "",
    "   ",
    "x" * (MAX_LENGTH + 1),
    "log(x)",
    "sqrt(x)",
    "1 / x * 0 + log(0)",
    "x / (x - x)",
    "x ** x",
    "z + x",
    "3",
    "pi",
    "erf(x)",
    "gamma(x)",
    "factorial(x)",
]


def test_every_hostile_string_is_refused_with_one_line():
    for text in HOSTILE:
        with pytest.raises(SpecError) as caught:
            custom_activation(text, field="layers[0].activation.expr")
        message = str(caught.value)
        assert message.startswith("layers[0].activation.expr: "), text
        assert "\n" not in message and len(message) < 400, text


def test_refusing_runs_nothing(tmp_path):
    """The corpus is parsed in a fresh process that audits everything Python does: nothing but ast's compile."""
    corpus = tmp_path / "corpus.json"
    corpus.write_text(json.dumps(HOSTILE))
    script = (
        "import json, sys\n"
        "from symbp.registry.rules import custom_activation, custom_loss\n"
        "from symbp.errors import SpecError\n"
        "texts = json.load(open(sys.argv[1]))\n"
        "events = []\n"
        "sys.addaudithook(lambda event, args: events.append(event))\n"
        "refused = 0\n"
        "for text in texts:\n"
        "    for define in (custom_activation, custom_loss):\n"
        "        try:\n"
        "            define(text)\n"
        "        except SpecError:\n"
        "            refused += 1\n"
        "print(json.dumps({'refused': refused, 'events': sorted(set(events))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(corpus)], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["refused"] == 2 * len(HOSTILE)
    assert set(outcome["events"]) <= {"compile"}, outcome["events"]
    assert list(tmp_path.iterdir()) == [corpus]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x / (1 + abs(x))", z / (1 + sp.Abs(z))),
        ("z / (1 + abs(z))", z / (1 + sp.Abs(z))),
        ("x * (1 + tanh(x)) / 2", z * (1 + sp.tanh(z)) / 2),
        ("e**(-x**2)", sp.exp(-z**2)),
        ("where(x > 0, x, 0.2 * x)", sp.Piecewise((z, z > 0), (sp.Float(0.2) * z, True))),
        ("max(x, 0)", sp.Piecewise((z, z >= 0), (0, True))),
        ("min(x, 1) + sqrt(1 + x**2) - 1", sp.Piecewise((z, z <= 1), (1, True)) + sp.sqrt(1 + z**2) - 1),
        ("atan(x) * 2 / pi", sp.atan(z) * 2 / sp.pi),
        ("sinh(x) / cosh(x) + sin(x) * cos(x)", sp.tanh(z) + sp.sin(z) * sp.cos(z)),
        ("x**-2 + x", z**-2 + z),
        ("x ** 0.5 + 0 * x", None),
    ],
)
def test_formulas_become_sympy(text, expected):
    if expected is None:
        with pytest.raises(SpecError, match="not finite at x = -3.1"):
            custom_activation(text)
        return
    assert sp.simplify(custom_activation(text).expr - expected) == 0


def test_custom_loss_reads_yhat_and_y():
    assert custom_loss("(yhat - y)**4 / 4").expr == (yhat - y) ** 4 / 4
    with pytest.raises(SpecError, match="does not depend on yhat"):
        custom_loss("y**2")
    with pytest.raises(SpecError, match="unknown name 'x'"):
        custom_loss("(x - y)**2")


def test_a_custom_entry_is_rebuilt_from_its_name_alone():
    made = custom_activation("x / (1 + abs(x))", "softsign")
    assert made.name == "custom:softsign:x / (1 + abs(x))"
    assert made.short_name == "softsign" and made.display == r"\operatorname{softsign}"
    assert activation_named(made.name).expr == made.expr
    loss = custom_loss("log(cosh(yhat - y))")
    assert loss_named(loss.name).expr == loss.expr and loss.short_name == "custom"


SOFTSIGN = {"name": "net", "inputs": 2,
            "layers": [{"units": 3, "activation": {"expr": "x / (1 + abs(x))", "name": "softsign"}},
                       {"units": 1, "activation": "linear"}],
            "loss": {"expr": "log(cosh(yhat - y))", "name": "logcosh"}}


def test_spec_errors_name_the_field():
    def layer(activation):
        return {"name": "net", "inputs": 2, "layers": [{"units": 2, "activation": activation}]}

    cases = [
        (layer({"expr": "__import__('os')"}), "layers[0].activation.expr", "unknown function '__import__'"),
        (layer({"expr": 3}), "layers[0].activation.expr", "expected the expression as a string"),
        (layer({"expr": "x", "alpha": 1}), "layers[0].activation.alpha", "takes only expr and name"),
        (layer({"expr": "x", "name": "relu"}), "layers[0].activation.name", "'relu' is a built-in activation"),
        (layer({"expr": "x", "name": "two words"}), "layers[0].activation.name", "expected a short identifier"),
        (layer({"alpha": 1}), "layers[0].activation.name", "or define one"),
        ({**layer("sigmoid"), "loss": {"expr": "yhat.real"}}, "loss.expr", "attribute access"),
        ({**layer("sigmoid"), "loss": {"expr": "(yhat - y)**2", "name": "squared_error"}}, "loss.name",
         "'squared_error' is a built-in loss"),
        ({**layer({"expr": "tanh(x)"}), "loss": {"name": "cross_entropy"}}, "loss.name",
         "the last layer uses 'custom'"),
    ]
    for raw, field, message in cases:
        with pytest.raises(SpecError) as caught:
            load_spec(raw)
        assert caught.value.field == field, raw
        assert message in caught.value.message, caught.value.message


def test_cli_refuses_a_hostile_spec_with_exit_2(tmp_path, capsys):
    spec = tmp_path / "evil.toml"
    spec.write_text('name = "evil"\ninputs = 1\n[[layers]]\nunits = 1\n'
                    'activation = { expr = "__import__(\'os\').system(\'touch CANARY\')" }\n')
    target = tmp_path / "evil.py"
    assert main(["generate", str(spec), "-o", str(target)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "layers[0].activation.expr: attribute access ('.name') is not allowed" in error
    assert not target.exists() and not (tmp_path / "CANARY").exists() and not Path("CANARY").exists()


def test_custom_entries_flow_into_the_generated_code():
    source = generate_module(SOFTSIGN)
    assert "Network: 2 -> 3 (softsign) -> 1 (linear)" in source
    assert "Loss: logcosh" in source
    assert "A1 = Z1/(1 + np.abs(Z1))" in source
    assert "# dL/dZ2: logcosh through linear" in source
    module = load_module_from_source(source, "net")
    X = np.array([[0.5, -1.0], [2.0, 0.3]])
    params = module.init_params(0)
    hidden = (X @ params["W1"] + params["b1"]) / (1 + np.abs(X @ params["W1"] + params["b1"]))
    assert np.allclose(module.forward(params, X), hidden @ params["W2"] + params["b2"])
    assert check_gradients(SOFTSIGN).passed
