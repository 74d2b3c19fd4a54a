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

from aerec._lazy import lazy_exports as _lazy_exports

# The public API: name -> module that defines it, imported on first use (PEP 562), as in
# ``aerec``: importing aerec.implicit, or a light submodule such as aerec.implicit.views, must
# not pull in the estimator and torch.
_LAZY = {
    "DEFAULT_IMPLICIT": "aerec.models.implicit_families",
    "IMPLICIT_FAMILIES": "aerec.models.implicit_families",
    "is_implicit_kind": "aerec.registry",
    "RankingTask": "aerec.implicit.protocol",
    "ranking_task": "aerec.implicit.protocol",
    "task_from_parts": "aerec.implicit.protocol",
    "ImplicitRecommender": "aerec.implicit.recommender",
    "default_threshold": "aerec.implicit.views",
    "implicit_matrix": "aerec.implicit.views",
    "implicit_view": "aerec.implicit.views",
}

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)

__all__ = [*_LAZY]
