"""Implicit feedback and top-N recommendation: Mult-VAE, Mult-DAE, CDAE, RecVAE, EASE, popularity.

* :mod:`aerec.implicit.views` - positives of rating data (a threshold) or of event logs.
* :mod:`aerec.implicit.networks` - the Mult-DAE, Mult-VAE, CDAE and RecVAE networks.
* :mod:`aerec.implicit.families` - hyper-parameters, defaults and sources; EASE's closed form.
* :mod:`aerec.implicit.protocol` - strong generalization and per-user hold-out tasks.
* :mod:`aerec.implicit.recommender` - :class:`ImplicitRecommender`, the estimator.

Metrics live in :mod:`aerec.ranking`; docs/implicit.md walks through it all.
"""

from aerec.implicit.families import DEFAULT_IMPLICIT, IMPLICIT_FAMILIES, is_implicit_kind
from aerec.implicit.protocol import RankingTask, ranking_task, task_from_parts
from aerec.implicit.recommender import ImplicitRecommender
from aerec.implicit.views import default_threshold, implicit_matrix, implicit_view

__all__ = [
    "DEFAULT_IMPLICIT",
    "IMPLICIT_FAMILIES",
    "ImplicitRecommender",
    "RankingTask",
    "default_threshold",
    "implicit_matrix",
    "implicit_view",
    "is_implicit_kind",
    "ranking_task",
    "task_from_parts",
]
