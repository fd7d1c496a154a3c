"""Reading delimited text files a row at a time: what the customer and the purchase
importers share.

A file is checked to be text (not empty, not UTF-16, not binary), its delimiter sniffed
from the first line (comma, semicolon, tab, or runs of spaces), and its records read
lazily with their line numbers, so that a file of any size is never held in memory.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from typing import BinaryIO

from customers.csv_format import WHITESPACE, CsvFormatError, stray_quote_fields

UTF8 = "utf-8-sig"  # a byte order mark is skipped
SNIFF_BYTES = 64 * 1024
# A field longer than this is not customer data (an unclosed quote swallowing the file, say).
MAX_FIELD_CHARS = 10_000
MAX_COLUMNS = 500


# UTF-32 first: its little-endian byte order mark starts with UTF-16's.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def check_text(head: bytes, *, utf8: bool = True) -> None:
    """The head of a file is text (not empty, not UTF-16, not binary) and, with ``utf8``,
    UTF-8 (read_layout instead detects the encoding of the whole file)."""
    if not head.strip(b"\xef\xbb\xbf \r\n\t"):
        raise CsvFormatError("the file is empty")
    wide = next((name for bom, name in _WIDE_BOMS if head.startswith(bom)), None)
    if wide:
        # Spreadsheets' "Unicode text" export: every character has NUL bytes, not binary data.
        raise CsvFormatError(
            f"the file is {wide} text, not UTF-8; save it as 'CSV UTF-8' and try again"
        )
    if b"\x00" in head:
        raise CsvFormatError("this is not a CSV file: it contains binary data")
    if not utf8:
        return
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        # A multi-byte character cut at the end of a partial sample is not an error.
        if len(head) < SNIFF_BYTES or problem.start < len(head) - 4:
            line = head[: problem.start].count(b"\n") + 1
            raise CsvFormatError(
                f"the file is not UTF-8 text (byte 0x{head[problem.start]:02x} on line {line}); "
                "save it as 'CSV UTF-8' and try again"
            ) from None


def sniff_delimiter(first_line: str) -> str:
    """Comma, semicolon or tab, whichever the first line has most of; else runs of spaces."""
    counts = {delimiter: first_line.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    if counts[best]:
        return best
    return WHITESPACE if len(first_line.split()) > 1 else ","


def open_text(stream: BinaryIO, encoding: str = UTF8) -> io.TextIOWrapper:
    stream.seek(0)
    return io.TextIOWrapper(stream, encoding=encoding, newline="", errors="strict")


class _WhitespaceReader:
    """Rows of a file whose columns are separated by runs of spaces or tabs (no quoting)."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self.text = text
        self.line_num = 0

    def __iter__(self):
        return self

    def __next__(self) -> list[str]:
        line = self.text.readline()
        if not line:
            raise StopIteration
        self.line_num += 1
        return line.split()


def _reader(text, delimiter: str):
    if delimiter == WHITESPACE:
        return _WhitespaceReader(text)
    csv.field_size_limit(MAX_FIELD_CHARS)
    return csv.reader(text, delimiter=delimiter, strict=True)


class _RawLines:
    """The text's lines, remembering those the csv reader took for its last record (the
    reader reads no further ahead than the record it returns)."""

    def __init__(self, text: io.TextIOWrapper) -> None:
        self.text = text
        self.taken: list[str] = []

    def __iter__(self):
        return self

    def __next__(self) -> str:
        line = self.text.readline()
        if not line:
            raise StopIteration
        self.taken.append(line)
        return line

    def readline(self) -> str:  # for the whitespace reader
        try:
            return next(self)
        except StopIteration:
            return ""

    def record(self) -> str:
        raw, self.taken = "".join(self.taken), []
        return raw


def records(
    stream: BinaryIO, delimiter: str, *, quotes: bool = False, encoding: str = UTF8
) -> Iterator[tuple[int, list[str]] | tuple[int, list[str], frozenset[int]]]:
    """(line number, cells) of every record, blank ones included; with ``quotes``, also
    the positions of values with a stray quote (X"7), read from the record's raw text.

    A structural problem (a quote never closed, a runaway field, bytes that are not
    UTF-8) makes every later row unreliable, so it is a CsvFormatError for the whole
    file rather than one invalid row that --skip-invalid could skip.
    """
    text = open_text(stream, encoding)
    lines = _RawLines(text)
    reader = _reader(lines, delimiter)
    line = 0
    undecodable = False
    try:
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as problem:
                # The record that failed starts on the line after the last one read.
                raise CsvFormatError(
                    f"line {line + 1} {_csv_reason(problem)}; nothing after it can be read"
                ) from None
            line = reader.line_num
            raw = lines.record()
            if not quotes:
                yield line, cells
            elif '"' in raw:
                yield line, cells, stray_quote_fields(raw, delimiter)
            else:
                yield line, cells, frozenset()
    except UnicodeDecodeError:
        undecodable = True
    finally:
        text.detach()
    if undecodable:
        raise not_utf8_error(stream)


def first_rows(
    stream: BinaryIO, delimiter: str, limit: int, encoding: str = UTF8
) -> list[list[str]]:
    """Up to ``limit`` non-blank rows from the top of the file (header included)."""
    rows: list[list[str]] = []
    reader = records(stream, delimiter, encoding=encoding)
    for _line, cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) > MAX_COLUMNS:
            reader.close()
            raise CsvFormatError(
                f"line {len(rows) + 1} has {len(cells):,} columns; the importer takes at "
                f"most {MAX_COLUMNS} (is this a customer file?)"
            )
        rows.append(cells)
        if len(rows) >= limit:
            reader.close()  # detaches the text reader from the stream
            break
    return rows


def not_utf8_error(stream: BinaryIO) -> CsvFormatError:
    """Name the line of the first byte that is not UTF-8 (the text reader only knows its chunk)."""
    stream.seek(0)
    for number, raw in enumerate(stream, start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as problem:
            return CsvFormatError(
                f"the file is not UTF-8 text (byte 0x{raw[problem.start]:02x} on line {number}); "
                "save it as 'CSV UTF-8' and try again"
            )
    return CsvFormatError("the file is not UTF-8 text; save it as 'CSV UTF-8' and try again")


def _csv_reason(problem: csv.Error) -> str:
    message = str(problem)
    if "field larger than field limit" in message:
        return (
            f"has a value longer than {MAX_FIELD_CHARS:,} characters "
            "(often a quote that is never closed)"
        )
    if "unexpected end of data" in message or "EOF" in message:
        return "has a quote that is never closed"
    return f"cannot be read as CSV: {message}"


def stream_size(stream: BinaryIO) -> int:
    position = stream.tell()
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(position)
    return size


def delimiter_of(stream: BinaryIO) -> str:
    """The delimiter of a text file (checked to be text first), guessed from its first line;
    the stream is left where the caller's readers start again (they seek)."""
    stream.seek(0)
    check_text(stream.read(SNIFF_BYTES))
    text = open_text(stream)
    try:
        first_line = text.readline()
    finally:
        text.detach()
    return sniff_delimiter(first_line)
