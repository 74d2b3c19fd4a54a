"""Explanations ("because you liked ..."): recommend(..., explain=True), the command line, the API.

Planted data whose right answer is known: two item groups (x and y); half the users love x and
hate y, half the other way round. The user under test, ``mixed``, loved five items of each
group, so both groups' items are recommended to them; an x item must then be explained by the
x items they loved, never by the y items, and the other way round.
"""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from aerec import ImplicitRecommender, Ratings, Recommender
from aerec.config import Config
from aerec.errors import DataError
from aerec.testing import single_thread

X = [f"x{k}" for k in range(15)]
Y = [f"y{k}" for k in range(15)]
LOVED = X[:5] + Y[:5]  # what the mixed user loved (5 stars)


def planted_mixed(n_users: int = 300, per_user: int = 14, seed: int = 0) -> Ratings:
    """Users who love one group (4-5) and hate the other (1-2), ``per_user`` random ratings
    each, plus ``mixed``, who gave every item of :data:`LOVED` 5 stars."""
    rng = np.random.default_rng(seed)
    users, items, values = [], [], []
    for u in range(n_users):
        home = X if u % 2 == 0 else Y
        for item in rng.choice(X + Y, per_user, replace=False):
            users.append(f"u{u}")
            items.append(str(item))
            values.append(float(rng.choice([4, 5]) if item in home else rng.choice([1, 2])))
    users += ["mixed"] * len(LOVED)
    items += LOVED
    values += [5.0] * len(LOVED)
    titles = pd.DataFrame({"item": X + Y, "title": [f"Opera {k}" for k in range(15)] + [f"Drama {k}" for k in range(15)]})
    ratings = Ratings.from_arrays(np.array(users), np.array(items), np.array(values), source="planted")
    return dataclasses.replace(ratings, item_info=titles.set_index("item"))


def group(item: str) -> str:
    return item[0]


def _rating_model(**model) -> Recommender:
    config = Config(model={"kind": "autorec", "hidden": [16], "l2": 1.0, **model},
                    train={"epochs": 6, "lbfgs_iterations": 10})
    with single_thread():
        return Recommender(config=config).fit(planted_mixed())


@pytest.fixture(scope="module")
def data() -> Ratings:
    return planted_mixed()


@pytest.fixture(scope="module")
def rating_model() -> Recommender:
    return _rating_model()


@pytest.fixture(scope="module")
def ease(data) -> ImplicitRecommender:
    with single_thread():
        return ImplicitRecommender("ease").fit(data)


@pytest.fixture(scope="module")
def multdae(data) -> ImplicitRecommender:
    with single_thread():
        return ImplicitRecommender("multdae", hidden=[32], epochs=60, seed=0).fit(data)


def assert_explained_by_own_group(frame: pd.DataFrame) -> None:
    """Every recommended item has reasons, and all of them are of the item's group."""
    assert {"because", "because_detail"} <= set(frame.columns)
    groups = {group(i) for i in frame["item"]}
    assert groups == {"x", "y"}, frame  # both groups are recommended: the test can fail
    for item, because in zip(frame["item"], frame["because"]):
        assert because, f"{item} has no reason"
        assert all(group(b) == group(item) for b in because), (item, because)
        assert set(because) <= set(LOVED)


# ----------------------------------------------------------------------------- planted answers
@pytest.mark.parametrize("orientation", ["item", "user"])
def test_rating_models_explain_by_the_items_group(orientation, rating_model):
    model = rating_model if orientation == "item" else _rating_model(orientation="user")
    assert_explained_by_own_group(model.recommend("mixed", n=8, explain=True))
    new = model.recommend_new({**dict.fromkeys(X[:4], 5.0), **dict.fromkeys(Y[:4], 5.0)}, n=8, explain=True)
    assert_explained_by_own_group(new)


@pytest.mark.parametrize("kind", ["ease", "multdae"])
def test_implicit_models_explain_by_the_items_group(kind, request):
    model = request.getfixturevalue(kind)
    assert_explained_by_own_group(model.recommend("mixed", n=8, explain=True))
    assert_explained_by_own_group(model.recommend_new(X[:4] + Y[:4], n=8, explain=True))


def test_detail_records_name_rating_title_and_a_positive_contribution(rating_model):
    frame = rating_model.recommend("mixed", n=5, explain=True, explain_top=2)
    for because, detail in zip(frame["because"], frame["because_detail"]):
        assert 1 <= len(detail) <= 2
        assert [d["item"] for d in detail] == because
        contributions = [d["contribution"] for d in detail]
        assert all(c > 0 for c in contributions) and contributions == sorted(contributions, reverse=True)
        assert all(d["rating"] == 5.0 for d in detail)
        assert all(d["title"] == ("Opera " if d["item"][0] == "x" else "Drama ") + d["item"][1:] for d in detail)


def test_a_disliked_item_is_never_a_reason(rating_model):
    # A low rating of a y item predicts liking x items (a positive share), but it is no "liked".
    frame = rating_model.recommend_new({"x0": 5.0, "y0": 1.0, "y1": 1.0}, n=5, explain=True)
    assert all(b == ["x0"] for b in frame["because"] if b), frame
    assert any(frame["because"])


# ----------------------------------------------------------------------------- faithfulness
def test_fold_in_shares_add_up_to_the_prediction(rating_model):
    fold_in = rating_model.read_.fold_in
    idx = rating_model.items_.index(["x0", "x1", "y3"])
    values = np.array([5.0, 4.0, 2.0])
    targets = np.arange(len(rating_model.items_))
    shares = fold_in.contributions(idx, values, targets)  # (n_items, 3)
    choice = fold_in.choice
    mean = fold_in.means[choice.prior[1 if len(idx) == 1 else 2]]
    # The default autorec output is the identity: shares sum to prediction - prior mean, exactly.
    np.testing.assert_allclose(shares.sum(1) + mean, rating_model.new_user_scores(idx, values), atol=1e-9)


def test_ease_shares_are_its_weights_and_add_up_to_the_score(ease):
    u = int(ease.users_.index(["mixed"])[0])
    targets = np.arange(len(ease.items_))
    liked, _, shares = ease._known_contributions(u, targets)
    np.testing.assert_allclose(shares.sum(1), ease.known_user_scores(u), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(shares, ease.ease_[torch.from_numpy(liked)].T.double().numpy(), atol=0)


def test_network_shares_are_leave_one_out_changes(multdae):
    given = multdae.items_.index(X[:3] + Y[:2])
    targets = multdae.items_.index(["x7", "y9"])
    liked, _, shares = multdae._new_contributions(given, None, targets)

    def log_share(items):
        return torch.log_softmax(torch.from_numpy(multdae.new_user_scores(items)), 0).numpy()[targets]

    full = log_share(given)
    for j, item in enumerate(liked):
        np.testing.assert_allclose(shares[:, j], full - log_share(given[given != item]), atol=1e-5)


# ----------------------------------------------------------------------------- bad input and no change
@pytest.mark.parametrize("kwargs", [{"explain": "yes"}, {"explain": 1}, {"explain": True, "explain_top": 0},
                                    {"explain": True, "explain_top": True}, {"explain": True, "explain_top": 1.5}])
def test_bad_explain_arguments_are_named(rating_model, ease, kwargs):
    for model in (rating_model, ease):
        with pytest.raises(DataError, match="explain"):
            model.recommend("mixed", n=3, **kwargs)
    with pytest.raises(DataError, match="explain"):
        rating_model.recommend_new({"x0": 5.0}, n=3, **kwargs)


def test_unknown_user_is_refused_as_before(rating_model):
    with pytest.raises(DataError, match="nobody"):
        rating_model.recommend("nobody", n=3, explain=True)


def test_without_explain_the_lists_are_unchanged(rating_model, ease):
    for model in (rating_model, ease):
        plain = model.recommend("mixed", n=6)
        explained = model.recommend("mixed", n=6, explain=True)
        assert "because" not in plain.columns
        pd.testing.assert_frame_equal(plain, explained.drop(columns=["because", "because_detail"]))


def test_a_model_without_a_reason_gives_empty_lists(data):
    with single_thread():
        popularity = ImplicitRecommender("popularity").fit(data)
    frame = popularity.recommend("mixed", n=4, explain=True)
    assert frame["because"].tolist() == [[]] * 4
    cold = popularity.recommend_new([], n=3, explain=True)
    assert cold["because"].tolist() == [[]] * 3


# ----------------------------------------------------------------------------- command line
@pytest.fixture(scope="module")
def model_dir(rating_model, tmp_path_factory):
    return rating_model.save(tmp_path_factory.mktemp("explain") / "m")


def _cli(*args):
    from typer.testing import CliRunner

    from aerec.cli import app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_json_has_a_because_list(model_dir):
    r = _cli("recommend", model_dir, "--user", "mixed", "-n", "6", "--explain", "--explain-top", "2", "--json")
    assert r.exit_code == 0, r.output
    recs = json.loads(r.stdout)["recommendations"]
    for rec in recs:
        assert 1 <= len(rec["because"]) <= 2
        for b in rec["because"]:
            assert set(b) == {"item_id", "title", "rating", "contribution"}
            assert group(b["item_id"]) == group(rec["item_id"]) and b["contribution"] > 0 and b["rating"] == 5.0
    plain = json.loads(_cli("recommend", model_dir, "--user", "mixed", "-n", "6", "--json").stdout)
    assert all("because" not in rec for rec in plain["recommendations"])


def test_cli_table_has_a_because_column_for_new_users_too(model_dir):
    r = _cli("recommend", model_dir, "--ratings", "x0=5,x1=5,y0=5,y1=4", "-n", "4", "--explain")
    assert r.exit_code == 0, r.output
    assert "because you liked" in r.stdout
    assert "Opera 0 (5)" in r.stdout and "Drama 0 (5)" in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--user", "mixed", "--explain", "--explain-top", "0"], "--explain-top must be a positive"),
    (["--user", "mixed", "--explain-top", "2"], "--explain-top goes with --explain"),
    (["--all-users", "--out", "recs.csv", "--explain"], "--explain goes with one user's list"),
    (["--user", "nobody", "--explain"], "unknown user"),
])
def test_cli_bad_explain_flags_exit_2(model_dir, args, message):
    r = _cli("recommend", model_dir, *args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())


# ----------------------------------------------------------------------------- every family
FAMILIES = [
    (Recommender, {"kind": "sae", "hidden": [8]}),
    (Recommender, {"kind": "deep", "hidden": [16, 8, 16], "code_dropout": 0.0}),
    (Recommender, {"kind": "dae", "hidden": [16]}),
    (Recommender, {"kind": "sparse", "hidden": [16]}),
    (ImplicitRecommender, {"kind": "multvae", "hidden": [16]}),
    (ImplicitRecommender, {"kind": "cdae", "hidden": 16}),
    (ImplicitRecommender, {"kind": "recvae", "hidden": 32, "latent": 8}),
]


@pytest.mark.parametrize("estimator, model", FAMILIES, ids=[m["kind"] for _, m in FAMILIES])
def test_every_family_explains_with_the_users_liked_items(estimator, model, data, tmp_path):
    config = Config(model=model, train={"epochs": 3})
    with single_thread():
        fitted = estimator(config=config).fit(data)
    for frame in (fitted.recommend("mixed", n=5, explain=True, explain_top=2),
                  fitted.recommend_new({item: 5.0 for item in LOVED[:3] + LOVED[5:8]}, n=5, explain=True)):
        assert len(frame) == 5 and frame["because"].map(len).max() >= 1
        for because, detail in zip(frame["because"], frame["because_detail"]):
            assert set(because) <= set(LOVED) and [d["item"] for d in detail] == because
            shares = [d["contribution"] for d in detail]
            assert all(s > 0 for s in shares) and shares == sorted(shares, reverse=True)
    again = type(fitted).load(fitted.save(tmp_path / "m")).recommend("mixed", n=5, explain=True)
    assert again["because"].tolist() == fitted.recommend("mixed", n=5, explain=True)["because"].tolist()


def test_like_dislike_data_explains_by_the_likes():
    from aerec.testing import planted_ratings

    planted = planted_ratings(binary=True)
    config = Config(model={"kind": "autorec", "hidden": [16], "l2": 1.0}, train={"epochs": 4, "lbfgs_iterations": 10})
    with single_thread():
        model = Recommender(config=config).fit(planted.train)
    frame = model.recommend_new({planted.x_items[0]: 1.0, planted.x_items[1]: 1.0, planted.y_items[0]: 0.0}, n=4,
                                explain=True)
    reasons = {b for because in frame["because"] for b in because}
    assert reasons and reasons <= {planted.x_items[0], planted.x_items[1]}  # a dislike (0) is never a reason


# ----------------------------------------------------------------------------- MovieLens
@pytest.mark.slow
def test_movielens_reasons_matter_more_than_random_liked_items(ml100k_dir):
    """The deletion test of benchmarks/explanations.py, small: EASE on u1.base, 40 users give 15
    of their positives each; taking an item's 3 reasons out of the input lowers its score more
    than taking out 3 random liked items (measured: 100 % of 2,000 items, docs/explanations.md)."""
    from aerec import read_ratings

    with single_thread():
        model = ImplicitRecommender("ease").fit(read_ratings(ml100k_dir / "u1.base"))
    rng = np.random.default_rng(0)
    liked_rows = [model.rated_items(u) for u in range(len(model.users_))]
    users = rng.permutation([u for u, row in enumerate(liked_rows) if len(row) >= 15])[:40]
    wins, out_why, out_random = [], [], []
    for u in users:
        given = rng.choice(liked_rows[u], 15, replace=False)
        scores = model.new_user_scores(given)
        top = model.rank_items(scores, given, 10)[0]
        for t, reasons in zip(top, model.because(top, given=(given, None), top=3)):
            why = model.items_.index([r["item"] for r in reasons])
            other = rng.choice(np.setdiff1d(given, why), len(why), replace=False)
            without = [model.new_user_scores(np.setdiff1d(given, removed)) for removed in (why, other)]
            wins.append(without[0][t] < without[1][t])
            out_why.append(t not in model.rank_items(without[0], given, 10)[0])
            out_random.append(t not in model.rank_items(without[1], given, 10)[0])
    assert len(wins) == 400 and np.mean(wins) >= 0.95, np.mean(wins)
    assert np.mean(out_why) > 3 * np.mean(out_random), (np.mean(out_why), np.mean(out_random))


def test_cli_explains_an_implicit_models_new_user(ease, tmp_path):
    directory = ease.save(tmp_path / "ease")
    r = _cli("recommend", directory, "--items", "x0,x1,x2,y0,y1,y2", "-n", "4", "--explain", "--json")
    assert r.exit_code == 0, r.output
    for rec in json.loads(r.stdout)["recommendations"]:
        assert rec["because"] and all(b["rating"] is None and group(b["item_id"]) == group(rec["item_id"])
                                      for b in rec["because"])
    table = _cli("recommend", directory, "--user", "mixed", "-n", "2", "--explain")
    assert table.exit_code == 0 and "because you liked" in table.stdout and "Opera" in table.stdout


def test_many_ratings_take_the_woodbury_path_to_the_same_shares():
    from aerec.foldin import _gram_solve

    rng = np.random.default_rng(0)
    k, d = 40, 5  # k > 2 (d + 1): the Woodbury form
    f_k = rng.normal(size=(k, d))
    cov = np.cov(rng.normal(size=(50, d)), rowvar=False)
    rhs = rng.normal(size=(k, 7))
    direct = np.linalg.solve(0.7 * (f_k @ cov @ f_k.T) + 0.3 + 0.5 * np.eye(k), rhs)
    np.testing.assert_allclose(_gram_solve(f_k, f_k @ cov, 0.7, 0.3, 0.5, rhs), direct, atol=1e-9)
    np.testing.assert_allclose(_gram_solve(f_k[:10], f_k[:10] @ cov, 0.7, 0.3, 0.5, rhs[:10]),
                               np.linalg.solve(0.7 * (f_k[:10] @ cov @ f_k[:10].T) + 0.3 + 0.5 * np.eye(10), rhs[:10]))
