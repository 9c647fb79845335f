"""Networks unlike the bundled ones, for checking what a reader sees, and TeX's verdict on a document.

``CATALOGUE`` maps a name to a spec dict. It covers every built-in activation (and custom ones), every
loss, depths 1 to 4, widths up to 12, layers with and without biases, mean and summed reduction, and
``RANDOM_DRAWS`` architectures drawn at random (seeded by ``SYMBP_CATALOGUE_SEED``, default 0, so a
run can be repeated and CI can be pointed at fresh draws).

The whole catalogue in every notation is slow to compile, so the normal test run takes ``QUICK``, a
fixed sample; with ``SYMBP_FULL_CATALOGUE=1`` (set by CI) ``selected()`` returns every entry.

``inspect_tex(source)`` compiles a document with pdflatex in a temporary folder and returns a
``TexReport``: whether it compiled, every overfull box with its excess in pt, every LaTeX or package
warning, and every character missing from its font (``\\tracinglostchars`` is raised so TeX logs them).
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

NOTATIONS = ("lab", "article", "lesson", "slides", "fausett")
RANDOM_DRAWS = 12
OVERFULL_TOLERANCE_PT = 1.0

_HIDDEN = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "exponential", "linear")
_CUSTOM_HIDDEN = (
    {"expr": "x / (1 + abs(x))", "name": "softsign"},
    {"expr": "z / (1 + exp(-z))", "name": "swish"},
    {"expr": "where(x > 0, x, exp(x) - 1)", "name": "elu"},
)
# Output activation and loss pairs a user would write.
_OUTPUTS = (
    ("softmax", "cross_entropy"),
    ("sigmoid", "binary_cross_entropy"),
    ("sigmoid", "squared_error"),
    ("linear", "squared_error"),
    ("tanh", "squared_error"),
    ("exponential", "squared_error"),
    ("softplus", "squared_error"),
    ("relu", "squared_error"),
)


def _layer(units: int, activation, bias: bool = True) -> dict:
    layer = {"units": units, "activation": activation}
    if not bias:
        layer["bias"] = False
    return layer


def _spec(name: str, inputs: int, layers: list[dict], loss: str | dict = "squared_error", **loss_options) -> dict:
    loss_table = dict(loss) if isinstance(loss, dict) else {"name": loss}
    return {"name": name, "inputs": inputs, "layers": layers, "loss": {**loss_table, **loss_options}}


def _fixed() -> dict[str, dict]:
    specs: dict[str, dict] = {}
    # Every output pair behind one hidden layer, biases on.
    for activation, loss in _OUTPUTS:
        units = 3 if activation == "softmax" else 2
        specs[f"out_{activation}_{loss}"] = _spec(
            f"out_{activation}_{loss}", 3, [_layer(4, "tanh"), _layer(units, activation)], loss
        )
    # Every hidden activation, built-in and custom, at depth two, alternating bias and reduction.
    for position, hidden in enumerate(_HIDDEN):
        specs[f"hidden_{hidden}"] = _spec(
            f"hidden_{hidden}", 2, [_layer(3, hidden, bias=position % 2 == 0), _layer(1, "sigmoid")],
            "binary_cross_entropy", reduction="sum" if position % 3 == 0 else "mean",
        )
    for custom in _CUSTOM_HIDDEN:
        specs[f"custom_{custom['name']}"] = _spec(
            f"custom_{custom['name']}", 2, [_layer(3, custom), _layer(1, "linear")], scale=0.5, reduction="sum"
        )
    specs["custom_loss_logcosh"] = _spec(
        "custom_loss_logcosh", 2, [_layer(3, "tanh"), _layer(2, "linear")],
        {"expr": "log(cosh(yhat - y))", "name": "logcosh"},
    )
    # Depth one to four; the 3-8-8-6-1 network among them.
    specs["single_layer"] = _spec("single_layer", 4, [_layer(3, "sigmoid", bias=False)])
    specs["deep_3_8_8_6_1"] = _spec(
        "deep_3_8_8_6_1", 3, [_layer(8, "relu"), _layer(8, "relu"), _layer(6, "relu"), _layer(1, "linear")]
    )
    specs["deep_softmax"] = _spec(
        "deep_softmax", 4,
        [_layer(5, "tanh"), _layer(4, {"name": "leaky_relu", "alpha": 0.1}), _layer(3, "sigmoid", bias=False),
         _layer(3, "softmax")],
        "cross_entropy",
    )
    specs["deep_sigmoid_nobias"] = _spec(
        "deep_sigmoid_nobias", 2,
        [_layer(3, "sigmoid", bias=False), _layer(3, "sigmoid", bias=False), _layer(1, "sigmoid", bias=False)],
        scale=0.5, reduction="sum",
    )
    # Wide layers: 12 units, the most a document is asked to typeset.
    specs["wide_12"] = _spec("wide_12", 12, [_layer(12, "relu"), _layer(10, "softmax")], "cross_entropy")
    specs["wide_leaky_bce"] = _spec(
        "wide_leaky_bce", 6, [_layer(12, "leaky_relu"), _layer(1, "sigmoid")], "binary_cross_entropy"
    )
    specs["many_outputs_linear"] = _spec("many_outputs_linear", 2, [_layer(5, "softplus"), _layer(6, "linear")])
    specs["one_input_line"] = _spec("one_input_line", 1, [_layer(1, "linear")], scale=0.5)
    # Dropout on the inputs and on the hidden layer: the masks m appear in every section and in the worksheet.
    specs["dropout_3_4_2"] = _spec(
        "dropout_3_4_2", 3, [{**_layer(4, "relu"), "dropout": 0.2}, {**_layer(2, "softmax"), "dropout": 0.5}],
        "cross_entropy",
    )
    return specs


def _drawn(seed: int, count: int) -> dict[str, dict]:
    rng = random.Random(seed)
    specs = {}
    for draw in range(count):
        depth = rng.randint(1, 4)
        hidden = [_layer(rng.randint(1, 12), rng.choice(_HIDDEN), bias=rng.random() < 0.7) for _ in range(depth - 1)]
        activation, loss = rng.choice(_OUTPUTS)
        outputs = rng.randint(2, 4) if activation == "softmax" else rng.randint(1, 3)
        name = f"drawn_{seed}_{draw}"
        specs[name] = _spec(
            name, rng.randint(1, 6), [*hidden, _layer(outputs, activation, bias=rng.random() < 0.7)], loss,
            reduction=rng.choice(("mean", "sum")),
        )
    return specs


CATALOGUE_SEED = int(os.environ.get("SYMBP_CATALOGUE_SEED", "0"))
CATALOGUE: dict[str, dict] = {**_fixed(), **_drawn(CATALOGUE_SEED, RANDOM_DRAWS)}
QUICK = ("out_softmax_cross_entropy", "hidden_leaky_relu", "deep_3_8_8_6_1", "custom_softsign", "wide_12")
FULL = os.environ.get("SYMBP_FULL_CATALOGUE") == "1"


def selected() -> dict[str, dict]:
    """The entries this run checks: all of them in CI, the quick sample otherwise."""
    return CATALOGUE if FULL else {name: CATALOGUE[name] for name in QUICK}


@dataclass
class TexReport:
    compiled: bool
    overfull: list[tuple[float, str]] = field(default_factory=list)  # (excess in pt, the log line)
    warnings: list[str] = field(default_factory=list)
    missing_characters: list[str] = field(default_factory=list)
    log: str = ""

    def problems(self, tolerance_pt: float = OVERFULL_TOLERANCE_PT) -> list[str]:
        """Everything a reader would see as a fault, one line each; empty for a clean document."""
        found = [] if self.compiled else ["did not compile"]
        found += [line for excess, line in self.overfull if excess > tolerance_pt]
        return found + self.warnings + self.missing_characters


_OVERFULL = re.compile(r"^Overfull \\[hv]box \(([\d.]+)pt too (?:wide|high)\).*$", re.M)
_WARNING = re.compile(r"^((?:LaTeX|Package \S+|Class \S+) Warning: .*)$", re.M)
_MISSING = re.compile(r"^(Missing character: .*)$", re.M)


def inspect_tex(source: str, name: str = "document", runs: int = 2) -> TexReport:
    """Compiles ``source`` with pdflatex (twice, so references settle) and reads the last run's log."""
    with tempfile.TemporaryDirectory(prefix="symbp-typeset-") as folder:
        Path(folder, f"{name}.tex").write_text(source, encoding="utf-8")
        command = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                   rf"\tracinglostchars=2 \input{{{name}.tex}}"]
        for _ in range(runs):
            result = subprocess.run(command, cwd=folder, capture_output=True, text=True, errors="replace",
                                    timeout=300, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                break
        log_path = Path(folder, f"{name}.log")
        log = log_path.read_text(errors="replace") if log_path.exists() else result.stdout
        compiled = result.returncode == 0 and Path(folder, f"{name}.pdf").exists()
    # TeX wraps log lines at 79 characters; a warning's continuation lines are enough to recognise it.
    return TexReport(
        compiled=compiled,
        overfull=[(float(match.group(1)), match.group(0)) for match in _OVERFULL.finditer(log)],
        warnings=_WARNING.findall(log),
        missing_characters=_MISSING.findall(log),
        log=log,
    )
