"""Every formula of a derivation, evaluated on numbers and compared with an independent oracle.

The oracle knows nothing of the derivation: parameter gradients come from the generated NumPy
module's ``loss_and_grad`` and ``train``, and every other derivative (dl/da, dl/dz, da/dz, hence
the error terms) from five-point central differences of a plain forward pass. A chain
``lhs = s_1 = s_2 ...`` passes when every step evaluates to the value of its left-hand side, for
several samples and several values of each free index.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import sympy as sp
from sympy import HadamardPower, HadamardProduct, MatAdd, MatMul, OneMatrix, Transpose
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction

from symbp.checks.gradients import load_module_from_source, random_problem
from symbp.derivation.model import Chain, Derivation
from symbp.registry import rules
from symbp.registry.calculus import activation_calculus
from symbp.registry.rules import loss_named
from symbp.render.code.numpy_module import generate_module
from symbp.spec.schema import Spec
from symbp.symbolic import quantities as q
from symbp.symbolic.batchnorm import batch_norm_layers
from symbp.symbolic.layers import Parameter, concrete_rowwise, rowwise_variables
from symbp.symbolic.network import Network, network_of, sample_coefficient
from symbp.symbolic.penalties import weight_penalties

TOLERANCE = 1e-6
# The kinds of named quantity that are entries of a parameter array (a normalised layer's gain and shift too).
_PARAMETER_KINDS = ("weight", "bias", "gain", "shift")
VARIABLE_POINTS = (-1.7, -0.35, 0.4, 1.9)
_NUMPY = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "cosh": np.cosh, "sinh": np.sinh, "sqrt": np.sqrt,
          "Abs": np.abs, "sign": np.sign, "Max": np.maximum, "Min": np.minimum}


@dataclass
class Mismatch:
    chain: str
    step: int
    where: dict
    expected: object
    got: object

    def __str__(self) -> str:
        return f"{self.chain}, step {self.step}, at {self.where}: got {self.got}, expected {self.expected}"


@dataclass
class Report:
    checked: int = 0
    kinks: int = 0  # points skipped where the loss has no derivative (a tied max-pooling window)
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.checked > 0 and not self.mismatches


@cache
def _rowwise_function(name: str, params: tuple, units: int):
    """softmax-like activations as one NumPy function of a row of pre-activations."""
    forward = activation_calculus(name, params).forward
    return sp.lambdify(rowwise_variables(units), list(concrete_rowwise(forward, units)), "numpy")


@cache
def _elementwise_function(name: str, params: tuple):
    return sp.lambdify(rules.z, activation_calculus(name, params).forward, "numpy")


def _fan_in_shrink(value: np.ndarray) -> float:
    return max(1.0, float(np.sqrt(value.shape[0] / 3))) if value.ndim == 2 else 1.0


def _penalty_gradients(network: Network, params: dict) -> dict[str, np.ndarray]:
    """What each weight penalty adds to its weight's gradient, on the parameters' numbers."""
    return {penalty.parameter.name: np.asarray(sp.lambdify(penalty.entry, penalty.derivative(), "numpy")(
        params[penalty.parameter.name]), dtype=float) * np.ones_like(params[penalty.parameter.name])
            for penalty in weight_penalties(network)}


class Oracle:
    """A small random problem for a spec, and the values of its quantities."""

    def __init__(self, spec: Spec, samples: int = 3, seed: int = 0, module=None):
        self.spec = spec
        self.network = network_of(spec)
        self.depth = len(spec.layers)
        self.module = module or load_module_from_source(generate_module(spec), spec.name)
        self.X, self.Y, rng = random_problem(spec, samples, seed)
        initial = self.module.init_params(seed)
        # Wide layers get weights shrunk by sqrt(fan-in / 3): pre-activations stay of order one, so a softmax
        # does not saturate to outputs near 1e-6, where a central difference of -y/a loses its digits.
        self.params = {name: (value + rng.normal(scale=0.5, size=value.shape)) / _fan_in_shrink(value)
                       for name, value in initial.items()}
        # A network with dropout is checked with the masks of train()'s first step (drawn from the spec's seed),
        # so that the update section's new parameters are that step's; they are the derivation's m's.
        self.masks = None
        if getattr(self.module, "DROPOUT", None):
            self.masks = self.module.draw_masks(self.module.mask_generator(spec.training.seed), samples)
        # A layer that normalises over the batch couples its samples: the loss of the batch does not split into
        # losses of one sample, and the module is asked for its training-mode gradient (the batch's statistics).
        self.coupled = bool(batch_norm_layers(self.network))
        training = {"training": True} if self.coupled else {}
        self._loss_function = sp.lambdify((rules.yhat, rules.y), loss_named(spec.loss.name).expr, "numpy")
        self._cache: dict = {}
        self.max_pooling = any(getattr(layer, "maximum", False) for layer in self.network.layers)
        self.loss, self.gradient = self.module.loss_and_grad(self.params, self.X, self.Y, **self._masks_of(),
                                                             **training)
        if self.coupled:
            self.sample_gradients = [self._gradient_shares(n) for n in range(samples)]
            return
        # One sample's loss has no weight penalty (that is on the whole loss L): the module's is taken off.
        penalty = _penalty_gradients(self.network, self.params)
        self.sample_gradients = [
            {name: value - penalty.get(name, 0.0)
             for name, value in self.module.loss_and_grad(self.params, self.X[n:n + 1], self.Y[n:n + 1],
                                                          **self._masks_of(slice(n, n + 1)))[1].items()}
            for n in range(samples)]

    def _gradient_shares(self, n: int) -> dict[str, np.ndarray]:
        """Sample n's share of the batch's gradient, over c (L = c sum_m l_m): the derivative of the batch's loss
        with respect to the copy of each parameter that sample n's forward pass uses, by central differences.
        Where the loss splits it is sample n's own gradient; over a batch-normalised batch the shares add up to
        the module's gradient (less the penalty) over c."""
        return {name: np.array([self.derivative(("loss",), (name, 0, index), n)
                                for index in np.ndindex(value.shape)]).reshape(value.shape)
                for name, value in self.params.items() if name in self._parameter_names()}

    def _parameter_names(self) -> set[str]:
        return {parameter.name for parameter in self.network.parameters}

    @property
    def samples(self) -> int:
        return self.X.shape[0]

    def _masks_of(self, rows=slice(None)) -> dict:
        """loss_and_grad's keyword for the masks' rows: none for a network without dropout."""
        return {} if self.masks is None else {"masks": {name: mask[rows] for name, mask in self.masks.items()}}

    def mask(self, layer: int, rows):
        """The mask on layer ``layer``'s inputs at the samples ``rows`` (an index or a list)."""
        return self.masks[f"M{layer}"][rows]

    def activate(self, layer: int, pre: np.ndarray) -> np.ndarray:
        spec_layer = self.spec.layers[layer - 1]
        calculus = activation_calculus(spec_layer.activation, spec_layer.activation_params)
        if calculus.rowwise:
            # softmax is unchanged by a shift of its row; shifting by the largest entry keeps exp finite.
            function = _rowwise_function(spec_layer.activation, spec_layer.activation_params, pre.shape[-1])
            return np.array(function(*(pre - np.max(pre))), dtype=float)
        return np.array(_elementwise_function(spec_layer.activation, spec_layer.activation_params)(pre),
                        dtype=float) * np.ones_like(pre)

    def forward(self, n: int, overrides: dict | None = None) -> dict:
        """Every layer's pre-activations and outputs on sample n; overrides pin (kind, layer, unit) to a value.

        An override of ("W1", 0, (i, j)) or ("b1", 0, (j,)) changes one parameter instead. Over a batch that a
        layer normalises (``coupled``), the whole batch goes forward: an override is of sample n's quantity (or
        parameter copy) unless its key names a sample of its own, (kind, layer, unit, sample).
        """
        overrides = overrides or {}
        if self.coupled:
            batch = self.batch_forward({key if len(key) == 4 else (*key, n): value
                                        for key, value in overrides.items()})
            return {key: value if self._over_batch(*key) else value[n] for key, value in batch.items()}
        params = self.params
        changed = [(name, index, value) for (name, _, index), value in overrides.items() if name in self.params]
        if changed:
            params = {name: value.copy() for name, value in params.items()}
            for name, index, value in changed:
                params[name][index] = value
        values = {("act", 0): np.array(self.X[n], dtype=float)}
        for (kind, layer, unit), value in overrides.items():
            if (kind, layer) == ("act", 0):
                values[("act", 0)][unit] = value
        previous = values[("act", 0)]
        if self.masks is not None:
            params = {**params, **{name: mask[n] for name, mask in self.masks.items()}}
        for layer in range(1, self.depth + 1):
            kind_of_layer = self.network.layer(layer)
            if hasattr(kind_of_layer, "numeric_stages"):
                # A normalised layer's own quantities (u, mu, sigma^2, sigma_hat, x_hat), each one movable.
                stages = kind_of_layer.numeric_stages(previous, params, self._pinning(overrides, layer))
                values.update({(kind, layer): np.atleast_1d(np.array(value, dtype=float))
                               for kind, value in stages.items()})
                pre = np.array(stages["pre"], dtype=float)
            else:
                pre = np.array(kind_of_layer.numeric_preactivation(previous, params), dtype=float)
            for (kind, at, unit), value in overrides.items():
                if (kind, at) == ("pre", layer):
                    pre[unit] = value
            out = self.activate(layer, pre)
            for (kind, at, unit), value in overrides.items():
                if (kind, at) == ("act", layer):
                    out[unit] = value
            values[("pre", layer)], values[("act", layer)] = pre, out
            previous = out
        return values

    def batch_forward(self, overrides: dict) -> dict:
        """Every layer's quantities on the whole batch, a row per sample (a batch-normalised layer's statistics one
        per unit); each override is keyed (kind, layer, unit, sample), a parameter's (name, 0, index, sample) moving
        that sample's copy only."""
        rows = range(self.samples)
        row_params = []
        for r in rows:
            params = dict(self.params)
            for (name, _, index, sample), value in overrides.items():
                if name in params and sample == r:
                    params[name] = params[name].copy()
                    params[name][index] = value
            if self.masks is not None:
                params.update({name: mask[r] for name, mask in self.masks.items()})
            row_params.append(params)

        def pin_rows(kind: str, layer: int, values) -> np.ndarray:
            values = np.array(values, dtype=float)
            for (name, at, unit, sample), value in overrides.items():
                if (name, at) == (kind, layer):
                    if values.ndim == 1:
                        values[unit] = value
                    else:
                        values[sample, unit] = value
            return values

        values = {("act", 0): pin_rows("act", 0, self.X)}
        previous = values[("act", 0)]
        for layer in range(1, self.depth + 1):
            kind_of_layer = self.network.layer(layer)
            if hasattr(kind_of_layer, "batch_numeric_stages"):
                stages = kind_of_layer.batch_numeric_stages(
                    previous, row_params, lambda kind, array, at=layer: pin_rows(kind, at, array))
                values.update({(kind, layer): np.array(value, dtype=float) for kind, value in stages.items()
                               if kind != "pre"})
                pre = stages["pre"]
            elif hasattr(kind_of_layer, "numeric_stages"):
                per_row = [kind_of_layer.numeric_stages(previous[r], row_params[r],
                                                        self._pinning({key[:3]: value for key, value
                                                                       in overrides.items() if key[3] == r}, layer))
                           for r in rows]
                values.update({(kind, layer): np.array([np.atleast_1d(stage[kind]) for stage in per_row])
                               for kind in per_row[0] if kind != "pre"})
                pre = np.array([stage["pre"] for stage in per_row], dtype=float)
            else:
                pre = np.array([kind_of_layer.numeric_preactivation(previous[r], row_params[r]) for r in rows],
                               dtype=float)
            pre = pin_rows("pre", layer, pre)
            out = pin_rows("act", layer, np.array([self.activate(layer, pre[r]) for r in rows]))
            values[("pre", layer)], values[("act", layer)] = pre, out
            previous = out
        return values

    def _over_batch(self, kind: str, layer: int) -> bool:
        """Whether a quantity is one per unit of the batch, not one per sample: a batch-normalised layer's statistic."""
        return (kind in q.NORMALISATION_LAYER_KINDS and isinstance(layer, int) and 1 <= layer <= self.depth
                and hasattr(self.network.layer(layer), "batch_numeric_stages"))

    def objective(self, n: int, overrides: dict | None = None) -> float:
        """What a derivative of the loss on sample n differentiates: the sample's loss, or over a batch that a layer
        normalises, the sum of every sample's (the batch's loss over c), so that its derivative with respect to a
        quantity of sample n is that sample's share of the batch's gradient."""
        if not self.coupled:
            return self.sample_loss(n, overrides)
        batch = self.batch_forward({key if len(key) == 4 else (*key, n): value
                                    for key, value in (overrides or {}).items()})
        return float(sum(self.spec.loss.scale * np.sum(self._loss_function(batch[("act", self.depth)][r], self.Y[r]))
                         for r in range(self.samples)))

    @staticmethod
    def _pinning(overrides: dict, layer: int):
        """What a layer's ``numeric_stages`` calls on each of its quantities: the override of an entry, if any."""
        def pin(kind: str, values):
            values = np.array(values, dtype=float)
            for (name, at, unit), value in overrides.items():
                if (name, at) == (kind, layer):
                    values[unit] = value
            return values

        return pin

    def sample_loss(self, n: int, overrides: dict | None = None) -> float:
        prediction = self.forward(n, overrides)[("act", self.depth)]
        return float(self.spec.loss.scale * np.sum(self._loss_function(prediction, self.Y[n])))

    def quantity(self, kind: str, layer: int, unit, n: int) -> float:
        if kind in self.params:
            return float(self.params[kind][unit])
        if self._over_batch(kind, layer):
            n = 0  # a unit's statistic over the batch is every sample's
        if ("forward", n) not in self._cache:
            self._cache[("forward", n)] = self.forward(n)
        return float(self._cache[("forward", n)][(kind, layer)][unit])

    def quantity_row(self, kind: str, layer: int, n: int) -> np.ndarray:
        """A layer's whole output on sample n."""
        if ("forward", n) not in self._cache:
            self._cache[("forward", n)] = self.forward(n)
        return np.asarray(self._cache[("forward", n)][(kind, layer)], dtype=float)

    def derivative(self, top: tuple, bottom: tuple, n: int) -> float:
        """d top / d bottom on sample n by central differences; top is ("loss",) or (kind, layer, unit), and
        either may name a sample of its own, (kind, layer, unit, sample), over a batch that a layer normalises."""
        key = (top, bottom, n)
        if key not in self._cache:
            at = bottom[3] if len(bottom) == 4 else n
            base = self.quantity(*bottom[:3], at)
            step = 1e-3 * max(abs(base), 1e-2)
            if bottom[0] == "weighted":
                # A normalised layer's weighted sums move its output on the scale of their spread, which can be
                # far below their size: a step of their size would step over the curvature.
                unit = bottom[2] if self._over_batch("scale", bottom[1]) else 0
                step = min(step, 1e-3 * self.quantity("scale", bottom[1], unit, at))
            with np.errstate(all="ignore"):
                if self.max_pooling and self._tied(bottom, n):
                    self._cache[key] = None
                    raise Kink(f"d{top}/d{bottom} on sample {n}")
                result = self._difference(top, bottom, n, base, step)
                if not np.isfinite(result) and base != 0:
                    # A probability near 0 must stay positive inside log(a): a step small beside it.
                    result = self._difference(top, bottom, n, base, abs(base) / 4)
            self._cache[key] = result
        if self._cache[key] is None:
            raise Kink(f"d{top}/d{bottom} on sample {n}")
        return self._cache[key]

    def _tied(self, bottom: tuple, n: int) -> bool:
        """Whether ``bottom`` is an entry of a max-pooling layer's input that ties for the largest in one of the
        windows that read it: there the loss has no derivative (moving the entry up moves the maximum, moving it
        down does not)."""
        kind, layer, unit = bottom
        if kind != "act" or layer >= self.depth or not getattr(self.network.layer(layer + 1), "maximum", False):
            return False
        below = self.quantity_row("act", layer, n)
        for channels in self.network.layer(layer + 1)._windows:
            for read in channels:
                if unit in read:
                    values = below[[i for i in read if i is not None]]
                    if below[unit] == values.max() and np.count_nonzero(values == values.max()) > 1:
                        return True
        return False

    def _difference(self, top, bottom, n, base, step) -> float:
        values = []
        for offset in (-2, -1, 1, 2):
            overrides = {bottom: base + offset * step}
            if top == ("loss",):
                values.append(self.objective(n, overrides))
            elif len(top) == 4:
                # Another sample's quantity: the override is of sample n's unless it names its own.
                moved = {key if len(key) == 4 else (*key, n): value for key, value in overrides.items()}
                values.append(float(self.forward(top[3], moved)[top[:2]][top[2]]))
            else:
                values.append(float(self.forward(n, overrides)[top[:2]][top[2]]))
        return (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * step)

    def error_term(self, layer: int, n: int) -> np.ndarray:
        return np.array([self.derivative(("loss",), ("pre", layer, unit), n)
                         for unit in range(self.spec.sizes[layer])])

    def stepped(self) -> dict:
        """The parameters after one step of the spec's optimizer on the whole problem, by the module."""
        if "stepped" not in self._cache:
            training = self.spec.training
            self._cache["stepped"] = self.module.train(self.params, self.X, self.Y, epochs=1, batch_size=None,
                                                       learning_rate=training.learning_rate)[0]
        return self._cache["stepped"]


def _shape_of(oracle: Oracle, layer: int) -> tuple[int, ...]:
    """The shape a layer's output is read in, channels first (the input's for layer 0)."""
    if layer == 0:
        return tuple(oracle.spec.input_shape) or (oracle.spec.sizes[0],)
    kind = oracle.network.layer(layer)
    return tuple(kind.window.output_shape) if hasattr(kind, "window") else (oracle.spec.sizes[layer],)


def _parameter(network: Network, role: q.Role) -> Parameter:
    """The layer's parameter that a named quantity (a weight, a bias) is an entry of."""
    return next(p for p in network.layer(role.layer).parameters if p.role == role.kind)


def _parameter_name(network: Network, indexed) -> tuple[str, tuple]:
    parameter = _parameter(network, q.ROLES[indexed.base])
    return parameter.name, parameter.stored_index(indexed.indices)


class Kink(ArithmeticError):
    """The loss has no derivative at the check's point: a max-pooling window whose largest entry is tied."""


class Evaluator:
    """Turns a derivation's SymPy expressions into numbers on one sample (or on the whole batch)."""

    def __init__(self, oracle: Oracle, sign: int, column: bool, shared: dict):
        self.oracle = oracle
        self.sign = sign
        self.column = column
        self.shared = shared
        self.spec = oracle.spec

    # -- named quantities
    def _flat(self, role: q.Role, indices) -> int | None:
        """The 0-based unit of a window layer's entry (channel, positions), counted from 1 in ``indices``; None
        outside the layer's positions (the padding, or an error term's zero outside its positions)."""
        shape = _shape_of(self.oracle, role.layer)
        entry = [int(i) - 1 for i in indices]
        if len(entry) != len(shape) or not all(0 <= i < size for i, size in zip(entry, shape)):
            return None
        return int(np.ravel_multi_index(entry, shape))

    def indexed(self, expr: sp.Indexed, n: int) -> float:
        role = q.ROLES[expr.base]
        oracle = self.oracle
        if role.kind in q.NORMALISATION_UNIT_KINDS and len(expr.indices) == 2:
            # Sample n's quantity over a batch (batch normalisation): the sample first, then the unit.
            n, expr = int(expr.indices[0]) - 1, expr.base[expr.indices[1]]
        if role.kind == "first_max":
            return self._first_max(role.layer, [int(i) - 1 for i in expr.indices], n)
        if len(expr.indices) > 1 and role.kind not in _PARAMETER_KINDS:
            flat = self._flat(role, expr.indices)
            if flat is None:
                return 0.0
            expr = expr.base[flat + 1]
        units = [int(i) - 1 for i in expr.indices]
        if role.kind in q.NORMALISATION_LAYER_KINDS:
            return oracle.quantity(role.kind, role.layer, units[0], n)
        if role.kind == "input":
            return float(oracle.X[n, units[0]])
        if role.kind == "target":
            return float(oracle.Y[n, units[0]])
        if role.kind == "prediction":
            return oracle.quantity("act", oracle.depth, units[0], n)
        if role.kind in ("pre", "act"):
            return oracle.quantity(role.kind, role.layer, units[0], n)
        if role.kind in _PARAMETER_KINDS:
            name, index = _parameter_name(oracle.network, expr)
            return float(oracle.params[name][index])
        if role.kind in ("weighted", "normalised"):
            return oracle.quantity(role.kind, role.layer, units[0], n)
        if role.kind in ("weighted_delta", "normalised_delta"):
            at = role.kind.removesuffix("_delta")
            return self.sign * oracle.derivative(("loss",), (at, role.layer, units[0]), n)
        if role.kind == "delta":
            return self.sign * oracle.derivative(("loss",), ("pre", role.layer, units[0]), n)
        if role.kind == "incoming":
            return self.sign * oracle.derivative(("loss",), ("act", role.layer, units[0]), n)
        if role.kind == "sample_loss":
            return oracle.sample_loss(units[0])
        if role.kind == "mask":
            return float(oracle.mask(role.layer, n)[units[0]])
        raise KeyError(role)

    def _first_max(self, layer: int, entry: list[int], n: int) -> float:
        """chi^(l)_{c,p,t}: 1 when offset t holds the first largest entry of channel c's window at position p."""
        kind = self.oracle.network.layer(layer)
        dims = kind.dims
        channel, positions, offsets = entry[0], entry[1:1 + dims], entry[1 + dims:]
        below = self.oracle.quantity_row("act", layer - 1, n).reshape(kind.geometry.input_shape)
        window = [below[(channel, *(p * s + t for p, s, t in zip(positions, kind.geometry.stride, offset)))]
                  for offset in itertools.product(*(range(w) for w in kind.geometry.window))]
        return float(int(np.argmax(window)) == int(np.ravel_multi_index(offsets, kind.geometry.window)))

    def partial(self, expr: q.Partial, n: int, bound: dict):
        top, bottom = expr.numerator, expr.denominator
        oracle = self.oracle
        if isinstance(bottom, sp.MatrixSymbol):
            return self._matrix_partial(top, bottom)
        if top in (q.SAMPLE_LOSS, q.LOSS) or (isinstance(top, sp.Indexed) and q.ROLES[top.base].kind == "sample_loss"):
            if isinstance(top, sp.Indexed):
                n = int(top.indices[0]) - 1
            role = q.ROLES.get(getattr(bottom, "base", None))
            if role is not None and role.kind in _PARAMETER_KINDS:
                name, index = _parameter_name(oracle.network, bottom)
                gradients = oracle.gradient if top == q.LOSS else oracle.sample_gradients[n]
                return float(gradients[name][index])
            if top == q.LOSS and bottom == q.PARAMETER:
                name, index = bound["parameter"]
                return float(oracle.gradient[name][index])
            return oracle.derivative(("loss",), self._position(bottom), n)
        if self._is_quantity(top) and (self._is_quantity(bottom) or self._is_parameter(bottom)):
            return oracle.derivative(self._position(top), self._position(bottom), n)
        # An explicit expression: SymPy differentiates it, and the result is evaluated.
        return self.value(sp.diff(top.doit() if isinstance(top, sp.Sum) else top, bottom), n, bound)

    def _is_quantity(self, expr) -> bool:
        if q.is_layer_statistic(expr):
            return True
        return isinstance(expr, sp.Indexed) and expr.base in q.ROLES and q.ROLES[expr.base].kind in (
            "pre", "act", "input", "weighted", "normalised", *q.NORMALISATION_LAYER_KINDS)

    def _is_parameter(self, expr) -> bool:
        return isinstance(expr, sp.Indexed) and expr.base in q.ROLES and q.ROLES[expr.base].kind in _PARAMETER_KINDS

    def _position(self, expr) -> tuple:
        if self._is_parameter(expr):
            name, index = _parameter_name(self.oracle.network, expr)
            return name, 0, index
        if q.is_layer_statistic(expr):
            return q.ROLES[expr].kind, q.ROLES[expr].layer, 0
        role = q.ROLES[expr.base]
        kind = "act" if role.kind == "input" else role.kind
        if len(expr.indices) == 2 and role.kind in q.NORMALISATION_UNIT_KINDS:
            # Sample n's quantity over a batch: (kind, layer, unit, sample).
            return kind, role.layer, int(expr.indices[1]) - 1, int(expr.indices[0]) - 1
        if len(expr.indices) > 1:
            flat = self._flat(role, expr.indices)
            if flat is None:
                raise Kink(f"{expr} lies on the padding")  # not a quantity of the network: nothing to compare
            return kind, role.layer, flat
        return kind, role.layer, int(expr.indices[0]) - 1

    # -- matrices
    def matrix_symbol(self, symbol: sp.MatrixSymbol, n: int) -> np.ndarray:
        role = q.MATRIX_ROLES[symbol]
        oracle = self.oracle
        rows = [n] if self.column else range(oracle.samples)
        if role.kind in ("pre", "act"):
            value = np.array([[oracle.quantity(role.kind, role.layer, unit, r)
                               for unit in range(self.spec.sizes[role.layer])] for r in rows])
        elif role.kind == "data":
            value = oracle.X[list(rows)]
        elif role.kind == "targets":
            value = oracle.Y[list(rows)]
        elif role.kind == "mask":
            value = oracle.mask(role.layer, list(rows))
        elif role.kind == "delta":
            coefficient = 1 if self.column else self._sample_coefficient()
            value = self.sign * coefficient * np.array([oracle.error_term(role.layer, r) for r in rows])
        else:
            parameter = _parameter(oracle.network, role)
            value = oracle.params[parameter.name].reshape(parameter.symbol.shape)
        return value.T if self.column else value

    def _sample_coefficient(self) -> float:
        return float(sample_coefficient(self.spec, self.oracle.samples))

    def _matrix_partial(self, top, bottom: sp.MatrixSymbol) -> np.ndarray:
        role = q.MATRIX_ROLES[bottom]
        oracle = self.oracle
        if role.kind in ("weight", "bias"):
            parameter = _parameter(oracle.network, role)
            gradient = oracle.sample_gradients[self._row] if self.column else oracle.gradient
            gradient = gradient[parameter.name].reshape(parameter.symbol.shape)
            return gradient.T if self.column else gradient
        if self.column:
            return np.array([oracle.error_term(role.layer, self._row)]).T
        return self._sample_coefficient() * np.array([oracle.error_term(role.layer, r) for r in range(oracle.samples)])

    # -- the evaluator itself
    def value(self, expr, n: int, bound: dict | None = None):
        bound = bound or {}
        self._row = n
        if expr in bound:
            return bound[expr]
        if isinstance(expr, sp.Symbol) and expr in self.shared:
            return self.value(self.shared[expr], n, bound)
        if expr.is_Number:
            return float(expr)
        if expr is sp.true or expr is sp.false:
            return bool(expr)
        if isinstance(expr, (sp.Indexed, q.Partial, q.Current, q.Updated, sp.Derivative)):
            expr = _pinned(expr, bound)
        if isinstance(expr, sp.Indexed):
            return self.indexed(expr, n)
        if q.is_layer_statistic(expr):
            role = q.ROLES[expr]
            return self.oracle.quantity(role.kind, role.layer, 0, n)
        if isinstance(expr, sp.Symbol):
            return self._scalar(expr, bound)
        if isinstance(expr, q.Partial):
            return self.partial(expr, n, bound)
        if isinstance(expr, q.AtSample):
            return self.value(expr.expr, int(self.value(expr.sample, n, bound)) - 1, bound)
        if isinstance(expr, (q.Current, q.Updated)):
            return self._timed(expr, bound)
        if isinstance(expr, sp.Sum):
            # A sum over several indices (a sum over paths) is taken one index at a time, the outermost first.
            *inner, (index, low, high) = expr.limits
            body = sp.Sum(expr.function, *inner) if inner else expr.function
            low, high = int(self.value(low, n, bound)), int(self.value(high, n, bound))
            # The index is bound to each value in turn, and set into the named quantities where they are read.
            return sum(self.value(body, n, {**bound, index: v}) for v in range(low, high + 1))
        if expr.is_Add or isinstance(expr, MatAdd):
            return sum(self.value(arg, n, bound) for arg in expr.args)
        if expr.is_Mul or isinstance(expr, (MatMul, HadamardProduct)):
            result = 1.0
            for arg in expr.args:
                factor = self.value(arg, n, bound)
                matrix_product = isinstance(expr, MatMul) and np.ndim(result) == 2 and np.ndim(factor) == 2
                result = result @ factor if matrix_product else result * factor
            return result
        if expr.is_Pow or isinstance(expr, HadamardPower):
            return self.value(expr.base, n, bound) ** self.value(expr.exp, n, bound)
        if isinstance(expr, sp.MatrixSymbol):
            return self.matrix_symbol(expr, n)
        if isinstance(expr, Transpose):
            return np.transpose(self.value(expr.arg, n, bound))
        if isinstance(expr, OneMatrix):
            rows, cols = (int(self.value(size, n, bound)) for size in expr.shape)
            return np.ones((rows, cols))
        if isinstance(expr, ElementwiseApplyFunction):
            variable = expr.function.variables[0]
            return self.value(expr.function.expr, n, {**bound, variable: self.value(expr.expr, n, bound)})
        if isinstance(expr, sp.KroneckerDelta):
            return float(self.value(expr.args[0], n, bound) == self.value(expr.args[1], n, bound))
        if isinstance(expr, sp.Piecewise):
            result = None
            for piece, condition in reversed(expr.args):
                taken = self.value(condition, n, bound)
                result = np.where(taken, self.value(piece, n, bound), result if result is not None else np.nan)
            return result if np.ndim(result) else float(result)
        if isinstance(expr, sp.Rel):
            compare = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}[expr.rel_op]
            return compare(self.value(expr.lhs, n, bound), self.value(expr.rhs, n, bound))
        if isinstance(expr, sp.Derivative):
            return self._activation_derivative(expr, n, bound)
        if isinstance(expr, sp.Function):
            return self._function(expr, n, bound)
        if isinstance(expr, (sp.Max, sp.Min)):
            reduce = np.maximum if isinstance(expr, sp.Max) else np.minimum
            return reduce.reduce([self.value(arg, n, bound) for arg in expr.args])
        raise TypeError(f"cannot evaluate {expr!r}")

    def _scalar(self, symbol, bound):
        training = self.spec.training
        values = {
            q.SAMPLE_LOSS: lambda: self.oracle.sample_loss(self._row),
            q.LOSS: lambda: self.oracle.loss,
            q.LEARNING_RATE: lambda: training.learning_rate,
            q.N_SAMPLES: lambda: self.oracle.samples,
            q.MOMENTUM: lambda: training.momentum,
            q.BETA1: lambda: training.beta1,
            q.BETA2: lambda: training.beta2,
            q.EPSILON: lambda: training.epsilon,
            q.STEP: lambda: 1,
        }
        if symbol in values:
            return float(values[symbol]())
        raise KeyError(symbol)

    def _timed(self, expr, bound):
        parameter = expr.parameter
        if isinstance(expr, q.Current):
            if parameter in (q.VELOCITY, q.MOMENT):
                return 0.0  # every optimizer's state starts at zero
            if parameter == q.PARAMETER:
                name, index = bound["parameter"]
                return float(self.oracle.params[name][index])
            return self.value(parameter, self._row, bound)
        if parameter in bound:
            return bound[parameter]
        if parameter == q.PARAMETER:
            name, index = bound["parameter"]
        else:
            name, index = _parameter_name(self.oracle.network, parameter)
        return float(self.oracle.stepped()[name][index])

    def _activation(self, function):
        """The spec's layer that uses this activation (for its parameters, e.g. leaky relu's alpha)."""
        name = q.activation_name(function)
        return next(layer for layer in self.spec.layers if layer.activation == name)

    def _function(self, expr, n, bound):
        arguments = [self.value(arg, n, bound) for arg in expr.args]
        if q.activation_name(expr.func) is not None:
            layer = self._activation(expr.func)
            return _elementwise_function(layer.activation, layer.activation_params)(*arguments) \
                * np.ones_like(arguments[0])
        function = _NUMPY.get(expr.func.__name__)
        if function is None:
            function = np.vectorize(lambda *values: float(expr.func(*(sp.Float(v) for v in values))))
        return function(*arguments)

    def _activation_derivative(self, expr, n, bound):
        """phi'(u) by central differences of phi, the activation as the registry defines it."""
        function = expr.expr
        if q.activation_name(function.func) is None:
            return self.value(expr.doit(), n, bound)
        layer = self._activation(function.func)
        forward = _elementwise_function(layer.activation, layer.activation_params)
        at = self.value(function.args[0], n, bound)
        step = 1e-3 * (1 + np.abs(at))
        values = [forward(at + offset * step) for offset in (-2, -1, 1, 2)]
        return (values[0] - 8 * values[1] + 8 * values[2] - values[3]) / (12 * step)


def _pinned(expr, bound: dict):
    """``expr`` with the sums' indices bound so far set to their values."""
    values = {symbol: sp.Integer(value) for symbol, value in bound.items()
              if isinstance(symbol, sp.Symbol) and isinstance(value, int) and symbol in expr.free_symbols}
    return expr.xreplace(values) if values else expr


def _close(got, expected) -> bool:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if got.shape != expected.shape and got.size != expected.size:
        return False
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    return bool(np.all(np.abs(got.reshape(expected.shape) - expected) <= TOLERANCE * scale))


def _index_values(chain: Chain, spec: Spec, samples: int, network: Network | None = None) -> list[dict]:
    """A few values for each free unit index of a chain: the first unit, one in the middle, the last; every
    sample for a second sample index (n', over a batch), the first sample index being the chain's own. A window
    layer's indices (channel, position, offset) run over its own axes; with many of them, the first and the last."""
    symbols = sorted((s for s in chain.lhs.free_symbols | set().union(*(st.expr.free_symbols for st in chain.steps))
                      if s in q.INDEX_ROLES and q.INDEX_ROLES[s].relation != "sample"), key=str)
    windowed = any(_is_window_index(symbol) for symbol in symbols)
    options = []
    for symbol in symbols:
        role = q.INDEX_ROLES[symbol]
        if role.relation.startswith("sample"):
            options.append(list(range(1, samples + 1)))
            continue
        units = network.layer(role.layer).index_extent(symbol) if _is_window_index(symbol) else spec.sizes[role.layer]
        options.append(sorted({1, units} if windowed and len(symbols) > 3 else {1, (units + 1) // 2, units}))
    return [dict(zip(symbols, combination)) for combination in itertools.product(*options)]


def _is_window_index(symbol) -> bool:
    return q.INDEX_ROLES[symbol].relation.rstrip("'") in q.WINDOW_INDEX_ROLES


def _parameters_to_try(network: Network) -> list[tuple[str, tuple]]:
    """The first entry of each matrix and the last of each vector: one per parameter, and both ends met."""
    return [(p.name, p.entries()[0 if len(p.shape) == 2 else -1]) for p in network.parameters]


# An optimizer's state updates feed its parameter update; they are checked through it.
_STATE_CHAINS = ("update.moment", "update.velocity")


def verify(derivation: Derivation, oracle: Oracle | None = None) -> Report:
    """Evaluates every step of every chain and compares it with the chain's left-hand side."""
    spec = derivation.spec
    oracle = oracle or Oracle(spec)
    explicit = derivation.section("explicit")
    shared = dict(explicit.facts["shared"]) if explicit else {}
    evaluator = Evaluator(oracle, derivation.conventions.error_sign, derivation.conventions.column_vectors, shared)
    states = [chain for chain in derivation.chains() if chain.key in _STATE_CHAINS]
    report = Report()
    for chain in derivation.chains():
        if chain.key in _STATE_CHAINS or chain.scope == "general":
            continue  # a general equation (symbolic layers) is checked through its specialisations
        for where in _index_values(chain, spec, oracle.samples, oracle.network):
            for n, bound in _contexts(chain, oracle):
                if chain.key == "update.parameter":
                    # The new moment and velocity, from their own update rules, as the step uses them.
                    for state in states:
                        bound[state.lhs] = evaluator.value(state.result, n, bound)
                _check_chain(chain, evaluator, n, bound, where, report)
    return report


def _contexts(chain: Chain, oracle: Oracle):
    """(sample, bound symbols) pairs to evaluate a chain at, by what the chain is a function of."""
    if chain.scope == "function":
        for point in VARIABLE_POINTS:
            yield 0, {q.VARIABLE: point}
    elif chain.scope in ("batch", "update"):
        if chain.lhs.has(q.PARAMETER) or any(step.expr.has(q.PARAMETER) for step in chain.steps):
            for parameter in _parameters_to_try(oracle.network):
                yield 0, {"parameter": parameter}
        else:
            yield 0, {}
    else:
        for n in range(oracle.samples):
            yield n, {}


def _check_chain(chain, evaluator, n, bound, where, report):
    substitute = {symbol: sp.Integer(value) for symbol, value in where.items()}
    if chain.scope == "sample":
        # A sample's quantity written with its index (over a batch, u_nj): the sample the chain is checked on.
        substitute[q.sample_index()] = sp.Integer(n + 1)
    try:
        values = [evaluator.value(expr.xreplace(substitute), n, bound)
                  for expr in [chain.lhs] + [step.expr for step in chain.steps]]
    except Kink:
        report.kinks += 1  # no derivative to compare at this point; the other points check the chain
        return
    for position, got in enumerate(values[1:], start=1):
        report.checked += 1
        if not _close(got, values[0]):
            where_text = {**{str(symbol): value for symbol, value in where.items()}, "sample": n}
            report.mismatches.append(Mismatch(chain.key, position, where_text, values[0], got))
