"""Running statistics for a generated module whose layers are batch-normalised: checking batches, training steps.

A batch-normalised layer normalises by its batch's mean and variance while training and by running statistics
in evaluation. The running statistics are stored in the parameter dict beside the parameters (STATISTICS names
them, with their momentum) but have no gradient: each training step moves them towards the batch's statistics,
running = (1 - momentum) * running + momentum * batch, as PyTorch's BatchNorm1d does (the variance unbiased).
Copied only into modules with batch normalisation.
"""

from __future__ import annotations


def check_batch(rows, training):
    """ValueError when a batch of `rows` samples is to be normalised by its own statistics with fewer than 2."""
    if training and rows < 2:
        raise ValueError(f"X: {rows} sample(s) in training mode, but batch normalisation normalises each unit over "
                         "the batch's samples, and one sample has no variance; give 2 samples or more")


def check_batch_sizes(rows, batch_size):
    """Whether every step of a run on `rows` samples takes them all; ValueError when some batch would hold
    one sample (a data set of one row, batch_size 1, or a last batch of one), which has no variance."""
    why = "batch normalisation normalises each unit over a batch's samples, and one sample has no variance"
    if rows < 2:
        raise ValueError(f"X: {rows} row(s) of data, but {why}; train on 2 rows or more")
    full_batch = batch_size is None or batch_size >= rows
    if not full_batch and batch_size < 2:
        raise ValueError(f"batch_size: {batch_size}, but {why}; use batch_size = 2 or more")
    if not full_batch and rows % batch_size == 1:
        raise ValueError(f"batch_size: {batch_size} leaves a last batch of 1 of the {rows} rows, but {why}; "
                         "use a batch_size that leaves none or 2 or more over")
    return full_batch


def moved(running, batch, momentum):
    """One step of a running statistic towards the batch's: (1 - momentum) * running + momentum * batch.
    Array methods only, so that a GPU's arrays move on the GPU."""
    return (1.0 - momentum) * running + momentum * batch.astype(running.dtype, copy=False)


class RunningStatistics:
    """A training step's gradient in training mode, and the running statistics moved once per step taken.

    loss_and_grad(params, X, Y, [masks,] training) returns the loss, the gradients and, while training, the
    batch's statistics by the names of the running ones. With mini-batches each step moves the running
    statistics at once. With full batches the training loop asks for the next step's gradient when it
    measures the loss after an epoch, and takes no step after the last one: the batch's statistics are then
    held until the next step is asked for, so that after E epochs the running statistics have moved E times,
    as PyTorch's do after E training steps, and each step returns the loss in evaluation mode.
    """

    def __init__(self, loss, momenta, full_batch):
        self.loss, self.momenta, self.full_batch = loss, momenta, full_batch
        self.pending = None

    def move(self, params, statistics):
        for name, momentum in self.momenta.items():
            params[name] = moved(params[name], statistics[name], momentum)

    def allocating(self, loss_and_grad):
        """The training loop's step: loss_and_grad(params, X, Y) (and the masks, for a network with dropout)."""
        def step(params, X, Y, *masks):
            if self.pending is not None:
                self.move(params, self.pending)
                self.pending = None
            value, grads, statistics = loss_and_grad(params, X, Y, *masks, True)
            if not self.full_batch:
                self.move(params, statistics)
                return value, grads
            self.pending = statistics
            return self.loss(params, X, Y), grads

        return step

    def in_place(self, loss_and_grad_into):
        """The same for a step that writes into a workspace: loss_and_grad_into(params, X, Y, work) (and the masks),
        which the training flag follows as it follows the masks above."""
        return self.allocating(loss_and_grad_into)
