"""Every explicit-rating family passes the shared contract (aerec.testing) on planted data.

Settings are the family's own (activation, orientation, optimiser, regulariser kind) shrunk to
the planted data's size: small layers, few epochs. They are a smoke test of the family, not of
its tuned defaults (those are measured on real data in the benchmarks).
"""

from __future__ import annotations

from typing import Any

from aerec.config import Config
from aerec.recommender import Recommender
from aerec.testing import PlantedData, RecommenderContract, planted_ratings


def _model(kind: str, train: dict[str, Any], **params: Any) -> Recommender:
    return Recommender(config=Config(model={"kind": kind, **params}, train=dict(train)))


# Enough epochs to leave the sigmoid plateau on 40 x 30 ratings; validation picks the best.
_FAST_ADAM = {"optimizer": "adam", "lr": 0.01, "batch_size": 8, "epochs": 60, "patience": 15}


class TestStackedAutoencoder(RecommenderContract):
    """The course's n-20-10-20-n sigmoid network on user rows (RMSprop, as in the course)."""

    def make_model(self) -> Recommender:
        return _model(
            "sae", {"optimizer": "rmsprop", "lr": 0.01, "momentum": 0.0, "batch_size": 8, "epochs": 60, "patience": 20},
            hidden=[20, 10, 20],
        )


class TestItemAutoRec(RecommenderContract):
    """I-AutoRec: item rows, L-BFGS on the whole matrix, L2 on the weights."""

    def make_model(self) -> Recommender:
        return _model("autorec", {"epochs": 8, "lbfgs_iterations": 10, "patience": 3},
                      preset="i-autorec", hidden=[16], l2=1.0)


class TestUserAutoRec(RecommenderContract):
    """U-AutoRec: user rows; new users are encoded directly."""

    def make_model(self) -> Recommender:
        return _model("autorec", {"epochs": 8, "lbfgs_iterations": 10, "patience": 3},
                      preset="u-autorec", hidden=[16], l2=1.0)


class TestDeepAutoencoder(RecommenderContract):
    """SELU layers, dropout on the code and dense re-feeding (Kuchaiev & Ginsburg)."""

    def make_model(self) -> Recommender:
        return _model("deep", _FAST_ADAM, hidden=[16, 8, 16], code_dropout=0.5)


class TestDenoisingAutoencoder(RecommenderContract):
    """Input dropout on observed ratings, item rows."""

    def make_model(self) -> Recommender:
        return _model("dae", _FAST_ADAM, hidden=[16], l2=1.0, input_dropout=0.2)


class TestSparseAutoencoder(RecommenderContract):
    """L1 activity penalty on the code, item rows."""

    def make_model(self) -> Recommender:
        return _model("sparse", _FAST_ADAM, hidden=[16], l2=1.0, code_l1=1e-3)


class TestTiedDeepAutoencoder(RecommenderContract):
    """The deep family's tied decoder: decoder weights are the encoder's, transposed."""

    def make_model(self) -> Recommender:
        return _model("deep", _FAST_ADAM, hidden=[16, 8, 16], code_dropout=0.5, tied=True)


# ----------------------------------------------------------------------------- like/dislike data
# On 0/1 data the families switch to binary cross-entropy on logits; 0 is a real rating. The
# best possible RMSE is about 0.44 of the bias baseline's here, hence the looser ratio.


class TestLikeDislikeStackedAutoencoder(TestStackedAutoencoder):
    accuracy_ratio = 0.6

    def planted(self) -> PlantedData:
        return planted_ratings(binary=True)


class TestLikeDislikeItemAutoRec(TestItemAutoRec):
    """Also the item-based fold-in of a new user against logits."""

    accuracy_ratio = 0.6

    def planted(self) -> PlantedData:
        return planted_ratings(binary=True)


class TestLikeDislikeDeepAutoencoder(TestDeepAutoencoder):
    """Also dense re-feeding, whose re-fed input must be probabilities, not logits."""

    accuracy_ratio = 0.6

    def planted(self) -> PlantedData:
        return planted_ratings(binary=True)


# ----------------------------------------------------------------------------- the planted data
def test_planted_data_has_the_promised_shape():
    data = planted_ratings()
    train, test = data.train.frame, data.test.frame
    assert len(train) + len(test) == 40 * 30 and len(test) == 40 * 2 * 6  # 40% of 15, per group
    assert set(train["rating"]) <= {1.0, 2.0, 4.0, 5.0}
    for user in (*data.a_users, *data.b_users):
        rated = data.rated(user)
        assert len(rated & set(data.x_items)) == 9 and len(rated & set(data.y_items)) == 9
    mine = train[train["user"].str.startswith("a") & train["item"].str.startswith("x")]["rating"]
    assert set(mine) == {4.0, 5.0}  # group A loves X
    matrix = data.train_matrix()
    assert matrix.items.index([data.ghost])[0] >= 0 and matrix.item_counts()[matrix.items.index([data.ghost])[0]] == 0
    again = planted_ratings()
    assert again.train.frame.equals(train) and not planted_ratings(seed=1).train.frame.equals(train)


def test_planted_like_dislike_data_keeps_its_zeros():
    data = planted_ratings(binary=True)
    ratings = data.train.frame["rating"]
    assert data.train.scale.is_binary and set(ratings) == {0.0, 1.0}
    assert data.train_matrix().nnz == len(ratings)  # every 0 is an observed cell
    a_x = data.train.frame.query("user.str.startswith('a') and item.str.startswith('x')", engine="python")
    assert a_x["rating"].mean() > 0.85
