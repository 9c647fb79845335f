"""Bundled example specs, and what their source texts report, so runs can be compared with them.

Each entry says what the text reports (``reports``, with any printed weights in ``published``) and how
symbp's run is judged against it (``compared``); ``symbp.examples.reproduce`` runs the comparison.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

ACTUARIAL_LAB = "Actuarial lab (ACTL3143)"
TASHFEEN = "Tashfeen, 'Neural Networks: The Backward Pass'"
NEURAL_NETWORKS_I = "'Neural networks I' (data analysis course)"
WATSON_SLIDES = "Watson, 'Backpropagation' lecture slides"
FAUSETT_POST = "Backpropagation blog post in Fausett's notation"

# Keras's final weights as the lab prints them (float32).
KERAS_W1 = [[0.3025748, 0.80548114], [0.49333417, 0.5067073], [0.6842524, 0.2076197]]
KERAS_SECOND_MATRIX = [[2.5133712, 2.5152776], [2.4867477, 2.4848893]]


@dataclass(frozen=True)
class Example:
    name: str
    summary: str
    source: str
    published: dict[str, list] = field(default_factory=dict)
    tolerance: float = 0.0
    reports: str = ""
    compared: str = ""


EXAMPLES: dict[str, Example] = {
    example.name: example
    for example in (
        Example(
            "actuarial",
            "3-2-1, sigmoid then exponential, no biases, MSE, 5000 full-batch steps",
            f"{ACTUARIAL_LAB}, 'From Scratch' final weights",
            published={
                "W1": [[0.24985576, 0.74987578], [0.5000211, 0.49998626], [0.75018656, 0.25009692]],
                "W2": [[1.99874327], [3.00125615]],
            },
            tolerance=1e-6,
            reports="final weights after 5000 steps, printed to 8 digits",
            compared="every weight within 1e-6 of the printed value",
        ),
        Example(
            "actuarial_adam",
            "the lab's 3-2-1 network trained with Keras-default Adam, 5000 full-batch epochs",
            f"{ACTUARIAL_LAB}, 'From Keras' final weights",
            published={"W1": KERAS_W1},
            reports="Keras's final W1; its second matrix is printed 2 x 2, impossible for a 2 -> 1 layer",
            compared="shown beside Keras's W1, not held to it (actuarial_keras explains the gap); "
            "passes when Adam lands within 0.02 of the true weights",
        ),
        Example(
            "actuarial_keras",
            "3-2-2: the network the lab's Keras code built, Adam, 5000 full-batch epochs",
            f"{ACTUARIAL_LAB}, 'From Keras' final weights",
            published={"W1": KERAS_W1, "W2": KERAS_SECOND_MATRIX},
            tolerance=1e-5,
            reports="Keras's final weights, W1 and a 2 x 2 second matrix",
            compared="every weight within 1e-5 of the printed float32 value, training in float32 as Keras does",
        ),
        Example(
            "linear_regression",
            "y = w x + b by batch gradient descent from theta(0) = (1, 0), eta 0.1",
            f"{ACTUARIAL_LAB}, linear regression exercise",
            reports="asks for theta(3) from theta(0) = (w=1, b=0); the true model is w = 3, b = 1",
            compared="the trainer's theta(1..3) equal the exact fractions to 1e-12; theta converges to (3, 1) "
            "within 1e-6",
        ),
        Example(
            "parity",
            "10-3-2 sigmoid, parity of 10-bit numbers, SGD batch 8, eta 0.3",
            f"{TASHFEEN}, section 7.1",
            reports="test accuracy 1.0 after 1000 epochs (error 0.48236 in epoch 0, 0.00004026 in epoch 999)",
            compared="test accuracy exactly 1.0",
        ),
        Example(
            "house_prices",
            "2-5-1 sigmoid with biases, ten house prices, 1/2 sum of squares, full-batch GD",
            NEURAL_NETWORKS_I,
            reports="initial loss about 6, a falling loss curve, and check_grad below 1e-6",
            compared="the loss falls at every epoch to under half its start; the gradient check, done as "
            "scipy's check_grad does it, is below 1e-6",
        ),
        Example(
            "xor",
            "2-2-1 sigmoid with biases, XOR, 1/2 sum of squares, full-batch GD",
            f"{WATSON_SLIDES}, XOR exercise",
            reports="an exercise: train the XOR network; some starting points may fail",
            compared="solved: every output on the right side of 1/2",
        ),
        Example(
            "iris",
            "4-5-3 sigmoid, Fisher's iris, 1/2 sum of squares, SGD per sample, eta 0.1",
            f"{WATSON_SLIDES}, Fisher iris exercise",
            reports="an exercise: train a network for Fisher's iris and report its accuracy",
            compared="test accuracy on the fixed 30-flower split is at least 0.9",
        ),
        Example(
            "fausett",
            "2-2-2 sigmoid with bias neurons, 50 points, summed gradients, alpha 0.1, RMSE stopping rule",
            FAUSETT_POST,
            reports="initial weights from seed 42 and the forward pass of the first point "
            "(outputs 0.74070392, 0.70470805); the RMSE curve, no final numbers",
            compared="the first forward pass within 1e-8 of the printed outputs; the RMSE rule stops "
            "training before the 10000-epoch cap",
        ),
        Example(
            "mnist",
            "784-32-10 sigmoid, MNIST (IDX files given with --data), SGD batch 256, 300 epochs",
            f"{TASHFEEN}, section 7.2",
            reports="test accuracy 0.9259 ('about 93%') after 300 epochs",
            compared="test accuracy at least 0.90 after the full 300 epochs (at least 0.80 after the fast 10)",
        ),
        Example(
            "digits",
            "64-32-10 sigmoid on scikit-learn's 8x8 digits: the MNIST network offline",
            f"{TASHFEEN}, section 7.2, on bundled data",
            reports="nothing for these data; stands in for the MNIST run (0.9259)",
            compared="test accuracy at least 0.9",
        ),
        Example(
            "digits_conv",
            "conv 3x3 (8 filters, relu), max pool 2x2, softmax on scikit-learn's 8x8 digits, Adam, batch 128",
            "symbp's own example of its convolution and pooling layers, on the data of digits",
            reports="nothing: symbp's own example; the dense digits network's test accuracy stands beside it",
            compared="test accuracy at least 0.95 after its 30 epochs (at least 0.9 after the fast 10)",
        ),
    )
}


def example_path(name: str) -> Path | None:
    candidate = resources.files(__package__).joinpath(f"{name}.toml")
    return Path(str(candidate)) if candidate.is_file() else None


def bundled_spec_paths() -> list[Path]:
    folder = Path(str(resources.files(__package__)))
    return sorted(folder.glob("*.toml"))
