"""Command-line numbers checked with the same ranges as the spec fields they stand for.

The spec parser is the one place that knows each field's range, so a command-line value is checked by
parsing it as that field of a minimal spec, and its error is reported under the option's name.
"""

from __future__ import annotations

from typing import Any

from symbp.errors import SpecError, SymbpError
from symbp.spec.schema import parse_spec

_CARRIER = {"name": "options", "inputs": 1, "layers": [{"units": 1, "activation": "identity"}]}


def training_values(values: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """``{field: (option, value)}`` for [training] fields, checked; the values as the spec parser reads them."""
    given = {field: value for field, (_, value) in values.items() if value is not None}
    try:
        training = parse_spec({**_CARRIER, "training": given}).training
    except SpecError as error:
        field = error.field.removeprefix("training.")
        option = values[field][0] if field in values else error.field
        raise SymbpError(f"{option}: {error.message}") from None
    return {field: getattr(training, field) for field in given}
