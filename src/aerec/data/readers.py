"""Reading rating files into validated :class:`~aerec.data.ratings.Ratings`.

Formats (``detect_format`` tells them apart by file name and by the first lines):

==============  =============================================================================
``ml-100k``     ``u.data``, ``u1.base`` ... ``ub.test``: ``user<TAB>item<TAB>rating<TAB>timestamp``,
                no header. Scale 1..5 (whole stars). Titles and genres from ``u.item``.
``ml-1m``       ``ratings.dat`` of ML-1M and ML-10M: ``user::item::rating::timestamp``. Scale
                1..5 whole stars (ML-1M), or 0.5..5 half stars when the file has half stars
                (ML-10M). Titles and genres from ``movies.dat``.
``ml-latest``   ``ratings.csv`` of latest-small, 20M, 25M, 32M: header
                ``userId,movieId,rating,timestamp``. Scale 0.5..5 half stars. ``movies.csv``.
``netflix``     Netflix Prize ``combined_data_N.txt`` / ``training_set/mv_*.txt``: a
                ``MovieID:`` line, then ``CustomerID,Rating,YYYY-MM-DD`` lines. Scale 1..5.
                Titles from ``movie_titles.csv`` / ``movie_titles.txt`` when present.
``parquet``     Columns named like a CSV header (see below); "line" = row number + 1.
``csv``         Any delimited text: comma, tab, semicolon, pipe or whitespace, with or
                without a header. The scale is inferred from the values unless given.
==============  =============================================================================

Columns of generic files. ``columns`` names the fields in file order ("user,item,rating,_";
``_`` or None skips a field). Without it a header line is mapped by common aliases
(userId/user_id/uid/customer -> user, movieId/itemId/product -> item, rating/score/stars ->
rating, timestamp/time/ts/date -> timestamp), and a header-less file is read as
user,item[,rating[,timestamp]] from its number of fields. Date strings become Unix seconds
(UTC when no zone is given).

Implicit (event) data. A file with user and item but no rating column (``user,item`` or
``user,item,timestamp``) is read as events: ``implicit=True``, every rating 1.0, scale
``RatingScale(0, 1, 1)``. ``implicit=True`` also turns a rated file into events (its ratings
are dropped; filter positives first if that is what you mean). A header with unknown columns
but no rating column is refused rather than guessed: name the rating column or pass
``implicit=True``.

Line numbers. The returned frame's index is each row's 1-based line number in the file
(blank lines, and lines whose fields are all empty, are skipped but counted), so every
later complaint names the right line. Parsing is done by pyarrow's multi-threaded CSV reader
(the fast path; whitespace-separated files use pandas' C parser); when it fails, the file is
re-scanned line by line to report the first bad line as a :class:`DataError` with the file,
line, value and a fix. No pandas, NumPy, pyarrow or Unicode exception escapes.

Compressed files. gzip, bzip2 and zstd files (``ratings.csv.gz``, ``u.data.bz2``, ``.zst``, or
such bytes without the suffix, e.g. on stdin) are decompressed while they are read, by
pyarrow; line numbers are those of the decompressed text.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from aerec.data import _sniff
from aerec.data._sniff import WHITESPACE, Head
from aerec.data.ratings import DuplicatePolicy, Ratings
from aerec.data.scale import IMPLICIT_SCALE, RatingScale
from aerec.errors import DataError

__all__ = ["FORMATS", "IMPLICIT_SCALE", "detect_format", "read_items", "read_ratings"]

FORMATS = ("ml-100k", "ml-1m", "ml-latest", "netflix", "parquet", "csv")
"""The format names ``read_ratings(format=...)`` accepts, besides ``"auto"``."""

_FORMAT_ALIASES = {
    "ml-10m": "ml-1m", "ml-latest-small": "ml-latest", "ml-20m": "ml-latest",
    "ml-25m": "ml-latest", "ml-32m": "ml-latest", "tsv": "csv", "text": "csv",
}
WHOLE_STARS = RatingScale(1, 5, 1)
HALF_STARS = RatingScale(0.5, 5, 0.5)

ROLES4 = ("user", "item", "rating", "timestamp")
_ML100K_NAME = re.compile(r"^(u\.data|u[1-5]\.(base|test)|u[ab]\.(base|test))$")
_NETFLIX_NAME = re.compile(r"^(combined_data_\d+|mv_\d+)\.txt$")
_NETFLIX_MOVIE = re.compile(r"^\s*\d+\s*:\s*$")
_NETFLIX_ROW = re.compile(r"^\s*\d+\s*,\s*\d+(\.\d+)?\s*,\s*\d{4}-\d{2}-\d{2}\s*$")
_RATINGS_FILES = ("u.data", "ratings.dat", "ratings.csv", "ratings.parquet")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
# Exceptions the libraries raise on bad input; read_ratings turns any that slip past the
# precise checks into a DataError naming the file.
_LIBRARY_ERRORS = (pa.ArrowException, pd.errors.ParserError, pd.errors.EmptyDataError,
                   UnicodeError, OverflowError, ValueError, OSError)


# ============================================================================================
# Public API


def detect_format(path: str | Path) -> str:
    """The format of a rating file: one of :data:`FORMATS`.

    Decided from the file name and the first lines: a ``MovieID:`` line -> ``netflix``;
    ``a::b::c::d`` -> ``ml-1m``; the header ``userId,movieId,rating,timestamp`` ->
    ``ml-latest``; a 4-field tab-separated ``u.data``/``uN.base``/``uN.test`` (or any such file
    in an ``ml-100k`` folder) -> ``ml-100k``; Parquet by suffix or magic bytes; any other text
    -> ``csv``. A folder is read through its ratings file (``u.data``, ``ratings.dat``,
    ``ratings.csv``). gzip, bzip2 and zstd files (``.gz``, ``.bz2``, ``.zst``) are read
    decompressed. Raises :class:`DataError` when the path is missing, empty, compressed some
    other way, or not text.
    """
    p = _resolve(path)
    if _is_parquet(p):
        return "parquet"
    return _detect(p, _sniff.read_head(p, None))


def read_ratings(
    path: str | Path,
    *,
    format: str = "auto",
    columns: Sequence[str | None] | str | None = None,
    sep: str | None = None,
    scale: RatingScale | None = None,
    duplicates: DuplicatePolicy = "error",
    implicit: bool | None = None,
    encoding: str | None = None,
) -> Ratings:
    """Read a rating file (or a dataset folder) into validated :class:`Ratings`.

    Args:
        path: the file, or a folder holding ``u.data`` / ``ratings.dat`` / ``ratings.csv``.
        format: ``"auto"`` (detect) or one of :data:`FORMATS` (``ml-10m``, ``ml-20m`` ... are
            accepted as aliases).
        columns: the fields in file order, as ``"user,item,rating,timestamp"`` or a list;
            ``"_"`` / None skips a field. Given for a MovieLens file, it replaces the built-in
            layout but keeps the MovieLens scale and titles.
        sep: the field separator (``","``, ``"\\t"``, ``";"``, ``"|"``, ``"::"``,
            ``"whitespace"``); detected when None.
        scale: the rating scale; by default the MovieLens/Netflix one, else inferred.
        duplicates: what to do with a repeated (user, item) pair: ``"error"``, ``"last"``,
            ``"mean"``.
        implicit: True reads rows as events (rating 1.0); None decides from the columns.
        encoding: the text encoding; default UTF-8 (a byte-order mark is honoured).

    Returns:
        Ratings whose ``frame.index`` holds 1-based line numbers (Parquet: row number + 1),
        ``source`` = ``str(path)``, and ``item_info`` (title, genres) for MovieLens and Netflix
        files whose metadata file sits next to them.

    Raises:
        DataError: naming the file, line and value, for anything wrong with the input.
    """
    fmt = _format_name(format)
    p = _resolve(path)
    if duplicates not in ("error", "last", "mean", "keep"):
        raise DataError("unknown duplicate policy", path=str(p), value=duplicates,
                        fix="use error, last or mean")
    try:
        if fmt == "parquet" or (fmt == "auto" and _is_parquet(p)):
            fields = _read_parquet(p, columns)
            fmt = "parquet"
        else:
            head = _sniff.read_head(p, encoding)
            fmt = _detect(p, head) if fmt == "auto" else fmt
            fields = _read_text(p, fmt, head, columns, sep)
        return _finish(fields, p, fmt, scale=scale, duplicates=duplicates, implicit=implicit)
    except DataError:
        raise
    except _LIBRARY_ERRORS as e:
        raise DataError(f"cannot read the file ({type(e).__name__}: {_short(e)})", path=str(p),
                        fix="check the file's format, or name it with format=/columns=/sep=") from e


def read_items(path: str | Path) -> pd.DataFrame | None:
    """Item metadata for a ratings file's folder, or None when there is none.

    ``path`` is a ratings file, its folder, or a metadata file itself. Looks for ``u.item``
    (ML-100K; latin-1, genres from ``u.genre``), ``movies.dat`` (ML-1M/10M), ``movies.csv``
    (ML-latest/20M+) and ``movie_titles.csv``/``.txt`` (Netflix, also one folder up).

    Returns:
        A DataFrame indexed by item id (``item``, int64) with ``title`` and ``genres`` (genre
        names joined by ``|``; empty when the source has none).
    """
    p = Path(path).expanduser()
    if p.is_file() and p.name in _ITEM_READERS:
        return _ITEM_READERS[p.name](p)
    folder = p if p.is_dir() else p.parent
    for name, reader in _ITEM_READERS.items():
        found = _item_file(folder, name)
        if found is not None:
            return reader(found)
    return None


# ============================================================================================
# Resolving and detecting


def _format_name(format: str) -> str:
    name = str(format).strip().lower()
    name = _FORMAT_ALIASES.get(name, name)
    if name != "auto" and name not in FORMATS:
        raise DataError("unknown rating file format", value=format,
                        fix=f"use auto or one of {', '.join(FORMATS)}")
    return name


def _resolve(path: str | Path) -> Path:
    """The ratings file ``path`` names: itself, or the known ratings file in a folder."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError("no such file or folder", path=str(path),
                        fix="check the path; `aerec datasets list` shows the datasets aerec "
                        "can download and read by name")
    if p.is_dir():
        for name in _RATINGS_FILES:
            if (p / name).is_file():
                return p / name
        raise DataError(f"this folder holds none of the rating files aerec knows "
                        f"({', '.join(_RATINGS_FILES)})", path=str(path),
                        fix="give the rating file itself")
    return p


def _is_parquet(p: Path) -> bool:
    if p.suffix.lower() in _PARQUET_SUFFIXES:
        return True
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"PAR1"
    except OSError:
        return False


def _detect(p: Path, head: Head) -> str:
    texts = [t for _, t in head.lines]
    first = texts[0].strip()
    if _looks_netflix(p, texts):
        return "netflix"
    if "::" in first and len(first.split("::")) == 4:
        return "ml-1m"
    if [re.sub(r"[^0-9a-z]", "", f.lower()) for f in first.split(",")] == [
        "userid", "movieid", "rating", "timestamp"
    ]:
        return "ml-latest"
    ml100k_name = _ML100K_NAME.match(_sniff.plain_name(p)) or p.parent.name.lower() == "ml-100k"
    if ml100k_name and len(first.split("\t")) == 4:
        return "ml-100k"
    return "csv"


def _looks_netflix(p: Path, texts: list[str]) -> bool:
    """A 'MovieID:' line first; or a Netflix file name and a 'MovieID:' line among the first."""
    if _NETFLIX_MOVIE.match(texts[0]):
        return all(_NETFLIX_MOVIE.match(t) or _NETFLIX_ROW.match(t) for t in texts[1:2])
    return bool(_NETFLIX_NAME.match(_sniff.plain_name(p))) and any(_NETFLIX_MOVIE.match(t) for t in texts)


# ============================================================================================
# Layouts: which field holds what


@dataclass(frozen=True)
class _Layout:
    """How a delimited file is laid out.

    Attributes:
        sep: one character, "::" or WHITESPACE.
        roles: per field in file order, "user" / "item" / "rating" / "timestamp" or None (skip).
        header_line: the 1-based line number of the header line, 0 when there is none.
        quoted: whether '"' quotes fields (CSV style); MovieLens files never quote.
        names: the header's names, when the roles came from a header.
    """

    sep: str
    roles: tuple[str | None, ...]
    header_line: int = 0
    quoted: bool = True
    names: tuple[str, ...] | None = None

    @property
    def n_fields(self) -> int:
        return len(self.roles)

    @property
    def sep_name(self) -> str:
        return {"\t": "tabs", WHITESPACE: "whitespace"}.get(self.sep, repr(self.sep))


def _layout_for(fmt: str, head: Head, p: Path, columns, sep: str | None) -> _Layout:
    """The built-in layout of a MovieLens format, or one sniffed from the head."""
    if columns is None and sep is None:
        if fmt == "ml-100k":
            return _Layout("\t", ROLES4, quoted=False)
        if fmt == "ml-1m":
            return _Layout("::", ROLES4, quoted=False)
        if fmt == "ml-latest":
            n, first = head.lines[0]
            is_header = _sniff.looks_like_header(first.split(","), [])
            return _Layout(",", ROLES4, header_line=n if is_header else 0, quoted=False)
    default_sep = {"ml-100k": "\t", "ml-1m": "::", "ml-latest": ","}.get(fmt)
    return _sniff_layout(head, p, columns, _sniff.normalise_sep(sep) or default_sep)


def _sniff_layout(head: Head, p: Path, columns, sep: str | None) -> _Layout:
    """Separator, header and column roles of a generic file, from its first lines."""
    (first_no, first_text), texts = head.lines[0], [t for _, t in head.lines]
    given = sep is not None
    if sep is None:
        sep = _sniff.guess_delimiter(texts)
        if sep is None:
            raise DataError(
                "cannot find the field separator: each line needs at least a user and an item",
                path=str(p), line=first_no, value=_clip(first_text),
                fix="pass sep=',' / '\\t' / ';' / '|' / 'whitespace' (--sep), or check the file")
    split = _sniff.splitter(sep)
    if split(first_text) is None:
        raise DataError("the line cannot be split into fields (an unclosed quote?)", path=str(p),
                        line=first_no, value=_clip(first_text), fix="fix the quoting on this line")
    rows = [split(t) or [t] for t in texts]
    if given and len(rows[0]) < 2:  # a separator given with --sep that the file does not use
        found = _sniff.guess_delimiter(texts)
        raise DataError(
            f"the separator {sep!r} leaves the line in one field; a rating file needs at least a user and an item",
            path=str(p), line=first_no, value=_clip(first_text),
            fix=f"pass sep={found!r} (--sep), which the file seems to use" if found else "check sep= (--sep)")
    header = _sniff.looks_like_header(rows[0], rows[1:])
    n_fields = len(rows[0])
    quoted = len(sep) == 1
    if columns is not None:
        roles = _parse_columns(columns, n_fields, p, first_no)
        return _Layout(sep, roles, first_no if header else 0, quoted)
    if header:
        names = tuple(f.strip() for f in rows[0])
        return _Layout(sep, _roles_from_names(names, p, first_no), first_no, quoted, names)
    return _Layout(sep, _roles_by_count(rows, p, first_no, first_text), 0, quoted)


def _parse_columns(
    columns, n_fields: int | None, p: Path, line: int | None
) -> tuple[str | None, ...]:
    """``columns`` ("user,item,_,rating" or a list) as one role per field."""
    names = columns.split(",") if isinstance(columns, str) else list(columns)
    roles: list[str | None] = []
    for name in names:
        text = "" if name is None else str(name).strip()
        if text in ("", "_", "-"):
            roles.append(None)
            continue
        role = text.lower() if text.lower() in ROLES4 else _sniff.canonical_column(text)
        if role is None:
            raise DataError("unknown column name in columns", path=str(p), value=text,
                            fix="use user, item, rating, timestamp, or _ for a field to skip")
        if role in roles:
            raise DataError(f"columns names the {role} column twice", path=str(p), value=columns,
                            fix="name each of user, item, rating, timestamp at most once")
        roles.append(role)
    _require_user_item(roles, p, None, columns, "columns")
    if n_fields is not None and len(roles) != n_fields:
        raise DataError(f"columns names {len(roles)} fields but the file's lines have {n_fields}",
                        path=str(p), line=line, value=columns,
                        fix="name every field in file order, with _ for the ones to skip")
    return tuple(roles)


def _roles_from_names(names: Sequence[str], p: Path, line: int | None) -> tuple[str | None, ...]:
    """Header names mapped to roles by alias; the first column for each role wins."""
    roles: list[str | None] = []
    for name in names:
        role = _sniff.canonical_column(name)
        roles.append(role if role not in roles else None)
    _require_user_item(roles, p, line, list(names), "the header")
    return tuple(roles)


def _require_user_item(roles, p: Path, line: int | None, value, where: str) -> None:
    missing = [r for r in ("user", "item") if r not in roles]
    if missing:
        raise DataError(f"{where} names no {' and no '.join(missing)} column", path=str(p),
                        line=line, value=value,
                        fix="name the columns, e.g. columns='user,item,rating,timestamp' "
                        "(--columns), or rename the header (userId, movieId, rating, timestamp)")


def _roles_by_count(rows: list[list[str]], p: Path, line: int, text: str) -> tuple[str | None, ...]:
    """Roles of a header-less file from its field count: user,item[,rating[,timestamp]].

    With three fields, the third is a timestamp when it holds big whole numbers (Unix seconds
    are > 1e8), as in ``user,item,timestamp`` event logs; otherwise it is the rating.
    """
    n = len(rows[0])
    if n == 3:
        third = [r[2] for r in rows if len(r) == 3]
        if all(re.fullmatch(r"\s*\d{9,}\s*", v) for v in third):
            return ("user", "item", "timestamp")
    if n in (2, 3, 4):
        return ROLES4[:n]
    raise DataError(f"cannot tell which of the {n} fields hold user, item and rating",
                    path=str(p), line=line, value=_clip(text),
                    fix="name them in file order, e.g. columns='user,item,rating,_' (--columns), "
                    "or add a header line")


# ============================================================================================
# Reading text files


@dataclass(frozen=True)
class _Fields:
    """What a file reader hands on: the fields that have a role, and where they came from.

    Attributes:
        frame: one column per role (user, item [, rating] [, timestamp]); index = line numbers.
        roles: the role of each field in file order (None = skipped).
        names: the header's column names when the roles came from a header, else None.
        header_line: the header's line number (None when there is no header line).
        unit: "line" for text files, "row" for Parquet (what the index numbers count).
    """

    frame: pd.DataFrame
    roles: tuple[str | None, ...]
    names: tuple[str, ...] | None = None
    header_line: int | None = None
    unit: str = "line"


def _read_text(p: Path, fmt: str, head: Head, columns, sep) -> _Fields:
    if fmt == "netflix":
        if columns is not None or sep is not None:
            raise DataError("columns= and sep= do not apply to Netflix files", path=str(p),
                            fix="drop them, or read the file with format='csv'")
        return _Fields(_read_netflix(p, head), ROLES4)
    layout = _layout_for(fmt, head, p, columns, sep)
    return _Fields(_read_delimited(p, layout, head), layout.roles, layout.names,
                   layout.header_line or None)


def _read_delimited(p: Path, layout: _Layout, head: Head) -> pd.DataFrame:
    """The fields of a delimited file that have a role, named by role; index = line numbers."""
    if head.complete and head.lines[-1][0] <= layout.header_line:
        return pd.DataFrame(columns=[r for r in layout.roles if r])  # a header and nothing else
    if layout.sep == WHITESPACE:
        raw = _parse_with_pandas(p, layout, head)
    else:
        raw = _parse_with_arrow(p, layout, head)
    # pyarrow accepts a quoted field that spans lines; then rows are not lines. Such a field
    # has no place in a rating file: name the line where it starts.
    quoted = layout.quoted and _sniff.is_ascii_based(head.encoding)
    if quoted and len(raw) + layout.header_line != _sniff.count_lines(p):
        raise _bad_line(p, layout, head, "a quoted field spans several lines")
    raw.index = np.arange(len(raw), dtype=np.int64) + layout.header_line + 1
    raw = raw[~raw.isna().all(axis=1).to_numpy()]  # blank lines (and all-empty ones)
    if layout.sep == "::":
        # Parsed on ':' so 'a::b' is a, '', b: every odd field must be empty.
        stray = raw[raw.columns[1::2]].notna().any(axis=1).to_numpy()
        if stray.any():
            raise _bad_line(p, layout, head, "a stray ':'")
        raw = raw[raw.columns[0::2]]
    raw.columns = [f"f{i}" for i in range(raw.shape[1])]
    if layout.sep == WHITESPACE and raw.isna().any(axis=None):
        # pandas fills short lines with NaN instead of refusing them: look for one.
        bad = _sniff.find_bad_line(p, encoding=head.encoding, split=str.split,
                                   n_fields=layout.n_fields, first_line=layout.header_line + 1,
                                   sep_name=layout.sep_name)
        if bad is not None:
            raise bad
    frame = pd.DataFrame(index=raw.index)
    for i, role in enumerate(layout.roles):
        if role is not None:
            frame[role] = raw[f"f{i}"]
    return frame


def _physical_fields(layout: _Layout) -> int:
    # '::' files are parsed on ':' (pyarrow needs a one-character delimiter).
    return 2 * layout.n_fields - 1 if layout.sep == "::" else layout.n_fields


def _parse_with_arrow(p: Path, layout: _Layout, head: Head) -> pd.DataFrame:
    """Fast path: pyarrow's CSV reader; on failure, a re-scan names the bad line."""
    n = _physical_fields(layout)
    names = [f"c{j}" for j in range(n)]
    read = pacsv.ReadOptions(column_names=names, skip_rows=layout.header_line,
                             encoding=head.arrow_encoding)
    parse = pacsv.ParseOptions(delimiter=":" if layout.sep == "::" else layout.sep,
                               quote_char='"' if layout.quoted else False,
                               ignore_empty_lines=False)  # keep blank lines so rows = lines
    step = 2 if layout.sep == "::" else 1
    rating = [f"c{step * i}" for i, r in enumerate(layout.roles) if r == "rating"]
    ids = [f"c{step * i}" for i, r in enumerate(layout.roles) if r in ("user", "item")]
    # Ratings are always floats: a half star late in the file must not break int inference.
    # Ids are read as text and typed by _id_column: inference would read "007" as 7.
    typed = pacsv.ConvertOptions(column_types={**{c: pa.float64() for c in rating}, **{c: pa.string() for c in ids}},
                                 strings_can_be_null=True, check_utf8=True)
    try:
        with _sniff.open_binary(p) as f:
            table = pacsv.read_csv(f, read_options=read, parse_options=parse, convert_options=typed)
    except (pa.ArrowException, UnicodeError) as first_error:
        if "conversion error" not in str(first_error):
            raise _bad_line(p, layout, head, _short(first_error)) from None
        # Types are inferred from the first block: a later 'abc' fails the conversion. Read
        # everything as text instead and let the validation name the line.
        as_text = pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                       strings_can_be_null=True, check_utf8=True)
        try:
            with _sniff.open_binary(p) as f:
                table = pacsv.read_csv(f, read_options=read, parse_options=parse, convert_options=as_text)
        except (pa.ArrowException, UnicodeError):
            raise _bad_line(p, layout, head, _short(first_error)) from None
        return _with_typed_ids(_numbers_where_possible(table, keep=ids), ids).to_pandas(date_as_object=False)
    if any(pa.types.is_binary(t) or pa.types.is_large_binary(t) for t in table.schema.types):
        # pyarrow infers "binary" for a column with bytes that are not valid text.
        raise _bad_line(p, layout, head, f"bytes that are not {head.encoding} text")
    return _with_typed_ids(table, ids).to_pandas(date_as_object=False)


def _with_typed_ids(table: pa.Table, ids: list[str]) -> pa.Table:
    for name in ids:
        table = table.set_column(table.schema.get_field_index(name), name, _id_column(table[name]))
    return table


def _id_column(values: pa.ChunkedArray) -> pa.ChunkedArray:
    """User or item ids read as text, typed: int64 when every id spells a whole number, the
    texts otherwise. A zero-padded or signed id ("007", "+7") keeps the column as text, so that
    "007" and "7" stay two ids, and so do digits past int64 (a float would round them into one
    another). Other numbers (e.g. "3.0") come back as floats for the validation to judge."""
    try:
        ints = pc.cast(values, pa.int64())  # the common case, and the cheap one
    except pa.ArrowException:
        ints = None
    text = values if ints is not None else pc.utf8_trim_whitespace(values)
    if _spelt_with_padding(text):
        return text
    if ints is not None:
        return ints
    try:
        return pc.cast(text, pa.int64())
    except pa.ArrowException:
        pass
    if pc.any(pc.match_substring_regex(text, r"^[+-]?[0-9]{16,}$")).as_py():
        return text  # too many digits for int64 (or for a float to hold exactly)
    try:
        return pc.cast(text, pa.float64())
    except pa.ArrowException:
        return text


def _spelt_with_padding(text: pa.ChunkedArray) -> bool:
    """Whether any id starts with a zero followed by more, or with a sign ("007", "+7", "-07")."""
    padded = pc.and_(pc.starts_with(text, "0"), pc.greater(pc.binary_length(text), 1))
    signed = pc.or_(pc.starts_with(text, "+"), pc.starts_with(text, "-0"))
    return bool(pc.any(pc.or_(padded, signed)).as_py())


def _parse_with_pandas(p: Path, layout: _Layout, head: Head) -> pd.DataFrame:
    """Whitespace-separated files: pandas' C parser (pyarrow has no regex separator)."""
    names = [f"c{j}" for j in range(layout.n_fields)]
    try:
        # No quoting: whitespace-separated rating files do not quote, so '"' is a character.
        with _sniff.open_binary(p) as f:
            frame = pd.read_csv(f, sep=r"\s+", header=None, names=names, skiprows=layout.header_line,
                                skip_blank_lines=False, encoding=head.encoding, engine="c",
                                quoting=csv.QUOTE_NONE, dtype={names[i]: str for i, r in enumerate(layout.roles)
                                                               if r in ("user", "item")})
    except (pd.errors.ParserError, UnicodeError, ValueError) as e:
        raise _bad_line(p, layout, head, _short(e)) from None
    for i, role in enumerate(layout.roles):
        if role in ("user", "item"):
            typed = _id_column(pa.chunked_array([pa.array(frame[names[i]], type=pa.string(), from_pandas=True)]))
            frame[names[i]] = typed.to_pandas()
    return frame


def _bad_line(p: Path, layout: _Layout, head: Head, problem: str) -> DataError:
    """The DataError for the first bad line, found by a slow re-scan after a parse failed."""
    found = _sniff.find_bad_line(
        p, encoding=head.encoding, split=_sniff.splitter(layout.sep, quoted=layout.quoted),
        n_fields=layout.n_fields, first_line=layout.header_line + 1, sep_name=layout.sep_name,
    )
    return found or DataError(
        f"cannot parse the file ({problem})", path=str(p),
        fix="check the separator and quoting, or name them with sep=/columns=",
    )


def _numbers_where_possible(table: pa.Table, keep: Sequence[str] = ()) -> pa.Table:
    """Text columns back to integers or floats when every value is one (after a text read);
    the columns named in ``keep`` stay text."""
    columns = []
    for name, column in zip(table.column_names, table.columns):
        if name in keep:
            columns.append(column)
            continue
        for kind in (pa.int64(), pa.float64()):
            try:
                column = pc.cast(column, kind)
                break
            except pa.ArrowException:
                continue
        columns.append(column)
    return pa.table(columns, names=table.column_names)


# --------------------------------------------------------------------------------------------
# Netflix Prize


def _read_netflix(p: Path, head: Head) -> pd.DataFrame:
    """A Netflix Prize file: 'MovieID:' lines, each followed by 'CustomerID,Rating,Date' lines.

    Vectorised with pyarrow.compute: the file becomes one string per line, a running count of
    'MovieID:' lines says which movie each rating line belongs to.
    """
    lines = _text_lines(p, head)  # (n_lines,) strings
    text = pc.utf8_trim_whitespace(lines)
    number = np.arange(1, len(text) + 1, dtype=np.int64)  # line numbers
    is_movie = pc.ends_with(text, ":").to_numpy(zero_copy_only=False)
    is_blank = pc.equal(pc.utf8_length(text), 0).to_numpy(zero_copy_only=False)
    movie_no = np.cumsum(is_movie)  # 1 for the lines after the first 'MovieID:', ...

    movie_text = pc.utf8_slice_codeunits(text.filter(pa.array(is_movie)), 0, -1)  # drop the ':'
    movie_text = pc.utf8_trim_whitespace(movie_text)
    movie_ids = _whole_numbers(movie_text, p, number[is_movie], "movie id (before ':')")

    rows = ~is_movie & ~is_blank
    orphan = rows & (movie_no == 0)
    if orphan.any():
        at = int(np.flatnonzero(orphan)[0])
        raise DataError("a rating line before any 'MovieID:' line", path=str(p),
                        line=int(number[at]), value=_clip(lines[at].as_py()),
                        fix="a Netflix file starts with a 'MovieID:' line; is this the right file?")
    body = text.filter(pa.array(rows))
    parts = pc.split_pattern(body, ",")
    n_parts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
    if (n_parts != 3).any():
        at = int(np.flatnonzero(n_parts != 3)[0])
        raise DataError(f"the line has {n_parts[at]} fields, expected 3 (CustomerID,Rating,Date)",
                        path=str(p), line=int(number[rows][at]), value=_clip(body[at].as_py()),
                        fix="every rating line reads CustomerID,Rating,YYYY-MM-DD")
    field = [pc.utf8_trim_whitespace(pc.list_element(parts, k)) for k in range(3)]
    dates = pc.strptime(field[2], format="%Y-%m-%d", unit="s", error_is_null=True)
    bad_date = pc.is_null(dates).to_numpy(zero_copy_only=False)
    if bad_date.any():
        at = int(np.flatnonzero(bad_date)[0])
        raise DataError("the date is not YYYY-MM-DD", path=str(p), line=int(number[rows][at]),
                        value=field[2][at].as_py(),
                        fix="write dates as YYYY-MM-DD, e.g. 2005-09-06")
    return pd.DataFrame(
        {
            "user": _numbers_or_text(field[0], pa.int64()),
            "item": movie_ids[movie_no[rows] - 1],
            "rating": _numbers_or_text(field[1], pa.float64()),
            "timestamp": pc.cast(dates, pa.int64()).to_numpy(zero_copy_only=False),
        },
        index=number[rows],
    )


def _text_lines(p: Path, head: Head) -> pa.Array:
    """The file's lines (universal newlines) as one Arrow string array.

    A decode error is reported at its line by a re-scan.
    """
    with _sniff.open_binary(p) as f:
        data = f.read()
    try:
        if head.arrow_encoding == "utf8":
            data = data.removeprefix(b"\xef\xbb\xbf")
            text = pa.array([data], pa.large_binary()).cast(pa.large_string())
        else:
            text = pa.array([data.decode(head.encoding)], pa.large_string())
    except (pa.ArrowException, UnicodeError) as e:
        found = _sniff.find_bad_line(p, encoding=head.encoding, split=None, n_fields=0)
        raise found or DataError(f"cannot decode the file ({_short(e)})", path=str(p),
                                 fix="pass its encoding, e.g. encoding='latin-1'") from None
    pattern = r"\r\n|\r|\n" if b"\r" in data else "\n"
    split = pc.split_pattern_regex if len(pattern) > 1 else pc.split_pattern
    return pc.list_flatten(split(text, pattern))


def _whole_numbers(values: pa.Array, p: Path, lines: np.ndarray, what: str) -> np.ndarray:
    """Values cast to int64, or a DataError at the first that is not a whole number."""
    try:
        return pc.cast(values, pa.int64()).to_numpy(zero_copy_only=False)
    except pa.ArrowException:
        texts = values.to_pylist()
        at = next((i for i, v in enumerate(texts) if not _is_int64(v)), 0)
        raise DataError(f"the {what} is not a 64-bit whole number", path=str(p),
                        line=int(lines[at]), value=texts[at],
                        fix="check that this is a Netflix Prize file") from None


def _is_int64(text: str | None) -> bool:
    return bool(re.fullmatch(r"[+-]?\d+", text or "")) and -(2**63) <= int(text) < 2**63


def _numbers_or_text(values: pa.Array, to: pa.DataType):
    """Cast to numbers when all are; else keep text so the validation names the bad line."""
    try:
        return pc.cast(values, to).to_numpy(zero_copy_only=False)
    except pa.ArrowException:
        return values.to_pandas().to_numpy()


# --------------------------------------------------------------------------------------------
# Parquet


def _read_parquet(p: Path, columns) -> _Fields:
    """The role columns of a Parquet file; index = row number + 1."""
    try:
        table = pq.read_table(p)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"not a readable Parquet file ({_short(e)})", path=str(p),
                        fix="check that the file is complete and really Parquet") from None
    names = list(table.column_names)
    if columns is not None:
        roles, header = _parse_columns(columns, len(names), p, None), None
    else:
        roles, header = _roles_from_names(names, p, None), tuple(names)
    data = {}
    for j, role in enumerate(roles):
        if role:
            data[role] = _parquet_column(table, j, role, p)
    frame = pd.DataFrame(data, index=np.arange(1, table.num_rows + 1, dtype=np.int64))
    return _Fields(frame, roles, header, None, unit="row")


def _parquet_column(table: pa.Table, j: int, role: str, p: Path) -> np.ndarray:
    """Column ``j`` as a NumPy array, or a DataError naming it (e.g. a timestamp pandas cannot
    hold: a year past 9999 with a time zone, found by fuzz/)."""
    column = table.column(j)
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type) \
            or pa.types.is_fixed_size_binary(column.type):
        raise DataError(f"the {role} column {table.column_names[j]!r} holds raw bytes ({column.type}), "
                        "not numbers or text", path=str(p),
                        fix="store ids as integers or UTF-8 text, ratings as numbers")
    if role != "timestamp" and pa.types.is_temporal(column.type):
        raise DataError(f"the {role} column {table.column_names[j]!r} holds dates or times ({column.type})",
                        path=str(p), fix="store ids as integers or text and ratings as numbers; "
                        "name the columns with columns= if the roles were guessed wrong")
    try:
        return column.to_pandas(date_as_object=False).to_numpy()
    except (pa.ArrowException, ValueError, OverflowError, NotImplementedError) as e:
        raise DataError(f"the {role} column {table.column_names[j]!r} ({column.type}) cannot be read "
                        f"({_short(e)})", path=str(p),
                        fix="store ids as integers or text, ratings as numbers and timestamps as Unix "
                        "seconds or dates between 1677 and 2262") from None


# ============================================================================================
# From fields to Ratings


def _finish(fields: _Fields, p: Path, fmt: str, *, scale, duplicates, implicit) -> Ratings:
    """Implicit decision, id and timestamp conversion, scale and item info; then validate."""
    frame = fields.frame
    if frame.empty:
        after = f" after the header on line {fields.header_line}" if fields.header_line else ""
        raise DataError(f"no ratings found{after}", path=str(p), line=fields.header_line,
                        fix="check that this is the right file and that it is complete")
    try:
        is_implicit = _decide_implicit(fields, implicit, p)
        if is_implicit:
            frame = frame.assign(rating=np.float32(1.0))
        if fmt in ("ml-100k", "ml-1m", "ml-latest", "netflix"):
            frame = _require_whole_ids(frame, p, fmt)
        if "timestamp" in frame.columns:
            frame["timestamp"] = _unix_seconds(frame["timestamp"], p)
        if scale is None:
            scale = IMPLICIT_SCALE if is_implicit else _known_scale(fmt, frame["rating"])
        ratings = Ratings.from_frame(frame, scale=scale, source=str(p), duplicates=duplicates,
                                     implicit=is_implicit)
    except DataError as e:
        if fields.unit == "row" and e.line is not None:
            raise _as_row_error(e) from None
        raise
    info = _item_info_for(fmt, p)
    if info is not None:
        ratings = Ratings(ratings.frame, ratings.scale, ratings.source, info, ratings.implicit)
    return ratings


def _decide_implicit(fields: _Fields, implicit: bool | None, p: Path) -> bool:
    """Whether the rows are events: see the module docstring."""
    has_rating = "rating" in fields.roles
    if implicit is None:
        names = fields.names or ()
        unnamed = [n for n, r in zip(names, fields.roles[: len(names)], strict=True) if r is None]
        if not has_rating and unnamed:
            raise DataError(f"no rating column among {', '.join(map(str, fields.names or ()))}",
                            path=str(p), line=fields.header_line,
                            fix="name the rating column with columns='user,item,rating,...' "
                            "(--columns), or pass implicit=True (--implicit) to read events")
        return not has_rating
    if not implicit and not has_rating:
        raise DataError("the data has no rating column", path=str(p),
                        fix="name it with columns= (--columns), or read it as events with "
                        "implicit=True")
    return bool(implicit)


def _require_whole_ids(frame: pd.DataFrame, p: Path, fmt: str) -> pd.DataFrame:
    """MovieLens and Netflix ids are whole numbers: name the first line where one is not.

    Ids the reader kept as text because they are spelt as digits that int64 cannot hold or that
    a conversion would change ("007", 23 digits) stay text: ids are labels, kept as written."""
    for col in ("user", "item"):
        ids = frame[col]
        if ids.dtype.kind in "iu":
            continue
        if pd.api.types.is_string_dtype(ids) or ids.dtype == object:
            text = ids.astype(str).str.strip()
            if text.str.fullmatch(r"[0-9]+").all():
                frame = frame.assign(**{col: text.to_numpy(dtype=object)})
                continue
        numbers = pd.to_numeric(ids, errors="coerce")
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        # Empty ids are left for the validation ("missing user id"); text and fractions are not.
        present = ids.notna().to_numpy() & (ids.astype(str).str.strip() != "").to_numpy()
        bad = present & ~(np.isfinite(values) & (values == np.round(values)))
        if bad.any():
            at = int(np.flatnonzero(bad)[0])
            raise DataError(f"{col} id is not a whole number", path=str(p),
                            line=int(frame.index[at]), value=_plain(ids.iloc[at]),
                            fix=f"{fmt} files hold whole-number ids; check the file, or read it "
                            "with format='csv'")
        frame = frame.assign(**{col: numbers})
    return frame


def _unix_seconds(ts: pd.Series, p: Path) -> pd.Series:
    """Timestamps as Unix seconds: numbers pass through, dates (UTC if no zone) are converted."""
    if ts.dtype.kind in "iufb":
        return ts
    if ts.dtype.kind == "M":
        return _seconds_since_epoch(ts)
    text = ts.astype(object).where(ts.notna(), "").astype(str).str.strip()
    filled = (text != "").to_numpy()
    numbers = pd.to_numeric(ts, errors="coerce")
    if not (filled & numbers.isna().to_numpy()).any():
        return numbers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dates = pd.to_datetime(text.where(filled), errors="coerce", utc=True, format="ISO8601")
        if (dates.isna().to_numpy() & filled).any():
            mixed = pd.to_datetime(text.where(filled), errors="coerce", utc=True, format="mixed")
            dates = mixed if mixed.isna().sum() < dates.isna().sum() else dates
    bad = dates.isna().to_numpy() & filled
    if bad.any():
        at = int(np.flatnonzero(bad)[0])
        raise DataError("timestamp is neither Unix seconds nor a date", path=str(p),
                        line=int(ts.index[at]), value=_plain(ts.iloc[at]),
                        fix="write Unix seconds, or dates like 2005-09-06 / 2005-09-06T14:30:00")
    return _seconds_since_epoch(dates)


def _seconds_since_epoch(dates: pd.Series) -> pd.Series:
    if dates.dt.tz is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    # In NumPy's datetime64[s], not pandas' nanoseconds: a date after 2262 (a typo such as
    # 9999-12-31) stays a number instead of overflowing (found by fuzz/). NaT stays missing.
    seconds = dates.to_numpy().astype("datetime64[s]").astype(np.int64)
    missing = dates.isna().to_numpy()
    if missing.any():
        return pd.Series(np.where(missing, np.nan, seconds.astype(np.float64)), index=dates.index)
    return pd.Series(seconds, index=dates.index)


def _known_scale(fmt: str, ratings: pd.Series) -> RatingScale | None:
    """The published scale of a MovieLens or Netflix file; None means infer it."""
    if fmt in ("ml-100k", "netflix"):
        return WHOLE_STARS
    if fmt == "ml-latest":
        return HALF_STARS
    if fmt == "ml-1m":  # ML-1M has whole stars, ML-10M (same layout) half stars
        values = pd.to_numeric(ratings, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        values = values[np.isfinite(values)]
        return WHOLE_STARS if np.all(values == np.round(values)) else HALF_STARS
    return None


def _as_row_error(e: DataError) -> DataError:
    """A DataError about Parquet data, naming the row rather than a line."""
    problem = e.problem.replace("also on line ", "also on row ")  # a duplicate's first place
    err = DataError(f"row {e.line}: {problem}", path=e.path, value=e.value, fix=e.fix,
                    has_value="(got " in str(e))
    err.line = e.line
    return err


# ============================================================================================
# Item metadata


def _item_info_for(fmt: str, p: Path) -> pd.DataFrame | None:
    """Titles and genres for a MovieLens/Netflix file; a broken metadata file only warns."""
    names = {"ml-100k": ("u.item",), "ml-1m": ("movies.dat",), "ml-latest": ("movies.csv",),
             "netflix": ("movie_titles.csv", "movie_titles.txt")}.get(fmt, ())
    for name in names:
        found = _item_file(p.parent, name)
        if found is None:
            continue
        try:
            return _ITEM_READERS[name](found)
        except DataError as e:
            warnings.warn(f"item titles not loaded: {e}", stacklevel=3)
            return None
    return None


def _item_file(folder: Path, name: str) -> Path | None:
    """``folder/name``; Netflix titles may also sit one folder up (next to training_set/)."""
    places = [folder, folder.parent] if name.startswith("movie_titles") else [folder]
    return next((d / name for d in places if (d / name).is_file()), None)


# The 19 genres of ML-100K in flag order, used when u.genre is missing.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)


def _decode(p: Path) -> list[str]:
    """A small metadata file's lines: UTF-8 if it decodes, else latin-1 (ML-100K, ML-1M)."""
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror or e})", path=str(p)) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.splitlines()


def _items_frame(rows: list[tuple[int, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["item", "title", "genres"])
    frame = frame.drop_duplicates("item").set_index("item")
    frame.index = frame.index.astype(np.int64)
    return frame


def _item_id(text: str, p: Path, line: int) -> int:
    try:
        value = int(text.strip())
        if not -(2**63) <= value < 2**63:  # the ids become int64 (found by fuzz/)
            raise ValueError
        return value
    except ValueError:
        raise DataError("item id is not a 64-bit whole number", path=str(p), line=line, value=text,
                        fix="check that this is the dataset's own metadata file") from None


def _read_u_item(p: Path) -> pd.DataFrame:
    """ML-100K ``u.item``: id|title|release|video release|IMDb URL|19 genre flags (latin-1)."""
    genres = _ml100k_genres(p.parent / "u.genre")
    rows = []
    for n, line in enumerate(_decode(p), 1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 5 + len(genres):
            raise DataError(f"the line has {len(fields)} fields, expected {5 + len(genres)}",
                            path=str(p), line=n, value=_clip(line), fix="check the file")
        flags = fields[5:]
        names = "|".join(g for g, flag in zip(genres, flags, strict=True) if flag.strip() == "1")
        rows.append((_item_id(fields[0], p, n), fields[1], names))
    return _items_frame(rows)


def _ml100k_genres(p: Path) -> tuple[str, ...]:
    """Genre names in flag order from ``u.genre`` ("name|index" lines), else the known list."""
    if not p.is_file():
        return ML100K_GENRES
    pairs = [line.rsplit("|", 1) for line in _decode(p) if line.strip()]
    try:
        ordered = sorted((int(i), name) for name, i in pairs)
    except ValueError:
        return ML100K_GENRES
    if [i for i, _ in ordered] != list(range(len(ordered))):
        return ML100K_GENRES
    return tuple(name for _, name in ordered)


def _read_movies_dat(p: Path) -> pd.DataFrame:
    """ML-1M/10M ``movies.dat``: id::title::Genre|Genre (latin-1 in ML-1M)."""
    rows = []
    for n, line in enumerate(_decode(p), 1):
        if not line.strip():
            continue
        fields = line.split("::")
        if len(fields) != 3:
            raise DataError(f"the line has {len(fields)} fields, expected 3 (id::title::genres)",
                            path=str(p), line=n, value=_clip(line), fix="check the file")
        rows.append((_item_id(fields[0], p, n), fields[1], fields[2].strip()))
    return _items_frame(rows)


def _read_movies_csv(p: Path) -> pd.DataFrame:
    """ML-latest/20M+ ``movies.csv``: header movieId,title,genres; titles may be quoted."""
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, encoding="utf-8", engine="c")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError, ValueError) as e:
        raise DataError(f"cannot parse the movies file ({_short(e)})", path=str(p),
                        fix="check the file") from None
    if list(df.columns[:3]) != ["movieId", "title", "genres"]:
        raise DataError("the header is not movieId,title,genres", path=str(p), line=1,
                        value=list(df.columns), fix="check the file")
    triples = zip(df["movieId"], df["title"], df["genres"], strict=True)
    rows = [(_item_id(i, p, n + 2), t, g) for n, (i, t, g) in enumerate(triples)]
    return _items_frame(rows)


def _read_movie_titles(p: Path) -> pd.DataFrame:
    """Netflix ``movie_titles``: MovieID,YearOfRelease,Title (the title may hold commas)."""
    rows = []
    for n, line in enumerate(_decode(p), 1):
        if not line.strip():
            continue
        fields = line.split(",", 2)
        if len(fields) != 3:
            raise DataError("the line is not MovieID,Year,Title", path=str(p), line=n,
                            value=_clip(line), fix="check the file")
        rows.append((_item_id(fields[0], p, n), fields[2].strip(), ""))
    return _items_frame(rows)


_ITEM_READERS = {
    "u.item": _read_u_item,
    "movies.dat": _read_movies_dat,
    "movies.csv": _read_movies_csv,
    "movie_titles.csv": _read_movie_titles,
    "movie_titles.txt": _read_movie_titles,
}


# ============================================================================================
# Small helpers


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _short(e: BaseException, limit: int = 200) -> str:
    return _clip(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__, limit)


def _plain(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
