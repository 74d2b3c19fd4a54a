"""Where tensors live and in what precision: devices for training and loading, bf16 autocast,
and batches that cross to the GPU once.

* ``run.device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``) chooses where a model trains and
  predicts (:func:`aerec.training.resolve_device`). A saved model records it; loading on a
  machine without that GPU falls back to the CPU (:func:`loading_device`), so a model trained
  on a GPU is served anywhere.
* ``run.precision`` (``auto``, ``fp32``, ``bf16``): ``auto`` trains under bf16 autocast on a
  GPU that supports it and in fp32 elsewhere (:func:`resolve_precision`). Autocast runs the
  matrix products in bf16 while the weights, their gradients and the optimiser stay fp32, and
  the trainer computes losses in fp32; bf16 needs no loss scaling (its range is fp32's).
  Predictions are always computed in fp32.
* A batch for a GPU leaves the host as its sparse parts (row ids, column ids, values: about 16
  bytes a rating), in pinned memory with one non-blocking copy each, and is made dense on the
  GPU (:func:`dense_on_device`): for ML-20M-sized rows that is ~100 times fewer bytes over the
  bus than a dense ``(batch, n_items)`` block.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager

import numpy as np
import torch

from aerec.errors import ConfigError

__all__ = ["PRECISIONS", "autocast", "dense_on_device", "loading_device", "resolve_precision", "single_thread"]

PRECISIONS = ("auto", "fp32", "bf16")


def loading_device(name: str) -> torch.device:
    """The device to load a saved model onto, given the ``run.device`` it was trained with.

    ``cpu`` stays on the CPU. ``cuda``, ``cuda:N`` and ``auto`` use the current GPU when this
    machine has one (``cuda:N`` keeps its index when that GPU exists here), and the CPU
    otherwise: a model trained on a GPU loads and predicts on a CPU-only machine.
    """
    name = str(name)
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    device = torch.device("cuda" if name == "auto" else name)
    if device.type != "cuda":
        return torch.device("cpu")
    if device.index is not None and device.index >= torch.cuda.device_count():
        return torch.device("cuda")  # trained on a GPU this machine lacks: its current one
    return device


def resolve_precision(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for training (None: plain fp32).

    ``auto``: bf16 on a CUDA device that supports it, fp32 elsewhere. ``bf16`` asks for it on any
    device (CPU autocast supports bf16 too, mostly for testing: it is rarely faster there).
    """
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ConfigError(f"run.precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        supported = torch.cuda.is_bf16_supported()
        if precision == "bf16" and not supported:
            raise ConfigError(
                f"run.precision is bf16 but GPU {torch.cuda.get_device_name(device)} does not support bf16; "
                "use run.precision=fp32 (or auto)"
            )
        return torch.bfloat16 if supported else None
    return torch.bfloat16 if precision == "bf16" else None


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> AbstractContextManager:
    """``torch.autocast`` for ``device``'s type in ``dtype``, or a do-nothing context for None."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def dense_on_device(
    local: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    shape: tuple[int, int],
    device: torch.device | str,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense ``values`` and 0/1 ``mask`` of shape ``(rows, cols)`` built on ``device`` from COO
    parts (batch-local row ids, column ids, values), which cross to the device once.

    On a CUDA device the parts are staged in pinned (page-locked) host memory so that the
    copies are asynchronous (``non_blocking``); elsewhere the copy is an ordinary one.
    """
    device = torch.device(device)
    pin = device.type == "cuda"
    # Row and column ids in one int64 array: one copy instead of two. (2, nnz)
    ids = torch.from_numpy(np.stack([np.asarray(local, dtype=np.int64), np.asarray(cols, dtype=np.int64)]))
    vals = torch.from_numpy(np.asarray(values, dtype=np.float32))
    if pin:
        ids, vals = ids.pin_memory(), vals.pin_memory()
    ids = ids.to(device, non_blocking=pin)
    vals = vals.to(device, dtype=dtype, non_blocking=pin)
    out = torch.zeros(shape, dtype=dtype, device=device)
    mask = torch.zeros(shape, dtype=dtype, device=device)
    out[ids[0], ids[1]] = vals
    mask[ids[0], ids[1]] = 1.0
    return out, mask


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread, then restore. Tiny networks are many times faster this way on a
    busy machine (thread hand-offs cost more than the arithmetic)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
