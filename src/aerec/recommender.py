"""The estimator users hold: fit, predict, recommend (known and brand-new users), save, load.

``Recommender`` ties a model family (:mod:`aerec.models.families`) to the trainer, the
vocabularies and the bias fallback. Predictions read the network's output at the asked cells:
for user rows (U-AutoRec, the course's SAE) the output of a user's row, for item rows
(I-AutoRec) the output of an item's row at that user's column. Both are computed from the last
hidden layer: ``prediction(row r, column c) = out_act(W_out[c] . h_r + b_out[c])`` with
``h_r`` the penultimate activation of row ``r``'s training vector, so nothing of size
users x items is ever materialised.

Cells whose user or item had no training ratings (or is unknown) get the bias model's
prediction instead and are counted as fallbacks.
"""

from __future__ import annotations

import dataclasses
import io
import math
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

import aerec
from aerec.baseline import BiasModel
from aerec.config import Config, build_train_config
from aerec.data.batches import dense_rows
from aerec.data.matrix import RatingMatrix
from aerec.data.ratings import Ratings
from aerec.data.scale import RatingScale
from aerec.data.vocab import Vocabulary
from aerec.errors import DataError, ModelFileError, NotFittedError
from aerec.models.families import get_family
from aerec.persistence import read_model_dir, write_model_dir
from aerec.training import EpochRecord, Trainer, TrainResult, resolve_device, seed_everything

__all__ = ["Recommender", "Predictions"]

# Rows whose hidden states are computed at once (bounds memory to chunk x n_inputs).
ROW_CHUNK = 2048


@dataclasses.dataclass
class Predictions:
    """Predicted ratings for (user, item) pairs and which of them came from the fallback."""

    values: np.ndarray  # (n,) float32, clipped to the scale
    fallback: np.ndarray  # (n,) bool: user or item unseen in training

    @property
    def n_fallback(self) -> int:
        return int(self.fallback.sum())


class Recommender:
    """An autoencoder recommender for explicit ratings.

    >>> model = Recommender("autorec")                 # doctest: +SKIP
    >>> model.fit(train_ratings)                        # doctest: +SKIP
    >>> model.predict(["196"], ["242"])                 # doctest: +SKIP
    >>> model.recommend("196", n=10)                    # doctest: +SKIP
    >>> model.recommend_new({"50": 5, "172": 4}, n=10)  # doctest: +SKIP

    Args:
        kind: model family (``sae``, ``autorec``, ``deep``, ``dae``, ``sparse``).
        config: a full :class:`~aerec.config.Config` (its ``model.kind`` wins over ``kind``).
        **model_params: hyper-parameters of the family, e.g. ``hidden=[300]``, ``preset="course"``.
    """

    def __init__(self, kind: str = "autorec", *, config: Config | None = None, **model_params: Any) -> None:
        if config is None:
            config = Config(model={"kind": kind, **model_params})
        elif model_params:
            config = Config(model={**config.model, **model_params}, train=config.train, run=config.run)
        self.config = config
        get_family(config.kind)  # fail early on an unknown kind

    # ------------------------------------------------------------------ resolved settings
    def resolved(self) -> tuple[Any, Any, Any]:
        """(model params, TrainConfig, RunConfig) after family defaults and presets."""
        family = get_family(self.config.kind)
        params = family.resolve_params(self.config.model)
        train = build_train_config(family.resolve_train(self.config.model.get("preset"), self.config.train))
        return params, train, self.config.resolve_run()

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "net_")

    def _require_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError("this Recommender is not fitted yet: call fit(...) or Recommender.load(DIR) first")

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: Ratings | RatingMatrix,
        validation: Ratings | RatingMatrix | None = None,
        *,
        progress: bool = False,
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        callbacks: Iterable[Callable[[EpochRecord], None]] = (),
    ) -> Recommender:
        """Train on ``train``; select the best epoch on ``validation``.

        Without ``validation``, ``train.validation`` (default 5%) of the training ratings are
        carved off at random (seeded) for model selection and early stopping; they return to
        the inputs once training ends, so predictions use every training rating.
        """
        params, train_cfg, run = self.resolved()
        matrix = train if isinstance(train, RatingMatrix) else RatingMatrix.from_ratings(train)
        if matrix.nnz == 0:
            raise DataError("the training data has no ratings", fix="check the training file")
        if validation is not None:
            val_matrix = validation if isinstance(validation, RatingMatrix) else RatingMatrix.from_ratings(
                validation, users=matrix.users, items=matrix.items, unknown="drop"
            )
            fit_matrix = matrix
        elif train_cfg.validation > 0 and matrix.nnz >= 20:
            rng = np.random.default_rng(run.seed)
            fit_matrix, val_matrix = matrix.split_cells(rng.random(matrix.nnz) < train_cfg.validation)
        else:
            fit_matrix, val_matrix = matrix, None

        self.users_, self.items_, self.scale_ = matrix.users, matrix.items, matrix.scale
        self.orientation_ = params.orientation
        self.loss_ = params.loss if params.loss != "auto" else ("bce" if matrix.scale.is_binary else "mse")
        self.item_info_ = matrix.item_info
        self.fingerprint_ = matrix.fingerprint()
        self.device_ = resolve_device(run.device)
        if run.threads > 0:
            torch.set_num_threads(run.threads)

        seed_everything(run.seed)
        rows = fit_matrix.rows(params.orientation)
        net = get_family(self.config.kind).build(params, rows.shape[1])
        validate = None
        if val_matrix is not None and val_matrix.nnz:
            # Selection uses the fit part only: the validation cells are never inputs here.
            val_bias = BiasModel().fit(fit_matrix.csr)
            val_users, val_items, val_true = _cells(val_matrix.csr)
            validate = self._validator(rows, fit_matrix, val_bias, val_users, val_items, val_true)
        trainer = Trainer(
            train_cfg, seed=run.seed, device=self.device_, progress=progress,
            checkpoint_dir=checkpoint_dir, callbacks=callbacks,
        )
        result: TrainResult = trainer.fit(
            net, rows, loss=self.loss_, l2=params.l2, code_l1=params.code_l1, validate=validate, resume=resume
        )
        self.net_ = net.eval()
        self.train_result_ = result
        self.history_ = result.history
        self._set_data(matrix)
        return self

    def _validator(self, rows, fit_matrix, bias, users, items, truth):
        counts_u, counts_i = fit_matrix.user_counts(), fit_matrix.item_counts()
        known = (counts_u[users] > 0) & (counts_i[items] > 0)
        r, c = (users, items) if self.orientation_ == "user" else (items, users)
        fallback = bias.predict(users[~known], items[~known])

        def validate(net) -> float:
            pred = np.empty(len(truth), dtype=np.float32)
            pred[known] = self._cells_from_net(net, rows, r[known], c[known])
            pred[~known] = fallback
            pred = np.clip(pred, self.scale_.low, self.scale_.high)
            return float(np.sqrt(np.mean((pred - truth) ** 2)))

        return validate

    def _set_data(self, matrix: RatingMatrix) -> None:
        """Remember the training matrix: it is the input at prediction time."""
        self.train_csr_ = matrix.csr
        self.rows_ = matrix.rows(self.orientation_)
        self.user_counts_ = matrix.user_counts()
        self.item_counts_ = matrix.item_counts()
        self.bias_ = BiasModel().fit(matrix.csr)
        self._hidden_cache: torch.Tensor | None = None

    # ------------------------------------------------------------------ network read-outs
    def _output(self, values: torch.Tensor) -> torch.Tensor:
        """Network output -> rating scale (sigmoid for binary cross-entropy logits)."""
        return torch.sigmoid(values) if self.loss_ == "bce" else values

    def _hidden(self, net, rows: sp.csr_array, index: np.ndarray) -> torch.Tensor:
        """Penultimate activations ``(len(index), h)`` of some rows' training vectors."""
        parts = []
        for s in range(0, len(index), ROW_CHUNK):
            x, mask = dense_rows(rows, index[s : s + ROW_CHUNK], device=self.device_)
            parts.append(net.penultimate(net.encode(x)))
        return torch.cat(parts) if parts else torch.empty(0, device=self.device_)

    @torch.no_grad()
    def _cells_from_net(self, net, rows: sp.csr_array, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Raw predictions at cells (row r, column c) of the network's orientation."""
        if len(r) == 0:
            return np.empty(0, dtype=np.float32)
        uniq, inverse = np.unique(r, return_inverse=True)
        weight, bias = net.output_layer()
        out = np.empty(len(r), dtype=np.float32)
        cols = torch.from_numpy(c.astype(np.int64)).to(self.device_)
        inv = torch.from_numpy(inverse.astype(np.int64)).to(self.device_)
        for s in range(0, len(uniq), ROW_CHUNK):
            h = self._hidden(net, rows, uniq[s : s + ROW_CHUNK])  # (chunk, h)
            sel = torch.nonzero((inv >= s) & (inv < s + ROW_CHUNK)).squeeze(1)
            hh = h[inv[sel] - s]  # (cells, h)
            vals = (hh * weight[cols[sel]]).sum(-1) + bias[cols[sel]]
            out[sel.cpu().numpy()] = self._output(net.output_act(vals)).float().cpu().numpy()
        return out

    def _all_hidden(self) -> torch.Tensor:
        """Penultimate activations of every row (cached; ``(n_rows, h)``)."""
        if self._hidden_cache is None:
            with torch.no_grad():
                self._hidden_cache = self._hidden(self.net_, self.rows_, np.arange(self.rows_.shape[0]))
        return self._hidden_cache

    # ------------------------------------------------------------------ predict
    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings for (user, item) label pairs, clipped to the scale."""
        return self.predict_pairs(users, items).values

    def predict_pairs(self, users: Any, items: Any) -> Predictions:
        """Predictions plus which pairs used the bias fallback (unknown or unrated user/item)."""
        self._require_fitted()
        u = self.users_.index(np.atleast_1d(np.asarray(users, dtype=object)), unknown="missing")
        i = self.items_.index(np.atleast_1d(np.asarray(items, dtype=object)), unknown="missing")
        if len(u) != len(i):
            raise DataError("users and items must have the same length", value=(len(u), len(i)))
        return self.predict_indices(u, i)

    def predict_indices(self, u: np.ndarray, i: np.ndarray) -> Predictions:
        """As :meth:`predict_pairs` for vocabulary indices (-1 = unknown)."""
        self._require_fitted()
        u, i = np.asarray(u, dtype=np.int64), np.asarray(i, dtype=np.int64)
        known = (u >= 0) & (i >= 0)
        known[known] = (self.user_counts_[u[known]] > 0) & (self.item_counts_[i[known]] > 0)
        values = self.bias_.predict(u, i)
        r, c = (u, i) if self.orientation_ == "user" else (i, u)
        values[known] = self._cells_from_net(self.net_, self.rows_, r[known], c[known])
        return Predictions(np.clip(values, self.scale_.low, self.scale_.high).astype(np.float32), ~known)

    # ------------------------------------------------------------------ recommend
    def _scores_known(self, user_index: int) -> np.ndarray:
        """Scores of every item for a known user, ``(n_items,)``."""
        weight, bias = self.net_.output_layer()
        hidden = self._all_hidden()
        with torch.no_grad():
            if self.orientation_ == "user":
                raw = hidden[user_index] @ weight.T + bias  # (n_items,)
            else:
                raw = hidden @ weight[user_index] + bias[user_index]  # (n_items,)
            return self._output(self.net_.output_act(raw)).float().cpu().numpy()

    def _top(self, scores: np.ndarray, exclude: np.ndarray, n: int) -> pd.DataFrame:
        scores = scores.astype(np.float64).copy()
        scores[self.item_counts_ == 0] = -np.inf  # nothing is known about never-rated items
        scores[exclude] = -np.inf
        n = min(n, int(np.isfinite(scores).sum()))
        top = np.argpartition(-scores, n - 1)[:n] if n > 0 else np.empty(0, dtype=np.int64)
        top = top[np.argsort(-scores[top], kind="stable")]
        frame = pd.DataFrame({"item": self.items_.label(top), "score": np.clip(scores[top], self.scale_.low, self.scale_.high)})
        if self.item_info_ is not None and len(frame):
            info = self.item_info_.reindex(frame["item"].to_numpy())
            for col in ("title", "genres"):
                if col in info.columns:
                    frame[col] = info[col].to_numpy()
        return frame

    def recommend(self, user: Any, n: int = 10, *, exclude_rated: bool = True) -> pd.DataFrame:
        """Top-``n`` items for a known user (columns item, score[, title, genres]).

        Items the user rated in training are left out unless ``exclude_rated=False``; so are
        items nobody rated. An unknown user is a :class:`DataError` (use :meth:`recommend_new`).
        """
        self._require_fitted()
        _check_n(n)
        u = int(self.users_.index([user])[0])
        rated = self.train_csr_.indices[self.train_csr_.indptr[u] : self.train_csr_.indptr[u + 1]]
        exclude = np.zeros(len(self.items_), dtype=bool)
        if exclude_rated:
            exclude[rated] = True
        if self.user_counts_[u] == 0:
            scores = self.bias_.predict(np.full(len(self.items_), u), np.arange(len(self.items_)))
        else:
            scores = self._scores_known(u)
        return self._top(scores, exclude, n)

    def recommend_new(self, ratings: Mapping[Any, float], n: int = 10, *, ridge: float = 10.0) -> pd.DataFrame:
        """Top-``n`` items for a brand-new user from a few ``{item: rating}`` (no retraining).

        User-row models encode the new rating vector directly. Item-row models (I-AutoRec)
        have no input for a new user, so the user's output weights are fitted in closed form
        (ridge regression toward the average user, strength ``ridge``) against the items'
        fixed hidden codes: the same fold-in ALS uses. Unknown items are ignored with a warning.
        """
        self._require_fitted()
        _check_n(n)
        idx, values = self._new_user_vector(ratings)
        exclude = np.zeros(len(self.items_), dtype=bool)
        exclude[idx] = True
        if len(idx) == 0:
            scores = self.bias_.predict(np.full(len(self.items_), -1), np.arange(len(self.items_)))
        elif self.orientation_ == "user":
            scores = self._encode_new_user(idx, values)
        else:
            scores = self._fold_in_item_based(idx, values, ridge)
        return self._top(scores, exclude, n)

    def _new_user_vector(self, ratings: Mapping[Any, float]) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(ratings, Mapping):
            raise DataError("ratings of a new user must be a mapping {item: rating}", value=type(ratings).__name__)
        labels = list(ratings.keys())
        values = np.asarray([float(v) for v in ratings.values()], dtype=np.float32)
        if not np.all(np.isfinite(values)):
            raise DataError("a new user's ratings must be finite numbers", value=dict(ratings))
        off = self.scale_.outside(values)
        if off.any():
            k = int(np.flatnonzero(off)[0])
            raise DataError(f"rating outside the scale {self.scale_}", value={labels[k]: float(values[k])}, fix="use ratings on the model's scale")
        idx = self.items_.index(labels, unknown="missing") if labels else np.empty(0, dtype=np.int64)
        if (idx < 0).any():
            unknown = [labels[k] for k in np.flatnonzero(idx < 0)]
            warnings.warn(f"ignoring {len(unknown)} item(s) the model does not know: {unknown[:5]}", stacklevel=3)
        keep = idx >= 0
        return idx[keep], values[keep]

    @torch.no_grad()
    def _encode_new_user(self, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        csr = sp.csr_array((values, idx.astype(np.int32), np.array([0, len(idx)])), shape=(1, len(self.items_)))
        csr.sort_indices()
        x, mask = dense_rows(csr, np.array([0]), device=self.device_)
        return self._output(self.net_(x, mask)).squeeze(0).float().cpu().numpy()

    @torch.no_grad()
    def _fold_in_item_based(self, idx: np.ndarray, values: np.ndarray, ridge: float) -> np.ndarray:
        weight, bias = self.net_.output_layer()  # (n_users, h), (n_users,)
        hidden = self._all_hidden().double()  # (n_items, h)
        active = torch.from_numpy(self.user_counts_ > 0).to(weight.device)
        w_bar = torch.cat([weight[active].mean(0), bias[active].mean().reshape(1)]).double()  # (h + 1,)
        target = torch.from_numpy(values).to(hidden.device).double()
        if self.loss_ == "bce":
            target = torch.logit(0.15 + 0.7 * target)  # 0/1 -> confident logits
        a = torch.cat([hidden[idx], torch.ones(len(idx), 1, dtype=hidden.dtype, device=hidden.device)], dim=1)
        # argmin ||a w - t||^2 + ridge ||w - w_bar||^2  =>  (a'a + ridge I) w = a't + ridge w_bar
        lhs = a.T @ a + ridge * torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
        w = torch.linalg.solve(lhs, a.T @ target + ridge * w_bar)
        raw = hidden @ w[:-1] + w[-1]
        return self._output(self.net_.output_act(raw.float())).cpu().numpy()

    # ------------------------------------------------------------------ save / load
    def save(self, directory: str | Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """Write the model directory (DESIGN §3) atomically."""
        self._require_fitted()
        params, train_cfg, run = self.resolved()
        tensors = {f"net.{k}": v for k, v in self.net_.state_dict().items()}
        csr = self.train_csr_
        tensors.update({
            "data.indptr": torch.from_numpy(csr.indptr.astype(np.int64)),
            "data.indices": torch.from_numpy(csr.indices.astype(np.int64)),
            "data.values": torch.from_numpy(csr.data.astype(np.float32)),
        })
        tensors.update({f"bias.{k}": torch.from_numpy(v) for k, v in self.bias_.arrays().items()})
        meta = {
            "aerec_version": aerec.__version__,
            "kind": self.config.kind,
            "model": dataclasses.asdict(params),
            "preset": self.config.model.get("preset"),
            "train": dataclasses.asdict(train_cfg),
            "run": dataclasses.asdict(run),
            "orientation": self.orientation_,
            "loss": self.loss_,
            "n_inputs": int(self.rows_.shape[1]),
            "scale": self.scale_.to_dict(),
            "users": self.users_.to_list(),
            "items": self.items_.to_list(),
            "fingerprint": self.fingerprint_,
            "best_epoch": self.train_result_.best_epoch if hasattr(self, "train_result_") else None,
            "item_info": _item_info_to_json(self.item_info_, self.items_),
        }
        extras = {"history.csv": self.history_frame().to_csv(index=False), "config.toml": self._resolved_toml()}
        extras["metrics.json"] = _json(metrics or {})
        writers = {}
        if self.history_:
            from aerec.plots import plot_history

            writers["curves.png"] = lambda path: plot_history(self.history_frame(), path, title=f"aerec {self.config.kind}")
        return write_model_dir(directory, tensors, meta, extras, writers)

    def _resolved_toml(self) -> str:
        params, train_cfg, run = self.resolved()
        model = {"kind": self.config.kind, **dataclasses.asdict(params)}
        return Config(model=model, train=dataclasses.asdict(train_cfg), run=dataclasses.asdict(run)).to_toml()

    @classmethod
    def load(cls, directory: str | Path) -> Recommender:
        """Load a model directory written by :meth:`save` (safetensors + JSON only)."""
        tensors, meta = read_model_dir(directory)
        try:
            model_params = dict(meta["model"])
            config = Config(model={"kind": meta["kind"], **model_params}, train=meta["train"], run=meta["run"])
            self = cls(config=config)
            params, _, run = self.resolved()
            self.users_ = Vocabulary.from_list(meta["users"], name="user")
            self.items_ = Vocabulary.from_list(meta["items"], name="item")
            self.scale_ = RatingScale.from_dict(meta["scale"])
            self.orientation_ = meta["orientation"]
            self.loss_ = meta["loss"]
            self.fingerprint_ = meta["fingerprint"]
            self.item_info_ = _item_info_from_json(meta.get("item_info"))
            self.device_ = torch.device("cpu") if run.device == "auto" and not torch.cuda.is_available() else resolve_device(
                "cpu" if run.device == "cuda" and not torch.cuda.is_available() else run.device
            )
            net = get_family(meta["kind"]).build(params, int(meta["n_inputs"]))
            net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
            self.net_ = net.to(self.device_).eval()
            csr = sp.csr_array(
                (tensors["data.values"].numpy(), tensors["data.indices"].numpy(), tensors["data.indptr"].numpy()),
                shape=(len(self.users_), len(self.items_)),
            )
            csr.has_sorted_indices = True
            matrix = RatingMatrix(csr, self.users_, self.items_, self.scale_, item_info=self.item_info_)
            self._set_data(matrix)
            self.bias_ = BiasModel.from_arrays({k[5:]: v.numpy() for k, v in tensors.items() if k.startswith("bias.")})
            history = Path(directory) / "history.csv"
            self.history_ = _read_history(history)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{directory}: model.json and model.safetensors do not fit together ({exc}); retrain the model") from None
        return self

    def history_frame(self) -> pd.DataFrame:
        """Per-epoch history (epoch, loss, train_rmse, val_rmse, lr, seconds)."""
        return pd.DataFrame([dataclasses.asdict(r) for r in getattr(self, "history_", [])],
                            columns=["epoch", "loss", "train_rmse", "val_rmse", "lr", "seconds"])


def _cells(csr: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    users = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
    return users, csr.indices.astype(np.int64), csr.data.astype(np.float32)


def _check_n(n: int) -> None:
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DataError("the number of recommendations must be a positive whole number", value=n)


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=1, default=float)


def _item_info_to_json(info: pd.DataFrame | None, items: Vocabulary) -> dict[str, list] | None:
    if info is None or len(info) == 0:
        return None
    sub = info.reindex(items.labels)
    out: dict[str, list] = {}
    for col in ("title", "genres"):
        if col in sub.columns:
            out[col] = [None if (isinstance(v, float) and math.isnan(v)) or v is None else str(v) for v in sub[col].tolist()]
    out["item"] = items.to_list()
    return out


def _item_info_from_json(data: dict[str, list] | None) -> pd.DataFrame | None:
    if not data:
        return None
    frame = pd.DataFrame({k: v for k, v in data.items() if k != "item"}, index=pd.Index(data["item"]))
    return frame


def _read_history(path: Path) -> list[EpochRecord]:
    if not path.is_file():
        return []
    try:
        frame = pd.read_csv(io.StringIO(path.read_text(encoding="utf-8")))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
        return []
    records = []
    for row in frame.to_dict("records"):
        row = {k: (None if isinstance(v, float) and math.isnan(v) and k == "val_rmse" else v) for k, v in row.items()}
        records.append(EpochRecord(**row))
    return records
