"""How much memory the machine can still give, read before anything large is allocated (no torch here).

The checks that refuse work which cannot fit, with the numbers, instead of letting the kernel kill
the process (and perhaps its neighbours) half-way, all ask :func:`available_memory`: a network's
fit (:meth:`aerec.recommender.Recommender.check_memory`), EASE's items x items matrices
(:func:`aerec.models.ease.check_ease_size`) and a synthetic ratings table
(:func:`aerec.data.synthetic.synthetic_ratings`). Callers look it up on this module at call time
(``_memory.available_memory()``), so a test can replace it in one place.
"""

from __future__ import annotations

__all__ = ["available_memory"]


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (Linux), or None elsewhere."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
