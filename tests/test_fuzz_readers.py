"""Fuzzing every rating-file reader: anything at all reads, or raises DataError; nothing else.

The property-based half of ``fuzz/`` (the coverage-guided half is ``fuzz/fuzz_readers.py``,
atheris). Inputs come from ``fuzz/strategies.py``: near-valid files with hostile tokens, random
lines, byte-level mutations of valid files and raw bytes, for each format, with every reader
option; Parquet tables of assorted column types; metadata files next to valid ratings.

CI runs ``AEREC_FUZZ_EXAMPLES`` examples per target (default 150, a few seconds). The long
runs behind docs/reliability.md use 10^4 or more::

    AEREC_FUZZ_EXAMPLES=10000 python -m pytest tests/test_fuzz_readers.py
    python -m fuzz.run_hypothesis -n 10000 --only readers     # counts every outcome, keeps going

Below the properties, each finding of those runs is kept as a regression test.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aerec.data.readers import read_items, read_ratings
from aerec.errors import DataError
from fuzz import strategies as S
from fuzz import targets as T

EXAMPLES = int(os.environ.get("AEREC_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def work():
    folder = T.Workdir()
    yield folder
    folder.close()


# ----------------------------------------------------------------------------- properties
@pytest.mark.parametrize("fmt", [f for f in T.READER_FORMATS if f != "parquet"])
def test_any_text_file_reads_or_raises_data_error(work, fmt):
    @FUZZ
    @given(data=S.file_bytes(fmt), options=S.reader_options(fmt))
    def check(data, options):
        T.read_case(work, fmt, data, options)  # raises anything but DataError

    check()


def test_any_parquet_file_reads_or_raises_data_error(work):
    tables = st.one_of(S.near_valid_table(), S.parquet_table(), S.mutated("parquet"), st.binary(max_size=200))

    @FUZZ
    @given(table=tables, options=S.reader_options("parquet"))
    def check(table, options):
        T.parquet_case(work, table, options)

    check()


def test_a_broken_metadata_file_never_stops_the_ratings(work):
    @FUZZ
    @given(case=S.metadata_file())
    def check(case):
        T.metadata_case(work, *case)

    check()


def test_what_a_reader_returns_keeps_the_ratings_promises(work):
    """The near-valid files that do read: the checks in targets._read_and_check hold, and every
    line number points at a line of the file."""
    @FUZZ
    @given(data=S.near_valid_text("csv"))
    def check(data):
        p = work.file("r.csv", data)
        try:
            ratings = read_ratings(p)
        except DataError:
            return
        T._read_and_check(p, {})  # finite, on the scale, no repeated pair, no missing id
        n_lines = len(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"))
        assert ratings.frame.index.max() <= n_lines

    check()


def test_the_seed_files_all_read(work):
    """The starting points of the coverage-guided runs must themselves be valid."""
    for fmt, files in T.seed_files().items():
        for data in files:
            assert T.read_case(work, fmt, data) == "ok", (fmt, data[:60])


# ----------------------------------------------------------------------------- regressions
# Each finding of the fuzz runs (docs/reliability.md lists them), fixed and pinned here.
def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("encoding", ["hex", "rot13", "base64", "zlib", "utf-8\x00"])
def test_a_codec_that_is_not_a_text_encoding_is_a_data_error(tmp_path, encoding):
    # Was: LookupError "'hex' is not a text encoding" from _sniff.read_head.
    p = _write(tmp_path / "r.csv", b"1,1,5\n2,1,3\n")
    with pytest.raises(DataError, match="unknown text encoding"):
        read_ratings(p, encoding=encoding)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_a_utf16_file_without_a_byte_order_mark_names_the_encoding(tmp_path, encoding):
    # Was: the catch-all "cannot read the file (UnicodeError: UTF-16 stream does not start with BOM)".
    p = _write(tmp_path / "ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,x\n")
    with pytest.raises(DataError, match=f"not {encoding} text") as caught:
        read_ratings(p, format="ml-latest", encoding=encoding)
    assert "cannot read the file (" not in str(caught.value)


@pytest.mark.parametrize("date, seconds", [("9999-12-31", 253402214400), ("2262-04-12", 9223372800)])
def test_a_date_after_2262_is_converted_not_overflowed(tmp_path, date, seconds):
    # Was: the catch-all "cannot read the file (OutOfBoundsDatetime ...)" from pandas' nanoseconds.
    p = _write(tmp_path / "r.csv", f"user,item,rating,date\n1,1,5,{date}\n1,2,4,2005-01-01\n".encode())
    frame = read_ratings(p).frame
    assert frame["timestamp"].tolist() == [seconds, 1104537600]


def _parquet(tmp_path: Path, table: pa.Table) -> Path:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return _write(tmp_path / "r.parquet", buffer.getvalue())


def test_a_parquet_timestamp_pandas_cannot_hold_names_its_column(tmp_path):
    # Was: NotImplementedError ("Localizing Timestamps which are outside the range ...").
    stamps = pa.array([2**62, 0], pa.timestamp("us", tz="Europe/Paris"))
    p = _parquet(tmp_path, pa.table({"user": [1, 2], "item": [1, 1], "rating": [4.0, 5.0], "timestamp": stamps}))
    with pytest.raises(DataError, match="timestamp column 'timestamp'.*cannot be read"):
        read_ratings(p)


def test_parquet_ids_that_are_bytes_or_dates_are_refused_by_name(tmp_path):
    # Was: the catch-all UnicodeDecodeError (bytes ids) and NotImplementedError (date ids past 9999).
    raw = pa.array([b"\x9c\x00", b"a"], pa.binary())
    p = _parquet(tmp_path, pa.table({"user": raw, "item": [1, 1], "rating": [4.0, 5.0]}))
    with pytest.raises(DataError, match="user column 'user' holds raw bytes"):
        read_ratings(p)
    when = pa.array([-(2**40), 0], pa.timestamp("ms", tz="UTC"))
    p = _parquet(tmp_path, pa.table({"user": when, "item": [1, 1], "rating": [4.0, 5.0]}))
    with pytest.raises(DataError, match="user column 'user' holds dates or times"):
        read_ratings(p)


def test_a_metadata_id_past_int64_only_warns(tmp_path):
    # Was: OverflowError from the metadata frame, which failed the read of a valid ratings file.
    ratings = _write(tmp_path / "combined_data_1.txt", b"1:\n6,3,2005-09-06\n7,5,2005-05-13\n")
    titles = _write(tmp_path / "movie_titles.csv", b"99999999999999999999,2003,Dinosaur Planet\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert len(read_ratings(ratings)) == 2
    assert any("item titles not loaded" in str(w.message) for w in caught)
    with pytest.raises(DataError, match="64-bit whole number"):
        read_items(titles)
