"""Malformed rating files: each must raise a DataError naming the file, the line and the value.

No raw pandas / NumPy / pyarrow / Unicode exception may escape the readers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aerec.data.ratings import Ratings
from aerec.data.readers import detect_format, read_ratings
from aerec.data.scale import RatingScale
from aerec.errors import DataError


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


def bad(path: Path, line: int | None, value: str, **kwargs) -> DataError:
    """Read ``path``, expecting a DataError at ``line`` whose message shows ``value``."""
    with pytest.raises(DataError) as caught:
        read_ratings(path, **kwargs)
    err = caught.value
    message = str(err)
    assert path.name in message, message
    assert err.line == line, message
    if line is not None:
        assert f"{path.name}:{line}:" in message or f"row {line}:" in message, message
    assert value in message, message
    return err


# --------------------------------------------------------------------------------------------
# Bad values


def test_non_numeric_rating(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n1,11,abc\n")
    err = bad(p, 3, "'abc'")
    assert "not a number" in str(err)


def test_empty_rating(tmp_path: Path) -> None:
    bad(write(tmp_path / "r.csv", "1,10,4\n1,11,\n2,10,3\n"), 2, "NaN/empty")


def test_nan_rating(tmp_path: Path) -> None:
    bad(write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n2,10,3\n2,11,NaN\n"), 4, "NaN")


def test_infinite_rating(tmp_path: Path) -> None:
    err = bad(write(tmp_path / "r.tsv", "1\t10\t4\n1\t11\tinf\n"), 2, "inf")
    assert "infinite" in str(err)


def test_rating_outside_declared_scale(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "1,10,4\n1,11,5\n2,10,6\n")
    err = bad(p, 3, "6.0", scale=RatingScale(1, 5, 1))
    assert "outside the scale 1..5" in str(err)


def test_rating_outside_movielens_scale(tmp_path: Path) -> None:
    p = write(tmp_path / "u.data", "196\t242\t3\t881250949\n186\t302\t7\t891717742\n")
    assert detect_format(p) == "ml-100k"
    bad(p, 2, "7.0")


def test_half_star_outside_ml_latest_scale(tmp_path: Path) -> None:
    p = write(tmp_path / "ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.5,9\n1,2,0,9\n")
    bad(p, 3, "0.0")


def test_missing_user_id(tmp_path: Path) -> None:
    err = bad(write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n,11,3\n"), 3, "nan")
    assert "missing user id" in str(err)


def test_the_first_line_with_a_missing_id_is_named_whichever_column(tmp_path: Path) -> None:
    err = bad(write(tmp_path / "r.csv", "user,item\n196,\n,242\n"), 2, "nan")
    assert "missing item id" in str(err) and "give every row an item id" in str(err)


def test_a_float_id_past_int64_is_called_too_large_not_fractional() -> None:
    frame = pd.DataFrame({"user": [1.0, 1.2345678901234567e19], "item": [1, 2], "rating": [4.0, 5.0]})
    with pytest.raises(DataError, match="user id is too large for a 64-bit integer.*as text"):
        Ratings.from_frame(frame)


def test_text_id_in_movielens_file(tmp_path: Path) -> None:
    p = write(tmp_path / "ratings.dat", "1::10::5::978300760\n1::x11::3::978300760\n")
    err = bad(p, 2, "'x11'")
    assert "item id is not a whole number" in str(err)


def test_non_integer_timestamp(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv",
              "user,item,rating,timestamp\n1,10,4,881250949\n1,11,3,881250949.5\n")
    bad(p, 3, "881250949.5")


def test_timestamp_not_a_date(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user,item,rating,date\n1,10,4,2020-01-02\n1,11,3,yesterday\n")
    err = bad(p, 3, "'yesterday'")
    assert "neither Unix seconds nor a date" in str(err)


def test_duplicate_pair_names_both_lines(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n2,10,3\n1,10,5\n")
    err = bad(p, 4, "(1, 10)")
    assert "also on line 2" in str(err)


# --------------------------------------------------------------------------------------------
# Bad structure


def test_too_few_fields(tmp_path: Path) -> None:
    p = write(tmp_path / "u1.base", "1\t1\t5\t874965758\n1\t2\t3\n1\t3\t4\t878542960\n")
    err = bad(p, 2, "'1\\t2\\t3'")
    assert "3 fields, expected 4" in str(err)


def test_too_few_fields_generic_csv(tmp_path: Path) -> None:
    lines = "".join(f"{u},{u + 1},3\n" for u in range(20))
    bad(write(tmp_path / "r.csv", lines + "5,6\n"), 21, "'5,6'")


def test_extra_fields(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user,item,rating\n1,10,4\n1,11,3\n1,12,3,99\n")
    err = bad(p, 4, "'1,12,3,99'")
    assert "4 fields, expected 3" in str(err)


def test_short_line_whitespace_separated(tmp_path: Path) -> None:
    bad(write(tmp_path / "r.txt", "1 10 4\n1 11 3\n2 12\n"), 3, "'2 12'")


def test_stray_colon_in_dat(tmp_path: Path) -> None:
    bad(write(tmp_path / "ratings.dat", "1::10::5::978300760\n1::11:3::978300760\n"), 2, "1::11:3")


def test_unclosed_quote(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", 'user,item,rating\n1,"a,4\n1,b,3\n2,c,5\n')
    err = bad(p, 2, "'1,\"a,4'")
    assert "quote" in str(err)


def test_empty_file(tmp_path: Path) -> None:
    err = bad(write(tmp_path / "r.csv", b""), None, "empty")
    assert "0 bytes" in str(err)


def test_blank_lines_only(tmp_path: Path) -> None:
    bad(write(tmp_path / "r.csv", "\n\n  \n"), None, "only blank lines")


def test_header_only(tmp_path: Path) -> None:
    err = bad(write(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n"), 1, "after the header")
    assert "no ratings found" in str(err)


def test_header_without_user_column(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "name,movie,rating\nann,1,4\n")
    err = bad(p, 1, "'name'")
    assert "no user column" in str(err)


def test_header_without_rating_but_other_columns(tmp_path: Path) -> None:
    p = write(tmp_path / "tags.csv", "userId,movieId,tag,timestamp\n1,2,funny,1600000000\n")
    err = bad(p, 1, "tag")
    assert "implicit=True" in str(err)


def test_columns_count_mismatch(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "1,2,3,4\n5,6,7,8\n")
    err = bad(p, 1, "user,item,rating", columns="user,item,rating")
    assert "names 3 fields" in str(err)


def test_unknown_column_name(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "1,2,3\n")
    bad(p, None, "'votes'", columns="user,item,votes")


def test_a_separator_the_file_does_not_use_names_the_one_it_does(tmp_path: Path) -> None:
    p = write(tmp_path / "r.tsv", "user\titem\trating\n1\t2\t5\n2\t3\t4\n")
    err = bad(p, 1, "user", sep=",")
    assert "leaves the line in one field" in str(err) and "pass sep='\\t' (--sep)" in str(err)
    one = bad(write(tmp_path / "one.csv", "user\n12\n13\n"), 1, "user")  # no sep given: not blamed on one
    assert "leaves the line" not in str(one) and "separator" in str(one)


def test_no_separator(tmp_path: Path) -> None:
    err = bad(write(tmp_path / "r.csv", "12\n13\n"), 1, "'12'")
    assert "separator" in str(err)


# --------------------------------------------------------------------------------------------
# Bad bytes


def test_binary_garbage(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", b"1,2,3\n4,5,1\n\x89PNG\x00\x01\x02\xff\xfe\n")
    err = bad(p, 3, "PNG")
    assert "not a text file" in str(err)


def test_binary_without_nul(tmp_path: Path) -> None:
    p = write(tmp_path / "r.bin", bytes(range(1, 9)) * 40)
    bad(p, 1, "\\x01")


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".zst", ""])
def test_compressed_file_is_read_and_errors_name_the_line(tmp_path: Path, suffix: str) -> None:
    import pyarrow as pa

    codec = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", "": "gzip"}[suffix]
    text = b"user\titem\trating\n1\t2\t3\n1\t3\t4\n"
    good = tmp_path / f"ratings.tsv{suffix}"
    with pa.output_stream(str(good), compression=codec) as f:  # no suffix: known by its first bytes
        f.write(text)
    assert read_ratings(good).frame["rating"].tolist() == [3.0, 4.0]
    broken = tmp_path / f"broken.tsv{suffix}"
    with pa.output_stream(str(broken), compression=codec) as f:
        f.write(text + b"2\t7\tlots\n")
    bad(broken, 4, "lots")


def test_truncated_and_unsupported_compression(tmp_path: Path) -> None:
    import gzip
    import lzma

    whole = gzip.compress(b"1,2,3\n" * 5000)
    err = bad(write(tmp_path / "ratings.csv.gz", whole[: len(whole) // 2]), None, "decompress")
    assert "complete" in str(err)
    err = bad(write(tmp_path / "ratings.csv.xz", lzma.compress(b"1,2,3\n")), None, "xz")
    assert "decompress" in str(err)


def test_wrong_encoding(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", b"user,item,rating\nann,tea,4\nzo\xeb,caf\xe9,4\n")
    err = bad(p, 3, "caf\\xe9")
    assert "utf-8" in str(err) and "latin-1" in str(err)
    assert read_ratings(p, encoding="latin-1").frame["item"].tolist() == ["tea", "café"]


def test_unknown_encoding(tmp_path: Path) -> None:
    bad(write(tmp_path / "r.csv", "1,2,3\n"), None, "'klingon'", encoding="klingon")


# --------------------------------------------------------------------------------------------
# Netflix and Parquet


def test_netflix_rating_before_movie_line(tmp_path: Path) -> None:
    p = write(tmp_path / "combined_data_1.txt", "1488844,3,2005-09-06\n1:\n822109,5,2005-05-13\n")
    assert detect_format(p) == "netflix"
    err = bad(p, 1, "'1488844,3,2005-09-06'")
    assert "MovieID:" in str(err)


def test_netflix_bad_date_and_rating(tmp_path: Path) -> None:
    p = write(tmp_path / "combined_data_2.txt", "1:\n1,3,2005-09-06\n2,4,06/09/2005\n")
    bad(p, 3, "'06/09/2005'")
    p = write(tmp_path / "combined_data_3.txt", "1:\n1,3,2005-09-06\n2:\n2,six,2005-09-06\n")
    bad(p, 4, "'six'")
    p = write(tmp_path / "combined_data_4.txt", "1:\n1,3,2005-09-06\n2,3\n")
    bad(p, 3, "'2,3'", format="netflix")


def test_parquet_missing_rating_column(tmp_path: Path) -> None:
    p = tmp_path / "r.parquet"
    pd.DataFrame({"user": [1], "item": [2], "comment": ["x"]}).to_parquet(p)
    err = bad(p, None, "comment")
    assert "no rating column" in str(err)
    with pytest.raises(DataError, match="no rating column"):
        read_ratings(p, implicit=False, columns="user,item,_")


def test_parquet_bad_rating_names_row(tmp_path: Path) -> None:
    p = tmp_path / "r.parquet"
    frame = pd.DataFrame({"user": [1, 2, 3], "item": [2, 2, 2], "rating": [4.0, 3.0, float("nan")]})
    frame.to_parquet(p)
    err = bad(p, 3, "NaN")
    assert "row 3:" in str(err)


def test_parquet_duplicates_name_both_rows_as_rows(tmp_path: Path) -> None:
    p = tmp_path / "r.parquet"
    pd.DataFrame({"user": [1, 1, 2], "item": [3, 3, 4], "rating": [4.0, 5.0, 3.0]}).to_parquet(p)
    err = bad(p, 2, "(1, 3)")
    assert "row 2: duplicate (user, item) pair, also on row 1" in str(err) and "line" not in str(err).split("Fix")[0]


def test_corrupt_parquet(tmp_path: Path) -> None:
    p = write(tmp_path / "r.parquet", b"PAR1 this is not really parquet")
    bad(p, None, "Parquet")


# --------------------------------------------------------------------------------------------
# Bad arguments and paths


def test_unknown_format_name(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "1,2,3\n")
    with pytest.raises(DataError, match="unknown rating file format.*'excel'"):
        read_ratings(p, format="excel")


def test_missing_path(tmp_path: Path) -> None:
    p = tmp_path / "nope" / "u.data"
    for call in (read_ratings, detect_format):
        with pytest.raises(DataError) as caught:
            call(p)
        assert str(p) in str(caught.value) and "aerec datasets list" in str(caught.value)


def test_folder_without_ratings(tmp_path: Path) -> None:
    write(tmp_path / "readme.txt", "hello\n")
    with pytest.raises(DataError, match="none of the rating files"):
        read_ratings(tmp_path)


def test_bad_duplicate_policy(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "1,2,3\n")
    with pytest.raises(DataError, match="duplicate policy"):
        read_ratings(p, duplicates="first")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Anything at all: reads or raises DataError, nothing else

_FIELDS = st.sampled_from(
    ["1", "2", "42", "3.5", "-1", "", " ", "abc", "NaN", "inf", "1e9", "1e30", "881250949",
     "2005-09-06", '"', '"a,b"', ":", "é", "\x00", "\r", "12:", "userId", "movieId", "rating",
     "timestamp", "user", "item"]
)


@st.composite
def _delimited(draw) -> bytes:
    """Lines of 1-5 fields (numbers mostly), one separator, with now and then an odd line."""
    sep = draw(st.sampled_from([",", "\t", ";", "|", " ", "::", ":"]))
    width = draw(st.integers(1, 5))
    field = st.one_of(st.integers(0, 6).map(str), _FIELDS)
    row = st.lists(field, min_size=width - 1, max_size=width + 1)
    rows = draw(st.lists(row, min_size=1, max_size=8))
    lines = [sep.join(r) for r in rows]
    odd = st.sampled_from(["", "1:", "userId,movieId,rating,timestamp", "user item rating", "  "])
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(odd))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    return (end.join(lines) + draw(st.sampled_from(["", end, end + end]))).encode("utf-8")


_NAMES = st.sampled_from(
    ["r.csv", "u.data", "ratings.dat", "ratings.csv", "combined_data_1.txt", "r.txt"]
)
_FORMAT = st.sampled_from(
    ["auto", "auto", "auto", "ml-100k", "ml-1m", "ml-latest", "netflix", "csv"]
)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=300), _delimited()), name=_NAMES, fmt=_FORMAT)
def test_anything_reads_or_raises_data_error(
    tmp_path: Path, data: bytes, name: str, fmt: str
) -> None:
    p = tmp_path / name
    p.write_bytes(data)
    try:
        r = read_ratings(p, format=fmt)
    except DataError as e:
        assert name in str(e)
    else:
        assert len(r) > 0 and r.frame.index.min() >= 1
        assert r.frame.index.max() <= data.count(b"\n") + data.count(b"\r") + 1
    finally:
        os.remove(p)


def test_quoted_field_across_lines(tmp_path: Path) -> None:
    # pyarrow would accept it, and every later line number would be off by one.
    p = write(tmp_path / "r.csv", 'user,item,rating,note\n1,2,3,ok\n1,3,4,"two\nlines"\n2,3,1,ok\n')
    bad(p, 3, "'1,3,4,\"two'")
