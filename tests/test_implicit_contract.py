"""Every implicit family passes the shared contract (aerec.testing.ImplicitContract) on planted data.

Settings are each family's own shrunk to 40 users x 30 items: small layers, few epochs. They
are a smoke test of the family, not of its tuned defaults (docs/benchmarks.md measures those).
"""

from __future__ import annotations

from typing import Any

from aerec.config import Config
from aerec.implicit import ImplicitRecommender
from aerec.testing import ImplicitContract

# No early stopping: with a dozen validation users the best epoch is noisy, the last one is fine.
_FAST = {"optimizer": "adam", "lr": 0.01, "batch_size": 8, "epochs": 30, "patience": 0, "validation": 0.3}


def _model(kind: str, train: dict[str, Any] | None = None, **params: Any) -> ImplicitRecommender:
    return ImplicitRecommender(config=Config(model={"kind": kind, **params}, train=dict(train or {})))


class TestMultVAE(ImplicitContract):
    """Gaussian code, KL annealed over updates (here to its cap within the run)."""

    def make_model(self) -> ImplicitRecommender:
        return _model("multvae", _FAST, hidden=[32, 8], total_anneal_steps=50)


class TestMultVAEShallow(ImplicitContract):
    """The default's shape: no hidden layer, the input goes straight to the Gaussian code."""

    def make_model(self) -> ImplicitRecommender:
        return _model("multvae", _FAST, hidden=[8], total_anneal_steps=50)


class TestMultDAE(ImplicitContract):
    def make_model(self) -> ImplicitRecommender:
        return _model("multdae", _FAST, hidden=[32, 8], l2=0.0)


class TestCDAE(ImplicitContract):
    """A user node per training user; new users get the mean node."""

    def make_model(self) -> ImplicitRecommender:
        return _model("cdae", _FAST, hidden=16, l2=0.001)


class TestEASE(ImplicitContract):
    """Closed form; lambda chosen on the validation carve."""

    seeded = False

    def make_model(self) -> ImplicitRecommender:
        return _model("ease", l2_grid=[1.0, 10.0, 100.0])


class TestEASEDAE(ImplicitContract):
    """EASE (lambda on the carve) and a Mult-DAE, mixed with a share chosen on the carve."""

    def make_model(self) -> ImplicitRecommender:
        return _model("easedae", _FAST, hidden=[8], l2=0.0, ease_l2_grid=[1.0, 10.0, 100.0])


class TestPopularity(ImplicitContract):
    learns = False
    seeded = False

    def make_model(self) -> ImplicitRecommender:
        return _model("popularity")


class TestCDAESampledNegatives(ImplicitContract):
    """The paper's negative sampling: about 5 non-positives per positive enter the loss."""

    def make_model(self) -> ImplicitRecommender:
        return _model("cdae", _FAST, hidden=16, l2=0.001, negatives=5.0)


class TestRecVAE(ImplicitContract):
    """Dense encoder, composite prior with the previous epoch's encoder, alternating passes."""

    def make_model(self) -> ImplicitRecommender:
        return _model("recvae", {**_FAST, "epochs": 15}, hidden=32, latent=8)
