"""The serving read path: a loaded :class:`~aerec.Recommender` prepared for many small requests.

An HTTP request asks for ten recommendations for one user; the library's methods answer with
a pandas frame. :class:`ServingModel` computes, once at start-up, what every request would
otherwise recompute, and answers with plain Python lists: ids as strings (the API's form) and a
``{id: index}`` dict, so a lookup is one dict access; titles and genres as lists, and the items
ordered by popularity for browsing. Scores and lists come from the library itself: a new user's
predicted ratings from :meth:`~aerec.Recommender.new_user_scores` (the fold-in of
:mod:`aerec.foldin`, solved in its k x k dual form on features prepared when the model was
loaded) and the order from :meth:`~aerec.Recommender.rank_items`, as in ``aerec recommend``.

Thread safety: every request reads the same model from a pool of threads. All model access
goes through one lock, so the library's lazy caches and torch modules are never entered by two
threads at once; the lock is held only for the arithmetic (a fraction of a millisecond on
MovieLens 100K), while parsing, validation and JSON encoding run outside it.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from aerec.data.new_user import rating_values
from aerec.errors import NotFittedError

if TYPE_CHECKING:
    from aerec.base import Estimator

__all__ = ["ServingModel", "UnknownIdError", "Scored"]


class UnknownIdError(LookupError):
    """An id the model does not know (the HTTP layer answers 404 naming it)."""

    def __init__(self, kind: str, ids: Sequence[str], known: int) -> None:
        self.kind, self.ids, self.known = kind, list(ids), known
        shown = ", ".join(repr(i) for i in self.ids[:5]) + (f" and {len(self.ids) - 5} more" if len(self.ids) > 5 else "")
        hint = (" (search them with GET /v1/items)" if kind == "item" else
                "; for a new user, send their ratings instead: POST /v1/recommendations {\"ratings\": {\"item_id\": rating}}")
        super().__init__(f"unknown {kind} id{'s' if len(self.ids) > 1 else ''} {shown}: the model knows {known} {kind}s{hint}")


@dataclass(frozen=True)
class Scored:
    """One recommended item: its id, score (rating models: the relevance the list is ranked by;
    top-N models: their ranking score), predicted rating (rating models only), title, genres."""

    item_id: str
    score: float
    title: str | None
    genres: list[str]
    prediction: float | None = None
    because: list[dict[str, Any]] | None = None  # asked for: {item_id, title, rating, contribution} each


class ServingModel:
    """A fitted or loaded estimator, with the per-model arrays every request needs.

    Args:
        model: a fitted :class:`~aerec.Estimator` (``aerec.load(DIR)``): a rating model or an
            implicit top-N model.
    """

    def __init__(self, model: Estimator) -> None:
        if not getattr(model, "is_fitted", False):
            raise NotFittedError("the server needs a fitted model: load one with Recommender.load(DIR)")
        self.model = model
        self.lock = threading.Lock()
        self.kind: str = model.config.kind
        self.scale = model.scale_
        self.user_ids: list[str] = [str(u) for u in model.users_.to_list()]
        self.item_ids: list[str] = [str(i) for i in model.items_.to_list()]
        self._user_index = {u: k for k, u in enumerate(self.user_ids)}
        self._item_index = {i: k for k, i in enumerate(self.item_ids)}
        self.titles, self.genres = _metadata(model.item_info_, model.items_.labels)
        self.has_titles = any(t is not None for t in self.titles)
        self._lower_titles = [(t or "").casefold() for t in self.titles]
        self.item_counts = np.asarray(model.item_counts_, dtype=np.int64)  # (n_items,) training ratings per item
        # Most-rated first; ties by id order (a stable sort keeps the vocabulary's order).
        self.popular = np.argsort(-self.item_counts, kind="stable")
        self._prepare_fold_in()

    # ------------------------------------------------------------------ start-up
    def _prepare_fold_in(self) -> None:
        # A new user with no known rating gets the model's cold-start answer (the fold-in's
        # k = 0 prior for rating models; the most-liked items for implicit models).
        self._cold_scores = self.model.new_user_scores(np.empty(0, dtype=np.int64), np.empty(0))

    # ------------------------------------------------------------------ ids
    def item_index(self, ids: Iterable[str]) -> np.ndarray:
        """Indices of item ids (exactly as the API reports them); UnknownIdError names misses."""
        return self._lookup(ids, self._item_index, "item")

    def user_index(self, ids: Iterable[str]) -> np.ndarray:
        """Indices of user ids; UnknownIdError names misses."""
        return self._lookup(ids, self._user_index, "user")

    @staticmethod
    def _lookup(ids: Iterable[str], table: dict[str, int], kind: str) -> np.ndarray:
        ids = list(ids)
        out = np.fromiter((table.get(i, -1) for i in ids), dtype=np.int64, count=len(ids))
        if (out < 0).any():
            raise UnknownIdError(kind, [ids[k] for k in np.flatnonzero(out < 0)], len(table))
        return out

    # ------------------------------------------------------------------ items
    def search(self, query: str = "", limit: int = 20) -> tuple[int, list[int]]:
        """Items whose title (or id) contains ``query`` (case-insensitive), most-rated first.

        Returns ``(number of matches, the first `limit` indices)``; an empty query lists the
        most-rated items.
        """
        q = query.strip().casefold()
        if not q:
            return len(self.popular), self.popular[:limit].tolist()
        hits = [k for k in self.popular.tolist() if q in self._lower_titles[k] or q == self.item_ids[k].casefold()]
        return len(hits), hits[:limit]

    def item_record(self, k: int) -> dict[str, Any]:
        return {"item_id": self.item_ids[k], "title": self.titles[k], "genres": self.genres[k],
                "ratings": int(self.item_counts[k])}

    # ------------------------------------------------------------------ recommendations
    def check_ratings(self, ratings: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Indices and values of a new user's ratings; DataError for values off the scale."""
        labels, values = rating_values(ratings, self.scale)
        return self.item_index(labels), values

    def recommend_new(self, ratings: Mapping[str, float], n: int, explain_top: int = 0) -> list[Scored]:
        """Top-``n`` for a new user from ``{item_id: rating}``, leaving out the rated items;
        ``explain_top`` > 0: each with up to that many rated items that pushed it up most."""
        idx, values = self.check_ratings(ratings)
        with self.lock:
            scores = self._new_user_scores(idx, values)
        found = self._top(scores, idx, n)
        if not explain_top or not found:
            return found
        targets = self.item_index(s.item_id for s in found)
        with self.lock:
            lists = self.model.because(targets, given=(idx, values), top=explain_top)
        return [dataclasses.replace(s, because=_reasons(r)) for s, r in zip(found, lists)]

    def _new_user_scores(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Scores of every item ``(n_items,)`` for a new user (the library's fold-in)."""
        if len(idx) == 0:
            return self._cold_scores
        return self.model.new_user_scores(idx, values)

    def recommend_user(self, user_id: str, n: int, explain_top: int = 0) -> list[Scored]:
        """Top-``n`` for a known user (items they rated in training left out); ``explain_top``
        > 0: each with up to that many of the user's rated items that pushed it up most."""
        self.user_index([user_id])
        why = {"explain": True, "explain_top": explain_top} if explain_top else {}
        with self.lock:
            frame = self.model.recommend(self._label(self.model.users_, user_id), n=n, **why)
        index = self.item_index(str(i) for i in frame["item"].tolist())
        predictions = frame["prediction"].tolist() if "prediction" in frame.columns else [None] * len(frame)
        found = [self._scored(k, s, p) for k, s, p in zip(index.tolist(), frame["score"].tolist(), predictions)]
        if not explain_top:
            return found
        return [dataclasses.replace(s, because=_reasons(r)) for s, r in zip(found, frame["because_detail"].tolist())]

    def similar(self, item_id: str, n: int) -> list[Scored]:
        """The ``n`` items most like ``item_id`` (:meth:`~aerec.base.Estimator.similar_items`;
        the score is their cosine similarity)."""
        k = int(self.item_index([item_id])[0])
        with self.lock:
            frame = self.model.similar_items(self.model.items_.label([k])[0], n=n)
        index = self.item_index(str(i) for i in frame["item"].tolist())
        return [self._scored(j, s) for j, s in zip(index.tolist(), frame["score"].tolist())]

    def predict(self, pairs: Sequence[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted ratings ``(n,)`` and fallback flags ``(n,)`` for (user_id, item_id) pairs; a
        pair with an unknown user or item gets the bias model's rating and ``fallback`` True."""
        # A top-N model has no ratings to predict: a ConfigError, which the API answers with 422.
        self.model.check_predicts_ratings()
        if not pairs:
            return np.empty(0, dtype=np.float32), np.empty(0, dtype=bool)
        # An unknown id is answered by the bias model and flagged (-1: no bias of its own), as the
        # command line does: one new user must not fail the whole batch.
        users = np.fromiter((self._user_index.get(p[0], -1) for p in pairs), dtype=np.int64, count=len(pairs))
        items = np.fromiter((self._item_index.get(p[1], -1) for p in pairs), dtype=np.int64, count=len(pairs))
        with self.lock:
            pred = self.model.predict_indices(users, items)
        return pred.values, pred.fallback

    # ------------------------------------------------------------------ helpers
    def _top(self, scores: np.ndarray, exclude: np.ndarray, n: int) -> list[Scored]:
        # The library's own ranking, as in ``aerec recommend``: a rating model's relevance with
        # its predicted ratings beside it, a top-N model's scores with no prediction. It works
        # on a copy, so the shared cold-start scores stay as they are.
        top, score, prediction = self.model.rank_items(np.array(scores, dtype=np.float64), exclude, n)
        predictions = prediction.tolist() if prediction is not None else [None] * len(top)
        return [self._scored(k, s, p) for k, s, p in zip(top.tolist(), score.tolist(), predictions)]

    def _scored(self, k: int, score: float, prediction: float | None = None) -> Scored:
        return Scored(self.item_ids[k], float(score), self.titles[k], self.genres[k],
                      None if prediction is None else float(prediction))

    @staticmethod
    def _label(vocab: Any, text: str) -> Any:
        """The vocabulary's own label for an API id (an int for integer vocabularies)."""
        return int(text) if vocab.is_integer else text

    def info(self) -> dict[str, Any]:
        """What the model is: kind, sizes, scale (JSON-ready)."""
        return {
            "model": self.kind,
            "users": len(self.user_ids),
            "items": len(self.item_ids),
            "scale": {**self.scale.to_dict(), "binary": bool(self.scale.is_binary),
                      "levels": [float(v) for v in self.scale.levels]},
            "titles": self.has_titles,
            "task": "rating" if self.model.predicts_ratings else "implicit",
        }


def _reasons(detail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The library's ``because`` records in the API's form (ids as strings)."""
    return [{"item_id": str(d["item"]), "title": d.get("title"), "rating": d["rating"],
             "contribution": float(d["contribution"])} for d in detail]


def _metadata(info: Any, labels: np.ndarray) -> tuple[list[str | None], list[list[str]]]:
    """Per-item titles (None when unknown) and genre lists, in vocabulary order."""
    n = len(labels)
    if info is None or len(info) == 0:
        return [None] * n, [[] for _ in range(n)]
    sub = info.reindex(labels)
    titles = [_text(v) for v in sub["title"].tolist()] if "title" in sub.columns else [None] * n
    if "genres" not in sub.columns:
        return titles, [[] for _ in range(n)]
    genres = [[g for g in (_text(v) or "").split("|") if g] for v in sub["genres"].tolist()]  # "A|B" -> [A, B]
    return titles, genres


def _text(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)
