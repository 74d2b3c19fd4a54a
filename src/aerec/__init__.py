"""aerec: autoencoder recommenders on user x item rating matrices.

The names in ``__all__`` are the public API (pinned by tests/test_public_api.py). Every one but
``__version__`` is imported on first use (PEP 562 ``__getattr__``), so ``import aerec`` loads
neither torch nor pandas and ``aerec --help`` starts in a fraction of a second.
"""

import logging as _logging

from aerec._lazy import lazy_exports as _lazy_exports

# The library only logs, through loggers named "aerec.<module>"; what is shown, and how, is the
# application's choice. Importing aerec changes nothing in the process (no environment, no
# handlers beyond this silent one, which keeps Python's last-resort handler from printing).
_logging.getLogger("aerec").addHandler(_logging.NullHandler())

__version__ = "0.1.0"

# The public API (besides __version__): name -> module that defines it, imported when the name
# is first used.
_LAZY = {
    "AerecError": "aerec.errors",
    "ConfigError": "aerec.errors",
    "DataError": "aerec.errors",
    "DatasetError": "aerec.errors",
    "ModelFileError": "aerec.errors",
    "NotFittedError": "aerec.errors",
    "TrainingError": "aerec.errors",
    "RatingMatrix": "aerec.data.matrix",
    "RatingScale": "aerec.data.scale",
    "Ratings": "aerec.data.ratings",
    "Split": "aerec.data.splits",
    "Vocabulary": "aerec.data.vocab",
    "canonical_split": "aerec.data.splits",
    "load_dataset": "aerec.data.registry",
    "random_split": "aerec.data.splits",
    "read_ratings": "aerec.data.readers",
    "user_split": "aerec.data.splits",
    "validation_split": "aerec.data.splits",
    "BiasModel": "aerec.baseline",
    "Config": "aerec.config",
    "Estimator": "aerec.loading",  # there, every estimator is imported, so Estimator.load finds them all
    "EnsembleRecommender": "aerec.ensemble",
    "ImplicitRecommender": "aerec.implicit.recommender",
    "Recommender": "aerec.recommender",
    "RunConfig": "aerec.config",
    "TrainConfig": "aerec.config",
    "cross_validate": "aerec.crossval",
    "evaluate_ranking": "aerec.ranking",
    "evaluate_ratings": "aerec.evaluation",
    "load_config": "aerec.config",
    "load": "aerec.loading",
    "load_model": "aerec.loading",
    "tune": "aerec.tuning",
}

__getattr__, __dir__ = _lazy_exports(__name__, _LAZY)

__all__ = ["__version__", *_LAZY]
