"""Notation presets: how each reference text names the quantities of backpropagation.

A preset is a small object that turns a quantity and its already-printed indices into LaTeX
(``weight(2, "i", "j")`` is ``w^{(2)}_{i,j}`` in the lab's notation and ``w_{jk}`` in Fausett's).
It also carries the few conventions that change the mathematics on the page: Fausett's error
term is the negative gradient, and the update is written ``w(new) = w(old) + Delta w``. The
printer (``symbp.render.latex.printer``) asks the preset; the derivation never does.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace

import sympy as sp

from symbp.errors import SymbpError
from symbp.registry.rules import activation_named

DEFAULT_NOTATION = "lab"

# A window layer's indices (symbp.symbolic.quantities.WINDOW_INDEX_ROLES), each with the letters it prefers, first
# to last; a letter that the notation gives a unit, a sample or a quantity is never taken.
_WINDOW_LETTERS = {
    "filter": "fgh", "channel": "cgh", "position": "pqgh", "position2": "qpgh", "offset": "tuvrs",
    "offset2": "uvtsr", "source": "rsvhg", "source2": "srvhg",
}
# o is too like a 0 to be an index.
_FALLBACK_LETTERS = (*"lnpqrstuvghcf", r"\kappa", r"\lambda", r"\nu", r"\xi", r"\rho", r"\tau")
# Letters every notation writes a quantity or a function with: a, b, w, x, y, z, the derivative's d, e, and the
# dropout mask's m.
_QUANTITY_LETTERS = frozenset("abdemwxyz")


class NotationError(SymbpError, ValueError):
    """An unknown notation name, or a network the notation cannot name."""


@dataclass(frozen=True)
class Shape:
    """What a notation needs to know about a network to name its parts."""

    sizes: tuple[int, ...]  # inputs first
    biases: tuple[bool, ...]
    activations: tuple[str, ...]
    windows: tuple[bool, ...] = ()  # whether each layer slides a window (convolution, pooling)

    @property
    def depth(self) -> int:
        return len(self.sizes) - 1

    @property
    def windowed(self) -> bool:
        return any(self.windows)


def pair(first: str, second: str) -> str:
    """Two indices side by side, w_{jk}; with a comma once either is longer than a letter, w_{3,10}."""
    short = all(len(index.rstrip("'")) == 1 for index in (first, second))
    return f"{first}{second}" if short else f"{first},{second}"


def _operator(label: str) -> str:
    return r"\operatorname{" + label.replace("_", r"\_") + "}"


@dataclass(frozen=True)
class Notation:
    """The actuarial lab's notation; the other presets override what differs."""

    name: str = "lab"
    source: str = "the actuarial lab (ACTL3143)"
    shape: Shape | None = None
    letters: dict[str, str] = field(default_factory=lambda: {"prev": "i", "cur": "j", "next": "l", "sample": "n"})
    # +1: delta is dL/dz; -1: delta is -dL/dz (Fausett's error information term).
    error_sign: int = 1
    learning_rate_symbol: str = r"\eta"
    generic_activation: str | None = None  # one letter for every activation when a network uses only one
    sigmoid_symbol: str = "S"
    column_vectors: bool = False  # matrix form as W a + b per sample (True) or as A W + 1 b over a batch
    transpose_mark: str = r"^{\top}"
    update_style: str = "time"  # "time": w^(t+1); "arrow": w -> w - ...; "new_old": w(new) = w(old) + ...
    # How a pre-activation is written: sum_i w_ij a_i + b_j (lab), or v_0j + sum_i x_i v_ij (Fausett).
    bias_first: bool = False
    weight_first: bool = True
    # The general equations: the letters for the output layer and any hidden layer, the activation's
    # unnamed symbol, and how the texts number them (tags by equation: output_delta, hidden_delta, ...).
    general_layer_letters: tuple[str, str] = ("L", "k")
    generic_symbol: str = r"\phi"
    equation_tags: dict[str, str] = field(default_factory=lambda: {"output_weight": "3", "hidden_delta": "4"})
    numbers_layers: bool = True  # w^(l) with a layer number; Fausett and the lesson name layers instead
    samples_implicit: bool = False  # x_i, y_i name the sample's values themselves (the lab's regression)
    # Print the notation's symbols as macros (\act, \err, \rate) that the document defines once at its top.
    macros: bool = False
    layer_offset: int = 0  # what the text adds to symbp's layer number (the article counts the input as 1)
    # A normalised layer's spread (sigma^2, sigma_hat); a text whose sigmoid is sigma writes it otherwise.
    spread_letter: str = r"\sigma"
    # Letters the text writes something else with, beyond its unit indices (Fausett's f and weight letters).
    reserved_letters: frozenset = frozenset()

    def for_network(self, shape: Shape) -> Notation:
        return replace(self, shape=shape)

    def with_macros(self) -> Notation:
        return replace(self, macros=True)

    # -- symbols a teacher may rename: each defined once, as a macro, at the top of a document
    def macro_definitions(self) -> list[tuple[str, str, str]]:
        """(macro name, its definition, what it stands for), in the order the document defines them."""
        primary = self.generic_activation or self.sigmoid_symbol
        table = [("act", primary, "the activation function" if self.generic_activation else "the sigmoid")]
        if self.sigmoid_symbol != primary:
            table.append(("sigm", self.sigmoid_symbol, "the sigmoid"))
        if self.generic_symbol not in (primary, self.sigmoid_symbol):
            table.append(("anyact", self.generic_symbol, "any activation, in the general equations"))
        table += [("err", r"\delta", "the error term"), ("rate", self.learning_rate_symbol, "the learning rate")]
        return table

    def named(self, symbol: str) -> str:
        """``symbol`` as printed: the macro that the document defines for it, when printing with macros."""
        if self.macros:
            for macro, definition, _ in self.macro_definitions():
                if definition == symbol:
                    return "\\" + macro
        return symbol

    @property
    def err(self) -> str:
        return self.named(r"\delta")

    # -- layers and indices
    @property
    def depth(self) -> int:
        return self.shape.depth if self.shape else 2

    def layer_text(self, layer) -> str:
        """A layer's number as the text prints it; a symbolic layer of the general equations (L, l + 1) in
        the text's own letters."""
        if isinstance(layer, int) or getattr(layer, "is_Integer", False):
            return str(int(layer) + self.layer_offset)
        from symbp.derivation.general import DEPTH, LAYER

        depth, hidden = self.general_layer_letters
        return sp.latex(layer.xreplace({DEPTH: sp.Symbol(depth), LAYER: sp.Symbol(hidden)}))

    def layer_mark(self, layer: int) -> str:
        return f"^{{({self.layer_text(layer)})}}"

    def layer_name(self, layer: int) -> str:
        """How prose refers to a layer, e.g. 'layer 2' or 'the hidden layer H'."""
        number = self.layer_text(layer)
        return f"layer~{number}" if number.isdigit() else f"layer~${number}$"

    def index(self, layer: int, relation: str) -> str:
        """The letter for a unit index; a primed relation ("cur'") is a second index over the same layer."""
        base = relation.rstrip("'")
        if base in _WINDOW_LETTERS:
            return self.window_letters()[base] + "'" * (len(relation) - len(base))
        return self.letter(layer, base) + "'" * (len(relation) - len(base))

    def reserved(self) -> frozenset:
        """The letters the text writes something other than an index with."""
        return self.reserved_letters

    def window_letters(self) -> dict[str, str]:
        """A window layer's index letters: channel, position, offset (p, q and t, u on two axes), none of them a
        letter that the notation gives a unit of any layer, a sample or a quantity."""
        taken = set(_QUANTITY_LETTERS | self.reserved())
        for layer in range(self.depth + 1):
            for relation in ("prev", "cur", "next"):
                taken.add(self.letter(layer, relation).rstrip("'"))
        taken.add(self.letter(0, "sample"))
        if self.update_style == "time":
            taken.add("t")  # w^(t): the step of gradient descent
        letters = {}
        for role, preferred in _WINDOW_LETTERS.items():
            letter = next(c for c in (*preferred, *_FALLBACK_LETTERS) if c not in taken)
            letters[role] = letter
            taken.add(letter)
        return letters

    def letter(self, layer: int, relation: str) -> str:
        return self.letters[relation]

    # -- per-unit quantities; i, j are printed indices
    def input(self, i: str) -> str:
        return f"x_{{{i}}}"

    def target(self, k: str) -> str:
        return f"y_{{{k}}}"

    def prediction(self, k: str) -> str:
        return rf"\hat{{y}}_{{{k}}}"

    def pre(self, layer: int, j: str) -> str:
        return f"z{self.layer_mark(layer)}_{{{j}}}"

    def act(self, layer: int, j: str) -> str:
        return self.input(j) if layer == 0 else f"a{self.layer_mark(layer)}_{{{j}}}"

    def weight(self, layer: int, i: str, j: str, time: str | None = None) -> str:
        mark = f"^{{({time}, {layer})}}" if time else self.layer_mark(layer)
        return f"w{mark}_{{{i},{j}}}"

    def kernel(self, layer: int, indices: list[str], time: str | None = None) -> str:
        """A convolution's weight: filter, input channel and window offsets, w^(l)_{f,c,t}."""
        mark = f"^{{({time}, {layer})}}" if time else self.layer_mark(layer)
        return f"w{mark}_{{{','.join(indices)}}}"

    def first_max(self, layer: int, entries: str) -> str:
        """A max-pooling layer's indicator of each window's first largest entry, chi^(l)_{c,p,t}."""
        return rf"\chi{self.layer_mark(layer)}_{{{entries}}}"

    def weight_number(self, layer: int, i, j):
        """The number of a weight, as a SymPy expression in its indices, where the text numbers weights."""
        return None

    def bias_number(self, layer: int, j):
        return None

    def numbered_weight(self, number: str, time: str | None = None) -> str:
        raise NotImplementedError(f"the {self.name} notation does not number its weights")

    def bias(self, layer: int, j: str, time: str | None = None) -> str:
        mark = f"^{{({time}, {layer})}}" if time else self.layer_mark(layer)
        return f"b{mark}_{{{j}}}"

    def delta(self, layer: int, j: str) -> str:
        return rf"{self.err}{self.layer_mark(layer)}_{{{j}}}"

    def mask(self, layer: int, i: str) -> str:
        """The dropout mask's entry on input i of layer ``layer``: m^(l)_i, or m_{x_i} in a text without layer
        marks (named after the unit it masks)."""
        mark = self.layer_mark(layer)
        return f"m{mark}_{{{i}}}" if mark else f"m_{{{self.act(layer - 1, i)}}}"

    def skip(self, layer: int) -> str:
        """Whether layer ``layer`` adds its input to its pre-activation (1 for a residual layer, 0 otherwise):
        s^(l), carrying the layer as the text's other quantities do."""
        return f"s{self.layer_mark(layer)}"

    def mask_matrix(self, layer: int) -> str:
        """The dropout mask on layer ``layer``'s inputs: a matrix, a row per sample, or in a text that writes one
        sample's column vectors, a vector."""
        mark = self.layer_mark(layer)
        letter = r"\mathbf{m}" if self.column_vectors else r"\mathbf{M}"
        return f"{letter}{mark}" if mark else f"{letter}_{{{self.matrix('act', layer - 1)}}}"

    def incoming(self, layer: int, j: str) -> str | None:
        """A name for sum_k delta_k w_jk, where the text gives it one."""
        return None

    # -- a normalised layer: its weighted sums u, normalised values x_hat, gain gamma and shift beta, the error
    # terms at x_hat (the literature's g) and at u, and per sample its mean, variance, scale and epsilon
    def _normalisation_letter(self, kind: str) -> str:
        return {"weighted": "u", "normalised": r"\hat{x}", "normalised_delta": "g",
                "weighted_delta": rf"\tilde{{{self.err}}}", "gain": r"\gamma", "shift": r"\beta"}[kind]

    def normalisation_unit(self, kind: str, layer: int, j: str, time: str | None = None,
                           sample: str | None = None) -> str:
        """Unit j's ``kind`` (``symbp.symbolic.quantities.NORMALISATION_UNIT_KINDS``, gain or shift); a gain or
        shift at a step of the optimizer carries the step as a weight does; over a batch, sample n's: u_nj."""
        mark = f"^{{({time}, {layer})}}" if time else self.layer_mark(layer)
        subscript = j if sample is None else pair(sample, j)
        return f"{self._normalisation_letter(kind)}{mark}_{{{subscript}}}"

    def normalisation_statistic(self, kind: str, layer: int, j: str | None = None) -> str:
        """The layer's mean, variance, scale sqrt(variance + epsilon) or epsilon on one sample; with a unit j, that
        unit's over the batch (batch normalisation): mu_j."""
        mark = self.layer_mark(layer)
        spread = self.spread_letter
        unit = "" if j is None or kind == "stabiliser" else f"_{{{j}}}"
        return {"mean": rf"\mu{mark}{unit}", "variance": rf"\left({spread}{mark}{unit}\right)^{{2}}",
                "scale": rf"\hat{{{spread}}}{mark}{unit}", "stabiliser": rf"\varepsilon{mark}"}[kind]

    # -- losses and scalars
    def sample_loss(self, n: str | None = None) -> str:
        return r"\ell" if n is None else rf"\ell_{{{n}}}"

    def loss(self) -> str:
        return r"\mathcal{L}(\mathcal{D}, \boldsymbol{\theta})"

    def penalised_loss(self) -> str:
        """One sample's loss plus the weight penalties, as a worksheet names it: the data set's loss, the data set
        being that sample, where the preset tells it from the sample's loss."""
        return self.loss()

    def learning_rate(self) -> str:
        return self.named(self.learning_rate_symbol)

    def samples(self) -> str:
        return "N"

    # -- activations
    def activation(self, name: str) -> str:
        if name == "generic":
            return self.named(self.generic_symbol)
        if self.generic_activation and self.shape and len(set(self.shape.activations)) == 1:
            return self.named(self.generic_activation)
        entry = activation_named(name)
        if entry.notation_slot:
            return self.named(getattr(self, entry.notation_slot))
        return entry.display or _operator(entry.short_name)

    def derivative_of(self, function: str) -> str:
        return f"{function}'"

    # -- matrices (the matrix form of the backward pass)
    def matrix(self, kind: str, layer: int) -> str:
        mark = self.layer_mark(layer)
        return {
            "data": r"\mathbf{X}",
            "targets": r"\mathbf{Y}",
            "pre": rf"\mathbf{{Z}}{mark}",
            "act": r"\mathbf{X}" if layer == 0 else rf"\mathbf{{A}}{mark}",
            "weight": rf"\mathbf{{W}}{mark}",
            "bias": rf"\mathbf{{b}}{mark}",
            "delta": rf"\boldsymbol{{\Delta}}{mark}",
        }[kind]

    def time(self, when: str) -> str:
        return {"now": "t", "next": "t+1"}[when]


@dataclass(frozen=True)
class ArticleNotation(Notation):
    """Tashfeen's backward-pass article: the input is layer 1, W^(l) a^(l-1) + b^(l), E, sigma."""

    name: str = "article"
    source: str = "Tashfeen's article on the backward pass"
    letters: dict[str, str] = field(default_factory=lambda: {"prev": "k", "cur": "j", "next": "i", "sample": "n"})
    sigmoid_symbol: str = r"\sigma"
    column_vectors: bool = True
    transpose_mark: str = "^{T}"
    update_style: str = "arrow"

    layer_offset: int = 1
    spread_letter: str = r"\varsigma"  # sigma is the sigmoid
    general_layer_letters: tuple[str, str] = ("L", "l")
    generic_symbol: str = r"\sigma"
    equation_tags: dict[str, str] = field(default_factory=lambda: {
        "output_weight": "1", "output_delta": "2", "output_bias": "3", "weight": "4", "hidden_delta": "5", "bias": "6"})

    def weight(self, layer: int, i: str, j: str, time: str | None = None) -> str:
        return f"W{self.layer_mark(layer)}_{{{pair(j, i)}}}"

    def kernel(self, layer: int, indices: list[str], time: str | None = None) -> str:
        return f"W{self.layer_mark(layer)}_{{{','.join(indices)}}}"

    def bias(self, layer: int, j: str, time: str | None = None) -> str:
        return f"b{self.layer_mark(layer)}_{{{j}}}"

    def sample_loss(self, n: str | None = None) -> str:
        return "E" if n is None else rf"E(\mathcal{{W}}, \mathbf{{b}}, \vec{{x}}_{{{n}}})"

    def loss(self) -> str:
        return r"\bar{E}"

    def mask_matrix(self, layer: int) -> str:
        return rf"\vec{{m}}{self.layer_mark(layer)}"

    def matrix(self, kind: str, layer: int) -> str:
        mark = self.layer_mark(layer)
        return {
            "data": r"\vec{x}",
            "targets": r"\vec{y}",
            "pre": rf"\vec{{z}}{mark}",
            "act": r"\vec{x}" if layer == 0 else rf"\vec{{a}}{mark}",
            "weight": f"W{mark}",
            "bias": rf"\vec{{b}}{mark}",
            "delta": rf"{self.err}{mark}",
        }[kind]


@dataclass(frozen=True)
class SlidesNotation(Notation):
    """The lecture slides: w^l_jk from unit k of layer l-1 to unit j of layer l, cost C."""

    name: str = "slides"
    source: str = "the lecture slides on backpropagation"
    letters: dict[str, str] = field(default_factory=lambda: {"prev": "k", "cur": "j", "next": "k'", "sample": "i"})
    sigmoid_symbol: str = r"\sigma"
    column_vectors: bool = True
    update_style: str = "arrow"
    spread_letter: str = r"\varsigma"  # sigma is the sigmoid

    general_layer_letters: tuple[str, str] = ("L", "l")
    generic_symbol: str = r"\sigma"
    equation_tags: dict[str, str] = field(default_factory=lambda: {
        "output_delta": "BP1", "hidden_delta": "BP2", "bias": "BP3", "weight": "BP4"})

    def layer_mark(self, layer: int) -> str:
        return f"^{{{self.layer_text(layer)}}}"

    def weight(self, layer: int, i: str, j: str, time: str | None = None) -> str:
        return f"w{self.layer_mark(layer)}_{{{pair(j, i)}}}"

    def kernel(self, layer: int, indices: list[str], time: str | None = None) -> str:
        return f"w{self.layer_mark(layer)}_{{{','.join(indices)}}}"

    def bias(self, layer: int, j: str, time: str | None = None) -> str:
        return f"b{self.layer_mark(layer)}_{{{j}}}"

    def prediction(self, k: str) -> str:
        return self.act(self.depth, k)

    def sample_loss(self, n: str | None = None) -> str:
        return "C_{x}" if n is None else f"C_{{x_{{{n}}}}}"

    def loss(self) -> str:
        return "C"

    def matrix(self, kind: str, layer: int) -> str:
        return {
            "data": r"\mathbf{x}",
            "targets": r"\mathbf{y}",
            "pre": f"\\mathbf{{z}}^{{{layer}}}",
            "act": r"\mathbf{x}" if layer == 0 else f"\\mathbf{{a}}^{{{layer}}}",
            "weight": f"\\mathbf{{w}}^{{{layer}}}",
            "bias": f"\\mathbf{{b}}^{{{layer}}}",
            "delta": f"\\boldsymbol{{{self.err}}}^{{{layer}}}",
        }[kind]


_FAUSETT_WEIGHTS = "wvutsr"
# The lesson's hidden layers, input side first: j as the lesson writes one hidden layer, then letters
# no other quantity uses (n counts samples, k is the output's).
_LESSON_HIDDEN_LETTERS = "jlmpqrs"
_FAUSETT_UNITS = "kjhgfe"


@dataclass(frozen=True)
class FausettNotation(Notation):
    """Fausett's: x_i -> z_j (weights v_ij, bias v_0j) -> y_k (weights w_jk), z_in_j, y_in_k, alpha.

    Fausett's error information term is delta_k = (t_k - y_k) f'(y_in_k), the negative of dE/dy_in_k,
    and weights are updated by w(new) = w(old) + alpha delta_k z_j.
    """

    name: str = "fausett"
    source: str = "Fausett's Fundamentals of Neural Networks, as in the backpropagation blog post"
    bias_first: bool = True
    weight_first: bool = False
    error_sign: int = -1
    learning_rate_symbol: str = r"\alpha"
    generic_activation: str | None = "f"
    sigmoid_symbol: str = "f"
    update_style: str = "new_old"
    numbers_layers: bool = False
    generic_symbol: str = "f"
    equation_tags: dict[str, str] = field(default_factory=dict)

    def reserved(self) -> frozenset:
        # f is the activation; each layer's weights have a letter, from the output down.
        return frozenset("f" + _FAUSETT_WEIGHTS[:self.depth])

    def _from_output(self, layer: int) -> int:
        return self.depth - layer

    def letter(self, layer: int, relation: str) -> str:
        if relation == "sample":
            return "p"
        if layer == 0:
            return "i"
        if self.depth == 1:
            return "j"
        return _FAUSETT_UNITS[self._from_output(layer)]

    def layer_mark(self, layer: int) -> str:
        return ""

    def _hidden_mark(self, layer: int) -> str:
        # One hidden layer is simply z; several are told apart by a superscript.
        return "" if self.depth <= 2 else f"^{{({layer})}}"

    def layer_name(self, layer: int) -> str:
        if layer == self.depth:
            return "the output layer"
        return "the hidden layer" if self.depth == 2 else f"hidden layer~{layer}"

    def target(self, k: str) -> str:
        return f"t_{{{k}}}"

    def prediction(self, k: str) -> str:
        return f"y_{{{k}}}"

    def _unit_letter(self, layer: int) -> str:
        return "y" if layer == self.depth else "z"

    def pre(self, layer: int, j: str) -> str:
        return rf"{self._unit_letter(layer)}\_in{self._hidden_mark(layer) if layer < self.depth else ''}_{{{j}}}"

    def act(self, layer: int, j: str) -> str:
        if layer == 0:
            return self.input(j)
        mark = self._hidden_mark(layer) if layer < self.depth else ""
        return f"{self._unit_letter(layer)}{mark}_{{{j}}}"

    def _weight_letter(self, layer: int) -> str:
        return _FAUSETT_WEIGHTS[self._from_output(layer)]

    def weight(self, layer: int, i: str, j: str, time: str | None = None) -> str:
        when = rf"(\text{{{time}}})" if time else ""
        return f"{self._weight_letter(layer)}_{{{pair(i, j)}}}{when}"

    def bias(self, layer: int, j: str, time: str | None = None) -> str:
        return self.weight(layer, "0", j, time)

    def kernel(self, layer: int, indices: list[str], time: str | None = None) -> str:
        when = rf"(\text{{{time}}})" if time else ""
        return f"{self._weight_letter(layer)}_{{{','.join(indices)}}}{when}"

    def first_max(self, layer: int, entries: str) -> str:
        return rf"\chi{self._hidden_mark(layer)}_{{{entries}}}"

    def _unit(self, layer: int, j: str) -> str:
        """Fausett's name of a unit, Y_k or Z_j (with a superscript when several hidden layers)."""
        mark = self._hidden_mark(layer) if layer < self.depth else ""
        return f"{self._unit_letter(layer).upper()}{mark}_{{{j}}}"

    def _error_subscript(self, layer: int, j: str) -> str:
        # The letter (k or j) tells an output error term from a hidden one; a number cannot, so a
        # numbered error term names its unit: delta_{Y_1} and delta_{Z_1}, never two delta_1.
        return j if j == self.letter(layer, "cur") else self._unit(layer, j)

    def delta(self, layer: int, j: str) -> str:
        return rf"{self.err}_{{{self._error_subscript(layer, j)}}}"

    def incoming(self, layer: int, j: str) -> str | None:
        return rf"{self.err}\_in_{{{self._error_subscript(layer, j)}}}"

    def skip(self, layer: int) -> str:
        """Named after the layer's units, Y or Z (with its superscript when several hidden layers): s_Y."""
        mark = self._hidden_mark(layer) if layer < self.depth else ""
        return f"s_{{{self._unit_letter(layer).upper()}{mark}}}"

    def normalisation_unit(self, kind: str, layer: int, j: str, time: str | None = None,
                           sample: str | None = None) -> str:
        """Named as Fausett names a unit's net input: z_sum_j, z_norm_j (u is one of his weight letters), the
        error terms delta_norm_j and delta_sum_j as delta_in_j; gamma and beta carry the unit, as delta does; over a
        batch, pattern p's: z_norm_pj."""
        when = rf"(\text{{{time}}})" if time else ""
        unit, mark = self._unit_letter(layer), self._hidden_mark(layer) if layer < self.depth else ""
        if kind in ("weighted", "normalised"):
            suffix = "sum" if kind == "weighted" else "norm"
            return rf"{unit}\_{suffix}{mark}_{{{j if sample is None else pair(sample, j)}}}"
        # A letter (j, or a second index j' over the same units) tells the layer; a number names the unit.
        subscript = self._unit_subscript(layer, j)
        if sample is not None:
            subscript = pair(sample, subscript)
        if kind in ("weighted_delta", "normalised_delta"):
            suffix = "sum" if kind == "weighted_delta" else "norm"
            return rf"{self.err}\_{suffix}_{{{subscript}}}"
        return rf"{self._normalisation_letter(kind)}_{{{subscript}}}{when}"

    def _unit_subscript(self, layer: int, j: str) -> str:
        return j if j.rstrip("'") == self.letter(layer, "cur") else self._unit(layer, j)

    def normalisation_statistic(self, kind: str, layer: int, j: str | None = None) -> str:
        """Named after the layer's units, as its skip indicator: mu_Z, sigma^2_Z; one unit's over the batch is
        named after the unit, as its error term: mu_j, or mu_{Z_1}."""
        mark = self._hidden_mark(layer) if layer < self.depth else ""
        units = f"{self._unit_letter(layer).upper()}{mark}"
        if j is not None and kind != "stabiliser":
            units = self._unit_subscript(layer, j)
        return {"mean": rf"\mu_{{{units}}}", "variance": rf"\sigma^{{2}}_{{{units}}}",
                "scale": rf"\hat{{\sigma}}_{{{units}}}", "stabiliser": rf"\varepsilon_{{{units}}}"}[kind]

    def sample_loss(self, n: str | None = None) -> str:
        return "E" if n is None else f"E_{{{n}}}"

    def loss(self) -> str:
        return r"E_{\mathrm{total}}"

    def matrix(self, kind: str, layer: int) -> str:
        if kind in ("data", "targets") or (kind == "act" and layer == 0):
            return {"data": r"\mathbf{X}", "targets": r"\mathbf{T}", "act": r"\mathbf{X}"}[kind]
        unit = self._unit_letter(layer).upper()
        mark = self._hidden_mark(layer) if layer < self.depth else ""
        letter = self._weight_letter(layer)
        return {
            "pre": rf"\mathbf{{{unit}}}_{{\mathrm{{in}}}}{mark}",
            "act": rf"\mathbf{{{unit}}}{mark}",
            "weight": rf"\mathbf{{{letter.upper()}}}",
            "bias": rf"\mathbf{{{letter}}}_{{0}}",
            "delta": rf"\boldsymbol{{{self.err}}}_{{{unit}}}{mark}",
        }[kind]

    def time(self, when: str) -> str:
        return {"now": "old", "next": "new"}[when]


@dataclass(frozen=True)
class LessonNotation(Notation):
    """'Neural networks I': neurons H1.., O1 with net input alpha and output beta, weights w_1..w_n.

    Weights are numbered layer by layer, the biases of a layer first, then the weights from each
    input in turn, as the lesson numbers w1..w5 (hidden biases), w6..w10 (from x1), w11..w15 (from
    x2), w16 (output bias), w17..w21 (from the hidden units).
    """

    name: str = "lesson"
    source: str = "the lesson ``Neural networks I'' (house prices)"  # TeX's opening and closing quotes
    bias_first: bool = True
    weight_first: bool = False
    letters: dict[str, str] = field(default_factory=lambda: {"prev": "i", "cur": "j", "next": "k", "sample": "n"})
    reserved_letters: frozenset = frozenset("f")  # the activation
    generic_activation: str | None = "f"
    update_style: str = "time"
    numbers_layers: bool = False
    generic_symbol: str = "f"
    equation_tags: dict[str, str] = field(default_factory=dict)

    def _neuron(self, layer: int) -> str:
        if layer == self.depth:
            return "O"
        return "H" if self.depth <= 2 else f"H^{{{layer}}}"

    def layer_mark(self, layer: int) -> str:
        return ""

    def layer_name(self, layer: int) -> str:
        if layer == self.depth:
            return "the output layer"
        neuron = self._neuron(layer)
        return f"the hidden layer~{neuron if '^' not in neuron else '$' + neuron + '$'}"

    def letter(self, layer: int, relation: str) -> str:
        # One letter per layer, so that a sum's index is never another layer's free index.
        if relation == "sample":
            return "n"
        if layer == 0:
            return "i"
        if layer == self.depth:
            return "k"
        return _LESSON_HIDDEN_LETTERS[(layer - 1) % len(_LESSON_HIDDEN_LETTERS)]

    def target(self, k: str) -> str:
        return "y" if self.shape and self.shape.sizes[-1] == 1 else f"y_{{{k}}}"

    def prediction(self, k: str) -> str:
        return self.act(self.depth, k)

    def pre(self, layer: int, j: str) -> str:
        return rf"\alpha_{{{self._neuron(layer)}{j}}}"

    def act(self, layer: int, j: str) -> str:
        return self.input(j) if layer == 0 else rf"\beta_{{{self._neuron(layer)}{j}}}"

    def weight(self, layer: int, i: str, j: str, time: str | None = None) -> str:
        # With window layers the weights are not numbered (their kernels are many): each names its layer's neuron.
        if self.shape is not None and self.shape.windowed:
            return self.kernel(layer, [i, j], time)
        return super().weight(layer, i, j, time)

    def bias(self, layer: int, j: str, time: str | None = None) -> str:
        if self.shape is not None and self.shape.windowed:
            when = f"^{{({time})}}" if time else ""
            return f"b_{{{self._neuron(layer)},{j}}}{when}"
        return super().bias(layer, j, time)

    def kernel(self, layer: int, indices: list[str], time: str | None = None) -> str:
        when = f"^{{({time})}}" if time else ""
        return f"w_{{{self._neuron(layer)},{','.join(indices)}}}{when}"

    def first_max(self, layer: int, entries: str) -> str:
        return rf"\chi_{{{self._neuron(layer)},{entries}}}"

    def _offset(self, layer: int) -> int:
        sizes, biases = self.shape.sizes, self.shape.biases
        return sum((sizes[below - 1] + int(biases[below - 1])) * sizes[below] for below in range(1, layer))

    def weight_number(self, layer: int, i, j):
        if self.shape is None:
            raise NotationError("the lesson's notation numbers weights, so it needs the network's shape")
        if self.shape.windowed:
            return None  # kernels are not numbered one by one: each weight is named by its layer and indices
        units = self.shape.sizes[layer]
        row = i if self.shape.biases[layer - 1] else i - 1
        return self._offset(layer) + units * row + j

    def bias_number(self, layer: int, j):
        if self.shape is not None and self.shape.windowed:
            return None
        return self._offset(layer) + j

    def numbered_weight(self, number: str, time: str | None = None) -> str:
        when = f"^{{({time})}}" if time else ""
        return f"w_{{{number}}}{when}"

    def delta(self, layer: int, j: str) -> str:
        return rf"{self.err}_{{{self._neuron(layer)}{j}}}"

    def skip(self, layer: int) -> str:
        """Named after the layer's neurons, O or H: s_O."""
        return f"s_{{{self._neuron(layer)}}}"

    def normalisation_unit(self, kind: str, layer: int, j: str, time: str | None = None,
                           sample: str | None = None) -> str:
        """Named after the neuron, as alpha_Hj: u_Hj, gamma_Hj; the shift is b_Hj, beta being the lesson's output;
        over a batch, sample n's: u_{n,Hj}."""
        letter = "b" if kind == "shift" else self._normalisation_letter(kind)
        when = f"^{{({time})}}" if time else ""
        of_sample = "" if sample is None else f"{sample},"
        return f"{letter}_{{{of_sample}{self._neuron(layer)}{j}}}{when}"

    def normalisation_statistic(self, kind: str, layer: int, j: str | None = None) -> str:
        neuron = self._neuron(layer)
        if j is not None and kind != "stabiliser":
            neuron = f"{neuron}{j}"
        return {"mean": rf"\mu_{{{neuron}}}", "variance": rf"\sigma^{{2}}_{{{neuron}}}",
                "scale": rf"\hat{{\sigma}}_{{{neuron}}}", "stabiliser": rf"\varepsilon_{{{neuron}}}"}[kind]

    def sample_loss(self, n: str | None = None) -> str:
        return "E" if n is None else f"E_{{{n}}}"

    def loss(self) -> str:
        return "E"

    def penalised_loss(self) -> str:
        # The lesson writes both losses E; a penalised one is E with a tilde, as regularised errors are written.
        return r"\tilde{E}"

    def matrix(self, kind: str, layer: int) -> str:
        neuron = self._neuron(layer)
        return {
            "data": r"\mathbf{x}",
            "targets": r"\mathbf{y}",
            "pre": rf"\boldsymbol{{\alpha}}_{{{neuron}}}",
            "act": r"\mathbf{x}" if layer == 0 else rf"\boldsymbol{{\beta}}_{{{neuron}}}",
            "weight": rf"\mathbf{{W}}_{{{neuron}}}",
            "bias": rf"\mathbf{{b}}_{{{neuron}}}",
            "delta": rf"\boldsymbol{{{self.err}}}_{{{neuron}}}",
        }[kind]


@dataclass(frozen=True)
class LabRegressionNotation(Notation):
    """The lab's linear regression: yhat(x_i; theta^(t)) = w^(t) x_i + b^(t), with i the sample.

    A network of one linear unit with one input, as the lab writes it: no layers, no unit indices; the
    per-sample quantities carry the sample's index, and the parameters the step t of gradient descent.
    """

    letters: dict[str, str] = field(default_factory=lambda: {"prev": "i", "cur": "j", "next": "l", "sample": "i"})
    samples_implicit: bool = True
    equation_tags: dict[str, str] = field(default_factory=lambda: {"gradient_w": "1", "gradient_b": "2"})

    @property
    def _sample(self) -> str:
        return self.letters["sample"]

    def input(self, i: str) -> str:
        return f"x_{{{self._sample}}}"

    def target(self, k: str) -> str:
        return f"y_{{{self._sample}}}"

    def prediction(self, k: str) -> str:
        return rf"\hat{{y}}(x_{{{self._sample}}}; \boldsymbol{{\theta}}^{{(t)}})"

    def act(self, layer: int, j: str) -> str:
        return self.input(j) if layer == 0 else self.prediction(j)

    def weight(self, layer: int, i: str, j: str, time: str | None = None) -> str:
        return f"w^{{({time or 't'})}}"

    def bias(self, layer: int, j: str, time: str | None = None) -> str:
        return f"b^{{({time or 't'})}}"

    def sample_loss(self, n: str | None = None) -> str:
        return rf"\mathcal{{L}}\bigl({self.prediction('')}, y_{{{self._sample}}}\bigr)"

    def loss(self) -> str:
        return r"\mathcal{L}(\mathcal{D}, \boldsymbol{\theta}^{(t)})"


def lab_regression(notation: Notation) -> Notation:
    """The lab's notation for its linear regression, keeping the preset's network shape and settings."""
    return LabRegressionNotation(shape=notation.shape, macros=notation.macros)


PRESETS: dict[str, Notation] = {
    preset.name: preset
    for preset in (Notation(), ArticleNotation(), LessonNotation(), SlidesNotation(), FausettNotation())
}
NOTATION_NAMES = tuple(PRESETS)


def notation_named(name: str) -> Notation:
    """The preset called ``name``; a NotationError with a suggestion otherwise."""
    if name in PRESETS:
        return PRESETS[name]
    close = difflib.get_close_matches(str(name), NOTATION_NAMES, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(NOTATION_NAMES)}"
    raise NotationError(f"unknown notation '{name}'; {hint}")
