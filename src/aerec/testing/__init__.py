"""Shared contract tests for estimators, and planted data whose right answer is known.

Every model family's test class inherits one contract and says how to build a small, fast
model: :class:`RecommenderContract` for rating models, :class:`ImplicitContract` for top-N
models. Both build on :class:`EstimatorContract`, the promises every
:class:`~aerec.base.Estimator` keeps (lists, new users, save/load, errors before fitting), so
that part runs against every family of both kinds. Like ``implicit``'s shared test mixin and
``lenskit.testing``:

>>> from aerec.testing import RecommenderContract          # doctest: +SKIP
>>> class TestMyModel(RecommenderContract):                # doctest: +SKIP
...     def make_model(self):
...         config = Config(model={"kind": "autorec", "hidden": [16], "l2": 1.0}, train={"epochs": 8})
...         return Recommender(config=config)

* :mod:`aerec.testing.contract` - :class:`EstimatorContract`, :func:`single_thread`, :func:`with_seed`.
* :mod:`aerec.testing.explicit` - planted ratings and :class:`RecommenderContract`.
* :mod:`aerec.testing.implicit` - planted positives and :class:`ImplicitContract`.

Needs pytest (``pip install aerec[test]``).
"""

try:
    import pytest  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without the test extra
    raise ImportError("aerec.testing needs pytest: pip install 'aerec[test]'") from exc

from aerec.testing.contract import EstimatorContract, single_thread, with_seed
from aerec.testing.explicit import PlantedData, RecommenderContract, planted_ratings
from aerec.testing.implicit import ImplicitContract, PlantedImplicit, planted_implicit

__all__ = [
    "EstimatorContract",
    "ImplicitContract",
    "PlantedData",
    "PlantedImplicit",
    "RecommenderContract",
    "planted_implicit",
    "planted_ratings",
    "single_thread",
    "with_seed",
]
