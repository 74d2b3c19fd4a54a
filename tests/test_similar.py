"""Similar items: ``similar_items`` for every family, ``aerec similar``, ``GET /v1/items/{id}/similar``.

On planted data (two user groups with opposite tastes for two item groups x and y) the
neighbours of an x item must be x items, whatever the family's item representation. On
MovieLens 100K the neighbours of a movie must share a genre with it far more often than random
movies do (docs/models.md, "Similar items").
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from aerec.cli import app
from aerec.config import Config
from aerec.errors import DataError
from aerec.implicit import ImplicitRecommender
from aerec.recommender import Recommender
from aerec.testing import planted_ratings, single_thread
from aerec.testing.implicit import planted_implicit

_FAST_ADAM = {"optimizer": "adam", "lr": 0.01, "batch_size": 8, "epochs": 60, "patience": 15}
_LBFGS = {"epochs": 8, "lbfgs_iterations": 10, "patience": 3}
EXPLICIT = {  # label -> (kind, train settings, model settings): the contract tests' small models
    "sae": ("sae", {"optimizer": "rmsprop", "lr": 0.01, "momentum": 0.0, "batch_size": 8, "epochs": 60,
                    "patience": 20}, {"hidden": [20, 10, 20]}),
    "i-autorec": ("autorec", _LBFGS, {"preset": "i-autorec", "hidden": [16], "l2": 1.0}),
    "u-autorec": ("autorec", _LBFGS, {"preset": "u-autorec", "hidden": [16], "l2": 1.0}),
    "deep": ("deep", _FAST_ADAM, {"hidden": [16, 8, 16], "code_dropout": 0.5}),
    "dae": ("dae", _FAST_ADAM, {"hidden": [16], "l2": 1.0, "input_dropout": 0.2}),
    "sparse": ("sparse", _FAST_ADAM, {"hidden": [16], "l2": 1.0, "code_l1": 1e-3}),
}
_FAST_IMPLICIT = {"optimizer": "adam", "lr": 0.01, "batch_size": 8, "epochs": 30, "patience": 0, "validation": 0.3}
IMPLICIT = {
    "multvae": (_FAST_IMPLICIT, {"hidden": [32, 8], "total_anneal_steps": 50}),
    "multdae": (_FAST_IMPLICIT, {"hidden": [32, 8], "l2": 0.0}),
    "cdae": (_FAST_IMPLICIT, {"hidden": 16, "l2": 0.001}),
    "recvae": ({**_FAST_IMPLICIT, "epochs": 15}, {"hidden": 32, "latent": 8}),
    "ease": ({}, {"l2_grid": [1.0, 10.0, 100.0]}),
    "easedae": (_FAST_IMPLICIT, {"hidden": [8], "l2": 0.0, "ease_l2_grid": [1.0, 10.0, 100.0]}),
    "popularity": ({}, {}),
}
N = 5  # neighbours checked, of the 14 other items of the group


@pytest.fixture(scope="module")
def planted():
    return planted_ratings()


@pytest.fixture(scope="module")
def planted_imp():
    return planted_implicit()


def _explicit(label: str, data) -> Recommender:
    kind, train, params = EXPLICIT[label]
    with single_thread():
        return Recommender(config=Config(model={"kind": kind, **params}, train=dict(train))).fit(data.train_matrix())


def _implicit(kind: str, data) -> ImplicitRecommender:
    train, params = IMPLICIT[kind]
    with single_thread():
        return ImplicitRecommender(config=Config(model={"kind": kind, **params}, train=dict(train))).fit(data.train)


def _check_groups(model, data) -> None:
    for item, group, other in ((data.x_items[0], data.x_items, data.y_items),
                               (data.y_items[0], data.y_items, data.x_items)):
        top = model.similar_items(item, n=N)
        assert list(top.columns[:2]) == ["item", "score"]
        assert len(top) == N
        assert set(top["item"]) <= set(group) - {item}, (model.kind, item, top)
        scores = top["score"].to_numpy()
        assert np.all(np.diff(scores) <= 1e-12) and np.all(np.abs(scores) <= 1 + 1e-9)
        # The whole catalogue: the item itself and the ghost nobody rated never appear.
        everything = model.similar_items(item, n=100)
        assert item not in set(everything["item"]) and data.ghost not in set(everything["item"])
        assert len(everything) == len(group) + len(other) - 1
        # Almost every item of its own group is more like it than almost every item of the other
        # (the AUC of the similarity as a group detector; sigmoid codes are all positive, so
        # their cosines are all high: the order is what counts).
        mine = everything["item"].isin(group).to_numpy()
        score = everything["score"].to_numpy()
        auc = (score[mine][:, None] > score[~mine][None, :]).mean()
        assert auc >= 0.85, (model.kind, auc, everything)


@pytest.mark.parametrize("label", list(EXPLICIT))
def test_explicit_neighbours_come_from_the_items_group(label, planted):
    _check_groups(_explicit(label, planted), planted)


@pytest.mark.parametrize("kind", list(IMPLICIT))
def test_implicit_neighbours_come_from_the_items_group(kind, planted_imp):
    _check_groups(_implicit(kind, planted_imp), planted_imp)


@pytest.fixture(scope="module")
def model_dir(planted, tmp_path_factory) -> Path:
    """An item-based AutoRec with movie-like titles, saved."""
    import dataclasses

    rows = [(x, f"Space Opera {k}", "Sci-Fi") for k, x in enumerate(planted.x_items)]
    rows += [(y, f"Quiet Drama {k}", "Drama") for k, y in enumerate(planted.y_items)]
    info = pd.DataFrame(rows, columns=["item", "title", "genres"]).set_index("item")
    train = dataclasses.replace(planted.train, item_info=info)
    kind, settings, params = EXPLICIT["i-autorec"]
    with single_thread():
        model = Recommender(config=Config(model={"kind": kind, **params}, train=dict(settings))).fit(train)
    return model.save(tmp_path_factory.mktemp("similar") / "model")


def test_titles_come_along_and_a_loaded_model_answers_the_same(model_dir, planted):
    model = Recommender.load(model_dir)
    top = model.similar_items("x0", n=3)
    assert list(top.columns) == ["item", "score", "title", "genres"]
    assert all(t.startswith("Space Opera") for t in top["title"])
    again = Recommender.load(model_dir).similar_items("x0", n=3)
    pd.testing.assert_frame_equal(top, again)


@pytest.mark.parametrize("n", [0, -1, 2.5, True, "3"])
def test_n_must_be_a_positive_whole_number(model_dir, n):
    with pytest.raises(DataError, match="positive whole number"):
        Recommender.load(model_dir).similar_items("x0", n=n)


def test_unknown_item_is_a_data_error_naming_it(model_dir):
    with pytest.raises(DataError, match="unknown item.*'no-such-item'"):
        Recommender.load(model_dir).similar_items("no-such-item")


def test_an_item_nobody_rated_is_refused(planted):
    model = _explicit("i-autorec", planted)
    with pytest.raises(DataError, match="no training user rated.*'z0'"):
        model.similar_items(planted.ghost)


def test_integer_ids_may_be_given_as_text(tmp_path):
    from aerec.data.synthetic import synthetic_ratings

    with single_thread():
        model = Recommender("autorec", hidden=[8], epochs=2).fit(synthetic_ratings(2000))
    item = model.items_.labels[0]
    pd.testing.assert_frame_equal(model.similar_items(str(item), n=4), model.similar_items(item, n=4))


def test_unfitted_model_says_so():
    from aerec.errors import NotFittedError

    with pytest.raises(NotFittedError):
        Recommender("autorec").similar_items("x0")


# ----------------------------------------------------------------------------- the command
runner = CliRunner()


def test_cli_table_and_json(model_dir):
    r = runner.invoke(app, ["similar", str(model_dir), "--item", "x0", "-n", "3"])
    assert r.exit_code == 0, r.output
    assert "Space Opera" in r.stdout and "similarity" in r.stdout
    r = runner.invoke(app, ["similar", str(model_dir), "--item", "x0", "-n", "3", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["item"] == "x0" and len(doc["similar"]) == 3
    assert set(doc["similar"][0]) == {"item_id", "score", "title"}
    expected = Recommender.load(model_dir).similar_items("x0", n=3)
    assert [s["item_id"] for s in doc["similar"]] == expected["item"].tolist()
    assert [s["score"] for s in doc["similar"]] == pytest.approx(expected["score"].tolist())


@pytest.mark.parametrize("args, words", [
    (["--item", "no-such-item"], "'no-such-item'"),
    (["--item", "x0", "-n", "0"], "-n must be a positive whole number"),
])
def test_cli_bad_input_exits_2_with_a_message(model_dir, args, words):
    r = runner.invoke(app, ["similar", str(model_dir), *args])
    assert r.exit_code == 2, r.output
    assert words in r.output and "Traceback" not in r.output


# ----------------------------------------------------------------------------- the HTTP API
@pytest.fixture(scope="module")
def client(model_dir):
    pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'aerec[serve]'")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*httpx2")
        from fastapi.testclient import TestClient
    from aerec.serve import ServeSettings, create_app

    return TestClient(create_app(model_dir, ServeSettings(max_n=25)))


def test_http_similar_matches_the_library(client, model_dir):
    response = client.get("/v1/items/x0/similar", params={"n": 4})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["item_id"] == "x0" and body["title"] == "Space Opera 0"
    expected = Recommender.load(model_dir).similar_items("x0", n=4)
    assert [s["item_id"] for s in body["similar"]] == expected["item"].tolist()
    assert all(s["title"].startswith("Space Opera") and s["genres"] == ["Sci-Fi"] for s in body["similar"])


def test_http_unknown_item_is_404_naming_it(client):
    response = client.get("/v1/items/no-such-item/similar")
    assert response.status_code == 404
    assert "'no-such-item'" in response.json()["detail"]


@pytest.mark.parametrize("n", [0, 26])
def test_http_bad_n_is_422(client, n):
    response = client.get("/v1/items/x0/similar", params={"n": n})
    assert response.status_code == 422 and response.json()["detail"]


# ----------------------------------------------------------------------------- MovieLens 100K
def genre_overlap(model: Any, n: int = 10, min_ratings: int = 20, pairs: int = 20_000,
                  seed: int = 0) -> dict[str, float]:
    """How often an item's ``n`` neighbours share a genre with it, against random pairs of items.

    Items with at least ``min_ratings`` training ratings are the queries (and the random items);
    neighbours may be any rated item. Returns ``overlap`` (share of (item, neighbour) pairs with a
    genre in common), ``random`` (the same for ``pairs`` random pairs of distinct items) and
    ``lift`` (their ratio). benchmarks/similar_items.py reports the same figures.
    """
    genres = {k: set(str(v).split("|")) - {"", "unknown"} for k, v in model.item_info_["genres"].items()}
    items = model.items_.labels[np.asarray(model.item_counts_) >= min_ratings]
    shared = [bool(genres[q] & genres[j]) for q in items for j in model.similar_items(q, n=n)["item"]]
    rng = np.random.default_rng(seed)
    a, b = rng.choice(items, pairs), rng.choice(items, pairs)
    random = [bool(genres[x] & genres[y]) for x, y in zip(a, b) if x != y]
    overlap, chance = float(np.mean(shared)), float(np.mean(random))
    return {"overlap": overlap, "random": chance, "lift": overlap / chance, "items": len(items)}


@pytest.mark.slow
def test_movielens_neighbours_share_genres_far_more_than_random_items(ml100k_dir):
    from aerec import read_ratings

    train = read_ratings(ml100k_dir / "u1.base")
    model = Recommender("autorec").fit(train)  # the default (I-AutoRec), about 20 s on 2 cores
    figures = genre_overlap(model)
    # Measured (docs/benchmarks.md): 0.67 of neighbours share a genre against 0.37 of random pairs, a lift of 1.82.
    assert figures["lift"] >= 1.5, figures


def test_the_page_offers_more_like_this(client):
    page = client.get("/").text
    script = client.get("/static/app.js").text
    assert 'id="similar-panel"' in page and 'id="similar"' in page
    assert "/similar?" in script and "More like this" in script
