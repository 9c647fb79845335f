"""Holding out a validation set: a reproducible split, stratified by class for classifiers."""

from __future__ import annotations

import numpy as np

from symbp.data.datafiles import target_kind
from symbp.errors import SymbpError
from symbp.registry.rules import activation_named, loss_named
from symbp.spec.schema import Spec


def is_classification(spec: Spec, Y: np.ndarray | None) -> bool:
    """A classifier's loss, targets that are classes, or (without targets) several outputs that suit classes
    (softmax or sigmoid)."""
    if loss_named(spec.loss.name).classifier:
        return True
    if Y is not None:
        return target_kind(Y) is not None
    return spec.outputs > 1 and activation_named(spec.layers[-1].activation).natural_targets.classes


def class_labels(Y: np.ndarray) -> np.ndarray | None:
    """Each row's class when the targets are one-hot rows or a single 0/1 column, else None."""
    kind = target_kind(Y)
    if kind == "one-hot":
        return Y.argmax(axis=1)
    if kind == "binary":
        return (Y[:, 0] > 0.5).astype(np.int64)
    return None


def validation_split(X: np.ndarray, Y: np.ndarray, fraction: float, *, seed: int | None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, Y_train, X_val, Y_val): ``fraction`` of the rows held out, the same rows for the same seed.

    With class targets each class gives the same share of its rows, so a small validation set keeps
    the classes' proportions. Both parts keep the rows' original order.
    """
    rng = np.random.default_rng(seed)
    labels = class_labels(Y)
    groups = [np.arange(len(X))] if labels is None else [np.flatnonzero(labels == c) for c in np.unique(labels)]
    held = [rng.permutation(group)[:int(round(fraction * len(group)))] for group in groups]
    chosen = np.zeros(len(X), dtype=bool)
    chosen[np.concatenate(held)] = True
    if not chosen.any() or chosen.all():
        raise SymbpError(f"--validation: {fraction:g} of {len(X)} samples leaves "
                         f"{'no validation' if not chosen.any() else 'no training'} samples; give a fraction "
                         "that keeps some of each")
    return X[~chosen], Y[~chosen], X[chosen], Y[chosen]
