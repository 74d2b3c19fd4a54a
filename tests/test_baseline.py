"""The bias model mu + b_u + b_i on cases small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from aerec.baseline import BiasModel


def _csr(cells, shape) -> sp.csr_array:
    rows, cols, vals = zip(*cells, strict=True)
    return sp.csr_array((np.array(vals, dtype=np.float32), (np.array(rows), np.array(cols))), shape=shape)


# u0 rated i0 = 5 and i1 = 3; u1 rated i0 = 4. The mean is 4.
TINY = _csr([(0, 0, 5.0), (0, 1, 3.0), (1, 0, 4.0)], (2, 2))


def test_one_round_without_shrinkage_by_hand():
    m = BiasModel(reg_user=0, reg_item=0, rounds=1).fit(TINY)
    assert m.mu_ == pytest.approx(4.0)
    # Items first: b_i0 = ((5-4) + (4-4)) / 2, b_i1 = (3-4) / 1.
    np.testing.assert_allclose(m.item_bias_, [0.5, -1.0])
    # Then users against those: b_u0 = ((5-4-0.5) + (3-4+1)) / 2, b_u1 = (4-4-0.5) / 1.
    np.testing.assert_allclose(m.user_bias_, [0.25, -0.5])
    np.testing.assert_allclose(m.predict(np.array([0, 1]), np.array([1, 1])), [4 + 0.25 - 1, 4 - 0.5 - 1])


def test_shrinkage_by_hand():
    m = BiasModel(reg_user=2, reg_item=1, rounds=1).fit(TINY)
    # b_i = sum(r - mu) / (n_i + reg_item): i0: 1 / 3, i1: -1 / 2.
    np.testing.assert_allclose(m.item_bias_, [1 / 3, -1 / 2], rtol=1e-6)
    # b_u = sum(r - mu - b_i) / (n_u + reg_user): u0: ((5-4-1/3) + (3-4+1/2)) / 4 = (1/6) / 4,
    # u1: (4-4-1/3) / 3.
    np.testing.assert_allclose(m.user_bias_, [1 / 24, -1 / 9], rtol=1e-5)


def test_fewer_ratings_mean_more_shrinkage():
    # Item 0: one rating of 5 (by user 0). Item 1: ten ratings of 5. Item 2 balances the mean.
    cells = [(0, 0, 5.0)] + [(u, 1, 5.0) for u in range(10)] + [(u, 2, 1.0) for u in range(10)]
    m = BiasModel().fit(_csr(cells, (10, 3)))
    assert 0 < m.item_bias_[0] < m.item_bias_[1]
    plain = BiasModel(reg_user=0, reg_item=0).fit(_csr(cells, (10, 3)))
    assert m.item_bias_[1] < plain.item_bias_[1]  # shrinkage pulls toward 0


def test_additive_data_is_recovered_exactly_without_shrinkage():
    a, b, mu = np.array([1.0, -1.0, 0.0]), np.array([0.5, -0.5, 0.25, -0.25]), 3.0
    cells = [(u, i, mu + a[u] + b[i]) for u in range(3) for i in range(4)]
    m = BiasModel(reg_user=0, reg_item=0).fit(_csr(cells, (3, 4)))
    users, items = np.repeat(np.arange(3), 4), np.tile(np.arange(4), 3)
    np.testing.assert_allclose(m.predict(users, items), mu + a[users] + b[items], atol=1e-5)


def test_unknown_indices_add_no_bias():
    m = BiasModel(reg_user=0, reg_item=0, rounds=1).fit(TINY)
    out = m.predict(np.array([-1, 0, -1]), np.array([0, -1, -1]))
    np.testing.assert_allclose(out, [4 + 0.5, 4 + 0.25, 4.0])
    assert out.dtype == np.float32


def test_arrays_round_trip():
    m = BiasModel().fit(TINY)
    back = BiasModel.from_arrays(m.arrays())
    users, items = np.array([0, 1, -1]), np.array([1, 0, 1])
    np.testing.assert_array_equal(back.predict(users, items), m.predict(users, items))


def test_empty_rows_and_columns_have_zero_bias():
    m = BiasModel().fit(_csr([(0, 0, 4.0), (0, 1, 2.0)], (3, 4)))
    assert m.user_bias_[1:].tolist() == [0.0, 0.0] and m.item_bias_[2:].tolist() == [0.0, 0.0]
