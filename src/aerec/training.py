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
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from aerec.config import TrainConfig
from aerec.data.batches import dense_rows, iter_row_batches
from aerec.errors import ModelFileError, TrainingError
from aerec.losses import LOSSES

__all__ = ["Trainer", "TrainResult", "EpochRecord", "resolve_device", "seed_everything"]

CHECKPOINT_VERSION = 1
# Rows per chunk when a full-batch (L-BFGS) objective is accumulated: bounds memory to a chunk.
FULL_BATCH_CELLS = 4_000_000


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
        raise TrainingError("run.device is cuda but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) for weight initialisation."""
    torch.manual_seed(seed)


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


class Trainer:
    """Trains an autoencoder on the rows of a sparse matrix.

    Args:
        config: the training settings.
        seed: run seed (shuffling and dropout per epoch).
        device: where the network and batches live.
        progress: show a Rich progress bar on stderr.
        checkpoint_dir: write a checkpoint there every ``config.checkpoint_every`` epochs.
        callbacks: called as ``callback(record)`` after every epoch.
        val_label: what the validation figure is, for messages and the progress bar.
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
    ) -> None:
        self.config = config
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
        net.to(self.device)
        data_rows = np.flatnonzero(np.diff(rows.indptr) > 0)  # rows with something to learn
        n_obs = max(int(rows.nnz), 1)
        loss_fn = LOSSES[loss]
        optimizer = self._optimizer(net)
        scheduler = self._scheduler(optimizer)
        state = _LoopState(higher_is_better=higher_is_better)
        if resume:
            state = self._load_checkpoint(net, optimizer, scheduler)
            state.higher_is_better = higher_is_better
        if hasattr(net, "training_loss") and cfg.optimizer == "lbfgs":
            raise TrainingError("this model has its own objective and trains with a gradient optimiser; "
                                "set train.optimizer to adam (L-BFGS needs one fixed full-batch objective)")
        # L-BFGS always works on the whole matrix (its line search needs one fixed objective).
        cache = _DenseCache(rows, self.device) if cfg.optimizer == "lbfgs" else None

        started = time.perf_counter() - state.seconds
        with _Progress(self.progress, cfg.epochs, state.epoch, self.val_label) as bar:
            # A checkpoint written when early stopping fired has nothing left to train, unless
            # the resumed run is more patient than the one that stopped.
            done = state.stopped == "early_stopping" and 0 < cfg.patience <= state.bad_epochs
            state.stopped = "early_stopping" if done else "epochs"
            last = state.epoch if done else cfg.epochs
            for epoch in range(state.epoch + 1, last + 1):
                t0 = time.perf_counter()
                torch.manual_seed(_epoch_seed(self.seed, epoch))
                rng = np.random.default_rng(_epoch_seed(self.seed, epoch))
                net.train()
                if cfg.optimizer == "lbfgs":
                    loss_avg, sse, cells = self._lbfgs_epoch(net, optimizer, cache, loss_fn, l2, code_l1, n_obs, epoch)
                else:
                    loss_avg, sse, cells = self._minibatch_epoch(
                        net, optimizer, rows, data_rows, rng, loss_fn, l2, code_l1, n_obs, epoch, state
                    )
                val = None
                if validate is not None:
                    net.eval()
                    with torch.no_grad():
                        val = float(validate(net))
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
                if self.checkpoint_dir is not None and (epoch % max(cfg.checkpoint_every, 1) == 0 or stop or epoch == cfg.epochs):
                    self._save_checkpoint(net, optimizer, scheduler, state)
                if stop:
                    break
        if state.best_state is not None:
            net.load_state_dict(state.best_state)
        net.eval()
        return TrainResult(
            history=state.history, best_epoch=state.best_epoch, best_val=state.best_val,
            stopped=state.stopped, seconds=time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ epochs
    def _objective(self, net, x, mask, loss_fn, l2, n_obs, code_l1=0.0, step=0, rows=None):
        """Batch objective, its summed error and its cell count. ``x, mask: (batch, n)``."""
        cfg = self.config
        if hasattr(net, "training_loss"):
            # The network's own objective (e.g. Mult-VAE's annealed ELBO), per row of the batch.
            objective = net.training_loss(x, mask, step=step, rows=rows)
            if l2 > 0:
                objective = objective + l2 * net.weight_norm2() / n_obs
            return objective, objective.detach() * x.shape[0], torch.tensor(float(x.shape[0]))
        if code_l1 > 0:
            out, code = net(x, mask, return_code=True)
        else:
            out, code = net(x, mask), None
        err, count = loss_fn(out, x, mask)
        denom = count if cfg.loss_normalization == "observed" else torch.tensor(float(x.numel()), device=x.device)
        objective = err / denom.clamp_min(1.0)
        if l2 > 0:
            objective = objective + l2 * net.weight_norm2() / n_obs
        if code is not None:
            objective = objective + code_l1 * code.abs().sum() / count.clamp_min(1.0)
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

    def _minibatch_epoch(
        self, net, optimizer, rows, data_rows, rng, loss_fn, l2, code_l1, n_obs, epoch, state=None
    ):
        cfg = self.config
        state = state if state is not None else _LoopState()
        total, steps, sse, cells = 0.0, 0, 0.0, 0.0
        size = cfg.batch_size or max(len(data_rows), 1)  # 0 = every row in one batch
        for batch in iter_row_batches(len(data_rows), size, rng=rng, shuffle=cfg.shuffle):
            x, mask = dense_rows(rows, data_rows[batch], device=self.device)
            if not cfg.accumulate_gradients:
                optimizer.zero_grad(set_to_none=True)
            row_ids = torch.from_numpy(data_rows[batch]).to(self.device) if hasattr(net, "training_loss") else None
            objective, err, count = self._objective(net, x, mask, loss_fn, l2, n_obs, code_l1, state.steps, row_ids)
            self._check(objective, epoch, f"batch {steps + 1}")
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
                    refeed, _, _ = self._objective(net, y, torch.ones_like(y), loss_fn, l2, n_obs)
                    self._check(refeed, epoch, "dense re-feeding")
                    refeed.backward()
                    self._step(net, optimizer)
            total += float(objective.detach())
            sse += float(err.detach())
            cells += float(count)
            steps += 1
        return total / max(steps, 1), sse, cells

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
                err, count = loss_fn(out, x, mask)
                part = err / n_obs if self.config.loss_normalization == "observed" else err / (x.shape[1] * cache.n_rows)
                if code_l1 > 0:  # the sparse family's activity penalty, per observed rating as in mini-batches
                    part = part + code_l1 * code.abs().sum() / n_obs
                part.backward()
                total = total + part.detach()
                sse += float(err.detach())
                cells += float(count)
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
        if cfg.optimizer == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        if cfg.weight_decay:
            raise TrainingError("train.weight_decay is not supported with lbfgs; use model.l2 instead")
        return torch.optim.LBFGS(
            params, lr=cfg.lr, max_iter=cfg.lbfgs_iterations, history_size=20, line_search_fn="strong_wolfe"
        )

    def _scheduler(self, optimizer):
        cfg = self.config
        if cfg.schedule == "step":
            return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
        if cfg.schedule == "cosine":
            return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
        if cfg.schedule == "plateau":
            return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.gamma, patience=max(1, cfg.patience // 2))
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

    def __init__(self, rows: sp.csr_array, device: torch.device) -> None:
        self.rows, self.device = rows, device
        self.n_rows = rows.shape[0]
        per_chunk = max(1, FULL_BATCH_CELLS // max(rows.shape[1], 1))
        self.chunks = [np.arange(s, min(s + per_chunk, self.n_rows)) for s in range(0, self.n_rows, per_chunk)]
        self.keep = rows.shape[0] * rows.shape[1] <= FULL_BATCH_CELLS * 16
        self._built = [dense_rows(rows, c, device=device) for c in self.chunks] if self.keep else None

    def __iter__(self):
        if self._built is not None:
            yield from self._built
        else:
            for c in self.chunks:
                yield dense_rows(self.rows, c, device=self.device)


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
        from aerec.persistence import sha256_file

        meta = dict(meta, weights_sha256=sha256_file(tmp / "checkpoint.safetensors"))
        (tmp / "checkpoint.json").write_text(json.dumps(meta), encoding="utf-8")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
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


def read_checkpoint(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Load the latest checkpoint (falling back to the one being replaced if a crash hit the swap)."""
    for name in ("latest", ".latest-old"):
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


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def clone_state(net: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy(net.state_dict())
