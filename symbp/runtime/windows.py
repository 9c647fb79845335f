"""Windows over shaped inputs: every receptive field as a row (im2col), its adjoint, and max pooling's arg-max.

A window layer's input is one flat row per sample, read as (channels, *spatial) row-major. ``_patches`` turns
each sample's windows into rows of a matrix, so that a convolution is one matrix product and a pooling a
reduction along each row; ``_patches_adjoint`` sums each row's gradient back onto the input entries the window
read (overlapping windows add up). Both work on whole arrays: the only loop is over the offsets within one
window, never over samples or output positions. ``xp`` is the arrays' library, NumPy or CuPy, whose
``as_strided`` both have: a GPU's arrays stay on the GPU.
"""

from __future__ import annotations

import math

import numpy as np


def _positions(spatial, window, stride, padding) -> tuple[int, ...]:
    """The output's spatial shape: floor((size + 2 padding - window) / stride) + 1 along each axis."""
    return tuple((size + 2 * pad - width) // step + 1
                 for size, width, step, pad in zip(spatial, window, stride, padding))


def _patches(rows, shape, window, stride, padding, xp=np):
    """Each sample's windows as rows: (samples * positions, channels * window), positions and window row-major."""
    channels, *spatial = shape
    dims = len(window)
    images = rows.reshape(-1, channels, *spatial)
    if any(padding):
        images = xp.pad(images, [(0, 0), (0, 0), *((pad, pad) for pad in padding)])
    positions = _positions(spatial, window, stride, padding)
    # A view, no copy: (samples, channels, *positions, *window), a position's step the stride's multiple.
    strides = images.strides
    views = xp.lib.stride_tricks.as_strided(
        images, shape=(*images.shape[:2], *positions, *window),
        strides=(*strides[:2], *(step * each for step, each in zip(stride, strides[2:])), *strides[2:]))
    # (samples, channels, *positions, *window) -> (samples, *positions, channels, *window)
    order = (0, *range(2, 2 + dims), 1, *range(2 + dims, 2 + 2 * dims))
    return views.transpose(order).reshape(-1, channels * math.prod(window))


def _patches_adjoint(grads, shape, window, stride, padding, xp=np):
    """The gradient with respect to ``_patches``'s input, from one with respect to its rows: (samples, size)."""
    channels, *spatial = shape
    positions = _positions(spatial, window, stride, padding)
    grads = grads.reshape(-1, *positions, channels, *window)
    padded = xp.zeros((grads.shape[0], channels, *(size + 2 * pad for size, pad in zip(spatial, padding))),
                      dtype=grads.dtype)
    for offset in np.ndindex(*window):
        # Every window's entry at this offset, for all samples and positions at once.
        reached = tuple(slice(start, start + step * (count - 1) + 1, step)
                        for start, step, count in zip(offset, stride, positions))
        padded[(slice(None), slice(None), *reached)] += xp.moveaxis(grads[(Ellipsis, *offset)], -1, 1)
    inside = tuple(slice(pad, pad + size) for pad, size in zip(padding, spatial))
    return padded[(slice(None), slice(None), *inside)].reshape(grads.shape[0], -1)


def _first_max_mask(patches, xp=np):
    """1 at each row's largest entry (the first of equal ones, as PyTorch), 0 elsewhere."""
    return xp.arange(patches.shape[1]) == patches.argmax(axis=1)[:, np.newaxis]
