"""The estimator for implicit feedback: fit, score, recommend (known and new users), evaluate,
save, load.

:class:`ImplicitRecommender` ranks items; it predicts no ratings. It learns from positives
(ratings at or above a threshold, or events; :mod:`aerec.implicit.views`) and reads a user's
row of positives to score every item. A brand-new user's positives are read the same way, so
recommendations for new users need no retraining (CDAE gives them the mean user node).

Scores rank items within one user's list; their units are the model's own (Mult-DAE/VAE:
logits of the softmax over items; CDAE: logits; EASE: the linear reconstruction; easedae: the
mixture of EASE's and the DAE's standardised scores; popularity: the share of training users who
liked the item). Items no training user liked are never
recommended. Every scoring pass works on chunks of users (``chunk x n_items``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from aerec.base import NOT_A_RATING_MODEL, Estimator, check_n
from aerec.config import Config
from aerec.data.batches import dense_rows
from aerec.data.matrix import RatingMatrix
from aerec.data.new_user import known_items, rating_values
from aerec.data.checks import as_ratings
from aerec.data.ratings import Ratings
from aerec.errors import ConfigError, DataError
from aerec.explain import DEFAULT_EXPLAIN_TOP, check_explain
from aerec.models.ease import EASESolver, check_ease_size, ease_final_weights
from aerec.models.implicit_families import DEFAULT_IMPLICIT, NEURAL
from aerec.implicit.protocol import RankingTask, carve_validation, ranking_task, task_from_parts
from aerec.implicit.views import implicit_matrix, positives
from aerec.persistence import check_shapes, read_history_csv
from aerec.ranking import DEFAULT_METRICS, evaluate_ranking, parse_metric, recommendation_rows, top_indices, top_rows
from aerec.training import EpochRecord, Trainer, TrainResult, fit_device, seed_everything

__all__ = ["NOT_A_RATING_MODEL", "VAL_METRIC", "ImplicitRecommender"]

VAL_METRIC = "ndcg@100"
"""What model selection maximises on validation users (Mult-VAE's choice)."""
ROW_CHUNK = 1024  # users scored at once: chunk x n_items floats
MULTINOMIAL = ("multdae", "multvae", "recvae")  # softmax over items: explained on the log-softmax
_log = logging.getLogger(__name__)


# Families without a training loop, and the command-line flags of the settings they ignore.
CLOSED_FORM = ("ease", "popularity")
_TRAIN_FLAGS = {"epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size or --online"}


class ImplicitRecommender(Estimator):
    """A top-N recommender for implicit feedback (``multvae``, ``multdae``, ``cdae``, ``recvae``,
    ``ease``, ``easedae``, the default, ``popularity``): the :class:`~aerec.base.Estimator` contract with ``feedback = "implicit"``.
    It ranks items and predicts no ratings (``predicts_ratings`` is False).

    >>> model = ImplicitRecommender("multvae")            # doctest: +SKIP
    >>> model.fit(train_ratings)                          # ratings >= 4 become positives
    >>> model.recommend("196", n=10)                      # doctest: +SKIP
    >>> model.recommend_new(["50", "172", "133"], n=10)   # doctest: +SKIP
    >>> model.evaluate(test_ratings)["ndcg@100"]          # doctest: +SKIP

    Args:
        kind: the model family (see :mod:`aerec.models.implicit_families`).
        config: a full :class:`~aerec.config.Config` (its ``model.kind`` wins over ``kind``).
        **model_params: hyper-parameters of the family, e.g. ``hidden=[600, 200]``.
    """

    feedback = "implicit"
    predicts_ratings = False  # scores rank items; they are not ratings on a scale
    _fitted_attribute = "seen_"

    def __init__(self, kind: str = DEFAULT_IMPLICIT, *, config: Config | None = None, **model_params: Any) -> None:
        super().__init__(kind, config=config, **model_params)
        if model_params:  # ImplicitRecommender("ease", epochs=10): refused here (a loaded config is not checked)
            self.check_settings_apply()

    # ------------------------------------------------------------------ settings
    def check_settings_apply(self) -> None:
        """Refuse training settings this family would ignore: EASE is solved in closed form and
        popularity counts, so epochs, a learning rate or batches mean nothing to them (only
        ``train.validation``, the share of users that choose EASE's lambda, applies)."""
        if self.kind not in CLOSED_FORM:
            return
        ignored = sorted(set(self.config.train) - {"validation"})
        if ignored:
            flags = ", ".join(f"train.{k}" + (f" ({_TRAIN_FLAGS[k]})" if k in _TRAIN_FLAGS else "") for k in ignored)
            raise ConfigError(
                f"{self.kind} has no training loop (it is solved in closed form), so {flags} would be ignored; "
                "drop it, or choose a neural model such as multvae, which trains for epochs"
            )

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: Ratings | RatingMatrix,
        validation: Ratings | tuple[Ratings, Ratings] | None = None,
        *,
        threshold: float | None = None,
        val_metric: str = VAL_METRIC,
        progress: bool | Callable[[str, int, int], None] = False,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Iterable[Callable[[EpochRecord], None]] = (),
        final_checkpoint: bool = True,
    ) -> ImplicitRecommender:
        """Learn from the positives of ``train``; select epochs (or EASE's lambda) on validation.

        Args:
            train: ratings (positives: at or above ``threshold``) or events.
            validation: held-out *users* (their positives are folded in 80/20, seeded by the
                run's seed), or explicit ``(fold_in, held_out)`` parts. Without it, a seeded
                ``train.validation`` share of the training users lend 20 % of their items as
                validation targets (those cells are not trained on; they are inputs afterwards).
            threshold: the lowest rating that counts as a positive (default: >= 4 on 1..5,
                >= 3.5 on half stars; see :func:`~aerec.implicit.views.default_threshold`).
            val_metric: what model selection maximises, e.g. ``"ndcg@100"`` or ``"recall@20"``.
            progress: while a network trains, its epochs reported at INFO on the
                ``aerec.training.progress`` logger (a bar in the ``aerec`` command); for EASE, a callable
                ``progress(what, done, total)`` hears each step (its memory estimate first).
            checkpoint_dir, resume, final_checkpoint, callbacks: a network's training
                (:class:`~aerec.training.Trainer`); EASE is solved in one go and never checkpointed.
        """
        self.check_settings_apply()
        params, train_cfg, run = self.resolved()
        parse_metric(val_metric)
        train = as_ratings(train, events=True)
        validation = None if validation is None else _as_users(validation, "the validation data")
        matrix, t = implicit_matrix(train, threshold)
        if matrix.nnz == 0:
            raise DataError("the training data has no positives", fix="check the training file or lower --threshold")
        self.users_, self.items_, self.threshold_ = matrix.users, matrix.items, t
        self.scale_ = train.scale  # the scale new users' ratings come on (0..1 for events)
        self.item_info_ = matrix.item_info
        self.fingerprint_ = matrix.fingerprint()
        self.val_metric_ = val_metric
        self.device_ = fit_device(run.device, run.threads)

        fit_csr, task = self._validation_task(matrix, validation, train_cfg.validation, run.seed)
        fit_rankable = _liked(fit_csr)  # (n_items,): what validation can rank
        self.params_ = params
        self.train_result_ = TrainResult()
        started = time.perf_counter()
        seed_everything(run.seed)
        if self.kind in NEURAL:
            self._fit_net(params, train_cfg, run, fit_csr, task, fit_rankable, bool(progress), checkpoint_dir, resume,
                          callbacks, matrix.csr, final_checkpoint)
        elif self.kind == "ease":
            self._fit_ease(params, matrix.csr, fit_csr, task, fit_rankable, progress)
        self.train_result_.seconds = time.perf_counter() - started
        self.history_ = self.train_result_.history
        self._set_data(matrix.csr)
        return self

    def _validation_task(self, matrix: RatingMatrix, validation, fraction: float, seed: int):
        """The training CSR (validation cells removed) and the validation task (or None)."""
        if validation is None:
            lent, task = carve_validation(matrix.csr, fraction, seed)
            if task is not None:
                task.labels = np.asarray(matrix.users.label(task.user_rows), dtype=object)
            keep = ~lent
            rows = np.repeat(np.arange(matrix.n_users), np.diff(matrix.csr.indptr))
            fit = sp.csr_array((matrix.csr.data[keep], (rows[keep], matrix.csr.indices[keep])), shape=matrix.shape)
            fit.sort_indices()
            return fit, task
        rankable = _liked(matrix.csr)  # = the fit's: held-out users lend no cells
        if isinstance(validation, tuple):
            task = task_from_parts(matrix.items, *validation, threshold=self.threshold_, rankable=rankable)
        else:
            task = ranking_task(matrix.users, matrix.items, matrix.csr, validation, threshold=self.threshold_,
                                seed=seed, rankable=rankable)
        return matrix.csr, task if task.held_out.nnz else None

    def _fit_net(self, params, train_cfg, run, fit_csr, task, rankable, progress, checkpoint_dir, resume, callbacks,
                 full_csr, final_checkpoint=True):
        net = self.family.builder(params, fit_csr.shape[1], fit_csr.shape[0])
        if self.kind == "easedae":  # EASE's part first, in closed form, on what the DAE trains on
            check_ease_size(full_csr.shape[1], full_csr.shape[0])
            ease_l2 = params.ease_l2
            if task is not None and "ease_l2" not in self.config.model:
                ease_l2, _ = self._search_ease_l2(params.ease_l2_grid, fit_csr, task, rankable)
            net.ease.copy_(ease_final_weights(fit_csr, ease_l2))
            net.weight.fill_(1.0)  # validation picks the DAE's epoch on the DAE alone
        validate = None
        if task is not None:
            def validate(candidate) -> float:
                return self._evaluate_task(task, [self.val_metric_], net=candidate, rankable=rankable)[self.val_metric_]

        trainer = Trainer(train_cfg, seed=run.seed, device=self.device_, progress=progress,
                          checkpoint_dir=checkpoint_dir, final_checkpoint=final_checkpoint, callbacks=callbacks,
                          val_label=self.val_metric_,
                          precision=run.precision, compile=run.compile)
        # The network brings its own objective (training_loss): the trainer adds no L2 of its own.
        self.train_result_ = trainer.fit(net, fit_csr, loss="multinomial", validate=validate,
                                         higher_is_better=True, resume=resume)
        self.net_ = net.eval()
        if self.kind == "easedae":
            self._finish_easedae(params, ease_l2, fit_csr, full_csr, task, rankable)

    def _finish_easedae(self, params, ease_l2: float, fit_csr, full_csr, task, rankable) -> None:
        """The DAE's share of the mixture on validation (ties to the smaller share), then EASE's
        ``B`` on every training positive when validation cells were lent (they are inputs now)."""
        net, weight = self.net_, params.weight
        if task is not None and "weight" not in self.config.model:
            found = []
            for value in params.weight_grid:
                net.weight.fill_(float(value))
                found.append(self._evaluate_task(task, [self.val_metric_], net=net, rankable=rankable)[self.val_metric_])
            best = int(np.argmax(found))
            weight = float(params.weight_grid[best])
            self.train_result_.best_val = found[best]
            _log.info("easedae: EASE lambda %g, DAE share %g (validation %s %.4f)", ease_l2, weight,
                      self.val_metric_, found[best])
        net.weight.fill_(float(weight))
        if fit_csr.nnz != full_csr.nnz:
            net.ease.copy_(ease_final_weights(full_csr, ease_l2))
        self.params_ = dataclasses.replace(params, ease_l2=float(ease_l2), weight=float(weight))

    def _search_ease_l2(self, grid, fit_csr, task, rankable, record=None) -> tuple[float, list[float]]:
        """EASE's lambda on validation: the best of ``grid`` (ties to the smaller lambda), each
        scored from one :class:`EASESolver` eigendecomposition without forming ``B``.
        ``record(value, figure)`` hears each candidate. Returns the lambda and every figure."""
        solver = EASESolver(fit_csr)
        found = []
        for value in grid:
            scorer = functools.partial(solver.scores, l2=float(value))
            found.append(self._evaluate_task(task, [self.val_metric_], net=scorer, rankable=rankable)[self.val_metric_])
            if record is not None:
                record(float(value), found[-1])
        return float(grid[int(np.argmax(found))]), found

    def _fit_ease(self, params, full_csr, fit_csr, task, rankable, progress) -> None:
        """Lambda on validation from one :class:`EASESolver`, then ``B`` on every training positive.

        ``progress``, when callable, hears ``(what, done, total)`` after each step (the CLI
        draws a bar from it); the memory estimate comes first, as step 0.
        """
        need = check_ease_size(full_csr.shape[1], full_csr.shape[0])
        step = progress if callable(progress) else (lambda what, done, total: None)
        search = task is not None and "l2" not in self.config.model and bool(params.l2_grid)
        total = (1 + len(params.l2_grid) if search else 0) + 1
        _log.info("EASE on %d items: about %.1f GiB of memory", full_csr.shape[1], need / 2**30)
        size = f"{need / 2**30:.1f} GiB" if need >= 2**30 else f"{need / 2**20:.0f} MiB"
        step(f"{full_csr.shape[1]:,} items, about {size} of memory", 0, total)
        l2 = params.l2
        if search:
            def record(value: float, figure: float) -> None:
                history.append(EpochRecord(len(history) + 1, value, float("nan"), figure, 0.0, 0.0))
                step(f"lambda {value:g}", 1 + len(history), total)

            history = self.train_result_.history
            step("eigendecomposition", 1, total)  # the solver's, in _search_ease_l2
            l2, found = self._search_ease_l2(params.l2_grid, fit_csr, task, rankable, record)
            best = int(np.argmax(found))
            self.train_result_.best_epoch, self.train_result_.best_val = best + 1, found[best]
        self.params_ = dataclasses.replace(params, l2=l2)
        # Refit on every training positive (the validation cells included): one more factorisation.
        self.ease_ = ease_final_weights(full_csr, l2).to(self.device_)
        step("weights", total, total)

    def _set_data(self, csr: sp.csr_array) -> None:
        """Remember the training positives (the input of known users) and what can be ranked."""
        self.seen_ = sp.csr_array(csr)
        self.seen_.sort_indices()
        self.item_counts_ = np.bincount(self.seen_.indices, minlength=self.seen_.shape[1]).astype(np.int64)
        self.user_counts_ = np.diff(self.seen_.indptr).astype(np.int64)
        self.rankable_ = self.item_counts_ > 0
        share = self.item_counts_ / max(self.seen_.shape[0], 1)
        self.popularity_ = torch.from_numpy(share.astype(np.float32)).to(self.device_)

    # ------------------------------------------------------------------ scores
    @torch.no_grad()
    def score_rows(self, inputs: sp.csr_array, user_rows: np.ndarray | None = None, *, net=None,
                   rankable: np.ndarray | None = None) -> torch.Tensor:
        """Scores ``(n, n_items)`` of users given by their rows of positives ``inputs`` (n, n_items).

        ``user_rows`` are their rows in the training matrix (-1 or None: new users; only CDAE
        reads them). Items that cannot be ranked score ``-inf``. Keep ``n`` to a chunk.
        """
        net = net if net is not None else getattr(self, "net_", None)
        x, _ = dense_rows(inputs, np.arange(inputs.shape[0]), device=self.device_)  # (n, n_items)
        if self.kind == "popularity":
            scores = self.popularity_[None, :].expand(x.shape[0], -1).clone()
        elif self.kind == "ease" or (net is not None and not hasattr(net, "scores")):
            # ``net``: EASESolver.scores while EASE's lambda is chosen (for ease and easedae)
            scores = x @ self.ease_ if net is None else net(x)  # (n, n_items)
        else:
            rows = None
            if user_rows is not None:
                rows = torch.from_numpy(np.asarray(user_rows, dtype=np.int64)).to(self.device_)
            scores = net.scores(x, rows)
        ok = self.rankable_ if rankable is None else rankable
        scores[:, torch.from_numpy(~ok).to(scores.device)] = -math.inf
        return scores

    def _evaluate_task(self, task: RankingTask, metrics, *, net=None, rankable=None) -> dict[str, Any]:
        ok = self.rankable_ if rankable is None else rankable

        def score(pos: np.ndarray) -> torch.Tensor:
            return self.score_rows(task.inputs[pos], task.user_rows[pos], net=net, rankable=ok)

        return evaluate_ranking(score, task.inputs, task.held_out, metrics, n_catalogue=int(ok.sum()), chunk=ROW_CHUNK)

    # ------------------------------------------------------------------ evaluate
    def evaluate(
        self,
        test: Ratings | tuple[Ratings, Ratings],
        *,
        metrics: Iterable[str] = DEFAULT_METRICS,
        fold_in: float = 0.8,
        seed: int | None = None,
    ) -> dict[str, Any]:
        """Ranking metrics on ``test`` (see :mod:`aerec.ranking` and :mod:`aerec.implicit.protocol`).

        ``test`` is a ratings table (users the model trained on: per-user hold-out against
        their training rows; new users: ``fold_in`` of their positives given, the rest ranked,
        seeded by ``seed``, default the model's run seed) or explicit ``(fold_in, held_out)``
        parts. Returns the metrics plus ``n_users`` (evaluated), ``n_held_out`` and the counts
        of :meth:`RankingTask.counts`.
        """
        self._require_fitted()
        task = self.task(test, fold_in=fold_in, seed=seed)
        if task.held_out.nnz == 0:
            raise DataError("no test user has a held-out positive the model can rank", value=len(task.labels),
                            fix="check the test file, its users and the threshold")
        return {**self._evaluate_task(task, list(metrics)), **task.counts()}

    def task(
        self, test: Ratings | tuple[Ratings, Ratings], *, fold_in: float = 0.8, seed: int | None = None
    ) -> RankingTask:
        """The :class:`~aerec.implicit.protocol.RankingTask` :meth:`evaluate` scores."""
        self._require_fitted()
        test = _as_users(test, "the test data")
        if isinstance(test, tuple):
            return task_from_parts(self.items_, *test, threshold=self.threshold_, rankable=self.rankable_)
        seed = self.resolved()[2].seed if seed is None else seed
        return ranking_task(self.users_, self.items_, self.seen_, test, threshold=self.threshold_, fold_in=fold_in,
                            seed=seed, rankable=self.rankable_)

    # ------------------------------------------------------------------ recommend
    def recommend(self, user: Any, n: int = 10, *, exclude_rated: bool = True, explain: bool = False,
                  explain_top: int = DEFAULT_EXPLAIN_TOP) -> pd.DataFrame:
        """Top-``n`` items for a known user (columns item, score[, title, genres]), best first.

        The user's training positives are left out unless ``exclude_rated=False``. An unknown
        user is a :class:`DataError` (use :meth:`recommend_new`). ``explain=True`` adds the
        ``because`` and ``because_detail`` columns (:meth:`~aerec.base.Estimator.because`).
        """
        return super().recommend(user, n, exclude_rated=exclude_rated, explain=explain, explain_top=explain_top)

    def recommend_batch(
        self, users: Any = None, n: int = 10, *, exclude_rated: bool = True, chunk: int = ROW_CHUNK,
        as_array: bool = False,
    ) -> pd.DataFrame | np.ndarray:
        """Top-``n`` for many known users at once (default: every user), ``chunk`` users at a time.

        Returns one row per recommendation: user, rank (1 = best), item, score, the same as
        :meth:`recommend` user by user. Only a ``(chunk, n_items)`` block of scores exists at
        any moment, never users x items. ``as_array=True``: a ``(len(users), n)`` NumPy array of
        item ids instead (see :meth:`~aerec.base.Estimator.recommend_batch`).
        """
        return super().recommend_batch(users, n, exclude_rated=exclude_rated, chunk=chunk, as_array=as_array)

    def _recommend_chunk(self, u: np.ndarray, n: int, exclude_rated: bool) -> pd.DataFrame:
        rows = self.seen_[u]
        scores = torch.from_numpy(self._known_scores(rows, u))  # (len(u), n_items)
        scores[:, torch.from_numpy(~self.rankable_)] = -torch.inf
        index, values = top_rows(scores, rows if exclude_rated else None, n)  # (len(u), n)
        return recommendation_rows(self.users_.label(u), self.items_.labels, index, values)

    def known_user_scores(self, user_index: int) -> np.ndarray:
        """Scores ``(n_items,)`` of the training user at ``user_index`` (from their positives)."""
        return self._known_scores(self.seen_[[user_index]], np.array([user_index]))[0]

    def rated_items(self, user_index: int) -> np.ndarray:
        """The training positives of the user at ``user_index`` (item indices)."""
        return self.seen_.indices[self.seen_.indptr[user_index] : self.seen_.indptr[user_index + 1]]

    def _known_scores(self, rows: sp.csr_array, user_rows: np.ndarray) -> np.ndarray:
        """Scores ``(len(user_rows), n_items)`` float64 of known users from their training rows;
        one who liked nothing gets the most-liked items' order, as a new user with no positive."""
        scores = self.score_rows(rows, user_rows).double().cpu().numpy()
        empty = np.diff(rows.indptr) == 0
        if empty.any():
            scores[empty] = self.new_user_scores(np.empty(0, dtype=np.int64))
        return scores

    def recommend_new(self, ratings: Mapping[Any, float] | Iterable[Any], n: int = 10, *,
                      unknown: str = "warn", explain: bool = False,
                      explain_top: int = DEFAULT_EXPLAIN_TOP) -> pd.DataFrame:
        """Top-``n`` items for a brand-new user, without retraining.

        ``ratings`` is the user's items (each a positive), or ``{item: rating}`` on the model's
        scale, where ratings at or above the model's threshold are positives; every given item
        is left out of the answer. Unknown items are ignored with a warning (``unknown="warn"``,
        the default) or refused (``"error"``, a :class:`DataError`); with no positive, the
        answer is the most-liked items. ``explain=True`` adds the ``because`` and
        ``because_detail`` columns (:meth:`~aerec.base.Estimator.because`).
        """
        self._require_fitted()
        check_n(n)
        check_explain(explain, explain_top)
        idx, values = self._new_user_items(ratings, unknown)
        frame = self._top(self.new_user_scores(idx, values), idx, n)
        return self._explained(frame, explain_top, given=(idx, values)) if explain else frame

    def _liked_given(self, idx: np.ndarray, values: np.ndarray | None) -> np.ndarray:
        """The positives among a new user's items ``idx`` that the model can read (indices)."""
        idx = np.asarray(idx, dtype=np.int64)
        liked = idx if values is None else idx[positives(np.asarray(values, dtype=np.float64), self.threshold_)]
        return liked[self.rankable_[liked]]  # an item no training user liked taught the model nothing

    def new_user_scores(self, idx: np.ndarray, values: np.ndarray | None = None) -> np.ndarray:
        """Scores ``(n_items,)`` for a new user who gave items ``idx`` (item indices) with
        ``values`` (default: all positives). Unrankable items score ``-inf``."""
        self._require_fitted()
        liked = self._liked_given(idx, values)
        if len(liked) == 0:
            scores = self.popularity_.double().cpu().numpy().copy()
            scores[~self.rankable_] = -np.inf
            return scores
        row = sp.csr_array((np.ones(len(liked), dtype=np.float32), (np.zeros(len(liked), dtype=np.int64), liked)),
                           shape=(1, len(self.items_)))
        row.sum_duplicates()
        row.data[:] = 1.0
        return self.score_rows(row, np.array([-1])).squeeze(0).double().cpu().numpy()

    # ------------------------------------------------------------------ explanations
    def _known_contributions(self, user_index: int, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        liked = self.rated_items(user_index).astype(np.int64)
        return liked, np.full(len(liked), np.nan), self._contributions(liked, targets, user_index)

    def _new_contributions(self, idx: np.ndarray, values: np.ndarray | None,
                           targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        liked = np.asarray(list(dict.fromkeys(self._liked_given(idx, values).tolist())), dtype=np.int64)
        # No ratings in the records: the model reads only that an item was liked.
        return liked, np.full(len(liked), np.nan), self._contributions(liked, targets, -1)

    @torch.no_grad()
    def _contributions(self, liked: np.ndarray, targets: np.ndarray, user_row: int) -> np.ndarray:
        """Each liked item's contribution ``(len(targets), len(liked))`` to the targets' scores.

        EASE: the score is ``x @ B`` with ``x`` 0/1, so liked item ``j`` adds exactly
        ``B[j, t]``. Networks: leave-one-out, the score with every liked item less the score
        with item ``j`` taken out of the input (one forward pass per liked item, a chunk at a
        time); for the multinomial ones (Mult-DAE/VAE, RecVAE) on the log-softmax, the log share
        of the user's next click the model gives the item, so a change common to every item's
        logit (which moves no item in the list) counts as nothing. Popularity reads no input:
        nothing to explain.
        """
        k = len(liked)
        if k == 0 or self.kind == "popularity":
            return np.zeros((len(targets), k))
        liked_t = torch.from_numpy(liked).to(self.device_)
        tgt = torch.from_numpy(np.asarray(targets, dtype=np.int64)).to(self.device_)
        if self.kind == "ease":
            return self.ease_[liked_t][:, tgt].T.double().cpu().numpy()
        parts = []
        for s in range(0, k + 1, ROW_CHUNK):  # row 0: every liked item; row r > 0: all but liked[r - 1]
            r = torch.arange(s, min(s + ROW_CHUNK, k + 1), device=self.device_)
            x = torch.zeros(len(r), len(self.items_), device=self.device_)  # (chunk, n_items)
            x[:, liked_t] = 1.0
            out = torch.nonzero(r > 0).squeeze(1)
            x[out, liked_t[r[out] - 1]] = 0.0
            scores = self.net_.scores(x, torch.full((len(r),), user_row, dtype=torch.int64, device=self.device_))
            if self.kind in MULTINOMIAL:
                scores = torch.log_softmax(scores, dim=1)
            parts.append(scores[:, tgt].double())  # (chunk, t)
        block = torch.cat(parts)  # (k + 1, t)
        return (block[:1] - block[1:]).T.cpu().numpy()

    def _new_user_items(self, items: Mapping[Any, float] | Iterable[Any],
                        unknown: str = "warn") -> tuple[np.ndarray, np.ndarray]:
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise DataError("a new user's items must be a list of item ids or a mapping {item: rating}",
                            value=items if isinstance(items, (str, bytes)) else type(items).__name__)
        if isinstance(items, Mapping):
            labels, values = rating_values(items, self.scale_, fix="use ratings on the model's scale, or give a list of items")
            self._check_known_items(labels, unknown)
            return known_items(labels, values, self.items_, stacklevel=4)
        labels = list(items)
        self._check_known_items(labels, unknown)
        values = np.full(len(labels), max(self.threshold_, self.scale_.high), dtype=np.float64)
        return known_items(labels, values, self.items_, repeats=True, stacklevel=4)  # a repeat: the same positive

    def rank_items(self, predictions: np.ndarray, exclude: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, None]:
        """The ``n`` best items by one user's scores ``(n_items,)``, leaving out ``exclude`` (a
        bool mask or indices) and the items nobody liked. Returns ``(indices, scores, None)``,
        best first: a top-N model predicts no ratings."""
        check_n(n)
        scores = np.array(predictions, dtype=np.float64)  # a copy: callers share cached scores
        scores[~self.rankable_] = -np.inf  # nothing is known about items nobody liked
        scores[exclude] = -np.inf
        top = top_indices(scores, n)
        return top, scores[top], None

    # ------------------------------------------------------------------ similar items
    def _item_vectors(self) -> torch.Tensor:
        """Each item's vector ``(n_items, d)``: for the networks (Mult-DAE/VAE, CDAE, RecVAE) the
        item's row of the output layer, whose dot product with a user's last hidden layer is
        the item's score (bias left out); for EASE the item's column of ``B``, the weights with
        which every other item predicts it (scores are ``x @ B``)."""
        if self.kind == "ease":
            return self.ease_.T
        return self.net_.item_factors()

    def _item_similarities(self, k: int) -> np.ndarray:
        """Popularity has no item vectors of its own: it compares the items' columns of training
        positives (co-occurrence: the users who liked both, over the geometric mean of each
        item's likers), the item-item cosine of classic "people who liked this also liked"."""
        if self.kind != "popularity":
            return super()._item_similarities(k)
        both = (self.seen_.T @ self.seen_[:, [k]]).toarray().ravel()  # (n_items,) users who liked both
        counts = self.item_counts_.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(both / np.sqrt(counts * counts[k]), nan=0.0, posinf=0.0)

    # ------------------------------------------------------------------ no ratings here
    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Not available: an implicit model predicts no ratings (a :class:`ConfigError`)."""
        raise ConfigError(NOT_A_RATING_MODEL.format(kind=self.kind))

    predict_pairs = predict

    def predict_indices(self, u: Any, i: Any) -> Any:
        """Not available: an implicit model predicts no ratings (a :class:`ConfigError`)."""
        return self.predict(u, i)

    # ------------------------------------------------------------------ save / load
    def _tensors(self) -> dict[str, torch.Tensor]:
        tensors: dict[str, torch.Tensor] = {
            "data.indptr": torch.from_numpy(self.seen_.indptr.astype(np.int64)),
            "data.indices": torch.from_numpy(self.seen_.indices.astype(np.int64)),
        }
        if hasattr(self, "net_"):
            tensors.update({f"net.{k}": v for k, v in self.net_.state_dict().items()})
        if hasattr(self, "ease_"):
            tensors["ease.B"] = self.ease_
        return tensors

    def _meta(self) -> dict[str, Any]:
        return {"task": "implicit", "threshold": self.threshold_, "val_metric": self.val_metric_}

    def _plot_curves(self, path: Path, best_epoch: int | None) -> Any:
        return _plot(self.history_frame(), path, self.kind, self.val_metric_, best_epoch)

    @classmethod
    def load(cls, directory: str | Path) -> ImplicitRecommender:
        """Load a directory written by :meth:`save`; problems are :class:`ModelFileError`, and
        so is a directory that holds a rating model (the message says how to load it)."""
        return super().load(directory)  # type: ignore[return-value]

    def _load_state(self, tensors: dict[str, Any], meta: dict[str, Any], directory: Path, params: Any,
                    run: Any) -> None:
        self.threshold_ = float(meta["threshold"])
        self.val_metric_ = meta.get("val_metric", VAL_METRIC)
        parse_metric(self.val_metric_)  # a ConfigError (a ValueError) when it is none
        n_users, n_items = len(self.users_), len(self.items_)
        if self.kind in NEURAL:
            builder = self.family.builder
            state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
            # Shapes first, on the meta device (no memory): tampered sizes in model.json
            # must not make the real build allocate terabytes (docs/reliability.md).
            with torch.device("meta"):
                check_shapes(builder(params, n_items, n_users).state_dict(), state, directory)
            net = builder(params, n_items, n_users)
            net.load_state_dict(state)
            self.net_ = net.to(self.device_).eval()
        elif self.kind == "ease":
            self.ease_ = tensors["ease.B"].to(self.device_)
            if tuple(self.ease_.shape) != (n_items, n_items):
                raise ValueError(f"ease.B is {tuple(self.ease_.shape)}, not {n_items} x {n_items}")
        indices = tensors["data.indices"].numpy()
        csr = sp.csr_array((np.ones(len(indices), dtype=np.float32), indices, tensors["data.indptr"].numpy()),
                           shape=(n_users, n_items))
        csr.check_format(full_check=True)  # ValueError for indices out of range, not a crash later
        self._set_data(csr)
        self.train_result_ = TrainResult(best_epoch=meta.get("best_epoch"))
        self.history_ = _read_history(directory / "history.csv", self.val_metric_, self.kind)

    def history_frame(self) -> pd.DataFrame:
        """Per-epoch history: epoch, loss, ``val_<metric>``, lr, seconds. EASE's is its lambda
        search instead: one row per candidate, columns ``l2`` and ``val_<metric>``."""
        name = f"val_{getattr(self, 'val_metric_', VAL_METRIC)}"
        records = getattr(self, "history_", [])
        if self.kind == "ease":
            return pd.DataFrame([{"l2": r.loss, name: r.val_rmse} for r in records], columns=["l2", name])
        rows = [{"epoch": r.epoch, "loss": r.loss, name: r.val_rmse, "lr": r.lr, "seconds": r.seconds} for r in records]
        return pd.DataFrame(rows, columns=["epoch", "loss", name, "lr", "seconds"])


# ----------------------------------------------------------------------------- helpers
def _liked(csr: sp.csr_array) -> np.ndarray:
    """``(n_items,)`` bool: the items some row of ``csr`` liked, the ones a model can rank."""
    return np.bincount(csr.indices, minlength=csr.shape[1]) > 0


def _as_users(data, what: str):
    """Held-out users as ratings (or events), or their ``(fold_in, held_out)`` parts."""
    if isinstance(data, tuple):
        return tuple(as_ratings(part, what, events=True) for part in data)
    return as_ratings(data, what, events=True)


def _read_history(path: Path, metric: str, kind: str) -> list[EpochRecord]:
    name = f"val_{metric}"
    columns = ["l2", name] if kind == "ease" else ["epoch", "loss", name, "lr", "seconds"]
    frame = read_history_csv(path, columns)
    if frame is None:
        return []

    def val(v: float) -> float | None:
        return None if math.isnan(v) else float(v)

    if kind == "ease":  # its lambda search: one row per candidate
        return [EpochRecord(k, float(r[0]), float("nan"), val(r[1]), 0.0, 0.0)
                for k, r in enumerate(frame.itertuples(index=False), start=1)]
    return [EpochRecord(int(r[0]), float(r[1]), float("nan"), val(r[2]), float(r[3]), float(r[4]))
            for r in frame.itertuples(index=False)]


def _figure(history: pd.DataFrame, kind: str, metric: str, best_epoch: int | None = None) -> Any:
    """Training loss and the validation metric per epoch (two axes; EASE: the metric per
    lambda tried), labelled, with one legend for both axes and the kept epoch marked: the one
    the summary reports (``best_epoch``), else the best validation figure."""
    from matplotlib.figure import Figure  # not pyplot: see aerec.plots

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    ax = fig.subplots()
    name = f"val_{metric}"
    xlabel = "lambda (l2)" if kind == "ease" else "epoch"
    xs = history["l2"] if kind == "ease" else history["epoch"]
    other = ax
    if kind != "ease":
        ax.plot(xs, history["loss"], color="C0", label="train loss")
        ax.set_ylabel("train loss")
    if history[name].notna().any():
        other = ax.twinx() if kind != "ease" else ax
        other.plot(xs, history[name], color="C1", label=f"validation {metric}")
        other.set_ylabel(f"validation {metric}")
        rows = history.index[history["epoch"] == best_epoch] if best_epoch is not None and kind != "ease" else []
        best = rows[0] if len(rows) else history[name].idxmax()
        where = f"lambda {xs[best]:g}" if kind == "ease" else f"epoch {int(xs[best])}"
        other.scatter([xs[best]], [history.loc[best, name]], color="C1", zorder=3,
                      label=f"best {history.loc[best, name]:.4f} ({where})")
    if kind == "ease":
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title(f"aerec {kind}")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if other is not ax:  # the twin axis's lines belong in the same legend
        more = other.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, loc="best")
    fig.tight_layout()
    return fig


def _plot(history: pd.DataFrame, path: Path, kind: str, metric: str, best_epoch: int | None = None) -> Path:
    """:func:`_figure` into ``path`` (PNG)."""
    _figure(history, kind, metric, best_epoch).savefig(path, format="png")
    return Path(path)
