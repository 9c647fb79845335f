"""The CuPy module on a GPU: its gradients checked, then its step timed against JAX-jit and PyTorch.

    python benchmarks/gpu.py                      # needs CuPy and a CUDA GPU; a few minutes
    python benchmarks/gpu.py --rounds 3 --steps 10

1. Correctness: for small networks covering every kind of kernel (elementwise and row-wise
   activations, stable losses, custom formulas) and every layer kind (residual, weight penalties,
   dropout, layer and batch normalisation, convolution and pooling), the CuPy module's loss and
   gradient in float64 (in evaluation mode) against the NumPy module's on the same numbers
   (relative 1e-12) and against central finite differences of the CuPy module's own loss
   (relative 1e-6). Any failure: exit status 1.
2. Speed: one training step (loss and gradient) of 784-1024-1024-10 (relu, relu, softmax with
   cross-entropy, batch 8192) in float32 and float64: the generated CuPy module's step, JAX's
   jax.jit(jax.value_and_grad(loss)) and PyTorch autograd (loss.backward()) on the same GPU, the
   same loss written in each library, all with full-precision float32 products (no TF32). Median
   milliseconds per step over interleaved rounds (each round runs every implementation once),
   ratios to the CuPy module within this run, and how far each gradient is from the CuPy
   module's. A library that is missing, or has no GPU, is reported as such and left out.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]

from symbp.checks.gradients import load_module_from_source  # noqa: E402
from symbp.render.code.backends.cupy import generate_cupy_module  # noqa: E402
from symbp.render.code.numpy_module import generate_module  # noqa: E402

try:
    import cupy as cp
except ImportError:
    print("CuPy is not installed: pip install 'symbp[cupy]' (on a machine with a CUDA GPU)")
    sys.exit(2)

WIDE = {"name": "wide", "inputs": 784, "loss": {"name": "cross_entropy"}, "layers": [
    {"units": 1024, "activation": "relu"}, {"units": 1024, "activation": "relu"},
    {"units": 10, "activation": "softmax"}]}


def _small(name, inputs, layers, loss="squared_error", **extra):
    return name, {"name": "net", "inputs": inputs, "layers": layers, "loss": loss if isinstance(loss, dict) else {
        "name": loss}, **extra}


SMALL = dict([
    _small("tanh/softmax, cross-entropy", 3, [{"units": 4, "activation": "tanh"},
                                              {"units": 3, "activation": "softmax"}], "cross_entropy"),
    _small("relu/sigmoid/softmax", 2, [{"units": 3, "activation": "relu"},
                                       {"units": 3, "activation": "sigmoid", "bias": False},
                                       {"units": 2, "activation": "softmax"}], "cross_entropy"),
    _small("sigmoid, binary cross-entropy", 3, [{"units": 4, "activation": "softplus"},
                                                {"units": 2, "activation": "sigmoid"}], "binary_cross_entropy"),
    _small("softmax, squared error", 3, [{"units": 4, "activation": "leaky_relu"},
                                         {"units": 3, "activation": "softmax"}]),
    _small("custom gelu, exponential", 3, [{"units": 3, "activation": {"expr": "0.5 * x * (1 + tanh(0.7978845608 * "
                                                                               "(x + 0.044715 * x**3)))"}},
                                           {"units": 2, "activation": "exponential"}]),
    _small("custom loss (huber)", 2, [{"units": 3, "activation": "tanh"}, {"units": 2, "activation": "linear"}],
           {"expr": "where(abs(yhat - y) < 0.5, (yhat - y)**2 / 2, 0.5 * (abs(yhat - y) - 0.25))"}),
    _small("residual, penalties, dropout", 3, [
        {"units": 3, "activation": "tanh", "residual": True, "kernel_regularizer": {"l1": 0.01, "l2": 0.02}},
        {"units": 4, "activation": "relu", "dropout": 0.3}, {"units": 2, "activation": "softmax"}], "cross_entropy"),
    _small("layer and batch normalisation", 3, [
        {"units": 4, "activation": "sigmoid", "normalization": "layer"},
        {"units": 3, "activation": "tanh", "normalization": "batch"},
        {"units": 2, "activation": "linear", "normalization": "batch"}]),
    _small("convolution and pooling", 16, [
        {"kind": "conv2d", "filters": 2, "kernel_size": 2, "padding": 1, "activation": "tanh"},
        {"kind": "max_pool2d", "pool_size": 2}, {"kind": "avg_pool2d", "pool_size": 2},
        {"units": 3, "activation": "softmax"}], "cross_entropy", input_shape=[1, 4, 4]),
])


def _synchronize():
    cp.cuda.get_current_stream().synchronize()


def _relative(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want), initial=0.0) / max(np.max(np.abs(want), initial=0.0), 1e-300))


def check_small_networks() -> bool:
    print("1. The CuPy module's gradient on the GPU (float64), against the NumPy module and finite differences\n")
    print(f"{'network':34} {'vs NumPy module':>16} {'vs finite diff.':>16}  verdict")
    all_good = True
    for label, spec in SMALL.items():
        numpy_module = load_module_from_source(generate_module(spec), "np_small")
        cupy_module = load_module_from_source(generate_cupy_module(spec), "cupy_small")
        rng = np.random.default_rng(4)
        # Running statistics (batch normalisation) stay where init_params starts them: they have no gradient.
        params = {k: v + (rng.normal(scale=0.3, size=v.shape) if k in numpy_module.PARAMS else 0.0)
                  for k, v in numpy_module.init_params(2).items()}
        X = rng.normal(size=(9, numpy_module.INPUTS))
        outputs = spec["layers"][-1]["units"]
        Y = np.eye(outputs)[rng.integers(0, outputs, 9)] if spec["layers"][-1]["activation"] == "softmax" \
            else rng.uniform(0.05, 0.95, size=(9, outputs))
        want_value, want = numpy_module.loss_and_grad(params, X, Y)
        value, grads = cupy_module.loss_and_grad(params, X, Y)
        against_numpy = max([_relative(value, want_value)] + [_relative(cp.asnumpy(grads[k]), want[k]) for k in want])
        against_differences = 0.0
        for key in want:
            array = params[key]
            numeric = np.zeros_like(array)
            for index in np.ndindex(array.shape):
                step = 1e-6 * max(1.0, abs(array[index]))
                up, down = array.copy(), array.copy()
                up[index] += step
                down[index] -= step
                numeric[index] = (cupy_module.loss({**params, key: up}, X, Y)
                                  - cupy_module.loss({**params, key: down}, X, Y)) / (2 * step)
            against_differences = max(against_differences, _relative(cp.asnumpy(grads[key]), numeric))
        good = against_numpy <= 1e-12 and against_differences <= 1e-6
        all_good &= good
        print(f"{label:34} {against_numpy:16.2e} {against_differences:16.2e}  {'ok' if good else 'FAILED'}")
    print()
    return all_good


def _wide_problem(dtype, batch):
    numpy_module = load_module_from_source(generate_module(WIDE), "np_wide")
    rng = np.random.default_rng(0)
    params = {k: v.astype(dtype) for k, v in numpy_module.init_params(0).items()}
    X = rng.normal(size=(batch, WIDE["inputs"])).astype(dtype)
    Y = np.eye(10, dtype=dtype)[rng.integers(0, 10, batch)]
    return params, X, Y


def cupy_step(params, X, Y):
    module = load_module_from_source(generate_cupy_module(WIDE), "cupy_wide")
    params = {k: cp.asarray(v) for k, v in params.items()}
    X, Y = cp.asarray(X), cp.asarray(Y)
    work = module._workspace("step", X.shape[0], X.dtype)

    def step():
        return module._loss_and_grad_into(params, X, Y, work)  # float() of the loss waits for the GPU

    def gradients():
        value, grads = module.loss_and_grad(params, X, Y)
        return value, {k: cp.asnumpy(v) for k, v in grads.items()}

    return step, gradients


def jax_step(params, X, Y):
    try:
        import jax
    except ImportError:
        return "not installed"
    jax.config.update("jax_enable_x64", True)
    # Full float32 products, as cuBLAS gives CuPy and PyTorch by default (JAX would use TF32 on recent GPUs).
    jax.config.update("jax_default_matmul_precision", "highest")
    import jax.numpy as jnp
    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError:
        return "no GPU for JAX (install jax[cuda12])"
    params = {k: jax.device_put(v, gpu) for k, v in params.items()}
    X, Y = jax.device_put(X, gpu), jax.device_put(Y, gpu)

    def loss(p):
        A1 = jnp.maximum(X @ p["W1"] + p["b1"], 0)
        A2 = jnp.maximum(A1 @ p["W2"] + p["b2"], 0)
        Z3 = A2 @ p["W3"] + p["b3"]
        return -jnp.sum(Y * jax.nn.log_softmax(Z3, axis=1)) / X.shape[0]

    compiled = jax.jit(jax.value_and_grad(loss))

    def step():
        value, grads = compiled(params)
        jax.block_until_ready(grads)
        return float(value)

    def gradients():
        value, grads = compiled(params)
        return float(value), {k: np.asarray(v) for k, v in grads.items()}

    return step, gradients


def torch_step(params, X, Y):
    try:
        import torch
    except ImportError:
        return "not installed"
    if not torch.cuda.is_available():
        return "no GPU for PyTorch (install a CUDA build)"
    params = {k: torch.tensor(v, device="cuda", requires_grad=True) for k, v in params.items()}
    X, Y = torch.tensor(X, device="cuda"), torch.tensor(Y, device="cuda")

    def loss():
        A1 = torch.relu(X @ params["W1"] + params["b1"])
        A2 = torch.relu(A1 @ params["W2"] + params["b2"])
        Z3 = A2 @ params["W3"] + params["b3"]
        return -torch.sum(Y * torch.log_softmax(Z3, dim=1)) / X.shape[0]

    def step():
        for value in params.values():
            value.grad = None
        value = loss()
        value.backward()
        torch.cuda.synchronize()
        return float(value)

    def gradients():
        value = step()
        return value, {k: v.grad.cpu().numpy() for k, v in params.items()}

    return step, gradients


def time_wide(rounds: int, steps: int, batch: int) -> None:
    print(f"2. One step (loss and gradient) of 784-1024-1024-10, batch {batch}: median ms per step over {rounds} "
          f"rounds of {steps} steps\n")
    print(f"{'implementation':34} {'dtype':8} {'ms/step':>10} {'vs CuPy module':>15}  {'loss':>9}  "
          "gradient vs CuPy module's")
    for dtype in (np.float32, np.float64):
        params, X, Y = _wide_problem(dtype, batch)
        contenders = {"CuPy module (generated)": cupy_step(params, X, Y),
                      "JAX, jit(value_and_grad)": jax_step(params, X, Y),
                      "PyTorch autograd": torch_step(params, X, Y)}
        runnable = {name: made for name, made in contenders.items() if not isinstance(made, str)}
        times = {name: [] for name in runnable}
        for step, _ in runnable.values():
            for _ in range(3):  # compilation, cuBLAS plans, memory pools
                step()
        _synchronize()
        for _ in range(rounds):
            for name, (step, _) in runnable.items():
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                times[name].append((time.perf_counter() - start) / steps * 1e3)
        reference = statistics.median(times["CuPy module (generated)"])
        _, reference_grads = runnable["CuPy module (generated)"][1]()
        for name, made in contenders.items():
            if isinstance(made, str):
                print(f"{name:34} {np.dtype(dtype).name:8} {made}")
                continue
            median = statistics.median(times[name])
            value, grads = made[1]()
            apart = max(_relative(grads[k], reference_grads[k]) for k in reference_grads)
            print(f"{name:34} {np.dtype(dtype).name:8} {median:10.3f} {median / reference:14.2f}x  {value:9.6f}  "
                  f"{apart:.1e}")
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8192)
    args = parser.parse_args(argv)
    device = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    print(f"GPU: {device['name'].decode()}, CuPy {cp.__version__}\n")
    good = check_small_networks()
    time_wide(args.rounds, args.steps, args.batch)
    if not good:
        print("FAILED: the CuPy module's gradient disagrees on the GPU (see table 1)")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
