"""What the fuzzers run, shared by the coverage-guided harnesses (atheris, ``fuzz/fuzz_*.py``)
and the property-based tests (hypothesis, ``tests/test_fuzz_*.py``).

The property is the same everywhere: a reader or the config loader, given anything at all,
either succeeds or raises one of the documented :mod:`aerec.errors` types. Any other exception
(a ``KeyError``, an ``OverflowError``, a pandas or pyarrow error, an ``AssertionError``) is a
finding: it would reach the user as a traceback instead of a message naming the problem.

Each target returns the outcome's name (``"ok"`` or the error class's name) so the runners
can count what they saw; anything else propagates.
"""

from __future__ import annotations

import io
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from aerec.config import Config, apply_overrides, load_config
from aerec.data.readers import read_items, read_ratings
from aerec.data.scale import RatingScale
from aerec.errors import ConfigError, DataError, TrainingError

__all__ = [
    "READER_FORMATS", "FILE_NAMES", "METADATA_NAMES",
    "read_case", "parquet_case", "metadata_case", "toml_case", "overrides_case", "config_dict_case",
    "seed_files", "scale_options", "Workdir",
]

# The format names a reader is asked for ("auto" detects; aliases are accepted as well).
READER_FORMATS = ("auto", "ml-100k", "ml-1m", "ml-latest", "netflix", "csv", "tsv", "parquet")
# The file each format is written to, so that detection by name is exercised too.
FILE_NAMES = {
    "auto": "ratings.txt", "ml-100k": "u.data", "ml-1m": "ratings.dat", "ml-latest": "ratings.csv",
    "netflix": "combined_data_1.txt", "csv": "r.csv", "tsv": "r.tsv", "parquet": "r.parquet",
}
# Item metadata files the readers pick up next to a ratings file of the matching format.
METADATA_NAMES = {
    "u.item": ("u.data", "ml-100k"), "movies.dat": ("ratings.dat", "ml-1m"),
    "movies.csv": ("ratings.csv", "ml-latest"), "movie_titles.csv": ("combined_data_1.txt", "netflix"),
    "movie_titles.txt": ("combined_data_1.txt", "netflix"),
}
# A small valid ratings file of each metadata format's family, for metadata_case.
_VALID_FOR_METADATA = {
    "u.data": b"1\t1\t5\t881250949\n2\t1\t3\t881250950\n",
    "ratings.dat": b"1::1::5::978300760\n2::1::3::978300761\n",
    "ratings.csv": b"userId,movieId,rating,timestamp\n1,1,4.5,964982703\n2,1,3.0,964982704\n",
    "combined_data_1.txt": b"1:\n6,3,2005-09-06\n7,5,2005-05-13\n",
}
_ALLOWED = (DataError,)
# TrainingError: the trainer refuses a combination it cannot run (weight_decay with lbfgs).
_CONFIG_ALLOWED = (ConfigError, TrainingError)


class Workdir:
    """One temporary folder reused for every input (creating a folder per input costs more
    than the read). Files are overwritten in place; stale ones are removed first."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="aerec-fuzz-")
        self.path = Path(self._tmp.name)

    def file(self, name: str, data: bytes) -> Path:
        for old in self.path.iterdir():
            old.unlink()
        p = self.path / name
        p.write_bytes(data)
        return p

    def add(self, name: str, data: bytes) -> Path:
        p = self.path / name
        p.write_bytes(data)
        return p

    def close(self) -> None:
        self._tmp.cleanup()


def _call(fn, allowed: tuple[type[BaseException], ...]) -> str:
    """Run ``fn``: "ok", the allowed error's name, or the exception propagates (a finding)."""
    with warnings.catch_warnings():
        # A warning is not a failure (e.g. "item titles not loaded"); it must not become one.
        warnings.simplefilter("ignore")
        try:
            fn()
        except allowed as exc:
            _check_message(exc)
            caught = _CATCH_ALL.search(str(exc))
            # Counted apart: read_ratings' last-resort wrapper of a library error. Allowed, but
            # its message names no line; each kind is worth a precise check of its own.
            return f"DataError(catch-all {caught.group(1)})" if caught else type(exc).__name__
    return "ok"


_CATCH_ALL = re.compile(r"cannot read the file \((\w+): ")


def _check_message(exc: BaseException) -> None:
    """An allowed error must still say something: an empty message helps nobody."""
    if not str(exc).strip():
        raise AssertionError(f"{type(exc).__name__} with an empty message")


def read_case(work: Workdir, fmt: str, data: bytes, options: dict[str, Any] | None = None) -> str:
    """Write ``data`` as the file ``fmt`` is read from and read it with ``options``."""
    p = work.file(FILE_NAMES.get(fmt, "ratings.txt"), data)
    kwargs = dict(options or {})
    kwargs["format"] = fmt
    return _call(lambda: _read_and_check(p, kwargs), _ALLOWED)


def _read_and_check(p: Path, kwargs: dict[str, Any]) -> None:
    ratings = read_ratings(p, **kwargs)
    # What a reader returns must be what Ratings promises: the consumers rely on it.
    frame = ratings.frame
    if len(frame) == 0:
        raise AssertionError("read_ratings returned no ratings without raising DataError")
    if str(frame["rating"].dtype) != "float32":
        raise AssertionError(f"ratings are {frame['rating'].dtype}, not float32")
    values = frame["rating"].to_numpy()
    if not np.isfinite(values).all():
        raise AssertionError("a NaN or infinite rating passed the reader")
    if ratings.scale.outside(values).any():
        raise AssertionError(f"a rating outside the scale {ratings.scale} passed the reader")
    if frame.duplicated(["user", "item"]).any():
        raise AssertionError("a duplicate (user, item) pair passed the reader")
    if frame["user"].isna().any() or frame["item"].isna().any():
        raise AssertionError("a missing id passed the reader")
    if frame.index.min() < 1:
        raise AssertionError("line numbers must start at 1")


def parquet_case(work: Workdir, table: pa.Table | bytes, options: dict[str, Any] | None = None) -> str:
    """Write a Parquet file (a table, or raw bytes: a damaged file) and read it."""
    if isinstance(table, pa.Table):
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        data = buffer.getvalue()
    else:
        data = table
    return read_case(work, "parquet", data, options)


def metadata_case(work: Workdir, name: str, data: bytes) -> str:
    """A valid ratings file with a fuzzed metadata file next to it; then the metadata alone.

    A broken metadata file must not stop the ratings from loading (it only warns), and
    :func:`read_items` on it raises DataError or returns a frame.
    """
    ratings_name, fmt = METADATA_NAMES[name]
    p = work.file(ratings_name, _VALID_FOR_METADATA[ratings_name])
    meta = work.add(name, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_ratings(p, format=fmt)  # must succeed: titles are optional
    return _call(lambda: read_items(meta), _ALLOWED)


def toml_case(work: Workdir, data: bytes, overrides: Sequence[str] = ()) -> str:
    """A config file's bytes through load_config, then as the CLI uses it: resolved settings."""
    p = work.file("config.toml", data)
    return _call(lambda: _resolve(load_config(p, list(overrides) or None)), _CONFIG_ALLOWED)


def overrides_case(overrides: Sequence[str], base: dict[str, Any] | None = None) -> str:
    """``--set`` strings through apply_overrides and Config.from_dict, then resolved."""
    def run() -> None:
        data = apply_overrides(base or {}, list(overrides))
        _resolve(Config.from_dict(data, source="settings"))
    return _call(run, _CONFIG_ALLOWED)


def config_dict_case(data: Any) -> str:
    """Any parsed-TOML-like value through Config.from_dict, then resolved."""
    return _call(lambda: _resolve(Config.from_dict(data, source="fuzz")), _CONFIG_ALLOWED)


def _resolve(config: Config) -> None:
    """What ``aerec train`` does with a config: resolve the family's settings, then train.

    Training runs on a 6 x 5 toy matrix for one epoch. Settings that only cost time or memory
    are capped first (epochs, L-BFGS iterations, re-feeding, network size), because a 10^9-unit
    layer is a request for 4 GB per input, not a parsing bug; everything else is kept as given.
    """
    from aerec.recommender import Recommender

    model = Recommender(config=config)
    params, train, _ = model.resolved()
    sizes = [5, *params.hidden, 5]
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    if weights > 1_000_000 or train.lbfgs_iterations > 20 or train.dense_refeeding > 2:
        return
    capped = Config(model=dict(config.model), train={**config.train, "epochs": 1}, run=dict(config.run))
    capped.run["device"] = "cpu"
    import torch

    threads = torch.get_num_threads()  # fit() may set it from run.threads: keep the process as it was
    try:
        Recommender(config=capped).fit(_toy_ratings())
    finally:
        torch.set_num_threads(threads)


_TOY = None


def _toy_ratings():
    """6 users x 5 items, 20 ratings on 1..5: big enough for the 5% validation carve."""
    global _TOY
    if _TOY is None:
        from aerec.data.ratings import Ratings

        cells = [(u, i, 1 + (u * 3 + i * 2) % 5) for u in range(6) for i in range(5) if (u + i) % 3]
        _TOY = Ratings.from_arrays(*zip(*cells, strict=True), scale=RatingScale(1, 5, 1))
    return _TOY


# ============================================================================================
# Seeds: one valid file of each kind, the starting points of the coverage-guided runs.


def seed_files() -> dict[str, list[bytes]]:
    """Valid (and a few nearly valid) inputs per format, for corpora and mutation tests."""
    table = pa.table({"userId": [1, 2, 2], "movieId": [10, 10, 11], "rating": [4.0, 3.5, 5.0],
                      "timestamp": [964982703, 964982704, 964982705]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return {
        "ml-100k": [b"196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n"],
        "ml-1m": [b"1::1193::5::978300760\n1::661::3::978302109\n2::914::3::978301968\n",
                  b"1::122::5::838985046\n1::185::4.5::838983525\n"],
        "ml-latest": [b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.0,964981247\n2,6,4.5,964982224\n"],
        "netflix": [b"1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n2:\n2059652,4,2005-09-05\n"],
        "csv": [b"user,item,rating\nalice,matrix,5\nbob,matrix,4\nalice,alien,3\n",
                b"u1;i1;4.5\nu2;i1;3\n",
                b'"user","item","score","date"\n"a","x","4","2005-09-06"\n"b","x","2","2005-09-07T10:00:00Z"\n',
                b"1 2\n1 3\n2 3\n"],
        "tsv": [b"user\titem\trating\n1\t2\t0\n1\t3\t1\n2\t3\t1\n"],
        "parquet": [buffer.getvalue()],
        "auto": [b"1,1,5\n1,2,3\n2,1,4\n"],
    }


def scale_options() -> list[RatingScale | None]:
    return [None, RatingScale(1, 5, 1), RatingScale(0.5, 5, 0.5), RatingScale(0, 1, 1), RatingScale(-10, 10, 0)]
