"""The rating data layer: readers, validation, vocabularies, the sparse matrix, splits, datasets."""

from aerec.data.matrix import Orientation, RatingMatrix
from aerec.data.ratings import DuplicatePolicy, Ratings
from aerec.data.readers import FORMATS, detect_format, read_items, read_ratings
from aerec.data.registry import data_home, dataset_dir, list_datasets, load_dataset
from aerec.data.scale import RatingScale
from aerec.data.splits import (
    Split,
    canonical_folds,
    canonical_split,
    fold_in_split,
    kfold,
    last_k_split,
    parse_split,
    per_user_split,
    random_split,
    temporal_split,
    user_split,
    validation_split,
)
from aerec.data.synthetic import synthetic_matrix, synthetic_ratings, toy_ratings
from aerec.data.vocab import UnknownPolicy, Vocabulary

__all__ = [
    "FORMATS",
    "DuplicatePolicy",
    "Orientation",
    "RatingMatrix",
    "RatingScale",
    "Ratings",
    "Split",
    "UnknownPolicy",
    "Vocabulary",
    "canonical_folds",
    "canonical_split",
    "data_home",
    "dataset_dir",
    "detect_format",
    "fold_in_split",
    "kfold",
    "last_k_split",
    "list_datasets",
    "load_dataset",
    "parse_split",
    "per_user_split",
    "random_split",
    "read_items",
    "read_ratings",
    "synthetic_matrix",
    "synthetic_ratings",
    "temporal_split",
    "toy_ratings",
    "user_split",
    "validation_split",
]
