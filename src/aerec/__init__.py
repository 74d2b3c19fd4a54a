"""aerec: autoencoder recommenders on user x item rating matrices."""

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
]
