"""The core data types: scale, vocabulary, validated ratings, the sparse matrix and its batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from aerec import DataError, RatingMatrix, Ratings, RatingScale, Vocabulary
from aerec.data.batches import dense_rows, iter_row_batches, sparse_rows


# ---------------------------------------------------------------- scale
def test_scale_levels_clip_and_parse():
    s = RatingScale(1, 5, 1)
    assert s.levels.tolist() == [1, 2, 3, 4, 5]
    assert s.clip(np.array([0.2, 3.3, 9.0])).tolist() == [1.0, 3.3, 5.0]
    assert RatingScale.parse("0.5:5:0.5") == RatingScale(0.5, 5, 0.5)
    assert RatingScale(0, 1, 1).is_binary
    with pytest.raises(DataError, match="LOW:HIGH"):
        RatingScale.parse("five")
    with pytest.raises(DataError, match="low < high"):
        RatingScale(5, 1)


def test_scale_inference():
    assert RatingScale.infer(np.array([1, 2, 5])) == RatingScale(1, 5, 1)
    assert RatingScale.infer(np.array([0.5, 4.5, 3])) == RatingScale(0.5, 4.5, 0.5)
    assert RatingScale.infer(np.array([0.1, 0.73])).step == 0


# ---------------------------------------------------------------- vocabulary
def test_vocabulary_round_trip_and_unknown_policy():
    v = Vocabulary([30, 10, 20, 10], name="user")
    assert v.labels.tolist() == [10, 20, 30]
    assert v.index([20, 30]).tolist() == [1, 2]
    assert v.index(["20"]).tolist() == [1]  # text that spells an integer id matches
    assert v.index([99, 10], unknown="missing").tolist() == [-1, 0]
    with pytest.raises(DataError, match="unknown user.*99"):
        v.index([99])
    assert Vocabulary.from_list(v.to_list(), name="user") == v
    assert v.label([2, 0]).tolist() == [30, 10]


@pytest.mark.parametrize(
    "query, message",
    [
        (np.array([[10, 20], [30, 10]]), "flat sequence"),  # once read as the text "[10, 20]"
        ([[10, 20], [30]], "flat sequence"),
        ([np.nan], "missing"),
        ([10, None], "missing.*position 1"),
        ([True], "True or False"),
    ],
)
def test_vocabulary_refuses_lookups_that_would_fall_back_silently(query, message):
    v = Vocabulary([30, 10, 20], name="user")
    with pytest.raises(DataError, match=message):
        v.index(query, unknown="missing")


def test_only_decimal_whole_numbers_match_an_integer_vocabulary():
    v = Vocabulary([5, 100])
    assert v.index(["5", " 5 ", "+100", "1e2", "100.0", "0x64"], unknown="missing").tolist() == [0, 0, 1, -1, -1, -1]


def test_vocabulary_string_labels_and_not_contiguous():
    v = Vocabulary(["b", "a", "zz"])
    assert v.to_list() == ["a", "b", "zz"]
    assert v.index(["zz"]).tolist() == [2]
    assert "q" not in v and "a" in v
    with pytest.raises(DataError, match="unknown"):
        v.index(["q"])


@given(st.lists(st.one_of(st.integers(-10**12, 10**12), st.text(min_size=1, max_size=5)), min_size=1, max_size=40))
def test_vocabulary_index_label_inverse(labels):
    v = Vocabulary(labels)
    idx = np.arange(len(v))
    assert v.index(v.label(idx)).tolist() == idx.tolist()
    assert Vocabulary.from_list(v.to_list()) == v


# ---------------------------------------------------------------- ratings
def test_ratings_keep_labels_and_scale():
    r = Ratings.from_arrays(["u1", "u2"], [7, 9], [4, 5], [100, 200], scale=RatingScale(1, 5))
    assert r.frame["rating"].dtype == np.float32
    assert r.has_timestamps and len(r) == 2
    s = r.summary()
    assert (s["users"], s["items"], s["ratings"]) == (2, 2, 2)
    assert s["histogram"] == {"1": 0, "2": 0, "3": 0, "4": 1, "5": 1}


@pytest.mark.parametrize(
    "users, items, ratings, message",
    [
        ([1, 1], [2, 2], [1, 2], "duplicate"),
        ([1, 2], [2, 3], ["x", 2], "not a number"),
        ([1, 2], [2, 3], [1, np.nan], "NaN"),
        ([1, None], [2, 3], [1, 2], "missing user"),
        ([1, 2], [None, 3], [1, 2], "missing item"),
        ([1.5, 2], [2, 3], [1, 2], "whole number"),
    ],
)
def test_ratings_reject_bad_rows(users, items, ratings, message):
    with pytest.raises(DataError, match=message):
        Ratings.from_arrays(users, items, ratings)


def test_file_errors_name_file_and_line():
    frame = pd.DataFrame({"user": [1, 2], "item": [3, 3], "rating": [3.0, 9.0]}, index=[5, 6])
    with pytest.raises(DataError) as info:
        Ratings.from_frame(frame, source="r.csv", scale=RatingScale(1, 5))
    assert "r.csv:6" in str(info.value) and "9.0" in str(info.value) and "Fix:" in str(info.value)


def test_duplicate_policies():
    frame = pd.DataFrame({"user": [1, 1, 2], "item": [3, 3, 3], "rating": [2.0, 4.0, 5.0], "timestamp": [1, 9, 3]})
    last = Ratings.from_frame(frame, duplicates="last").frame
    assert sorted(zip(last.user, last.rating)) == [(1, 4.0), (2, 5.0)]
    mean = Ratings.from_frame(frame, duplicates="mean").frame
    row = mean[mean.user == 1].iloc[0]
    assert (row.rating, row.timestamp) == (3.0, 9)
    kept = Ratings.from_frame(frame, duplicates="keep")  # queries (predict's pairs): every row
    assert len(kept) == 3
    with pytest.raises(DataError, match="duplicate"):
        RatingMatrix.from_ratings(kept)  # but never a matrix to train on


def test_empty_and_missing_columns():
    with pytest.raises(DataError, match="no ratings"):
        Ratings.from_frame(pd.DataFrame({"user": [], "item": [], "rating": []}))
    with pytest.raises(DataError, match="missing column.*rating"):
        Ratings.from_frame(pd.DataFrame({"user": [1], "item": [2]}))


# ---------------------------------------------------------------- matrix
def like_dislike() -> Ratings:
    # A 0 rating is a dislike: it must be an observed cell, not a blank.
    return Ratings.from_arrays([1, 1, 2, 3], ["a", "b", "a", "c"], [0, 1, 1, 0], [5, 6, 7, 8])


def test_zero_is_observed_not_blank():
    m = RatingMatrix.from_ratings(like_dislike())
    assert m.nnz == 4 and m.shape == (3, 3)
    a, b, c = m.items.index(["a", "b", "c"])
    assert m.observed(0, a) and m.csr[0, a] == 0.0
    assert not m.observed(1, b)
    assert m.observed(2, c) and m.csr[2, c] == 0.0
    assert m.user_counts().tolist() == [2, 1, 1]
    assert m.item_counts().tolist() == [2, 1, 1]


def test_item_view_and_round_trip():
    m = RatingMatrix.from_ratings(like_dislike())
    t = m.item_view()
    assert t.shape == (3, 3) and t.nnz == 4
    np.testing.assert_array_equal(t.toarray(), m.csr.toarray().T)
    back = m.to_ratings().frame.sort_values(["user", "item"]).reset_index(drop=True)
    orig = like_dislike().frame.sort_values(["user", "item"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, orig, check_dtype=False)


def test_shared_vocabulary_and_unknown_policy():
    train = Ratings.from_arrays([1, 2], [10, 20], [3, 4])
    test = Ratings.from_arrays([1, 3], [10, 30], [5, 2])
    m = RatingMatrix.from_ratings(train)
    with pytest.raises(DataError, match="unknown user"):
        RatingMatrix.from_ratings(test, users=m.users, items=m.items)
    t = RatingMatrix.from_ratings(test, users=m.users, items=m.items, unknown="drop")
    assert t.shape == m.shape and t.nnz == 1


def test_timestamps_follow_cells_and_select_users():
    m = RatingMatrix.from_ratings(like_dislike())
    frame = m.to_ratings().frame
    assert dict(zip(zip(frame.user, frame.item), frame.timestamp)) == {(1, "a"): 5, (1, "b"): 6, (2, "a"): 7, (3, "c"): 8}
    sub = m.select_users(np.array([2, 0]))
    assert sub.users.to_list() == [3, 1]
    assert sub.timestamps.tolist() == [8, 5, 6]


def test_fingerprint_tracks_values():
    a = RatingMatrix.from_ratings(Ratings.from_arrays([1, 2], [1, 1], [3, 4]))
    b = RatingMatrix.from_ratings(Ratings.from_arrays([1, 2], [1, 1], [3, 5]))
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == RatingMatrix.from_ratings(Ratings.from_arrays([2, 1], [1, 1], [4, 3])).fingerprint()


# ---------------------------------------------------------------- batches
def test_dense_rows_mask_marks_observed_zeros():
    m = RatingMatrix.from_ratings(like_dislike())
    values, mask = dense_rows(m.csr, np.array([2, 0]))
    assert values.shape == (2, 3) and values.dtype == torch.float32
    dense = m.csr.toarray()
    np.testing.assert_array_equal(values.numpy(), dense[[2, 0]])
    np.testing.assert_array_equal(mask.numpy(), [[0, 0, 1], [1, 1, 0]])
    rows, cols, vals = sparse_rows(m.csr, np.array([2, 0]))
    assert rows.tolist() == [0, 1, 1] and vals.tolist() == [0.0, 0.0, 1.0]


@settings(max_examples=30)
@given(st.integers(1, 50), st.integers(1, 17), st.integers(0, 2**31))
def test_row_batches_cover_every_row_once_and_repeat_with_seed(n, batch, seed):
    batches = list(iter_row_batches(n, batch, rng=np.random.default_rng(seed)))
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    assert all(len(b) <= batch for b in batches)
    again = list(iter_row_batches(n, batch, rng=np.random.default_rng(seed)))
    assert all((x == y).all() for x, y in zip(batches, again))


@pytest.mark.parametrize("labels", [[1, 2**63 + 5], [2**64 + 1], [1.0, 1e30], [-(2**63) - 10, 1]])
def test_integer_ids_past_int64_are_refused_not_wrapped(labels):
    with pytest.raises(DataError, match="too large"):
        Vocabulary.from_list(labels)


def test_a_19_digit_id_typed_as_text_finds_its_integer():
    v = Vocabulary([1234567890123456789, 5])
    assert v.index(["1234567890123456789", "9999999999999999999"], unknown="missing").tolist() == [1, -1]
