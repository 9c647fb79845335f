"""Windows over shaped inputs for the array-API module: im2col and its adjoint as gathers, max pooling's arg-max.

The NumPy module's ``symbp.runtime.windows`` cuts windows with NumPy's sliding_window_view and adds each
window's gradient back with in-place slices; the array API standard has neither, and a pure function (what
jax.jit compiles) writes into no array. Here both directions are one ``take`` each, with index tables built once
per geometry in plain Python: ``_patches`` reads, for every sample at once, each window's entries from the flat
input row (the padding from a zero column appended to it); ``_patches_adjoint`` reads, for each input entry, the
patch entries that came from it and sums them. The layouts are the NumPy module's, entry for entry. Copied only
into array-API modules with convolution or pooling layers.
"""

from __future__ import annotations

import functools
import itertools
import math

from array_api_compat import array_namespace, device


@functools.cache
def _window_index(shape, window, stride, padding):
    """For one sample, the flat input entry that each patch entry reads, in the patch matrix's order (channel,
    then window offset, then output position, each row-major); one past the last input entry on the padding."""
    channels, *spatial = shape
    size = math.prod(shape)
    positions = [(length + 2 * pad - width) // step + 1
                 for length, width, step, pad in zip(spatial, window, stride, padding)]
    index = []
    for channel in range(channels):
        for offset in itertools.product(*map(range, window)):
            for position in itertools.product(*map(range, positions)):
                at = [p * step + o - pad for p, step, o, pad in zip(position, stride, offset, padding)]
                if all(0 <= a < length for a, length in zip(at, spatial)):
                    flat = channel
                    for a, length in zip(at, spatial):
                        flat = flat * length + a
                    index.append(flat)
                else:
                    index.append(size)
    return tuple(index)


@functools.cache
def _adjoint_index(shape, window, stride, padding):
    """For each input entry of one sample, the patch entries that read it, padded to a common count with the
    index of a zero column appended to the patch entries; and that count."""
    index = _window_index(shape, window, stride, padding)
    readers = [[] for _ in range(math.prod(shape))]
    for entry, read in enumerate(index):
        if read < len(readers):
            readers[read].append(entry)
    count = max(1, *(len(each) for each in readers))
    return tuple(itertools.chain.from_iterable(each + [len(index)] * (count - len(each)) for each in readers)), count


def _with_zero_column(rows):
    xp = array_namespace(rows)
    return xp.concat([rows, xp.zeros((rows.shape[0], 1), dtype=rows.dtype, device=device(rows))], axis=1)


def _patches(rows, shape, window, stride, padding):
    """Each sample's windows as columns: (channels * window, samples * positions), both row-major."""
    xp = array_namespace(rows)
    index = _window_index(shape, window, stride, padding)
    source = _with_zero_column(rows) if any(padding) else rows
    gathered = xp.take(source, xp.asarray(index, device=device(rows)), axis=1)
    offsets = shape[0] * math.prod(window)
    # (samples, offsets * positions) -> (offsets, samples, positions): a row per channel and window offset.
    by_offset = xp.permute_dims(xp.reshape(gathered, (gathered.shape[0], offsets, -1)), (1, 0, 2))
    return xp.reshape(by_offset, (offsets, -1))


def _patches_adjoint(grads, shape, window, stride, padding):
    """The gradient with respect to ``_patches``'s input, from one with respect to its columns: (samples, size).

    A gradient of one row stands for the same row at every offset (average pooling's equal shares)."""
    xp = array_namespace(grads)
    table, count = _adjoint_index(shape, window, stride, padding)
    offsets = shape[0] * math.prod(window)
    grads = xp.broadcast_to(grads, (offsets, grads.shape[1]))
    samples = grads.shape[1] * offsets // len(_window_index(shape, window, stride, padding))
    by_sample = xp.permute_dims(xp.reshape(grads, (offsets, samples, -1)), (1, 0, 2))
    per_sample = xp.reshape(by_sample, (samples, -1))
    read = xp.take(_with_zero_column(per_sample), xp.asarray(table, device=device(grads)), axis=1)
    return xp.sum(xp.reshape(read, (-1, math.prod(shape), count)), axis=2)


def _first_max_mask(patches):
    """1 at each column's largest entry (the first of equal ones, as the standard's argmax and PyTorch), 0
    elsewhere, in the patches' dtype."""
    xp = array_namespace(patches)
    first = xp.argmax(patches, axis=0, keepdims=True)
    rows = xp.reshape(xp.arange(patches.shape[0], device=device(patches)), (patches.shape[0], 1))
    return xp.astype(rows == first, patches.dtype)
