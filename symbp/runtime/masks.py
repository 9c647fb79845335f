"""Drawing dropout masks: the generator a training run draws from and the masks of one batch.

Inverted dropout: a mask entry is 0 with the layer's rate and 1 / (1 - rate) otherwise, so evaluation (no
masks, or masks of ones) needs no rescaling. Masks are keyed by name ("M2" multiplies layer 2's inputs) and
hold a row per sample and a column per input of their layer. Copied into every module with dropout, whatever
its array library: the masks are NumPy's draws, so a seed gives every module the same masks.
"""

import numpy as np


def mask_generator(seed):
    """The Generator a training run draws its masks from: seeded by train()'s seed, and apart from the
    stream that shuffles the batches, so that dropout does not change which samples each batch holds."""
    return np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])


def dropout_masks(rng, rates, widths, rows, dtype=np.float64):
    """A fresh mask for each dropout layer over `rows` samples, drawn from the NumPy Generator rng.

    Each entry is kept (1 / (1 - rate)) with probability 1 - rate and dropped (0) otherwise; the masks are
    drawn in the order of rates, so one generator state gives the same masks every time.
    """
    masks = {}
    for name, rate in rates.items():
        kept = rng.random((rows, widths[name])) >= rate
        masks[name] = kept.astype(dtype) / np.dtype(dtype).type(1.0 - rate)
    return masks
