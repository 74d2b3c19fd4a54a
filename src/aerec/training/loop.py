"""The epoch loop: :class:`Trainer` trains a network on the rows of a sparse matrix.

Models are plain ``nn.Module``s; everything about *how* they learn lives in this package. One
epoch is one pass over every row that has at least one rating. Updates come after each row
(``batch_size=1``, online), after each mini-batch, or once per L-BFGS step over the whole matrix
(``batch_size=0``).

The objective for ratings is the reconstruction error on observed cells only, normalised per
observed rating, plus AutoRec's L2 term in the same units::

    loss = SSE(batch) / n_observed(batch) + l2 * ||W||^2 / N_observed(all rows)

Reproducibility: weights are initialised from the seed, and every epoch draws its shuffling
and its dropout masks from generators seeded by ``(seed, epoch)``
(:func:`~aerec.training.runtime.epoch_seed`), so a run resumed from a checkpoint produces the
same numbers as one that never stopped.

Networks with their own objective (the implicit-feedback models: Mult-VAE's multinomial
likelihood plus an annealed KL term, CDAE's user node) define
``training_loss(x, mask, *, step, rows) -> scalar tensor``; the trainer then calls it instead
of the reconstruction loss. ``step`` is the number of updates made so far over the whole run
(not reset each epoch, and saved in checkpoints, so KL annealing survives a resume) and
``rows`` the batch's row indices. Validation is minimised (RMSE) unless ``fit`` is told
``higher_is_better`` (a ranking metric such as NDCG@100).

Several processes (``torchrun``, :mod:`aerec.distributed`): each densifies only its share of
every global batch, DistributedDataParallel averages the gradients, and the loss of each share
is scaled so that the result is the single-process update of the global batch. Rank 0
validates (the figure is broadcast), reports progress and writes checkpoints. On a GPU the
forward pass runs under bf16 autocast unless ``precision="fp32"`` (:mod:`aerec.device`).

Batches reach the network dense or sparse (:mod:`aerec.training.batch_format`).
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from aerec import distributed
from aerec.config import TrainConfig
from aerec.data.batches import iter_row_batches, observed_targets
from aerec.device import autocast, resolve_precision
from aerec.errors import ModelFileError, TrainingError
from aerec.losses import LOSSES
from aerec.training.batch_format import DenseCache, SparseCache, choose_batch_format, rows_batch
from aerec.training.checkpoints import load_training_state, save_training_state
from aerec.training.history import EpochRecord, LoopState, TrainResult
from aerec.training.lbfgs import LastEvaluation
from aerec.training.optimizers import lbfgs_checkpoint_copies, make_optimizer, make_scheduler
from aerec.training.progress import EpochProgress
from aerec.training.runtime import compile_errors_run_eagerly, compile_network, epoch_seed

__all__ = ["Trainer"]

log = logging.getLogger(__name__)


@dataclass
class _Fit:
    """What one call of :meth:`Trainer.fit` works with, set up once by ``_start_fit``."""

    net: nn.Module  # the network being trained (eager: validation, re-feeding, checkpoints)
    stepped: nn.Module  # what the training passes call: ``net``, or a compiled view of it
    rows: sp.csr_array  # (n_rows, n_cols)
    data_rows: np.ndarray  # indices of the rows with at least one observed cell
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    cache: DenseCache | SparseCache | None  # the whole matrix, for L-BFGS only
    loss: str
    loss_fn: Callable
    l2: float
    code_l1: float
    n_obs: int  # observed cells of the whole matrix (at least 1): the L2 term's unit
    validate: Callable[[nn.Module], float] | None
    state: LoopState
    next_checkpoint: float = 0.0  # perf_counter time after which the next checkpoint is due
    lbfgs_memo: LastEvaluation | None = None  # L-BFGS: the objective's last evaluation, reused across epochs
    checkpointed: bool = False  # whether this fit has written a checkpoint


CHECKPOINT_BYTES_PER_SECOND = 500e6
"""What a checkpoint costs per byte before one has been timed: written, checksummed and synced at
about 600 MB/s on the machine of docs/benchmarks.md (160 MB in 0.27 s), rounded down."""


def _state_bytes(net: nn.Module, optimizer: torch.optim.Optimizer, state: LoopState) -> int:
    """The bytes of tensors a checkpoint would hold: weights, best weights, optimiser state."""

    def size(x) -> int:
        if isinstance(x, torch.Tensor):
            return x.numel() * x.element_size()
        if isinstance(x, dict):
            return sum(size(v) for v in x.values())
        if isinstance(x, (list, tuple)):
            return sum(size(v) for v in x)
        return 0

    return size(net.state_dict()) + size(state.best_state or {}) + size(list(optimizer.state.values()))


def _expected_checkpoint_bytes(net: nn.Module, optimizer: torch.optim.Optimizer, state: LoopState,
                               cfg: TrainConfig) -> int:
    """The bytes a checkpoint of this fit will hold once its optimiser state has grown (L-BFGS's
    stored pairs fill up over its first iterations; the others' state is full at once)."""
    now = _state_bytes(net, optimizer, state)
    if cfg.optimizer != "lbfgs":
        return now
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    return max(now, weights * lbfgs_checkpoint_copies())


class Trainer:
    """Trains an autoencoder on the rows of a sparse matrix.

    Args:
        config: the training settings.
        seed: run seed (shuffling and dropout per epoch).
        device: where the network and batches live.
        progress: report every epoch on the ``aerec.training.progress`` logger at INFO (the
            ``aerec`` command draws a progress bar on stderr from it); without, at DEBUG.
        checkpoint_dir: write checkpoints there, every ``config.checkpoint_every`` epochs and
            after the last one, as long as they take at most the share ``b =
            config.checkpoint_budget`` of the time: a checkpoint that took c seconds is followed
            by at least c (1 - b) / b seconds of training before the next. The first one's cost is
            estimated from its bytes and waits the same way; a crash then costs at most the epochs
            since the last one, and a resume from any checkpoint ends with the same numbers.
        final_checkpoint: with ``checkpoint_dir``, write the last epoch's checkpoint when the
            budget has not yet called for any, so the run can be resumed or extended. False: the
            budget alone decides (a short fit then writes none; ``aerec train`` into its default
            folder, which it deletes once the model is saved).
        callbacks: called as ``callback(record)`` after every epoch (on every process).
        val_label: what the validation figure is, for messages and the progress reports.
        precision: ``auto`` (bf16 autocast on a GPU), ``fp32`` or ``bf16``; L-BFGS is always fp32
            (its line search needs an exact objective).
        compile: train through :func:`~aerec.training.runtime.compile_network` (``torch.compile``,
            eager where it fails).

    After :meth:`fit` starts, ``batch_format`` says which path it took (``"dense"`` or
    ``"sparse"``, :func:`~aerec.training.batch_format.choose_batch_format`).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        progress: bool = False,
        checkpoint_dir: str | Path | None = None,
        final_checkpoint: bool = True,
        callbacks: Iterable[Callable[[EpochRecord], None]] = (),
        val_label: str = "RMSE",
        precision: str = "auto",
        compile: bool = False,
    ) -> None:
        self.config = config
        self.precision = precision
        self.compile = compile
        self.val_label = val_label
        self.seed = seed
        self.device = torch.device(device)
        self.progress = progress
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.final_checkpoint = final_checkpoint
        self.callbacks = list(callbacks)

    # ------------------------------------------------------------------ public
    def fit(
        self,
        net: nn.Module,
        rows: sp.csr_array,
        *,
        loss: str = "mse",
        l2: float = 0.0,
        code_l1: float = 0.0,
        validate: Callable[[nn.Module], float] | None = None,
        higher_is_better: bool = False,
        resume: bool = False,
    ) -> TrainResult:
        """Train ``net`` in place on ``rows`` (``(n_rows, n_cols)`` CSR); returns the history.

        ``validate(net)`` returns the validation RMSE (called in eval mode, no grad); early
        stopping and best-weight selection use it. Without it the last weights are kept.
        With ``higher_is_better`` the validation figure is maximised instead (NDCG@100).
        """
        run = self._start_fit(net, rows, loss=loss, l2=l2, code_l1=code_l1, validate=validate,
                              higher_is_better=higher_is_better, resume=resume)
        state = run.state
        started = time.perf_counter() - state.seconds  # a resumed run counts the time already spent
        report = EpochProgress(self.progress and self._group.is_main, self.config.epochs, state.epoch, self.val_label)
        with report, compile_errors_run_eagerly(self.compile):
            for epoch in state.epochs_left(self.config):
                record = self._train_epoch(run, epoch)
                stop = self._record_epoch(run, record, report)
                state.seconds = time.perf_counter() - started
                self._checkpoint_if_due(run, epoch, stop)
                if stop:
                    break
        return self._finish(run, started)

    # ------------------------------------------------------------------ the steps of fit
    def _start_fit(self, net, rows, *, loss, l2, code_l1, validate, higher_is_better, resume) -> _Fit:
        """Move ``net`` to the device; make the optimiser and schedule; resume; choose the batch path."""
        cfg = self.config
        group = self._group = distributed.current()  # alone, or this process's place among several
        net.to(self.device)
        data_rows = np.flatnonzero(np.diff(rows.indptr) > 0)  # rows with something to learn
        group.check_batch_size(cfg.batch_size, len(data_rows))
        self._amp = resolve_precision(self.precision, self.device) if cfg.optimizer != "lbfgs" else None
        optimizer = make_optimizer(cfg, net, self.device)
        # "plateau" watches the validation figure, or the training loss when there is none.
        scheduler = make_scheduler(cfg, optimizer, maximise=higher_is_better and validate is not None)
        state = LoopState(higher_is_better=higher_is_better)
        if resume:
            state = self._resume(net, optimizer, scheduler, group)
            state.higher_is_better = higher_is_better
            log.debug("resumed from the checkpoint in %s after epoch %d", self.checkpoint_dir, state.epoch)
        if hasattr(net, "training_loss") and cfg.optimizer == "lbfgs":
            raise TrainingError("this model has its own objective and trains with a gradient optimiser; "
                                "set train.optimizer to adam (L-BFGS needs one fixed full-batch objective)")
        self._choose_batch_format(net, rows, loss, group)
        # The training passes go through a compiled view of ``net`` (same parameters); ``net``
        # itself stays eager for validation, inference and saving.
        stepped = compile_network(net) if self.compile else net
        # L-BFGS always works on the whole matrix (its line search needs one fixed objective).
        cache = memo = None
        if cfg.optimizer == "lbfgs":
            full_cache = SparseCache if self.batch_format == "sparse" else DenseCache
            cache = full_cache(rows, self.device, group.shard(np.arange(rows.shape[0])))
            # Alone only: in a group every process would have to skip the same evaluations.
            memo = None if group.active else LastEvaluation(self.device)
        # The batch objective; in a group, a DistributedDataParallel module that averages gradients.
        self._forward = group.objective(stepped, self._objective, self.device) if cfg.optimizer != "lbfgs" else None
        return _Fit(net=net, stepped=stepped, rows=rows, data_rows=data_rows, optimizer=optimizer,
                    scheduler=scheduler, cache=cache, loss=loss, loss_fn=LOSSES[loss], l2=l2, code_l1=code_l1,
                    n_obs=max(int(rows.nnz), 1), validate=validate, state=state, lbfgs_memo=memo)

    def _choose_batch_format(self, net, rows, loss, group) -> None:
        self.batch_format = choose_batch_format(net, rows, config=self.config, loss=loss, device=self.device,
                                                distributed=group.active)
        log.debug("%s batches of %s rows x %d columns on %s", self.batch_format, f"{rows.shape[0]:,}", rows.shape[1],
                  self.device)
        if self.precision == "bf16" and self._amp is not None and self.batch_format == "sparse":
            warnings.warn("run.precision = bf16 reaches only the hidden-to-hidden layers on the sparse path: its "
                          "first and last layers (most of the work) gather and sum in fp32. For bf16 throughout, "
                          "set train.batch_format = dense", stacklevel=4)

    def _train_epoch(self, run: _Fit, epoch: int) -> EpochRecord:
        """One epoch of updates, its validation and its learning-rate step."""
        t0 = time.perf_counter()
        torch.manual_seed(epoch_seed(self.seed, epoch) + self._group.rank)  # dropout differs per process
        rng = np.random.default_rng(epoch_seed(self.seed, epoch))  # the shuffle: the same on every process
        run.net.train()
        if self.config.optimizer == "lbfgs":
            loss_avg, sse, cells = self._lbfgs_epoch(run.stepped, run.optimizer, run.cache, run.loss_fn, run.l2,
                                                     run.code_l1, run.n_obs, epoch, run.lbfgs_memo)
        else:
            loss_avg, sse, cells = self._passes(run.net, run.optimizer, run.rows, run.data_rows, rng, run.loss_fn,
                                                run.l2, run.code_l1, run.n_obs, epoch, run.state)
        val = self._validate(run, epoch)
        lr_now = float(run.optimizer.param_groups[0]["lr"])  # the rate this epoch trained with
        if run.scheduler is not None:
            if isinstance(run.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                run.scheduler.step(val if val is not None else loss_avg)
            else:
                run.scheduler.step()
        return EpochRecord(
            epoch=epoch, loss=loss_avg, train_rmse=math.sqrt(sse / max(cells, 1)) if run.loss == "mse" else float("nan"),
            val_rmse=val, lr=lr_now, seconds=time.perf_counter() - t0,
        )

    def _validate(self, run: _Fit, epoch: int) -> float | None:
        """The validation figure, computed by rank 0 and shared, so every process decides alike."""
        if run.validate is None:
            return None
        val = None
        if self._group.is_main:
            run.net.eval()
            with torch.no_grad():
                val = float(run.validate(run.net))
        val = self._group.broadcast_float(val)
        if not math.isfinite(val):
            raise TrainingError(
                f"validation {self.val_label} became {val} at epoch {epoch}: the weights diverged; "
                f"lower train.lr (now {self.config.lr}) or raise model.l2"
            )
        return val

    def _record_epoch(self, run: _Fit, record: EpochRecord, report: EpochProgress) -> bool:
        """Add ``record`` to the history, track the best epoch, tell the listeners; True: stop now."""
        state = run.state
        state.history.append(record)
        stop = state.observe(record, run.net, self.config)
        if stop:
            state.stopped = "early_stopping"  # before the checkpoint, so a resume knows
            log.debug("early stopping after epoch %d: no gain for %d epochs; best epoch %s", record.epoch,
                      state.bad_epochs, state.best_epoch)
        report.update(record, state.best_val)
        for callback in self.callbacks:
            callback(record)
        state.epoch = record.epoch
        return stop

    def _checkpoint_if_due(self, run: _Fit, epoch: int, stop: bool) -> None:
        """Due every checkpoint_every epochs and after the last one, once the time budget allows
        (with the default budget of 1, always: every checkpoint_every epochs and the last)."""
        if self.checkpoint_dir is None:
            return
        cfg, group = self.config, self._group
        last = stop or epoch == cfg.epochs
        due = epoch % max(cfg.checkpoint_every, 1) == 0 or last
        if run.next_checkpoint == 0.0 and cfg.checkpoint_budget < 1.0:
            # Before the first checkpoint its cost is unknown: estimate it from the bytes it
            # would write, and wait until training has paid for it, as for every later one.
            expected = _expected_checkpoint_bytes(run.net, run.optimizer, run.state, cfg) / CHECKPOINT_BYTES_PER_SECOND
            budget = cfg.checkpoint_budget
            run.next_checkpoint = time.perf_counter() - run.state.seconds + expected * (1.0 - budget) / budget
        # A run that asked for checkpoints leaves at least one (unless told the budget alone
        # decides): the last epoch's, if none came before.
        final = last and not run.checkpointed and self.final_checkpoint
        due = due and (time.perf_counter() >= run.next_checkpoint or final)
        if group.broadcast_float(float(due)):  # rank 0's clock decides for every process
            if group.is_main:
                cost = time.perf_counter()
                self._save_checkpoint(run.net, run.optimizer, run.scheduler, run.state)
                cost = time.perf_counter() - cost
                run.checkpointed = True
                # Train c (1 - b) / b seconds before the next: checkpoints then take at most the
                # share b (train.checkpoint_budget) of the time.
                budget = cfg.checkpoint_budget
                run.next_checkpoint = time.perf_counter() + cost * (1.0 - budget) / budget
            group.barrier()  # no process runs ahead of the last checkpoint

    def _finish(self, run: _Fit, started: float) -> TrainResult:
        """Keep the best epoch's weights (when validated) and hand back the history."""
        # Let go of the batch objective (in a group: a DistributedDataParallel module that holds
        # the process group), so it is freed now rather than at interpreter exit.
        self._forward = None
        state = run.state
        if state.best_state is not None:
            run.net.load_state_dict(state.best_state)
        run.net.eval()
        return TrainResult(
            history=state.history, best_epoch=state.best_epoch, best_val=state.best_val,
            stopped=state.stopped, seconds=time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ epochs
    def _objective(self, net, x, mask, loss_fn, l2, n_obs, code_l1=0.0, step=0, rows=None, share=None):
        """Batch objective, its summed error and its cell count. ``x, mask: (batch, n)``.

        ``share`` (:class:`aerec.distributed.Share`, several processes only) rescales this
        process's part so that the gradients DDP averages equal the global batch's.
        """
        cfg = self.config
        amp = getattr(self, "_amp", None)
        if hasattr(net, "training_loss"):
            # The network's own objective (e.g. Mult-VAE's annealed ELBO), per row of the batch.
            with autocast(x.device, amp):
                objective = net.training_loss(x, mask, step=step, rows=rows)
            objective = objective.float()
            if l2 > 0:
                objective = objective + l2 * net.weight_norm2() / n_obs
            if share is not None:  # a mean over this share's rows -> its part of the global mean
                objective = objective * share.weight
                return objective, objective.detach() * share.global_rows / share.world, torch.tensor(float(share.rows))
            return objective, objective.detach() * x.shape[0], torch.tensor(float(x.shape[0]))
        with autocast(x.device, amp):  # bf16 products; the loss below is fp32
            if code_l1 > 0:
                out, code = net(x, mask, return_code=True)
            else:
                out, code = net(x, mask), None
        out, code = out.float(), (code.float() if code is not None else None)
        err, count = loss_fn(out, *observed_targets(x, mask))  # a SparseBatch's outputs are its cells
        if share is not None:
            denom = torch.tensor(share.denom, device=x.device)  # the global batch's count / processes
        else:
            denom = count if cfg.loss_normalization == "observed" else torch.tensor(float(x.numel()), device=x.device)
        objective = err / denom.clamp_min(1.0) if share is None else err / denom
        if l2 > 0:
            objective = objective + l2 * net.weight_norm2() / n_obs
        if code is not None:
            per = count.clamp_min(1.0) if share is None else torch.tensor(share.observed, device=x.device)
            objective = objective + code_l1 * code.abs().sum() / per  # per observed rating
        return objective, err, count

    def _check(self, value: torch.Tensor, epoch: int, where: str) -> None:
        if not torch.isfinite(value):
            raise TrainingError(
                f"the loss became {float(value.detach())} at epoch {epoch} ({where}). The updates diverged: lower "
                f"train.lr (now {self.config.lr}), set train.max_grad_norm=1, raise model.l2, or check the "
                f"input for extreme values"
            )

    def _step(self, net, optimizer) -> None:
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), self.config.max_grad_norm)
        optimizer.step()

    def _passes(self, net, optimizer, rows, data_rows, rng, *args):
        """One epoch: one mini-batch pass over the rows, or the passes the network lists.

        A network with ``epoch_passes() -> list[str]`` (RecVAE: three encoder passes, then one
        decoder pass) makes one pass per name, each announced by ``net.begin_pass(name)``
        before it starts; what a pass trains is the network's business (its ``training_loss``).
        Each pass draws its own shuffle from the epoch's ``rng``, so the epoch stays seeded.
        Returns the mean loss over the passes, and the summed error and cell counts.
        """
        if not hasattr(net, "epoch_passes"):
            return self._minibatch_epoch(net, optimizer, rows, data_rows, rng, *args)
        if self._group.active:  # set by fit, the only caller
            raise TrainingError("this model alternates the parts it trains (epoch_passes), which several "
                                "processes do not support; train it in one process")
        losses, sse, cells = [], 0.0, 0.0
        for name in net.epoch_passes():
            net.begin_pass(name)
            loss, err, count = self._minibatch_epoch(net, optimizer, rows, data_rows, rng, *args)
            losses.append(loss)
            sse, cells = sse + err, cells + count
        return sum(losses) / max(len(losses), 1), sse, cells

    def _minibatch_epoch(
        self, net, optimizer, rows, data_rows, rng, loss_fn, l2, code_l1, n_obs, epoch, state=None
    ):
        cfg = self.config
        state = state if state is not None else LoopState()
        group = getattr(self, "_group", None) or distributed.Group()
        forward = getattr(self, "_forward", None) or functools.partial(self._objective, net)
        total, steps, sse, cells = 0.0, 0, 0.0, 0.0
        size = cfg.batch_size or max(len(data_rows), 1)  # 0 = every row in one batch
        for batch in iter_row_batches(len(data_rows), size, rng=rng, shuffle=cfg.shuffle):
            # Several processes: every one draws the same global batch and trains on its share.
            mine, share = self._shard(group, rows, data_rows[batch])
            x, mask = self._rows_batch(rows, mine)  # dense (x, mask), or (SparseBatch, None)
            if not cfg.accumulate_gradients:
                optimizer.zero_grad(set_to_none=True)
            row_ids = torch.from_numpy(mine).to(self.device) if hasattr(net, "training_loss") else None
            if share is not None and share.rows == 0 and row_ids is not None:
                # An empty share still takes part in DDP's all-reduce: one blank row, weight 0
                # (a mean over no rows would be NaN).
                x, mask, row_ids = x.new_zeros(1, x.shape[1]), mask.new_zeros(1, x.shape[1]), row_ids.new_zeros(1)
            objective, err, count = forward(x, mask, loss_fn, l2, n_obs, code_l1, state.steps, row_ids, share=share)
            objective_all, err_all, count_all = group.batch_totals(objective, err, count)
            self._check(objective_all, epoch, f"batch {steps + 1}")
            objective.backward()
            self._step(net, optimizer)
            state.steps += 1  # updates over the whole run: what KL annealing counts
            if cfg.dense_refeeding:
                # Dense re-feeding: the network's own output is a fully "observed" input whose
                # reconstruction should be itself (Kuchaiev & Ginsburg 2017, section 3.3).
                for _ in range(cfg.dense_refeeding):
                    with torch.no_grad():
                        y = net(x, mask)
                        if loss_fn is LOSSES["bce"]:
                            y = torch.sigmoid(y)  # logits -> 0..1, the space of inputs and targets
                    optimizer.zero_grad(set_to_none=True)
                    dense_share = group.share(len(mine), len(batch), len(batch) * y.shape[1])
                    refeed, r_err, r_count = forward(y, torch.ones_like(y), loss_fn, l2, n_obs, share=dense_share)
                    self._check(group.batch_totals(refeed, r_err, r_count)[0], epoch, "dense re-feeding")
                    refeed.backward()
                    self._step(net, optimizer)
            total += float(objective_all)
            sse += float(err_all)
            cells += float(count_all)
            steps += 1
        return total / max(steps, 1), sse, cells

    def _rows_batch(self, rows: sp.csr_array, index: np.ndarray):
        """Rows in the form :func:`choose_batch_format` chose: ``(SparseBatch, None)`` or dense ``(x, mask)``."""
        return rows_batch(rows, index, getattr(self, "batch_format", "dense"), self.device)

    def _lbfgs_epoch(self, net, optimizer, cache, loss_fn, l2, code_l1, n_obs, epoch, memo=None):
        """One L-BFGS step (``lbfgs_iterations`` iterations) on the whole-matrix objective.

        The objective is accumulated chunk by chunk, so only a chunk of rows is ever dense.
        ``memo`` (:class:`~aerec.training.lbfgs.LastEvaluation`) answers the step's first
        evaluation, at the weights the previous step ended on, from that step's last one.
        """
        last = {}

        def closure():
            optimizer.zero_grad(set_to_none=True)
            total = torch.zeros((), device=self.device)
            sse, cells = 0.0, 0.0
            for x, mask in cache:
                out, code = net(x, mask, return_code=True) if code_l1 > 0 else (net(x, mask), None)
                err, count = loss_fn(out, *observed_targets(x, mask))
                part = err / n_obs if self.config.loss_normalization == "observed" else err / (x.shape[1] * cache.n_rows)
                if code_l1 > 0:  # the sparse family's activity penalty, per observed rating as in mini-batches
                    part = part + code_l1 * code.abs().sum() / n_obs
                part.backward()
                total = total + part.detach()
                sse += float(err.detach())
                cells += float(count)
            group = getattr(self, "_group", None)
            if group is not None and group.active:
                # Each process summed its rows' share of the objective: add them all up.
                params = [p for p in net.parameters() if p.requires_grad]
                loss_sum, sse, cells = group.all_reduce_grads(params, float(total), sse, cells)
                total = torch.tensor(loss_sum, device=self.device)
            if l2 > 0:
                reg = l2 * net.weight_norm2() / n_obs
                reg.backward()
                total = total + reg.detach()
            self._check(total, epoch, "L-BFGS")
            last.update(loss=float(total), sse=sse, cells=cells)
            return total

        if memo is not None:
            params = [p for group in optimizer.param_groups for p in group["params"]]
            closure = memo.wrap(closure, params, last)
        optimizer.step(closure)
        return last.get("loss", float("nan")), last.get("sse", 0.0), last.get("cells", 0.0)


    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, net, optimizer, scheduler, state: LoopState) -> None:
        save_training_state(self.checkpoint_dir, net, optimizer, scheduler, state, config=self.config, seed=self.seed)

    def _shard(self, group, rows: sp.csr_array, global_rows: np.ndarray):
        """This process's rows of a global batch and how to scale their loss (None alone)."""
        if not group.active:
            return global_rows, None
        mine = group.shard(global_rows)
        observed = float((rows.indptr[global_rows + 1] - rows.indptr[global_rows]).sum())  # the global batch's
        count = observed if self.config.loss_normalization == "observed" else float(len(global_rows) * rows.shape[1])
        return mine, group.share(len(mine), len(global_rows), count, observed)

    def _resume(self, net, optimizer, scheduler, group) -> LoopState:
        """Load the checkpoint on every process; all must find the same one (a shared folder)."""
        error: Exception | None = None
        state = LoopState()
        try:
            state = self._load_checkpoint(net, optimizer, scheduler)
        except (TrainingError, ModelFileError) as exc:
            error = exc
        if not group.agree(error is None):
            raise error or TrainingError(
                f"another process could not load the checkpoint in {self.checkpoint_dir}; every process must "
                "read the same checkpoint folder (put it on storage all machines share)"
            )
        if not group.same(state.epoch):
            raise TrainingError(
                f"the processes found checkpoints of different epochs in {self.checkpoint_dir}; every process must "
                "read the same checkpoint folder (put it on storage all machines share)"
            )
        return state


    def _load_checkpoint(self, net, optimizer, scheduler) -> LoopState:
        if self.checkpoint_dir is None:
            raise TrainingError("resume needs a checkpoint directory")
        return load_training_state(self.checkpoint_dir, net, optimizer, scheduler, seed=self.seed, device=self.device)
