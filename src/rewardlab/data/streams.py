"""Input files as streams of UTF-8 bytes, read in bounded memory: lines and JSON values.

No text file is read whole. JSON lines are read one line at a time and JSON files one value at a
time, each bounded by ``max_record_bytes`` (:data:`DEFAULT_MAX_RECORD_BYTES`), so memory stays
bounded by the largest record, not the file; ``.gz`` files are decompressed as they are read.

Encodings: UTF-8, with or without a byte-order mark (BOM). UTF-16 and UTF-32 files that start
with a BOM are decoded (and turned into UTF-8 on the fly), since Windows tools write them. Text
that looks like UTF-16/32 *without* a BOM (many NUL bytes) is refused with a :class:`DataError`
saying how to re-encode it: without a BOM its byte order would be a guess. Bytes that are not
UTF-8 in a UTF-8 file (Latin-1, ...) are decoded as lone surrogates (``surrogateescape``) so the
rest can still be parsed; each record holding them is then reported with reason ``not_utf8``.
"""

from __future__ import annotations

import codecs
import gzip
import io
import json
import re
from pathlib import Path
from typing import Any, BinaryIO

from rewardlab.data.errors import NOT_UTF8, DataError

__all__ = [
    "CHUNK",
    "DEFAULT_MAX_RECORD_BYTES",
    "JsonStream",
    "RecordTooLarge",
    "has_surrogate",
    "open_binary",
    "open_utf8",
    "read_lines",
]

DEFAULT_MAX_RECORD_BYTES = 64 * 2**20
"""64 MiB: far above any real preference record, far below what would exhaust memory."""
CHUNK = 1 << 20
"""Bytes read at a time."""

# UTF-32 first: its little-endian BOM starts with UTF-16's.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_SNIFF_BYTES = 4096
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*")
# "\ud800" .. "\udfff" escapes: valid JSON, but a lone one is not Unicode text.
ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
ESCAPED_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")
_DECODER = json.JSONDecoder()  # accepts NaN and Infinity, as json.loads does


class RecordTooLarge(Exception):
    """One JSON value is longer than the limit (internal: readers turn it into a DataError)."""


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds lone surrogates (bytes that were not UTF-8, or escapes of them)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def open_binary(path: Path, name: str) -> BinaryIO:
    """The file's bytes as stored (decompressed on the fly for ``.gz``)."""
    try:
        if path.name.lower().endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")  # the caller closes it
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", file=name) from None


def open_utf8(path: Path, name: str) -> BinaryIO:
    """The file's text as UTF-8 bytes: BOM dropped, UTF-16/32 (with a BOM) re-encoded."""
    with open_binary(path, name) as fh:
        head = fh.read(_SNIFF_BYTES)
    codec, skip = _sniff(head, name)
    fh = open_binary(path, name)
    if codec == "utf-8":
        fh.read(skip)
        return fh
    text = io.TextIOWrapper(fh, encoding=codec, errors="strict", newline="")
    return io.BufferedReader(_Utf8Encoder(text, codec, name), CHUNK)


def _sniff(head: bytes, name: str) -> tuple[str, int]:
    """The codec of a file that starts with ``head``, and how many BOM bytes to skip."""
    for bom, codec in _BOMS:
        if head.startswith(bom):
            # The utf-16/utf-32 codecs read the BOM themselves to learn the byte order.
            return codec, len(bom) if codec == "utf-8" else 0
    # JSON and CSV text has no NUL bytes; UTF-16/32 text of ASCII has one in every 2 or 4.
    if head and head.count(0) * 4 >= len(head):
        raise DataError("not UTF-8: many NUL bytes, as in UTF-16 or UTF-32 text without a "
                        "byte-order mark; re-encode it as UTF-8, e.g. "
                        "iconv -f UTF-16LE -t UTF-8 IN > OUT", file=name, reason=NOT_UTF8)
    return "utf-8", 0


class _Utf8Encoder(io.RawIOBase):
    """A raw byte stream of UTF-8, read from a text stream in another encoding."""

    def __init__(self, text: io.TextIOWrapper, codec: str, name: str) -> None:
        super().__init__()
        self._text, self._codec, self._name = text, codec, name
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                chunk = self._text.read(max(1, CHUNK // 4))
            except UnicodeDecodeError as exc:
                label = self._codec.upper()
                raise DataError(f"not valid {label} text although it starts with a {label} "
                                f"byte-order mark: {exc.reason}", file=self._name,
                                reason=NOT_UTF8) from None
            if not chunk:
                return 0
            # surrogatepass: never fail here; odd text is reported record by record.
            self._pending = memoryview(chunk.encode("utf-8", "surrogatepass"))
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._text.close()
        super().close()


def read_lines(fh: BinaryIO, limit: int) -> Any:
    """Yield each line of ``fh`` (with its line end), or ``None`` for one over ``limit`` bytes.

    Lines end at ``\\n`` only (JSON lines), so ``\\r\\n`` works too. An over-long line is read
    past a chunk at a time and never held, so memory stays below ``limit`` plus a chunk.
    """
    while line := fh.readline(limit + 2):
        ended = line.endswith(b"\n")
        content = len(line) - (2 if line.endswith(b"\r\n") else 1 if ended else 0)
        if content <= limit:
            yield line
            continue
        while not ended and (rest := fh.readline(CHUNK)):
            ended = rest.endswith(b"\n")
        yield None


class JsonStream:
    """JSON values read one at a time from a UTF-8 byte stream, in bounded memory.

    ``buf[pos:]`` is the text not consumed yet; what lies before ``pos`` is dropped on the next
    read. ``lossy`` turns true once the text held bytes that were not UTF-8 or escaped lone
    surrogates, so the caller knows to check records for them.
    """

    def __init__(self, fh: BinaryIO, limit: int) -> None:
        self._fh = fh
        self._utf8 = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self._limit = limit
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.lossy = False
        self._line, self._col = 1, 0  # line and 0-based column of buf[0]

    def _fill(self, size: int) -> bool:
        """Drop the consumed text and read up to ``size`` bytes more; ``False`` at the end."""
        if self.eof:
            return False
        newlines = self.buf.count("\n", 0, self.pos)
        if newlines:
            self._line += newlines
            self._col = self.pos - self.buf.rfind("\n", 0, self.pos) - 1
        else:
            self._col += self.pos
        data = self._fh.read(size)
        self.eof = not data
        text = self._utf8.decode(data, final=self.eof)
        tail = max(0, len(self.buf) - self.pos - 6)  # an escape may straddle two reads
        self.buf = self.buf[self.pos:] + text
        self.pos = 0
        if not self.lossy:
            self.lossy = has_surrogate(text) or bool(ESCAPED_SURROGATE.search(self.buf, tail))
        return True

    def peek(self) -> str:
        """The next character that is not JSON whitespace (not consumed), ``""`` at the end."""
        while True:
            match = _JSON_SPACE.match(self.buf, self.pos)
            self.pos = match.end() if match else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill(CHUNK):
                return ""

    def value(self) -> Any:
        """The next JSON value (call :meth:`peek` first to skip whitespace).

        Raises :class:`json.JSONDecodeError` (positions relative to ``buf``), ``RecursionError``
        for absurd nesting, or :class:`RecordTooLarge`.
        """
        size = CHUNK
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as exc:
                if self.eof or not _maybe_cut_off(exc, len(self.buf)):
                    raise
            else:
                if end - self.pos > self._limit:
                    # Refused even when it fits in one read: the limit must not depend on how
                    # the bytes arrive.
                    raise RecordTooLarge
                # A number may go on in the next read ("0" then ".5"): only the end of the
                # input or a character that cannot continue it ends it.
                if self.eof or not _NUMBER_TAIL.fullmatch(self.buf, end):
                    self.pos = end
                    return value
            if len(self.buf) - self.pos > self._limit:
                raise RecordTooLarge
            self._fill(size)
            size *= 2  # re-parsing from the value's start: doubling keeps the total linear

    def location(self, pos: int) -> tuple[int, int]:
        """Line and column (both 1-based) of ``buf[pos]``."""
        line = self._line + self.buf.count("\n", 0, pos)
        start = self.buf.rfind("\n", 0, pos)
        return line, (pos - start if start >= 0 else self._col + pos + 1)


def _maybe_cut_off(exc: json.JSONDecodeError, length: int) -> bool:
    """Whether parsing failed only because the text read so far ends inside the value."""
    # An unterminated string reports where it starts; other cut-offs fail within the last few
    # characters ("tru", "-Infin", "\\u12").
    return exc.msg.startswith("Unterminated string") or exc.pos >= length - 10
