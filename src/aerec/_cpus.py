"""What other processes keep busy on this process's CPUs, right now (no torch here).

Two choices depend on it: how many threads torch uses (:func:`aerec.training.resolve_threads`)
and, for the ``aerec`` command, whether idle OpenMP threads sleep or spin while they wait
(``OMP_WAIT_POLICY``, read once when torch loads). Measured, not guessed from the 1-minute load
average: that average still counts, for about a minute, a job that has just ended, such as the
user's previous command, and made a quiet 2-core machine look half busy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

__all__ = ["usable_cpus", "busy_elsewhere", "open_window"]

_MEASURED: dict[tuple[int, ...], tuple[float, float]] = {}  # cpus -> (monotonic time, busy)
# A window opened early (open_window): cpus -> (ticks, process CPU time, monotonic time).
_OPENED: dict[tuple[int, ...], tuple[dict[int, tuple[int, int]], float, float]] = {}
# An opened window older than this is stale: it would average over too long a past.
OPEN_WINDOW_MAX_AGE = 5.0


def usable_cpus() -> list[int]:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def busy_elsewhere(cpus: list[int] | None = None, window: float = 0.1, reuse: float = 10.0) -> float | None:
    """How many of ``cpus`` (default: :func:`usable_cpus`) other processes keep busy: the busy
    share of each over ``window`` seconds in which this process sleeps (``/proc/stat``), summed.

    None where ``/proc/stat`` cannot be read (not Linux). A figure measured less than ``reuse``
    seconds ago is reused, so a process that asks several times (the command, then each fit of
    a cross-validation) pays the window once.
    """
    key = tuple(usable_cpus() if cpus is None else cpus)
    now = time.monotonic()
    if key in _MEASURED and now - _MEASURED[key][0] < reuse:
        return _MEASURED[key][1]
    opened = _OPENED.pop(key, None)
    if opened is not None and now - opened[2] <= OPEN_WINDOW_MAX_AGE:
        before, own, started = opened
    else:
        before, own, started = _cpu_ticks(key), time.process_time(), time.monotonic()
    if before is None:
        return None
    left = window - (time.monotonic() - started)
    if left > 0:
        time.sleep(left)
    after = _cpu_ticks(key)
    if after is None:
        return None
    busy = 0.0
    for cpu, (idle1, total1) in after.items():
        idle0, total0 = before.get(cpu, (idle1, total1))
        if total1 > total0:
            busy += 1.0 - (idle1 - idle0) / (total1 - total0)
    # This process's own threads are not "elsewhere": after a fit, torch's OpenMP threads spin
    # a moment before they sleep, and would otherwise count as another job on the next fit;
    # in a window opened early, the process was busy starting up.
    own = (time.process_time() - own) / max(time.monotonic() - started, 1e-9)
    busy = max(busy - own, 0.0)
    _MEASURED[key] = (time.monotonic(), busy)
    return busy


def open_window(cpus: list[int] | None = None) -> None:
    """Start :func:`busy_elsewhere`'s window now: the work done until the figure is first asked
    for (the ``aerec`` command's imports and argument reading, 0.2 s or more) fills the window
    instead of a sleep. The figure then covers that whole time, this process's own CPU time
    subtracted as always; a window older than :data:`OPEN_WINDOW_MAX_AGE` seconds is not used."""
    key = tuple(usable_cpus() if cpus is None else cpus)
    ticks = _cpu_ticks(key)
    if ticks is not None:
        _OPENED[key] = (ticks, time.process_time(), time.monotonic())


def _cpu_ticks(cpus: tuple[int, ...]) -> dict[int, tuple[int, int]] | None:
    """``{cpu: (idle ticks, all ticks)}`` from ``/proc/stat`` for ``cpus``; None if unreadable."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    wanted, ticks = set(cpus), {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in wanted:
            # user nice system idle iowait irq softirq steal (guest time is counted inside user)
            values = [int(v) for v in fields[:8]]
            ticks[int(name[3:])] = (values[3] + values[4], sum(values))
    return ticks or None
