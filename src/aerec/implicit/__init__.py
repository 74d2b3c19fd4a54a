"""Implicit feedback and top-N recommendation: Mult-VAE, Mult-DAE, CDAE, RecVAE, EASE, EASE + DAE, popularity.

* :mod:`aerec.implicit.views` - positives of rating data (a threshold) or of event logs.
* :mod:`aerec.implicit.networks` - the Mult-DAE, Mult-VAE, CDAE, RecVAE and EASE + DAE networks.
* :mod:`aerec.implicit.families` - hyper-parameters, defaults, presets and sources (their
  records join the rating families' in :mod:`aerec.registry`).
* :mod:`aerec.implicit.ease` - EASE's closed form and its memory check.
* :mod:`aerec.implicit.protocol` - strong generalization and per-user hold-out tasks.
* :mod:`aerec.implicit.recommender` - :class:`ImplicitRecommender`, the estimator (an
  :class:`aerec.base.Estimator`).

Metrics live in :mod:`aerec.ranking`; docs/implicit.md walks through it all.
"""

# name -> module that defines it, imported on first use (PEP 562), as in ``aerec``: importing
# a submodule such as aerec.implicit.families must not pull in the estimator, which sits a
# layer above the families (aerec.registry gathers them before any estimator exists).
_LAZY = {
    "DEFAULT_IMPLICIT": "aerec.implicit.families",
    "IMPLICIT_FAMILIES": "aerec.implicit.families",
    "is_implicit_kind": "aerec.implicit.families",
    "RankingTask": "aerec.implicit.protocol",
    "ranking_task": "aerec.implicit.protocol",
    "task_from_parts": "aerec.implicit.protocol",
    "ImplicitRecommender": "aerec.implicit.recommender",
    "default_threshold": "aerec.implicit.views",
    "implicit_matrix": "aerec.implicit.views",
    "implicit_view": "aerec.implicit.views",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aerec.implicit' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
