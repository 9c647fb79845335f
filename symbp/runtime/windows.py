"""Windows over shaped inputs: every receptive field as a column (im2col), its adjoint, and max pooling's arg-max.

A window layer's input is one flat row per sample, read as (channels, *spatial) row-major. ``_patches`` turns
each sample's windows into columns of a matrix, one row per channel and window offset, so that a convolution is
one matrix product and a pooling a reduction down each column; ``_patches_adjoint`` adds each column's gradient
back onto the input entries its window read (overlapping windows add up). A row of the patch matrix is one
offset of every window at once, one strided slice of the whole batch: ``_patches`` copies every window in one
go from a strided view, and ``_patches_adjoint`` adds each offset's row back as one slice, so their only
loop is over the offsets within one window, never over samples or output positions.
``xp`` is the arrays' library, NumPy or CuPy, whose ``as_strided`` both have: a GPU's arrays stay on the GPU.
"""

from __future__ import annotations

import math

import numpy as np


def _positions(spatial, window, stride, padding) -> tuple[int, ...]:
    """The output's spatial shape: floor((size + 2 padding - window) / stride) + 1 along each axis."""
    return tuple((size + 2 * pad - width) // step + 1
                 for size, width, step, pad in zip(spatial, window, stride, padding))


def _reached(offset, stride, positions) -> tuple[slice, ...]:
    """The input entries that one window offset reads, over every output position: a strided slice per axis."""
    return tuple(slice(start, start + step * (count - 1) + 1, step)
                 for start, step, count in zip(offset, stride, positions))


def _patches(rows, shape, window, stride, padding, xp=np):
    """Each sample's windows as columns: (channels * window, samples * positions), both row-major."""
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
    # (samples, channels, *positions, *window) -> (channels, *window, samples, *positions): one copy, each row
    # of the result one offset of every window.
    order = (1, *range(2 + dims, 2 + 2 * dims), 0, *range(2, 2 + dims))
    return views.transpose(order).reshape(channels * math.prod(window), -1)


def _patches_adjoint(grads, shape, window, stride, padding, xp=np):
    """The gradient with respect to ``_patches``'s input, from one with respect to its columns: (samples, size).

    A gradient of one row stands for the same row at every offset (average pooling's equal shares)."""
    channels, *spatial = shape
    positions = _positions(spatial, window, stride, padding)
    offsets = math.prod(window)
    grads = xp.broadcast_to(grads, (channels * offsets, grads.shape[1]))
    grads = grads.reshape(channels, offsets, -1, *positions)
    padded_size = tuple(size + 2 * pad for size, pad in zip(spatial, padding))
    # Windows that tile the input exactly read every entry once: each entry is written, never added to.
    tiled = not any(padding) and tuple(stride) == tuple(window) and all(
        count * width == size for count, width, size in zip(positions, window, spatial))
    padded = (xp.empty if tiled else xp.zeros)((grads.shape[2], channels, *padded_size), dtype=grads.dtype)
    for k, offset in enumerate(np.ndindex(*window)):
        reached = (slice(None), slice(None), *_reached(offset, stride, positions))
        if tiled:
            padded[reached] = grads[:, k].swapaxes(0, 1)
        else:
            padded[reached] += grads[:, k].swapaxes(0, 1)
    inside = tuple(slice(pad, pad + size) for pad, size in zip(padding, spatial))
    return padded[(slice(None), slice(None), *inside)].reshape(grads.shape[2], -1)


def _first_max_mask(patches, xp=np):
    """True at each column's largest entry (the first of equal ones, as PyTorch), False elsewhere; on a GPU, 1 and 0
    in the patches' type, since a kernel takes its arrays in one type.

    A NaN counts as the largest, as in PyTorch: it reaches the pooled output rather than vanish from it."""
    largest = patches.max(axis=0)
    mask = patches == largest
    if bool(xp.isnan(largest).any()):
        mask |= xp.isnan(patches)
    taken = mask[0].copy()
    for row in mask[1:]:
        # An entry equal to the largest counts only when no earlier row of its column did.
        row &= ~taken
        taken |= row
    return mask if xp is np else mask.astype(patches.dtype)
