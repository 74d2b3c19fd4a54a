"""Splits: exact partitions, seeded repeats, protocol invariants, CLI specs, ML-100K files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aerec import ConfigError, DataError, Ratings, RatingScale
from aerec.data.splits import (
    SPEC_FORMS,
    Split,
    canonical_folds,
    canonical_split,
    fold_in_split,
    kfold,
    last_k_split,
    parse_split,
    per_user_split,
    random_split,
    temporal_split,
    user_split,
    validation_split,
)
from tests.conftest import needs_ml100k

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- data
def make_ratings(users, items, values, timestamps=None, *, lines=None) -> Ratings:
    """A Ratings table whose index plays the file's line numbers (shuffled, unique)."""
    scale = RatingScale(0, 5, 1)
    r = Ratings.from_arrays(users, items, values, timestamps, scale=scale, source="mem.tsv")
    frame = r.frame.copy()
    frame.index = np.arange(1, len(frame) + 1) if lines is None else np.asarray(lines)
    return Ratings(frame, r.scale, r.source, r.item_info, r.implicit)


@st.composite
def rating_tables(draw, timestamps: bool | None = None, min_rows: int = 1) -> Ratings:
    """Random small tables: int or str ids, random sizes and row order, with/without timestamps."""
    n_users = draw(st.integers(1, 9))
    n_items = draw(st.integers(1, 9))
    observed = draw(st.lists(st.booleans(), min_size=n_users * n_items, max_size=n_users * n_items))
    cells = [divmod(c, n_items) for c, on in enumerate(observed) if on]
    if len(cells) < min_rows:
        cells = [divmod(c, n_items) for c in range(max(min_rows, 1))][: n_users * n_items]
    cells = draw(st.permutations(cells))
    n = len(cells)
    if draw(st.booleans()):
        users = [f"user-{u}" for u, _ in cells]
        items = [f"i{i}" for _, i in cells]
    else:
        users = [u * 7 + 100 for u, _ in cells]
        items = [i * 3 for _, i in cells]
    values = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    with_ts = draw(st.booleans()) if timestamps is None else timestamps
    # a small range of timestamps, so ties are common
    ts = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)) if with_ts else None
    lines = draw(st.permutations(list(range(1, n + 1))))
    return make_ratings(users, items, values, ts, lines=lines)


def big_ratings(n_users=60, n_items=50, density=0.5, seed=7, timestamps=True) -> Ratings:
    """A deterministic table of ~1500 ratings, large enough that two seeds must differ."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(mask)
    ts = rng.integers(0, 10**6, len(u)) if timestamps else None
    return make_ratings(u + 1, i + 1, rng.integers(1, 6, len(u)), ts)


def assert_partition(r: Ratings, split: Split) -> None:
    """The parts are disjoint, their union is the input (rows, dtypes, line numbers), order kept."""
    parts = split.parts
    joined = pd.concat([p.frame for p in parts])
    assert joined.index.is_unique, "a row landed in two parts"
    pd.testing.assert_frame_equal(joined.sort_index(), r.frame.sort_index())
    for p in parts:
        assert p.scale == r.scale and p.source == r.source and p.implicit == r.implicit
        pos = r.frame.index.get_indexer(p.frame.index)
        assert (np.diff(pos) > 0).all(), "a part lost the input's row order"


def frames_equal(a: Ratings, b: Ratings) -> bool:
    return a.frame.equals(b.frame) and a.frame.index.equals(b.frame.index)


def splits_equal(a: Split, b: Split) -> bool:
    return len(a.parts) == len(b.parts) and all(frames_equal(x, y) for x, y in zip(a.parts, b.parts))


def try_split(fn, *args, **kwargs) -> Split | None:
    """The split, or None when the table is too small (the only DataError these may raise)."""
    try:
        return fn(*args, **kwargs)
    except DataError as e:
        assert "empty" in str(e) or "needs at least" in str(e), str(e)
        return None


def round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5 + 1e-9))


# ---------------------------------------------------------------- by rating
@SETTINGS
@given(rating_tables(), st.floats(0.05, 0.95), st.integers(0, 2**32))
def test_random_split_partitions_and_repeats(r, f, seed):
    s = try_split(random_split, r, f, seed=seed)
    expected = round_half_up(f * len(r))
    if s is None:
        assert expected in (0, len(r))
        return
    assert_partition(r, s)
    assert len(s.test) == expected
    assert s.validation is None
    assert splits_equal(s, random_split(r, f, seed=seed))


@SETTINGS
@given(rating_tables(min_rows=2), st.integers(2, 6), st.integers(0, 2**32))
def test_kfold_folds_partition_the_data(r, k, seed):
    if k > len(r):
        with pytest.raises(DataError, match=f"at least {k} ratings"):
            kfold(r, k, seed=seed)
        return
    folds = kfold(r, k, seed=seed)
    assert len(folds) == k
    for s in folds:
        assert_partition(r, s)
    tests = pd.concat([s.test.frame for s in folds])
    assert tests.index.is_unique  # every rating in exactly one test fold ...
    pd.testing.assert_frame_equal(tests.sort_index(), r.frame.sort_index())  # ... and each in one
    sizes = [len(s.test) for s in folds]
    assert max(sizes) - min(sizes) <= 1
    again = kfold(r, k, seed=seed)
    assert all(splits_equal(a, b) for a, b in zip(folds, again))
    # the single-fold CLI form gives the same fold
    assert splits_equal(parse_split(f"kfold:{k}:{k - 1}:seed={seed}")(r), folds[-1])


# ---------------------------------------------------------------- per user
@SETTINGS
@given(rating_tables(), st.floats(0.05, 0.95), st.integers(1, 3), st.integers(0, 2**32))
def test_per_user_fraction_keeps_every_user_in_train(r, f, min_train, seed):
    s = try_split(per_user_split, r, test_fraction=f, seed=seed, min_train=min_train)
    counts = r.frame.groupby("user").size()
    n_test = counts.map(lambda c: round_half_up(f * c))
    expected = n_test.where(counts - n_test >= min_train, 0)
    if s is None:
        assert expected.sum() == 0
        return
    assert_partition(r, s)
    assert set(s.train.frame["user"]) == set(r.frame["user"])
    got = s.test.frame.groupby("user").size().reindex(counts.index, fill_value=0)
    assert (got == expected).all()
    assert splits_equal(s, per_user_split(r, test_fraction=f, seed=seed, min_train=min_train))


@SETTINGS
@given(rating_tables(), st.integers(1, 3), st.integers(0, 2**32))
def test_leave_k_out(r, k, seed):
    s = try_split(per_user_split, r, leave_k=k, seed=seed)
    counts = r.frame.groupby("user").size()
    expected = pd.Series(np.where(counts > k, k, 0), index=counts.index)  # fewer: all kept in train
    if s is None:
        assert expected.sum() == 0
        return
    assert_partition(r, s)
    assert set(s.train.frame["user"]) == set(r.frame["user"])
    got = s.test.frame.groupby("user").size().reindex(counts.index, fill_value=0)
    assert (got == expected).all()


def test_per_user_needs_exactly_one_rule():
    r = big_ratings()
    with pytest.raises(ConfigError, match="exactly one"):
        per_user_split(r)
    with pytest.raises(ConfigError, match="exactly one"):
        per_user_split(r, test_fraction=0.2, leave_k=1)
    with pytest.raises(ConfigError, match="leave_k must be an integer >= 1"):
        per_user_split(r, leave_k=0)


# ---------------------------------------------------------------- whole users
@SETTINGS
@given(rating_tables(), st.integers(1, 3), st.integers(0, 2), st.integers(0, 2**32))
def test_user_split_no_user_crosses(r, n_test, n_val, seed):
    s = try_split(user_split, r, test_users=n_test, validation_users=n_val, seed=seed)
    if s is None:
        assert r.n_users <= n_test + n_val
        return
    assert_partition(r, s)
    sides = [set(p.frame["user"]) for p in s.parts]
    for a in range(len(sides)):
        for b in range(a + 1, len(sides)):
            assert not sides[a] & sides[b], "a user appears on both sides"
    assert len(sides[1]) == n_test
    assert (s.validation is None) == (n_val == 0)
    if n_val:
        assert len(sides[2]) == n_val
    assert splits_equal(s, user_split(r, test_users=n_test, validation_users=n_val, seed=seed))


def test_user_split_fractions_and_fold_in():
    r = big_ratings(n_users=200, density=0.2)
    s = user_split(r, test_users=0.1, validation_users=0.05, seed=3, fold_in_fraction=0.8)
    assert len(set(s.test.frame["user"])) == 20 and len(set(s.validation.frame["user"])) == 10
    assert_partition(r, s)
    fold_in, held_out = s.fold_in()
    assert_partition(s.test, Split(fold_in, held_out))
    assert set(fold_in.frame["user"]) == set(s.test.frame["user"])  # every held-out user folds in
    a, b = fold_in_split(s.test, 0.8, seed=3)
    assert frames_equal(a, fold_in) and frames_equal(b, held_out)
    with pytest.raises(DataError, match="no fold-in fraction"):
        user_split(r, seed=3).fold_in()
    with pytest.raises(DataError, match="needs at least"):
        user_split(r, test_users=150, validation_users=50)
    with pytest.raises(ConfigError, match="test_users must be a fraction"):
        user_split(r, test_users=1.0)


@SETTINGS
@given(rating_tables(), st.floats(0.05, 0.95), st.integers(0, 2**32))
def test_fold_in_split_per_user(r, f, seed):
    fold_in, held_out = fold_in_split(r, f, seed=seed)
    assert_partition(r, Split(fold_in, held_out))
    assert set(fold_in.frame["user"]) == set(r.frame["user"])
    counts = r.frame.groupby("user").size()
    held = held_out.frame.groupby("user").size().reindex(counts.index, fill_value=0)
    want = counts.map(lambda c: round_half_up((1 - f) * c))
    assert (held == want.where(counts - want >= 1, 0)).all()


# ---------------------------------------------------------------- by time
@SETTINGS
@given(rating_tables(timestamps=True), st.floats(0.05, 0.95))
def test_temporal_fraction_train_before_test(r, f):
    s = try_split(temporal_split, r, test_fraction=f)
    if s is None:
        assert round_half_up(f * len(r)) in (0, len(r))
        return
    assert_partition(r, s)
    assert s.train.frame["timestamp"].max() <= s.test.frame["timestamp"].min()
    assert len(s.test) == round_half_up(f * len(r))


@SETTINGS
@given(rating_tables(timestamps=True), st.integers(0, 13))
def test_temporal_cutoff(r, cutoff):
    s = try_split(temporal_split, r, cutoff=cutoff)
    ts = r.frame["timestamp"]
    if s is None:
        assert (ts >= cutoff).all() or (ts < cutoff).all()
        return
    assert_partition(r, s)
    assert (s.train.frame["timestamp"] < cutoff).all() and (s.test.frame["timestamp"] >= cutoff).all()


@SETTINGS
@given(rating_tables(timestamps=True), st.integers(1, 3))
def test_last_k_per_user_order(r, k):
    s = try_split(last_k_split, r, k)
    counts = r.frame.groupby("user").size()
    if s is None:
        assert (counts <= k).all()
        return
    assert_partition(r, s)
    train_last = s.train.frame.groupby("user")["timestamp"].max()
    test_first = s.test.frame.groupby("user")["timestamp"].min()
    assert (train_last.reindex(test_first.index) <= test_first).all()
    got = s.test.frame.groupby("user").size().reindex(counts.index, fill_value=0)
    assert (got == np.where(counts > k, k, 0)).all()
    assert splits_equal(s, last_k_split(r, k))


def test_last_k_ties_broken_by_row_order():
    r = make_ratings([1, 1, 1, 2, 2], [1, 2, 3, 1, 2], [1, 2, 3, 4, 5], [5, 9, 9, 3, 3])
    s = last_k_split(r, 1)
    assert s.test.frame["item"].tolist() == [3, 2]  # the later row of each tie


@pytest.mark.parametrize("fn", [
    lambda r: temporal_split(r, test_fraction=0.2),
    lambda r: temporal_split(r, cutoff=10),
    lambda r: last_k_split(r, 1),
])
def test_time_splits_need_timestamps(fn):
    r = big_ratings(timestamps=False)
    with pytest.raises(DataError, match="needs timestamps.*mem.tsv"):
        fn(r)


def test_temporal_needs_exactly_one_rule():
    with pytest.raises(ConfigError, match="exactly one"):
        temporal_split(big_ratings())


# ---------------------------------------------------------------- validation
@SETTINGS
@given(rating_tables(), st.sampled_from(["rating", "user"]), st.integers(0, 2**32))
def test_validation_three_way_partition(r, by, seed):
    s = try_split(random_split, r, 0.5, seed=seed)
    if s is None:
        return
    try:
        v = s.with_validation(0.3, seed=seed, by=by)
    except DataError as e:
        assert "empty" in str(e)
        return
    assert_partition(r, v)
    assert frames_equal(v.test, s.test)
    if by == "user":
        assert set(v.train.frame["user"]) == set(s.train.frame["user"])
    t2, val2 = validation_split(s.train, 0.3, seed=seed, by=by)
    assert frames_equal(t2, v.train) and frames_equal(val2, v.validation)


def test_validation_errors():
    s = random_split(big_ratings(), 0.2)
    with pytest.raises(ConfigError, match="'rating' or 'user'"):
        s.with_validation(by="item")
    with pytest.raises(DataError, match="already has a validation"):
        s.with_validation().with_validation()


# ---------------------------------------------------------------- seeds
SEEDED = {
    "random": lambda r, seed: random_split(r, 0.2, seed=seed),
    "kfold": lambda r, seed: kfold(r, 5, seed=seed)[0],
    "peruser": lambda r, seed: per_user_split(r, test_fraction=0.2, seed=seed),
    "leave": lambda r, seed: per_user_split(r, leave_k=1, seed=seed),
    "user": lambda r, seed: user_split(r, test_users=0.2, validation_users=0.1, seed=seed),
    "validation": lambda r, seed: random_split(r, 0.2).with_validation(0.1, seed=seed, by="user"),
    "fold_in": lambda r, seed: Split(*fold_in_split(r, 0.8, seed=seed)),
}


@pytest.mark.parametrize("kind", sorted(SEEDED))
def test_same_seed_same_split_other_seed_differs(kind):
    r = big_ratings()
    make = SEEDED[kind]
    assert splits_equal(make(r, 11), make(r, 11))
    assert not splits_equal(make(r, 11), make(r, 12))
    # the part the seed draws (test, or validation when that is what is drawn) differs
    assert not frames_equal(make(r, 11).parts[-1], make(r, 12).parts[-1])


def test_seed_must_be_a_non_negative_int():
    with pytest.raises(ConfigError, match="seed must be an integer >= 0"):
        random_split(big_ratings(), 0.2, seed=None)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan"), True, "0.2"])
def test_bad_fraction(bad):
    with pytest.raises(ConfigError, match="test_fraction must be a fraction in"):
        random_split(big_ratings(), bad)


def test_empty_test_part_is_refused():
    r = make_ratings([1, 2], [1, 1], [3, 4])
    with pytest.raises(DataError, match="leaves the test part empty"):
        random_split(r, 0.1)
    with pytest.raises(DataError, match="leaves the test part empty"):
        per_user_split(r, leave_k=1)


# ---------------------------------------------------------------- matrices
def test_matrices_share_vocabularies():
    users, items = ["a", "a", "b", "c", "c"], ["x", "y", "x", "z", "w"]
    r = make_ratings(users, items, [1, 0, 5, 2, 3], lines=[10, 11, 12, 13, 14])
    s = Split(r.subset([0, 2]), r.subset([1, 3]), r.subset([4]))
    train, test, val = s.matrices()
    assert train.shape == test.shape == val.shape == (3, 4)
    assert train.users == test.users == val.users and train.items == test.items
    assert train.users.to_list() == ["a", "b", "c"] and train.items.to_list() == ["w", "x", "y", "z"]
    # a stored 0 is observed: the test's (a, y) = 0 is a cell of the test matrix
    assert test.observed(0, 2) and not train.observed(0, 2)
    assert test.nnz == 2 and val.nnz == 1 and train.nnz == 2
    assert len(Split(r.subset([0]), r.subset([1])).matrices()) == 2


def test_summary():
    s = random_split(big_ratings(), 0.2, seed=1)
    out = s.summary()
    assert out["name"] == "random:0.2:seed=1"
    assert out["train"]["ratings"] + out["test"]["ratings"] == len(big_ratings())


# ---------------------------------------------------------------- CLI specs
@pytest.mark.parametrize(("spec", "direct"), [
    ("random:0.2", lambda r: random_split(r, 0.2, seed=5)),
    ("random:0.1:seed=3", lambda r: random_split(r, 0.1, seed=3)),
    ("kfold:5:2", lambda r: kfold(r, 5, seed=5)[2]),
    ("user:0.1", lambda r: user_split(r, test_users=0.1, seed=5)),
    ("user:6:val=0.1:seed=2", lambda r: user_split(r, test_users=6, validation_users=0.1, seed=2)),
    ("peruser:0.2", lambda r: per_user_split(r, test_fraction=0.2, seed=5)),
    ("leave:1:min_train=3", lambda r: per_user_split(r, leave_k=1, seed=5, min_train=3)),
    ("temporal:0.2", lambda r: temporal_split(r, test_fraction=0.2)),
    ("temporal:cutoff=500000", lambda r: temporal_split(r, cutoff=500000)),
    ("lastk:2", lambda r: last_k_split(r, 2)),
    (" Random:0.2 ", lambda r: random_split(r, 0.2, seed=5)),
])
def test_parse_split_matches_direct_calls(spec, direct):
    r = big_ratings()
    assert splits_equal(parse_split(spec, seed=5)(r), direct(r))


@pytest.mark.parametrize("spec", [
    "", "random", "random:1.5", "random:x", "random:0.2:foo=1", "random:0.2:seed=-1", "kfold:5",
    "kfold:5:5", "kfold:1:0", "user:0", "user:1.0", "peruser:0", "leave:0", "temporal:0.2:seed=1",
    "temporal", "lastk:0", "nope:1", "u6", "u1:2", "random::0.2",
])
def test_parse_split_bad_specs(spec):
    with pytest.raises(ConfigError) as info:
        parse_split(spec)
    message = str(info.value)
    assert repr(spec.strip()) in message and "Valid forms" in message
    assert all(form in message for form in SPEC_FORMS)


def test_canonical_needs_its_files(tmp_path):
    (tmp_path / "u1.base").write_text("1\t1\t5\t1\n")
    with pytest.raises(DataError, match=r"u1\.test.*missing") as info:
        canonical_split(tmp_path, "u1")
    assert "u1.base" not in str(info.value).split("needs")[1].split("missing")[0]
    with pytest.raises(DataError, match=r"u2\.base and .*u2\.test"):
        canonical_split(tmp_path, "u2")
    with pytest.raises(ConfigError, match="u1, u2, u3, u4, u5, ua, ub"):
        canonical_split(tmp_path, "u9")
    with pytest.raises(DataError, match="did not come from a file"):
        parse_split("u1")(Ratings.from_arrays([1], [1], [5]))


# ---------------------------------------------------------------- MovieLens 100K
@needs_ml100k
def test_ml100k_u1_and_shared_vocabularies(ml100k_dir):
    s = canonical_split(ml100k_dir, "u1")
    assert (len(s.train), len(s.test)) == (80000, 20000)
    assert s.train.has_timestamps and s.train.scale == RatingScale(1, 5, 1)
    train, test = s.matrices()
    assert train.shape == test.shape == (943, 1682)
    assert train.nnz == 80000 and test.nnz == 20000
    assert s.train.frame.index[0] == 1  # line numbers of u1.base are kept
    assert s.test.item_info is not None and train.item_info is not None  # titles from u.item


@needs_ml100k
def test_ml100k_folds_partition_u_data(ml100k_dir):
    from aerec.data.readers import read_ratings

    full = read_ratings(ml100k_dir / "u.data").frame
    folds = canonical_folds(ml100k_dir)
    assert [s.name for s in folds] == ["u1", "u2", "u3", "u4", "u5"]
    tests = pd.concat([s.test.frame for s in folds], ignore_index=True)
    key = ["user", "item", "rating", "timestamp"]
    a = tests[key].sort_values(key).reset_index(drop=True)
    b = full[key].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    for s in folds:
        assert len(s.train) + len(s.test) == 100000
        both = s.train.frame.merge(s.test.frame, on=["user", "item"])
        assert both.empty


@needs_ml100k
def test_ml100k_ua_holds_out_ten_per_user(ml100k_dir):
    s = canonical_split(ml100k_dir / "u.data", "ua")  # a file inside the folder works too
    per_user = s.test.frame.groupby("user").size()
    assert len(per_user) == 943 and (per_user == 10).all()
    assert len(s.train) == 100000 - 9430


@needs_ml100k
def test_ml100k_spec_finds_the_folder_from_the_data(ml100k_dir):
    from aerec.data.readers import read_ratings

    r = read_ratings(ml100k_dir / "u.data")
    s = parse_split("u2")(r)
    assert s.name == "u2" and len(s.test) == 20000
    s = parse_split("random:0.1", seed=1)(r)
    assert len(s.test) == 10000
