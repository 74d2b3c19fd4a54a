"""The rating data layer: readers, validation, vocabularies, the sparse matrix, splits, datasets."""

from aerec._lazy import lazy_exports as _lazy_exports

# The public API: name -> module that defines it, imported on first use (PEP 562): ``import
# aerec.data`` (and ``import aerec``, which re-exports some of these) then costs no pandas, SciPy
# or torch, which keeps ``aerec --help`` quick.
_LAZY = {
    "Orientation": ".matrix", "RatingMatrix": ".matrix",
    "attach_item_info": ".items", "read_item_file": ".items",
    "DuplicatePolicy": ".ratings", "Ratings": ".ratings",
    "FORMATS": ".readers", "detect_format": ".readers", "read_items": ".readers", "read_ratings": ".readers",
    "data_home": ".registry", "dataset_dir": ".registry", "list_datasets": ".registry", "load_dataset": ".registry",
    "RatingScale": ".scale",
    "Split": ".splits", "canonical_folds": ".splits", "canonical_split": ".splits", "fold_in_split": ".splits",
    "kfold": ".splits", "last_k_split": ".splits", "parse_split": ".splits", "per_user_split": ".splits",
    "random_split": ".splits", "temporal_split": ".splits", "user_split": ".splits", "validation_split": ".splits",
    "synthetic_matrix": ".synthetic", "synthetic_ratings": ".synthetic", "toy_ratings": ".synthetic",
    "UnknownPolicy": ".vocab", "Vocabulary": ".vocab",
}

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)

__all__ = [*_LAZY]
