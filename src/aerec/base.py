"""The contract every aerec estimator keeps, written once: :class:`Estimator`.

Two kinds of estimator share it (the ``feedback`` their model families learn from, :mod:`aerec.registry`):

* :class:`~aerec.recommender.Recommender` (``feedback = "explicit"``) predicts ratings and ranks
  items by the relevance of its predictions;
* :class:`~aerec.implicit.ImplicitRecommender` (``feedback = "implicit"``) ranks items from a
  user's positives and predicts no ratings.

Conventions, as in scikit-learn: the constructor only stores (and checks) settings; ``fit``
learns and returns the estimator; what it learned ends in ``_`` (``users_``, ``items_``,
``scale_``, ...); using an unfitted estimator raises :class:`~aerec.errors.NotFittedError`.
As in implicit's ``RecommenderBase``, the shared behaviour lives here and a subclass supplies
only what differs (its scores, its tensors, its history). Callers never ask "which kind is
this?": they read :attr:`Estimator.predicts_ratings` or call the method the answer needs.

A saved model is a directory (safetensors + JSON, never pickle); :meth:`Estimator.load`
reads ``model.json``'s kind and returns the estimator of that family's feedback (explicit or implicit).
"""

from __future__ import annotations

import dataclasses
import json
import math
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping

import numpy as np
import pandas as pd

from aerec.config import Config
from aerec.data.scale import RatingScale
from aerec.data.vocab import Vocabulary
from aerec.errors import ConfigError, DataError, ModelFileError, NotFittedError
from aerec.explain import DEFAULT_EXPLAIN_TOP, because_lists, check_explain
from aerec.models.family import Family
from aerec.registry import feedback_of, get_family, hyper_parameters

__all__ = ["Estimator", "NOT_A_RATING_MODEL", "check_n"]

NOT_A_RATING_MODEL = (
    "{kind} is an implicit-feedback (top-N) model: it ranks items and predicts no ratings; "
    "ask it for recommendations instead (aerec recommend, POST /v1/recommendations)"
)

# Errors that mean "model.json and model.safetensors do not describe one model": a missing
# key, a wrong type, a shape or size that does not match. Loading turns them into one
# ModelFileError that names the directory.
_MISMATCH = (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError, OverflowError)


def check_n(n: int) -> None:
    """The number of recommendations: a positive whole number (True is not one)."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise DataError("the number of recommendations must be a positive whole number", value=n)


class Estimator(ABC):
    """A recommender: fit on ratings (or events), recommend for known and brand-new users,
    evaluate, save and load.

    Subclasses set :attr:`feedback` and :attr:`predicts_ratings` and implement the abstract methods.
    Fitted state every estimator has: ``users_`` and ``items_`` (vocabularies), ``scale_`` (the
    scale new users' ratings come on), ``item_info_`` (titles and genres, or None),
    ``fingerprint_`` (of the training data), ``params_`` (resolved hyper-parameters),
    ``history_`` (per-epoch records) and ``device_``.

    Args:
        kind: the model family (see :func:`aerec.registry.families`).
        config: a full :class:`~aerec.config.Config` (its ``model.kind`` wins over ``kind``).
        **model_params: hyper-parameters of the family, e.g. ``hidden=[300]``, ``preset="..."``.
    """

    feedback: ClassVar[str]
    """What this estimator's families learn from: ``"explicit"`` ratings or ``"implicit"`` positives."""
    predicts_ratings: ClassVar[bool]
    """True when :meth:`predict` answers ratings on the model's scale and the lists carry a
    ``prediction`` column; False for top-N models, whose scores only rank items."""
    _fitted_attribute: ClassVar[str]
    """The attribute ``fit`` and ``load`` set last: its presence means "fitted"."""
    _by_feedback: ClassVar[dict[str, type[Estimator]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        feedback = cls.__dict__.get("feedback")
        if feedback is not None:  # the estimator of that feedback (a further subclass keeps its parent's)
            Estimator._by_feedback[feedback] = cls

    def __init__(self, kind: str, *, config: Config | None = None, **model_params: Any) -> None:
        family_kind = config.kind if config is not None and "kind" in config.model else kind
        self.config = Config.for_model(kind, config, model_params, model_keys=hyper_parameters(family_kind))
        self.resolved()  # fail here, not at fit, on an unknown kind or setting (a typo such as hiddden=)

    # ------------------------------------------------------------------ settings
    @property
    def kind(self) -> str:
        """The model family, e.g. ``"autorec"`` or ``"ease"``."""
        return self.config.kind

    @property
    def family(self) -> Family:
        """The family record of :attr:`kind` (a :class:`ConfigError` when the family learns from other feedback)."""
        return get_family(self.config.kind, self.feedback)

    def resolved(self) -> tuple[Any, Any, Any]:
        """(model params, TrainConfig, RunConfig) after the family's defaults and presets."""
        return self.family.resolve(self.config)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, self._fitted_attribute)

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(...) or {type(self).__name__}.load(DIR) first"
            )

    def check_predicts_ratings(self) -> None:
        """A :class:`ConfigError` when this model predicts no ratings (a top-N model)."""
        if not self.predicts_ratings:
            raise ConfigError(NOT_A_RATING_MODEL.format(kind=self.kind))

    # ------------------------------------------------------------------ what subclasses supply
    @abstractmethod
    def fit(self, train: Any, validation: Any = None, **options: Any) -> Estimator:
        """Learn from ``train`` (model selection on ``validation``); returns the estimator."""

    @abstractmethod
    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings for (user, item) label pairs (top-N models: a ConfigError)."""

    @abstractmethod
    def evaluate(self, test: Any, **options: Any) -> dict[str, Any]:
        """The model's figures on ``test``: rating errors, or ranking metrics for top-N models."""

    @abstractmethod
    def recommend_new(self, ratings: Any, n: int = 10, **options: Any) -> pd.DataFrame:
        """Top-``n`` items for a brand-new user, without retraining."""

    @abstractmethod
    def new_user_scores(self, idx: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Per-item scores ``(n_items,)`` for a new user who gave items ``idx`` (vocabulary
        indices) the ``values``; what :meth:`rank_items` ranks."""

    @abstractmethod
    def rank_items(
        self, predictions: np.ndarray, exclude: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The ``n`` best items given one user's per-item scores ``(n_items,)`` (those of
        :meth:`known_user_scores` or :meth:`new_user_scores`), leaving out ``exclude`` (a bool
        mask or indices). Returns ``(indices, scores, predicted ratings or None)``, best first."""

    @abstractmethod
    def known_user_scores(self, user_index: int) -> np.ndarray:
        """Per-item scores ``(n_items,)`` of the training user at vocabulary index ``user_index``."""

    @abstractmethod
    def rated_items(self, user_index: int) -> np.ndarray:
        """Item indices the training user at ``user_index`` gave in training (left out of lists)."""

    @abstractmethod
    def _recommend_chunk(self, users: np.ndarray, n: int, exclude_rated: bool) -> pd.DataFrame:
        """:meth:`recommend_batch`'s rows for one chunk of user indices."""

    _batch_columns: ClassVar[tuple[str, ...]] = ("user", "rank", "item", "score")

    @abstractmethod
    def history_frame(self) -> pd.DataFrame:
        """The training history as a table (what ``history.csv`` holds)."""

    @abstractmethod
    def _tensors(self) -> dict[str, Any]:
        """The tensors ``model.safetensors`` holds (weights and training data)."""

    @abstractmethod
    def _meta(self) -> dict[str, Any]:
        """``model.json``'s entries of this kind of estimator (the shared ones come from :meth:`save`)."""

    @abstractmethod
    def _plot_curves(self, path: Path, best_epoch: int | None) -> Any:
        """Draw the training curves into ``path`` (PNG)."""

    @abstractmethod
    def _load_state(self, tensors: dict[str, Any], meta: dict[str, Any], directory: Path, params: Any,
                    run: Any) -> None:
        """Rebuild the fitted state from a saved directory's tensors and ``model.json``; the
        shared entries (vocabularies, scale, item info, device) are already set."""

    # ------------------------------------------------------------------ recommend
    def recommend(self, user: Any, n: int = 10, *, exclude_rated: bool = True, explain: bool = False,
                  explain_top: int = DEFAULT_EXPLAIN_TOP) -> pd.DataFrame:
        """Top-``n`` items for a known user, best first: columns item, score (what the list is
        ranked by), prediction (rating models: the predicted rating)[, title, genres].

        Items the user gave in training are left out unless ``exclude_rated=False``; items no
        training user gave are never recommended. An unknown user is a :class:`DataError` (use
        :meth:`recommend_new`). With ``explain=True`` two more columns say why: ``because``
        (the ids of up to ``explain_top`` of the user's rated items that pushed the item up
        most, largest first) and ``because_detail`` (one ``{item, rating, contribution[,
        title]}`` record each); see :meth:`because`.
        """
        self._require_fitted()
        check_n(n)
        check_explain(explain, explain_top)
        u = int(self.users_.index([user])[0])
        exclude = self.rated_items(u) if exclude_rated else np.empty(0, dtype=np.int64)
        frame = self._top(self.known_user_scores(u), exclude, n)
        return self._explained(frame, explain_top, user_index=u) if explain else frame

    # ------------------------------------------------------------------ explanations
    def because(self, targets: np.ndarray, *, user_index: int | None = None,
                given: tuple[np.ndarray, np.ndarray] | None = None,
                top: int = DEFAULT_EXPLAIN_TOP) -> list[list[dict[str, Any]]]:
        """For each target item (vocabulary indices), up to ``top`` records ``{item, rating,
        contribution[, title]}``: the user's rated items with the largest positive
        contribution to its score, largest first (an empty list when none pushed it up).
        Rating models name only items the user liked (rated at or above
        ``scale_.liked_from()``): a low rating that raised a score is not a "because you liked".

        The user is a known one (``user_index``, their training ratings) or a new one
        (``given``: item indices and ratings, as :meth:`new_user_scores` takes them). What a
        contribution is depends on the model (docs/explanations.md): rating models split the
        fold-in's prediction exactly into one share per rating (a known user is explained by
        the fold-in of their training ratings, a close surrogate of their predictions), EASE
        splits its linear score exactly, the networks of implicit models give each item's
        leave-one-out effect (the score's drop when it is taken out of the input).
        """
        self._require_fitted()
        check_explain(True, top)
        targets = np.asarray(targets, dtype=np.int64)
        if (user_index is None) == (given is None):
            raise ValueError("give one of user_index (a known user) or given (a new user's items and ratings)")
        if given is None:
            rated, ratings, contrib = self._known_contributions(int(user_index), targets)
        else:
            rated, ratings, contrib = self._new_contributions(*given, targets)
        if self.predicts_ratings:
            # A low rating can push an item up too (disliking one item predicts liking its
            # opposite), but "because you liked" names only the items the user liked.
            contrib = np.where(ratings >= self.scale_.liked_from(), contrib, 0.0)
        titles = None
        if self.item_info_ is not None and "title" in self.item_info_.columns:
            titles = [None if pd.isna(t) else str(t)
                      for t in self.item_info_["title"].reindex(self.items_.label(rated)).tolist()]
        return because_lists(contrib, self.items_.label(rated).tolist(), ratings, top, titles)

    def _known_contributions(self, user_index: int, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rated item indices (k,), their ratings (k,), contributions (len(targets), k))`` of
        a known user; ratings NaN where the model keeps none."""
        raise NotImplementedError(f"{type(self).__name__} cannot explain its recommendations")

    def _new_contributions(self, idx: np.ndarray, values: np.ndarray | None,
                           targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :meth:`_known_contributions` for a new user who gave items ``idx`` the ``values``."""
        raise NotImplementedError(f"{type(self).__name__} cannot explain its recommendations")

    def _explained(self, frame: pd.DataFrame, top: int, **who: Any) -> pd.DataFrame:
        """``frame`` (a recommendation table) with the ``because`` and ``because_detail`` columns."""
        lists = self.because(self.items_.index(frame["item"].to_numpy()), top=top, **who) if len(frame) else []
        frame["because"] = [[record["item"] for record in records] for records in lists]
        frame["because_detail"] = lists
        return frame

    def recommend_batch(
        self, users: Any = None, n: int = 10, *, exclude_rated: bool = True, chunk: int = 1024,
        as_array: bool = False,
    ) -> pd.DataFrame | np.ndarray:
        """Top-``n`` for many known users at once (default: every user), ``chunk`` users at a time.

        Returns one row per recommendation: user, rank (1 = best), item, score[, prediction];
        the same lists as :meth:`recommend` user by user. Only a ``(chunk, n_items)`` block of
        scores exists at any moment, never users x items. With ``as_array``, a NumPy array
        ``(len(users), n)`` of item ids instead, row ``r`` the list of ``users[r]`` best first
        (for a model fitted on a matrix or array, the ids are column indices); a list shorter
        than ``n`` is padded with -1 (None for text ids).
        """
        self._require_fitted()
        check_n(n)
        if users is None:
            u_all = np.arange(len(self.users_))
        else:
            u_all = self.users_.index(np.atleast_1d(np.asarray(users, dtype=object)))
        parts = [self._recommend_chunk(u_all[s : s + chunk], n, exclude_rated) for s in range(0, len(u_all), chunk)]
        rows = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(self._batch_columns))
        return self._item_grid(rows, u_all, n) if as_array else rows

    def _item_grid(self, rows: pd.DataFrame, u_all: np.ndarray, n: int) -> np.ndarray:
        """``rows`` (user, rank, item, ...) as a ``(len(u_all), n)`` array of item ids, padded
        with -1 (None for text ids); a user asked for twice gets the same list twice."""
        uniq, inverse = np.unique(u_all, return_inverse=True)
        grid = np.full((len(uniq), n), -1, dtype=np.int64)  # item positions
        if len(rows):
            r = np.searchsorted(uniq, self.users_.index(rows["user"].to_numpy()))
            grid[r, rows["rank"].to_numpy(dtype=np.int64) - 1] = self.items_.index(rows["item"].to_numpy())
        grid = grid[inverse.reshape(-1)]
        labels = self.items_.labels
        if labels.dtype.kind in "iu":
            return np.where(grid >= 0, labels[np.maximum(grid, 0)], -1).astype(np.int64)
        out = np.full(grid.shape, None, dtype=object)
        out[grid >= 0] = labels[grid[grid >= 0]]
        return out

    def _top(self, scores: np.ndarray, exclude: np.ndarray, n: int) -> pd.DataFrame:
        """The recommendation table of one user's per-item ``scores``: item, score[, prediction]
        [, title, genres], best first."""
        top, score, prediction = self.rank_items(np.asarray(scores, dtype=np.float64), exclude, n)
        frame = pd.DataFrame({"item": self.items_.label(top), "score": score})
        if prediction is not None:
            frame["prediction"] = prediction
        return self._with_item_info(frame)

    def _with_item_info(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the title and genres of its items, where the training data had them."""
        if self.item_info_ is not None and len(frame):
            info = self.item_info_.reindex(frame["item"].to_numpy())
            for col in ("title", "genres"):
                if col in info.columns:
                    frame[col] = info[col].to_numpy()
        return frame

    # ------------------------------------------------------------------ similar items
    def similar_items(self, item: Any, n: int = 10) -> pd.DataFrame:
        """The ``n`` items most like ``item``, most similar first: columns item, score (the
        cosine similarity of the two items' representations in the model, -1..1)[, title, genres].

        Each family's item representation is the vector its scores are made from (see
        :meth:`_item_vectors`; docs/models.md, "Similar items", says which and why); both are
        L2-normalised, so the score is their cosine. ``item`` itself is left out, and so are
        items no training user rated (for implicit models: liked), about which the model learned
        nothing. An item the model does not know, or one nobody rated, is a :class:`DataError`
        naming it; so is an ``n`` that is not a positive whole number.
        """
        from aerec.ranking import top_indices

        self._require_fitted()
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise DataError("the number of similar items must be a positive whole number", value=n)
        k = self._similar_item_index(item)
        sims = np.array(self._item_similarities(k), dtype=np.float64)  # (n_items,), a copy
        sims[~self._item_support()] = -np.inf
        sims[k] = -np.inf
        top = top_indices(sims, int(n))
        return self._with_item_info(pd.DataFrame({"item": self.items_.label(top), "score": sims[top]}))

    def _similar_item_index(self, item: Any) -> int:
        """The vocabulary index of ``item`` (a :class:`DataError` naming it when unknown or unrated)."""
        k = int(self.items_.index([item], unknown="missing")[0])
        if k < 0:
            raise DataError("unknown item: the model does not know it", value=item,
                            fix=f"give one of the {len(self.items_)} items of the training data")
        if not self._item_support()[k]:
            liked = "rated" if self.predicts_ratings else "liked"
            raise DataError(f"no training user {liked} this item, so the model learned nothing about it", value=item,
                            fix=f"give an item some training user {liked}")
        return k

    def _item_support(self) -> np.ndarray:
        """``(n_items,)`` bool: the items some training user rated (implicit models: liked)."""
        return np.asarray(self.item_counts_) > 0

    def _item_similarities(self, k: int) -> np.ndarray:
        """The cosine similarity ``(n_items,)`` of item ``k``'s vector with every item's (a zero
        vector is similar to nothing)."""
        import torch

        with torch.no_grad():
            vectors = self._item_vectors()  # (n_items, d); no normalised copy (EASE's is n_items x n_items)
            norms = torch.linalg.vector_norm(vectors, dim=1).clamp_min(1e-12)  # (n_items,)
            dots = vectors @ vectors[k]  # (n_items,)
            # float32 rounding can put two near-parallel vectors' cosine just past 1.
            return (dots / (norms * norms[k])).clamp(-1.0, 1.0).double().cpu().numpy()

    def _item_vectors(self) -> Any:
        """One vector per item ``(n_items, d)`` (a tensor): what :meth:`similar_items` compares."""
        raise NotImplementedError(f"{type(self).__name__} has no item vectors")

    @staticmethod
    def _check_unknown_policy(unknown: str) -> None:
        """``recommend_new``'s ``unknown`` is ``"error"`` or ``"warn"`` (a :class:`ConfigError` otherwise)."""
        if unknown not in ("error", "warn"):
            raise ConfigError(f"unknown must be 'error' or 'warn'; got {unknown!r}")

    def _check_known_items(self, labels: list[Any], unknown: str) -> None:
        """With ``unknown="error"``, a :class:`DataError` naming a new user's items the model does
        not know (a typo must not pass silently); with ``"warn"`` they are dropped later, named
        in a warning."""
        self._check_unknown_policy(unknown)
        if unknown == "error" and labels:
            missing = [label for label, k in zip(labels, self.items_.index(labels, unknown="missing")) if k < 0]
            if missing:
                raise DataError(f"{len(missing)} item(s) the model does not know", value=missing[:5],
                                fix="rate items of the training data "
                                    "(unknown=\"warn\" drops the others with a warning)")

    # ------------------------------------------------------------------ save / load
    def save(self, directory: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """Write the model directory atomically: ``model.safetensors`` (weights and training
        data), ``model.json`` (kind, settings, vocabularies, scale), ``history.csv``,
        ``config.toml``, ``metrics.json`` and ``curves.png``; never pickle."""
        from aerec.persistence import write_model_dir

        self._require_fitted()
        _, train_cfg, run = self.resolved()
        best_epoch = getattr(getattr(self, "train_result_", None), "best_epoch", None)  # as the summary reports it
        meta = {
            "aerec_version": _version(),
            "kind": self.kind,
            "model": dataclasses.asdict(self.params_),
            "preset": self.config.model.get("preset"),
            "train": dataclasses.asdict(train_cfg),
            "run": dataclasses.asdict(run),
            "scale": self.scale_.to_dict(),
            "users": self.users_.to_list(),
            "items": self.items_.to_list(),
            "fingerprint": self.fingerprint_,
            "best_epoch": best_epoch,
            "item_info": _item_info_to_json(self.item_info_, self.items_),
            **self._meta(),
        }
        settings = Config(model={"kind": self.kind, **dataclasses.asdict(self.params_)},
                          train=dataclasses.asdict(train_cfg), run=dataclasses.asdict(run))
        extras = {
            "history.csv": self.history_frame().to_csv(index=False),
            "config.toml": settings.to_toml(),
            "metrics.json": json.dumps(metrics or {}, indent=1, default=float),
        }
        writers: dict[str, Callable[[Path], Any]] = {}
        if self.history_:
            writers["curves.png"] = lambda path: self._plot_curves(path, best_epoch)
        return write_model_dir(directory, self._tensors(), meta, extras, writers)

    @classmethod
    def load(cls, directory: str | Path) -> Estimator:
        """Load a model directory written by :meth:`save` (safetensors + JSON only, never pickle).

        ``Estimator.load`` (and :func:`aerec.load`) return the estimator of the saved family's
        feedback; a subclass's ``load`` refuses a model of the other feedback, saying how to load it. A
        missing, truncated or tampered directory is a :class:`~aerec.errors.ModelFileError`.
        """
        from aerec.device import loading_device
        from aerec.persistence import read_model_dir

        tensors, meta = read_model_dir(directory)
        saved_feedback = feedback_of(str(meta.get("kind", "")))
        target = cls._estimator_for(saved_feedback, directory, meta)
        try:
            config = Config(model={"kind": meta["kind"], **dict(meta["model"])}, train=meta["train"], run=meta["run"])
            self = target(config=config)
            params, _, run = self.resolved()
            self.params_ = params
            self.users_ = Vocabulary.from_list(meta["users"], name="user")
            self.items_ = Vocabulary.from_list(meta["items"], name="item")
            self.scale_ = RatingScale.from_dict(meta["scale"])
            self.fingerprint_ = meta["fingerprint"]
            self.item_info_ = _item_info_from_json(meta.get("item_info"))
            # A model trained on a GPU loads onto the CPU where there is none (aerec.device).
            self.device_ = loading_device(run.device)
            self._load_state(tensors, meta, Path(directory), params, run)
        except ModelFileError:
            raise
        except ConfigError as exc:  # settings this class does not take (say, an ensemble's for Recommender)
            raise ModelFileError(f"{directory}: its model.json is not valid for {target.__name__} ({exc})") from None
        except _MISMATCH as exc:
            raise ModelFileError(f"{directory}: model.json and model.safetensors do not fit together ({exc}); "
                                 "retrain the model") from None
        return self

    @classmethod
    def _estimator_for(cls, saved_feedback: str | None, directory: str | Path, meta: dict[str, Any]) -> type[Estimator]:
        """The class that loads a model of ``saved_feedback``: ``cls`` itself when it is an
        estimator of that feedback, the registered one when ``cls`` is the base."""
        if cls is not Estimator:
            if saved_feedback is not None and saved_feedback != cls.feedback:
                raise ModelFileError(_other_feedback_message(directory, meta["kind"], saved_feedback))
            target = cls
        else:
            # An unknown kind goes to the rating estimator, whose family lookup names the problem.
            target = cls._by_feedback.get(saved_feedback or "explicit")
            if target is None:  # its module not imported yet: aerec.load imports every estimator
                raise ModelFileError(f"{directory}: no estimator for {saved_feedback} models is imported; "
                                     "use aerec.load(DIR)")
        # A subclass that reads this kind of directory (an ensemble of networks, say) loads it.
        return next((sub for sub in target.__subclasses__() if sub._reads(meta)), target)

    @classmethod
    def _reads(cls, meta: dict[str, Any]) -> bool:
        """Whether a directory with this ``model.json`` needs this subclass rather than its parent."""
        return False


def _other_feedback_message(directory: str | Path, kind: str, saved_feedback: str) -> str:
    if saved_feedback == "implicit":
        return (f"{directory} holds an implicit top-N model ({kind}), not a rating model: load it with "
                f"aerec.load_model({str(directory)!r}) or ImplicitRecommender.load(...), which rank items but "
                "predict no ratings")
    return (f"{directory} holds a rating model ({kind}), not an implicit top-N model: load it with "
            f"aerec.load_model({str(directory)!r}) or Recommender.load(...)")


def _version() -> str:
    import aerec

    return aerec.__version__


def _item_info_to_json(info: pd.DataFrame | None, items: Vocabulary) -> dict[str, list] | None:
    """Titles and genres in vocabulary order, as JSON lists (None where unknown)."""
    if info is None or len(info) == 0:
        return None
    sub = info.reindex(items.labels)
    out: dict[str, list] = {}
    for col in ("title", "genres"):
        if col in sub.columns:
            out[col] = [None if (isinstance(v, float) and math.isnan(v)) or v is None else str(v) for v in sub[col].tolist()]
    out["item"] = items.to_list()
    return out


def _item_info_from_json(data: Mapping[str, list] | None) -> pd.DataFrame | None:
    if not data:
        return None
    index = pd.Index(data["item"])
    if not index.is_unique:
        raise ValueError(f"item_info names item {index[index.duplicated()][0]!r} twice")
    return pd.DataFrame({k: v for k, v in data.items() if k != "item"}, index=index)
