"""Bundled example specs, and what their source texts report, so runs can be compared with them."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path


@dataclass(frozen=True)
class Example:
    name: str
    summary: str
    source: str
    published: dict[str, list] = field(default_factory=dict)
    tolerance: float = 0.0


EXAMPLES: dict[str, Example] = {
    example.name: example
    for example in (
        Example(
            "actuarial",
            "3-2-1, sigmoid then exponential, no biases, MSE, 5000 full-batch steps",
            "Actuarial lab (ACTL3143), 'From Scratch' final weights",
            published={
                "W1": [[0.24985576, 0.74987578], [0.5000211, 0.49998626], [0.75018656, 0.25009692]],
                "W2": [[1.99874327], [3.00125615]],
            },
            tolerance=1e-6,
        ),
    )
}


def example_path(name: str) -> Path | None:
    candidate = resources.files(__package__).joinpath(f"{name}.toml")
    return Path(str(candidate)) if candidate.is_file() else None


def bundled_spec_paths() -> list[Path]:
    folder = Path(str(resources.files(__package__)))
    return sorted(folder.glob("*.toml"))
