"""A worksheet as platform exercises: what each exercise gives, what it asks, in LaTeX for MathJax.

Exporters (Moodle, QTI, PrairieLearn) only lay these out; the numbers are the worksheet's.
"""

from __future__ import annotations

from dataclasses import dataclass

from symbp.classroom.answers import Answer, answers_of
from symbp.classroom.grading import ABSOLUTE, RELATIVE
from symbp.render.latex.document import Writer, notation_for
from symbp.render.latex.worksheet_document import penalised_objective
from symbp.symbolic import quantities as q
from symbp.worksheet.exercises import Worksheet

TITLES = {
    "forward": "Forward pass and loss",
    "delta": "Error terms",
    "normalisation": "The normalised layer",
    "gradient": "Gradients",
    "penalty": "Weight penalties",
    "update": "One step of gradient descent",
    "batch_norm": "The batch-normalised layer on a batch of three",
    "window": "A convolution or pooling layer by hand",
    "descent": "Gradient descent on a line",
}
PROMPTS = {
    "forward": "Compute every pre-activation and output of the network, and the loss.",
    "delta": "Compute the error term of every unit, from the output layer back.",
    "normalisation": "For each normalised layer, compute the weighted sums, their mean, their (biased) variance, "
                     "the scale sqrt(variance + epsilon) and the normalised values on the way forward, and on the way "
                     "back the error terms at the normalised values and at the weighted sums.",
    "gradient": "Compute the gradient of the loss with respect to every parameter.",
    "penalty": "For each penalised weight, compute the derivative of its penalty and the gradient of the penalised "
               "loss, the gradient of the loss plus that derivative.",
    "update": "Compute every parameter after one step of gradient descent with the learning rate given.",
    "batch_norm": "One training step through the batch-normalised layer on the batch of three samples given: "
                  "compute the weighted sums of each sample, each unit's mean, (biased) variance and scale "
                  "sqrt(variance + epsilon) over the batch, the normalised values and the pre-activations; then, from "
                  "the derivatives of the batch's loss L at the pre-activations given, the derivatives of L at the "
                  "normalised values and at the weighted sums (through the batch's mean and variance), and the "
                  "gradients of L with respect to the gains, the shifts and the weights.",
    "window": "The network's first convolution or pooling layer, made small, on one sample: from its input, its kernel "
              "and bias (a convolution's) and the derivatives of the loss L at its outputs given, compute its outputs, "
              "the gradients of L with respect to the kernel and the bias, and the derivative of L at each input "
              "entry (max pooling sends each output's derivative to its window's first largest entry, average "
              "pooling shares it equally among the window's entries).",
    "descent": "Starting from the parameters given, take steps of full-batch gradient descent on the line's "
               "mean squared error and give the parameters after each step.",
}
ACCURACY = (f"Give at least 4 significant digits; answers within {RELATIVE:.1%} of the exact value "
            f"(at least {ABSOLUTE:g}) are accepted.")


@dataclass(frozen=True)
class Item:
    symbol: str  # LaTeX
    answer: Answer

    @property
    def tolerance(self) -> float:
        return max(RELATIVE * abs(self.answer.value), ABSOLUTE)


@dataclass(frozen=True)
class Exercise:
    key: str
    title: str
    prompt: str
    given: tuple[tuple[str, str], ...]  # (LaTeX symbol, LaTeX value)
    items: tuple[Item, ...]


def _given_network(sheet: Worksheet, writer: Writer) -> list[tuple[str, str]]:
    hand = sheet.hand
    given = [(writer.math(q.inputs()[i]), writer.math(v)) for i, v in enumerate(hand.x, start=1)]
    given += [(writer.math(q.targets()[k]), writer.math(v)) for k, v in enumerate(hand.y, start=1)]
    # A dropout layer's fixed mask belongs with the input it multiplies.
    given += [(writer.math(q.mask(int(name[1:]))[i]), writer.math(v))
              for name, mask in hand.masks.items() for i, v in enumerate(mask, start=1)]
    given += [(writer.math(parameter), writer.math(hand.values[parameter])) for parameter in hand.gradients]
    given += [(writer.math(quantity), writer.math(value)) for quantity, value in hand.normalisation.items()
              if q.ROLES.get(quantity) is not None and q.ROLES[quantity].kind == "stabiliser"]
    # With weight penalties, the loss the step reduces: the sample's loss plus the penalties, as the sheet states it.
    if hand.penalties:
        given.append((writer.math(q.PENALISED_LOSS), writer.math(penalised_objective(hand.spec))))
    given.append((writer.math(q.LEARNING_RATE), writer.math(hand.rate)))
    return given


def _given_line(sheet: Worksheet, writer: Writer) -> list[tuple[str, str]]:
    descent = sheet.descent
    w, b = descent.history[0]
    points = ", ".join(f"({writer.math(x)}, {writer.math(y)})" for x, y in zip(descent.xs, descent.ys))
    return [(r"(x, y)", points), (r"w^{(0)}", writer.math(w)), (r"b^{(0)}", writer.math(b)),
            (writer.math(q.LEARNING_RATE), writer.math(descent.rate))]


def exercises(sheet: Worksheet, notation_name: str | None = None) -> list[Exercise]:
    """The sheet's numerical parts, one exercise each, in the order a student works them."""
    writer = Writer(notation_for(sheet.hand.spec, notation_name))
    found = []
    answers = answers_of(sheet)
    for key in TITLES:
        parts = ("forward", "loss") if key == "forward" else (key,)
        items = tuple(Item(answer_symbol(writer, answer), answer) for answer in answers if answer.part in parts)
        if not items:
            continue  # a part the network has none of (no normalised layer)
        if key in ("batch_norm", "window"):
            given = [(writer.math(quantity), writer.math(value)) for quantity, value in getattr(sheet, key).given()]
        else:
            given = _given_line(sheet, writer) if key == "descent" else _given_network(sheet, writer)
        own = key in ("descent", "batch_norm", "window")
        prompt = PROMPTS[key] if own else _network_words(sheet) + " " + PROMPTS[key]
        found.append(Exercise(key, TITLES[key], prompt, tuple(given), items))
    return found


def _network_words(sheet: Worksheet) -> str:
    spec = sheet.hand.spec
    layers = "; ".join(f"layer {number}: {layer.units} unit{'s' if layer.units > 1 else ''}, {layer.activation}"
                       f"{', layer-normalised' if layer.normalization else ''}"
                       for number, layer in enumerate(spec.layers, start=1))
    scale = f" times {spec.loss.scale:g}" if spec.loss.scale != 1 else ""
    penalised = sorted({q.ROLES[parameter.base].layer for parameter in sheet.hand.penalties})
    penalties = (f" The weights of layer{'s' if len(penalised) > 1 else ''} {' and '.join(map(str, penalised))} are "
                 "penalised (the biases are not): a step of gradient descent reduces the loss plus the penalties, "
                 "given below." if penalised else "")
    return (f"The network has {spec.inputs} inputs ({layers}) and the loss is the {spec.loss.name.replace('_', ' ')}"
            f"{scale}, summed over the outputs, for one sample.{penalties}")


def answer_symbol(writer: Writer, answer: Answer) -> str:
    if answer.part == "update":
        return "{" + writer.math(answer.quantity.parameter) + r"}^{\text{new}}"
    return writer.math(answer.quantity)
