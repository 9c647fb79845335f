"""The training loop of a generated NumPy module: batches, steps, history, stopping and divergence.

A generated module's train() checks its arguments and calls run_training with a Trainable: the
module's own step functions and sizes, passed as arguments rather than read from globals, so this
loop is the same code in every module and runs here on any hand-written loss_and_grad.
"""

import math
import warnings

import numpy as np

from symbp.runtime.optimizers import (
    OPTIMIZERS,
    adam_moment,
    adam_parameter,
    adam_rate,
    adam_second_moment,
    descent,
    momentum_parameter,
    momentum_velocity,
)

# A batch is stepped in preallocated arrays once it has this many entries in the network's widest layer.
IN_PLACE_FROM = 4096


class Trainable:
    """A network as the training loop sees it.

    loss(params, X, Y) and loss_and_grad(params, X, Y) -> (loss, plain gradients) take checked arrays
    with a sample per row and allocate what they need. The in-place path, for batches of at least
    IN_PLACE_FROM entries in the widest layer: workspace(rows, dtype) allocates the arrays of one
    step; loss_and_grad_into(params, X, Y, work) computes what loss_and_grad does into them (the
    gradients it returns are work's own arrays, overwritten by the next call), and
    loss_into(params, X, Y, work) the loss alone, from the forward pass only, into
    loss_workspace(rows, dtype). With sample_axis 1 the in-place functions take X and Y transposed,
    a sample per column. likely_causes: besides the learning rate, why the loss may stop being finite.
    For arrays that NumPy does not hold (a GPU's): gather(array, rows, work, name, axis), the batch's
    samples (rows: NumPy indices) as gather below copies them, and sqrt, the square root adam takes.
    """

    def __init__(self, loss, loss_and_grad, loss_and_grad_into=None, workspace=None, loss_into=None,
                 loss_workspace=None, widest=1, sample_axis=0, likely_causes=(), gather=None, sqrt=np.sqrt):
        self.loss, self.loss_and_grad = loss, loss_and_grad
        self.loss_and_grad_into, self.workspace = loss_and_grad_into, workspace
        self.loss_into, self.loss_workspace = loss_into, loss_workspace
        self.widest, self.sample_axis, self.likely_causes = widest, sample_axis, likely_causes
        self.gather, self.sqrt = gather, sqrt


def optimizer_update(optimizer, learning_rate, momentum, beta1, beta2, epsilon, sqrt=np.sqrt):
    """update(params, grads, step): applies step number `step` (from 1) of the optimizer to the dict
    params, replacing its arrays; grads are plain gradients. The velocity and moments live in the closure."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown {optimizer!r}; choose gd, sgd, momentum or adam")
    # The running averages start at zero: a scalar 0 stands for arrays of zeros of each parameter's shape and dtype.
    velocity, moment, second = {}, {}, {}

    def gradient_step(params, grads, step):
        for name, gradient in grads.items():
            params[name] = descent(params[name], gradient, learning_rate)

    def momentum_step(params, grads, step):
        for name, gradient in grads.items():
            velocity[name] = momentum_velocity(velocity.get(name, 0.0), gradient, learning_rate, momentum)
            params[name] = momentum_parameter(params[name], velocity[name])

    def adam_step(params, grads, step):
        rate = adam_rate(learning_rate, beta1, beta2, step)
        for name, gradient in grads.items():
            moment[name] = adam_moment(moment.get(name, 0.0), gradient, beta1)
            second[name] = adam_second_moment(second.get(name, 0.0), gradient, beta2)
            params[name] = adam_parameter(params[name], rate, moment[name], second[name], epsilon, sqrt)

    return {"momentum": momentum_step, "adam": adam_step}.get(optimizer, gradient_step)


def batches(n, batch_size, rng):
    """Index slices for one epoch: the whole set, or shuffled mini-batches."""
    if batch_size is None or batch_size >= n:
        return [slice(None)]
    order = rng.permutation(n)
    return [order[start:start + batch_size] for start in range(0, n, batch_size)]


def gather(array, rows, work, name, axis):
    """The batch's samples of array: the array itself for a full batch, else copied into work[name]."""
    if isinstance(rows, slice):
        return array
    if name not in work:
        shape = list(array.shape)
        shape[axis] = len(rows)
        work[name] = np.empty(shape, array.dtype)
    # mode="clip" lets take write straight into the array rather than through a buffer; rows are in range.
    return np.take(array, rows, axis=axis, out=work[name], mode="clip")


def laid_out(X, Y, sample_axis):
    """X and Y as the in-place functions read them: a sample per column when sample_axis is 1."""
    if sample_axis == 1:
        return np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T)
    return X, Y


def floating_type(*arrays):
    """The dtype of the in-place arrays: the arrays' common type, or float64 when that is not floating (int data)."""
    dtype = np.result_type(*(array.dtype for array in arrays))
    return dtype if dtype.kind == "f" else np.dtype(np.float64)


def in_place(network, rows):
    """True when a batch of `rows` samples is worth stepping in preallocated arrays."""
    return network.loss_and_grad_into is not None and rows * network.widest >= IN_PLACE_FROM


class WholeSetLoss:
    """The loss on all of a data set at the current params: what the module's loss() returns, to the last digit.

    loss() and train() take the same route for a set of a given size: the allocating loss for small
    sets, the forward pass into preallocated arrays (allocated once here, reused every epoch) for large ones.
    """

    def __init__(self, network, params, X, Y):
        self.network, self.params, self.X, self.Y = network, params, X, Y
        self.work = self.step_data = None

    def __call__(self):
        network, X, Y = self.network, self.X, self.Y
        if network.loss_into is None or not in_place(network, X.shape[0]):
            return network.loss(self.params, X, Y)
        if self.work is None:
            self.step_data = laid_out(X, Y, network.sample_axis)
            self.work = network.loss_workspace(X.shape[0], floating_type(X, Y, *self.params.values()))
        return network.loss_into(self.params, *self.step_data, self.work)


def whole_set_loss(network, params, X, Y):
    """The loss on all of (X, Y), by the route train() measures it: the module's loss() calls this."""
    return WholeSetLoss(network, params, X, Y)()


class Steps:
    """The loss and plain gradients on a batch of (X, Y), by the cheapest route for its size.

    Small batches go through the allocating loss_and_grad (fewer calls beat many calls with out=);
    larger ones through the in-place one, with one workspace per batch size (a last, smaller batch
    gets its own). params is read at every call: the optimizer replaces its arrays between steps.
    """

    def __init__(self, network, params, X, Y):
        self.network, self.params, self.X, self.Y = network, params, X, Y
        self.dtype = floating_type(X, Y, *params.values())
        self.workspaces, self.step_data = {}, None

    def __call__(self, rows):
        X, Y, network = self.X, self.Y, self.network
        size = X.shape[0] if isinstance(rows, slice) else len(rows)
        if not in_place(network, size):
            return network.loss_and_grad(self.params, X[rows], Y[rows])
        if self.step_data is None:
            # Transposed once, by the first call that needs it: runs whose batches are all tiny never copy.
            self.step_data = laid_out(X, Y, network.sample_axis)
        X_step, Y_step = self.step_data
        if size not in self.workspaces:
            self.workspaces[size] = network.workspace(size, self.dtype)
        work = self.workspaces[size]
        axis, take = network.sample_axis, network.gather or gather
        X_batch, Y_batch = take(X_step, rows, work, "X_batch", axis), take(Y_step, rows, work, "Y_batch", axis)
        return network.loss_and_grad_into(self.params, X_batch, Y_batch, work)


def run_training(network, params, X, Y, *, learning_rate, epochs, batch_size, seed, optimizer, momentum, beta1, beta2,
                 epsilon, tolerance, validation=None, patience=None, callback=None):
    """Trains params (a dict of arrays the caller owns; its entries are replaced) on checked arrays X and Y.

    Returns (params, history) as a generated module's train() documents them; validation is a checked
    pair (X_val, Y_val) or None. Warnings point at the caller of the caller (the module's train()).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: unknown {optimizer!r}; choose gd, sgd, momentum or adam")
    if patience is not None and (validation is None or patience < 1):
        raise ValueError(f"patience: early stopping after {patience!r} epochs needs a whole number of at least 1 "
                         "and validation=(X_val, Y_val), whose loss it watches")
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    full_batch = batch_size is None or batch_size >= n
    step_on = Steps(network, params, X, Y)
    whole_loss = WholeSetLoss(network, params, X, Y)
    validation_loss = WholeSetLoss(network, params, *validation) if validation is not None else None
    update = optimizer_update(optimizer, learning_rate, momentum, beta1, beta2, epsilon, network.sqrt)

    epoch = step = 0
    measuring = False  # True while the loss after an epoch is computed, for note_trouble
    history = {"loss": [], "stopped": "epochs", "best_epoch": None}
    if validation is not None:
        history["val_loss"] = []
    # NumPy's first floating-point complaint (overflow, invalid value), reported once rather than per step.
    trouble = []

    def note_trouble(kind, flag):
        if not trouble:
            where = f"the loss after step {step}" if measuring else f"step {step + 1}"
            trouble.append(f"'{kind}' at epoch {epoch}, {where}")

    def diverged(value):
        if epoch == 0 and not full_batch:
            check_starting_loss(whole_set_loss(network, kept, X, Y), kept, X, Y)
        warn_not_finite(epoch, step, value, learning_rate, trouble, network.likely_causes)
        history["stopped"] = "diverged"
        return kept, history

    callers_settings, callers_call = np.geterr(), np.geterrcall()
    with np.errstate(over="call", divide="call", invalid="call", call=note_trouble):
        # The last parameters whose loss on (X, Y) is finite: what a diverging run hands back. Copies,
        # so that a callback writing into params cannot change them.
        kept = {name: array.copy() for name, array in params.items()}
        if full_batch:
            # The starting loss, and the first step's gradient; each later step's loss is the epoch's before it.
            value, grads = step_on(slice(None))
            check_starting_loss(value, kept, X, Y)
        best_val_loss = math.inf
        for epoch in range(epochs):
            for rows in [slice(None)] if full_batch else batches(n, batch_size, rng):
                if not full_batch:
                    value, grads = step_on(rows)
                    if not math.isfinite(value):
                        return diverged(value)
                step += 1
                update(params, grads, step)
            measuring = True
            if full_batch:
                # The loss at the parameters this epoch ends with, and the next step's gradient.
                value, grads = step_on(slice(None))
            else:
                value = whole_loss()
            measuring = False
            if not math.isfinite(value):
                return diverged(value)
            kept = {name: array.copy() for name, array in params.items()}
            history["loss"].append(value)
            logs = {"loss": value}
            if validation is not None:
                logs["val_loss"] = validation_loss()
                history["val_loss"].append(logs["val_loss"])
                if logs["val_loss"] < best_val_loss:
                    best_val_loss, best_epoch, best = logs["val_loss"], epoch, kept
            if callback is not None:
                # The callback's arithmetic is its own business: it runs under the caller's error settings.
                with np.errstate(**callers_settings, call=callers_call):
                    stop = callback(epoch, logs, params)
                if stop:
                    history["stopped"] = "callback"
                    break
            if patience is not None and best_val_loss < math.inf and epoch - best_epoch >= patience:
                history["stopped"], history["best_epoch"] = "early_stopping", best_epoch
                params = dict(best)
                break
            losses = history["loss"]
            if tolerance is not None and len(losses) > 1 and abs(losses[-1] - losses[-2]) < tolerance:
                history["stopped"] = "tolerance"
                break
    if full_batch and history["loss"] and history["stopped"] != "early_stopping":
        # The last epoch's loss was read off a step's forward pass: loss() itself has the final word.
        with np.errstate(all="ignore"):
            history["loss"][-1] = whole_loss()
    if trouble:
        warnings.warn(f"training finished, but NumPy reported {trouble[0]}; check the result", RuntimeWarning,
                      stacklevel=3)
    return params, history


def check_starting_loss(value, params, X, Y):
    """ValueError unless the loss at the parameters training starts from is finite."""
    if math.isfinite(value):
        return
    blamed = [name for name, array in (("X", X), ("Y", Y), *params.items()) if not np.isfinite(array).all()]
    if blamed:
        where = f"{' and '.join(blamed)} {'holds' if len(blamed) == 1 else 'hold'} NaN or infinite values"
    else:
        where = "the inputs or the parameters are too large"
    raise ValueError(f"the loss at the starting parameters is {value}: {where}; train from finite, moderate values")


def warn_not_finite(epoch, step, value, learning_rate, trouble, likely_causes):
    """The RuntimeWarning of a diverged run, at the caller of the module's train()."""
    causes = [f"the learning rate {learning_rate} is too high (try {learning_rate / 10:g})", *likely_causes]
    first = f" (NumPy first reported {trouble[0]})" if trouble else ""
    warnings.warn(
        f"training stopped at epoch {epoch}, step {step}: the loss became {value}{first}. "
        f"Likely causes: {'; or '.join(causes)}. Returning the last parameters whose loss is finite.",
        RuntimeWarning,
        stacklevel=5,
    )


def save_arrays(path, arrays):
    """Writes named arrays to an .npz file."""
    np.savez(path, **arrays)


def load_arrays(path, shapes):
    """Reads the arrays named in shapes (a dict name -> shape) from an .npz file, checking each one's shape."""
    with np.load(path) as stored:
        arrays = {}
        for name, shape in shapes.items():
            if name not in stored:
                raise ValueError(f"{path}: missing parameter {name!r}")
            if stored[name].shape != shape:
                raise ValueError(f"{path}: {name} has shape {stored[name].shape}, expected {shape}")
            arrays[name] = stored[name].copy()
    return arrays
