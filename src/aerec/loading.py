"""One loader for every saved model: :func:`load_model` reads ``model.json``'s kind and hands the
directory to the estimator that wrote it (:class:`~aerec.Recommender` for rating models,
:class:`~aerec.implicit.ImplicitRecommender` for implicit top-N models)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["load_model", "model_kind"]


def model_kind(directory: str | Path) -> str:
    """The ``kind`` recorded in ``DIR/model.json``; the full checks happen when loading."""
    path = Path(directory) / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return ""  # the estimator's loader names what is wrong with the directory
    return str(meta.get("kind", "")) if isinstance(meta, dict) else ""


def load_model(directory: str | Path) -> Any:
    """Load a model directory written by ``save`` (safetensors + JSON only, never pickle).

    Returns a :class:`~aerec.recommender.Recommender` or an
    :class:`~aerec.implicit.ImplicitRecommender`, whichever wrote it. A missing, truncated or
    tampered directory is a :class:`~aerec.errors.ModelFileError`.
    """
    from aerec.implicit.families import is_implicit_kind

    if is_implicit_kind(model_kind(directory)):
        from aerec.implicit.recommender import ImplicitRecommender

        return ImplicitRecommender.load(directory)
    from aerec.recommender import Recommender

    return Recommender.load(directory)
