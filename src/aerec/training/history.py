"""What a training run remembers: one record per epoch, the result, and the loop's state.

:class:`LoopState` is everything the epoch loop carries from one epoch to the next; a checkpoint
holds exactly this (:mod:`aerec.training.checkpoints`), which is why a resumed run can end with
the same numbers as one that never stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from aerec.config import TrainConfig

__all__ = ["EpochRecord", "TrainResult", "LoopState"]


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


@dataclass
class LoopState:
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

    def epochs_left(self, cfg: TrainConfig) -> range:
        """The epochs still to train, and ``stopped`` set for them.

        A checkpoint written when early stopping fired has nothing left to train, unless the
        resumed run is more patient than the one that stopped.
        """
        done = self.stopped == "early_stopping" and 0 < cfg.patience <= self.bad_epochs
        self.stopped = "early_stopping" if done else "epochs"
        last = self.epoch if done else cfg.epochs
        return range(self.epoch + 1, last + 1)
