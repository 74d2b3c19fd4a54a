"""The rating data layer: readers, validation, vocabularies, the sparse matrix, splits, datasets."""

# name -> module that defines it, imported on first use (PEP 562): ``import aerec.data`` (and
# ``import aerec``, which re-exports some of these) then costs no pandas, SciPy or torch, which
# keeps ``aerec --help`` quick.
_LAZY = {
    "Orientation": "matrix", "RatingMatrix": "matrix",
    "attach_item_info": "items", "read_item_file": "items",
    "DuplicatePolicy": "ratings", "Ratings": "ratings",
    "FORMATS": "readers", "detect_format": "readers", "read_items": "readers", "read_ratings": "readers",
    "data_home": "registry", "dataset_dir": "registry", "list_datasets": "registry", "load_dataset": "registry",
    "RatingScale": "scale",
    "Split": "splits", "canonical_folds": "splits", "canonical_split": "splits", "fold_in_split": "splits",
    "kfold": "splits", "last_k_split": "splits", "parse_split": "splits", "per_user_split": "splits",
    "random_split": "splits", "temporal_split": "splits", "user_split": "splits", "validation_split": "splits",
    "synthetic_matrix": "synthetic", "synthetic_ratings": "synthetic", "toy_ratings": "synthetic",
    "UnknownPolicy": "vocab", "Vocabulary": "vocab",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f"aerec.data.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aerec.data' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
    "attach_item_info",
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
    "read_item_file",
    "read_items",
    "read_ratings",
    "synthetic_matrix",
    "synthetic_ratings",
    "temporal_split",
    "toy_ratings",
    "user_split",
    "validation_split",
]
