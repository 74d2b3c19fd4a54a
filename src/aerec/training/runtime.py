"""Run context, apart from hyper-parameters: the device, CPU threads, seeds and compilation.

Nothing here changes the process environment. One setting cannot be made here at all:
``OMP_WAIT_POLICY`` (whether idle OpenMP threads spin or sleep) is read by the OpenMP runtime
once, when ``import torch`` loads it; the ``aerec`` command sets it before that, and a library
user sets it before starting Python (docs/training.md, "Threads and devices").
"""

from __future__ import annotations

import contextlib
import math
import os

import torch
from torch import nn

from aerec._cpus import busy_elsewhere, usable_cpus
from aerec.errors import ConfigError

__all__ = ["fit_device", "resolve_device", "resolve_threads", "seed_everything", "epoch_seed", "compile_network",
           "compile_errors_run_eagerly"]


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"run.device is {name} but no CUDA device is available; use --device cpu or auto")
    return torch.device(name)


def fit_device(device: str, threads: int) -> torch.device:
    """The first step of every estimator's fit: the device it runs on (``run.device``), with
    torch's CPU thread count set for it (``run.threads``; 0: :func:`resolve_threads` chooses)."""
    resolved = resolve_device(device)
    torch.set_num_threads(resolve_threads(threads))
    return resolved


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) for weight initialisation."""
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's shuffling and dropout: a function of ``(seed, epoch)`` only, so a
    run resumed at any epoch draws what an uninterrupted one would have drawn."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


def resolve_threads(threads: int = 0) -> int:
    """The CPU threads torch should use: ``threads`` when > 0; 0 (``run.threads = 0``) chooses.

    The choice: ``OMP_NUM_THREADS`` when it is set (the user's own word); otherwise the CPUs this
    process may run on, less those other processes keep busy right now, at least 1. Why not
    simply every core: OpenMP threads wait for each other at every product, so a thread that
    shares its core with another job holds the others back. On the shared 2-core machine of
    docs/benchmarks.md, torch's default of 2 threads made fits up to 2.3x *slower* than 1
    whenever other jobs ran; on the same machine idle, 2 threads fit the default model on
    ML-100K u1 in 8.8 s against 13.7 s on 1.

    "Right now" is :func:`aerec._cpus.busy_elsewhere`: the busy time of this process's CPUs over
    a tenth of a second in which it sleeps. The 1-minute load average, used where that cannot be
    read, still counts for a minute a job that has just ended, such as the previous command.
    """
    if threads > 0:
        return int(threads)
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cpus = usable_cpus()
    others = busy_elsewhere(cpus)
    if others is None:
        try:
            others = max(os.getloadavg()[0] - 1.0, 0.0)  # this process counts one when it is running
        except OSError:  # no load average on this platform
            others = 0.0
    return max(1, min(len(cpus), math.floor(len(cpus) - others + 0.5)))


def compile_network(net: nn.Module) -> nn.Module:
    """A ``torch.compile``d view of ``net`` for the training passes; ``net`` is not changed.

    The view shares ``net``'s parameters, so training it trains ``net``, whose weights keep their
    names: a saved model is the same as an eager one's, and validation and inference run eagerly.
    Compilation happens at the first call. The trainer makes those calls inside
    :func:`compile_errors_run_eagerly`, so where compiling fails (no C++ compiler, an operation
    the compiler does not support) that code runs eagerly with a warning instead of stopping the
    training. The sparse path's ``forward_observed`` is not compiled (sparse tensors are outside
    what the compiler handles).
    """
    return torch.compile(net)


def compile_errors_run_eagerly(active: bool) -> contextlib.AbstractContextManager:
    """Dynamo's ``suppress_errors`` for the duration of a fit only: the user's process keeps
    its own setting for anything else it compiles."""
    if not active:
        return contextlib.nullcontext()
    import torch._dynamo

    return torch._dynamo.config.patch(suppress_errors=True)
