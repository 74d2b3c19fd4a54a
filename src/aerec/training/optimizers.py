"""The optimiser and learning-rate schedule a :class:`~aerec.config.TrainConfig` asks for."""

from __future__ import annotations

import sys

import torch
from torch import nn

from aerec.config import TrainConfig
from aerec.errors import TrainingError

__all__ = ["make_optimizer", "make_scheduler", "weight_copies", "lbfgs_checkpoint_copies", "LBFGS_HISTORY"]

LBFGS_HISTORY = 20
"""The pairs of past steps and gradient changes L-BFGS keeps (each pair: two copies of the weights)."""


def weight_copies(cfg: TrainConfig) -> int:
    """About how many copies of a network's weights a fit holds at its peak: the weights, their
    gradients and the best epoch's, plus what the optimiser keeps (Adam: two moments; L-BFGS:
    its stored pairs, its direction, the previous gradient, the line search's starting point, and
    the last evaluation it reuses, :mod:`aerec.training.lbfgs`). The basis of the memory check
    made before a fit starts."""
    if cfg.optimizer == "lbfgs":
        return 3 + 2 * LBFGS_HISTORY + 7
    return 3 + {"adam": 2, "adamw": 2, "momentum": 1, "rmsprop": 1}.get(cfg.optimizer, 0)


def lbfgs_checkpoint_copies() -> int:
    """Copies of the weights an L-BFGS fit's checkpoint holds once its stored pairs are full: the
    weights, the best weights, the 2 x LBFGS_HISTORY stored vectors, and the direction, previous
    gradient and step torch's LBFGS keeps between steps. Its pairs fill up over the first
    iterations, so a checkpoint after epoch 1 of the default model holds 5 of its 20."""
    return 2 + 2 * LBFGS_HISTORY + 3


def make_optimizer(cfg: TrainConfig, net: nn.Module, device: torch.device) -> torch.optim.Optimizer:
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
    fused = {"fused": True} if device.type in ("cpu", "cuda") and all(p.is_floating_point() for p in params) else {}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused)
    if cfg.weight_decay:
        raise TrainingError("train.weight_decay is not supported with lbfgs; use model.l2 instead")
    without_dynamo_import()
    return torch.optim.LBFGS(
        params, lr=cfg.lr, max_iter=cfg.lbfgs_iterations, history_size=LBFGS_HISTORY, line_search_fn="strong_wolfe"
    )


def make_scheduler(cfg: TrainConfig, optimizer: torch.optim.Optimizer, *, maximise: bool = False):
    """The schedule, or None for a constant rate. ``maximise``: "plateau" watches a figure to raise."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="max" if maximise else "min", factor=cfg.gamma, patience=max(1, cfg.patience // 2)
        )
    return None


def without_dynamo_import() -> None:
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
    if "torch._dynamo" in sys.modules:
        return
    for name in ("add_param_group", "state_dict", "load_state_dict", "zero_grad"):
        inner = getattr(getattr(torch.optim.Optimizer, name, None), "__wrapped__", None)
        if inner is not None and getattr(inner, "__dynamo_disable", None) is None:
            setattr(inner, "__dynamo_disable", inner)
