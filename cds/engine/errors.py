"""Exceptions raised by the CDS engine."""

from __future__ import annotations


class PathwayFormatError(ValueError):
    """A pathway file does not follow the pathway format.

    ``location`` is the path inside the file (``rules[3].when.all[1].op``) so an author can find
    the offending line; ``source`` is the file name when the pathway came from a file.
    """

    def __init__(self, message: str, *, location: str = "", source: str = "") -> None:
        self.message = message
        self.location = location
        self.source = source
        prefix = ": ".join(part for part in (source, location) if part)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class InputValidationError(ValueError):
    """Raised by :func:`evaluate` when the inputs do not validate; ``errors`` maps field to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        summary = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in sorted(errors.items()))
        super().__init__(f"Invalid inputs: {summary}")
