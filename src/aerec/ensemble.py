"""An ensemble of rating networks blended on validation ratings: the ``accurate`` preset.

``EnsembleRecommender(preset="accurate")`` (``aerec train --preset accurate``) is a
:class:`~aerec.recommender.Recommender` whose predictions are

    prediction(u, i) = c + sum_k w_k * member_k(u, i)            w_k >= 0

over the networks named by ``model.members`` (:data:`aerec.models.members.MEMBERS`).

Fitting, with ``V`` the validation ratings carved from the training data (``train.validation``,
seeded by ``run.seed``, the same carve the default model selects its epochs on):

1. each member trains on the training ratings less ``V``, early-stopped on ``V``; its
   predictions of ``V`` are kept;
2. the blend ``(w, c)`` is the non-negative least-squares fit of ``V``'s ratings on those
   predictions (with a free intercept): weights fitted on ratings no member trained on;
3. each member trains on every training rating as a single model refits (its
   ``train.refit_start``): the L-BFGS networks continue their selected weights for a third of
   their chosen epochs, the Adam-trained ``i-dae`` trains afresh, from the same seed, for all of
   them; the blend of step 2 is kept.

The new-user fold-in is each member's own (chosen on ``V`` in step 1), blended with the same
weights; the ranking's calibration is fitted on the blended predictions of ``V``. The cost is
the sum of the members' training times: on ML-100K's folds 51-70 CPU seconds a fit against the
default's 5-8, about 9 times (docs/benchmarks.md, "Accuracy"), most of it the kernel network;
the ``accurate`` preset fits three times over and averages (``model.bags``, :meth:`_fit_bags`).

A saved ensemble is one model directory: the training data and bias model once, each
member's network under ``m<k>.``, and the members' settings and the blend in ``model.json``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from aerec.baseline import BiasModel
from aerec.config import Config
from aerec.data.checks import as_ratings
from aerec.data.matrix import RatingMatrix
from aerec.data.scale import RatingScale
from aerec.errors import ConfigError
from aerec.models.families import ACCURATE_MEMBERS
from aerec.models.members import MEMBERS
from aerec.recommender import Predictions, Recommender, _cells, _selection_parts
from aerec.relevance import Relevance
from aerec.training import EpochRecord, TrainResult, has_checkpoint, resolve_device

__all__ = ["Blend", "EnsembleRecommender", "fit_blend", "member_config", "rating_model", "wants_ensemble"]

log = logging.getLogger("aerec.ensemble")

# The width of the scale the members' settings were chosen on (ML-100K's 1..5).
REFERENCE_SPAN = 4.0
# Below this many validation ratings per weight, a least-squares blend is noise: equal weights.
MIN_RATINGS_PER_WEIGHT = 50
# Fit b of a bagged ensemble (model.bags) runs with run.seed + BAG_SEED_STEP * b: its own
# validation carve and member seeds, far from the seeds members take (seed + k).
BAG_SEED_STEP = 1000


def member_checkpoint_dir(checkpoint_dir: str | Path, k: int) -> Path:
    """Where member ``k`` of an ensemble keeps its checkpoints inside the run's folder."""
    return Path(checkpoint_dir) / f"member{k}"


def rating_model(config: Config) -> Recommender:
    """The rating estimator for ``config``: an :class:`EnsembleRecommender` when its settings
    list ``model.members`` (the accurate preset), else a :class:`~aerec.recommender.Recommender`.
    The workflows, ``tune`` and the command line make rating models through this."""
    cls = EnsembleRecommender if wants_ensemble(config.kind, config, {}) else Recommender
    return cls(config=config)


def wants_ensemble(kind: str, config: Config | None, model_params: dict[str, Any]) -> bool:
    """Whether ``Recommender(kind, config=config, **model_params)`` describes an ensemble (its
    resolved ``model.members`` is not empty). Unknown kinds and bad settings answer False: the
    estimator's own check then names the problem."""
    from aerec.registry import get_family, hyper_parameters

    try:
        family_kind = config.kind if config is not None and "kind" in config.model else kind
        full = Config.for_model(kind, config, model_params, model_keys=hyper_parameters(family_kind))
        params = get_family(full.kind, "explicit").resolve_params(full.model)
    except Exception:  # noqa: BLE001 - the estimator's constructor reports it properly
        return False
    return bool(getattr(params, "members", None))


@dataclasses.dataclass(frozen=True)
class Blend:
    """``prediction = intercept + weights @ member predictions`` (``weights`` ``(k,)``, >= 0)."""

    weights: tuple[float, ...]
    intercept: float
    fitted_on: int  # validation ratings the weights were fitted on (0: equal weights)

    def __call__(self, parts: list[np.ndarray]) -> np.ndarray:
        out = np.full(np.shape(parts[0]), self.intercept, dtype=np.float64)
        for w, p in zip(self.weights, parts):
            if w:
                out += w * np.asarray(p, dtype=np.float64)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"weights": list(self.weights), "intercept": self.intercept, "fitted_on": self.fitted_on}

    @classmethod
    def from_dict(cls, data: dict[str, Any], k: int) -> Blend:
        weights = tuple(float(w) for w in data["weights"])
        if len(weights) != k or not all(np.isfinite(weights)) or min(weights) < 0:
            raise ValueError(f"the blend needs {k} finite non-negative weights; got {data['weights']}")
        return cls(weights, float(data["intercept"]), int(data.get("fitted_on", 0)))


def fit_blend(parts: np.ndarray, truth: np.ndarray) -> Blend:
    """Non-negative least squares of ``truth`` ``(n,)`` on member predictions ``parts`` ``(n, k)``
    with a free intercept (both sides centred). Non-negative: a member with a negative weight
    would be a member whose errors the blend bets on, which does not carry to new data.
    Too few ratings for ``k`` weights (or weights that all vanish): the members' mean."""
    from scipy.optimize import nnls  # here, not at import: the default model's path imports this module

    n, k = parts.shape
    if n < MIN_RATINGS_PER_WEIGHT * k:
        return Blend(tuple([1.0 / k] * k), 0.0, 0)
    mean_x, mean_y = parts.mean(0), float(truth.mean())
    weights, _ = nnls(parts - mean_x, truth - mean_y)
    if not weights.sum() > 0:
        return Blend(tuple([1.0 / k] * k), 0.0, 0)
    return Blend(tuple(float(w) for w in weights), float(mean_y - weights @ mean_x), n)


def member_config(name: str, config: Config, seed: int) -> Config:
    """The settings of member ``name``: its recipe over its family's defaults, the ensemble's
    ``[train]`` and ``[run]`` tables (the user's values), member ``k``'s own seed."""
    kind, recipe, train_recipe = MEMBERS[name]
    overrides = {key: value for key, value in config.model.items() if key not in ("kind", "preset", "members", "bags")}
    # A value the user set for the ensemble (model.l2, train.patience, ...) applies to every member.
    return Config(model={"kind": kind, **recipe, **overrides}, train={**train_recipe, **config.train},
                  run={**config.run, "seed": seed})


@dataclasses.dataclass(frozen=True)
class Rescale:
    """The affine map between the data's scale and the 1..5 scale the members train on.

    The members' settings (penalties in summed squared errors, sigmoid units reading raw
    ratings) were chosen on 1..5: on a 1..100 scale the same penalty is a different amount of
    regularisation, and no one factor fixes both layers. So the members see the ratings mapped
    affinely onto 1..5 (``to_members``) and their predictions are mapped back (``to_data``);
    the bias model is affine-equivariant, so its fallbacks agree either way.
    """

    low: float
    span: float

    @classmethod
    def of(cls, scale: Any) -> Rescale | None:
        """None when the data is on 1..5 already or is 0/1 (whose members use cross-entropy)."""
        if scale.is_binary or (scale.low, scale.high) == (1, REFERENCE_SPAN + 1):
            return None
        return cls(float(scale.low), float(scale.high - scale.low))

    def to_members(self, values: np.ndarray) -> np.ndarray:
        return 1.0 + (np.asarray(values, dtype=np.float64) - self.low) * (REFERENCE_SPAN / self.span)

    def to_data(self, values: np.ndarray) -> np.ndarray:
        return self.low + (np.asarray(values, dtype=np.float64) - 1.0) * (self.span / REFERENCE_SPAN)

    def matrix(self, matrix: RatingMatrix | None) -> RatingMatrix | None:
        """``matrix`` with its ratings (and scale) mapped onto 1..5."""
        if matrix is None:
            return None
        csr = matrix.csr.copy()
        csr.data = self.to_members(csr.data).astype(csr.data.dtype)
        scale = RatingScale(1.0, 1.0 + REFERENCE_SPAN, matrix.scale.step * REFERENCE_SPAN / self.span)
        return RatingMatrix(csr, matrix.users, matrix.items, scale, matrix.timestamps, matrix.item_info,
                            matrix.implicit)


class EnsembleRecommender(Recommender):
    """A :class:`~aerec.recommender.Recommender` made of several networks blended on validation
    ratings (see the module doc). ``model.members`` names the networks (the accurate preset sets
    them); :func:`aerec.load` gives back an ensemble saved by :meth:`save`."""

    _fitted_attribute = "members_"

    def __init__(self, kind: str = "autorec", *, config: Config | None = None, **model_params: Any) -> None:
        super().__init__(kind, config=config, **model_params)
        if not getattr(self.resolved()[0], "members", None):
            raise ConfigError("an ensemble needs its networks: give preset=\"accurate\" or model.members, e.g. "
                              "EnsembleRecommender(preset=\"accurate\")")

    @classmethod
    def _reads(cls, meta: dict[str, Any]) -> bool:
        model = meta.get("model")  # a tampered file may hold anything here: the loader then names it
        return isinstance(model, dict) and bool(model.get("members"))

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: Any,
        validation: Any = None,
        *,
        progress: bool = False,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Iterable[Callable[[EpochRecord], None]] = (),
        final_checkpoint: bool = True,
    ) -> EnsembleRecommender:
        """Train every member, fit the blend on validation ratings, refit the members on all.

        Arguments as :meth:`Recommender.fit`. With ``checkpoint_dir``, member ``k``'s selection run
        keeps its checkpoints in the subfolder :func:`member_checkpoint_dir` (``member<k>``);
        ``resume`` continues each member from its own, a finished one included (its checkpoint
        holds its best weights), and starts afresh a member that had not begun. The blend and
        the refits are not checkpointed: they are replayed, to the same numbers."""
        params, train_cfg, run = self.resolved()
        validation = None if validation is None else as_ratings(validation, "the validation data")
        if params.bags > 1:
            return self._fit_bags(as_ratings(train), validation, progress=progress, checkpoint_dir=checkpoint_dir,
                                  resume=resume, callbacks=callbacks, final_checkpoint=final_checkpoint)
        matrix, fit_matrix, val_matrix = _selection_parts(as_ratings(train), validation, train_cfg, run.seed)
        names = list(params.members)
        members = [Recommender(config=member_config(name, self.config, run.seed + k)) for k, name in enumerate(names)]
        for member in members:  # every member's memory, before any of them trains
            member_params, member_train, _ = member.resolved()
            member.check_memory(member_params, member_train, fit_matrix)
        cost = ("; the accurate preset's networks take about 9 times the default model's training time "
                "(ML-100K: about 60 CPU seconds against 7)" if tuple(names) == ACCURATE_MEMBERS else "")
        log.info("ensemble: %d networks (%s), each trained as one model is (selection, then refit), one after "
                 "the other%s", len(names), ", ".join(names), cost)
        self._set_identity(matrix, params, run)
        self.rescale_ = Rescale.of(matrix.scale)
        members_see = self.rescale_.matrix if self.rescale_ is not None else (lambda m: m)
        selected = [self._select(member, name, k, members_see(fit_matrix), members_see(val_matrix), progress,
                                 callbacks, checkpoint_dir, resume, final_checkpoint)
                    for k, (name, member) in enumerate(zip(names, members))]
        val_rmse = self._fit_blend(selected, val_matrix)
        refit = validation is None and val_matrix is not None and train_cfg.refit
        self.members_ = [self._refit(m, members_see(matrix), progress) if refit else m for m in selected]
        self.refit_epochs_ = [m.refit_epochs_ for m in self.members_] if refit else None
        self._finish(matrix, val_rmse, BiasModel().fit(matrix.csr))
        if self.relevance_ is None:
            self.relevance_ = self._training_relevance(run.seed)
        log.info("ensemble: blend weights %s, intercept %.3f (validation RMSE %s)",
                 ", ".join(f"{n}={w:.2f}" for n, w in zip(names, self.blend_.weights)), self.blend_.intercept,
                 "n/a" if val_rmse is None else f"{val_rmse:.4f}")
        return self

    def _fit_bags(self, train: Any, validation: Any, **fit_args: Any) -> EnsembleRecommender:
        """Bagging (``model.bags`` = B > 1): the ensemble fitted B times, fit ``b`` with
        ``run.seed + BAG_SEED_STEP * b`` (its own validation carve, its members' own seeds; with
        ``checkpoint_dir``, in its subfolder ``bag<b>``), and the fits averaged. An average of
        linear blends is one linear blend, so the result is one ensemble of all the fits'
        members, each weight divided by B, the intercepts averaged; each member keeps its own
        fold-in choice. The ranking's calibration is the first fit's (fitted on its carve: the
        others' carves are training ratings of the first). On ML-100K's five training files the
        average of three fits scored 0.0010 below one fit on an outer 10 % (docs/benchmarks.md,
        "How the members were chosen")."""
        params, train_cfg, run = self.resolved()
        cost = (" (the accurate preset on ML-100K: about 145 CPU seconds, the default model 5)"
                if tuple(params.members) == ACCURATE_MEMBERS and params.bags == 3 else "")
        log.info("ensemble: bagging %d fits of the ensemble, each with its own validation carve and seeds; about %d "
                 "times one fit's time%s", params.bags, params.bags, cost)
        checkpoint_dir = fit_args.pop("checkpoint_dir")
        # The training matrix once (checked and numbered), for every fit and for this model.
        matrix, _, _ = _selection_parts(train, validation, train_cfg, run.seed)
        fits = []
        for b in range(params.bags):
            config = Config(model={**self.config.model, "bags": 1}, train=dict(self.config.train),
                            run={**self.config.run, "seed": run.seed + BAG_SEED_STEP * b})
            folder = None if checkpoint_dir is None else Path(checkpoint_dir) / f"bag{b}"
            fits.append(EnsembleRecommender(config=config).fit(matrix, validation, checkpoint_dir=folder, **fit_args))
        first = fits[0]
        self._set_identity(matrix, params, run)
        self.rescale_ = first.rescale_
        self.members_ = [m for fit in fits for m in fit.members_]
        self.refit_epochs_ = None if first.refit_epochs_ is None else [e for fit in fits for e in fit.refit_epochs_]
        self.blend_ = Blend(tuple(w / len(fits) for fit in fits for w in fit.blend_.weights),
                            float(np.mean([fit.blend_.intercept for fit in fits])),
                            sum(fit.blend_.fitted_on for fit in fits))
        self._finish(matrix, first.train_result_.best_val, first.bias_)
        self.relevance_ = first.relevance_
        return self

    def _fit_blend(self, selected: list[Recommender], val_matrix: RatingMatrix | None) -> float | None:
        """Fit ``blend_`` and the ranking's calibration ``relevance_`` on the validation ratings
        the ``selected`` members never trained on; returns the blend's validation RMSE. Without
        validation ratings: equal weights, and the calibration is the first member's."""
        if val_matrix is None or val_matrix.nnz == 0:
            self.blend_, self.relevance_ = fit_blend(np.zeros((0, len(selected))), np.zeros(0)), None
            return None
        users, items, truth = _cells(val_matrix.csr)  # truth on the data's scale
        parts = np.column_stack([self._to_data(m.predict_indices(users, items).values) for m in selected])
        self.blend_ = fit_blend(parts, truth.astype(np.float64))
        blended = self.blend_([parts[:, j] for j in range(parts.shape[1])])  # (n_val,), unclipped
        low, high = self.scale_.low, self.scale_.high
        self.relevance_ = Relevance.fit(blended, truth, self.scale_.liked_from(), scale_range=high - low)
        return float(np.sqrt(np.mean((np.clip(blended, low, high) - truth) ** 2)))

    def _training_relevance(self, seed: int) -> Relevance:
        """The ranking's calibration without validation ratings: fitted to the blend's
        predictions of a sample of the training ratings (as :class:`Recommender` does)."""
        csr = self.train_csr_
        pick = np.random.default_rng(seed).permutation(csr.nnz)[:50_000]
        users = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))[pick]
        pred = self.predict_indices(users, csr.indices[pick].astype(np.int64)).values
        return Relevance.fit(pred, csr.data[pick], self.scale_.liked_from(), fitted_on="training",
                             scale_range=self.scale_.high - self.scale_.low)

    def _to_data(self, values: np.ndarray) -> np.ndarray:
        """Member predictions on the data's scale (see :class:`Rescale`)."""
        return values if self.rescale_ is None else self.rescale_.to_data(values)

    def _set_identity(self, matrix: RatingMatrix, params: Any, run: Any) -> None:
        self.users_, self.items_, self.scale_ = matrix.users, matrix.items, matrix.scale
        self.item_info_, self.fingerprint_ = matrix.item_info, matrix.fingerprint()
        self.params_, self.device_ = params, resolve_device(run.device)
        self.orientation_, self.loss_ = "item", "mse"  # what model.json records; members keep their own

    def _select(self, member: Recommender, name: str, k: int, fit_matrix: RatingMatrix,
                val_matrix: RatingMatrix | None, progress: bool, callbacks: Iterable[Callable[[EpochRecord], None]],
                checkpoint_dir: str | Path | None = None, resume: bool = False,
                final_checkpoint: bool = True) -> Recommender:
        """``member`` (number ``k``, ``name``) trained on ``fit_matrix``, early-stopped on
        ``val_matrix`` (no refit)."""
        folder = None if checkpoint_dir is None else member_checkpoint_dir(checkpoint_dir, k)
        member.fit(fit_matrix, val_matrix, progress=progress, callbacks=callbacks, checkpoint_dir=folder,
                   resume=resume and folder is not None and has_checkpoint(folder), final_checkpoint=final_checkpoint)
        log.info("ensemble: member %d (%s) best validation RMSE %s at epoch %s", k, name,
                 member.train_result_.best_val, member.train_result_.best_epoch)
        return member

    def _refit(self, selected: Recommender, matrix: RatingMatrix, progress: bool) -> Recommender:
        """``selected`` trained on every training rating as its ``train.refit_start`` says:
        "selected" continues its best weights (:meth:`Recommender._refit`), "fresh" trains a
        new network of its settings and seed for its chosen number of epochs. Either keeps
        ``selected``'s new-user fold-in choice (made on the validation ratings) and calibration.
        As the default model's ``train.refit``; continuing was as accurate on held-out training
        ratings for a quarter less CPU (docs/benchmarks.md, "A cheaper refit")."""
        best = selected.train_result_.best_epoch
        if not best:
            return selected
        if selected.resolved()[1].refit_start == "selected":  # its best weights go on, as the default's
            net, rows, bias, selected.refit_epochs_ = selected._refit(selected.net_.train(), matrix, best, progress)
            selected.net_ = net.eval()
            selected._set_data(matrix, rows=rows, bias=bias)
            return selected
        config = selected.config
        train = {**config.train, "epochs": best, "validation": 0.0, "patience": 0, "refit": False}
        member = Recommender(config=Config(model=dict(config.model), train=train, run=dict(config.run)))
        member.fit(matrix, progress=progress)
        member.fold_in_choice_, member.relevance_ = selected.fold_in_choice_, selected.relevance_
        member._set_data(matrix, rows=member.rows_, bias=member.bias_)  # the read path with that choice
        member.train_result_, member.history_, member.refit_epochs_ = selected.train_result_, selected.history_, best
        return member

    def _finish(self, matrix: RatingMatrix, val_rmse: float | None, bias: BiasModel) -> None:
        """What every read needs, from the members and the training matrix (on the data's scale,
        as ``bias``, the fallback for unknown users and items)."""
        first = self.members_[0]
        self.train_csr_, self.user_counts_, self.item_counts_ = matrix.csr, matrix.user_counts(), matrix.item_counts()
        self.bias_, self.read_ = bias, first.read_  # read_: log_share (the ranking's support term)
        self.history_ = first.history_
        if val_rmse is not None or all(hasattr(m, "train_result_") for m in self.members_):  # a fit, not a load
            self.train_result_ = TrainResult(history=first.history_, best_epoch=first.train_result_.best_epoch,
                                             best_val=val_rmse, stopped=first.train_result_.stopped,
                                             seconds=sum(m.train_result_.seconds for m in self.members_))
        self.net_ = first.net_  # a network for code that reads one (e.g. its size); predictions blend all

    # ------------------------------------------------------------------ predictions
    def predict_indices(self, u: np.ndarray, i: np.ndarray) -> Predictions:
        """As :meth:`Recommender.predict_indices`: the blend of the members' clipped predictions
        (fitted that way on validation), clipped; the bias model's where the members fall back."""
        self._require_fitted()
        parts = [m.predict_indices(u, i) for m in self.members_]
        values = self.blend_([self._to_data(p.values) for p in parts])
        fallback = parts[0].fallback  # every member falls back on the same cells
        values[fallback] = self.bias_.predict(np.asarray(u, dtype=np.int64)[fallback],
                                              np.asarray(i, dtype=np.int64)[fallback])
        return Predictions(np.clip(values, self.scale_.low, self.scale_.high).astype(np.float32), fallback)

    def known_user_scores(self, user_index: int) -> np.ndarray:
        if self.user_counts_[user_index] == 0:
            return self.bias_.predict(np.full(len(self.items_), user_index), np.arange(len(self.items_)))
        return self.blend_([self._to_data(m.known_user_scores(user_index)) for m in self.members_])

    def predicted_block(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        pred = self.blend_([self._to_data(m.predicted_block(users)) for m in self.members_])  # (len(users), n_items)
        n_items = len(self.items_)
        for row in np.flatnonzero(self.user_counts_[users] == 0):
            pred[row] = self.bias_.predict(np.full(n_items, users[row]), np.arange(n_items))
        return pred

    def new_user_scores(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The blend of every member's fold-in of the new user (each chosen on validation)."""
        self._require_fitted()
        given = values if self.rescale_ is None else self.rescale_.to_members(values)
        return self.blend_([self._to_data(m.new_user_scores(idx, given)) for m in self.members_])

    # ------------------------------------------------------------------ explanations
    def _blend_shares(self, parts: list[np.ndarray]) -> np.ndarray:
        """The blend's share of each rating ``(targets, k)``: the members' shares weighted as
        their predictions are (a share is a difference of scores: the intercept and the shift
        of :class:`Rescale` drop out, its factor stays)."""
        factor = 1.0 if self.rescale_ is None else self.rescale_.span / REFERENCE_SPAN
        return sum(w * factor * part for w, part in zip(self.blend_.weights, parts))

    def _new_contributions(self, idx: np.ndarray, values: np.ndarray | None,
                           targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        given = values if self.rescale_ is None else self.rescale_.to_members(values)
        parts = [m._new_contributions(idx, given, targets)[2] for m in self.members_]
        return np.asarray(idx, dtype=np.int64), np.asarray(values, dtype=np.float64), self._blend_shares(parts)

    def _known_contributions(self, user_index: int, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = [m._known_contributions(user_index, targets)[2] for m in self.members_]
        start, end = self.train_csr_.indptr[user_index], self.train_csr_.indptr[user_index + 1]
        idx = self.train_csr_.indices[start:end].astype(np.int64)  # the members' order: the same matrix
        return idx, self.train_csr_.data[start:end].astype(np.float64), self._blend_shares(parts)

    def _item_vectors(self) -> torch.Tensor:
        """Each member's item vectors, L2-normalised, side by side ``(n_items, sum of h)``: their
        cosine is the mean of the members' cosines."""
        parts = []
        for m in self.members_:
            v = m._item_vectors()
            parts.append(v / torch.linalg.vector_norm(v, dim=1, keepdim=True).clamp_min(1e-12))
        return torch.cat(parts, dim=1) / np.sqrt(len(parts))

    # ------------------------------------------------------------------ save / load
    def _tensors(self) -> dict[str, torch.Tensor]:
        """Each member's network under ``m<k>.``; the training data and bias model once, on the
        data's scale; on another scale than 1..5 also the members' (mapped) ones under ``members.``."""
        tensors: dict[str, torch.Tensor] = {}
        for k, m in enumerate(self.members_):
            tensors.update({f"m{k}.{name}": t for name, t in m._tensors().items() if name.startswith("net.")})
        members_data = {k: v for k, v in self.members_[0]._tensors().items() if not k.startswith("net.")}
        if self.rescale_ is None:
            return {**tensors, **members_data}
        csr = self.train_csr_
        own = {"data.indptr": torch.from_numpy(csr.indptr.astype(np.int64)),
               "data.indices": torch.from_numpy(csr.indices.astype(np.int64)),
               "data.values": torch.from_numpy(csr.data.astype(np.float32)),
               **{f"bias.{k}": torch.from_numpy(v) for k, v in self.bias_.arrays().items()}}
        return {**tensors, **own, **{f"members.{k}": v for k, v in members_data.items()}}

    def _meta(self) -> dict[str, Any]:
        members = []
        for m in self.members_:
            params, train_cfg, run = m.resolved()
            members.append({"kind": m.kind, "model": dataclasses.asdict(m.params_), "train": dataclasses.asdict(train_cfg),
                            "run": dataclasses.asdict(run), "scale": m.scale_.to_dict(), "meta": m._meta()})
        rescale = None if self.rescale_ is None else dataclasses.asdict(self.rescale_)
        return {"orientation": self.orientation_, "loss": self.loss_, "members": members, "rescale": rescale,
                "blend": self.blend_.to_dict(), "relevance": self.relevance_.to_dict()}

    def _load_state(self, tensors: dict[str, Any], meta: dict[str, Any], directory: Path, params: Any,
                    run: Any) -> None:
        own = {k: v for k, v in tensors.items() if k.startswith(("data.", "bias."))}  # on the data's scale
        self.rescale_ = None if meta.get("rescale") is None else Rescale(**meta["rescale"])
        shared = own if self.rescale_ is None else {k[8:]: v for k, v in tensors.items() if k.startswith("members.")}
        self.members_ = []
        for k, spec in enumerate(meta["members"]):
            member = Recommender(config=Config(model={"kind": spec["kind"], **spec["model"]}, train=spec["train"],
                                               run=spec["run"]))
            member.params_ = member.resolved()[0]
            for attr in ("users_", "items_", "scale_", "fingerprint_", "item_info_", "device_"):
                setattr(member, attr, getattr(self, attr))
            if self.rescale_ is not None:
                member.scale_ = RatingScale.from_dict(spec["scale"])
            network = {name[len(f"m{k}."):]: t for name, t in tensors.items() if name.startswith(f"m{k}.")}
            member._load_state({**shared, **network}, spec["meta"], directory, member.params_, member.resolved()[2])
            self.members_.append(member)
        if not self.members_:
            raise ValueError("an ensemble model.json lists no members")
        self.orientation_, self.loss_ = meta["orientation"], meta["loss"]
        self.blend_ = Blend.from_dict(meta["blend"], len(self.members_))
        csr = sp.csr_array((own["data.values"].numpy(), own["data.indices"].numpy(), own["data.indptr"].numpy()),
                           shape=(len(self.users_), len(self.items_)))
        csr.has_sorted_indices = True
        matrix = RatingMatrix(csr, self.users_, self.items_, self.scale_, item_info=self.item_info_)
        bias = BiasModel.from_arrays({k[5:]: v.numpy() for k, v in own.items() if k.startswith("bias.")})
        self._finish(matrix, None, bias)
        self.relevance_ = Relevance.from_dict(meta["relevance"])

    def history_frame(self) -> pd.DataFrame:
        """The first member's selection history (each member's is logged as it trains)."""
        return self.members_[0].history_frame() if hasattr(self, "members_") else super().history_frame()

