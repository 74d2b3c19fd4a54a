"""Checkpoint files: the trainer's whole state, written atomically, read without unpickling.

A checkpoint is a folder ``latest/`` (inside the trainer's checkpoint directory) holding
``checkpoint.safetensors`` (the network's weights under ``net.``, the best epoch's under
``best.``, the optimiser's tensors under ``opt.``) and ``checkpoint.json`` (``format_version``,
the loop state of :class:`~aerec.training.history.LoopState`, the optimiser's and scheduler's
state with every tensor replaced by its name, the training config, the seed, and
``weights_sha256``, the checksum of the weights file). The format is described for readers in
docs/training.md, "Reproducibility, checkpoints and resume".
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from aerec.config import TrainConfig
from aerec.errors import ModelFileError, TrainingError
from aerec.training.history import EpochRecord, LoopState

__all__ = ["CHECKPOINT_VERSION", "write_checkpoint", "read_checkpoint", "has_checkpoint",
           "save_training_state", "load_training_state"]

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
CHECKPOINT_FOLDERS = ("latest", ".latest-old")  # the newest, then the one a crash mid-swap left


def save_training_state(directory: Path, net: nn.Module, optimizer, scheduler, state: LoopState, *,
                        config: TrainConfig, seed: int) -> None:
    """Checkpoint everything a resumed run needs to continue as if it had never stopped."""
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
        "config": asdict(config),
        "seed": seed,
    }
    write_checkpoint(directory, tensors, meta)


def load_training_state(directory: Path, net: nn.Module, optimizer, scheduler, *, seed: int,
                        device: torch.device) -> LoopState:
    """Restore ``net``, ``optimizer`` and ``scheduler`` in place; returns the loop state to go on from."""
    tensors, meta = read_checkpoint(directory)
    if meta.get("seed") != seed:
        raise TrainingError(
            f"the checkpoint in {directory} was made with seed {meta.get('seed')}, not {seed}; "
            "resume with the same seed or start afresh without --resume"
        )
    net.load_state_dict({k[4:]: v.to(device) for k, v in tensors.items() if k.startswith("net.")})
    best = {k[5:]: v.to(device) for k, v in tensors.items() if k.startswith("best.")}
    optimizer.load_state_dict(_unflatten_state(meta["optimizer"], "opt", tensors, device))
    if scheduler is not None and meta.get("scheduler") is not None:
        scheduler.load_state_dict(meta["scheduler"])
    return LoopState(
        epoch=int(meta["epoch"]), seconds=float(meta.get("seconds", 0.0)),
        best_epoch=meta.get("best_epoch"), best_val=meta.get("best_val"), bad_epochs=int(meta.get("bad_epochs", 0)),
        history=[EpochRecord(**r) for r in meta.get("history", [])], best_state=best or None,
        stopped=meta.get("stopped", "epochs"), steps=int(meta.get("steps", 0)),
    )


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
        from concurrent.futures import ThreadPoolExecutor

        from aerec.persistence import public_modes, sha256_file

        weights = tmp / "checkpoint.safetensors"
        save_file(tensors, str(weights))
        # Checksum (read back from the page cache) while the file syncs to disk: hashlib and
        # fsync both release the GIL, and the two took 0.15 s and 0.10 s one after the other
        # for the default model's 160 MB checkpoint on ML-100K.
        with ThreadPoolExecutor(max_workers=1) as pool:
            digest = pool.submit(sha256_file, weights)
            _fsync(weights)
            meta = dict(meta, weights_sha256=digest.result())
        (tmp / "checkpoint.json").write_text(json.dumps(meta), encoding="utf-8")
        _fsync(tmp / "checkpoint.json")
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
    log.debug("checkpoint of epoch %s written to %s", meta.get("epoch"), final)


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


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
