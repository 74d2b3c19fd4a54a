"""The trainer: the epoch loop, optimisers, schedules, validation, early stopping, checkpoints.

Models are plain ``nn.Module``s; everything about *how* they learn lives here. One epoch is one
pass over every row that has at least one rating. Updates come after each row (``batch_size=1``,
online), after each mini-batch, or once per L-BFGS step over the whole matrix (``batch_size=0``).

The objective for ratings is the reconstruction error on observed cells only, normalised per
observed rating, plus AutoRec's L2 term in the same units::

    loss = SSE(batch) / n_observed(batch) + l2 * ||W||^2 / N_observed(all rows)

Reproducibility: weights are initialised from the seed, and every epoch draws its shuffling
and its dropout masks from generators seeded by ``(seed, epoch)``, so a run resumed from a
checkpoint produces the same numbers as one that never stopped.

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
validates (the figure is broadcast), shows progress and writes checkpoints. On a GPU the
forward pass runs under bf16 autocast unless ``precision="fp32"`` (:mod:`aerec.device`).

Batches reach the network in one of two forms (:func:`choose_batch_format`, ``train.batch_format``):
dense ``(batch, n)`` values and mask, or a :class:`~aerec.data.batches.SparseBatch` whose
outputs are computed at the observed cells only (``Autoencoder.forward_observed``). Nothing of
size users x items is made on either path: at most one batch, or one chunk of L-BFGS's pass.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from aerec import distributed
from aerec.config import TrainConfig
from aerec.data.batches import dense_rows, iter_row_batches, observed_targets, sparse_batch
from aerec.device import autocast, resolve_precision
from aerec.errors import ConfigError, ModelFileError, TrainingError
from aerec.losses import LOSSES

__all__ = [
    "Trainer", "TrainResult", "EpochRecord", "resolve_device", "resolve_threads", "seed_everything", "choose_batch_format",
]

CHECKPOINT_VERSION = 1
# Rows per chunk when a full-batch (L-BFGS) objective is accumulated: bounds memory to a chunk.
FULL_BATCH_CELLS = 4_000_000
# The sparse path (choose_batch_format): below this density of observed cells it is the faster
# one on CPU (measured: docs/benchmarks.md, "Performance"); above it the dense products win ...
SPARSE_BELOW_DENSITY = 0.15
# ... once a batch's first layer is big enough (batch rows x columns x first hidden size, in
# multiply-adds): below it the sparse path's fixed cost per batch (a few more, smaller kernels)
# outweighs the products it saves (measured: an n-20-10-20-n network on ML-100K user rows in
# batches of 32, 1 M multiply-adds, is 1.8x slower on the sparse path; 500 units in batches of
# 64 item rows, 30 M, is 1.2x faster).
SPARSE_MIN_WORK = 1 << 24  # 16.8 M
# ... and whatever the density, a dense batch (values + mask) larger than this is not made.
DENSE_BATCH_CELLS = 1 << 25  # 32 M cells: 2 x 128 MB in float32
# Observed cells per chunk of the sparse full-batch (L-BFGS) cache.
SPARSE_CHUNK_CELLS = 2_000_000


@dataclass
class EpochRecord:
    """One line of a training history (history.csv)."""

    epoch: int
    loss: float  # objective, averaged over the epoch's updates
    train_rmse: float  # RMSE on the observed training cells seen this epoch (inputs corrupted as trained)
    val_rmse: float | None  # the validation figure: RMSE, or the ranking metric of implicit models
    lr: float
    seconds: float  # wall time of this epoch, validation included


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int | None = None
    best_val: float | None = None
    stopped: str = "epochs"  # "epochs", "early_stopping"
    seconds: float = 0.0


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"run.device is {name} but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) for weight initialisation."""
    torch.manual_seed(seed)


def resolve_threads(threads: int = 0) -> int:
    """The CPU threads torch should use: ``threads`` when > 0; 0 (``run.threads = 0``) chooses.

    The choice: ``OMP_NUM_THREADS`` when it is set (the user's own word); otherwise the CPUs this
    process may run on, less those other work keeps busy (the 1-minute load average, counting
    this process as one of its own), at least 1. Why not simply every core: OpenMP threads wait
    for each other at every product, so a thread that shares its core with another job holds the
    others back. On the shared 2-core machine of docs/benchmarks.md, torch's default of 2 threads
    made fits up to 2.3x *slower* than 1 whenever other jobs ran.
    """
    if threads > 0:
        return int(threads)
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        others = max(os.getloadavg()[0] - 1.0, 0.0)  # this process counts one when it is running
    except OSError:  # no load average on this platform
        others = 0.0
    return max(1, min(cpus, math.floor(cpus - others)))


def choose_batch_format(
    net: nn.Module,
    rows: sp.csr_array,
    *,
    config: TrainConfig,
    loss: str,
    device: torch.device | str = "cpu",
    distributed: bool = False,
) -> str:
    """How the trainer hands rows to ``net``: ``"dense"`` batches or ``"sparse"`` ones.

    ``train.batch_format`` decides when it is ``dense`` or ``sparse``; ``auto`` takes the sparse
    path when the network has one (``forward_observed``: the explicit-rating autoencoders),
    the loss reads observed cells only (mse, bce; not the implicit models' own objectives, nor
    dense re-feeding, whose input is the whole output), on CPU, in a single process, and
    either one dense batch would pass ``DENSE_BATCH_CELLS``, or the matrix is sparser than
    ``SPARSE_BELOW_DENSITY`` (15 %) and a batch's first layer is worth it (``SPARSE_MIN_WORK``
    multiply-adds, batch rows x columns x first hidden size). Both paths compute the same objective and gradients (up to float
    rounding; tests/test_sparse_path.py); the crossover was measured: docs/benchmarks.md.
    """
    choice = getattr(config, "batch_format", "auto")
    if choice == "dense":
        return "dense"
    why_not = None
    if not hasattr(net, "forward_observed"):
        why_not = "this network has no sparse path (only the explicit-rating autoencoders do)"
    elif hasattr(net, "training_loss") or loss not in ("mse", "bce"):
        why_not = "its objective reads every cell, not only the observed ones"
    elif config.dense_refeeding:
        why_not = "dense re-feeding trains on the whole output"
    if choice == "sparse":
        if why_not is not None:
            raise TrainingError(f"train.batch_format = 'sparse' cannot be used here: {why_not}; "
                                "use 'auto' or 'dense'")
        return "sparse"
    if why_not is not None or torch.device(device).type != "cpu" or distributed:
        return "dense"
    n_rows, n_cols = rows.shape
    density = rows.nnz / max(n_rows * n_cols, 1)
    batch_rows = min(config.batch_size or n_rows, n_rows)
    if batch_rows * n_cols > DENSE_BATCH_CELLS:
        return "sparse"
    first_hidden = net.encoder[0].out_features
    worth_it = batch_rows * n_cols * first_hidden >= SPARSE_MIN_WORK
    return "sparse" if density < SPARSE_BELOW_DENSITY and worth_it else "dense"


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


class Trainer:
    """Trains an autoencoder on the rows of a sparse matrix.

    Args:
        config: the training settings.
        seed: run seed (shuffling and dropout per epoch).
        device: where the network and batches live.
        progress: show a Rich progress bar on stderr.
        checkpoint_dir: write checkpoints there, every ``config.checkpoint_every`` epochs and
            after the last one, as long as they take at most the share ``b =
            config.checkpoint_budget`` of the time: a checkpoint that took c seconds is followed
            by at least c (1 - b) / b seconds of training before the next. The first epoch's is
            always written; a crash then costs at most the epochs since the last one, and a
            resume from any checkpoint ends with the same numbers.
        callbacks: called as ``callback(record)`` after every epoch (on every process).
        val_label: what the validation figure is, for messages and the progress bar.
        precision: ``auto`` (bf16 autocast on a GPU), ``fp32`` or ``bf16``; L-BFGS is always fp32
            (its line search needs an exact objective).
        compile: train through :func:`compile_network` (``torch.compile``, eager where it fails).

    After :meth:`fit` starts, ``batch_format`` says which path it took (``"dense"`` or
    ``"sparse"``, :func:`choose_batch_format`).
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        progress: bool = False,
        checkpoint_dir: str | Path | None = None,
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
        cfg = self.config
        group = self._group = distributed.current()  # alone, or this process's place among several
        net.to(self.device)
        data_rows = np.flatnonzero(np.diff(rows.indptr) > 0)  # rows with something to learn
        group.check_batch_size(cfg.batch_size, len(data_rows))
        self._amp = resolve_precision(self.precision, self.device) if cfg.optimizer != "lbfgs" else None
        n_obs = max(int(rows.nnz), 1)
        loss_fn = LOSSES[loss]
        optimizer = self._optimizer(net)
        # "plateau" watches the validation figure, or the training loss when there is none.
        scheduler = self._scheduler(optimizer, maximise=higher_is_better and validate is not None)
        state = _LoopState(higher_is_better=higher_is_better)
        if resume:
            state = self._resume(net, optimizer, scheduler, group)
            state.higher_is_better = higher_is_better
        if hasattr(net, "training_loss") and cfg.optimizer == "lbfgs":
            raise TrainingError("this model has its own objective and trains with a gradient optimiser; "
                                "set train.optimizer to adam (L-BFGS needs one fixed full-batch objective)")
        self.batch_format = choose_batch_format(net, rows, config=cfg, loss=loss, device=self.device,
                                                distributed=group.active)
        if self.precision == "bf16" and self._amp is not None and self.batch_format == "sparse":
            warnings.warn("run.precision = bf16 reaches only the hidden-to-hidden layers on the sparse path: its "
                          "first and last layers (most of the work) gather and sum in fp32. For bf16 throughout, "
                          "set train.batch_format = dense", stacklevel=2)
        # The training passes go through a compiled view of ``net`` (same parameters); ``net``
        # itself stays eager for validation, inference and saving.
        stepped = compile_network(net) if self.compile else net
        # L-BFGS always works on the whole matrix (its line search needs one fixed objective).
        cache = None
        if cfg.optimizer == "lbfgs":
            full_cache = _SparseCache if self.batch_format == "sparse" else _DenseCache
            cache = full_cache(rows, self.device, group.shard(np.arange(rows.shape[0])))
        # The batch objective; in a group, a DistributedDataParallel module that averages gradients.
        self._forward = group.objective(stepped, self._objective, self.device) if cfg.optimizer != "lbfgs" else None

        started = time.perf_counter() - state.seconds
        with _Progress(self.progress and group.is_main, cfg.epochs, state.epoch, self.val_label) as bar, \
                _compile_errors_run_eagerly(self.compile):
            # A checkpoint written when early stopping fired has nothing left to train, unless
            # the resumed run is more patient than the one that stopped.
            done = state.stopped == "early_stopping" and 0 < cfg.patience <= state.bad_epochs
            state.stopped = "early_stopping" if done else "epochs"
            last = state.epoch if done else cfg.epochs
            next_checkpoint = 0.0  # perf_counter time after which the next checkpoint is due
            for epoch in range(state.epoch + 1, last + 1):
                t0 = time.perf_counter()
                torch.manual_seed(_epoch_seed(self.seed, epoch) + group.rank)  # dropout differs per process
                rng = np.random.default_rng(_epoch_seed(self.seed, epoch))
                net.train()
                if cfg.optimizer == "lbfgs":
                    loss_avg, sse, cells = self._lbfgs_epoch(stepped, optimizer, cache, loss_fn, l2, code_l1, n_obs,
                                                             epoch)
                else:
                    loss_avg, sse, cells = self._passes(
                        net, optimizer, rows, data_rows, rng, loss_fn, l2, code_l1, n_obs, epoch, state
                    )
                val = None
                if validate is not None:
                    if group.is_main:
                        net.eval()
                        with torch.no_grad():
                            val = float(validate(net))
                    val = group.broadcast_float(val)  # every process takes the same stopping decision
                    if not math.isfinite(val):
                        raise TrainingError(
                            f"validation {self.val_label} became {val} at epoch {epoch}: the weights diverged; "
                            f"lower train.lr (now {cfg.lr}) or raise model.l2"
                        )
                lr_now = float(optimizer.param_groups[0]["lr"])
                if scheduler is not None:
                    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                        scheduler.step(val if val is not None else loss_avg)
                    else:
                        scheduler.step()
                record = EpochRecord(
                    epoch=epoch, loss=loss_avg, train_rmse=math.sqrt(sse / max(cells, 1)) if loss == "mse" else float("nan"),
                    val_rmse=val, lr=lr_now, seconds=time.perf_counter() - t0,
                )
                state.history.append(record)
                stop = state.observe(record, net, cfg)
                if stop:
                    state.stopped = "early_stopping"  # before the checkpoint, so a resume knows
                bar.update(record, state.best_val)
                for callback in self.callbacks:
                    callback(record)
                state.epoch = epoch
                state.seconds = time.perf_counter() - started
                if self.checkpoint_dir is not None:
                    # Due every checkpoint_every epochs and after the last one, once the budget allows
                    # (with the default budget of 1, always: every checkpoint_every epochs and the last).
                    due = epoch % max(cfg.checkpoint_every, 1) == 0 or stop or epoch == cfg.epochs
                    due = due and time.perf_counter() >= next_checkpoint
                    if group.broadcast_float(float(due)):  # rank 0's clock decides for every process
                        if group.is_main:
                            cost = time.perf_counter()
                            self._save_checkpoint(net, optimizer, scheduler, state)
                            cost = time.perf_counter() - cost
                            # Train c (1 - b) / b seconds before the next: checkpoints then take at
                            # most the share b (train.checkpoint_budget) of the time.
                            budget = cfg.checkpoint_budget
                            next_checkpoint = time.perf_counter() + cost * (1.0 - budget) / budget
                        group.barrier()  # no process runs ahead of the last checkpoint
                if stop:
                    break
        # Let go of the batch objective (in a group: a DistributedDataParallel module that holds
        # the process group), so it is freed now rather than at interpreter exit.
        self._forward = None
        if state.best_state is not None:
            net.load_state_dict(state.best_state)
        net.eval()
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
        state = state if state is not None else _LoopState()
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
        if getattr(self, "batch_format", "dense") == "sparse":
            return sparse_batch(rows, index, device=self.device), None
        return dense_rows(rows, index, device=self.device)

    def _lbfgs_epoch(self, net, optimizer, cache, loss_fn, l2, code_l1, n_obs, epoch):
        """One L-BFGS step (``lbfgs_iterations`` iterations) on the whole-matrix objective.

        The objective is accumulated chunk by chunk, so only a chunk of rows is ever dense.
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

        optimizer.step(closure)
        return last.get("loss", float("nan")), last.get("sse", 0.0), last.get("cells", 0.0)

    # ------------------------------------------------------------------ optimisers
    def _optimizer(self, net) -> torch.optim.Optimizer:
        cfg = self.config
        params = [p for p in net.parameters() if p.requires_grad]
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "momentum":
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "rmsprop":
            # Plain RMSprop, as the course uses it: train.momentum belongs to the "momentum" optimiser.
            return torch.optim.RMSprop(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        # Adam's fused kernel updates each weight in one pass instead of several: 8.7x faster a step
        # for 54 M weights on CPU (0.035 s against 0.30 s; docs/benchmarks.md, "Performance").
        fused = {"fused": True} if self.device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params) else {}
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
        if cfg.weight_decay:
            raise TrainingError("train.weight_decay is not supported with lbfgs; use model.l2 instead")
        _without_dynamo_import()
        return torch.optim.LBFGS(
            params, lr=cfg.lr, max_iter=cfg.lbfgs_iterations, history_size=20, line_search_fn="strong_wolfe"
        )

    def _scheduler(self, optimizer, *, maximise: bool = False):
        cfg = self.config
        if cfg.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
        if cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        if cfg.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode="max" if maximise else "min", factor=cfg.gamma, patience=max(1, cfg.patience // 2)
            )
        return None

    # ------------------------------------------------------------------ checkpoints
    def _save_checkpoint(self, net, optimizer, scheduler, state: _LoopState) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for k, v in net.state_dict().items():
            tensors[f"net.{k}"] = v.detach().cpu().contiguous()
        if state.best_state is not None:
            for k, v in state.best_state.items():
                tensors[f"best.{k}"] = v.detach().cpu().contiguous()
        opt_meta = _flatten_state(optimizer.state_dict(), "opt", tensors)
        meta = {
            "format_version": CHECKPOINT_VERSION,
            "epoch": state.epoch,
            "seconds": state.seconds,
            "best_epoch": state.best_epoch,
            "best_val": state.best_val,
            "bad_epochs": state.bad_epochs,
            "stopped": state.stopped,
            "steps": state.steps,
            "history": [asdict(r) for r in state.history],
            "optimizer": opt_meta,
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "config": asdict(self.config),
            "seed": self.seed,
        }
        write_checkpoint(self.checkpoint_dir, tensors, meta)

    def _shard(self, group, rows: sp.csr_array, global_rows: np.ndarray):
        """This process's rows of a global batch and how to scale their loss (None alone)."""
        if not group.active:
            return global_rows, None
        mine = group.shard(global_rows)
        observed = float((rows.indptr[global_rows + 1] - rows.indptr[global_rows]).sum())  # the global batch's
        count = observed if self.config.loss_normalization == "observed" else float(len(global_rows) * rows.shape[1])
        return mine, group.share(len(mine), len(global_rows), count, observed)

    def _resume(self, net, optimizer, scheduler, group) -> _LoopState:
        """Load the checkpoint on every process; all must find the same one (a shared folder)."""
        error: Exception | None = None
        state = _LoopState()
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

    def _load_checkpoint(self, net, optimizer, scheduler) -> _LoopState:
        if self.checkpoint_dir is None:
            raise TrainingError("resume needs a checkpoint directory")
        tensors, meta = read_checkpoint(self.checkpoint_dir)
        if meta.get("seed") != self.seed:
            raise TrainingError(
                f"the checkpoint in {self.checkpoint_dir} was made with seed {meta.get('seed')}, not {self.seed}; "
                "resume with the same seed or start afresh without --resume"
            )
        net.load_state_dict({k[4:]: v.to(self.device) for k, v in tensors.items() if k.startswith("net.")})
        best = {k[5:]: v.to(self.device) for k, v in tensors.items() if k.startswith("best.")}
        optimizer.load_state_dict(_unflatten_state(meta["optimizer"], "opt", tensors, self.device))
        if scheduler is not None and meta.get("scheduler") is not None:
            scheduler.load_state_dict(meta["scheduler"])
        state = _LoopState(
            epoch=int(meta["epoch"]), seconds=float(meta.get("seconds", 0.0)),
            best_epoch=meta.get("best_epoch"), best_val=meta.get("best_val"), bad_epochs=int(meta.get("bad_epochs", 0)),
            history=[EpochRecord(**r) for r in meta.get("history", [])], best_state=best or None,
            stopped=meta.get("stopped", "epochs"), steps=int(meta.get("steps", 0)),
        )
        return state


@dataclass
class _LoopState:
    """Everything the epoch loop carries from one epoch to the next (what a checkpoint holds)."""

    epoch: int = 0
    seconds: float = 0.0
    best_epoch: int | None = None
    best_val: float | None = None
    bad_epochs: int = 0
    history: list[EpochRecord] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    stopped: str = "epochs"
    steps: int = 0  # optimiser updates so far, over all epochs
    higher_is_better: bool = False

    def observe(self, record: EpochRecord, net: nn.Module, cfg: TrainConfig) -> bool:
        """Track the best validation epoch; True when early stopping says stop."""
        if record.val_rmse is None:
            return False
        sign = -1.0 if self.higher_is_better else 1.0  # compare as a figure to minimise
        if self.best_val is None or sign * record.val_rmse < sign * self.best_val - cfg.min_delta:
            self.best_val, self.best_epoch, self.bad_epochs = record.val_rmse, record.epoch, 0
            self.best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            return False
        self.bad_epochs += 1
        return cfg.patience > 0 and self.bad_epochs >= cfg.patience


class _DenseCache:
    """The whole matrix as dense row chunks for full-batch optimisation.

    Chunks are built once and kept when they fit in ``FULL_BATCH_CELLS * 16`` cells (about
    256 MB); larger matrices are rebuilt chunk by chunk on each pass instead.
    """

    def __init__(self, rows: sp.csr_array, device: torch.device, subset: np.ndarray | None = None) -> None:
        self.rows, self.device = rows, device
        self.n_rows = rows.shape[0]  # of the whole matrix, also when this process holds a subset
        mine = np.arange(self.n_rows) if subset is None else np.asarray(subset, dtype=np.int64)
        per_chunk = max(1, FULL_BATCH_CELLS // max(rows.shape[1], 1))
        self.chunks = [mine[s : s + per_chunk] for s in range(0, len(mine), per_chunk)]
        self.keep = len(mine) * rows.shape[1] <= FULL_BATCH_CELLS * 16
        self._built = [dense_rows(rows, c, device=device) for c in self.chunks] if self.keep else None

    def __iter__(self):
        if self._built is not None:
            yield from self._built
        else:
            for c in self.chunks:
                yield dense_rows(self.rows, c, device=self.device)


class _SparseCache:
    """The whole matrix as :class:`SparseBatch` chunks for full-batch optimisation (the sparse path).

    Always kept: it costs what the matrix costs (about 20 bytes an observed cell). Yields
    ``(batch, None)`` pairs, as :class:`_DenseCache` yields ``(x, mask)``.
    """

    def __init__(self, rows: sp.csr_array, device: torch.device, subset: np.ndarray | None = None) -> None:
        self.n_rows = rows.shape[0]  # of the whole matrix, also when this process holds a subset
        mine = np.arange(self.n_rows) if subset is None else np.asarray(subset, dtype=np.int64)
        ends = np.cumsum(rows.indptr[mine + 1] - rows.indptr[mine])  # observed cells up to each row
        cuts = np.searchsorted(ends, np.arange(SPARSE_CHUNK_CELLS, int(ends[-1]) if len(ends) else 0, SPARSE_CHUNK_CELLS))
        self.chunks = [c for c in np.split(mine, np.unique(cuts)) if len(c)]
        self._built = [sparse_batch(rows, c, device=device) for c in self.chunks]

    def __iter__(self):
        for batch in self._built:
            yield batch, None


class _Progress:
    """A Rich progress bar with epoch, loss, validation RMSE and ETA (or nothing)."""

    def __init__(self, enabled: bool, epochs: int, start: int, val_label: str = "RMSE") -> None:
        self.enabled, self.epochs, self.start, self.val_label = enabled, epochs, start, val_label
        self.bar = None

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            from aerec.cli import err_console

            self.bar = Progress(
                TextColumn("epoch {task.completed:>4.0f}/{task.total:.0f}"),
                BarColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn(f"val {self.val_label} " + "{task.fields[val]} (best {task.fields[best]})"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=err_console,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("train", total=self.epochs, completed=self.start, loss="-", val="-", best="-")
        return self

    def update(self, record: EpochRecord, best: float | None) -> None:
        if self.bar is not None:
            fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
            self.bar.update(self.task, completed=record.epoch, loss=fmt(record.loss), val=fmt(record.val_rmse), best=fmt(best))

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


# ---------------------------------------------------------------------- checkpoint files
def _flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-ready copy of a nested state with every tensor moved into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_key(k), _flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return {"__list__": [_flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    return obj


def _key(k: Any) -> Any:
    return k if isinstance(k, (str, int)) else str(k)


def _unflatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor], device) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            # A fresh copy: safetensors hands back tensors at unaligned addresses, and SIMD
            # reductions over them round differently, so a resumed run would drift.
            return tensors[obj["__tensor__"]].to(device, copy=True)
        if "__dict__" in obj:
            return {k: _unflatten_state(v, "", tensors, device) for k, v in obj["__dict__"]}
        if "__list__" in obj:
            return [_unflatten_state(v, "", tensors, device) for v in obj["__list__"]]
        if "__float__" in obj:
            return float(obj["__float__"])
    return obj


def write_checkpoint(directory: Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Write ``checkpoint.safetensors`` + ``checkpoint.json`` so that a crash leaves either the
    previous checkpoint or the new one, never a mix: both go to a fresh folder that is renamed
    into place (the rename is atomic on POSIX)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(".ckpt-*"):  # what a killed save left (tests/test_crash_safety.py)
        _rmtree(stale)
    tmp = Path(tempfile.mkdtemp(prefix=".ckpt-", dir=directory))
    try:
        save_file(tensors, str(tmp / "checkpoint.safetensors"))
        from aerec.persistence import public_modes, sha256_file

        meta = dict(meta, weights_sha256=sha256_file(tmp / "checkpoint.safetensors"))
        (tmp / "checkpoint.json").write_text(json.dumps(meta), encoding="utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        public_modes(tmp)
    except BaseException:
        _rmtree(tmp)  # the previous checkpoint stays as it was
        raise
    final = directory / "latest"
    old = directory / ".latest-old"
    if final.exists():
        if old.exists():
            _rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        _rmtree(old)


CHECKPOINT_FOLDERS = ("latest", ".latest-old")  # the newest, then the one a crash mid-swap left


def has_checkpoint(directory: Path) -> bool:
    """Whether :func:`read_checkpoint` finds something to read in ``directory``."""
    return any((Path(directory) / name / "checkpoint.json").is_file() for name in CHECKPOINT_FOLDERS)


def read_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load the latest checkpoint (falling back to the one being replaced if a crash hit the swap)."""
    for name in CHECKPOINT_FOLDERS:
        folder = Path(directory) / name
        if (folder / "checkpoint.json").is_file():
            break
    else:
        raise ModelFileError(f"no checkpoint in {directory}; train without --resume first")
    from aerec.persistence import sha256_file

    try:
        meta = json.loads((folder / "checkpoint.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"{folder / 'checkpoint.json'} is unreadable ({exc}); delete the checkpoint and retrain") from None
    version = meta.get("format_version") if isinstance(meta, dict) else None
    if not isinstance(version, int) or isinstance(version, bool):  # tampered, or not ours
        raise ModelFileError(f"{folder / 'checkpoint.json'} is not an aerec checkpoint; delete the checkpoint and retrain")
    if version > CHECKPOINT_VERSION:
        raise ModelFileError(f"{folder} is a checkpoint format {version} from a newer aerec; upgrade aerec")
    weights = folder / "checkpoint.safetensors"
    if not weights.is_file() or sha256_file(weights) != meta.get("weights_sha256"):
        raise ModelFileError(f"{weights} is missing, truncated or modified (checksum mismatch); delete it and retrain")
    return load_file(str(weights)), meta


def _without_dynamo_import() -> None:
    """Let ``torch.optim.Optimizer``'s bookkeeping methods run without importing ``torch._dynamo``.

    torch wraps ``add_param_group``, ``state_dict``, ``load_state_dict`` and ``zero_grad`` in
    ``torch._disable_dynamo``, which imports ``torch._dynamo`` at the first call (2.2 s of a
    20 s ``aerec train`` on two cores, measured with cProfile) to mark them as never compiled,
    and caches the result on the function as ``__dynamo_disable``. Setting that cache to the
    plain function skips the import; the methods behave the same, and the trainer never calls
    them from inside a compiled region. L-BFGS's step does not touch dynamo either; the Adam
    family's step imports it regardless. Nothing happens once ``torch._dynamo`` is loaded, or
    where a torch version wraps them differently.
    """
    import sys

    if "torch._dynamo" in sys.modules:
        return
    for name in ("add_param_group", "state_dict", "load_state_dict", "zero_grad"):
        inner = getattr(getattr(torch.optim.Optimizer, name, None), "__wrapped__", None)
        if inner is not None and getattr(inner, "__dynamo_disable", None) is None:
            setattr(inner, "__dynamo_disable", inner)


def compile_network(net: nn.Module) -> nn.Module:
    """A ``torch.compile``d view of ``net`` for the training passes; ``net`` is not changed.

    The view shares ``net``'s parameters, so training it trains ``net``, whose weights keep their
    names: a saved model is the same as an eager one's, and validation and inference run eagerly.
    Compilation happens at the first call. The trainer makes those calls inside
    :func:`_compile_errors_run_eagerly`, so where compiling fails (no C++ compiler, an operation
    the compiler does not support) that code runs eagerly with a warning instead of stopping the
    training. The sparse path's ``forward_observed`` is not compiled (sparse tensors are outside
    what the compiler handles).
    """
    return torch.compile(net)


def _compile_errors_run_eagerly(active: bool) -> contextlib.AbstractContextManager:
    """Dynamo's ``suppress_errors`` for the duration of a fit only: the user's process keeps
    its own setting for anything else it compiles."""
    if not active:
        return contextlib.nullcontext()
    import torch._dynamo

    return torch._dynamo.config.patch(suppress_errors=True)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)

