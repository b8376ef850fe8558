"""The one error type of the data loader, and the names of its skip reasons.

Every problem with input data is a :class:`DataError` whose message reads
``FILE: WHERE: field 'NAME': PROBLEM`` so a user can open the file at the right place. The
machine-readable parts stay on the exception too, because ``on_bad="skip"`` counts skipped
records by :attr:`DataError.reason`.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BAD_COLUMN_NAME",
    "EMPTY_INPUT",
    "INVALID",
    "MALFORMED_CSV",
    "MALFORMED_JSON",
    "MISSING_FIELD",
    "NOT_AN_OBJECT",
    "NOT_UTF8",
    "RECORD_TOO_LARGE",
    "TOO_FEW_RESPONSES",
    "UNKNOWN_WINNER",
    "WRONG_TYPE",
    "DataError",
    "as_object",
    "describe_value",
]

# Skip reasons: the keys of ``LoadReport.skipped``.
MALFORMED_JSON = "malformed_json"
MALFORMED_CSV = "malformed_csv"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
NOT_UTF8 = "not_utf8"
NOT_AN_OBJECT = "not_an_object"
RECORD_TOO_LARGE = "record_too_large"
TOO_FEW_RESPONSES = "too_few_responses"
UNKNOWN_WINNER = "unknown_winner"
BAD_COLUMN_NAME = "bad_column_name"
# Reasons of errors that are never skipped (they concern a whole input, not one record).
EMPTY_INPUT = "empty_input"
INVALID = "invalid"


class DataError(ValueError):
    """Malformed or missing input data.

    ``file`` is the input as the user named it, ``where`` the place inside it ("line 12",
    "row 3 (line 4)", "record index 7", "row index 0"), ``field`` the column concerned (``None``
    when the problem is the whole record or file), ``problem`` what is wrong, and ``reason`` a
    short key used to count skipped records.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        where: str | None = None,
        field: str | None = None,
        reason: str = INVALID,
    ) -> None:
        self.problem = problem
        self.file = file
        self.where = where
        self.field = field
        self.reason = reason
        parts = [p for p in (file, where) if p]
        if field is not None:
            parts.append(f"field {field!r}")
        parts.append(problem)
        # One line, always: a column name or value read from the data may hold line breaks.
        message = ": ".join(parts).replace("\r", "\\r").replace("\n", "\\n")
        super().__init__(message)

    def located(self, file: str, where: str | None = None) -> DataError:
        """A copy that names ``file`` (and ``where``, unless already set).

        Record validation does not know which file it is reading; the reader adds that.
        """
        return DataError(self.problem, file=file, where=self.where or where, field=self.field,
                         reason=self.reason)


def describe_value(value: Any) -> str:
    """How a wrong value reads in a message, in JSON terms: "a boolean (true)", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def as_object(record: Any) -> dict[str, Any]:
    """A reader's record as one JSON object: a record the reader already found malformed (a
    ``DataError``) is raised, and anything but an object is a ``NOT_AN_OBJECT`` error."""
    if isinstance(record, DataError):
        raise record
    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object (one record), got {describe_value(record)}",
                        reason=NOT_AN_OBJECT)
    return record
