"""The dataset registry: pinned metadata, the data home, and load_dataset (never online)."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from aerec.data import registry
from aerec.data.registry import REGISTRY, data_home, dataset_dir, get_spec, is_downloaded, load_dataset
from aerec.data.scale import RatingScale
from aerec.errors import ConfigError, DataError, DatasetError
from tests.conftest import needs_ml100k

MOVIELENS = ["ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m", "ml-latest-small"]


@pytest.fixture
def offline(monkeypatch):
    """Make any attempt to reach the network fail the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("load_dataset must not touch the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# ----------------------------------------------------------------------------- registry content
def test_every_movielens_archive_is_registered_with_pinned_metadata():
    for name in MOVIELENS:
        s = REGISTRY[name]
        assert s.kind == "download"
        assert s.url == f"https://files.grouplens.org/datasets/movielens/{name}.zip"
        assert s.size and s.size > 500_000
        assert s.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", s.sha256)
        assert s.md5 is None or re.fullmatch(r"[0-9a-f]{32}", s.md5)
        assert s.has_checksum
        assert s.folder and s.ratings_file and s.items_file and s.format
        assert "Harper" in s.license and "redistribut" in s.license
        assert s.users and s.items and s.ratings
    for builtin in ("toy", "synthetic"):
        assert REGISTRY[builtin].kind == "builtin" and REGISTRY[builtin].url is None
    # Facts other code relies on.
    ml100k = REGISTRY["ml-100k"]
    assert (ml100k.size, ml100k.folder, ml100k.ratings_file) == (4_924_029, "ml-100k", "u.data")
    assert ml100k.sha256 == "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"
    assert ml100k.scale == RatingScale(1, 5, 1)
    assert REGISTRY["ml-10m"].folder == "ml-10M100K"
    assert REGISTRY["ml-20m"].scale == RatingScale(0.5, 5, 0.5)
    assert REGISTRY["ml-1m"].archive_name == "ml-1m.zip"


def test_unknown_names_list_the_known_ones_and_suggest_close_matches():
    with pytest.raises(DatasetError) as exc:
        get_spec("ml-100")
    msg = str(exc.value)
    assert "Did you mean ml-100k" in msg
    assert all(name in msg for name in MOVIELENS + ["toy", "synthetic"])
    with pytest.raises(DatasetError, match="Known datasets"):
        load_dataset("netflix-prize")
    assert get_spec("ML-1M").name == "ml-1m"  # names are case-insensitive


# ----------------------------------------------------------------------------- data home
def test_data_home_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("AEREC_DATA_HOME", str(tmp_path / "env"))
    assert data_home(tmp_path / "arg") == tmp_path / "arg"
    assert data_home() == tmp_path / "env"
    monkeypatch.delenv("AEREC_DATA_HOME")
    import platformdirs

    assert data_home() == Path(platformdirs.user_cache_dir("aerec"))
    assert dataset_dir("ml-10m", tmp_path) == tmp_path / "ml-10M100K"
    with pytest.raises(DatasetError, match="built in"):
        dataset_dir("toy", tmp_path)
    assert not is_downloaded("ml-1m", tmp_path)
    assert is_downloaded("toy", tmp_path)


# ----------------------------------------------------------------------------- built-ins
def test_toy_and_synthetic_load_offline(offline):
    toy = load_dataset("toy")
    assert (len(toy), toy.n_users, toy.n_items) == (57, 11, 6)
    assert toy.scale.is_binary and (toy.frame["rating"] == 0).sum() > 0  # zeros are real ratings

    a = load_dataset("synthetic", n_ratings=3_000, seed=3)
    b = load_dataset("synthetic", n_ratings=3_000, seed=3)
    c = load_dataset("synthetic", n_ratings=3_000, seed=4)
    assert len(a) == 3_000 and a.meta["noise_floor_rmse"] > 0
    assert a.frame.equals(b.frame) and not a.frame.equals(c.frame)


def test_builtin_options_are_checked():
    with pytest.raises(ConfigError, match="toy does not take seed"):
        load_dataset("toy", seed=1)
    with pytest.raises(ConfigError, match="columns"):
        load_dataset("synthetic", columns=["user", "item", "rating"])


# ----------------------------------------------------------------------------- downloaded sets
def test_missing_download_says_how_to_get_it_without_network(offline, tmp_path):
    with pytest.raises(DatasetError) as exc:
        load_dataset("ml-1m", data_home=tmp_path)
    msg = str(exc.value)
    assert "not downloaded" in msg and "aerec datasets download ml-1m" in msg and "AEREC_DATA_HOME" in msg
    assert str(tmp_path / "ml-1m") in msg


def test_local_copy_in_data_home_is_read(offline, tmp_path):
    folder = tmp_path / "ml-100k"
    folder.mkdir()
    (folder / "u.data").write_text("1\t10\t5\t881250949\n1\t20\t3\t881250950\n2\t10\t4\t881250951\n")
    r = load_dataset("ml-100k", data_home=tmp_path)
    assert (len(r), r.n_users, r.n_items) == (3, 2, 2)
    assert sorted(r.frame["rating"].tolist()) == [3.0, 4.0, 5.0]
    assert r.has_timestamps



def test_a_name_means_the_registry_and_a_path_object_means_the_path(offline, tmp_path, monkeypatch):
    (tmp_path / "ml-100k").mkdir()
    (tmp_path / "ml-100k" / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t4\t881250951\n")
    monkeypatch.chdir(tmp_path)  # ./ml-100k exists here
    assert len(load_dataset(Path("ml-100k"))) == 2
    with pytest.raises(DatasetError, match="not downloaded"):
        load_dataset("ml-100k", data_home=tmp_path / "elsewhere")


@needs_ml100k
def test_ml100k_from_the_shared_data_home(offline, ml100k_dir):
    r = load_dataset("ml-100k", data_home=ml100k_dir.parent)
    assert (r.n_users, r.n_items, len(r)) == (943, 1682, 100_000)
    assert r.scale == RatingScale(1, 5, 1)
    assert r.item_info is not None and len(r.item_info) == 1682


# ----------------------------------------------------------------------------- paths
def test_paths_are_read_with_read_ratings(offline, tmp_path):
    f = tmp_path / "ratings.csv"
    f.write_text("user,item,rating\nu1,i1,4\nu1,i2,2\nu2,i1,5\n")
    r = load_dataset(f)
    assert (len(r), r.n_users, r.n_items) == (3, 2, 2)
    r2 = load_dataset(tmp_path)  # a folder holding ratings.csv
    assert len(r2) == 3
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "missing.csv")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="empty_dir"):
        load_dataset(tmp_path / "empty_dir")


def test_malformed_file_error_names_file_and_line(tmp_path):
    f = tmp_path / "bad.tsv"
    f.write_text("1\t10\t5\n1\t11\t4\n2\t10\tfive\n")
    with pytest.raises(DataError) as exc:
        load_dataset(f)
    assert str(f) in str(exc.value) and ":3" in str(exc.value)


def test_registry_module_exports():
    assert set(registry.__all__) >= {"data_home", "dataset_dir", "load_dataset", "REGISTRY", "DatasetSpec"}
