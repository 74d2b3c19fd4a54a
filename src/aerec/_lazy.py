"""One way for a package to state its public names and import each on first use (PEP 562).

``aerec``, ``aerec.data`` and ``aerec.implicit`` each keep one table, name -> the module that
defines it, and make it their API::

    _LAZY = {"Ratings": ".ratings", ...}      # relative to the package, or absolute
    __getattr__, __dir__ = lazy_exports(__name__, _LAZY)
    __all__ = [*_LAZY]

so importing the package costs nothing heavy (no pandas, SciPy or torch): ``aerec --help``
stays quick, and a lower layer's package never loads a higher one until a name is used.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``, whose public names
    ``where`` maps to the module that defines each. A name is imported when first used and then
    kept in the package's namespace, so later uses are plain attribute reads."""
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
