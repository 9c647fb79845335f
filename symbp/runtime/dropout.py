"""Dropout masks for a generated module whose layers drop their inputs: drawing, checking, training steps.

Inverted dropout: a mask entry is 0 with the layer's rate and 1 / (1 - rate) otherwise, so evaluation (no
masks, or masks of ones) needs no rescaling. Masks are keyed by name ("M2" multiplies layer 2's inputs) and
hold a row per sample and a column per input of their layer. Copied only into modules with dropout.
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


def checked_masks(masks, rates, widths, rows, dtype):
    """masks as arrays of dtype after checking each one's name and shape; None gives masks of ones
    (evaluation mode: every input kept, unscaled)."""
    if masks is None:
        return {name: np.ones((rows, widths[name]), dtype) for name in rates}
    missing = [name for name in rates if name not in masks]
    unknown = [name for name in masks if name not in rates]
    if missing or unknown:
        raise ValueError(f"masks: expected exactly {', '.join(rates)} (one per dropout layer), "
                         f"{'missing ' + ', '.join(missing) if missing else 'got also ' + ', '.join(map(str, unknown))}"
                         "; draw them with draw_masks(rng, n_samples)")
    checked = {}
    for name in rates:
        array = np.asarray(masks[name])
        if array.shape != (rows, widths[name]):
            raise ValueError(f"masks[{name!r}]: expected shape {(rows, widths[name])}, a row per sample, "
                             f"got {array.shape}")
        if array.dtype.kind not in "biuf":
            raise ValueError(f"masks[{name!r}]: expected numbers, got an array of dtype {array.dtype}")
        checked[name] = array.astype(dtype, copy=False)
    return checked


def dropout_step(loss, loss_and_grad, rates, widths, seed):
    """loss_and_grad(params, X, Y) for the training loop: the gradient with fresh masks each call, drawn
    from mask_generator(seed) (made at the first call: a Trainable that only measures losses draws nothing).

    The loss it returns is the network's own (evaluation mode, no masks), the loss train()'s history
    records, so a full-batch run's history means what a mini-batch run's does; it costs one forward pass.
    """
    generator = []

    def step(params, X, Y):
        if not generator:
            generator.append(mask_generator(seed))
        dtype = np.result_type(*params.values())
        dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
        masks = dropout_masks(generator[0], rates, widths, X.shape[0], dtype)
        grads = loss_and_grad(params, X, Y, masks)[1]
        return loss(params, X, Y), grads

    return step
