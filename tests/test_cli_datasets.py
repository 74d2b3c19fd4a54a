"""`aerec datasets list | info | download` through Typer's CliRunner."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.cli import run
from tests.conftest import needs_ml100k
from tests.data.test_download import GOOD, U_DATA, Server, pin


@pytest.fixture
def offline(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("no network expected")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


# ----------------------------------------------------------------------------- list
def test_list_table_and_json(tmp_path):
    r = run("datasets", "list", "--data-home", str(tmp_path))
    assert r.exit_code == 0, r.output
    for name in ("ml-100k", "ml-32m", "ml-latest-small", "toy", "synthetic"):
        assert name in r.stdout
    assert "Harper & Konstan" in r.stdout and str(tmp_path) in r.stdout

    r = run("datasets", "list", "--data-home", str(tmp_path), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    rows = {d["name"]: d for d in doc["datasets"]}
    assert len(rows) == 9 and rows["ml-1m"]["downloaded"] is False and rows["toy"]["downloaded"] is True
    assert rows["ml-100k"]["size"] == 4_924_029


@needs_ml100k
def test_list_marks_ml100k_as_downloaded(ml100k_dir):
    r = run("datasets", "list", "--json", "--data-home", str(ml100k_dir.parent))
    rows = {d["name"]: d for d in json.loads(r.stdout)["datasets"]}
    assert rows["ml-100k"]["downloaded"] is True


# ----------------------------------------------------------------------------- info
def test_info_toy_human_and_json(offline):
    r = run("datasets", "info", "toy")
    assert r.exit_code == 0, r.output
    assert "57" in r.stdout and "█" in r.stdout and "density" in r.stdout

    r = run("datasets", "info", "toy", "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # exactly one JSON object, nothing else on stdout
    assert (doc["users"], doc["items"], doc["ratings"]) == (11, 6, 57)
    assert doc["histogram"] == {"0": 25, "1": 32}


def test_info_synthetic_json_with_options(offline):
    r = run("datasets", "info", "synthetic", "--json", "--n-ratings", "4000", "--seed", "7")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["ratings"] == 4000 and doc["seed"] == 7
    assert 0 < doc["noise_floor_rmse"] < 1
    assert sum(doc["histogram"].values()) == 4000
    picky = json.loads(run("datasets", "info", "synthetic", "--json", "--n-ratings", "4000", "--seed", "7",
                           "--taste", "1").stdout)
    assert picky["taste"] == 1.0 and picky["ratings"] == 4000 and picky["mean_rating"] > doc["mean_rating"]


@needs_ml100k
def test_info_ml100k_json(offline, ml100k_dir):
    r = run("datasets", "info", "ml-100k", "--json", "--data-home", str(ml100k_dir.parent))
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["users"], doc["items"], doc["ratings"]) == (943, 1682, 100_000)
    assert doc["histogram"] == {"1": 6110, "2": 11370, "3": 27145, "4": 34174, "5": 21201}
    assert doc["dataset"] == "ml-100k"


def test_info_file_with_reader_options(tmp_path):
    f = tmp_path / "r.txt"
    f.write_text("7;a;3.5\n7;b;1\n8;a;5\n")
    r = run("datasets", "info", str(f), "--json", "--sep", ";", "--columns", "user,item,rating", "--scale", "0.5:5:0.5")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert (doc["users"], doc["items"], doc["ratings"]) == (2, 2, 3)
    assert doc["scale"] == {"low": 0.5, "high": 5.0, "step": 0.5}


def test_info_malformed_file_exits_2_naming_file_and_line(tmp_path):
    f = tmp_path / "bad.tsv"
    f.write_text("1\t10\t5\n1\t11\t4\n2\t10\tfive\n")
    r = run("datasets", "info", str(f))
    assert r.exit_code == 2, r.output
    assert f"{f}:3" in r.stderr and "five" in r.stderr
    assert "Traceback" not in r.output


def test_info_errors_exit_2(tmp_path, offline):
    r = run("datasets", "info", "ml-1m", "--data-home", str(tmp_path))
    assert r.exit_code == 2 and "aerec datasets download ml-1m" in r.stderr
    r = run("datasets", "info", "ml-10k")
    assert r.exit_code == 2 and "Did you mean" in r.stderr
    r = run("datasets", "info", "toy", "--seed", "3")
    assert r.exit_code == 2 and "does not take seed" in r.stderr
    r = run("datasets", "info", "synthetic", "--scale", "five")
    assert r.exit_code == 2 and "LOW:HIGH" in r.stderr


# ----------------------------------------------------------------------------- download
def test_download_from_a_local_server_then_info(monkeypatch, tmp_path):
    server = Server()
    try:
        pin(monkeypatch, server, GOOD)
        home = tmp_path / "home"
        r = run("datasets", "download", "ml-100k", "--data-home", str(home), "--no-progress")
        assert r.exit_code == 0, r.output
        assert r.stdout.strip() == str(home / "ml-100k")
        assert (home / "ml-100k" / "u.data").read_bytes() == U_DATA
        assert "Terms of use" in r.stderr
        n = len(server.requests)
        r = run("datasets", "download", "ml-100k", "--data-home", str(home))
        assert r.exit_code == 0 and "already here" in r.stderr and len(server.requests) == n
    finally:
        server.stop()
    r = run("datasets", "info", "ml-100k", "--data-home", str(home), "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["ratings"] == U_DATA.count(b"\n")


def test_download_failures_exit_2(monkeypatch, tmp_path):
    server = Server()
    try:
        pin(monkeypatch, server, GOOD)
        server.files.clear()
        r = run("datasets", "download", "ml-100k", "--data-home", str(tmp_path), "--no-progress")
        assert r.exit_code == 2 and "HTTP 404" in r.stderr
    finally:
        server.stop()
    r = run("datasets", "download", "nope")
    assert r.exit_code == 2 and "Known datasets" in r.stderr


def test_download_builtin_is_a_no_op(offline):
    r = run("datasets", "download", "toy")
    assert r.exit_code == 0 and "built in" in r.stderr
