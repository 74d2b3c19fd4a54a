"""The estimator users hold: fit, predict, recommend (known and brand-new users), save, load.

``Recommender`` (an :class:`~aerec.base.Estimator` for explicit feedback) ties a rating
family (:mod:`aerec.registry`) to the trainer, the vocabularies and the bias fallback. Predictions read the network's output at the asked cells:
for user rows (U-AutoRec, the course's SAE) the output of a user's row, for item rows
(I-AutoRec) the output of an item's row at that user's column. Both are computed from the last
hidden layer: ``prediction(row r, column c) = out_act(W_out[c] . h_r + b_out[c])`` with
``h_r`` the penultimate activation of row ``r``'s training vector, so nothing of size
users x items is ever materialised.

Cells whose user or item had no training ratings (or is unknown) get the bias model's
prediction instead and are counted as fallbacks.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from aerec.base import Estimator, check_n
from aerec.baseline import BiasModel
from aerec.config import Config
from aerec.data.batches import dense_rows, sparse_batch
from aerec.data.matrix import RatingMatrix
from aerec.data.new_user import known_items, rating_values
from aerec.data.checks import as_ratings
from aerec.data.ratings import Ratings
from aerec.evaluation import evaluate_ratings, require_ratings
from aerec.foldin import FoldIn, FoldInChoice, Link, calibrate
from aerec.errors import ConfigError, DataError, TrainingError
from aerec.explain import DEFAULT_EXPLAIN_TOP, check_explain
from aerec.persistence import check_shapes, read_history_csv
from aerec.ranking import recommendation_rows, top_indices, top_rows
from aerec.relevance import Relevance
from aerec.training import EpochRecord, Trainer, TrainResult, fit_device, seed_everything

__all__ = ["Recommender", "Predictions", "check_n"]

# Rows whose hidden states are computed at once (bounds memory to chunk x n_inputs).
ROW_CHUNK = 2048
# A refit from the selection run's weights (train.refit_start = "selected") trains the selected
# epoch count divided by this, rounded up (benchmarks/warm_refit.py).
WARM_REFIT_DIVISOR = 3


@dataclasses.dataclass
class Predictions:
    """Predicted ratings for (user, item) pairs and which of them came from the fallback."""

    values: np.ndarray  # (n,) float32, clipped to the scale
    fallback: np.ndarray  # (n,) bool: user or item unseen in training

    @property
    def n_fallback(self) -> int:
        return int(self.fallback.sum())


def _bytes(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


class Recommender(Estimator):
    """An autoencoder recommender for explicit ratings (the :class:`~aerec.base.Estimator`
    contract, ``feedback = "explicit"``): it predicts ratings and ranks items by their relevance.

    >>> model = Recommender("autorec")                 # doctest: +SKIP
    >>> model.fit(train_ratings)                        # doctest: +SKIP
    >>> model.predict(["196"], ["242"])                 # doctest: +SKIP
    >>> model.recommend("196", n=10)                    # doctest: +SKIP
    >>> model.recommend_new({"50": 5, "172": 4}, n=10)  # doctest: +SKIP

    Args:
        kind: model family (``sae``, ``autorec``, ``deep``, ``dae``, ``sparse``).
        config: a full :class:`~aerec.config.Config` (its ``model.kind`` wins over ``kind``).
        **model_params: hyper-parameters of the family, e.g. ``hidden=[300]``, ``preset="course"``.
    """

    feedback = "explicit"
    predicts_ratings = True
    _fitted_attribute = "net_"
    _batch_columns = ("user", "rank", "item", "score", "prediction")

    def __init__(self, kind: str = "autorec", *, config: Config | None = None, **model_params: Any) -> None:
        super().__init__(kind, config=config, **model_params)
        if type(self) is Recommender and getattr(self.resolved()[0], "members", None):
            # Settings that list model.members (the accurate and blend presets) describe several
            # networks blended together: another estimator, one layer up (aerec.ensemble).
            preset = self.config.model.get("preset") or "accurate"
            raise ConfigError(f"these settings list model.members (the {preset} preset): an ensemble of networks; "
                              f"use aerec.EnsembleRecommender(preset=\"{preset}\") (command line: aerec train "
                              f"--preset {preset}); a saved one loads with aerec.load(DIR)")

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: Ratings | RatingMatrix,
        validation: Ratings | RatingMatrix | None = None,
        *,
        progress: bool = False,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Iterable[Callable[[EpochRecord], None]] = (),
        final_checkpoint: bool = True,
    ) -> Recommender:
        """Train on ``train``; select the best epoch on ``validation``.

        Without ``validation``, ``train.validation`` (default 5%) of the training ratings are
        carved off at random (seeded) for model selection and early stopping; they return to
        the inputs once training ends, so predictions use every training rating. With
        ``train.refit`` (the ``autorec`` default) the carve only chooses the number of epochs,
        and the model kept then trains on every training rating: the selection run's best
        weights for a third of those epochs (``train.refit_start = "selected"``, the ``autorec``
        default) or a fresh network for all of them (``"fresh"``). ``history_`` stays the
        selection run's; ``refit_epochs_`` says how many epochs the refit trained. A
        ``validation`` set given here is never refitted on; it is read by user and item label,
        its users and items unknown to ``train`` dropped (a matrix with its own numbering too).
        ``checkpoint_dir``, ``resume`` and ``final_checkpoint`` are the selection run's
        (:class:`~aerec.training.Trainer`; the refit is replayed, not checkpointed).
        """
        params, train_cfg, run = self.resolved()
        validation = None if validation is None else as_ratings(validation, "the validation data")
        matrix, fit_matrix, val_matrix = _selection_parts(as_ratings(train), validation, train_cfg, run.seed)

        self.users_, self.items_, self.scale_ = matrix.users, matrix.items, matrix.scale
        self.orientation_ = params.orientation
        self.loss_ = params.loss if params.loss != "auto" else ("bce" if matrix.scale.is_binary else "mse")
        self.item_info_ = matrix.item_info
        self.fingerprint_ = matrix.fingerprint()
        self.device_ = fit_device(run.device, run.threads)

        if self.loss_ == "bce" and getattr(params, "baseline", False):
            params = dataclasses.replace(params, baseline=False)  # a rating-scale bias makes no sense on logits
        self.params_ = params

        self.check_memory(params, train_cfg, fit_matrix)
        net, rows, fit_bias = self._new_network(params, run, fit_matrix)
        validate = None
        if val_matrix is not None and val_matrix.nnz:
            # Selection uses the fit part only: the validation cells are never inputs here.
            val_bias = fit_bias
            val_users, val_items, val_true = _cells(val_matrix.csr)
            validate = self._validator(rows, fit_matrix, val_bias, val_users, val_items, val_true)
        trainer = Trainer(
            train_cfg, seed=run.seed, device=self.device_, progress=progress,
            checkpoint_dir=checkpoint_dir, final_checkpoint=final_checkpoint, callbacks=callbacks,
            precision=run.precision, compile=run.compile,
        )
        result: TrainResult = trainer.fit(
            net, rows, loss=self.loss_, l2=params.l2, code_l1=params.code_l1, validate=validate, resume=resume
        )
        self.fold_in_choice_, self.relevance_ = self._calibrate(net, rows, fit_matrix, val_matrix, fit_bias, run.seed)
        self.refit_epochs_, full = None, {}
        if train_cfg.refit and validation is None and val_matrix is not None and result.best_epoch:
            # Not checkpointed: after a crash, --resume finds the selection run finished (with its
            # best weights) and replays this refit from the start, to the same weights.
            net, rows, bias, self.refit_epochs_ = self._refit(net, matrix, result.best_epoch, progress)
            full = {"rows": rows, "bias": bias}  # what _set_data would compute again
        self.net_ = net.eval()
        self.train_result_ = result
        self.history_ = result.history
        self._set_data(matrix, **full)
        return self

    def _refit(self, net, matrix: RatingMatrix, best_epoch: int, progress: bool = False):
        """``train.refit``: train on every rating of ``matrix`` after a selection run whose best
        epoch was ``best_epoch`` and whose best weights ``net`` holds. ``train.refit_start``
        "selected" continues ``net`` (modified in place), "fresh" trains a new network; returns
        ``(net, rows, bias, epochs)``: the network, its CSR rows and bias model, the epochs run."""
        _, train_cfg, run = self.resolved()
        params = self.params_
        if train_cfg.refit_start == "selected":
            # The selection run's best weights go on training on every rating, over every
            # rating's bias model, for a third of their epochs: as accurate on held-out
            # training ratings as a fresh network trained them all (ML-100K u1..u5.base),
            # for about a third of its time (docs/training.md, "The refit").
            rows, bias = matrix.rows(params.orientation), BiasModel().fit(matrix.csr)
            self._use_baseline(net, params, bias)
            epochs = -(-best_epoch // WARM_REFIT_DIVISOR)
        else:
            net, rows, bias = self._new_network(params, run, matrix)
            epochs = best_epoch
        refit_cfg = dataclasses.replace(train_cfg, epochs=epochs, validation=0.0, patience=0)
        Trainer(refit_cfg, seed=run.seed, device=self.device_, progress=progress, precision=run.precision,
                compile=run.compile).fit(net, rows, loss=self.loss_, l2=params.l2, code_l1=params.code_l1)
        return net, rows, bias, epochs

    def check_memory(self, params: Any, train_cfg: Any, matrix: RatingMatrix) -> int:
        """The bytes a fit of ``params`` on ``matrix`` holds at its peak (its weights times
        :func:`~aerec.training.optimizers.weight_copies`); a TrainingError, with the numbers and
        the ways out, when that is more memory than the machine has available. Counted on the
        meta device, so nothing is allocated: a network too large to fit fails before training,
        not when the kernel kills the process half-way."""
        from aerec import _memory
        from aerec.training.optimizers import LBFGS_HISTORY, weight_copies

        n_inputs = matrix.rows(params.orientation).shape[1]
        with torch.device("meta"):
            weights = sum(p.numel() for p in self.family.build(params, n_inputs).parameters())
        copies = weight_copies(train_cfg)
        need, have = weights * 4 * copies, _memory.available_memory()
        if have is not None and need > have:
            keeps = f"{2 * LBFGS_HISTORY} for its stored steps" if train_cfg.optimizer == "lbfgs" else "its own state"
            rows = "users" if params.orientation == "item" else "items"
            raise TrainingError(
                f"{self.config.kind} on {n_inputs:,} {rows} (model.hidden = {list(params.hidden)}) has {weights:,} "
                f"weights; training it with {train_cfg.optimizer} keeps about {copies} copies of them ({keeps}, "
                f"gradients, best weights), about {_bytes(need)}, but {_bytes(have)} of memory is available: it "
                f"does not fit in memory. Use a smaller model.hidden (--set model.hidden=[100]), filter rare {rows}, "
                "or train with --set train.optimizer=adam --set train.batch_size=256 (about 5 copies)"
            )
        return need

    def _new_network(self, params, run, matrix: RatingMatrix):
        """A freshly initialised network (from ``run.seed``) with ``matrix``'s bias model as its
        baseline; returns ``(net, rows, bias)``, ``rows`` the CSR rows it trains on."""
        seed_everything(run.seed)
        rows = matrix.rows(params.orientation)
        net = self.family.build(params, rows.shape[1])
        bias = BiasModel().fit(matrix.csr)
        self._use_baseline(net, params, bias)
        return net, rows, bias

    @staticmethod
    def _use_baseline(net, params, bias: BiasModel) -> None:
        """Make ``bias`` the bias model ``net``'s output is relative to (where it has one)."""
        if getattr(net, "use_baseline", False):
            col_bias, row_reg = (
                (bias.item_bias_, bias.reg_user) if params.orientation == "user" else (bias.user_bias_, bias.reg_item)
            )
            net.set_baseline(bias.mu_, torch.from_numpy(col_bias), row_reg)

    @torch.no_grad()
    def _calibrate(self, net, rows, fit_matrix: RatingMatrix, val_matrix: RatingMatrix | None, bias: BiasModel,
                   seed: int) -> tuple[FoldInChoice, Relevance]:
        """Choose the new-user fold-in's knobs and fit the ranking's calibration on validation
        ratings the selection network ``net`` never trained on (``fit_matrix`` its inputs).

        Without validation ratings the fold-in keeps its default and the calibration is fitted
        to a sample of the training ratings (docs/new_users.md)."""
        threshold = self.scale_.liked_from()
        span = self.scale_.high - self.scale_.low
        if val_matrix is None or val_matrix.nnz == 0:
            csr = fit_matrix.csr
            pick = np.random.default_rng(seed).permutation(csr.nnz)[:50_000]
            users = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))[pick]
            r, c = (users, csr.indices[pick]) if self.orientation_ == "user" else (csr.indices[pick], users)
            # Unclipped, as the lists rank: what lies above the top of the scale still ranks higher.
            pred = self._cells_from_net(net, rows, r, c)
            return FoldInChoice(), Relevance.fit(pred, csr.data[pick], threshold, fitted_on="training", scale_range=span)
        v_users, v_items, v_true = _cells(val_matrix.csr)
        known = (fit_matrix.user_counts()[v_users] > 0) & (fit_matrix.item_counts()[v_items] > 0)
        r, c = (v_users, v_items) if self.orientation_ == "user" else (v_items, v_users)
        pred = self._cells_from_net(net, rows, r[known], c[known])  # unclipped, as the lists rank
        relevance = Relevance.fit(pred, v_true[known], threshold, scale_range=span)
        path = _ReadPath.from_network(self, net, rows, fit_matrix.csr, fit_matrix.user_counts(), bias, FoldInChoice())
        fit_csr, val_csr = fit_matrix.csr, val_matrix.csr
        users = np.flatnonzero(np.diff(val_csr.indptr) > 0)
        slices = [(fit_csr.indptr[u], fit_csr.indptr[u + 1], val_csr.indptr[u], val_csr.indptr[u + 1]) for u in users]
        choice = calibrate(
            path.fold_in,
            [fit_csr.indices[a:b] for a, b, _, _ in slices], [fit_csr.data[a:b] for a, b, _, _ in slices],
            [val_csr.indices[a:b] for _, _, a, b in slices], [val_csr.data[a:b] for _, _, a, b in slices],
            self.scale_.low, self.scale_.high, np.random.default_rng(seed),
        )
        return choice, relevance

    def _validator(self, rows, fit_matrix, bias, users, items, truth):
        counts_u, counts_i = fit_matrix.user_counts(), fit_matrix.item_counts()
        known = (counts_u[users] > 0) & (counts_i[items] > 0)
        r, c = (users, items) if self.orientation_ == "user" else (items, users)
        fallback = bias.predict(users[~known], items[~known])

        def validate(net) -> float:
            pred = np.empty(len(truth), dtype=np.float32)
            pred[known] = self._cells_from_net(net, rows, r[known], c[known])
            pred[~known] = fallback
            pred = np.clip(pred, self.scale_.low, self.scale_.high)
            return float(np.sqrt(np.mean((pred - truth) ** 2)))

        return validate

    def _set_data(self, matrix: RatingMatrix, *, rows: sp.csr_array | None = None, bias: BiasModel | None = None) -> None:
        """Remember the training matrix (the input at prediction time) and prepare the read path;
        ``rows`` and ``bias``, when given, are ``matrix``'s rows and bias model, already made."""
        self.train_csr_ = matrix.csr
        self.rows_ = matrix.rows(self.orientation_) if rows is None else rows
        self.user_counts_ = matrix.user_counts()
        self.item_counts_ = matrix.item_counts()
        self.bias_ = BiasModel().fit(matrix.csr) if bias is None else bias
        # Everything a request reads is computed here, once: the read path never mutates the
        # model afterwards, so concurrent requests are safe without a lock.
        self.read_ = _ReadPath.build(self)

    # ------------------------------------------------------------------ network read-outs
    def _output(self, values: torch.Tensor) -> torch.Tensor:
        """Network output -> rating scale (sigmoid for binary cross-entropy logits)."""
        return torch.sigmoid(values) if self.loss_ == "bce" else values

    def _hidden(self, net, rows: sp.csr_array, index: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Penultimate activations ``(len(index), h)`` and row offsets ``(len(index),)`` of rows."""
        hidden, offsets = [], []
        for s in range(0, len(index), ROW_CHUNK):
            if hasattr(net, "encode_sparse"):
                # The sparse path reads only the observed cells: no (chunk, n_inputs) block, and
                # faster at any density below about 50 % (docs/benchmarks.md, "Performance").
                batch = sparse_batch(rows, index[s : s + ROW_CHUNK], device=self.device_)
                hidden.append(net.penultimate(net.encode_sparse(batch)))
                offsets.append(net.row_offset_sparse(batch))
                continue
            x, mask = dense_rows(rows, index[s : s + ROW_CHUNK], device=self.device_)
            hidden.append(net.penultimate(net.encode(x, mask)))
            offsets.append(net.row_offset(x, mask))
        if not hidden:
            return torch.empty(0, device=self.device_), torch.empty(0, device=self.device_)
        return torch.cat(hidden), torch.cat(offsets)

    @torch.no_grad()
    def _cells_from_net(self, net, rows: sp.csr_array, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Predictions at cells (row r, column c) of the network's orientation (before clipping)."""
        if len(r) == 0:
            return np.empty(0, dtype=np.float32)
        uniq, inverse = np.unique(r, return_inverse=True)
        weight, bias = net.output_layer()
        col_off = net.col_offset()
        out = np.empty(len(r), dtype=np.float32)
        cols = torch.from_numpy(c.astype(np.int64)).to(self.device_)
        inv = torch.from_numpy(inverse.astype(np.int64)).to(self.device_)
        for s in range(0, len(uniq), ROW_CHUNK):
            h, row_off = self._hidden(net, rows, uniq[s : s + ROW_CHUNK])  # (chunk, h), (chunk,)
            sel = torch.nonzero((inv >= s) & (inv < s + ROW_CHUNK)).squeeze(1)
            local, cc = inv[sel] - s, cols[sel]
            raw = net.output_act((h[local] * weight[cc]).sum(-1) + bias[cc])  # (cells,)
            vals = self._output(raw) + row_off[local] + col_off[cc]
            out[sel.cpu().numpy()] = vals.float().cpu().numpy()
        return out

    # ------------------------------------------------------------------ predict
    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings for (user, item) label pairs, clipped to the scale."""
        return self.predict_pairs(users, items).values

    def predict_pairs(self, users: Any, items: Any) -> Predictions:
        """Predictions plus which pairs used the bias fallback (unknown or unrated user/item)."""
        self._require_fitted()
        u = self.users_.index(np.atleast_1d(np.asarray(users, dtype=object)), unknown="missing")
        i = self.items_.index(np.atleast_1d(np.asarray(items, dtype=object)), unknown="missing")
        if len(u) != len(i):
            raise DataError("users and items must have the same length", value=(len(u), len(i)))
        return self.predict_indices(u, i)

    def predict_indices(self, u: np.ndarray, i: np.ndarray) -> Predictions:
        """As :meth:`predict_pairs` for vocabulary indices (-1 = unknown)."""
        self._require_fitted()
        u, i = np.asarray(u, dtype=np.int64), np.asarray(i, dtype=np.int64)
        known = (u >= 0) & (i >= 0)
        known[known] = (self.user_counts_[u[known]] > 0) & (self.item_counts_[i[known]] > 0)
        values = self.bias_.predict(u, i)
        r, c = (u, i) if self.orientation_ == "user" else (i, u)
        values[known] = self._cells_from_net(self.net_, self.rows_, r[known], c[known])
        return Predictions(np.clip(values, self.scale_.low, self.scale_.high).astype(np.float32), ~known)

    # ------------------------------------------------------------------ recommend
    def known_user_scores(self, user_index: int) -> np.ndarray:
        """Predicted ratings of every item for a known user, ``(n_items,)`` (not clipped); a user
        with no training ratings gets the bias model's."""
        if self.user_counts_[user_index] == 0:
            return self.bias_.predict(np.full(len(self.items_), user_index), np.arange(len(self.items_)))
        return self.read_.known_user(self, user_index)

    def rated_items(self, user_index: int) -> np.ndarray:
        """The items the user at ``user_index`` rated in training (indices)."""
        return self.train_csr_.indices[self.train_csr_.indptr[user_index] : self.train_csr_.indptr[user_index + 1]]

    def rank_items(self, predictions: np.ndarray, exclude: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The ``n`` most relevant items given one user's predicted ratings ``(n_items,)``.

        Ranks by relevance (:mod:`aerec.relevance`: the item's share of raters times the
        calibrated chance of a rating at or above the "liked" level), never by the clipped
        prediction, so ties at the top of the scale and items a handful of people rated do
        not decide the head of the list. ``exclude`` is a bool mask or indices of items to
        leave out. Returns ``(indices, relevance, clipped predictions)``, best first.
        """
        check_n(n)
        scores = self.relevance_.log_scores(predictions, self.read_.log_share)  # (n_items,); -inf: nobody rated
        scores[exclude] = -np.inf
        top = top_indices(scores, n)
        return top, np.exp(scores[top]), np.clip(predictions[top], self.scale_.low, self.scale_.high)

    def recommend(self, user: Any, n: int = 10, *, exclude_rated: bool = True, explain: bool = False,
                  explain_top: int = DEFAULT_EXPLAIN_TOP) -> pd.DataFrame:
        """Top-``n`` items for a known user: columns item, score (the relevance the list is
        ranked by, see :meth:`rank_items`), prediction (the predicted rating)[, title, genres].

        Items the user rated in training are left out unless ``exclude_rated=False``; so are
        items nobody rated. An unknown user is a :class:`DataError` (use :meth:`recommend_new`).
        ``explain=True`` adds the ``because`` and ``because_detail`` columns
        (:meth:`~aerec.base.Estimator.recommend`).
        """
        return super().recommend(user, n, exclude_rated=exclude_rated, explain=explain, explain_top=explain_top)

    def recommend_batch(
        self, users: Any = None, n: int = 10, *, exclude_rated: bool = True, chunk: int = 1024,
        as_array: bool = False,
    ) -> pd.DataFrame | np.ndarray:
        """Top-``n`` for many known users at once (default: every user), ``chunk`` users at a time.

        Returns one row per recommendation: user, rank (1 = best), item, score (relevance),
        prediction; the same lists as :meth:`recommend`. Only a ``(chunk, n_items)`` block of
        scores exists at any moment, never users x items. ``as_array=True``: a ``(len(users), n)``
        NumPy array of item ids instead (see :meth:`~aerec.base.Estimator.recommend_batch`).
        """
        return super().recommend_batch(users, n, exclude_rated=exclude_rated, chunk=chunk, as_array=as_array)

    def _recommend_chunk(self, u: np.ndarray, n: int, exclude_rated: bool) -> pd.DataFrame:
        pred = self.predicted_block(u)  # (len(u), n_items)
        scores = torch.from_numpy(self.relevance_.log_scores(pred, self.read_.log_share))  # as ranking_block
        index, values = top_rows(scores, self.train_csr_[u] if exclude_rated else None, n)  # (len(u), n)
        rows = recommendation_rows(self.users_.label(u), self.items_.labels, index, np.exp(values))
        picked = np.take_along_axis(pred, np.maximum(index, 0), axis=1)[index >= 0]  # row-major, as the rows
        rows["prediction"] = np.clip(picked, self.scale_.low, self.scale_.high)
        return rows

    def predicted_block(self, users: np.ndarray) -> np.ndarray:
        """Predicted ratings ``(len(users), n_items)`` (float64, not clipped) of known users by
        vocabulary index; a user with no training ratings gets the bias model's, as in
        :meth:`recommend`."""
        users = np.asarray(users, dtype=np.int64)
        pred = self.read_.user_block(self, users)
        cold = np.flatnonzero(self.user_counts_[users] == 0)
        if len(cold):
            items = np.tile(np.arange(len(self.items_)), len(cold))
            pred[cold] = self.bias_.predict(np.repeat(users[cold], len(self.items_)), items).reshape(len(cold), -1)
        return pred

    def ranking_block(self, users: np.ndarray) -> torch.Tensor:
        """The log relevance ``(len(users), n_items)`` that lists are ranked by (float64; -inf
        for items nobody rated), for known users by vocabulary index."""
        return torch.from_numpy(self.relevance_.log_scores(self.predicted_block(users), self.read_.log_share))

    def recommend_new(self, ratings: Mapping[Any, float], n: int = 10, *, unknown: str = "error",
                      explain: bool = False, explain_top: int = DEFAULT_EXPLAIN_TOP) -> pd.DataFrame:
        """Top-``n`` items for a brand-new user from a few ``{item: rating}`` (no retraining).

        The ratings are folded into the trained network (:mod:`aerec.foldin`): the user's
        part of its last layer is estimated from the ratings given, shrunk toward the trained
        users as much as validation chose for that many ratings; with none (an empty dict)
        the list is the cold-start one. Items the user rated are left out. A rating off the
        scale, NaN, or one item given twice is a :class:`DataError`; so is an item the model
        does not know, unless ``unknown="warn"`` (dropped with a warning naming it).
        ``explain=True`` adds the ``because`` and ``because_detail`` columns: each rating's exact
        share of the fold-in's prediction (:meth:`~aerec.base.Estimator.because`).
        """
        self._require_fitted()
        check_n(n)
        check_explain(explain, explain_top)
        idx, values = self._new_user_vector(ratings, unknown)
        exclude = np.zeros(len(self.items_), dtype=bool)
        exclude[idx] = True
        frame = self._top(self.new_user_scores(idx, values), exclude, n)
        return self._explained(frame, explain_top, given=(idx, values)) if explain else frame

    # ------------------------------------------------------------------ explanations
    def _new_contributions(self, idx: np.ndarray, values: np.ndarray | None,
                           targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact: the fold-in's prediction is linear in the ratings (before the output link),
        so each rating's term is its contribution (:meth:`aerec.foldin.FoldIn.contributions`)."""
        idx = np.asarray(idx, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        return idx, values, self.read_.fold_in.contributions(idx, values, targets)

    def _known_contributions(self, user_index: int, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A surrogate: the fold-in of the user's training ratings, trusting the network fully
        (the average user's prior, alpha 1). A trained user's own part of the last layer was
        fitted to the same ratings by the same kind of regularised regression, so the
        surrogate's predictions follow the network's closely (docs/explanations.md measures how
        closely); a user with no training ratings has nothing to explain."""
        start, end = self.train_csr_.indptr[user_index], self.train_csr_.indptr[user_index + 1]
        idx = self.train_csr_.indices[start:end].astype(np.int64)
        values = self.train_csr_.data[start:end].astype(np.float64)
        return idx, values, self.read_.fold_in.contributions(idx, values, targets, prior="model", alpha=1.0)

    def new_user_scores(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Predicted ratings ``(n_items,)`` (not clipped) of every item for a new user who rated
        items ``idx`` with ``values`` (indices into the item vocabulary; already checked
        against the scale)."""
        self._require_fitted()
        idx = np.asarray(idx, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        return self.read_.fold_in.scores(idx, values)

    def _new_user_vector(self, ratings: Mapping[Any, float], unknown: str = "error") -> tuple[np.ndarray, np.ndarray]:
        self._check_unknown_policy(unknown)  # a bad policy is named before the ratings are read
        labels, values = rating_values(ratings, self.scale_, fix="use ratings on the model's scale")
        self._check_known_items(labels, unknown)
        return known_items(labels, values, self.items_, stacklevel=4)

    # ------------------------------------------------------------------ similar items
    def _item_vectors(self) -> torch.Tensor:
        """One vector per item ``(n_items, h)``, less the mean of the rated items' vectors.

        Item rows (I-AutoRec, dae, sparse): the item's code, the last hidden layer's output for
        its column of ratings (``h_i`` in ``g(h_i . w_u + b_u)``). User rows (U-AutoRec, sae,
        deep): the item's column of the first encoder layer, how a rating of the item moves a
        user's code (on ML-100K its neighbours share genres more often than those of the
        output layer's rows: docs/models.md, "Similar items"). The common part is removed: a
        vector added to every item's code adds one number to all of a user's scores and changes
        no list, so only the centred vectors say how items differ.
        """
        if self.orientation_ == "item":
            vectors = self.read_.hidden
        else:
            weight = self.net_.encoder[0].weight.detach()  # (h, n), or (h, 2n) with mask_input
            n = len(self.items_)
            # With mask_input the item also has a column for "rated it at all": both halves.
            vectors = torch.cat([weight[:, :n].T, weight[:, n:].T], dim=1) if weight.shape[1] == 2 * n else weight.T
        rated = torch.from_numpy(np.asarray(self.item_counts_) > 0).to(vectors.device)
        return vectors - vectors[rated].mean(0, keepdim=True)

    # ------------------------------------------------------------------ evaluate
    def evaluate(self, test: Ratings, *, k: int | None = 10, relevant: float | None = None) -> dict[str, Any]:
        """Rating errors on ``test`` (rmse, mae, n, n_fallback, rmse_per_user) and the ranking
        figures of its top-``k`` lists; see :func:`~aerec.evaluation.evaluate_ratings`."""
        self._require_fitted()
        return evaluate_ratings(self, test, k=k, relevant=relevant)

    # ------------------------------------------------------------------ save / load
    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        csr = self.train_csr_
        tensors.update({
            "data.indptr": torch.from_numpy(csr.indptr.astype(np.int64)),
            "data.indices": torch.from_numpy(csr.indices.astype(np.int64)),
            "data.values": torch.from_numpy(csr.data.astype(np.float32)),
        })
        tensors.update({f"bias.{k}": torch.from_numpy(v) for k, v in self.bias_.arrays().items()})
        return tensors

    def _meta(self) -> dict[str, Any]:
        return {
            "orientation": self.orientation_,
            "loss": self.loss_,
            "n_inputs": int(self.rows_.shape[1]),
            "fold_in": self.fold_in_choice_.to_dict(),
            "relevance": self.relevance_.to_dict(),
        }

    def _plot_curves(self, path: Path, best_epoch: int | None) -> Any:
        from aerec.plots import plot_history

        # The epoch the summary reports as best (early stopping's choice), not a recomputed one.
        return plot_history(self.history_frame(), path, title=f"aerec {self.config.kind}", best_epoch=best_epoch)

    @classmethod
    def load(cls, directory: str | Path) -> Recommender:
        """Load a model directory written by :meth:`save` (safetensors + JSON only); a directory
        that holds an implicit top-N model is a :class:`~aerec.errors.ModelFileError` saying
        how to load it."""
        return super().load(directory)  # type: ignore[return-value]

    def _load_state(self, tensors: dict[str, Any], meta: dict[str, Any], directory: Path, params: Any,
                    run: Any) -> None:
        self.orientation_ = _one_of(meta["orientation"], ("user", "item"), "orientation")
        self.loss_ = _one_of(meta["loss"], ("mse", "bce"), "loss")
        family, n_inputs = self.family, int(meta["n_inputs"])
        state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        # Shapes first, on the meta device (no memory): a tampered n_inputs or hidden size
        # must not make the real build allocate terabytes (docs/reliability.md).
        with torch.device("meta"):
            check_shapes(family.build(params, n_inputs).state_dict(), state, directory)
        net = family.build(params, n_inputs)
        net.load_state_dict(state)
        self.net_ = net.to(self.device_).eval()
        csr = sp.csr_array(
            (tensors["data.values"].numpy(), tensors["data.indices"].numpy(), tensors["data.indptr"].numpy()),
            shape=(len(self.users_), len(self.items_)),
        )
        csr.check_format(full_check=True)  # ValueError for indices out of range, not a crash later
        csr.has_sorted_indices = True
        matrix = RatingMatrix(csr, self.users_, self.items_, self.scale_, item_info=self.item_info_)
        bias = BiasModel.from_arrays({k[5:]: v.numpy() for k, v in tensors.items() if k.startswith("bias.")})
        if (len(bias.user_bias_), len(bias.item_bias_)) != (len(self.users_), len(self.items_)):
            raise ValueError("the bias model's sizes do not match the user and item vocabularies")
        # Models saved before the fold-in was calibrated keep its default; before the
        # ranking was calibrated, the calibration is fitted to their training ratings.
        self.fold_in_choice_ = FoldInChoice.from_dict(meta.get("fold_in"))
        self._set_data(matrix, bias=bias)
        if meta.get("relevance") is not None:
            self.relevance_ = Relevance.from_dict(meta["relevance"])
        else:
            self.relevance_ = self._calibrate(self.net_, self.rows_, matrix, None, bias, run.seed)[1]
        self.history_ = _read_history(directory / "history.csv")

    def history_frame(self) -> pd.DataFrame:
        """Per-epoch history (epoch, loss, train_rmse, val_rmse, lr, seconds)."""
        return pd.DataFrame([dataclasses.asdict(r) for r in getattr(self, "history_", [])],
                            columns=["epoch", "loss", "train_rmse", "val_rmse", "lr", "seconds"])


@dataclasses.dataclass
class _ReadPath:
    """What every prediction and recommendation reads, computed once after fit or load.

    For the network's rows (users or items) ``hidden`` ``(n_rows, h)`` and ``row_off``
    ``(n_rows,)``; for its columns the output layer ``weight`` ``(n_cols, h)``, ``bias`` and
    ``col_off`` ``(n_cols,)``. ``fold_in`` answers brand-new users (:mod:`aerec.foldin`) and
    ``log_share`` ``(n_items,)`` is each item's log share of the users who rated it, the
    support term of the ranking (:mod:`aerec.relevance`; -inf for items nobody rated).
    """

    hidden: torch.Tensor
    row_off: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor
    col_off: torch.Tensor
    fold_in: FoldIn
    log_share: np.ndarray

    @classmethod
    def build(cls, model: Recommender) -> _ReadPath:
        return cls.from_network(model, model.net_, model.rows_, model.train_csr_, model.user_counts_, model.bias_,
                                getattr(model, "fold_in_choice_", None))

    @classmethod
    @torch.no_grad()
    def from_network(cls, model: Recommender, net, rows: sp.csr_array, csr: sp.csr_array, user_counts: np.ndarray,
                     bias_model: BiasModel, choice: FoldInChoice | None) -> _ReadPath:
        """The read path of ``net`` trained on ``rows`` (the orientation's view of ``csr``)."""
        hidden, row_off = model._hidden(net, rows, np.arange(rows.shape[0]))
        weight, bias = (t.detach() for t in net.output_layer())
        col_off = net.col_offset().detach()
        h, w, b, ro, co = (t.double().cpu().numpy() for t in (hidden, weight, bias, row_off, col_off))
        active = np.asarray(user_counts) > 0
        if model.orientation_ == "item":
            # score(u, i) = g(h_i . w_u + b_u) + (mu + b_i) + c_u: item codes are the features.
            ones = np.ones((len(h), 1))
            features, theta, offset = np.hstack([h, ones, ones]), np.column_stack([w, b, co])[active], ro
        else:
            # score(u, i) = g(v_i . h_u + b_i) + c_i + (mu + b_u): output rows are the features.
            features, theta, offset = np.hstack([w, np.ones((len(w), 1))]), np.column_stack([h, ro])[active], b + co
        link = Link(getattr(net, "output_act_name", "identity"), logits=model.loss_ == "bce")
        bias_mean = bias_model.mu_ + bias_model.item_bias_.astype(np.float64)
        fold_in = FoldIn(features, offset, theta, link, bias_mean, bias_model.reg_user, (csr.indices, csr.data), choice)
        counts = np.bincount(csr.indices, minlength=csr.shape[1]).astype(np.float64)  # (n_items,)
        with np.errstate(divide="ignore"):
            log_share = np.log(counts / max(int(active.sum()), 1))
        return cls(hidden, row_off, weight, bias, col_off, fold_in, log_share)

    @torch.no_grad()
    def known_user(self, model: Recommender, u: int) -> np.ndarray:
        net = model.net_
        if model.orientation_ == "user":
            raw = self.hidden[u] @ self.weight.T + self.bias  # (n_items,)
            out = model._output(net.output_act(raw)) + self.row_off[u] + self.col_off
        else:
            raw = self.hidden @ self.weight[u] + self.bias[u]  # (n_items,)
            out = model._output(net.output_act(raw)) + self.row_off + self.col_off[u]
        return out.double().cpu().numpy()

    @torch.no_grad()
    def user_block(self, model: Recommender, users: np.ndarray) -> np.ndarray:
        """Scores ``(len(users), n_items)`` of known users (float64)."""
        net, u = model.net_, torch.from_numpy(np.asarray(users, dtype=np.int64))
        if model.orientation_ == "user":
            raw = self.hidden[u] @ self.weight.T + self.bias  # (b, n_items)
            out = model._output(net.output_act(raw)) + self.row_off[u][:, None] + self.col_off
        else:
            raw = (self.hidden @ self.weight[u].T + self.bias[u]).T  # (b, n_items)
            out = model._output(net.output_act(raw)) + self.row_off[None, :] + self.col_off[u][:, None]
        return out.double().cpu().numpy()



def _selection_parts(train, validation, train_cfg, seed: int) -> tuple[RatingMatrix, RatingMatrix, RatingMatrix | None]:
    """``(matrix, fit_matrix, val_matrix)``: every training rating, the part the selection run
    trains on, and the validation ratings it is judged on (``validation`` re-indexed on the
    training vocabularies, or ``train_cfg.validation`` of the cells carved off, or None)."""
    for part, what in ((train, "the training data"), (validation, "the validation data")):
        if isinstance(part, Ratings):
            require_ratings(part, what)  # events would be ratings of 1.0 to a rating model
    matrix = train if isinstance(train, RatingMatrix) else RatingMatrix.from_ratings(train)
    if matrix.nnz == 0:
        raise DataError("the training data has no ratings", fix="check the training file")
    if validation is not None:
        same_vocab = isinstance(validation, RatingMatrix) and (
            validation.users == matrix.users and validation.items == matrix.items
        )
        # A matrix built on its own numbers users and items its own way: re-index its
        # ratings on the training vocabularies (unknown ones dropped) instead of misreading it.
        val_matrix = validation if same_vocab else RatingMatrix.from_ratings(
            validation.to_ratings() if isinstance(validation, RatingMatrix) else validation,
            users=matrix.users, items=matrix.items, unknown="drop",
        )
        return matrix, matrix, val_matrix
    if train_cfg.validation > 0 and matrix.nnz >= 20:
        rng = np.random.default_rng(seed)
        return matrix, *matrix.split_cells(rng.random(matrix.nnz) < train_cfg.validation)
    return matrix, matrix, None

def _cells(csr: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return users, csr.indices.astype(np.int64), csr.data.astype(np.float32)


def _one_of(value: Any, allowed: tuple[str, ...], key: str) -> str:
    """A model.json value that must be one of ``allowed`` (ValueError, named, otherwise)."""
    if value not in allowed:
        raise ValueError(f"{key} {value!r} is none of {', '.join(allowed)}")
    return value


def _read_history(path: Path) -> list[EpochRecord]:
    frame = read_history_csv(path, ["epoch", "loss", "train_rmse", "val_rmse", "lr", "seconds"])  # (epochs, 6)
    if frame is None:
        return []
    return [EpochRecord(int(r.epoch), r.loss, r.train_rmse, None if math.isnan(r.val_rmse) else r.val_rmse, r.lr,
                        r.seconds) for r in frame.itertuples(index=False)]
