"""One training loop per implementation, each timed around its loop only.

Every function takes (workload, X, Y, params) with X, Y already in the workload's dtype and
returns (seconds, compile_seconds, final_params, final_loss). Mini-batch runs gather each batch's rows
from the unshuffled data inside the timed loop, as training that reshuffles every epoch must; symbp's
own train() does its shuffling itself, with the same order.

Each one gives what symbp's train() gives: the parameters and the loss on the whole training set after
every epoch. In full-batch training each step's forward pass yields the loss of the epoch before it, so
only the last epoch's is computed again; a mini-batch epoch ends with one forward pass over the whole
set. The loss of the last epoch is returned, and run.py checks it against symbp's.
"""

from __future__ import annotations

import time

import numpy as np


def _coefficient(workload, rows):
    loss = workload.spec["loss"]
    return loss["scale"] / rows if loss["reduction"] == "mean" else loss["scale"]


def _activations(workload):
    return [layer["activation"] for layer in workload.spec["layers"]]


def _batches(workload, n):
    """The rows of each step: the whole set, or the workload's shuffled order cut into batches."""
    if workload.batch_size is None:
        return [slice(None)] * workload.steps
    order = workload.batch_order(n)
    return [order[start:start + workload.batch_size] for start in range(0, n, workload.batch_size)]


def symbp(workload, X, Y, params):
    from symbp.checks.gradients import load_module_from_source
    from symbp.render.code.numpy_module import generate_module

    started = time.perf_counter()
    module = load_module_from_source(generate_module(workload.spec), workload.spec["name"])
    generation = time.perf_counter() - started
    epochs = 1 if workload.batch_size else workload.steps
    started = time.perf_counter()
    final, history = module.train(params, X, Y, learning_rate=workload.learning_rate, epochs=epochs,
                                  batch_size=workload.batch_size, seed=0, optimizer="gd")
    return time.perf_counter() - started, generation, final, history["loss"][-1]


def symbp_saved(workload, X, Y, params):
    """A module generated earlier (by another version of symbp, say), read from the folder named by the
    environment variable SYMBP_SAVED_MODULES as SPEC_NAME.py: before and after a change, in one run.
    Left out when the variable is not set."""
    import os
    from pathlib import Path

    from symbp.checks.gradients import load_module_from_source

    folder = os.environ.get("SYMBP_SAVED_MODULES")
    if not folder:
        return None
    source = (Path(folder) / f"{workload.spec['name']}.py").read_text()
    module = load_module_from_source(source, f"saved_{workload.spec['name']}")
    epochs = 1 if workload.batch_size else workload.steps
    started = time.perf_counter()
    final, history = module.train(params, X, Y, learning_rate=workload.learning_rate, epochs=epochs,
                                  batch_size=workload.batch_size, seed=0, optimizer="gd")
    return time.perf_counter() - started, 0.0, final, history["loss"][-1]


def _array_api_train(workload, X, Y, params, source, library):
    """The array-API module's own train() on the arrays of library ("jax" or "torch"). On JAX a first call,
    outside the timing, compiles train's programs (reported as compile time); the timed call reuses them, as
    the jax_jit loop reuses its compiled step. A module that recompiles on every call pays it in the timing."""
    from symbp.checks.gradients import load_module_from_source

    module = load_module_from_source(source, f"xp_{library}_{workload.spec['name']}")
    if library == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        convert, ready = jnp.asarray, jax.block_until_ready
    else:
        import torch

        convert, ready = torch.from_numpy, lambda arrays: arrays
    x, y = convert(X), convert(Y)
    start = {k: convert(v.copy()) for k, v in params.items()}
    settings = {"learning_rate": workload.learning_rate, "epochs": 1 if workload.batch_size else workload.steps,
                "batch_size": workload.batch_size, "seed": 0, "optimizer": "gd"}
    compile_seconds = 0.0
    if library == "jax":
        started = time.perf_counter()
        ready(module.train(start, x, y, **settings)[0])
        compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    final, history = module.train(start, x, y, **settings)
    ready(final)
    seconds = time.perf_counter() - started
    return seconds, compile_seconds, {k: np.asarray(v) for k, v in final.items()}, history["loss"][-1]


def _array_api_source(workload, saved):
    """The array-API module's source: generated now, or (saved) read from SYMBP_SAVED_MODULES as
    SPEC_NAME_array_api.py; None when saved and the variable is not set."""
    import os
    from pathlib import Path

    if not saved:
        from symbp.render.code.backends.array_api import generate_array_api_module

        return generate_array_api_module(workload.spec)
    folder = os.environ.get("SYMBP_SAVED_MODULES")
    return (Path(folder) / f"{workload.spec['name']}_array_api.py").read_text() if folder else None


def symbp_jax(workload, X, Y, params):
    return _array_api_train(workload, X, Y, params, _array_api_source(workload, saved=False), "jax")


def symbp_jax_saved(workload, X, Y, params):
    source = _array_api_source(workload, saved=True)
    return None if source is None else _array_api_train(workload, X, Y, params, source, "jax")


def symbp_torch(workload, X, Y, params):
    return _array_api_train(workload, X, Y, params, _array_api_source(workload, saved=False), "torch")


def symbp_torch_saved(workload, X, Y, params):
    source = _array_api_source(workload, saved=True)
    return None if source is None else _array_api_train(workload, X, Y, params, source, "torch")


def _numpy_forward(kinds, p, x):
    a = x
    for index, kind in enumerate(kinds, start=1):
        z = a @ p[f"W{index}"]
        if f"b{index}" in p:
            z += p[f"b{index}"]
        a = 1 / (1 + np.exp(-z)) if kind == "sigmoid" else np.exp(z)
    return a


def handwritten(workload, X, Y, params):
    """Careful NumPy by hand: reused activations, derivatives through outputs, no recomputation."""
    kinds = _activations(workload)
    names = list(params)
    p = {k: v.copy() for k, v in params.items()}
    lr = workload.learning_rate
    losses = []
    started = time.perf_counter()
    for rows in _batches(workload, X.shape[0]):
        x, y = X[rows], Y[rows]
        c = _coefficient(workload, x.shape[0])
        outputs = [x]
        for index, kind in enumerate(kinds, start=1):
            z = outputs[-1] @ p[f"W{index}"]
            if f"b{index}" in p:
                z += p[f"b{index}"]
            outputs.append(1 / (1 + np.exp(-z)) if kind == "sigmoid" else np.exp(z))
        a = outputs[-1]
        error = a - y
        if workload.batch_size is None:
            losses.append(c * float(np.vdot(error, error)))
        delta = (2 * c) * error * (a * (1 - a) if kinds[-1] == "sigmoid" else a)
        for index in range(len(kinds), 0, -1):
            grad_w = outputs[index - 1].T @ delta
            if f"b{index}" in p:
                p[f"b{index}"] -= lr * delta.sum(axis=0)
            if index > 1:
                hidden = outputs[index - 1]
                delta = (delta @ p[f"W{index}"].T) * hidden * (1 - hidden)
            p[f"W{index}"] -= lr * grad_w
    error = _numpy_forward(kinds, p, X) - Y
    final_loss = _coefficient(workload, X.shape[0]) * float(np.vdot(error, error))
    assert names == list(p)
    return time.perf_counter() - started, 0.0, p, final_loss


def lab_style(workload, X, Y, params):
    """The lab's own loop for its 3-2-1 network: one column per neuron, concatenated."""
    if workload.name != "W1":
        return None
    w1_1, w1_2 = params["W1"][:, [0]].copy(), params["W1"][:, [1]].copy()
    w2_1 = params["W2"].copy()
    eta = workload.learning_rate
    started = time.perf_counter()
    for _ in range(workload.steps):
        z1_1, z1_2 = X @ w1_1, X @ w1_2
        a1_1, a1_2 = 1 / (1 + np.exp(-z1_1)), 1 / (1 + np.exp(-z1_2))
        a1 = np.concatenate((a1_1, a1_2), axis=1)
        z2_1 = a1 @ w2_1
        y_hat = np.exp(z2_1)
        delta2_1 = 2 * (y_hat - Y) * np.exp(z2_1)
        delta1_1 = w2_1[0] * delta2_1 * a1_1 * (1 - a1_1)
        delta1_2 = w2_1[1] * delta2_1 * a1_2 * (1 - a1_2)
        w2_1 -= eta * np.mean(delta2_1 * a1, axis=0).reshape(2, 1)
        w1_1 -= eta * np.mean(delta1_1 * X, axis=0).reshape(3, 1)
        w1_2 -= eta * np.mean(delta1_2 * X, axis=0).reshape(3, 1)
    seconds = time.perf_counter() - started
    return seconds, 0.0, {"W1": np.hstack([w1_1, w1_2]), "W2": w2_1}, None


def floor(workload, X, Y, params):
    """Only the matrix products of training, into preallocated buffers: a lower bound. Mini-batch training
    ends with the forward products over the whole set (the epoch's loss)."""
    kinds = _activations(workload)
    weights = [params[f"W{i}"] for i in range(1, len(kinds) + 1)]
    size = workload.batch_size or X.shape[0]
    outs = [np.empty((size, w.shape[1]), X.dtype) for w in weights]
    grads = [np.empty_like(w) for w in weights]
    backs = [np.empty((size, w.shape[0]), X.dtype) for w in weights]
    started = time.perf_counter()
    for rows in _batches(workload, X.shape[0]):
        n = X[rows].shape[0] if isinstance(rows, slice) else len(rows)
        x = X[:n]
        previous = x
        for w, out in zip(weights, outs):
            np.matmul(previous, w, out=out[:n])
            previous = out[:n]
        for index in range(len(weights) - 1, -1, -1):
            inputs = x if index == 0 else outs[index - 1][:n]
            np.matmul(inputs.T, outs[index][:n], out=grads[index])
            if index:
                np.matmul(outs[index][:n], weights[index].T, out=backs[index][:n])
    if workload.batch_size:
        previous = X
        for w in weights:
            previous = previous @ w
    return time.perf_counter() - started, 0.0, None, None


def torch_eager(workload, X, Y, params):
    import torch

    tx, ty = torch.from_numpy(X), torch.from_numpy(Y)
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    kinds = _activations(workload)
    lr = workload.learning_rate

    def loss(x, y):
        a = x
        for index, kind in enumerate(kinds, start=1):
            z = a @ p[f"W{index}"]
            if f"b{index}" in p:
                z = z + p[f"b{index}"]
            a = torch.sigmoid(z) if kind == "sigmoid" else torch.exp(z)
        return _coefficient(workload, x.shape[0]) * ((a - y) ** 2).sum()

    losses = []
    started = time.perf_counter()
    batches = [torch.from_numpy(r) if isinstance(r, np.ndarray) else r for r in _batches(workload, X.shape[0])]
    for rows in batches:
        value = loss(tx[rows], ty[rows])
        value.backward()
        if workload.batch_size is None:
            losses.append(value.detach())
        with torch.no_grad():
            for parameter in p.values():
                parameter -= lr * parameter.grad
                parameter.grad = None
    with torch.no_grad():
        final_loss = float(loss(tx, ty))
    seconds = time.perf_counter() - started
    return seconds, 0.0, {k: v.detach().numpy() for k, v in p.items()}, final_loss


def jax_jit(workload, X, Y, params):
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    kinds = _activations(workload)
    lr = workload.learning_rate
    scale = workload.spec["loss"]["scale"]
    mean = workload.spec["loss"]["reduction"] == "mean"

    def loss(p, x, y):
        a = x
        for index, kind in enumerate(kinds, start=1):
            z = a @ p[f"W{index}"]
            if f"b{index}" in p:
                z = z + p[f"b{index}"]
            a = jax.nn.sigmoid(z) if kind == "sigmoid" else jnp.exp(z)
        total = scale * jnp.sum((a - y) ** 2)
        return total / x.shape[0] if mean else total

    @jax.jit
    def step(p, x, y):  # full batch: the loss before the step comes with its gradient
        value, grads = jax.value_and_grad(loss)(p, x, y)
        return {k: p[k] - lr * grads[k] for k in p}, value

    @jax.jit
    def batch_step(p, data, targets, rows):
        grads = jax.grad(loss)(p, data[rows], targets[rows])
        return {k: p[k] - lr * grads[k] for k in p}

    whole_set_loss = jax.jit(loss)
    device_x, device_y = jnp.asarray(X), jnp.asarray(Y)
    batches = _batches(workload, X.shape[0])
    p = {k: jnp.asarray(v) for k, v in params.items()}
    started = time.perf_counter()
    if workload.batch_size:
        batches = [jnp.asarray(rows) for rows in batches]
        for rows in {rows.shape: rows for rows in batches}.values():  # one compilation per batch shape
            jax.block_until_ready(batch_step(p, device_x, device_y, rows))
    else:
        jax.block_until_ready(step(p, device_x, device_y))
    jax.block_until_ready(whole_set_loss(p, device_x, device_y))
    compile_seconds = time.perf_counter() - started
    losses = []
    started = time.perf_counter()
    for rows in batches:
        if workload.batch_size:
            p = batch_step(p, device_x, device_y, rows)
        else:
            p, value = step(p, device_x, device_y)
            losses.append(value)
    final_loss = float(whole_set_loss(p, device_x, device_y))
    jax.block_until_ready(p)
    return time.perf_counter() - started, compile_seconds, {k: np.asarray(v) for k, v in p.items()}, final_loss


def hips_autograd(workload, X, Y, params):
    import autograd.numpy as anp
    from autograd import value_and_grad

    kinds = _activations(workload)
    lr = workload.learning_rate

    def loss(p, x, y):
        a = x
        for index, kind in enumerate(kinds, start=1):
            z = anp.dot(a, p[f"W{index}"])
            if f"b{index}" in p:
                z = z + p[f"b{index}"]
            a = 1 / (1 + anp.exp(-z)) if kind == "sigmoid" else anp.exp(z)
        return _coefficient(workload, x.shape[0]) * anp.sum((a - y) ** 2)

    gradient = value_and_grad(loss)
    p = {k: v.copy() for k, v in params.items()}
    losses = []
    started = time.perf_counter()
    for rows in _batches(workload, X.shape[0]):
        value, grads = gradient(p, X[rows], Y[rows])
        losses.append(value)
        p = {k: p[k] - lr * grads[k] for k in p}
    final_loss = float(loss(p, X, Y))
    return time.perf_counter() - started, 0.0, p, final_loss


IMPLEMENTATIONS = {
    "symbp": symbp,
    "symbp_saved": symbp_saved,
    "handwritten": handwritten,
    "lab_style": lab_style,
    "floor": floor,
    "torch": torch_eager,
    "jax_jit": jax_jit,
    "symbp_jax": symbp_jax,
    "symbp_jax_saved": symbp_jax_saved,
    "symbp_torch": symbp_torch,
    "symbp_torch_saved": symbp_torch_saved,
    "autograd": hips_autograd,
}
