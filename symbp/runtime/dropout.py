"""Dropout masks in a generated NumPy module whose layers drop their inputs: checking them, training steps.

The masks are drawn by symbp.runtime.masks (copied before this). Copied only into NumPy modules with dropout.
"""

import numpy as np

from symbp.runtime.masks import dropout_masks, mask_generator


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


class DropoutSteps:
    """The training loop's two routes to a step's gradient, with fresh masks from one generator.

    Both draw a batch's masks alike (a row per sample, then laid out as the in-place step's arrays), so a
    run's masks do not depend on which route each batch takes. The loss each returns is the network's own
    (evaluation mode, no masks), the loss train()'s history records, so a full-batch run's history means
    what a mini-batch run's does; it costs one forward pass per step. The generator is made at the first
    step: a Trainable that only measures losses draws nothing. to_device: for arrays NumPy does not hold (a
    GPU's), what moves each drawn mask to where they are.
    """

    def __init__(self, loss, rates, widths, seed, sample_axis, to_device=None):
        self.loss, self.rates, self.widths, self.seed = loss, rates, widths, seed
        self.sample_axis, self.generator, self.to_device = sample_axis, None, to_device

    def masks(self, params, rows):
        if self.generator is None:
            self.generator = mask_generator(self.seed)
        dtype = np.result_type(*(array.dtype for array in params.values()))
        masks = dropout_masks(self.generator, self.rates, self.widths, rows, dtype if dtype.kind == "f" else np.float64)
        return masks if self.to_device is None else {name: self.to_device(mask) for name, mask in masks.items()}

    def allocating(self, loss_and_grad):
        """loss_and_grad(params, X, Y) on a sample per row."""
        def step(params, X, Y):
            grads = loss_and_grad(params, X, Y, self.masks(params, X.shape[0]))[1]
            return self.loss(params, X, Y), grads

        return step

    def in_place(self, loss_and_grad_into):
        """loss_and_grad_into(params, X, Y, work) on the in-place step's layout (a sample per column with
        sample_axis 1)."""
        def step(params, X, Y, work):
            masks = self.masks(params, X.shape[self.sample_axis])
            if self.sample_axis == 1:
                masks = {name: mask.T for name, mask in masks.items()}
            grads = loss_and_grad_into(params, X, Y, work, masks)[1]
            rows = (X.T, Y.T) if self.sample_axis == 1 else (X, Y)
            return self.loss(params, *rows), grads

        return step
