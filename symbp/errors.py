"""Errors that symbp reports to people, each one line that names what is wrong and the fix."""

from __future__ import annotations


class SymbpError(Exception):
    """Base class: the CLI prints these as one line and exits with status 2."""


class SpecError(SymbpError, ValueError):
    """A spec is malformed; ``field`` is its dotted path, e.g. ``layers[1].activation``."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class DataError(SymbpError, ValueError):
    """A data set does not fit the spec it is used with."""


class OutputError(SymbpError, OSError):
    """An output file could not be written, or writing it would clobber someone's work."""
