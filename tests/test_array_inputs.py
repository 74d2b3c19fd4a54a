"""Inputs from the scientific stack: a SciPy sparse matrix (stored entries are ratings, an
explicit 0 included) or a dense NumPy array (NaN is missing) wherever ratings are taken, with
the row and column positions as the user and item ids; bad arrays are DataErrors that say why."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from aerec import BiasModel, DataError, Ratings, RatingScale, Recommender, cross_validate, evaluate_ratings
from aerec.data.checks import as_ratings
from aerec.data.synthetic import synthetic_ratings
from aerec.implicit import ImplicitRecommender
from aerec.testing import single_thread

SMALL = {"hidden": [8], "epochs": 3, "seed": 0, "threads": 1}


def _as_sparse(r: Ratings) -> tuple[sp.csr_array, pd.DataFrame]:
    """A CSR array of ``r`` with integer-position ids, and the same ratings as a frame."""
    f = r.frame
    users = pd.factorize(f["user"], sort=True)[0]
    items = pd.factorize(f["item"], sort=True)[0]
    m = sp.csr_array((f["rating"].to_numpy(), (users, items)), shape=(users.max() + 1, items.max() + 1))
    return m, pd.DataFrame({"user": users, "item": items, "rating": f["rating"].to_numpy()})


@pytest.fixture(scope="module")
def data():
    return _as_sparse(synthetic_ratings(1_500, n_users=60, n_items=40, seed=0))


def test_a_sparse_matrix_fits_like_the_same_dataframe(data):
    m, frame = data
    u, i = frame["user"].to_numpy()[:20], frame["item"].to_numpy()[:20]
    with single_thread():
        from_sparse = Recommender("autorec", **SMALL).fit(m)
        from_frame = Recommender("autorec", **SMALL).fit(frame.sample(frac=1.0, random_state=1))
        from_coo = Recommender("autorec", **SMALL).fit(sp.coo_matrix(m))  # the spmatrix classes too
    assert list(from_sparse.users_.labels) == list(range(m.shape[0]))
    np.testing.assert_allclose(from_sparse.predict(u, i), from_frame.predict(u, i), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(from_coo.predict(u, i), from_frame.predict(u, i), rtol=1e-5, atol=1e-5)
    assert isinstance(from_sparse.predict(u, i), np.ndarray)
    metrics = evaluate_ratings(from_sparse, m, k=None)  # evaluation takes the matrix too
    assert metrics["n"] == m.nnz


def test_cross_validate_takes_a_sparse_matrix(data):
    m, _ = data
    config = {"model": {"kind": "autorec", "hidden": [8]}, "train": {"epochs": 2}, "run": {"threads": 1}}
    with single_thread():
        result = cross_validate(m, folds=2, config=config)
    assert sum(f["n_test"] for f in result.folds) == m.nnz and np.isfinite(result.mean["rmse"])


def test_explicit_zeros_are_ratings_on_a_0_to_5_scale():
    # 5 stored entries, two of them an explicit 0: a user who gave 0 stars
    m = sp.csr_array(([5.0, 0.0, 3.0, 0.0, 4.0], ([0, 0, 0, 1, 1], [0, 1, 2, 0, 1])), shape=(2, 3))
    assert m.nnz == 5 and m.count_nonzero() == 3
    r = as_ratings(m)
    assert len(r) == m.nnz and (r.frame["rating"] == 0).sum() == 2
    assert (r.scale.low, r.scale.high, r.scale.step) == (0, 5, 1)
    m.eliminate_zeros()
    assert len(as_ratings(m)) == 3 and as_ratings(m).scale.low == 3  # without zeros: 3..5 inferred
    declared = Ratings.from_sparse(m, scale=RatingScale(0, 5, 1))
    assert declared.scale == RatingScale(0, 5, 1)
    with pytest.raises(DataError, match="outside the scale"):  # a declared scale is enforced
        Ratings.from_sparse(sp.csr_array(np.array([[0.0, 6.0]])), scale=RatingScale(0, 5, 1))


def test_a_dense_array_with_nan_for_missing():
    a = np.array([[5.0, np.nan, 0.0], [np.nan, 4.0, 1.0], [2.0, np.nan, np.nan]])
    r = as_ratings(a)
    assert len(r) == 5 and r.scale == RatingScale(0, 5, 1)
    got = {(int(x.user), int(x.item)): float(x.rating) for x in r.frame.itertuples()}
    assert got == {(0, 0): 5.0, (0, 2): 0.0, (1, 1): 4.0, (1, 2): 1.0, (2, 0): 2.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)  # NumPy frowns on np.matrix
        assert as_ratings(np.asmatrix(a)).frame.equals(r.frame)  # np.matrix reads the same
    ints = as_ratings(np.array([[1, 2], [3, 0]]))  # no NaN possible: every cell is a rating
    assert len(ints) == 4 and ints.scale == RatingScale(0, 3, 1)
    dense = np.full((12, 8), np.nan)
    rng = np.random.default_rng(0)
    cells = rng.random(dense.shape) < 0.6
    dense[cells] = rng.integers(1, 6, cells.sum())
    with single_thread():
        model = Recommender("autorec", **SMALL).fit(dense)
        bias = BiasModel().fit(dense)
    assert model.predict([0, 11], [0, 7]).shape == (2,)
    assert bias.user_bias_.shape == (12,) and bias.item_bias_.shape == (8,)  # positions = row / column


@pytest.mark.parametrize(("bad", "words"), [
    (np.array([1.0, 2.0, np.nan]), "2-D"),
    (np.zeros((2, 2, 2)), "2-D"),
    (np.full((3, 4), np.nan), "no ratings"),
    (np.empty((0, 3)), "no ratings"),
    (np.array([[1.0, np.inf], [np.nan, 2.0]]), "infinite rating at row 0, column 1"),
    (np.array([["a", "b"], ["c", "d"]]), "not numbers"),
    (np.array([[1 + 1j, 2]]), "not numbers"),
    (sp.csr_array((3, 4)), "stores no ratings"),
    (sp.csr_array(np.array([[1.0, np.nan]])), "non-finite rating at row 0, column 1"),
    (sp.csr_array(np.array([[1.0, np.inf]])), "non-finite rating at row 0, column 1"),
    (sp.coo_array(([4.0, 5.0], ([0, 0], [1, 1])), shape=(2, 2)), "duplicate"),  # COO would sum them
    (sp.coo_array(np.array([1.0, 2.0])), "2-D"),
])
def test_bad_arrays_name_the_problem_and_the_fix(bad, words):
    with pytest.raises(DataError, match=words) as err:
        as_ratings(bad)
    assert err.value.fix


def test_negative_sparse_shapes_are_refused():
    with pytest.raises((DataError, ValueError)):  # SciPy itself refuses to build one
        as_ratings(sp.csr_array((-1, 3)))


def test_fit_says_what_it_takes():
    with pytest.raises(DataError, match="SciPy sparse matrix or a 2-D NumPy array"):
        Recommender("autorec", **SMALL).fit([[1, 2], [3, 4]])


def test_implicit_recommender_on_a_0_1_sparse_matrix():
    rng = np.random.default_rng(0)
    likes = (rng.random((40, 25)) < 0.3).astype(np.float32)
    likes[:5, 24] = 0.0
    rows, cols = np.nonzero(likes)
    # dislikes stored as explicit zeros (rated, not liked) beside the likes
    m = sp.csr_array((np.r_[likes[rows, cols], np.zeros(5)], (np.r_[rows, np.arange(5)], np.r_[cols, np.full(5, 24)])),
                     shape=likes.shape)
    assert m.nnz == len(rows) + 5
    with single_thread():
        model = ImplicitRecommender("multdae", hidden=[8], epochs=2, seed=0, threads=1).fit(m)
    assert model.threshold_ == 1
    top = model.recommend(0, n=5)
    assert len(top) == 5 and set(top["item"]).isdisjoint(np.flatnonzero(likes[0]))


def test_recommendations_as_a_numpy_array(data):
    m, _ = data
    with single_thread():
        model = Recommender("autorec", **SMALL).fit(m)
    users = [3, 0, 4, 3]  # in this order, one twice; user 0 rated every item
    grid = model.recommend_batch(users, n=5, as_array=True)
    assert isinstance(grid, np.ndarray) and grid.shape == (4, 5) and grid.dtype == np.int64
    for row, u in zip(grid, users, strict=True):
        assert row[row >= 0].tolist() == model.recommend(u, n=5)["item"].tolist()
    assert (grid[1] == -1).all() and (grid[0] >= 0).all() and (grid[0] == grid[3]).all()
    everyone = model.recommend_batch(n=2, as_array=True, chunk=7)
    assert everyone.shape == (m.shape[0], 2)
    # more than the catalogue: padded with -1 where nothing is left to recommend
    padded = model.recommend_batch([3], n=m.shape[1], as_array=True)[0]
    unrated = m.shape[1] - m[[3]].nnz
    assert (padded[:unrated] >= 0).all() and (padded[unrated:] == -1).all()


def test_recommendations_as_an_array_for_text_ids_and_implicit_models():
    rng = np.random.default_rng(1)
    likes = rng.random((30, 12)) < 0.4
    u, i = np.nonzero(likes)
    frame = pd.DataFrame({"user": [f"u{x}" for x in u], "item": [f"i{x}" for x in i]})  # events
    with single_thread():
        model = ImplicitRecommender("multdae", hidden=[8], epochs=2, seed=0, threads=1).fit(frame)
    grid = model.recommend_batch(["u0", "u1"], n=20, as_array=True)
    assert grid.shape == (2, 20) and grid.dtype == object
    assert grid[0][grid[0] != None].tolist() == model.recommend("u0", n=20)["item"].tolist()  # noqa: E711
    assert None in grid[0]  # fewer than 20 unliked items: padded with None
