"""The numbers of a generated module's diagnose(): gradient norms, saturated and dead units, the loss's trend.

diagnose() itself is generated (it runs the network's own forward pass); it hands the arrays to these
functions, which know nothing of any one network. symbp.checks.diagnostics puts the numbers into words.
"""

import numpy as np

# A unit is saturated when its output sits within this fraction of its range from an extreme
# on at least SATURATED_ROWS of the rows, where its derivative, and so its gradient, all but vanishes.
SATURATION_MARGIN = 0.01
SATURATED_ROWS = 0.9


def gradient_norm(grads, names):
    """The Euclidean norm of the gradients of the parameters called names, taken together."""
    return float(np.sqrt(sum(np.sum(np.square(grads[name])) for name in names)))


def saturated_fraction(A, low, high):
    """The fraction of A's units (columns) near an extreme, low or high, on at least SATURATED_ROWS of the rows."""
    near_extreme = np.minimum(np.abs(A - low), np.abs(A - high)) < SATURATION_MARGIN * (high - low)
    return float(np.mean(np.mean(near_extreme, axis=0) >= SATURATED_ROWS))


def dead_fraction(inactive):
    """The fraction of units (columns of the boolean array inactive: the derivative is zero) inactive on every row."""
    return float(np.mean(np.all(inactive, axis=0)))


def diagnosis(value, samples, layers, history):
    """diagnose()'s report: the loss on the data, the number of samples, the layers' dicts, the loss's trend.

    The gradient ratio is the first layer's norm over the last one's, of the layers that have parameters (a
    pooling layer's norm is None: it learns nothing)."""
    norms = [layer["gradient_norm"] for layer in layers if layer["gradient_norm"] is not None]
    first, last = (norms[0], norms[-1]) if norms else (0.0, 0.0)
    return {
        "loss": value,
        "samples": samples,
        "layers": layers,
        "gradient_ratio": first / last if last > 0 else None,
        "history": loss_trend(history),
    }


def loss_trend(history):
    """How the loss moved in a train() history (or a list of losses): first, best and last, how many
    epochs raised it and by how much in all ("climb"), and why training stopped when the history says."""
    stopped = history.get("stopped") if isinstance(history, dict) else None
    losses = history["loss"] if isinstance(history, dict) else history
    if not losses and stopped != "diverged":
        return None
    if not losses:
        return {"epochs": 0, "stopped": stopped, "rising": True, "increases": 0, "climb": 0.0}
    best = min(range(len(losses)), key=losses.__getitem__)
    progress = losses[0] - losses[best]
    rises = [later - earlier for earlier, later in zip(losses, losses[1:]) if later > earlier]
    return {
        "epochs": len(losses),
        "first": losses[0],
        "best": losses[best],
        "best_epoch": best,
        "last": losses[-1],
        "increases": len(rises),
        "climb": float(sum(rises)),
        "stopped": stopped,
        # Back up by more than a tenth of what training had gained (and by more than 1%): not the
        # wobble of stochastic steps around a minimum, which gives back a sliver of the way down.
        "rising": stopped == "diverged" or losses[-1] - losses[best] > max(
            0.1 * progress, 0.01 * abs(losses[best]) + 1e-12),
    }
