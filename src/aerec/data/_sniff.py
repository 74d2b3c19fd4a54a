"""Looking at the first lines of a rating file: encoding, delimiter, header, column roles.

Private helpers of :mod:`aerec.data.readers`. Everything here works on the *head* of a file
(its first 64 KiB), so it is cheap even for the 800 MB MovieLens 32M ``ratings.csv``; the
full parse happens in the readers. The one exception is :func:`find_bad_line`, the slow
line-by-line re-scan that runs only after a fast parse has failed, to name the first bad line.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aerec.errors import DataError

HEAD_BYTES = 64 * 1024
HEAD_LINES = 50
WHITESPACE = "whitespace"  # the layout separator meaning "runs of spaces and tabs"
ROLES = ("user", "item", "rating", "timestamp")

# Column names people use, lower-cased with everything but letters and digits removed, so that
# "userId", "user_id" and "User ID" all read "userid". Single letters are left out on purpose:
# a header-less file whose ids are "u" or "i" must not be mistaken for a header.
ALIASES: dict[str, str] = {}
for _role, _names in {
    "user": "user users userid uid customer customerid client clientid reviewer reviewerid "
    "visitor visitorid member memberid person",
    "item": "item items itemid iid movie movieid movies product productid asin business "
    "businessid song songid track trackid artist artistid book bookid isbn article articleid",
    "rating": "rating ratings score stars star value rate overall bookrating preference",
    "timestamp": "timestamp timestamps time ts date datetime created createdat unixtime "
    "unixreviewtime when",
}.items():
    for _name in _names.split():
        ALIASES[_name] = _role

_SEP_NAMES = {
    "\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|",
    " ": WHITESPACE, "space": WHITESPACE, "spaces": WHITESPACE, WHITESPACE: WHITESPACE,
    "\\s+": WHITESPACE, "::": "::",
}
_DELIMITER_CANDIDATES = ("\t", ",", ";", "|", WHITESPACE)  # ties go to the earlier one
_NEWLINE = re.compile(r"\r\n|\r|\n")  # universal newlines, as pyarrow and pandas split lines
_COMPRESSED = {
    b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd", b"7z\xbc\xaf\x27\x1c": "7z",
}
# Compressed files pyarrow decompresses while reading, by suffix or by their first bytes (a
# file piped in on stdin has no suffix). The others are refused with the tool to unpack them.
_READABLE_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
_MAGIC_CODEC = {"gzip": "gzip", "bzip2": "bz2", "zstd": "zstd"}
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f]")


def canonical_column(name: object) -> str | None:
    """The role ("user", "item", ...) a column name stands for, or None if it names none.

    An exact alias wins; otherwise a name ending in an alias of 4+ letters counts
    ("review_date" -> timestamp, "user_rating" -> rating).
    """
    key = re.sub(r"[^0-9a-z]", "", str(name).lower())
    if key in ALIASES:
        return ALIASES[key]
    ends = [alias for alias in ALIASES if len(alias) >= 4 and key.endswith(alias)]
    return ALIASES[max(ends, key=len)] if ends else None


def is_number(text: str) -> bool:
    try:
        float(text.strip())
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Head:
    """The first lines of a text file.

    Attributes:
        lines: up to ``HEAD_LINES`` non-blank lines as (1-based line number, text); a line cut
            off by the 64 KiB limit is left out.
        encoding: the Python codec for the whole file ("utf-8-sig" when it starts with a BOM).
        arrow_encoding: the same for pyarrow, which skips a UTF-8 BOM itself.
        complete: True when the head is the whole file.
    """

    lines: list[tuple[int, str]]
    encoding: str
    arrow_encoding: str
    complete: bool


def compression(path: Path) -> str | None:
    """The codec ("gzip", "bz2", "zstd") that :func:`open_binary` reads ``path`` with, or None
    for a plain file: from the suffix, else from the first bytes."""
    codec = _READABLE_COMPRESSION.get(Path(path).suffix.lower())
    if codec is not None:
        return codec
    try:
        with open(path, "rb") as f:
            start = f.read(8)
    except OSError:
        return None
    kind = next((k for magic, k in _COMPRESSED.items() if start.startswith(magic)), None)
    return _MAGIC_CODEC.get(kind)


def open_binary(path: Path):
    """``path`` opened for reading bytes, decompressed on the fly when it is gzip, bzip2 or
    zstd (pyarrow's codecs: no extra package), so that every reader and re-scan sees the text
    and line numbers are those of the text."""
    codec = compression(path)
    if codec is None:
        return open(path, "rb")
    import pyarrow as pa

    return pa.input_stream(str(path), compression=codec)


def plain_name(path: Path) -> str:
    """The file name without a compression suffix ("u.data.gz" -> "u.data")."""
    name = Path(path).name
    suffix = Path(name).suffix.lower()
    return name[: -len(suffix)] if suffix in _READABLE_COMPRESSION else name


def read_head(path: Path, encoding: str | None) -> Head:
    """Read and decode the start of ``path``; refuse empty, binary and (other than gzip,
    bzip2, zstd) compressed files."""
    try:
        with open_binary(path) as f:
            raw = f.read(HEAD_BYTES + 1)
    except OSError as e:  # pyarrow reports a corrupt or truncated compressed file as one too
        if compression(path) is not None:
            raise DataError(f"cannot decompress the file ({e})", path=str(path),
                            fix="check that the file is complete, or decompress it yourself") from None
        raise DataError(f"cannot read the file ({e.strerror or e})", path=str(path),
                        fix="check the path and its permissions") from None
    complete = len(raw) <= HEAD_BYTES
    raw = raw[:HEAD_BYTES]
    if not raw:
        raise DataError("the file is empty (0 bytes)", path=str(path),
                        fix="check that this is the right file and that its download finished")
    for magic, kind in _COMPRESSED.items():
        if raw.startswith(magic):
            tool = "unzip" if kind == "zip" else kind
            raise DataError(f"this is a {kind}-compressed file, not a rating table", path=str(path),
                            fix=f"decompress it first (e.g. with {tool})")
    codec = resolve_encoding(raw, encoding, path)
    _refuse_binary(raw, codec, path)
    text = raw.decode(codec, errors="surrogateescape" if is_ascii_based(codec) else "replace")
    pieces = _NEWLINE.split(text)
    if not complete:
        pieces = pieces[:-1]  # the last piece may be a line cut in half
    lines = [(n, s) for n, s in enumerate(pieces, 1) if s.strip()][:HEAD_LINES]
    if not lines:
        raise DataError("the file holds only blank lines, no ratings", path=str(path),
                        fix="check that this is the right file")
    arrow = "utf8" if codec in ("utf-8", "utf-8-sig") else codec
    return Head(lines, codec, arrow, complete)


def resolve_encoding(raw: bytes, encoding: str | None, path: Path) -> str:
    """The codec to use: the caller's (checked), else from a byte-order mark, else UTF-8."""
    if encoding:
        try:
            name = codecs.lookup(encoding).name
            _probe_text_codec(name)
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            raise DataError(
                "unknown text encoding", path=str(path), value=encoding,
                fix="use a Python codec name such as utf-8, latin-1 or cp1252",
            ) from None
        return "utf-8-sig" if name == "utf-8" and raw.startswith(codecs.BOM_UTF8) else name
    for bom, name in _BOMS:
        if raw.startswith(bom):
            return name
    return "utf-8"


def _probe_text_codec(name: str) -> None:
    """Raise LookupError for a codec that is not a text encoding (hex, rot13, zlib, base64)."""
    try:
        b"a".decode(name)  # an empty input would skip the check
    except UnicodeError:
        pass  # a text codec that cannot decode "a" (utf-16): the read names the line later


def is_ascii_based(codec: str) -> bool:
    return not codec.startswith(("utf-16", "utf-32"))


def _refuse_binary(raw: bytes, codec: str, path: Path) -> None:
    """Raise when the head looks like binary data (a NUL byte, or many control characters)."""
    if not is_ascii_based(codec):
        return
    text = raw.decode("latin-1")
    match = re.search("\x00", text)
    if match is None:
        controls = _CONTROL.findall(text)
        if len(controls) <= max(2, len(text) // 100):
            return
        match = _CONTROL.search(text)
    assert match is not None
    pos = match.start()
    line = len(_NEWLINE.split(text[:pos]))
    raise DataError(
        "this is not a text file: it holds binary bytes", path=str(path), line=line,
        value=raw[max(0, pos - 8): pos + 8],
        fix="give a text rating file (CSV, TSV, MovieLens, Netflix) or a .parquet file",
    )


# --------------------------------------------------------------------------------------------
# Splitting lines into fields


def normalise_sep(sep: str | None) -> str | None:
    """The caller's ``sep`` as a layout separator: one character, "::" or WHITESPACE."""
    if sep is None:
        return None
    name = _SEP_NAMES.get(sep.lower() if sep.strip() else sep, sep)
    if len(name) == 1 or name in ("::", WHITESPACE):
        return name
    raise DataError("unsupported field separator", value=sep,
                    fix="use one character (',' '\\t' ';' '|'), '::' or 'whitespace'")


def splitter(sep: str, *, quoted: bool = True) -> Callable[[str], list[str] | None]:
    """A function that splits one line into fields the way the fast parser will.

    It returns None for a line the parser would refuse (an unclosed quote, a stray ':' in a
    '::' file). Quotes are honoured (CSV style) only for one-character separators.
    """
    if sep == WHITESPACE:
        return str.split
    if sep == "::":
        def split_colons(line: str) -> list[str] | None:
            parts = line.split("::")
            return None if any(":" in p for p in parts) else parts
        return split_colons
    if not quoted:
        return lambda line: line.split(sep)

    def split_csv(line: str) -> list[str] | None:
        if '"' not in line:
            return line.split(sep)  # the same answer, many times faster
        try:
            return next(csv.reader([line], delimiter=sep, strict=True))
        except (csv.Error, StopIteration):
            return None
    return split_csv


def guess_delimiter(lines: Sequence[str]) -> str | None:
    """The separator that splits the sample lines most consistently into the most fields.

    A separator is consistent when every line splits into the same number (> 1) of fields;
    among those the one giving the most fields wins (so "1;2;3,5" is ';' with a decimal comma),
    ties going to tab, comma, semicolon, pipe, whitespace in that order. With no consistent
    one, the separator agreeing on the most lines is used, so one bad line does not hide the
    layout (the reader then reports that line). None when no separator splits any line.
    """
    scored: list[tuple[tuple[bool, int, int], str]] = []
    for rank, sep in enumerate(_DELIMITER_CANDIDATES):
        split = splitter(sep)
        # A line the CSV splitter refuses (an odd quote) is counted by a plain split.
        counts = [len(fields if (fields := split(s)) is not None else s.split(sep)) for s in lines]
        mode, agreeing = Counter(counts).most_common(1)[0]
        if mode < 2:
            continue
        consistent = agreeing == len(lines)
        # Consistent separators first, by their field count; the rest by how many lines agree.
        scored.append(((consistent, mode if consistent else agreeing, -rank), sep))
    return max(scored)[1] if scored else None


def looks_like_header(first: list[str], rest: list[list[str]]) -> bool:
    """True when the first line names columns rather than holding data.

    It does when one of its fields is a known column name (and not a number), or when all of
    its fields are text while some column holds numbers on every later line.
    """
    if any(canonical_column(f) and not is_number(f) for f in first):
        return True
    if not rest or any(is_number(f) for f in first):
        return False
    width = len(first)
    return any(all(j < len(row) and is_number(row[j]) for row in rest) for j in range(width))


# --------------------------------------------------------------------------------------------
# The slow re-scan


def count_lines(path: Path) -> int:
    """The number of lines as pyarrow counts them: '\n', '\r\n' or '\r' ends one.

    A last line without an ending counts too. Streams the file (about 1 s per GB).
    """
    count, ends_with_cr, last = 0, False, b""
    with open_binary(path) as f:
        while chunk := f.read(1 << 24):
            count += chunk.count(b"\n") + chunk.count(b"\r") - chunk.count(b"\r\n")
            if ends_with_cr and chunk.startswith(b"\n"):
                count -= 1  # a '\r\n' split across two chunks
            ends_with_cr, last = chunk.endswith(b"\r"), chunk[-1:]
    return count + (1 if last not in (b"", b"\n", b"\r") else 0)


def find_bad_line(
    path: Path,
    *,
    encoding: str,
    split: Callable[[str], list[str] | None] | None,
    n_fields: int,
    first_line: int = 1,
    sep_name: str = "",
) -> DataError | None:
    """The first line from ``first_line`` on that cannot be decoded or has the wrong field count.

    Run after the fast parser failed, to turn its complaint into one naming a line. Lines are
    counted as pyarrow counts them (universal newlines). Blank lines are skipped. Returns the
    error to raise, or None when every line looks right (the caller then reports the parser's
    own message).
    """
    errors = "surrogateescape" if is_ascii_based(encoding) else "replace"
    number = 0
    try:
        with io.TextIOWrapper(open_binary(path), encoding=encoding, errors=errors, newline=None) as f:
            for number, line in enumerate(f, 1):
                if number < first_line:
                    continue
                line = line.rstrip("\n")
                problem = _line_problem(line, encoding, split, n_fields, sep_name)
                if problem is not None:
                    text, value, fix = problem
                    return DataError(text, path=str(path), line=number, value=value, fix=fix)
    except UnicodeError as e:  # e.g. encoding="utf-16" for a file without a byte-order mark
        return DataError(f"the file is not {encoding} text ({e})", path=str(path), line=number + 1,
                         fix="pass the file's real encoding (--encoding), or save it as UTF-8")
    return None


def _line_problem(line: str, encoding: str, split, n_fields: int, sep_name: str):
    """(problem, value, fix) for a bad line, else None."""
    if re.search("[\udc80-\udcff\ufffd]", line):
        raw = line.encode(encoding, errors="surrogateescape") if is_ascii_based(encoding) else line
        return (f"the line is not valid {encoding} text", _clip(raw),
                ("pass the file's encoding (encoding='latin-1' / --encoding latin-1) "
                 "or save it as UTF-8"))
    if "\x00" in line:
        return ("the line holds binary bytes (NUL)", _clip(line), "remove the line or fix the file")
    if line == "" or split is None:
        return None
    fields = split(line)
    if fields == []:  # whitespace-separated files: a line of spaces is blank
        return None
    if fields is None:
        return ("the line cannot be split into fields (an unclosed quote or a stray separator)",
                _clip(line), "fix the quoting or the separators on this line")
    if len(fields) != n_fields:
        plural = "s" if len(fields) != 1 else ""
        by = f" separated by {sep_name}" if sep_name else ""
        problem = f"the line has {len(fields)} field{plural}, expected {n_fields}{by}"
        return problem, _clip(line), "every line needs the same fields; fix or remove this line"

    return None


def _clip(value, limit: int = 80):
    if len(value) <= limit:
        return value
    return value[:limit] + (b"..." if isinstance(value, bytes) else "...")
