"""One loader for every saved model: :func:`load` reads ``model.json``'s kind and hands the
directory to the estimator of that family's feedback (:class:`~aerec.Recommender` for rating
models, :class:`~aerec.implicit.ImplicitRecommender` for implicit top-N models).

This module sits above both estimators: importing it makes every estimator known to
:meth:`aerec.base.Estimator.load`, which is why ``aerec.Estimator`` is served from here.
"""

from __future__ import annotations

import json
from pathlib import Path

from aerec.base import Estimator
from aerec.ensemble import EnsembleRecommender  # imported so that a saved ensemble loads as one
from aerec.implicit.recommender import ImplicitRecommender
from aerec.recommender import Recommender

__all__ = ["Estimator", "EnsembleRecommender", "ImplicitRecommender", "Recommender", "load", "load_model",
           "model_kind"]


def model_kind(directory: str | Path) -> str:
    """The ``kind`` recorded in ``DIR/model.json``; the full checks happen when loading."""
    path = Path(directory) / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return ""  # the estimator's loader names what is wrong with the directory
    return str(meta.get("kind", "")) if isinstance(meta, dict) else ""


def load(directory: str | Path) -> Estimator:
    """Load a model directory written by ``save`` (safetensors + JSON only, never pickle).

    Returns a :class:`~aerec.recommender.Recommender` (an :class:`~aerec.ensemble.EnsembleRecommender`
    for the accurate preset) or an :class:`~aerec.implicit.ImplicitRecommender`, whichever wrote it; all are
    :class:`~aerec.base.Estimator`\\ s. A missing, truncated or tampered directory is a
    :class:`~aerec.errors.ModelFileError`.
    """
    return Estimator.load(directory)


load_model = load
"""The name :func:`load` had first; kept so existing code keeps working."""
