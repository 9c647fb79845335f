"""How long `symbp check` takes on every catalogue network small enough for SymPy's expanded loss.

    python benchmarks/check_time.py [--before-timeout S] [--no-before] [--only NAME ...]

One row per network of the typesetting catalogue (tests/typesetting_catalogue.py) with at most
``EXPANDED_PARAMETER_LIMIT`` parameters, then the gradient catalogue's ``deep-relu`` and a 3-layer,
48-parameter network of a trigonometric activation. Columns: parameters; the samples SymPy's
expanded loss is checked on (of the check's 6); seconds of the oracle before (the whole loss
differentiated symbolically, then lambdified; run in a child process, stopped at --before-timeout) and
after (at the check's point, ``symbp.checks.oracle``); seconds of the whole check before (its finite
differences plus the old oracle) and after.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from conftest import CATALOGUE as GRADIENT_CATALOGUE  # noqa: E402
from typesetting_catalogue import CATALOGUE  # noqa: E402

from symbp.checks.gradients import check_gradients, load_module_from_source  # noqa: E402
from symbp.render.code.numpy_module import generate_module  # noqa: E402
from symbp.spec.schema import load_spec  # noqa: E402
from symbp.symbolic.expanded import EXPANDED_PARAMETER_LIMIT  # noqa: E402

TRIG = {"name": "trig", "inputs": 1,
        "layers": [{"units": 4, "activation": {"expr": "sin(x)*cos(3*x)", "name": "trig"}}] * 3}

# The oracle as it was: ExpandedNetwork.gradient (sp.diff of the whole loss) lambdified, at check_gradients' point.
_BEFORE = """
import json, sys, time
import numpy as np
from symbp.checks.gradients import load_module_from_source, random_problem
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic.expanded import expand_network
spec = load_spec(json.loads(sys.argv[1]))
module = load_module_from_source(generate_module(spec), spec.name)
X, Y, rng = random_problem(spec, 6, 0)
params = module.init_params(0)
for name in module.PARAMS:
    params[name] = params[name] + rng.normal(scale=0.5, size=params[name].shape)
started = time.perf_counter()
expand_network(spec).evaluate(params, X, Y)
print(time.perf_counter() - started)
"""


def networks(only: list[str] | None) -> dict[str, dict]:
    limit = EXPANDED_PARAMETER_LIMIT
    chosen = {name: raw for name, raw in CATALOGUE.items() if load_spec(raw).parameter_count <= limit}
    chosen["deep-relu"] = GRADIENT_CATALOGUE["deep-relu"]
    chosen["trig-3x4"] = TRIG
    return {name: raw for name, raw in chosen.items() if not only or name in only}


def before(raw: dict, timeout: float) -> float | None:
    """Seconds of the old oracle, or None when it ran past ``timeout``."""
    try:
        result = subprocess.run([sys.executable, "-c", _BEFORE, json.dumps(raw)], capture_output=True, text=True,
                                timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    return float(result.stdout.split()[-1])


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    value = function(*args, **kwargs)
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-timeout", type=float, default=120.0)
    parser.add_argument("--no-before", action="store_true", help="skip the old oracle's column")
    parser.add_argument("--only", nargs="*", help="catalogue names to time")
    args = parser.parse_args()
    check_gradients(GRADIENT_CATALOGUE["hidden-relu-bias"])  # imports and caches warm
    header = (f"{'network':<34} {'params':>6} {'oracle samples':>14} {'oracle before':>13} {'oracle after':>12} "
              f"{'check before':>12} {'check after':>11}")
    print(header)
    print("-" * len(header))
    for name, raw in networks(args.only).items():
        spec = load_spec(raw)
        module = load_module_from_source(generate_module(spec), spec.name)
        without, _ = timed(check_gradients, spec, module=module, expanded=False)
        after, report = timed(check_gradients, spec, module=module)
        old = None if args.no_before else before(raw, args.before_timeout)
        old_text = "-" if args.no_before else (f">{args.before_timeout:.0f}" if old is None else f"{old:.2f}")
        check_before = f"{without + old:.2f}" if old is not None else "-" if args.no_before else f">{old_text[1:]}"
        print(f"{name:<34} {spec.parameter_count:>6} {report.expanded_samples:>10} of {report.samples} "
              f"{old_text:>13} {after - without:>12.2f} {check_before:>12} {after:>11.2f}", flush=True)
        if report.expanded_note:
            print(f"    {report.expanded_note}")


if __name__ == "__main__":
    main()
