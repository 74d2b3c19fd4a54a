"""The public API is what ``aerec.__all__`` lists; changing it must be a deliberate act."""

from __future__ import annotations

import inspect
import subprocess
import sys

import aerec

PUBLIC = [
    "AerecError", "BiasModel", "Config", "ConfigError", "DataError", "DatasetError", "EnsembleRecommender", "Estimator",
    "ImplicitRecommender", "ModelFileError", "NotFittedError", "RatingMatrix", "RatingScale",
    "Ratings", "Recommender", "RunConfig", "Split", "TrainConfig", "TrainingError", "Vocabulary",
    "__version__", "canonical_split", "cross_validate", "evaluate_ranking", "evaluate_ratings", "load", "load_config",
    "load_dataset", "load_model", "random_split", "read_ratings", "tune", "user_split",
    "validation_split",
]


def test_all_is_pinned_and_every_name_resolves():
    assert sorted(aerec.__all__) == sorted(PUBLIC)
    for name in aerec.__all__:
        assert getattr(aerec, name) is not None, name


def test_estimator_methods_are_pinned():
    methods = {
        "fit": ["self", "train", "validation", "progress", "checkpoint_dir", "resume", "callbacks", "final_checkpoint"],
        "predict": ["self", "users", "items"],
        "predict_pairs": ["self", "users", "items"],
        "recommend": ["self", "user", "n", "exclude_rated", "explain", "explain_top"],
        "recommend_batch": ["self", "users", "n", "exclude_rated", "chunk", "as_array"],
        "recommend_new": ["self", "ratings", "n", "unknown", "explain", "explain_top"],
        "rank_items": ["self", "predictions", "exclude", "n"],
        "predicted_block": ["self", "users"],
        "ranking_block": ["self", "users"],
        "new_user_scores": ["self", "idx", "values"],
        "save": ["self", "directory", "metrics"],
        "similar_items": ["self", "item", "n"],
        "because": ["self", "targets", "user_index", "given", "top"],
    }
    for name, params in methods.items():
        assert list(inspect.signature(getattr(aerec.Recommender, name)).parameters) == params, name
    assert callable(aerec.Recommender.load) and callable(aerec.ImplicitRecommender.load)


def test_errors_form_one_hierarchy_with_exit_codes():
    for name in ("ConfigError", "DataError", "DatasetError", "ModelFileError", "NotFittedError", "TrainingError"):
        cls = getattr(aerec, name)
        assert issubclass(cls, aerec.AerecError)
        assert cls.exit_code in (1, 2)


def test_import_is_light():
    # The data layer and errors import without torch; models come on first use.
    code = "import sys, aerec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_both_estimators_share_one_base_and_loader():
    import typing

    assert issubclass(aerec.Recommender, aerec.Estimator) and issubclass(aerec.ImplicitRecommender, aerec.Estimator)
    assert aerec.load_model is aerec.load
    assert typing.get_type_hints(aerec.load)["return"] is aerec.Estimator
    for name in ("fit", "predict", "evaluate", "recommend", "recommend_batch", "recommend_new", "new_user_scores",
                 "rank_items", "similar_items", "save", "load"):
        assert callable(getattr(aerec.Estimator, name)), name
    # The calls every estimator answers alike take the same arguments.
    for name in ("recommend", "recommend_batch", "recommend_new", "rank_items", "similar_items", "because", "save"):
        explicit = list(inspect.signature(getattr(aerec.Recommender, name)).parameters)
        implicit = list(inspect.signature(getattr(aerec.ImplicitRecommender, name)).parameters)
        assert explicit == implicit, name
    assert aerec.Recommender.predicts_ratings and not aerec.ImplicitRecommender.predicts_ratings
