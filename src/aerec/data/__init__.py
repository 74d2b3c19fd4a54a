"""The rating data layer: readers, validation, vocabularies, the sparse matrix, splits, datasets."""

from aerec.data.matrix import Orientation, RatingMatrix
from aerec.data.ratings import DuplicatePolicy, Ratings
from aerec.data.scale import RatingScale
from aerec.data.vocab import UnknownPolicy, Vocabulary

__all__ = [
    "DuplicatePolicy",
    "Orientation",
    "RatingMatrix",
    "RatingScale",
    "Ratings",
    "UnknownPolicy",
    "Vocabulary",
]
