"""Train, evaluate, predict and recommend as library functions: what ``aerec train | evaluate |
predict | recommend`` do, callable from Python, the HTTP server or a notebook.

Each workflow takes settings (ratings or paths, a :class:`~aerec.config.Config`, options) and
returns a result object; none prints. The command line parses flags, calls one of these and
formats what comes back. Messages reach the caller as exceptions (:class:`~aerec.errors.AerecError`)
and warnings (:mod:`warnings`), which the command line shows as ``error:`` and ``warning:`` lines.

Training is two steps so that a caller can show what is about to happen between them:

>>> data = read_train_data("ml-100k", split="u1")                      # doctest: +SKIP
>>> plan = plan_training(Config(), data)       # checks every setting; nothing is written yet
>>> result = run_training(plan, out="model")   # fit, evaluate the test part, save
>>> result.metrics["rmse"]                                             # doctest: +SKIP

:func:`train` does both at once. Tuning is :func:`aerec.tuning.tune`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aerec import distributed
from aerec.config import Config
from aerec.errors import ConfigError, DataError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from aerec.data.matrix import RatingMatrix
    from aerec.data.ratings import Ratings

log = logging.getLogger(__name__)

__all__ = [
    "Recommendations", "TrainData", "TrainResult", "TrainingPlan", "default_checkpoint_dir", "default_model",
    "default_preset", "fill_default_model",
    "evaluate", "item_title", "json_ready", "plan_training", "predict_file", "read_test_data", "read_train_data",
    "because_records", "recommend", "run_training", "similar", "train",
]

# Settings that may differ between a checkpointed run and the run that resumes it.
RESUMABLE_CHANGES = {"epochs", "patience", "checkpoint_every", "checkpoint_budget", "device", "threads"}
FALLBACK_WARNING = 0.05  # above this share of test ratings answered by the bias model, say so
# The figures a rating model's training report carries from its test evaluation.
RATING_TEST_KEYS = ("rmse", "mae", "n", "n_fallback", "rmse_per_user", "precision@10", "recall@10", "ndcg@10",
                    "relevant_from", "n_ranked_users")
# ... and an implicit model's, besides its ranking metrics.
IMPLICIT_TEST_KEYS = ("n_users", "n_held_out", "n_new_users", "n_known_users", "n_unknown_items")


def json_ready(obj: Any) -> Any:
    """JSON-ready copy: NumPy scalars to Python, NaN/inf to None, paths to text."""
    import numpy as np

    if isinstance(obj, dict):
        return {k: json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _is_implicit(model: Any) -> bool:
    """A top-N model (no predicted ratings): judged and listed by its ranking scores."""
    return not model.predicts_ratings


# ============================================================================= reading data
@dataclass
class TrainData:
    """The ratings of one training run: what to train on, and what to validate and test on."""

    train: Ratings
    test: Ratings | None
    validation: Ratings | None
    source: str  # where the data came from, for reports: a dataset name or a file
    split: str | None  # the split's name when the test part was held out of ``source``

    @property
    def test_source(self) -> str | None:
        """What the test part came from, for the report: the test file or the split's name."""
        return None if self.test is None else (self.split or self.test.source)


def read_train_data(data: str | Path | None = None, train_file: str | Path | None = None,
                    test_file: str | Path | None = None, split: str | None = None,
                    options: dict[str, Any] | None = None, seed: int = 0, implicit: bool = False,
                    items: str | Path | None = None) -> TrainData:
    """Read a dataset (``data``: a name or a ratings file, optionally ``split``) or a training
    file with an optional test file; ``options`` are the reader's. With ``implicit``, a file
    whose columns name no rating is read as events instead of refused. ``items``: an item
    metadata file (id, title[, genres, ...]; :func:`aerec.data.items.read_item_file`) whose
    titles replace any the ratings came with; it is read first, so a bad one fails early."""
    options = dict(options or {})
    info = None
    if items is not None:
        from aerec.data.items import read_item_file

        info = read_item_file(items)
    try:
        parts = _read_parts(data, train_file, test_file, split, options, seed)
    except DataError as exc:
        if not implicit or "no rating column" not in str(exc):
            raise
        parts = _read_parts(data, train_file, test_file, split, {**options, "implicit": True}, seed)
    return parts if info is None else with_item_info(parts, info, source=str(items))


def with_item_info(parts: TrainData, info: pd.DataFrame, *, source: str = "the items file") -> TrainData:
    """``parts`` with ``info`` as the item metadata of each of its ratings, matched to the
    training items (see :func:`aerec.data.items.attach_item_info`: no match is an error, a partial
    one a warning with the counts)."""
    from aerec.data.items import attach_item_info

    train = attach_item_info(parts.train, info, source=source)
    return dataclasses.replace(
        parts, train=train,
        test=None if parts.test is None else dataclasses.replace(parts.test, item_info=train.item_info),
        validation=None if parts.validation is None else dataclasses.replace(parts.validation,
                                                                             item_info=train.item_info),
    )


def _read_parts(data, train_file, test_file, split, options: dict[str, Any], seed: int) -> TrainData:
    from aerec.data.registry import load_dataset
    from aerec.data.splits import parse_split

    splitter = parse_split(split, seed=seed) if split is not None else None  # a bad spec fails before reading
    ratings = load_dataset(data, **options) if data is not None else load_dataset(Path(train_file), **options)
    source = str(data) if data is not None else str(train_file)
    if splitter is not None:
        parts = splitter(ratings)
        test = parts.test if len(parts.test) else None
        return TrainData(parts.train, test, parts.validation, source, parts.name or split)
    test = None
    if test_file is not None:
        # The test file is read like the training file, on the training data's scale, so a
        # rating the model cannot produce is reported with its line.
        test_options = {**options, "scale": options.get("scale") or ratings.scale}
        test_options.pop("n_ratings", None)
        test_options.pop("taste", None)
        if ratings.implicit:  # events train a top-N model: every test row is an interaction too
            test_options.pop("scale")
            test_options["implicit"] = True
        test = load_dataset(Path(test_file), **test_options)
    return TrainData(ratings, test, None, source, None)


# ============================================================================= training
THIN_ITEMS = 20.0
"""Mean ratings per item below which ``aerec train``'s default blends I- and U-AutoRec."""


def default_preset(ratings: Ratings, model: dict[str, Any]) -> str | None:
    """The preset ``aerec train`` adds to the default model for these ratings, or None.

    Where items have few ratings each (fewer than :data:`THIN_ITEMS` on average), I-AutoRec's
    rows (one per item) hold too little to reconstruct: on synthetic data of such shapes it
    fell behind SVD++ and at times the bias model (docs/benchmarks.md, "Accuracy"). There the
    default is the ``blend`` preset: I-AutoRec and U-AutoRec, blended with weights fitted on
    validation ratings carved from the training data (about twice the training time). Only
    when the user chose nothing about the model (``model`` holds at most the default ``kind``);
    ML-100K (48 ratings per item) keeps the single network.
    """
    from aerec.registry import default_kind

    if ratings.implicit or set(model) - {"kind"} or model.get("kind", default_kind(implicit=False)) != "autorec":
        return None
    n_items = ratings.frame["item"].nunique()
    return "blend" if n_items and len(ratings) / n_items < THIN_ITEMS else None


def fill_default_model(config: Config, ratings: Ratings) -> None:
    """Give ``config`` the default model for ``ratings`` when it names none: the default kind
    (:func:`default_model`) and, on data whose items have few ratings, the preset of
    :func:`default_preset` (said on the log). What ``aerec train`` and ``aerec cv`` train."""
    if "kind" in config.model:
        return
    preset = default_preset(ratings, config.model)
    config.model["kind"] = default_model(ratings)
    if preset is not None:
        config.model["preset"] = preset
        log.info("%s has %.1f ratings per item on average: the default blends I- and U-AutoRec on "
                 "validation ratings (about twice the time; --preset i-autorec for one network)",
                 ratings.source, len(ratings) / max(ratings.frame["item"].nunique(), 1))


def default_model(ratings: Ratings) -> str:
    """The model family ``aerec train`` uses when none is chosen: the strongest default for
    the data's kind (explicit ratings: the library's default family, AutoRec)."""
    from aerec.registry import default_kind

    kind = default_kind(implicit=ratings.implicit)
    if kind is None:
        # An explicit-rating model on all-ones data would learn nothing, so say so.
        raise ConfigError(
            f"{ratings.source} holds events without ratings (implicit feedback); aerec has no default "
            "model for implicit data yet. Give the rating column with --columns, or choose a model with --model"
        )
    return kind


def default_checkpoint_dir(out: str | Path) -> Path:
    """Where training for model directory ``out`` keeps its checkpoints unless told: a hidden sibling ``.DIR.ckpt``."""
    out = Path(out)
    return out.parent / f".{out.name}.ckpt"


def prepare_run(config: Config) -> None:
    """Checks that need no data, so that they fail before anything is read: the device exists
    on this machine, and EASE and popularity are not given settings they would ignore. Under
    torchrun the process joins the others here (docs/distributed.md); alone, nothing happens."""
    from aerec.training import resolve_device

    run = config.resolve_run()
    resolve_device(run.device)
    if config.model.get("kind") in ("ease", "popularity"):
        from aerec.implicit.recommender import ImplicitRecommender

        ImplicitRecommender(config=config).check_settings_apply()
    distributed.init_from_env(run.device)


@dataclass
class TrainingPlan:
    """A training run checked and ready to start: the unfitted model, the matrix it will train
    on and the data. Made by :func:`plan_training`, run by :func:`run_training`."""

    config: Config
    data: TrainData
    model: Any  # an unfitted Recommender or ImplicitRecommender
    matrix: RatingMatrix  # implicit models: the positives
    implicit: bool
    threshold: float | None = None  # implicit: the threshold asked for (None: the scale's default)
    positive_from: float | None = None  # implicit: the lowest rating that counts as a positive

    @property
    def kind(self) -> str:
        return self.config.kind

    @property
    def positives(self) -> str:
        """What an implicit model's positives are, for reports: ``events`` or ``ratings >= 4``."""
        return "events" if self.data.train.implicit else f"ratings >= {self.positive_from:g}"


def is_implicit_run(config: Config, train: Ratings, implicit: bool = False, threshold: float | None = None) -> bool:
    """Whether ``train`` trains an implicit model (asked for, an implicit kind, or event data
    without a kind); fills in the default implicit kind. ConfigError for contradictions (an
    implicit run of a rating model, a threshold for a rating model)."""
    from aerec.models.implicit_families import DEFAULT_IMPLICIT, IMPLICIT_FAMILIES, default_implicit_kind
    from aerec.registry import is_implicit_kind

    kind = config.model.get("kind")
    wanted = implicit or is_implicit_kind(kind) or (kind is None and train.implicit)
    if wanted and kind is not None and not is_implicit_kind(kind):
        raise ConfigError(
            f"--implicit trains a top-N model on positives, and {kind!r} is a rating model; choose one of "
            f"{', '.join(IMPLICIT_FAMILIES)} (or leave --model out for {DEFAULT_IMPLICIT})"
        )
    if not wanted and threshold is not None:
        raise ConfigError("--threshold goes with implicit models: add --implicit, or choose --model multvae, ease, ...")
    if wanted and kind is None:
        config.model["kind"] = default_implicit_kind(train.n_items)
    return wanted


def plan_training(config: Config, data: TrainData, *, implicit: bool = False, threshold: float | None = None,
                  scale_declared: bool = False) -> TrainingPlan:
    """Check every setting against the data and build the model and its matrix; nothing is
    trained or written. ``config`` gets the default kind when it names none. ``scale_declared``
    says the rating scale was given rather than read off the values (no doubts about it then)."""
    if is_implicit_run(config, data.train, implicit, threshold):
        return _plan_implicit(config, data, threshold)
    return _plan_rating_model(config, data, scale_declared)


def _plan_rating_model(config: Config, data: TrainData, scale_declared: bool) -> TrainingPlan:
    from aerec.data.checks import require_ratings
    from aerec.data.matrix import RatingMatrix
    from aerec.ensemble import rating_model

    for part, what in ((data.test, "the test data"), (data.validation, "the validation data")):
        if part is not None:
            require_ratings(part, what)  # before training, not after it
    if not scale_declared:  # a scale read off the values may miss a level: say so before training
        from aerec.data.scale import scale_doubts

        for doubt in scale_doubts(data.train.scale, data.train.frame["rating"].to_numpy()):
            warnings.warn(doubt, stacklevel=2)
    fill_default_model(config, data.train)
    model = rating_model(config)  # an EnsembleRecommender for the accurate and blend presets
    _, train_cfg, _ = model.resolved()  # unknown or bad settings fail before any work
    if train_cfg.optimizer == "lbfgs" and train_cfg.batch_size != 0:
        raise ConfigError(
            f"{config.kind} trains with L-BFGS on the whole matrix (train.batch_size=0), which cannot use "
            f"batches of {train_cfg.batch_size}; for mini-batch or online training also choose a gradient "
            "optimiser, e.g. --set train.optimizer=adam"
        )
    return TrainingPlan(config, data, model, RatingMatrix.from_ratings(data.train), implicit=False)


def _plan_implicit(config: Config, data: TrainData, threshold: float | None) -> TrainingPlan:
    from aerec.implicit import ImplicitRecommender, implicit_matrix

    model = ImplicitRecommender(config=config)
    model.resolved()  # unknown or bad settings fail before any work
    model.check_settings_apply()  # --epochs for EASE is refused, not silently dropped
    matrix, positive_from = implicit_matrix(data.train, threshold)
    return TrainingPlan(config, data, model, matrix, implicit=True, threshold=threshold, positive_from=positive_from)


@dataclass
class TrainResult:
    """A finished training run: the fitted model and the report saved beside it."""

    plan: TrainingPlan
    metrics: dict[str, Any]  # the model directory's metrics.json (JSON-ready); ``aerec train --json`` prints it
    fit_seconds: float
    tested: bool  # whether a test part was evaluated (its figures are in ``metrics``)

    @property
    def model(self) -> Any:
        return self.plan.model


def run_training(plan: TrainingPlan, *, out: str | Path, checkpoint_dir: str | Path | None = None,
                 resume: bool = False, progress: bool | Callable[..., None] = False,
                 on_start: Callable[[TrainingPlan], None] | None = None) -> TrainResult | None:
    """Fit the plan's model, evaluate it on the test part (when there is one) and save it to
    ``out`` with its report.

    Checkpoints go to ``checkpoint_dir`` (default :func:`default_checkpoint_dir`, removed after
    the save); ``resume`` continues the run they belong to (a ConfigError when the settings or
    data changed). ``progress`` is passed to ``fit``; ``on_start`` is called just before fitting.
    Under torchrun every process trains and only the first evaluates and saves: the others get None.
    """
    out = Path(out)
    checkpoints = _prepare_checkpoints(plan, out, checkpoint_dir, resume)
    if on_start is not None and distributed.is_main():
        on_start(plan)
    data = plan.data
    # Into the default folder (deleted once the model is saved) the time budget alone decides:
    # a fit shorter than the budget's interval writes no checkpoint, and a crash loses at most
    # that interval. A folder the user named also gets the last epoch's, to resume or extend.
    keep = {"checkpoint_dir": checkpoints, "resume": resume, "final_checkpoint": checkpoint_dir is not None}
    started = time.perf_counter()
    if plan.implicit:
        plan.model.fit(data.train, data.validation, threshold=plan.threshold, progress=progress, **keep)
    else:
        plan.model.fit(plan.matrix, data.validation, progress=progress, **keep)
    fit_seconds = time.perf_counter() - started
    if not distributed.is_main():
        return None  # every process holds the same model; rank 0 evaluates, saves and reports
    report = _implicit_report if plan.implicit else _rating_report
    metrics = json_ready(report(plan, fit_seconds))
    plan.model.save(out, metrics=metrics)
    if checkpoint_dir is None:
        shutil.rmtree(checkpoints, ignore_errors=True)  # the saved model supersedes the default checkpoint
    return TrainResult(plan, metrics, fit_seconds, tested=data.test is not None)


def train(config: Config, data: TrainData, *, out: str | Path, implicit: bool = False,
          threshold: float | None = None, scale_declared: bool = False, **run_options: Any) -> TrainResult | None:
    """:func:`plan_training` then :func:`run_training` (which takes ``run_options``)."""
    plan = plan_training(config, data, implicit=implicit, threshold=threshold, scale_declared=scale_declared)
    return run_training(plan, out=out, **run_options)


def _model_named(plan: TrainingPlan) -> dict[str, Any]:
    """The report's first keys: which family, and which preset of it."""
    return {"model": plan.kind, "preset": plan.config.model.get("preset")}


def _data_named(data: TrainData) -> dict[str, Any]:
    """The report's keys saying what the model was trained and tested on."""
    return {"data": data.source, "split": data.split, "test": data.test_source}


def _rating_report(plan: TrainingPlan, fit_seconds: float) -> dict[str, Any]:
    """A rating model's training report, with its test figures (None without a test part)."""
    from aerec.evaluation import evaluate_ratings

    model, data = plan.model, plan.data
    test = evaluate_ratings(model, data.test) if data.test is not None else {}
    result = model.train_result_
    metrics = {
        **_model_named(plan), **_data_named(data),
        "n_train": len(data.train),
        "scale": plan.matrix.scale.to_dict(),
        "best_epoch": result.best_epoch,
        "best_val_rmse": result.best_val,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        "refit_epochs": model.refit_epochs_,  # epochs retrained on every training rating (train.refit)
        "fit_seconds": round(fit_seconds, 3),
    }
    return {**metrics, **{key: test.get(key) for key in RATING_TEST_KEYS}}


def _implicit_report(plan: TrainingPlan, fit_seconds: float) -> dict[str, Any]:
    """An implicit model's training report, with its ranking figures on the test part."""
    from aerec.ranking import DEFAULT_METRICS

    model, data, matrix = plan.model, plan.data, plan.matrix
    test = model.evaluate(data.test) if data.test is not None else {}
    result = model.train_result_
    neural = bool(result.history) and plan.kind != "ease"  # EASE's history is its lambda search
    metrics: dict[str, Any] = {
        **_model_named(plan), "task": "implicit", **_data_named(data),
        "threshold": None if data.train.implicit else plan.positive_from, "n_train": matrix.nnz,
        "n_train_users": matrix.n_users, "val_metric": model.val_metric_,
        "best_epoch": result.best_epoch if neural else None, f"best_val_{model.val_metric_}": result.best_val,
        "epochs_run": len(result.history) if neural else None, "stopped": result.stopped if neural else None,
        "fit_seconds": round(fit_seconds, 3),
    }
    if plan.kind == "ease":
        metrics["l2"] = model.params_.l2
    if plan.kind == "easedae":
        metrics["ease_l2"], metrics["weight"] = model.params_.ease_l2, model.params_.weight
    return {**metrics, **{key: test.get(key) for key in (*DEFAULT_METRICS, *IMPLICIT_TEST_KEYS)}}


# ----------------------------------------------------------------------------- checkpoints
def _prepare_checkpoints(plan: TrainingPlan, out: Path, checkpoint_dir: str | Path | None, resume: bool) -> Path:
    """The checkpoint folder of this run, holding the run's identity: a resumed run must be
    the same run, and a fresh run into the default folder starts from an empty one."""
    checkpoints = Path(checkpoint_dir) if checkpoint_dir is not None else default_checkpoint_dir(out)
    identity = run_identity(plan.model, plan.matrix.fingerprint())
    if resume:
        check_resume(checkpoints, identity)
    elif checkpoints.exists() and checkpoint_dir is None and distributed.is_main():
        shutil.rmtree(checkpoints, ignore_errors=True)  # a stale checkpoint of an earlier run
    if distributed.is_main():  # rank 0 writes every file; the others wait for it
        _write_identity(checkpoints, identity)
    distributed.barrier()
    return checkpoints


def run_identity(model: Any, fingerprint: str) -> dict[str, Any]:
    """What must not change between a checkpointed run and the one resuming it."""
    params, train_cfg, run = model.resolved()
    train = {k: v for k, v in dataclasses.asdict(train_cfg).items() if k not in RESUMABLE_CHANGES}
    return {
        "kind": model.config.kind, "model": dataclasses.asdict(params), "train": train,
        "seed": run.seed, "data": fingerprint,
    }


def check_resume(checkpoint_dir: Path, identity: dict[str, Any]) -> None:
    """Refuse to resume from a missing checkpoint, or from one of a run with other settings or data."""
    from aerec.errors import ModelFileError
    from aerec.training import has_checkpoint

    def found(folder: Path, depth: int) -> bool:
        # An ensemble's members keep theirs in subfolders (aerec.ensemble.member_checkpoint_dir),
        # a bagged ensemble's one level further down (bag<b>/member<k>).
        return has_checkpoint(folder) or (depth > 0 and folder.is_dir() and any(
            found(sub, depth - 1) for sub in folder.iterdir() if sub.is_dir()))

    if not found(checkpoint_dir, 2):  # said before anything is written into it
        raise ModelFileError(f"no checkpoint in {checkpoint_dir}; train without --resume first")
    path = checkpoint_dir / "aerec-run.json"
    if not path.is_file():
        return
    try:
        before = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    changed = [k for k in identity if before.get(k) != identity[k]]
    if changed:
        what = ", ".join("the training data" if k == "data" else k for k in changed)
        raise ConfigError(
            f"the checkpoint in {checkpoint_dir} belongs to a different run ({what} changed); resume with the "
            "same data and settings (only --epochs, --device, --threads and train.patience may change), or "
            "train afresh without --resume"
        )


def _write_identity(checkpoint_dir: Path, identity: dict[str, Any]) -> None:
    from aerec.persistence import atomic_write_text

    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(checkpoint_dir / "aerec-run.json", json.dumps(json_ready(identity)))


# ============================================================================= evaluation
def read_test_data(model: Any, *, test_file: str | Path | None = None, data: str | None = None,
                   split: str | None = None, options: dict[str, Any] | None = None,
                   name: str = "the model", source: str | None = None) -> tuple[Ratings, str]:
    """``(test ratings, where they came from)`` for evaluating ``model``: a test file (read on
    the model's scale), or the test part of ``data`` split by ``split`` (seeded with the model's
    seed, so it is the split the model was trained on; a warning says when it was not).
    ``name`` names the model in that warning; ``source`` names the test file in reports."""
    from aerec.data.registry import load_dataset
    from aerec.data.splits import parse_split

    options = dict(options or {})
    if test_file is not None:
        test = load_dataset(Path(test_file), **{"scale": model.scale_, **options})
        source = source or str(test_file)
    else:
        _, _, run = model.resolved()
        parts = parse_split(split, seed=run.seed)(load_dataset(data, **options))
        test, source = parts.test, f"{data} split {parts.name or split}"
        if _fingerprint_of(model, parts.train) != model.fingerprint_:
            seen = "test users or items" if _is_implicit(model) else "test ratings"
            warnings.warn(
                f"{name} was not trained on this split's training part: its {seen} may have been "
                "seen in training, which makes the figures optimistic", stacklevel=2,
            )
    if len(test) == 0:
        raise DataError("the test set is empty", path=source, fix="choose a split with a test part")
    return test, source


def _fingerprint_of(model: Any, train: Ratings) -> str:
    """The fingerprint ``model`` would record had it been trained on ``train``."""
    if _is_implicit(model):
        from aerec.implicit import implicit_matrix

        return implicit_matrix(train, None if train.implicit else model.threshold_)[0].fingerprint()
    from aerec.data.matrix import RatingMatrix

    return RatingMatrix.from_ratings(train).fingerprint()


def evaluate(model: Any, test: Ratings, *, k: int = 10, relevant: float | None = None) -> dict[str, Any]:
    """The figures of ``model`` on ``test``, JSON-ready. Rating models: RMSE, MAE, per-user RMSE,
    the fallback report (:func:`add_fallback_report`) and precision/recall/NDCG at ``k``
    (relevant: ratings >= ``relevant``). Implicit models: their ranking metrics."""
    if _is_implicit(model):
        return json_ready(model.evaluate(test))
    from aerec.evaluation import evaluate_ratings

    return json_ready(add_fallback_report(model, test, evaluate_ratings(model, test, k=k, relevant=relevant)))


def add_fallback_report(model: Any, test: Ratings, metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with ``fallback_fraction`` (the share of test ratings the bias model answered
    because their user or item is unknown to the model) and how many test users and items are
    unknown; warns when that share is above 5 %, since the figures then say more about the
    fallback than about the model."""
    n, k = metrics.get("n") or 0, metrics.get("n_fallback") or 0
    users = model.users_.index(test.frame["user"].unique(), unknown="missing")
    items = model.items_.index(test.frame["item"].unique(), unknown="missing")
    report = {"fallback_fraction": k / n if n else 0.0, "n_unknown_users": int((users < 0).sum()),
              "n_unknown_items": int((items < 0).sum())}
    if n and k / n > FALLBACK_WARNING:
        warnings.warn(
            f"{k:,} of {n:,} test ratings ({k / n:.1%}) fell back to the bias model because the model never saw "
            f"their user or item ({report['n_unknown_users']:,} of {len(users):,} test users and "
            f"{report['n_unknown_items']:,} of {len(items):,} test items are unknown); the figures say more about "
            "the fallback than about the model: evaluate on users and items of the training data "
            "(e.g. a split of the same file)", stacklevel=1,
        )
    return {**metrics, **report}


# ============================================================================= predictions and lists
def predict_file(model: Any, pairs: str | Path, options: dict[str, Any] | None = None) -> tuple[pd.DataFrame, int]:
    """Predicted ratings for the (user, item) rows of a file: ``(frame, n_fallback)``, the frame
    with columns user, item, prediction, fallback (1 where the bias model answered), one row per
    input row. A ratings file works too (its ratings are ignored). Implicit models refuse."""
    import numpy as np

    from aerec.data.registry import load_dataset

    model.check_predicts_ratings()  # a top-N model refuses before the pairs are read
    # Read as events: a pairs file has no rating, and a ratings file's ratings are dropped.
    # A pair asked twice is answered twice (one output line per input line).
    rows = load_dataset(Path(pairs), implicit=True, **{**(options or {}), "duplicates": "keep"}).frame
    preds = model.predict_pairs(rows["user"].to_numpy(), rows["item"].to_numpy())
    frame = rows[["user", "item"]].reset_index(drop=True)
    frame["prediction"] = preds.values.astype(np.float64)
    frame["fallback"] = preds.fallback.astype(np.int8)
    return frame, int(preds.n_fallback)


@dataclass
class Recommendations:
    """A top-N list: one record per item (item_id, score, title, and for rating models the
    predicted rating), best first."""

    items: list[dict[str, Any]]
    has_predictions: bool  # rating models predict a rating beside each score
    ratings_used: int = 0  # a new user: how many of the given items the model knows (it warns about the others)
    explained: bool = False  # each record has a ``because`` list


def recommend(model: Any, *, user: Any = None, new_ratings: dict[Any, float] | list[Any] | None = None,
              n: int = 10, include_rated: bool = False, explain: int = 0) -> Recommendations:
    """Top-``n`` items for a user the model knows, or for a new user given as ratings (or, for
    implicit models, items), without retraining. A rating model drops a new user's unknown
    items with a warning. ``explain`` > 0 gives each record a ``because`` list of up to that
    many ``{item_id, title, rating, contribution}``: the user's rated items that pushed the item
    up most (:meth:`~aerec.base.Estimator.because`)."""
    used = 0
    why = {"explain": True, "explain_top": explain} if explain else {}
    if new_ratings is not None:
        # Rating models refuse unknown items by default; here they are dropped with a warning.
        top = model.recommend_new(new_ratings, n=n, unknown="warn", **why)
        given_items = list(dict.fromkeys(new_ratings))
        used = int((model.items_.index(given_items, unknown="missing") >= 0).sum()) if given_items else 0
    else:
        top = model.recommend(user, n=n, exclude_rated=not include_rated, **why)
    predictions = top["prediction"].tolist() if "prediction" in top.columns else None
    records = [
        {"item_id": json_ready(item), "score": float(score), "title": _title(top, k)}
        | ({} if predictions is None else {"prediction": float(predictions[k])})
        | ({"because": because_records(top["because_detail"].iloc[k])} if explain else {})
        for k, (item, score) in enumerate(zip(top["item"].tolist(), top["score"].tolist()))
    ]
    return Recommendations(records, predictions is not None, used, explained=bool(explain))


def because_records(detail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``because_detail`` list in the JSON form of the command line and the API:
    ``{item_id, title, rating, contribution}`` each (title and rating None when unknown)."""
    return [{"item_id": json_ready(d["item"]), "title": d.get("title"), "rating": d["rating"],
             "contribution": float(d["contribution"])} for d in detail]


def _title(frame, k: int) -> str | None:
    if "title" not in frame.columns:
        return None
    value = frame["title"].iloc[k]
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def similar(model: Any, item: Any, *, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` items most like ``item`` (:meth:`~aerec.base.Estimator.similar_items`), one
    record each: item_id, score (cosine similarity), title; most similar first."""
    top = model.similar_items(item, n=n)
    return [{"item_id": json_ready(i), "score": float(s), "title": _title(top, k)}
            for k, (i, s) in enumerate(zip(top["item"].tolist(), top["score"].tolist()))]


def item_title(model: Any, item: Any) -> str | None:
    """The title of a known ``item`` (None when the model has no titles)."""
    info = model.item_info_
    if info is None or "title" not in info.columns:
        return None
    label = model.items_.label(model.items_.index([item]))[0]
    frame = info.reindex([label])
    return _title(frame, 0)


# ----------------------------------------------------------------------------- top-N for every user
RECS_FORMATS = (".csv", ".parquet")


def check_recs_path(out: str | Path) -> Path:
    """The ``--out`` of :func:`recommend_all`: a ``.csv`` or ``.parquet`` file (by its suffix)."""
    out = Path(out).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; give a file name, e.g. {out / 'recs.csv'}")
    if out.suffix.lower() not in RECS_FORMATS:
        raise ConfigError(f"--out {out}: the file name must end in .csv or .parquet (the format is chosen by it)")
    return out


def read_user_list(path: str | Path) -> list[str]:
    """User ids from a file: one id a line, or a CSV/TSV whose header names a ``user`` column."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the users file ({exc})", path=str(path),
                        fix="give a UTF-8 text file of one user id a line") from None
    numbered = [(k, line.strip()) for k, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise DataError("the users file holds no user ids", path=str(path), fix="write one user id a line")
    sep = next((s for s in ("\t", ",", ";", "|") if s in numbered[0][1]), None)
    if sep is None:
        ids = [line for _, line in numbered]
        return ids[1:] if ids[0].lower() in ("user", "user_id", "userid") else ids
    header = [h.strip().lower() for h in numbered[0][1].split(sep)]
    names = [h for h in ("user", "user_id", "userid") if h in header]
    if not names:
        raise DataError("the users file has several columns but none is named user", path=str(path), line=numbered[0][0],
                        value=numbered[0][1], fix="write one user id a line, or a CSV with a header naming a user column")
    col = header.index(names[0])
    ids = []
    for k, line in numbered[1:]:
        fields = line.split(sep)
        if col >= len(fields) or not fields[col].strip():
            raise DataError("the line has no user id", path=str(path), line=k, value=line,
                            fix=f"give the {names[0]} column on every line")
        ids.append(fields[col].strip())
    if not ids:
        raise DataError("the users file holds no user ids", path=str(path), fix="write one user id a line")
    return ids


def known_users(model: Any, users: list[Any], *, source: str = "the users file") -> np.ndarray:
    """Vocabulary indices of ``users`` the model knows, in the given order, each once. Unknown
    ones are warned about (the count and the first few); none known is a :class:`DataError`."""
    import numpy as np

    idx = model.users_.index(np.asarray(users, dtype=object), unknown="missing")
    unknown = [u for u, i in zip(users, idx) if i < 0]
    if len(unknown) == len(users):
        raise DataError(f"none of the {len(users):,} users in {source} is known to the model",
                        value=", ".join(map(str, unknown[:5])),
                        fix="give ids of users the model was trained on")
    if unknown:
        first = ", ".join(map(str, unknown[:5])) + (", ..." if len(unknown) > 5 else "")
        warnings.warn(f"{len(unknown):,} of the {len(users):,} users in {source} are unknown to the model "
                      f"and left out: {first}", stacklevel=2)
    kept = idx[idx >= 0]
    _, first_seen = np.unique(kept, return_index=True)
    return kept[np.sort(first_seen)]


@dataclass
class RecsWritten:
    """What :func:`recommend_all` wrote."""

    path: Path
    n_users: int
    n_rows: int
    columns: list[str]


def recommend_all(model: Any, out: str | Path, *, n: int = 10, users: list[Any] | str | Path | None = None,
                  chunk: int = 1024, exclude_rated: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> RecsWritten:
    """Write the top-``n`` of every known user (or of ``users``: ids, or a file of them, see
    :func:`read_user_list`) to ``out``, a ``.csv`` or ``.parquet`` file by its suffix.

    Columns: user, rank (1 = best), item, score[, prediction for rating models][, title when the
    model knows titles]; each user's rows are :meth:`recommend`'s list. ``chunk`` users are
    scored at a time and their rows streamed to the file, so memory stays bounded by one
    ``(chunk, n_items)`` block whatever the number of users. The file appears only when complete
    (a temporary sibling, then ``os.replace``). ``progress(done, total)`` is called after each chunk.
    """
    import os
    import tempfile

    import numpy as np

    from aerec.base import check_n
    from aerec.persistence import public_modes

    check_n(n)
    if not isinstance(chunk, (int, np.integer)) or isinstance(chunk, bool) or chunk < 1:
        raise ConfigError(f"chunk must be a positive whole number; got {chunk!r}")
    out = check_recs_path(out)
    if users is None:
        u_all = np.arange(len(model.users_))
    else:
        source = "the users list"
        if isinstance(users, (str, Path)):
            source = str(users)
            users = read_user_list(users)
        u_all = known_users(model, list(users), source=source)
    titles = model.item_info_ is not None and "title" in model.item_info_.columns
    columns = [*model._batch_columns, *(["title"] if titles else [])]
    parquet = out.suffix.lower() == ".parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    n_rows = 0
    writer = None
    try:
        public_modes(Path(tmp))
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            if not parquet:
                fh.write(",".join(columns) + "\n")
            for start in range(0, len(u_all), chunk):
                block = u_all[start : start + chunk]
                frame = model.recommend_batch(model.users_.label(block), n, exclude_rated=exclude_rated, chunk=chunk)
                if titles:
                    frame["title"] = model.item_info_["title"].reindex(frame["item"].to_numpy()).to_numpy()
                frame = frame[columns]
                if parquet:
                    writer = _write_parquet_chunk(writer, tmp, frame)
                else:
                    frame.to_csv(fh, header=False, index=False, lineterminator="\n")
                n_rows += len(frame)
                if progress is not None:
                    progress(min(start + chunk, len(u_all)), len(u_all))
        if parquet:
            if writer is None:  # no users: an empty file with the columns
                import pandas as pd

                writer = _write_parquet_chunk(None, tmp, _empty_recs(model, columns, pd))
            writer.close()
            writer = None
        os.replace(tmp, out)
    except BaseException:
        if writer is not None:
            writer.close()
        Path(tmp).unlink(missing_ok=True)
        raise
    return RecsWritten(out, len(u_all), n_rows, columns)


def _empty_recs(model: Any, columns: list[str], pd: Any) -> Any:
    return pd.DataFrame({c: pd.Series([], dtype=object if c in ("user", "item", "title") else "float64")
                         for c in columns}).astype({"rank": "int64"})


def _write_parquet_chunk(writer: Any, path: str, frame: Any) -> Any:
    """Append ``frame`` to the Parquet file at ``path`` (its first chunk opens the writer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if writer is None:
        schema = table.schema
        if "title" in schema.names:  # a first chunk without any title must not make the column null-typed
            schema = schema.set(schema.get_field_index("title"), pa.field("title", pa.string()))
            table = table.cast(schema)
        writer = pq.ParquetWriter(path, schema)
    else:
        table = table.cast(writer.schema)
    writer.write_table(table)
    return writer
