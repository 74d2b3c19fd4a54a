"""Item metadata from any file: ``aerec train ... --items items.csv``.

A CSV, TSV (or other delimited text: ``;`` or ``|``) or Parquet file with a header naming an id
column (``item``, ``item_id``, ``itemId``, ``movieId``, ``movie_id``, ``id``, ``product``, ...) and
a ``title`` (or ``name``) column; ``genres`` (or ``genre``, ``categories``; several joined by
``|``) and any other columns are optional. Every problem is a :class:`DataError` naming the file
and line, as for ratings files. :func:`attach_item_info` joins the metadata to ratings: ids that
match none of the rated items are an error, a partial match a warning with the counts.
"""

from __future__ import annotations

import csv
import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aerec.errors import DataError

__all__ = ["ID_NAMES", "attach_item_info", "read_item_file"]

ID_NAMES = ("item", "item_id", "itemid", "movieid", "movie_id", "id", "product", "product_id", "sku")
TITLE_NAMES = ("title", "name", "item_title", "movie_title")
GENRE_NAMES = ("genres", "genre", "categories", "category", "tags")
_FIX = "give a header line naming an id column (item, movieId, id, ...) and a title column"


def read_item_file(path: str | Path) -> pd.DataFrame:
    """Item metadata indexed by item id (strings; :func:`attach_item_info` matches them to the
    ratings' ids), with a ``title`` column, ``genres`` when the file has them (``|``-separated)
    and the file's other columns."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError("no such items file", path=str(p), fix="give a CSV, TSV or Parquet file of item id, title")
    if p.suffix.lower() in (".parquet", ".pq") or _magic(p) == b"PAR1":
        header, rows = _parquet_rows(p)
    else:
        header, rows = _text_rows(p)
    return _frame(header, rows, p)


def _magic(p: Path) -> bytes:
    try:
        with open(p, "rb") as fh:
            return fh.read(4)
    except OSError:
        return b""


def _parquet_rows(p: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(p)
    except Exception as exc:  # pyarrow's many error types: named, never escaping
        raise DataError(f"cannot read the Parquet file ({type(exc).__name__}: {str(exc)[:200]})", path=str(p),
                        fix="give a valid Parquet file, or a CSV/TSV file") from None
    frame = table.to_pandas()
    header = [str(c) for c in frame.columns]
    rows = [(k + 2, ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in row])
            for k, row in enumerate(frame.itertuples(index=False, name=None))]
    return header, rows


def _text_rows(p: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    lines = text.splitlines()
    first = next((k for k, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise DataError("the items file is empty", path=str(p), fix=_FIX)
    head = lines[first]
    sep = next((s for s in ("\t", ",", ";", "|") if s in head), None)
    if sep is None:
        raise DataError("the items file's first line has one column; it needs an id and a title", path=str(p),
                        line=first + 1, value=head[:80], fix=_FIX)
    reader = csv.reader(lines[first:], delimiter=sep)
    try:
        header = [h.strip() for h in next(reader)]
        rows = []
        for fields in reader:
            line = first + reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise DataError(f"expected {len(header)} fields (as in the header), found {len(fields)}", path=str(p),
                                line=line, value=sep.join(fields)[:80],
                                fix="quote fields that contain the separator, e.g. \"Movie, The (1995)\"")
            rows.append((line, fields))
    except csv.Error as exc:
        raise DataError(f"cannot parse the line ({exc})", path=str(p), line=first + reader.line_num, fix=_FIX) from None
    return header, rows


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    return next((lowered.index(n) for n in names if n in lowered), None)


def _frame(header: list[str], rows: list[tuple[int, list[str]]], p: Path) -> pd.DataFrame:
    id_col, title_col = _column(header, ID_NAMES), _column(header, TITLE_NAMES)
    if id_col is None:
        raise DataError("the items file has no id column", path=str(p), line=1, value=",".join(header)[:80], fix=_FIX)
    if title_col is None:
        raise DataError("the items file has no title column", path=str(p), line=1, value=",".join(header)[:80],
                        fix=_FIX)
    genre_col = _column(header, GENRE_NAMES)
    if not rows:
        raise DataError("the items file holds a header but no items", path=str(p), fix="add one line per item")
    seen: dict[str, int] = {}
    for line, fields in rows:
        item = fields[id_col].strip()
        if not item:
            raise DataError("the item id is empty", path=str(p), line=line, fix="give every line an item id")
        if item in seen:
            raise DataError(f"item {item} is listed twice (first on line {seen[item]})", path=str(p), line=line,
                            value=item, fix="list each item once")
        seen[item] = line
    data: dict[str, list[Any]] = {"title": [f[title_col].strip() or None for _, f in rows]}
    if genre_col is not None:
        data["genres"] = ["|".join(g.strip() for g in f[genre_col].split("|") if g.strip()) for _, f in rows]
    for j, name in enumerate(header):
        if j not in (id_col, title_col, genre_col) and name and name not in data:
            data[name] = [f[j] for _, f in rows]
    frame = pd.DataFrame(data, index=pd.Index(list(seen), name="item", dtype=object))
    return frame


def attach_item_info(ratings: Any, info: pd.DataFrame, *, source: str = "the items file") -> Any:
    """``ratings`` (a :class:`~aerec.data.ratings.Ratings`) with ``info`` as its item metadata,
    re-keyed to the ratings' own item ids (integer ids match "42"). Ids matching none of the
    rated items are a :class:`DataError`; rated items without a line, or lines for items
    nobody rated, a warning with the counts."""
    items = pd.unique(ratings.frame["item"])
    keyed = _rekey(info, items)
    rated = pd.Index(items)
    matched = keyed.index.isin(rated)
    n_matched = int(matched.sum())
    if n_matched == 0:
        raise DataError(
            f"none of the {len(info):,} item ids in the items file is an item of the ratings "
            f"({len(rated):,} items, e.g. {', '.join(map(str, rated[:3]))})",
            path=source, value=", ".join(map(str, info.index[:3])),
            fix="give the items file of these ratings, whose id column holds the ratings' item ids",
        )
    missing = len(rated) - n_matched
    extra = len(keyed) - n_matched
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{missing:,} of the {len(rated):,} rated items have no line there (no title)")
        if extra:
            parts.append(f"{extra:,} of its {len(keyed):,} ids are items nobody rated (ignored)")
        warnings.warn(f"items file {source}: " + "; ".join(parts), stacklevel=2)
    return dataclasses.replace(ratings, item_info=keyed[matched])


def _rekey(info: pd.DataFrame, items: np.ndarray) -> pd.DataFrame:
    """``info`` indexed by the ratings' id type: int64 when the ratings' ids are integers (ids
    that are not whole numbers then match nothing and are dropped), else strings."""
    ids = info.index.astype(str)
    if np.asarray(items).dtype.kind in "iu":
        numbers = pd.to_numeric(pd.Series(ids), errors="coerce")
        whole = numbers.notna() & (numbers == numbers.round())
        out = info[whole.to_numpy()].copy()
        out.index = pd.Index(numbers[whole].astype(np.int64).to_numpy(), name="item")
        return out[~out.index.duplicated()]
    out = info.copy()
    out.index = pd.Index(ids, name="item")
    return out
