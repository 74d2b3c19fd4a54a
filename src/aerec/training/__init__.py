"""Training: the epoch loop, its checkpoints, and the run context it needs.

Networks (:mod:`aerec.models`, rating and top-N models alike) hold only architecture; this
package owns how they learn. It knows the data layer (sparse rows, batches) and the networks'
small protocol (``forward``, optionally ``forward_observed``, ``training_loss``,
``epoch_passes``), and nothing above: estimators call it, it never calls them.

Modules, one concern each:

* :mod:`~aerec.training.loop`: :class:`Trainer`, the epoch loop (updates, validation, early
  stopping, the learning-rate schedule, several processes).
* :mod:`~aerec.training.batch_format`: dense or sparse batches, and whole-matrix caches for L-BFGS.
* :mod:`~aerec.training.optimizers`: the optimiser and schedule a config asks for.
* :mod:`~aerec.training.history`: :class:`EpochRecord`, :class:`TrainResult`, and the loop state
  a checkpoint holds.
* :mod:`~aerec.training.checkpoints`: checkpoint files, written atomically, read with checks.
* :mod:`~aerec.training.progress`: progress reports as log records (the library never draws).
* :mod:`~aerec.training.runtime`: device, threads, seeds, ``torch.compile``.

Everything in ``__all__`` is importable from ``aerec.training`` directly.
"""

from aerec.training.batch_format import choose_batch_format
from aerec.training.checkpoints import has_checkpoint, read_checkpoint, write_checkpoint
from aerec.training.history import EpochRecord, TrainResult
from aerec.training.loop import Trainer
from aerec.training.runtime import compile_network, fit_device, resolve_device, resolve_threads, seed_everything

__all__ = [
    "EpochRecord",
    "TrainResult",
    "Trainer",
    "choose_batch_format",
    "compile_network",
    "fit_device",
    "has_checkpoint",
    "read_checkpoint",
    "resolve_device",
    "resolve_threads",
    "seed_everything",
    "write_checkpoint",
]
