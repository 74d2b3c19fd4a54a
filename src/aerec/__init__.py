"""aerec: autoencoder recommenders on user x item rating matrices."""

import os as _os

# OpenMP threads that spin while waiting make every small matrix product crawl when the cores
# are shared (measured: 5-20x slower fits on a busy 2-core machine). Sleeping waits cost little
# when the machine is idle. Must be set before torch loads its OpenMP runtime.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from aerec.data import RatingMatrix, Ratings, RatingScale, Vocabulary
from aerec.errors import (
    AerecError,
    ConfigError,
    DataError,
    DatasetError,
    ModelFileError,
    NotFittedError,
    TrainingError,
)

__version__ = "0.1.0"


def load_model(directory):
    """Load any saved model directory: a rating model or an implicit top-N model.

    See :func:`aerec.loading.load_model` (imported on first use: it brings in torch).
    """
    from aerec.loading import load_model as _load

    return _load(directory)


__all__ = [
    "AerecError",
    "ConfigError",
    "DataError",
    "DatasetError",
    "ModelFileError",
    "NotFittedError",
    "RatingMatrix",
    "RatingScale",
    "Ratings",
    "TrainingError",
    "Vocabulary",
    "__version__",
    "load_model",
]
