"""Ratings as a validated table: the interchange format between readers, splits and matrices.

A :class:`Ratings` holds one observation per row in a pandas DataFrame with the columns
``user``, ``item``, ``rating`` (float32) and, when known, ``timestamp`` (int64). User and item
ids are labels: integers or strings, never assumed contiguous. When the table was read from a
file, the frame's index holds each row's 1-based line number in that file, so every later
complaint (a duplicate, a rating off the scale) can name the line.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from aerec.data.scale import RatingScale
from aerec.errors import DataError

__all__ = ["Ratings", "DuplicatePolicy", "named_columns", "validate_frame"]

DuplicatePolicy = Literal["error", "last", "mean", "keep"]
"""What to do when a (user, item) pair appears more than once: raise a DataError naming both
lines (``"error"``, the default), keep the last one in file order (``"last"``), average the
ratings and keep the latest timestamp (``"mean"``), or keep every row (``"keep"``: for files of
queries such as ``aerec predict``'s pairs; a RatingMatrix refuses such ratings)."""

REQUIRED = ("user", "item", "rating")


@dataclass(frozen=True)
class Ratings:
    """A validated table of ratings.

    Attributes:
        frame: columns ``user``, ``item``, ``rating`` (float32) [, ``timestamp`` (int64)];
            index = 1-based line numbers in ``source`` when read from a file.
        scale: the rating scale (declared, or inferred from the values).
        source: where the ratings came from (a path or a dataset name), used in messages.
        item_info: optional item metadata indexed by item label, with ``title`` and ``genres``.
        implicit: True for event data with no rating (every ``rating`` is 1.0).
        meta: facts about the data worth reporting (e.g. a synthetic set's noise floor).
    """

    frame: pd.DataFrame
    scale: RatingScale
    source: str = "<memory>"
    item_info: pd.DataFrame | None = None
    implicit: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_frame(
        cls,
        frame: pd.DataFrame,
        *,
        scale: RatingScale | None = None,
        source: str | None = None,
        duplicates: DuplicatePolicy = "error",
        item_info: pd.DataFrame | None = None,
        implicit: bool = False,
        columns: Mapping[str, str] | Sequence[str | None] | str | None = None,
    ) -> Ratings:
        """Validate ``frame`` (see :func:`validate_frame`) and wrap it.

        Columns are found by name: ``user``, ``item``, ``rating``, ``timestamp``, or common
        names for them (MovieLens' ``userId``, ``movieId``; ``user_id``, ``item_id``, ...).
        ``columns`` names the others: a mapping such as ``{"uid": "user", "sku": "item"}``, or
        the roles in the frame's column order (``"user,item,rating,_"``, ``_`` skips one).
        """
        frame = named_columns(frame, columns)
        clean, scale = validate_frame(frame, source=source, scale=scale, duplicates=duplicates)
        return cls(clean, scale, source or "<memory>", item_info, implicit)

    @classmethod
    def from_arrays(
        cls,
        users: Any,
        items: Any,
        ratings: Any,
        timestamps: Any = None,
        **kwargs: Any,
    ) -> Ratings:
        """Build from parallel sequences of user ids, item ids and ratings."""
        data = {"user": np.asarray(users), "item": np.asarray(items), "rating": np.asarray(ratings)}
        if timestamps is not None:
            data["timestamp"] = np.asarray(timestamps)
        return cls.from_frame(pd.DataFrame(data), **kwargs)

    @classmethod
    def from_sparse(cls, matrix: Any, *, scale: RatingScale | None = None, source: str | None = None) -> Ratings:
        """Ratings from a SciPy sparse matrix or array: rows are users, columns items (their
        integer positions become the ids), and every *stored* entry is a rating, an explicitly
        stored 0 included (call ``matrix.eliminate_zeros()`` first if 0 means "not rated").
        Without ``scale`` it is inferred from the stored values as for any ratings (lowest to
        highest value; step 1 when all are whole numbers, 0.5 for half stars). Never densified."""
        import scipy.sparse as sp

        if getattr(matrix, "ndim", 2) != 2 or len(matrix.shape) != 2 or min(matrix.shape) < 0:
            raise DataError("a sparse rating matrix must be 2-D: rows = users, columns = items",
                            value=tuple(matrix.shape), fix="pass a (n_users, n_items) matrix")
        coo = sp.coo_array(matrix)
        values = _numeric(coo.data, "the sparse matrix", "store numbers (ratings) in the matrix, e.g. matrix.astype(float)")
        bad = ~np.isfinite(values)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(f"the sparse matrix stores a non-finite rating at row {int(coo.row[k])}, column {int(coo.col[k])}",
                            value=float(values[k]), fix="store only finite ratings; leave unrated cells unstored")
        if values.size == 0:
            raise DataError("the sparse matrix stores no ratings", value=tuple(matrix.shape),
                            fix="store each rating as an entry (rows = users, columns = items)")
        frame = pd.DataFrame({"user": coo.row.astype(np.int64), "item": coo.col.astype(np.int64), "rating": values})
        return cls.from_frame(frame, scale=scale, source=source)  # a repeated COO entry is a duplicate error

    @classmethod
    def from_dense(cls, array: Any, *, scale: RatingScale | None = None, source: str | None = None) -> Ratings:
        """Ratings from a dense 2-D NumPy array: rows are users, columns items (their integer
        positions become the ids), NaN marks a missing rating and every other cell is a rating,
        0 included (``np.where(a == 0, np.nan, a)`` if 0 means "not rated"). The scale is
        inferred as for any ratings unless ``scale`` is given."""
        a = np.asarray(array).view(np.ndarray)  # np.matrix too
        if a.ndim != 2:
            raise DataError(f"a dense rating matrix must be 2-D (rows = users, columns = items), not {a.ndim}-D",
                            value=a.shape, fix="pass a (n_users, n_items) array with NaN where there is no rating")
        a = _numeric(a, "the dense array", "pass numbers with NaN for missing, e.g. array.astype(float)")
        if np.isinf(a).any():
            r, c = (int(x[0]) for x in np.nonzero(np.isinf(a)))
            raise DataError(f"the dense array holds an infinite rating at row {r}, column {c}", value=float(a[r, c]),
                            fix="give finite ratings, NaN for missing")
        rows, cols = np.nonzero(~np.isnan(a))
        if rows.size == 0:
            raise DataError("the dense array holds no ratings (every cell is NaN, or it is empty)", value=a.shape,
                            fix="NaN marks a missing rating: give at least one number")
        frame = pd.DataFrame({"user": rows.astype(np.int64), "item": cols.astype(np.int64), "rating": a[rows, cols]})
        return cls.from_frame(frame, scale=scale, source=source)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def has_timestamps(self) -> bool:
        return "timestamp" in self.frame.columns

    @property
    def n_users(self) -> int:
        return int(self.frame["user"].nunique())

    @property
    def n_items(self) -> int:
        return int(self.frame["item"].nunique())

    def subset(self, mask_or_positions: Any, *, source: str | None = None) -> Ratings:
        """The ratings at a boolean mask or integer positions (already valid: no re-check)."""
        sel = np.asarray(mask_or_positions)
        frame = self.frame.iloc[np.flatnonzero(sel) if sel.dtype == bool else sel]
        return replace(self, frame=frame, source=source or self.source)

    def summary(self, *, bins: int = 10) -> dict[str, Any]:
        """Users, items, ratings, density, scale and a rating histogram, JSON-ready."""
        n_users, n_items, n = self.n_users, self.n_items, len(self)
        values = self.frame["rating"].to_numpy()
        levels = self.scale.levels
        if 0 < len(levels) <= 21:
            counts = pd.Series(values).value_counts()
            histogram = {f"{lv:g}": int(counts.get(lv, 0)) for lv in levels}
        else:
            hist, edges = np.histogram(values, bins=bins, range=(self.scale.low, self.scale.high))
            histogram = {f"{edges[i]:g}-{edges[i + 1]:g}": int(c) for i, c in enumerate(hist)}
        out: dict[str, Any] = {
            "source": self.source,
            "users": n_users,
            "items": n_items,
            "ratings": n,
            "density": n / (n_users * n_items) if n_users and n_items else 0.0,
            "scale": self.scale.to_dict(),
            "implicit": self.implicit,
            "mean_rating": float(values.mean()) if n else None,
            "histogram": histogram,
            "timestamps": self.has_timestamps,
        }
        out.update(self.meta)
        return out


ROLES = ("user", "item", "rating", "timestamp")


def named_columns(
    frame: pd.DataFrame, columns: Mapping[str, str] | Sequence[str | None] | str | None = None
) -> pd.DataFrame:
    """``frame`` with its columns renamed to the roles user, item, rating, timestamp.

    ``columns`` is a mapping {column: role}, or one role per column in order (``_``/None skips
    one). Then a role that no column is named after is taken from the first column with
    a common name for it (``userId``, ``movieId``, ``user_id``, ``item_id``, ``score``, ...:
    the aliases the file readers use for a header). Other columns are left as they are.
    """
    from aerec.data._sniff import canonical_column

    if columns is None:
        rename: dict[Any, str] = {}
        for name in frame.columns:
            role = canonical_column(name)
            if role is not None and role not in frame.columns and role not in rename.values():
                rename[name] = role
        return frame.rename(columns=rename) if rename else frame
    if isinstance(columns, Mapping):
        rename = {k: str(v).strip().lower() for k, v in columns.items()}
        unknown = [k for k in rename if k not in frame.columns]
        if unknown:
            raise DataError("columns names a column the frame does not have", value=unknown[0],
                            fix=f"the frame's columns are {', '.join(map(str, frame.columns))}")
    else:
        roles = columns.split(",") if isinstance(columns, str) else list(columns)
        if len(roles) != len(frame.columns):
            raise DataError(f"columns names {len(roles)} columns but the frame has {len(frame.columns)}",
                            value=columns, fix="give one role per column, _ for the ones to skip")
        rename = {name: str(r).strip().lower() for name, r in zip(frame.columns, roles, strict=True)
                  if r is not None and str(r).strip() not in ("", "_", "-")}
    bad = [r for r in rename.values() if r not in ROLES]
    if bad:
        raise DataError("unknown role in columns", value=bad[0], fix="use user, item, rating, timestamp or _")
    kept = [c for c in frame.columns if c in rename or c not in ROLES]  # a renamed column replaces a same-named one
    return named_columns(frame[kept].rename(columns=rename))  # common names still name the rest


def _line(frame: pd.DataFrame, position: int, source: str | None) -> int | None:
    """The 1-based line of row ``position``: the index value for file data, else None."""
    if source is None:
        return None
    return int(frame.index[position])


def _err(frame: pd.DataFrame, pos: int, source: str | None, problem: str, value: Any, fix: str) -> DataError:
    line = _line(frame, pos, source)
    where = source if source is not None else None
    if where is None:
        problem = f"row {pos}: {problem}"
    return DataError(problem, path=where, line=line, value=_py(value), fix=fix, has_value=True)


def validate_frame(
    frame: pd.DataFrame,
    *,
    source: str | None = None,
    scale: RatingScale | None = None,
    duplicates: DuplicatePolicy = "error",
) -> tuple[pd.DataFrame, RatingScale]:
    """Check a raw ratings table and return a clean copy plus its scale.

    Raises :class:`DataError` naming ``source``, the line and the value for: missing columns,
    empty input, missing ids, non-numeric / NaN / infinite ratings, ratings outside ``scale``,
    non-integer timestamps and duplicate (user, item) pairs (unless ``duplicates`` says how
    to merge them). When ``source`` is given, ``frame.index`` must hold line numbers.
    """
    _check_table(frame, source, duplicates)
    cols = ["user", "item", "rating"] + (["timestamp"] if "timestamp" in frame.columns else [])
    out = frame[cols].copy()
    _clean_ids(out, source)
    values, scale = _checked_ratings(out, source, scale)
    out["rating"] = values.astype(np.float32)
    if "timestamp" in out.columns:
        out["timestamp"] = _checked_timestamps(out, source)
    out = _resolve_duplicates(out, source, duplicates)
    return out, scale


def _check_table(frame: pd.DataFrame, source: str | None, duplicates: DuplicatePolicy) -> None:
    """The table as a whole: the required columns, at least one row, a known duplicate policy."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, frame.columns)) or 'none'}",
            path=source,
            fix="name the columns: --columns user,item,rating[,timestamp] for a file, "
            "Ratings.from_frame(frame, columns={'uid': 'user', ...}) for a DataFrame",
        )
    if len(frame) == 0:
        raise DataError("no ratings found", path=source, fix="check that the file is the right one and not empty")
    if duplicates not in ("error", "last", "mean", "keep"):
        raise DataError("unknown duplicate policy", value=duplicates, fix="use error, last or mean")


def _clean_ids(out: pd.DataFrame, source: str | None) -> None:
    """Check the user and item ids of ``out`` and clean them in place: whole-number floats
    become int64, text is stripped. A missing id, a fractional one or one past int64 is an error."""
    missing = {}
    for col in ("user", "item"):
        ids = out[col]
        bad = ids.isna().to_numpy().copy()
        if pd.api.types.is_string_dtype(ids) or ids.dtype == object:
            bad |= ids.astype(str).str.strip().eq("").to_numpy()
        if bad.any():
            missing[col] = int(np.flatnonzero(bad)[0])
    if missing:  # the first line with a missing id, whichever column it is in
        col, pos = min(missing.items(), key=lambda kv: kv[1])
        raise _err(out, pos, source, f"missing {col} id", out[col].iloc[pos], f"give every row {_a(col)} {col} id")
    for col in ("user", "item"):
        ids = out[col]
        if ids.dtype.kind == "f":
            ints = ids.to_numpy()
            frac = ints != np.round(ints)
            if frac.any():
                pos = int(np.flatnonzero(frac)[0])
                raise _err(out, pos, source, f"{col} id is not a whole number", ints[pos], "ids are labels: integers or text")
            # |id| >= 2**63 (or inf) would turn into garbage int64 ids; as a float it has lost digits.
            big = ~(np.abs(ints) < 2.0**63)
            if big.any():
                pos = int(np.flatnonzero(big)[0])
                raise _err(out, pos, source, f"{col} id is too large for a 64-bit integer", ints[pos],
                           "keep such ids as text (e.g. read the column with dtype=str)")
            out[col] = ints.astype(np.int64)
        elif pd.api.types.is_string_dtype(ids) or ids.dtype == object:
            out[col] = ids.astype(str).str.strip().to_numpy(dtype=object)


def _checked_ratings(out: pd.DataFrame, source: str | None, scale: RatingScale | None) -> tuple[np.ndarray, RatingScale]:
    """``(ratings as float64, their scale)``: every rating a finite number on ``scale``, or the
    scale inferred from them when none is given."""
    raw = out["rating"]
    if raw.dtype.kind in "iufb":
        values = raw.to_numpy(dtype=np.float64)
        non_numeric = np.zeros(len(values), dtype=bool)
    else:
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        non_numeric = np.isnan(values) & raw.notna().to_numpy()
        if pd.api.types.is_string_dtype(raw) or raw.dtype == object:
            text = raw.astype(str).str.strip().str.lower()
            non_numeric &= ~text.isin(["nan", ""]).to_numpy()
    if non_numeric.any():
        pos = int(np.flatnonzero(non_numeric)[0])
        raise _err(out, pos, source, "rating is not a number", raw.iloc[pos], "ratings must be numbers on the rating scale")
    nonfinite = ~(np.abs(values) <= np.finfo(np.float32).max)  # NaN, inf, or inf as float32
    if nonfinite.any():
        pos = int(np.flatnonzero(nonfinite)[0])
        shown = raw.iloc[pos] if not pd.isna(raw.iloc[pos]) else "NaN/empty"
        raise _err(out, pos, source, "rating is missing, NaN or infinite", shown, "give every row a finite rating or drop the row")
    if scale is None:
        return values, RatingScale.infer(values)
    off = scale.outside(values)
    if off.any():
        pos = int(np.flatnonzero(off)[0])
        raise _err(
            out, pos, source, f"rating outside the scale {scale}", float(values[pos]),
            "fix the value, or declare the data's real scale (--scale LOW:HIGH)",
        )
    return values, scale


def _checked_timestamps(out: pd.DataFrame, source: str | None) -> np.ndarray:
    """The timestamp column as int64; anything but a whole number in int64's range is an error."""
    ts = out["timestamp"]
    tv = pd.to_numeric(ts, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(tv) | (tv != np.round(tv)) | ~(np.abs(tv) < 2.0**63)  # int64 range
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise _err(out, pos, source, "timestamp is not a whole number", ts.iloc[pos], "use Unix seconds, or drop the timestamp column")
    return tv.astype(np.int64)


def _resolve_duplicates(out: pd.DataFrame, source: str | None, policy: DuplicatePolicy) -> pd.DataFrame:
    if policy == "keep":
        return out
    dup = out.duplicated(["user", "item"], keep=False).to_numpy()
    if not dup.any():
        return out
    if policy == "error":
        positions = np.flatnonzero(dup)
        first = int(positions[0])
        key = (out["user"].iloc[first], out["item"].iloc[first])
        same = positions[(out["user"].iloc[positions] == key[0]).to_numpy() & (out["item"].iloc[positions] == key[1]).to_numpy()]
        second = int(same[1])
        other = f"line {_line(out, first, source)}" if source is not None else f"row {first}"
        raise _err(
            out, second, source, f"duplicate (user, item) pair, also on {other}",
            (_py(key[0]), _py(key[1])),
            "remove the repeats, or pass duplicates='last' / 'mean' (--duplicates last|mean) to merge them",
        )
    if policy == "last":
        return out[~out.duplicated(["user", "item"], keep="last").to_numpy()]
    # "mean": average the ratings, keep the latest timestamp and the first line number.
    agg: dict[str, str] = {"rating": "mean", "_line": "first"}
    if "timestamp" in out.columns:
        agg["timestamp"] = "max"
    merged = out.assign(_line=out.index.to_numpy()).groupby(["user", "item"], sort=False, as_index=False).agg(agg)
    merged["rating"] = merged["rating"].astype(np.float32)
    merged.index = merged.pop("_line").to_numpy()
    return merged


def _numeric(values: np.ndarray, what: str, fix: str) -> np.ndarray:
    """``values`` as float64; a dtype that is not a real number (text, objects, complex) is a DataError."""
    if values.dtype.kind not in "biuf":
        raise DataError(f"{what} holds {values.dtype} values, not numbers", value=str(values.dtype), fix=fix)
    return values.astype(np.float64, copy=False)


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _py(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x
