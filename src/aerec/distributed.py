"""Training on several processes and machines with PyTorch's own distributed engine.

Launch any ``aerec train`` command under ``torchrun``; every process runs the same command::

    torchrun --nproc-per-node 2 -m aerec train --data ml-100k --device cpu --out model/

``torchrun`` tells each process who it is through environment variables (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``); :func:`init_from_env` reads
them and joins the process group: gloo for CPU training, NCCL for GPUs (with gloo beside it for
the few small CPU messages). Without those variables everything here is a no-op, so the same
code trains alone.

How the work is split (docs/distributed.md). Every process reads the whole (sparse) training
matrix, shuffles the rows with the same seeded permutation and so sees the same sequence of
*global* batches of ``train.batch_size`` rows; process ``r`` of ``N`` densifies and runs only its
share, about ``batch_size / N`` rows (:meth:`Group.shard`). ``DistributedDataParallel``
averages the gradients, and each process scales its part of the loss so that the average is
exactly the gradient of the global batch as one process would compute it (see
:class:`Share`): the same seed and batch size give the same weights, within float rounding,
for any number of processes. L-BFGS shards its full-batch objective by rows and sums losses and
gradients with an all-reduce (:meth:`Group.all_reduce_grads`).

Rank 0 alone validates (the figure is broadcast, so every process takes the same early-stopping
decision), draws the progress bar, writes checkpoints and the model directory; after each
checkpoint all processes meet at a barrier. On ``--resume`` every process loads the same
checkpoint, which must therefore sit on a folder every process can read.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import functools
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from aerec.errors import ConfigError, TrainingError

__all__ = [
    "Group",
    "Launch",
    "Share",
    "barrier",
    "current",
    "init_from_env",
    "is_main",
    "launched",
    "main_first",
    "shutdown",
]

# How long a collective may wait for the slowest process before failing (gloo and NCCL).
DEFAULT_TIMEOUT_S = 1800.0


# ----------------------------------------------------------------------------- the launch
@dataclass(frozen=True)
class Launch:
    """What the launcher (torchrun, srun, ...) told this process through its environment."""

    rank: int  # 0 .. world_size - 1, over all machines
    world_size: int  # processes in all
    local_rank: int  # 0 .. processes on this machine - 1: which GPU to take

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Launch | None:
        """The launch described by ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``; None when not launched
        by a distributed launcher (or launched with a single process)."""
        env = os.environ if environ is None else environ
        if "WORLD_SIZE" not in env:
            return None
        world = _env_int(env, "WORLD_SIZE", minimum=1)
        if world == 1:
            return None
        rank = _env_int(env, "RANK", minimum=0)
        local = _env_int(env, "LOCAL_RANK", minimum=0, default=rank)
        if rank >= world:
            raise ConfigError(f"RANK={rank} must be below WORLD_SIZE={world}; check the launcher's settings")
        for name in ("MASTER_ADDR", "MASTER_PORT"):
            if not env.get(name):
                raise ConfigError(
                    f"WORLD_SIZE={world} is set but {name} is not: launch with torchrun, which sets it, or set "
                    "MASTER_ADDR and MASTER_PORT to rank 0's address and a free port"
                )
        return cls(rank=rank, world_size=world, local_rank=local)


def _env_int(env: Mapping[str, str], name: str, *, minimum: int, default: int | None = None) -> int:
    text = env.get(name)
    if text is None:
        if default is not None:
            return default
        raise ConfigError(f"{name} is not set but WORLD_SIZE is; launch with torchrun, which sets both")
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be a whole number; got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"environment variable {name} must be >= {minimum}; got {value}")
    return value


def launched(environ: Mapping[str, str] | None = None) -> bool:
    """True when this process is one of several started by a distributed launcher."""
    return Launch.from_env(environ) is not None


def init_from_env(device: str = "auto", *, timeout_s: float = DEFAULT_TIMEOUT_S) -> Launch | None:
    """Join the process group the launcher describes; a no-op (None) when there is none.

    ``device`` is ``run.device``: ``cpu`` trains with gloo; ``cuda`` (or ``auto`` where CUDA
    exists) with NCCL, each process on GPU ``LOCAL_RANK`` of its machine (made the current
    device, so ``cuda`` means that GPU from here on). Calling it again is harmless.
    """
    import torch.distributed as dist

    launch = Launch.from_env()
    if launch is None:
        return None
    if not dist.is_available():
        raise TrainingError("this PyTorch build has no torch.distributed; install a standard PyTorch wheel")
    if dist.is_initialized():
        return launch
    gpu = _wants_cuda(device)
    if gpu:
        if str(device).startswith("cuda:"):
            raise ConfigError(
                f"run.device is {device}, but under torchrun each process takes GPU LOCAL_RANK of its machine; "
                "give --device cuda (choose the GPUs with CUDA_VISIBLE_DEVICES)"
            )
        torch.cuda.set_device(_local_gpu(launch.local_rank, torch.cuda.device_count()))
        # NCCL for the gradients on the GPU; gloo beside it for the small CPU control messages.
        backend = "cpu:gloo,cuda:nccl"
    else:
        if not dist.is_gloo_available():
            raise TrainingError("CPU training on several processes needs gloo, which this PyTorch build lacks")
        backend = "gloo"
    dist.init_process_group(
        backend=backend, init_method="env://", rank=launch.rank, world_size=launch.world_size,
        timeout=datetime.timedelta(seconds=timeout_s),
    )
    atexit.register(shutdown)
    return launch


def _local_gpu(local_rank: int, count: int) -> int:
    """The GPU of process ``local_rank``: its own index, or the only GPU a process sees (a
    scheduler that gives each process one GPU through CUDA_VISIBLE_DEVICES)."""
    if local_rank < count:
        return local_rank
    if count == 1:
        return 0
    raise ConfigError(
        f"LOCAL_RANK={local_rank} but this machine has {count} GPU(s); start at most {count} processes per "
        "machine (torchrun --nproc-per-node) or train with --device cpu"
    )


def _wants_cuda(device: str) -> bool:
    name = str(device)
    if name == "auto":
        return torch.cuda.is_available()
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"run.device is {name} but no CUDA device is available; use --device cpu or auto")
        return True
    return False


def shutdown() -> None:
    """Leave the process group (safe to call twice, or when none was joined).

    Runs at exit (atexit). First collects garbage: a DistributedDataParallel module caught in a
    reference cycle still holds the group, and freeing it only at interpreter teardown makes
    gloo's threads abort the process ("terminate called without an active exception").
    """
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- the group
@dataclass(frozen=True)
class Share:
    """This process's part of one global batch, and how its loss is scaled.

    DDP averages gradients over the ``world`` processes, so each process's loss is its sum of
    errors divided by ``denom`` = (the global batch's count) / ``world``: the average of those
    gradients is then the gradient of (global sum) / (global count), the single-process loss.
    Losses that are already a mean over rows (``training_loss``) are multiplied by ``weight``
    = ``rows * world / global_rows`` instead.
    """

    denom: float  # the global batch's count of observed cells (or of all cells) / world
    weight: float  # rows * world / global_rows
    rows: int  # rows this process trains on (0 when its share is empty)
    global_rows: int
    world: int
    observed: float  # the global batch's observed cells / world (what penalties per rating divide by)


class Group:
    """The trainer's view of the process group: rank, size and the few collectives it needs.

    Alone (``active`` False) every method is the identity or a no-op, so the trainer calls
    them unconditionally.
    """

    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        self.rank, self.world_size = rank, world_size
        self.active = world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, logs and writes files."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Group(rank={self.rank}, world_size={self.world_size})"

    # -------------------------------------------------------------- sharding
    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This process's contiguous share of a global batch's rows (sizes differ by at most 1)."""
        if not self.active:
            return rows
        bounds = np.linspace(0, len(rows), self.world_size + 1).round().astype(np.int64)
        return rows[bounds[self.rank] : bounds[self.rank + 1]]

    def share(
        self, local_rows: int, global_rows: int, global_count: float, global_observed: float | None = None
    ) -> Share | None:
        """How to scale this process's loss (None alone: the loss is normalised as usual).

        ``global_count`` is what the loss is normalised by (observed cells, or all cells),
        ``global_observed`` the observed cells (default: the same).
        """
        if not self.active:
            return None
        observed = global_count if global_observed is None else global_observed
        return Share(
            denom=max(float(global_count), 1.0) / self.world_size,
            weight=local_rows * self.world_size / max(global_rows, 1),
            rows=local_rows, global_rows=global_rows, world=self.world_size,
            observed=max(float(observed), 1.0) / self.world_size,
        )

    def check_batch_size(self, batch_size: int, n_rows: int) -> None:
        """Refuse a global batch too small to give every process a row."""
        if self.active and 0 < batch_size < self.world_size:
            raise ConfigError(
                f"train.batch_size={batch_size} rows per update is fewer than the {self.world_size} processes "
                f"training together (the batch is split between them); use --batch-size {self.world_size} or more, "
                "or fewer processes"
            )
        if self.active and n_rows < self.world_size:
            raise ConfigError(
                f"only {n_rows} row(s) have ratings, fewer than the {self.world_size} processes; train on one process"
            )

    # -------------------------------------------------------------- collectives
    def barrier(self) -> None:
        if self.active:
            import torch.distributed as dist

            dist.barrier()

    def batch_totals(
        self, objective: torch.Tensor, err: torch.Tensor, count: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The global batch's objective, summed error and count from every process's parts.

        Objectives are averaged (each is scaled so that their mean is the global objective);
        errors and counts are summed. Alone: the inputs, detached.
        """
        if not self.active:
            return objective.detach(), err.detach(), count
        import torch.distributed as dist

        device = objective.device
        parts = torch.stack([
            objective.detach().to(device, torch.float64), err.detach().to(device, torch.float64),
            torch.as_tensor(count).detach().to(device, torch.float64),
        ])
        dist.all_reduce(parts)
        return parts[0] / self.world_size, parts[1], parts[2]

    def all_reduce_grads(self, params: list[torch.Tensor], *figures: float) -> tuple[float, ...]:
        """Sum the gradients of ``params`` over all processes (in one flat message), and the
        ``figures`` (losses, counts) with them; returns the summed figures."""
        if not self.active:
            return figures
        import torch.distributed as dist

        for p in params:
            if p.grad is None:  # a process whose share was empty has no gradient yet
                p.grad = torch.zeros_like(p)
        flat = torch.cat([p.grad.reshape(-1) for p in params])
        dist.all_reduce(flat)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p))
            offset += n
        sums = torch.tensor(figures, dtype=torch.float64, device=flat.device)
        dist.all_reduce(sums)
        return tuple(float(v) for v in sums.cpu())

    def broadcast_float(self, value: float | None, src: int = 0) -> float | None:
        """Rank ``src``'s ``value`` on every process (None stays None)."""
        if not self.active:
            return value
        import torch.distributed as dist

        msg = torch.tensor([0.0 if value is None else 1.0, 0.0 if value is None else float(value)], dtype=torch.float64)
        dist.broadcast(msg, src=src)  # a CPU message: gloo carries it in GPU runs too
        return float(msg[1]) if msg[0] > 0 else None

    def agree(self, ok: bool) -> bool:
        """True only when ``ok`` is true on every process."""
        if not self.active:
            return ok
        import torch.distributed as dist

        flag = torch.tensor([1 if ok else 0], dtype=torch.int64)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def same(self, value: int) -> bool:
        """True when every process holds the same whole number ``value``."""
        if not self.active:
            return True
        import torch.distributed as dist

        lo = torch.tensor([value], dtype=torch.int64)
        hi = lo.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        return int(lo.item()) == int(hi.item())

    # -------------------------------------------------------------- the model
    def objective(self, net: nn.Module, fn: Callable[..., Any], device: torch.device) -> Callable[..., Any]:
        """``fn(net, *args, **kwargs)`` as a callable of ``(*args, **kwargs)``.

        Alone it calls ``fn`` directly. In a group the call goes through a
        ``DistributedDataParallel`` module whose forward is ``fn``, so DDP sees the whole
        objective (the network's own ``training_loss`` and penalties included) and averages the
        gradients of every parameter during the backward pass.
        """
        if not self.active:
            return functools.partial(fn, net)
        from torch.nn.parallel import DistributedDataParallel

        device = torch.device(device)
        ids = None
        if device.type == "cuda":
            ids = [device.index if device.index is not None else torch.cuda.current_device()]
        # Buffers (the baseline's fixed biases) are equal everywhere: no need to re-send them at
        # every forward (newer torch names the switch forward_sync_buffers).
        params = inspect.signature(DistributedDataParallel).parameters
        sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
        return DistributedDataParallel(_Objective(net, fn), device_ids=ids, **sync)


class _Objective(nn.Module):
    """A module whose forward is ``fn(net, ...)``: what DDP wraps (``net`` is a submodule, so
    its parameters are DDP's)."""

    def __init__(self, net: nn.Module, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.net = net
        self._fn = fn

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(self.net, *args, **kwargs)


def current() -> Group:
    """The process group this process has joined (a group of one when it joined none)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Group(dist.get_rank(), dist.get_world_size())
    return Group()


def is_main() -> bool:
    """True on rank 0, and when training alone: the process that writes files and logs."""
    return current().is_main


def barrier() -> None:
    """Wait for every process of the group (no-op alone)."""
    current().barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Run the body on rank 0 first, then on the others: a dataset download or a cache file is
    made once, and the other processes find it ready."""
    group = current()
    if not group.is_main:
        group.barrier()
    try:
        yield
    finally:
        if group.is_main:
            group.barrier()
