"""Batch normalisation's running statistics for the array-API module: batches checked, statistics moved purely.

The NumPy module's ``symbp.runtime.batchnorm`` moves the running statistics by writing them into the parameter
dict; the array-API module's functions write into nothing (jax.jit compiles them), so a training step returns
the moved statistics as new arrays, and train() puts them into the next step's parameters. The checks are the
NumPy module's, word for word (a test keeps them so). Copied only into array-API modules with batch normalisation.
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


def moved_statistics(params, batch, momenta):
    """Each running statistic in params one step towards the batch's, (1 - momentum) * running + momentum * batch
    (PyTorch's BatchNorm1d, the variance unbiased), as new arrays by name; params is left as it was."""
    return {name: (1.0 - momentum) * params[name] + momentum * batch[name] for name, momentum in momenta.items()}
