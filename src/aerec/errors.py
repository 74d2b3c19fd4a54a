"""The exceptions aerec raises on purpose.

Every error a user can cause is an :class:`AerecError`. Each one says what was wrong, where
(file and line when there is one), the value that arrived, and how to fix it. The command line
turns them into a message and exit code 2 (bad input) or 1 (runtime failure), never a traceback.

Hierarchy::

    AerecError
    ├── DataError          bad rating data: a file, a line, a value        (exit 2)
    ├── ConfigError        bad configuration or command-line value         (exit 2)
    ├── DatasetError       unknown dataset, failed download, bad checksum  (exit 2 / 1)
    ├── ModelFileError     missing, truncated, tampered or too-new model   (exit 2)
    ├── NotFittedError     a model used before ``fit``                     (exit 1)
    └── TrainingError      training diverged (NaN/inf) or cannot go on      (exit 1)
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AerecError",
    "ConfigError",
    "DataError",
    "DatasetError",
    "ModelFileError",
    "NotFittedError",
    "TrainingError",
]


class AerecError(Exception):
    """Base class of every error aerec raises on purpose.

    ``exit_code`` is what the command line exits with: 2 for bad usage or input, 1 otherwise.
    """

    exit_code = 1


class DataError(AerecError, ValueError):
    """Rating data that cannot be used as given.

    Raised by the readers, the validators, the vocabulary and the splits. The message names the
    file (``path``) and the 1-based ``line`` when known, the offending ``value``, and a ``fix``.
    """

    exit_code = 2

    def __init__(
        self,
        problem: str,
        *,
        path: str | None = None,
        line: int | None = None,
        value: Any = None,
        fix: str | None = None,
        has_value: bool | None = None,
    ) -> None:
        self.problem = problem
        self.path = path
        self.line = line
        self.value = value
        self.fix = fix
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        elif line is not None:
            where = f"line {line}: "
        show_value = has_value if has_value is not None else value is not None
        got = f" (got {value!r})" if show_value else ""
        hint = f" Fix: {fix}" if fix else ""
        super().__init__(f"{where}{problem}{got}.{hint}")


class ConfigError(AerecError, ValueError):
    """A configuration value (TOML file, ``--set key=value``, a constructor argument) is wrong."""

    exit_code = 2


class DatasetError(AerecError):
    """A dataset name is unknown, or fetching it failed (network, truncated file, bad checksum)."""

    exit_code = 2


class ModelFileError(AerecError):
    """A saved model directory is missing, truncated, tampered with or from a newer format."""

    exit_code = 2


class NotFittedError(AerecError, RuntimeError):
    """A model was asked to predict or recommend before it was fitted or loaded."""

    exit_code = 1


class TrainingError(AerecError, RuntimeError):
    """Training cannot go on, e.g. the loss became NaN or infinite; the message says what to change."""

    exit_code = 1
