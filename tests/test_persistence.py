"""Model directories: exact round trips, clear errors for damaged files, no pickle, atomic saves."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import aerec
import aerec.plots
from aerec import persistence
from aerec.config import Config, load_config
from aerec.errors import ModelFileError
from aerec.persistence import FORMAT_VERSION, atomic_write_text, read_model_dir, write_model_dir
from aerec.recommender import Recommender
from aerec.testing import planted_ratings, single_thread


def _fit(seed: int = 0) -> Recommender:
    config = Config(
        model={"kind": "autorec", "hidden": [8], "l2": 1.0},
        train={"epochs": 3, "lbfgs_iterations": 5},
        run={"seed": seed},
    )
    with single_thread():
        return Recommender(config=config).fit(planted_ratings().train)


@pytest.fixture(scope="module")
def model() -> Recommender:
    return _fit()


@pytest.fixture(scope="module")
def _saved_once(model, tmp_path_factory) -> Path:
    return model.save(tmp_path_factory.mktemp("saved") / "model", metrics={"rmse": 0.5})


@pytest.fixture
def saved(_saved_once, tmp_path) -> Path:
    """A fresh copy of the saved model for each test to damage (saving draws a plot: slower)."""
    return Path(shutil.copytree(_saved_once, tmp_path / "model"))


CELLS = (
    np.array(["a0", "a1", "b0", "b5", "nobody"], dtype=object),
    np.array(["x0", "y3", "x2", "y0", "x1"], dtype=object),
)


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def _siblings(directory: Path) -> list[str]:
    """Anything next to the model directory: temp folders a save left behind."""
    return sorted(p.name for p in directory.parent.iterdir() if p != directory)


# ----------------------------------------------------------------------------- round trip
def test_round_trip(model, saved):
    assert sorted(p.name for p in saved.iterdir()) == [
        "config.toml", "curves.png", "history.csv", "metrics.json", "model.json", "model.safetensors",
    ]
    meta = json.loads((saved / "model.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["kind"] == "autorec"
    assert meta["aerec_version"] == aerec.__version__ and meta["fingerprint"] == model.fingerprint_
    assert len(meta["weights_sha256"]) == 64 and meta["users"] == model.users_.to_list()
    assert json.loads((saved / "metrics.json").read_text()) == {"rmse": 0.5}
    assert (saved / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    loaded = Recommender.load(saved)
    np.testing.assert_array_equal(loaded.predict(*CELLS), model.predict(*CELLS))
    assert loaded.predict_pairs(*CELLS).fallback.tolist() == model.predict_pairs(*CELLS).fallback.tolist()
    assert loaded.users_ == model.users_ and loaded.items_ == model.items_ and loaded.scale_ == model.scale_
    assert loaded.resolved()[0] == model.resolved()[0]
    assert loaded.recommend("a0", n=5).equals(model.recommend("a0", n=5))
    history = loaded.history_frame()
    assert history["epoch"].tolist() == model.history_frame()["epoch"].tolist()
    np.testing.assert_allclose(history["val_rmse"], model.history_frame()["val_rmse"])


def test_the_saved_config_rebuilds_the_same_settings(model, saved):
    config = load_config(saved / "config.toml")
    params, train, run = Recommender(config=config).resolved()
    assert (params, train, run) == model.resolved()


def test_a_loaded_model_saves_again(model, saved, tmp_path):
    again = Recommender.load(saved).save(tmp_path / "again")
    np.testing.assert_array_equal(Recommender.load(again).predict(*CELLS), model.predict(*CELLS))


def test_write_and_read_model_dir(tmp_path):
    tensors = {"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([1, 2], dtype=torch.int64)}
    out = write_model_dir(tmp_path / "m", tensors, {"kind": "x", "n": [1, 2]}, extras={"notes.txt": "hello"})
    back, meta = read_model_dir(out)
    assert set(back) == {"a", "b"} and all(torch.equal(back[k], tensors[k]) for k in tensors)
    assert meta["kind"] == "x" and meta["n"] == [1, 2] and meta["format_version"] == FORMAT_VERSION
    assert (out / "notes.txt").read_text() == "hello"


# ----------------------------------------------------------------------------- damaged files
def test_a_truncated_weights_file_is_refused(saved):
    weights = saved / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="truncated or was modified"):
        Recommender.load(saved)


def test_one_modified_byte_is_caught_by_the_checksum(saved):
    weights = saved / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        Recommender.load(saved)


def test_missing_files_are_named(saved, tmp_path):
    (saved / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="model.safetensors is missing"):
        Recommender.load(saved)
    (saved / "model.json").unlink()
    with pytest.raises(ModelFileError, match="model.json is missing"):
        Recommender.load(saved)
    with pytest.raises(ModelFileError, match="does not exist"):
        Recommender.load(tmp_path / "nowhere")
    (tmp_path / "ratings.csv").write_text("user,item,rating\n")
    with pytest.raises(ModelFileError, match="ratings.csv is a file, not a model directory"):
        Recommender.load(tmp_path / "ratings.csv")


def test_the_model_json_of_a_directory_names_its_folder(model, tmp_path):
    saved = model.save(tmp_path / "m")
    with pytest.raises(ModelFileError, match=f"is a file, not a model directory; give its folder, {saved}"):
        Recommender.load(saved / "model.json")


def test_a_newer_format_version_is_named(saved):
    meta = json.loads((saved / "model.json").read_text())
    meta["format_version"] = 99
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="version 99.*upgrade aerec"):
        Recommender.load(saved)


@pytest.mark.parametrize("text", ['{"kind": "autorec",', "[1, 2]", "\xff\xfe", '{"kind": "autorec"}'])
def test_invalid_or_foreign_json_is_refused(saved, text):
    (saved / "model.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(ModelFileError, match="model.json"):
        Recommender.load(saved)


def test_json_that_does_not_fit_the_weights_is_refused(saved):
    meta = json.loads((saved / "model.json").read_text())
    meta["n_inputs"] += 1
    (saved / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="do not fit together"):
        Recommender.load(saved)


# ----------------------------------------------------------------------------- no pickle
def test_loading_never_unpickles(model, saved, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("loading a model must never unpickle")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = Recommender.load(saved)
    np.testing.assert_array_equal(loaded.predict(*CELLS), model.predict(*CELLS))


# ----------------------------------------------------------------------------- atomic saves
def test_an_interrupted_save_leaves_the_previous_model(model, saved, monkeypatch):
    before = _digest(saved)
    other = _fit(seed=1)
    assert not np.array_equal(other.predict(*CELLS), model.predict(*CELLS))

    def broken_save_file(tensors, path):
        Path(path).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(persistence, "save_file", broken_save_file)
    with pytest.raises(OSError, match="disk full"):
        other.save(saved)
    monkeypatch.undo()

    def broken_plot(history, path, **kw):
        Path(path).write_bytes(b"\x89PNG")
        raise RuntimeError("the plot crashed")

    monkeypatch.setattr(aerec.plots, "plot_history", broken_plot)
    with pytest.raises(RuntimeError, match="plot crashed"):
        other.save(saved)
    monkeypatch.undo()

    assert _digest(saved) == before
    assert _siblings(saved) == []  # no temp folders left behind
    np.testing.assert_array_equal(Recommender.load(saved).predict(*CELLS), model.predict(*CELLS))
    other.save(saved)  # an uninterrupted save does replace it
    np.testing.assert_array_equal(Recommender.load(saved).predict(*CELLS), other.predict(*CELLS))
    assert _siblings(saved) == []


def test_a_folder_that_is_not_a_model_is_never_replaced(model, tmp_path):
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(ModelFileError, match="not an aerec model directory"):
        model.save(precious)
    assert (precious / "thesis.txt").read_text() == "years of work"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ModelFileError, match="not a directory"):
        model.save(a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (model.save(empty) / "model.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["documents", "empty", "file"]


def test_atomic_write_text(tmp_path):
    target = tmp_path / "a.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_saved_files_follow_the_umask_not_the_private_temp_modes(tmp_path, mask):
    # A model trained by one account is served by another: 0600 temp-file modes must not stick.
    previous = os.umask(mask)
    try:
        folder = write_model_dir(tmp_path / "m", {"w": torch.zeros(2)}, {"kind": "x"}, extras={"history.csv": "a\n"})
        atomic_write_text(tmp_path / "preds.csv", "user,item\n")
        from aerec.training import write_checkpoint

        write_checkpoint(tmp_path / "ckpt", {"w": torch.zeros(2)}, {"epoch": 1})
    finally:
        os.umask(previous)
    checkpoint = tmp_path / "ckpt" / "latest"
    written = [folder, *folder.iterdir(), tmp_path / "preds.csv", checkpoint, *checkpoint.iterdir()]
    assert len(written) == 8
    for path in written:
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        assert path.stat().st_mode & 0o777 == expected, (path.name, oct(path.stat().st_mode & 0o777))
