"""A fit's progress, told through the ``aerec.training.progress`` logger.

The library never draws: every epoch becomes one log record, at INFO when the caller asked for
progress (``Trainer(progress=True)``) and at DEBUG otherwise. The message reads on its own
(``epoch 3/50  loss 0.8123  val RMSE 0.9312 (best 0.9301)``); each record also carries a
``progress`` attribute, a dict with ``event`` (``"start"``, ``"epoch"`` or ``"end"``),
``kind = "epochs"``, ``epoch``, ``epochs``, ``loss``, ``val``, ``best`` and ``label``, so that a program can draw a
progress bar from them instead. The ``aerec`` command does (``aerec.cli.logs``); a notebook
sees the lines once it turns logging on (``logging.basicConfig(level=logging.INFO)``).
"""

from __future__ import annotations

import logging

from aerec.training.history import EpochRecord

__all__ = ["EpochProgress"]

log = logging.getLogger(__name__)


class EpochProgress:
    """Reports the epochs of one fit; a context manager around the epoch loop.

    Args:
        enabled: report at INFO (shown by the ``aerec`` command as a bar); else at DEBUG.
        epochs: the last epoch of the run.
        start: epochs already done (a resumed run starts past 0).
        val_label: what the validation figure is (``RMSE``, ``ndcg@100``).
    """

    def __init__(self, enabled: bool, epochs: int, start: int, val_label: str = "RMSE") -> None:
        self.level = logging.INFO if enabled else logging.DEBUG
        self.epochs, self.start, self.val_label = epochs, start, val_label

    def _report(self, event: str, message: str, **fields) -> None:
        if log.isEnabledFor(self.level):
            progress = {"event": event, "kind": "epochs", "epochs": self.epochs, "label": self.val_label, **fields}
            log.log(self.level, message, extra={"progress": progress})

    def __enter__(self) -> EpochProgress:
        self._report("start", f"training epochs {self.start + 1}..{self.epochs}", epoch=self.start)
        return self

    def update(self, record: EpochRecord, best: float | None) -> None:
        fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
        self._report(
            "epoch",
            f"epoch {record.epoch}/{self.epochs}  loss {fmt(record.loss)}  val {self.val_label} "
            f"{fmt(record.val_rmse)} (best {fmt(best)})  {record.seconds:.2f} s",
            epoch=record.epoch, loss=record.loss, val=record.val_rmse, best=best,
        )

    def __exit__(self, *exc) -> bool:
        self._report("end", "training stopped" if exc[0] is not None else "training done", epoch=None)
        return False
