"""The built-in offline datasets: the toy like/dislike matrix and the MovieLens-like synthetic ratings."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings
from aerec.data.scale import RatingScale
from aerec.data.synthetic import (
    _alias_table,
    _Generator,
    noise_floor,
    rating_moments,
    synthetic_matrix,
    synthetic_matrix_with_info,
    synthetic_ratings,
    synthetic_sizes,
    toy_ratings,
)
from aerec.errors import ConfigError

# The matrix of docs/architecture.md, typed out again here so the test does not trust the module's own copy.
TOY = [
    "1 0 . 1 1 1",
    "0 1 0 0 1 0",
    "1 1 0 0 0 .",
    "1 0 1 1 0 1",
    "0 . 1 1 . 1",
    "0 0 0 0 1 .",
    "1 0 1 1 0 1",
    "0 1 1 . 0 1",
    "0 1 1 1 1 .",
    "1 . 0 0 . 0",
    "0 1 1 1 0 1",
]


# ----------------------------------------------------------------------------- toy
def test_toy_matrix_is_design_example_with_zeros_observed():
    r = toy_ratings()
    assert r.scale == RatingScale(0, 1, 1)
    assert len(r) == 57  # 66 cells, 9 blanks
    m = RatingMatrix.from_ratings(r)
    assert m.shape == (11, 6) and m.nnz == 57
    zeros = 0
    for u, line in enumerate(TOY, start=1):
        row = m.users.index([f"User {u}"])[0]
        for i, cell in enumerate(line.split(), start=1):
            col = m.items.index([f"M{i}"])[0]
            if cell == ".":
                assert not m.observed(row, col), (u, i)
            else:
                assert m.observed(row, col), (u, i)
                assert m.csr[[row], [col]][0] == float(cell)
                zeros += cell == "0"
    assert zeros == 25  # counted by hand from the matrix above
    assert int((m.csr.data == 0).sum()) == zeros  # the dislikes are stored, not dropped


# ----------------------------------------------------------------------------- sizes and validity
@pytest.fixture(scope="module")
def small() -> Ratings:
    return synthetic_ratings(30_000, seed=3)


def test_exact_count_distinct_pairs_and_valid(small):
    f = small.frame
    assert len(f) == 30_000
    assert not f.duplicated(["user", "item"]).any()
    n_users, n_items = synthetic_sizes(30_000)
    assert small.n_users == n_users == small.meta["n_users"]  # every user rates something
    assert small.n_items == small.meta["n_items_rated"] <= n_items == small.meta["n_items"]
    assert f["user"].min() >= 1 and f["user"].max() <= n_users
    assert f["item"].min() >= 1 and f["item"].max() <= n_items
    # The table passes the same validation as a file would.
    assert len(Ratings.from_frame(f, scale=small.scale)) == len(f)
    assert f["timestamp"].dtype == np.int64 and f["timestamp"].min() >= 946_684_800


def test_default_sizes_look_like_movielens():
    assert synthetic_sizes(100_000) == (943, 1682)  # ML-100K's shape
    u, i = synthetic_sizes(10**8)
    assert 9e5 < u < 1.1e6 and i > 100_000
    for n in (500, 5_000, 50_000):
        u, i = synthetic_sizes(n)
        assert n / (u * i) <= 0.3 + 1e-9


def test_movielens_like_histogram_and_skew():
    r = synthetic_ratings(100_000)
    values = r.frame["rating"].to_numpy()
    assert set(np.unique(values)) <= {1, 2, 3, 4, 5}
    share = {v: float((values == v).mean()) for v in (1, 2, 3, 4, 5)}
    assert 3.4 < values.mean() < 3.65
    assert share[3] + share[4] > 0.55 and share[1] < share[2] < share[3] < share[4]
    items = np.sort(r.frame["item"].value_counts().to_numpy())[::-1]
    assert items[: len(items) // 10].sum() / len(values) > 0.35  # top 10% of items
    users = r.frame["user"].value_counts().to_numpy()
    assert users.min() == r.meta["model"]["min_per_user"] == 20
    assert users.max() > 8 * np.median(users)  # a heavy tail of busy raters


@pytest.mark.parametrize("scale", [RatingScale(0.5, 5, 0.5), RatingScale(0, 1, 1), RatingScale(1, 10, 1), RatingScale(-2, 2, 0)])
def test_scale_respected(scale):
    r = synthetic_ratings(5_000, scale=scale, seed=1)
    v = r.frame["rating"].to_numpy(dtype=np.float64)
    assert r.scale == scale
    assert v.min() >= scale.low and v.max() <= scale.high
    if scale.step:
        assert np.isin(v, scale.levels.astype(np.float32)).all()
        assert len(np.unique(v)) == len(scale.levels)  # every level is used
    else:
        assert len(np.unique(v)) > 1000


def test_explicit_sizes_and_heavy_users():
    # 10 users x 400 items, 300 ratings each: every user is over the heavy threshold (1/8 of
    # the catalogue), so this exercises the Gumbel top-k path.
    r = synthetic_ratings(3_000, n_users=10, n_items=400, seed=5)
    counts = r.frame["user"].value_counts()
    assert len(r) == 3_000 and len(counts) == 10
    assert not r.frame.duplicated(["user", "item"]).any()
    # A completely full matrix is possible too.
    full = synthetic_ratings(50, n_users=5, n_items=10)
    assert len(full) == 50 and full.n_items == 10


def test_popular_items_get_more_ratings_on_both_sampling_paths():
    # Light users (draw-and-skip) and heavy users (Gumbel top-k) sample from the same law:
    # item counts on each path follow the same popularity.
    gen = _Generator(60_000, 200, 2_000, 8, 0.6, RatingScale(1, 5, 1), 0, 2_000_000)
    part = next(gen.chunks())
    heavy_users = np.flatnonzero(gen.counts > 2_000 / 8)
    assert 0 < len(heavy_users) < 200
    is_heavy = np.isin(part["user"], heavy_users)
    order = np.argsort(-gen.log_w)
    top, bottom = order[:200], order[-1000:]
    for mask in (is_heavy, ~is_heavy):
        items = part["item"][mask]
        rate_top = np.isin(items, top).mean() / 200
        rate_bottom = np.isin(items, bottom).mean() / 1000
        assert rate_top > 3 * rate_bottom


def test_alias_table_samples_the_weights():
    w = np.array([5.0, 1.0, 0.0, 3.0, 0.5, 10.0, 0.5])
    prob, alias = _alias_table(w)
    x = np.random.default_rng(0).random(400_000) * len(w)
    j = x.astype(np.int64)
    drawn = np.where(x - j < prob[j], j, alias[j])
    freq = np.bincount(drawn, minlength=len(w)) / len(drawn)
    np.testing.assert_allclose(freq, w / w.sum(), atol=0.003)
    assert freq[2] == 0


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_same_data_and_other_seed_differs(small):
    again = synthetic_ratings(30_000, seed=3)
    pd.testing.assert_frame_equal(small.frame, again.frame)
    assert again.meta == small.meta
    other = synthetic_ratings(30_000, seed=4)
    assert not small.frame["rating"].equals(other.frame["rating"])


def test_chunk_size_does_not_change_the_data(small):
    tiny_chunks = synthetic_ratings(30_000, seed=3, chunk_ratings=1)  # one block per chunk
    pd.testing.assert_frame_equal(small.frame, tiny_chunks.frame)
    assert tiny_chunks.meta["noise_floor_rmse"] == pytest.approx(small.meta["noise_floor_rmse"], rel=1e-12)


def test_matrix_equals_ratings_built_matrix(small):
    m, info = synthetic_matrix_with_info(30_000, seed=3, chunk_ratings=7_000)
    ref = RatingMatrix.from_ratings(small)
    assert m.shape == ref.shape and m.users == ref.users and m.items == ref.items
    for a in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(m.csr, a), getattr(ref.csr, a))
    np.testing.assert_array_equal(m.timestamps, ref.timestamps)
    assert m.scale == small.scale
    assert info.noise_floor_rmse == pytest.approx(small.meta["noise_floor_rmse"], rel=1e-12)
    assert info.meta["n_ratings"] == 30_000 and info.meta["seed"] == 3
    assert json.loads(json.dumps(info.meta)) == info.meta == small.meta  # JSON-ready, the same facts
    assert synthetic_matrix(30_000, seed=3).fingerprint() == m.fingerprint()


# ----------------------------------------------------------------------------- the noise floor
@pytest.mark.parametrize("scale", [RatingScale(1, 5, 1), RatingScale(0.5, 5, 0.5), RatingScale(1, 5, 0)])
def test_rating_moments_match_monte_carlo(scale):
    rng = np.random.default_rng(0)
    noise = 0.7
    for c in (0.2, 1.3, 3.49, 4.8, 6.0):
        x = c + noise * rng.standard_normal(400_000)
        if scale.step:
            r = scale.low + scale.step * np.clip(np.round((x - scale.low) / scale.step), 0, len(scale.levels) - 1)
        else:
            r = np.clip(x, scale.low, scale.high)
        mean, var = rating_moments(np.array([c]), noise, scale)
        assert mean[0] == pytest.approx(r.mean(), abs=0.005)
        assert var[0] == pytest.approx(r.var(), abs=0.006)


def test_noise_floor_is_what_an_oracle_gets():
    gen = _Generator(60_000, None, None, 8, 0.6, RatingScale(1, 5, 1), 7, 2_000_000)
    parts = list(gen.chunks(with_clean=True))
    clean = np.concatenate([p["clean"] for p in parts])
    rating = np.concatenate([p["rating"] for p in parts]).astype(np.float64)
    floor = gen.meta()["noise_floor_rmse"]
    assert floor == pytest.approx(noise_floor(clean, 0.6, RatingScale(1, 5, 1)), rel=1e-9)
    oracle, _ = rating_moments(clean, 0.6, RatingScale(1, 5, 1))  # E[r | clean]
    rmse = float(np.sqrt(np.mean((rating - oracle) ** 2)))
    assert rmse == pytest.approx(floor, rel=0.02)
    # Knowing the clean value but rounding it is worse than the Bayes-optimal mean.
    rounded = np.clip(np.round(clean), 1, 5)
    assert np.sqrt(np.mean((rating - rounded) ** 2)) > rmse
    # On 1..5 steps, rounding adds about step^2 / 12 to noise^2 and clipping takes some off.
    assert 0.5 < floor < np.sqrt(0.6**2 + 1 / 12)


def test_noise_floor_below_noise_on_continuous_scale_and_zero_without_noise():
    r = synthetic_ratings(5_000, scale=RatingScale(1, 5, 0), noise=0.6)
    assert 0 < r.meta["noise_floor_rmse"] < 0.6  # clipping only shrinks the spread
    assert synthetic_ratings(5_000, noise=0.0).meta["noise_floor_rmse"] == 0.0
    # Twice the noise, a higher floor.
    assert synthetic_ratings(5_000, noise=1.2).meta["noise_floor_rmse"] > synthetic_ratings(5_000).meta["noise_floor_rmse"]


# ----------------------------------------------------------------------------- choosing by taste
def test_taste_zero_leaves_the_data_as_it_was(small):
    pd.testing.assert_frame_equal(small.frame, synthetic_ratings(30_000, seed=3, taste=0.0).frame)
    assert small.meta["taste"] == 0.0


def test_taste_makes_users_pick_what_they_like_and_rate_it_higher():
    base = synthetic_ratings(30_000, seed=3)
    picky = synthetic_ratings(30_000, seed=3, taste=1.0)
    assert len(picky.frame) == 30_000 and not picky.frame.duplicated(["user", "item"]).any()
    assert picky.meta["taste"] == 1.0 and "taste=1" in picky.source
    # Same users and activity (counts come first and do not read taste); other items.
    assert (picky.frame.groupby("user").size() == base.frame.groupby("user").size()).all()
    assert not picky.frame["item"].equals(base.frame["item"])
    # Picked for their affinity, the items rate higher: 3.53 -> 3.91 at 10^5 (module doc).
    assert picky.frame["rating"].mean() - base.frame["rating"].mean() > 0.25


def test_taste_data_does_not_depend_on_the_chunk_size():
    whole = synthetic_ratings(30_000, seed=3, taste=1.0)
    pieces = synthetic_ratings(30_000, seed=3, taste=1.0, chunk_ratings=1)
    pd.testing.assert_frame_equal(whole.frame, pieces.frame)
    m = synthetic_matrix(30_000, seed=3, taste=1.0, chunk_ratings=7_000)
    ref = RatingMatrix.from_ratings(whole)
    assert m.shape == ref.shape and (m.csr != ref.csr).nnz == 0


# ----------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"n_ratings": 100, "n_users": 5, "n_items": 10}, r"n_users \* n_items"),
        ({"n_ratings": 0}, "n_ratings"),
        ({"n_ratings": 1000, "noise": -1.0}, "noise"),
        ({"n_ratings": 1000, "rank": -1}, "rank"),
        ({"n_ratings": 1000, "chunk_ratings": 0}, "chunk_ratings"),
        ({"n_ratings": 1000, "taste": -0.5}, "taste must be a finite number >= 0"),
        ({"n_ratings": 1000, "taste": float("nan")}, "taste"),
        ({"n_ratings": 1000, "taste": True}, "taste"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        synthetic_ratings(**kwargs)


def test_a_table_larger_than_the_free_memory_is_refused_before_it_is_built(monkeypatch):
    from aerec.data import synthetic
    from aerec.errors import ConfigError

    from aerec import _memory

    monkeypatch.setattr(_memory, "available_memory", lambda: 50 * synthetic.FRAME_BYTES_PER_RATING)
    with pytest.raises(ConfigError, match="need about .* GiB .* synthetic_matrix"):
        synthetic.synthetic_ratings(100)
    assert len(synthetic.synthetic_ratings(50)) == 50
    monkeypatch.setattr(_memory, "available_memory", lambda: None)  # not Linux: no check
    assert len(synthetic.synthetic_ratings(100)) == 100
