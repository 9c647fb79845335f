"""The CuPy module on the CPU: its CUDA C kernels compiled by g++, its Python run on NumPy arrays.

No GPU is needed: cupy_stand_in gives the generated module NumPy for CuPy's array functions and
an ElementwiseKernel that compiles each kernel's body, unchanged, as C++ (T = double or float).
What only a GPU can show (NVRTC compiling the same bodies, cuBLAS, speed) is benchmarks/gpu.py's.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import CATALOGUE
from cupy_stand_in import COMPILER, DeviceArray, stand_in

from symbp.checks.gradients import load_module_from_source, random_problem
from symbp.examples import bundled_spec_paths
from symbp.render.code.backends.cupy import generate_cupy_module
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import load_spec
from symbp.symbolic.network import build_network

RELATIVE = 1e-12
needs_compiler = pytest.mark.skipif(COMPILER is None, reason="g++ is not installed: the kernels cannot be compiled")


def _load_on_stand_in(source: str, name: str):
    """Imports a generated CuPy module with the stand-in as its cupy (restoring any real one after)."""
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = stand_in()
    try:
        return load_module_from_source(source, name)
    finally:
        if saved is None:
            sys.modules.pop("cupy")
        else:
            sys.modules["cupy"] = saved


@functools.cache
def _modules(name: str):
    network = build_network(CATALOGUE[name])
    safe = name.replace("-", "_")
    numpy_module = load_module_from_source(generate_module(network), f"np_{safe}")
    return network.spec, numpy_module, _load_on_stand_in(generate_cupy_module(network), f"cupy_{safe}")


def _problem(spec, numpy_module, samples=7):
    X, Y, rng = random_problem(spec, samples, seed=4)
    params = {k: v + rng.normal(scale=0.3, size=v.shape) for k, v in numpy_module.init_params(2).items()}
    return params, X, Y


def _assert_close(got, want, what, relative=RELATIVE):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-300)
    error = float(np.max(np.abs(got - want), initial=0.0))
    assert error <= relative * scale, f"{what}: off by {error:.3g} (scale {scale:.3g})"


@needs_compiler
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_every_kernel_compiles_and_the_module_equals_the_numpy_module(name):
    """forward, loss and loss_and_grad run every kernel the module has: each equals NumPy's to 1e-12."""
    for other in CATALOGUE:  # loaded (cached) before any kernel runs, so that all compile in one go
        _modules(other)
    spec, numpy_module, cupy_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module)
    _assert_close(cupy_module.forward(params, X), numpy_module.forward(params, X), "forward")
    _assert_close(cupy_module.loss(params, X, Y), numpy_module.loss(params, X, Y), "loss")
    value, grads = cupy_module.loss_and_grad(params, X, Y)
    want_value, want_grads = numpy_module.loss_and_grad(params, X, Y)
    _assert_close(value, want_value, "loss_and_grad's loss")
    assert set(grads) == set(want_grads)
    for key in want_grads:
        _assert_close(grads[key], want_grads[key], f"gradient of {key}")


@needs_compiler
@pytest.mark.parametrize("name", ["deep-relu", "out-cross_entropy-softmax-bias",
                                  "out-binary_cross_entropy-sigmoid-bias", "custom-hidden-gelu-tanh",
                                  "custom-loss-huber", "out-squared_error-softmax-nobias"])
def test_float32_kernels_compute_in_float_and_agree_with_the_numpy_module_in_float32(name):
    spec, numpy_module, cupy_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module, samples=64)
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    value, grads = cupy_module.loss_and_grad(params32, X32, Y32)
    want_value, want_grads = numpy_module.loss_and_grad(params32, X32, Y32)
    assert all(g.dtype == np.float32 for g in grads.values())
    _assert_close(value, want_value, "loss", relative=1e-5)
    for key in want_grads:
        _assert_close(grads[key], want_grads[key], f"gradient of {key}", relative=1e-4)


def _train_both(name, **options):
    spec, numpy_module, cupy_module = _modules(name)
    params, X, Y = _problem(spec, numpy_module, samples=40)
    want = numpy_module.train(params, X, Y, **options)
    got = cupy_module.train(params, X, Y, **options)
    return want, got


@needs_compiler
@pytest.mark.parametrize("name", ["deep-tanh", "out-cross_entropy-softmax-bias"])
@pytest.mark.parametrize("options", [
    {"optimizer": "gd", "epochs": 6, "batch_size": None, "learning_rate": 0.3},
    {"optimizer": "sgd", "epochs": 3, "batch_size": 16, "learning_rate": 0.2, "seed": 5},
    {"optimizer": "sgd", "epochs": 3, "batch_size": 1, "learning_rate": 0.05, "seed": 2},
    {"optimizer": "momentum", "epochs": 4, "batch_size": 8, "learning_rate": 0.1, "momentum": 0.9},
    {"optimizer": "momentum", "epochs": 5, "batch_size": None, "learning_rate": 0.1, "momentum": 0.5},
    {"optimizer": "adam", "epochs": 4, "batch_size": 16, "learning_rate": 0.01},
    {"optimizer": "adam", "epochs": 5, "batch_size": None, "learning_rate": 0.02, "beta1": 0.8, "epsilon": 1e-4},
], ids=["gd", "sgd", "sgd-single-samples", "momentum", "momentum-full-batch", "adam", "adam-full-batch"])
def test_train_takes_the_numpy_modules_steps(name, options):
    """Every optimizer, full batch and mini-batches: the CuPy module ends at the NumPy module's parameters."""
    (want_params, want_history), (got_params, got_history) = _train_both(name, **options)
    assert got_history["stopped"] == want_history["stopped"]
    assert got_history["best_epoch"] == want_history["best_epoch"]
    assert all(type(value) is float for value in got_history["loss"])  # the losses came back to the host
    _assert_close(got_history["loss"], want_history["loss"], "history['loss']")
    for key in want_params:
        assert isinstance(got_params[key], DeviceArray)  # the parameters stayed on the device
        _assert_close(got_params[key], want_params[key], f"trained {key}")


@needs_compiler
def test_large_batches_end_where_the_numpy_modules_in_place_steps_do():
    """Batches big enough for the NumPy module's preallocated step: the same numbers as its in-place route."""
    spec, numpy_module, cupy_module = _modules("deep-tanh")
    X, Y, rng = random_problem(spec, 1200, seed=6)
    params = numpy_module.init_params(1)
    for options in ({"optimizer": "adam", "batch_size": None, "learning_rate": 0.01, "epochs": 3},
                    {"optimizer": "momentum", "batch_size": 600, "learning_rate": 0.05, "epochs": 2}):
        want_params, want = numpy_module.train(params, X, Y, **options)
        got_params, got = cupy_module.train(params, X, Y, **options)
        _assert_close(got["loss"], want["loss"], "history['loss']")
        for key in want_params:
            _assert_close(got_params[key], want_params[key], f"trained {key}")


def test_the_module_trains_with_the_runtime_copied_verbatim_and_one_plain_gradient_step():
    """No training loop or update rule of its own: symbp.runtime's, as the NumPy module holds them."""
    from symbp.render.code.backends.cupy import CUPY_RUNTIME
    from symbp.render.code.runtime_source import runtime_source

    source = generate_cupy_module(CATALOGUE["deep-tanh"])
    numpy_source = generate_module(CATALOGUE["deep-tanh"])
    for part in runtime_source(CUPY_RUNTIME).parts:
        assert part.code in source and part.code in numpy_source
    own = "\n".join(line for line in source.split("# ---- symbp.runtime.")[0].splitlines()
                    if not line.lstrip().startswith(('"', "#")) and "Loss:" not in line)  # code, not its docs
    assert "for epoch" not in own and "beta1**" not in own and "velocity[" not in own
    assert "def _loss_and_grad_into(params, X, Y, work):" in own and "scale" not in own
    assert "run_training(" in own


def test_the_stand_ins_arrays_refuse_numpys_functions_as_cupys_arrays_do():
    """What makes the tests above mean something for a GPU: NumPy's own functions cannot read a device array."""
    cp = stand_in()
    X = cp.asarray(np.arange(6.0).reshape(3, 2))
    assert isinstance(X, DeviceArray) and isinstance(X * 2 + np.sqrt(X), DeviceArray)
    with pytest.raises(TypeError, match="numpy.take called on a device array"):
        np.take(X, np.array([0, 2]), axis=0, out=cp.empty((2, 2)), mode="clip")
    with pytest.raises(TypeError, match="numpy.result_type called on a device array"):
        np.result_type(X)
    np.testing.assert_array_equal(cp.asnumpy(cp.take(X, cp.asarray([2, 0]), axis=0)), [[4.0, 5.0], [0.0, 1.0]])


@needs_compiler
def test_validation_early_stopping_and_callback_follow_the_shared_contract():
    spec, numpy_module, cupy_module = _modules("deep-tanh")
    params, X, Y = _problem(spec, numpy_module, samples=40)
    validation = (X[:10] * 3.0, Y[:10][::-1])
    options = {"epochs": 30, "learning_rate": 2.0, "validation": validation, "patience": 2, "batch_size": None}
    want_params, want_history = numpy_module.train(params, X, Y, **options)
    got_params, got_history = cupy_module.train(params, X, Y, **options)
    assert got_history["stopped"] == want_history["stopped"]
    assert got_history["best_epoch"] == want_history["best_epoch"]
    _assert_close(got_history["val_loss"], want_history["val_loss"], "val_loss")
    for key in want_params:
        _assert_close(got_params[key], want_params[key], key)
    seen = []
    _, history = cupy_module.train(params, X, Y, epochs=10, callback=lambda e, logs, p: seen.append(logs) or e == 2)
    assert history["stopped"] == "callback" and len(seen) == 3 and set(seen[0]) == {"loss"}


@needs_compiler
def test_a_diverging_run_warns_and_returns_the_last_finite_parameters():
    spec, numpy_module, cupy_module = _modules("hidden-exponential-bias")
    params, X, Y = _problem(spec, numpy_module, samples=20)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trained, history = cupy_module.train(params, X * 20, Y, learning_rate=1e6, epochs=50, batch_size=None)
    assert history["stopped"] == "diverged"
    assert any("training stopped at epoch" in str(w.message) and w.category is RuntimeWarning for w in caught)
    assert np.isfinite(cupy_module.loss(trained, X * 20, Y))


@needs_compiler
def test_save_and_load_round_trip_and_bad_inputs_name_the_field(tmp_path):
    spec, numpy_module, cupy_module = _modules("deep-tanh")
    params = cupy_module.init_params(3)
    for key, value in numpy_module.init_params(3).items():
        np.testing.assert_array_equal(np.asarray(params[key]), value)
    cupy_module.save_params(tmp_path / "p.npz", params)
    loaded = cupy_module.load_params(tmp_path / "p.npz")
    assert all(np.array_equal(np.asarray(loaded[k]), np.asarray(params[k])) for k in params)
    X, Y, _ = random_problem(spec, 5, seed=0)
    with pytest.raises(ValueError, match=r"X: expected shape \(N, 2\)"):
        cupy_module.loss(params, X[:, :1], Y)
    with pytest.raises(ValueError, match=r"params\['W1'\]: expected shape"):
        cupy_module.loss({**params, "W1": params["W1"][:1]}, X, Y)
    with pytest.raises(ValueError, match="X: expected floating-point"):
        cupy_module.loss(params, X.astype(np.int64), Y)


def test_generating_needs_no_cupy_and_the_module_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy now fails, as on a machine without it
    source = generate_cupy_module(load_spec("actuarial"))
    assert source == generate_cupy_module(load_spec("actuarial"))  # deterministic
    assert "symbp" not in "".join(line for line in source.splitlines() if line.startswith(("import", "from")))
    with pytest.raises(ImportError, match=r"pip install 'symbp\[cupy\]'"):
        load_module_from_source(source, "actuarial_cupy_missing")


def test_generate_backend_cupy_writes_a_module_beside_the_numpy_one(tmp_path, monkeypatch):
    from symbp.cli.main import main

    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "generated").mkdir()
    assert main(["generate", "actuarial", "--backend", "cupy"]) == 0
    source = (tmp_path / "generated" / "actuarial_cupy.py").read_text()
    assert "cp.ElementwiseKernel(" in source and "cp.matmul(" in source


def test_a_step_is_matrix_products_and_one_kernel_per_layer_and_direction():
    """Elementwise networks: each hidden layer one kernel forward and one backward, the output layer one."""
    from symbp.render.code.backends.cupy import module_context

    context = module_context(build_network(CATALOGUE["out-binary_cross_entropy-sigmoid-bias"]))
    assert [len(stages) for stages in context["hidden"].values()] == [1]
    assert [len(stages) for stages in context["backward"].values()] == [1]
    assert len(context["outputs"]["step"]) == 1
    step = context["outputs"]["step"][0]
    assert step.outputs == ("terms", "delta2")
    # The loss through log1p(exp(-|z|)), the exponential the sigmoid computes too: one exp per element in all.
    assert step.body.count("exp(") == 1 and "log1p(" in step.body
    spec = CATALOGUE["out-binary_cross_entropy-sigmoid-bias"]
    sigmoid_hidden = {**spec, "layers": [{**spec["layers"][0], "activation": "sigmoid"}, spec["layers"][1]]}
    (hidden,) = module_context(build_network(sigmoid_hidden))["hidden"][1]
    assert hidden.body.count("exp(") == 1, hidden.body


@needs_compiler
def test_the_stand_in_refuses_a_body_that_computes_in_double_or_does_not_compile():
    """The compilation is a real check: a float kernel with a double in it, or bad C, fails."""
    from cupy_stand_in import LIBRARY, ElementwiseKernel, KernelCompileError

    if LIBRARY.pending:
        LIBRARY.compile_pending()  # kernels of other modules compile apart from the bad ones below
    x = np.ones(3, np.float32)
    promoting = ElementwiseKernel("T x", "T y", "y = x * 0.5;", "promoting")
    with pytest.raises(KernelCompileError, match="double-promotion"):
        promoting(x, np.empty_like(x))
    broken = ElementwiseKernel("T x", "T y", "y = x +;", "broken")
    with pytest.raises(KernelCompileError, match="expected primary-expression"):
        broken(x, np.empty_like(x))
    fine = ElementwiseKernel("T x, T b", "T y", "y = exp(-fabs(x)) * b + T(1)/T(2);", "fine")
    for dtype in (np.float32, np.float64):
        values, out = np.linspace(-3, 3, 12, dtype=dtype).reshape(3, 4), np.empty((3, 4), dtype)
        fine(values, np.arange(4, dtype=dtype), out)
        np.testing.assert_allclose(out, np.exp(-np.abs(values)) * np.arange(4) + 0.5, rtol=1e-6)


@pytest.mark.skipif(shutil.which("ruff") is None and not (Path(sys.executable).parent / "ruff").exists(),
                    reason="ruff is not installed")
def test_generated_cupy_modules_pass_ruff(tmp_path):
    for name in ["deep-relu", "custom-output-gelu-tanh", "custom-loss-through-softmax", "sum-half-squared"]:
        (tmp_path / f"{name.replace('-', '_')}.py").write_text(generate_cupy_module(CATALOGUE[name]))
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([ruff, "check", "--no-cache", "--config", str(root / "pyproject.toml"), str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_compiler
@pytest.mark.parametrize("path", bundled_spec_paths(), ids=lambda path: path.stem)
def test_every_bundled_example_equals_the_numpy_module(path):
    spec = load_spec(path)
    numpy_module = load_module_from_source(generate_module(spec), f"np_example_{spec.name}")
    cupy_module = _load_on_stand_in(generate_cupy_module(spec), f"cupy_example_{spec.name}")
    X, Y, _ = random_problem(spec, 6, seed=1)
    params = numpy_module.init_params(0)
    value, grads = cupy_module.loss_and_grad(params, X, Y)
    want_value, want_grads = numpy_module.loss_and_grad(params, X, Y)
    _assert_close(value, want_value, "loss")
    for key in want_grads:
        _assert_close(grads[key], want_grads[key], f"gradient of {key}")


@needs_compiler
def test_train_in_float32_runs_float_kernels_end_to_end():
    spec, numpy_module, cupy_module = _modules("out-cross_entropy-softmax-bias")
    params, X, Y = _problem(spec, numpy_module, samples=64)
    options = {"epochs": 5, "learning_rate": 0.5, "batch_size": 16, "dtype": np.float32}
    want_params, want_history = numpy_module.train(params, X, Y, **options)
    got_params, got_history = cupy_module.train(params, X, Y, **options)
    assert all(value.dtype == np.float32 for value in got_params.values())
    _assert_close(got_history["loss"], want_history["loss"], "history['loss']", relative=1e-5)
    for key in want_params:
        _assert_close(got_params[key], want_params[key], f"trained {key}", relative=1e-4)


def test_the_kernel_printer_writes_every_number_as_T_and_calls_cudas_overloads():
    import sympy as sp
    from sympy.codegen.numpy_nodes import logaddexp

    from symbp.render.code.backends.cuda import CudaKernelPrinter

    x, y = sp.symbols("x y", real=True)
    printer = CudaKernelPrinter({x: "Z1"})
    assert printer.doprint(sp.Rational(1, 3) * x + 0.5) == "(T(1)/T(3))*Z1 + T(0.5)"
    assert printer.doprint(y / x**2) == "y/(Z1*Z1)"
    assert printer.doprint(sp.Max(x, 0.1 * x)) == "fmax(Z1, T(0.1)*Z1)"
    assert printer.doprint(sp.Piecewise((x, x > 0), (0, True))) == "((Z1 > T(0)) ? (Z1) : T(0))"
    assert printer.doprint(logaddexp(0, -x)) == "symbp_logaddexp(T(0), -Z1)"
    assert printer.doprint(sp.exp(-sp.Abs(x))) == "exp(-fabs(Z1))"


@needs_compiler
def test_the_stable_forms_stay_finite_where_the_naive_ones_overflow():
    """logaddexp and the sigmoid as printed, at |z| = 700 (double) and 80 (float): finite and right."""
    import sympy as sp
    from cupy_stand_in import ElementwiseKernel
    from sympy.codegen.numpy_nodes import logaddexp

    from symbp.render.code.backends.cuda import PREAMBLE, CudaKernelPrinter

    z = sp.Symbol("z", real=True)
    printer = CudaKernelPrinter()
    sigmoid = sp.exp(sp.Min(0, z)) / (1 + sp.exp(-sp.Abs(z)))
    kernel = ElementwiseKernel("T z", "T softplus, T sigmoid",
                               f"softplus = {printer.doprint(logaddexp(0, z))};\n"
                               f"sigmoid = {printer.doprint(sigmoid)};", "stable", preamble=PREAMBLE)
    for dtype, far in ((np.float64, 700.0), (np.float32, 80.0)):
        values = np.array([-far, -1.0, 0.0, 1.0, far], dtype)
        softplus, probability = np.empty_like(values), np.empty_like(values)
        kernel(values, softplus, probability)
        np.testing.assert_allclose(softplus, np.logaddexp(0, values.astype(np.float64)), rtol=1e-6)
        np.testing.assert_allclose(probability, 1 / (1 + np.exp(-values.astype(np.float64))), rtol=1e-6)


def _numpy_values(kernel, values: dict) -> dict:
    """The kernel's assignments evaluated one by one with NumPy (SymPy's lambdify), in float64."""
    import sympy as sp

    known = dict(values)
    for symbol, expr in kernel.assignments:
        arguments = sorted(expr.free_symbols, key=str)
        known[symbol] = np.broadcast_to(sp.lambdify(arguments, expr, "numpy")(*(known[a] for a in arguments)),
                                        next(iter(values.values())).shape)
    return known


@functools.cache
def _kernels_alone() -> dict:
    """Every catalogue network's kernels, each with its stand-in; identical kernels are compiled once,
    and all of them in one go (the first call), rather than a compilation per network."""
    from cupy_stand_in import ElementwiseKernel

    from symbp.render.code.backends.cuda import PREAMBLE
    from symbp.render.code.backends.cupy import module_context

    compiled: dict = {}
    kernels = {}
    for name in CATALOGUE:
        for kernel in module_context(build_network(CATALOGUE[name]))["kernels"]:
            key = (kernel.in_params, kernel.out_params, kernel.body)
            if key not in compiled:
                compiled[key] = ElementwiseKernel(*key, kernel.name, preamble=PREAMBLE)
            kernels.setdefault(name, []).append((kernel, compiled[key]))
    return kernels


@needs_compiler
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_each_kernel_alone_equals_numpy_on_the_same_sympy_expressions(name):
    """Kernel by kernel: the compiled body against NumPy evaluating the expressions it was printed from,
    to 1e-12 in double and 1e-5 in float, on inputs in (0.05, 0.95) (inside every domain: logs of
    probabilities, square roots) and in (-3, 3) (both branches of every piecewise function)."""
    rng = np.random.default_rng(0)
    for kernel, compiled in _kernels_alone()[name]:
        for low, high in ((0.05, 0.95), (-3.0, 3.0)):
            values = {symbol: rng.uniform(low, high, size=(6, 5)) for symbol in kernel.parameters}
            with np.errstate(all="ignore"):
                want = _numpy_values(kernel, values)
            for dtype, relative in ((np.float64, 1e-12), (np.float32, 1e-5)):
                outputs = [np.empty((6, 5), dtype) for _ in kernel.outputs]
                compiled(*(values[s].astype(dtype) for s in kernel.parameters), *outputs)
                for output, got in zip(kernel.outputs, outputs):
                    expected = want[next(s for s, _ in kernel.assignments if str(s) == output)]
                    finite = np.isfinite(expected)
                    assert np.array_equal(finite, np.isfinite(got)), f"{kernel.name}.{output}: NaN or inf differ"
                    if dtype == np.float32:  # float inputs are the rounded doubles: compare with NumPy on those
                        with np.errstate(all="ignore"):
                            expected = _numpy_values(kernel, {s: v.astype(dtype).astype(np.float64)
                                                              for s, v in values.items()})[
                                next(s for s, _ in kernel.assignments if str(s) == output)]
                    scale = max(float(np.max(np.abs(expected[finite]), initial=0.0)), 1e-300)
                    error = float(np.max(np.abs(got[finite] - expected[finite]), initial=0.0))
                    assert error <= relative * scale, f"{kernel.name}.{output} in {np.dtype(dtype)}: {error:.3g}"


@needs_compiler
def test_the_gpu_scripts_gradient_check_passes_on_the_stand_in(capsys):
    """benchmarks/gpu.py's first part, run here on the CPU stand-in: the script itself is sound."""
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu.py"
    saved = sys.modules.get("cupy")
    sys.modules["cupy"] = stand_in()
    try:
        module_spec = importlib.util.spec_from_file_location("symbp_gpu_benchmark", path)
        script = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(script)
        assert script.check_small_networks()
    finally:
        if saved is None:
            sys.modules.pop("cupy")
        else:
            sys.modules["cupy"] = saved
    assert "FAILED" not in capsys.readouterr().out


DROPPED = {
    "name": "dropped", "inputs": 3, "loss": "cross_entropy",
    "layers": [{"units": 4, "activation": "tanh", "dropout": 0.25},
               {"units": 3, "activation": "relu", "dropout": 0.4},
               {"units": 2, "activation": "softmax", "dropout": 0.5}],
    "training": {"seed": 3, "epochs": 4},
}


@functools.cache
def _dropout_modules():
    spec = load_spec(DROPPED)
    return (spec, load_module_from_source(generate_module(spec), "np_dropped"),
            _load_on_stand_in(generate_cupy_module(spec), "cupy_dropped"))


@needs_compiler
def test_dropout_masks_reach_the_kernels_as_the_numpy_module_applies_them():
    """With masks (on the inputs, through the products and back into each hidden layer's error term) and
    without (evaluation mode), loss, gradient and forward equal the NumPy module's."""
    spec, numpy_module, cupy_module = _dropout_modules()
    params, X, Y = _problem(spec, numpy_module, samples=9)
    masks = numpy_module.draw_masks(np.random.default_rng(5), 9)
    drawn = cupy_module.draw_masks(np.random.default_rng(5), 9)
    assert all(isinstance(drawn[k], DeviceArray) and np.array_equal(np.asarray(drawn[k]), masks[k]) for k in masks)
    for given in (None, masks):
        extra = () if given is None else (given,)
        value, grads = cupy_module.loss_and_grad(params, X, Y, *extra)
        want_value, want_grads = numpy_module.loss_and_grad(params, X, Y, *extra)
        _assert_close(value, want_value, "loss_and_grad's loss")
        for key in want_grads:
            _assert_close(grads[key], want_grads[key], f"gradient of {key}")
        _assert_close(cupy_module.loss(params, X, Y, *extra), numpy_module.loss(params, X, Y, *extra), "loss")
    _assert_close(cupy_module.forward(params, X), numpy_module.forward(params, X), "forward")
    with pytest.raises(ValueError, match=r"masks: expected exactly M1, M2, M3 .*missing M3"):
        cupy_module.loss_and_grad(params, X, Y, {"M1": masks["M1"], "M2": masks["M2"]})
    with pytest.raises(ValueError, match=r"masks\['M2'\]: expected shape \(9, 4\)"):
        cupy_module.loss_and_grad(params, X, Y, {**masks, "M2": masks["M2"][:2]})


@needs_compiler
@pytest.mark.parametrize("options", [
    {"optimizer": "gd", "batch_size": None, "learning_rate": 0.3},
    {"optimizer": "sgd", "batch_size": 4, "learning_rate": 0.2},
    {"optimizer": "momentum", "batch_size": 3, "learning_rate": 0.1},
    {"optimizer": "adam", "batch_size": None, "learning_rate": 0.02},
    {"optimizer": "adam", "batch_size": 5, "learning_rate": 0.02},
], ids=["gd", "sgd", "momentum", "adam-full-batch", "adam"])
def test_training_with_dropout_draws_the_numpy_modules_masks_and_ends_at_its_parameters(options):
    spec, numpy_module, cupy_module = _dropout_modules()
    params, X, Y = _problem(spec, numpy_module, samples=12)
    want_params, want = numpy_module.train(params, X, Y, **options)
    got_params, got = cupy_module.train(params, X, Y, **options)
    assert got["stopped"] == want["stopped"] == "epochs"
    _assert_close(got["loss"], want["loss"], "history['loss']")
    for key in want_params:
        _assert_close(got_params[key], want_params[key], f"trained {key}")


@pytest.mark.parametrize("layer", [
    {"residual": True},
    {"kernel_regularizer": {"l2": 0.01}},
    {"normalization": "layer", "bias": False},
    {"normalization": "batch", "bias": False},
], ids=["residual", "penalty", "layer-norm", "batch-norm"])
def test_generate_writes_a_cupy_module_for_every_layer_kind(tmp_path, layer):
    from symbp.cli.main import main

    spec = {"name": "net", "inputs": 3, "layers": [{"units": 3, "activation": "tanh"},
                                                   {"units": 3, "activation": "tanh", **layer},
                                                   {"units": 1, "activation": "linear"}]}
    (tmp_path / "net.json").write_text(json.dumps(spec), encoding="utf-8")
    out = tmp_path / "net_cupy.py"
    assert main(["generate", str(tmp_path / "net.json"), "--backend", "cupy", "-o", str(out)]) == 0
    assert "import cupy as cp" in out.read_text(encoding="utf-8")
