"""Implicit feedback and top-N recommendation: Mult-VAE, Mult-DAE, CDAE, RecVAE, EASE, popularity.

* :mod:`aerec.implicit.views` - positives of rating data (a threshold) or of event logs.
* :mod:`aerec.implicit.protocol` - strong generalization and per-user hold-out tasks.
* :mod:`aerec.implicit.recommender` - :class:`ImplicitRecommender`, the estimator (an
  :class:`aerec.base.Estimator`).

The networks and their families sit a layer below, with the rating models':
:mod:`aerec.models.implicit_networks` (Mult-DAE, Mult-VAE, CDAE, RecVAE),
:mod:`aerec.models.implicit_families` (hyper-parameters, defaults, presets, sources; their records
join the rating families' in :mod:`aerec.registry`) and :mod:`aerec.models.ease` (EASE's closed
form and its memory check). Metrics live in :mod:`aerec.ranking`; docs/implicit.md walks through
it all.
"""

# name -> module that defines it, imported on first use (PEP 562), as in ``aerec``: importing
# aerec.implicit, or a light submodule such as aerec.implicit.views, must not pull in the
# estimator and torch.
_LAZY = {
    "DEFAULT_IMPLICIT": "aerec.models.implicit_families",
    "IMPLICIT_FAMILIES": "aerec.models.implicit_families",
    "is_implicit_kind": "aerec.models.implicit_families",
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
