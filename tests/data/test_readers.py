"""Reading every supported rating-file format (small handmade files, plus ML-100K when present)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aerec.data.readers import FORMATS, IMPLICIT_SCALE, detect_format, read_items, read_ratings
from aerec.data.scale import RatingScale
from tests.conftest import needs_ml100k


def write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


# --------------------------------------------------------------------------------------------
# MovieLens 100K (the real files, never copied into the repository)


@needs_ml100k
def test_ml100k_u_data(ml100k_dir: Path) -> None:
    r = read_ratings(ml100k_dir / "u.data")
    assert (r.n_users, r.n_items, len(r)) == (943, 1682, 100000)
    assert r.scale == RatingScale(1, 5, 1)
    assert not r.implicit
    assert r.source == str(ml100k_dir / "u.data")
    f = r.frame
    assert list(f.columns) == ["user", "item", "rating", "timestamp"]
    assert f["user"].dtype == np.int64 and f["timestamp"].dtype == np.int64
    assert f.index[0] == 1 and f.index[-1] == 100000  # index = line numbers
    # The first line of u.data is "196  242  3  881250949".
    assert f.loc[1].tolist() == [196, 242, 3.0, 881250949]
    assert set(np.unique(f["rating"])) == {1.0, 2.0, 3.0, 4.0, 5.0}


@needs_ml100k
def test_ml100k_item_info_latin1(ml100k_dir: Path) -> None:
    info = read_ratings(ml100k_dir / "u.data").item_info
    assert info is not None and len(info) == 1682
    assert list(info.columns) == ["title", "genres"]
    assert info.loc[1, "title"] == "Toy Story (1995)"
    assert info.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert info.loc[543, "title"] == "Misérables, Les (1995)"  # latin-1 0xE9 decoded right
    assert "Ã" not in "".join(info["title"])
    assert info.loc[543, "genres"] == "Drama|Musical"
    same = read_items(ml100k_dir)
    assert same is not None and same.equals(info)


@needs_ml100k
@pytest.mark.parametrize("name, n", [("u1.base", 80000), ("u1.test", 20000), ("ua.test", 9430)])
def test_ml100k_splits(ml100k_dir: Path, name: str, n: int) -> None:
    assert detect_format(ml100k_dir / name) == "ml-100k"
    r = read_ratings(ml100k_dir / name)
    assert len(r) == n and r.scale == RatingScale(1, 5, 1)


@needs_ml100k
def test_ml100k_folder_and_speed(ml100k_dir: Path) -> None:
    assert detect_format(ml100k_dir) == "ml-100k"
    read_ratings(ml100k_dir)  # warm the imports
    start = time.perf_counter()
    r = read_ratings(ml100k_dir)
    elapsed = time.perf_counter() - start
    assert len(r) == 100000
    assert elapsed < 0.5, f"reading u.data took {elapsed:.2f} s"


@needs_ml100k
def test_ml100k_columns_keep_scale_and_titles(ml100k_dir: Path) -> None:
    r = read_ratings(ml100k_dir / "u1.test", columns="user,item,rating,_")
    assert list(r.frame.columns) == ["user", "item", "rating"]
    assert r.scale == RatingScale(1, 5, 1) and r.item_info is not None


# --------------------------------------------------------------------------------------------
# Other MovieLens layouts


def test_ml1m_dat_with_latin1_movies(tmp_path: Path) -> None:
    d = tmp_path / "ml-1m"
    p = write(d / "ratings.dat",
              "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n")
    write(d / "movies.dat", "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
          "661::Caf\xe9 au lait (1993)::Comedy|Romance\n", encoding="latin-1")
    assert detect_format(p) == "ml-1m"
    r = read_ratings(p)
    assert r.frame.to_numpy().tolist() == [[1, 1193, 5, 978300760], [1, 661, 3, 978302109],
                                           [2, 1193, 4, 978298413]]
    assert r.frame.index.tolist() == [1, 2, 3]
    assert r.scale == RatingScale(1, 5, 1)
    assert r.item_info.loc[661].tolist() == ["Café au lait (1993)", "Comedy|Romance"]


def test_ml10m_half_stars(tmp_path: Path) -> None:
    p = write(tmp_path / "ratings.dat",
              "1::122::5::838985046\n1::185::4.5::838983525\n2::122::0.5::838983392\n")
    r = read_ratings(p)
    assert r.scale == RatingScale(0.5, 5, 0.5)
    assert r.frame["rating"].tolist() == [5.0, 4.5, 0.5]
    assert read_ratings(p, format="ml-10m").scale == RatingScale(0.5, 5, 0.5)


def test_ml_latest_csv_half_stars(tmp_path: Path) -> None:
    d = tmp_path / "ml-latest-small"
    p = write(d / "ratings.csv", "userId,movieId,rating,timestamp\n"
              "1,1,4.0,964982703\n1,3,4.5,964981247\n2,1,0.5,964982224\n")
    write(d / "movies.csv", 'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n'
          '3,"American President, The (1995)",Comedy|Drama|Romance\n4,Amélie (2001),Comedy\n')
    assert detect_format(p) == "ml-latest"
    r = read_ratings(p)
    assert r.scale == RatingScale(0.5, 5, 0.5)
    assert r.frame["rating"].tolist() == [4.0, 4.5, 0.5]
    assert r.frame.index.tolist() == [2, 3, 4]  # line 1 is the header
    assert r.item_info.loc[3, "title"] == "American President, The (1995)"
    assert r.item_info.loc[4, "title"] == "Amélie (2001)"


def test_netflix_combined_data(tmp_path: Path) -> None:
    p = write(tmp_path / "combined_data_1.txt",
              "1:\n1488844,3,2005-09-06\n822109,5,2005-05-13\n\n2:\r\n885013,4,2005-10-19\r\n")
    write(tmp_path / "movie_titles.csv", b"1,2003,Dinosaur Planet\n2,NULL,Caf\xe9, The\n")
    assert detect_format(p) == "netflix"
    r = read_ratings(p)
    f = r.frame
    assert f["user"].tolist() == [1488844, 822109, 885013]
    assert f["item"].tolist() == [1, 1, 2]
    assert f["rating"].tolist() == [3.0, 5.0, 4.0]
    assert f["timestamp"].tolist() == [1125964800, 1115942400, 1129680000]  # UTC midnights
    assert f.index.tolist() == [2, 3, 6]
    assert r.scale == RatingScale(1, 5, 1)
    assert r.item_info.loc[2, "title"] == "Café, The"  # a comma inside the title, latin-1


def test_netflix_training_set_titles_one_folder_up(tmp_path: Path) -> None:
    p = write(tmp_path / "training_set" / "mv_0000007.txt", "7:\n42,2,2004-01-31\n")
    write(tmp_path / "movie_titles.txt", "7,1999,Seven\n")
    r = read_ratings(p)
    assert r.frame["item"].tolist() == [7] and r.item_info.loc[7, "title"] == "Seven"


# --------------------------------------------------------------------------------------------
# Generic delimited files


def test_csv_with_header_aliases_and_dates(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "customer_id,product_id,stars,review_date,comment\n"
              'alice,B001,5,2020-01-02,"great, really"\nbob,B001,2,2020-01-03T12:00:00Z,meh\n')
    assert detect_format(p) == "csv"
    r = read_ratings(p)
    f = r.frame
    assert f["user"].tolist() == ["alice", "bob"] and f["item"].tolist() == ["B001", "B001"]
    assert f["timestamp"].tolist() == [1577923200, 1578052800]
    assert f.index.tolist() == [2, 3]
    assert r.item_info is None


def test_tsv_without_header_and_columns(tmp_path: Path) -> None:
    p = write(tmp_path / "data.tsv", "5\t10\tx\t3.5\n6\t11\ty\t1\n")
    r = read_ratings(p, columns=["user", "item", None, "rating"])
    assert r.frame.to_numpy().tolist() == [[5, 10, 3.5], [6, 11, 1.0]]
    assert r.scale == RatingScale(1, 3.5, 0.5)  # inferred
    same = read_ratings(p, columns="user,item,_,rating", sep="\\t")
    assert same.frame.equals(r.frame)


def test_headerless_by_field_count(tmp_path: Path) -> None:
    r = read_ratings(write(tmp_path / "a.csv", "1,2,4\n3,4,5\n"))
    assert list(r.frame.columns) == ["user", "item", "rating"]
    r = read_ratings(write(tmp_path / "b.csv", "1,2,4,881250949\n3,4,5,881250950\n"))
    assert list(r.frame.columns) == ["user", "item", "rating", "timestamp"]


def test_semicolon_with_decimal_comma_free_text(tmp_path: Path) -> None:
    p = write(tmp_path / "s.csv", "user;item;rating\nu1;Heat, The;4\nu2;Heat, The;2\n")
    r = read_ratings(p)
    assert r.frame["item"].tolist() == ["Heat, The", "Heat, The"]
    assert r.frame["rating"].tolist() == [4.0, 2.0]


def test_pipe_separated(tmp_path: Path) -> None:
    r = read_ratings(write(tmp_path / "p.txt", "1|7|2\n2|7|5\n3|8|1\n"))
    assert r.frame["item"].tolist() == [7, 7, 8] and len(r) == 3


def test_whitespace_separated_with_blank_lines(tmp_path: Path) -> None:
    p = write(tmp_path / "w.txt", "1 2 3\n\n4   5\t1\n  7 8 2\n\n")
    r = read_ratings(p)
    assert r.frame.to_numpy().tolist() == [[1, 2, 3], [4, 5, 1], [7, 8, 2]]
    assert r.frame.index.tolist() == [1, 3, 4]


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    p = write(tmp_path / "b.csv", "user,item,rating\n\n1,2,3\n\n\n2,2,4\n")
    assert read_ratings(p).frame.index.tolist() == [3, 6]


def test_crlf_and_bom(tmp_path: Path) -> None:
    p = write(tmp_path / "c.csv", b"\xef\xbb\xbfuser,item,rating\r\n1,2,3\r\n4,5,1\r\n")
    r = read_ratings(p)
    assert r.frame["user"].tolist() == [1, 4] and r.frame.index.tolist() == [2, 3]


def test_utf16_and_explicit_latin1(tmp_path: Path) -> None:
    p = write(tmp_path / "u16.csv", "user\titem\trating\nzoë\tcafé\t4\n", encoding="utf-16")
    assert read_ratings(p).frame["user"].tolist() == ["zoë"]
    p = write(tmp_path / "l1.csv", "user,item,rating\nzoë,café,4\n", encoding="latin-1")
    assert read_ratings(p, encoding="latin-1").frame["item"].tolist() == ["café"]


def test_late_half_star_and_late_text_id(tmp_path: Path) -> None:
    # pyarrow infers types from its first block (1 MiB): later values must still be read.
    lines = [f"{u},{u % 50},{1 + u % 5}" for u in range(80000)]
    p = write(tmp_path / "big.csv", "\n".join(lines + ["7,x9,4.5"]) + "\n")
    r = read_ratings(p)
    assert r.frame["rating"].iloc[-1] == 4.5 and r.frame.index[-1] == 80001
    assert r.frame["item"].iloc[-1] == "x9"


def test_parquet(tmp_path: Path) -> None:
    p = tmp_path / "r.parquet"
    pd.DataFrame({"userId": [1, 1, 2], "movieId": [5, 6, 5], "rating": [4.0, 3.5, 5.0],
                  "when": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-03"])}).to_parquet(p)
    assert detect_format(p) == "parquet"
    r = read_ratings(p)
    assert r.frame["rating"].tolist() == [4.0, 3.5, 5.0]
    assert r.frame["timestamp"].tolist() == [1577836800, 1577923200, 1578009600]
    assert r.frame.index.tolist() == [1, 2, 3]
    r2 = read_ratings(p, columns="user,item,rating,_")
    assert "timestamp" not in r2.frame.columns


@pytest.mark.parametrize("text, columns", [
    ("user,item,timestamp\n1,2,1600000000\n1,3,1600000100\n", None),
    ("1,2\n1,3\n", None),
    ("1,2,1600000000\n1,3,1600000100\n", None),  # big whole numbers: a timestamp, not a rating
    ("1,2,5\n1,3,4\n", "user,item,_"),
])
def test_event_logs_are_implicit(tmp_path: Path, text: str, columns: str | None) -> None:
    r = read_ratings(write(tmp_path / "events.csv", text), columns=columns)
    assert r.implicit and r.scale == IMPLICIT_SCALE
    assert r.frame["rating"].tolist() == [1.0, 1.0]


def test_implicit_true_drops_ratings(tmp_path: Path) -> None:
    r = read_ratings(write(tmp_path / "r.csv", "1,2,5\n1,3,2\n"), implicit=True)
    assert r.implicit and r.frame["rating"].tolist() == [1.0, 1.0]


def test_duplicates_last_and_mean(tmp_path: Path) -> None:
    p = write(tmp_path / "d.csv", "user,item,rating,timestamp\n1,2,1,100\n1,3,5,100\n1,2,4,300\n")
    last = read_ratings(p, duplicates="last").frame
    assert last.loc[[3, 4]].to_numpy().tolist() == [[1, 3, 5, 100], [1, 2, 4, 300]]
    mean = read_ratings(p, duplicates="mean").frame
    row = mean[(mean["user"] == 1) & (mean["item"] == 2)]
    assert row["rating"].tolist() == [2.5] and row["timestamp"].tolist() == [300]
    assert row.index.tolist() == [2]  # the first line the pair appeared on
    assert len(mean) == 2


def test_declared_scale_and_format_names(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "1,2,3\n2,2,1\n")
    assert read_ratings(p, scale=RatingScale(1, 10, 1)).scale == RatingScale(1, 10, 1)
    assert read_ratings(p, format="csv").frame.equals(read_ratings(p).frame)
    assert set(FORMATS) == {"ml-100k", "ml-1m", "ml-latest", "netflix", "parquet", "csv"}


def test_read_items_none_and_direct(tmp_path: Path) -> None:
    assert read_items(write(tmp_path / "r.csv", "1,2,3\n")) is None
    genre = write(tmp_path / "ml" / "u.genre", "unknown|0\nAction|1\n")
    item = write(genre.parent / "u.item",
                 "1|Heat (1995)|01-Jan-1995||url|0|1\n2|Odd (1990)|||url|1|0\n")
    info = read_items(item)
    assert info.loc[1].tolist() == ["Heat (1995)", "Action"]
    assert info.loc[2, "genres"] == "unknown"


@pytest.mark.parametrize("name, text, expected", [
    ("anything.txt", "1::2::3::4\n", "ml-1m"),                       # content alone
    ("x.csv", "userId,movieId,rating,timestamp\n1,2,3,4\n", "ml-latest"),
    ("dump.txt", "17:\n5,3,2005-01-01\n", "netflix"),
    ("u.data", "1\t2\t3\t4\n", "ml-100k"),                            # name and content agree
    ("u.data", "1,2,3,4\n", "csv"),                                  # the name alone is not enough
    ("ratings.tsv", "1\t2\t3\t4\n", "csv"),                          # tab data without the name
    ("r.parquet", b"", "parquet"),                                   # by suffix
])
def test_detect_format(tmp_path: Path, name: str, text: str | bytes, expected: str) -> None:
    assert detect_format(write(tmp_path / name, text)) == expected


@pytest.mark.parametrize("sep", [",", "\t", " "])
def test_ids_keep_their_spelling_unless_every_one_is_a_plain_whole_number(tmp_path: Path, sep: str) -> None:
    def users(lines: list[str]) -> list:
        text = "user item rating\n".replace(" ", sep) + "".join(f"{u}{sep}1{sep}{k % 5 + 1}\n" for k, u in enumerate(lines))
        return read_ratings(write(tmp_path / "r.txt", text)).frame["user"].tolist()

    assert users(["7", "12", "-3"]) == [7, 12, -3]  # plain whole numbers: int64 labels
    assert users(["007", "7"]) == ["007", "7"]  # zero-padded codes are not 7 (they were merged)
    assert users(["+7", "7"]) == ["+7", "7"]
    big = ["12345678901234567890", "12345678901234567891"]
    assert users(big) == big  # past int64: exact text, not two equal floats
    assert users(["1.0", "2.0"]) == [1, 2]  # whole floats are still whole-number ids
