"""The explicit-rating model families: what each builds, its defaults, and where it comes from.

Each family is a hyper-parameter dataclass plus a :class:`Family` record saying how to build
its network, which rows it reads (users or items), its default training settings (chosen by a
validation-only search, see docs/benchmarks.md) and its presets.

* ``sae``     - the course's stacked autoencoder: n-20-10-20-n, sigmoid (SuperDataScience
                "Deep Learning A-Z", AutoEncoders part; the classic MovieLens tutorial).
* ``autorec`` - I-AutoRec / U-AutoRec: one hidden layer of 500, sigmoid encoder, identity
                decoder, L2 on the weights (Sedhain et al., "AutoRec: Autoencoders Meet
                Collaborative Filtering", WWW 2015).
* ``deep``    - deep autoencoder: SELU, large dropout on the code, dense re-feeding, optional
                tied decoder (Kuchaiev & Ginsburg, "Training Deep AutoEncoders for
                Collaborative Filtering", 2017; NVIDIA/DeepRecommender).
* ``dae``     - denoising autoencoder: input dropout or Gaussian noise (Vincent et al. 2008;
                Keras blog "Building Autoencoders in Keras").
* ``sparse``  - sparse autoencoder: L1 activity penalty on the code (same Keras catalogue).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from aerec.config import Config, RunConfig, TrainConfig, build_train_config, check_fields, coerce_value
from aerec.errors import ConfigError, TrainingError
from aerec.models.autoencoder import Autoencoder

__all__ = ["Family", "FAMILIES", "DEFAULT_EXPLICIT", "default_kind", "get_family", "split_hidden"]


# Every model's checkpoints take at most 5 % of its training time (train.checkpoint_budget):
# the default model's L-BFGS state makes a checkpoint of ML-100K 160 MB, 0.3-0.4 s to write,
# checksum and fsync, about as long as an epoch (docs/training.md, "Checkpoints").
CHECKPOINT_BUDGET = 0.05


def split_hidden(hidden: list[int]) -> tuple[list[int], list[int]]:
    """Split symmetric hidden sizes at the code (the first narrowest layer).

    ``[20, 10, 20] -> ([20, 10], [20])``; ``[500] -> ([500], [])``.
    """
    k = hidden.index(min(hidden))
    return hidden[: k + 1], hidden[k + 1 :]


@dataclass
class AutoencoderParams:
    """Hyper-parameters shared by the fully connected families.

    ``hidden`` lists every hidden layer, code included (``[20, 10, 20]``); ``orientation``
    says whether rows are users (the network reads a user's ratings of all items) or items.
    ``l2`` is AutoRec's lambda in the form ``SSE + l2 * ||W||^2`` (the paper writes
    ``SSE + lambda/2 * ||W||^2``, so ``l2 = lambda / 2``); it is in summed-error units, so its
    size does not depend on batch size. ``code_l1`` is the sparse family's activity penalty
    (per observed rating). ``loss`` is ``auto`` (MSE, or binary cross-entropy on 0/1 data).
    """

    hidden: list[int] = field(default_factory=lambda: [500])
    activation: str = "sigmoid"
    output_activation: str = "identity"
    orientation: str = "item"
    l2: float = 0.0
    code_dropout: float = 0.0
    input_dropout: float = 0.0
    input_noise: float = 0.0
    code_l1: float = 0.0
    tied: bool = False
    mask_input: bool = False
    baseline: bool = False
    loss: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.hidden, int):
            self.hidden = [self.hidden]
        self.hidden = [int(h) for h in self.hidden]
        if not self.hidden or min(self.hidden) < 1:
            raise ConfigError(f"model.hidden must list positive layer sizes; got {self.hidden}")
        if self.orientation not in ("user", "item"):
            raise ConfigError(f"model.orientation must be 'user' or 'item'; got {self.orientation!r}")
        if self.l2 < 0 or self.code_l1 < 0:
            raise ConfigError(f"model.l2 and model.code_l1 must be >= 0; got {self.l2}, {self.code_l1}")
        if self.loss not in ("auto", "mse", "bce"):
            raise ConfigError(f"model.loss must be auto, mse or bce; got {self.loss!r}")

    def build(self, n_inputs: int) -> nn.Module:
        encoder, decoder = split_hidden(self.hidden)
        return Autoencoder(
            n_inputs,
            encoder,
            decoder,
            activation=self.activation,
            output_activation=self.output_activation,
            code_dropout=self.code_dropout,
            input_dropout=self.input_dropout,
            input_noise=self.input_noise,
            tied=self.tied,
            mask_input=self.mask_input,
            baseline=self.baseline,
        )


@dataclass(frozen=True)
class Family:
    """A model family: its name, parameter defaults, training defaults, presets and source."""

    kind: str
    summary: str
    source: str
    params: dict[str, Any]
    train: dict[str, Any]
    presets: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    params_cls: type = AutoencoderParams
    builder: Callable[[Any, int], nn.Module] | None = None

    def resolve_params(self, values: dict[str, Any]) -> Any:
        """Family defaults, then the preset's, then ``values`` -> a checked params object."""
        values = dict(values)
        values.pop("kind", None)
        preset = values.pop("preset", None)
        merged = dict(self.params)
        if preset is not None:
            merged.update(self.preset(preset).get("model", {}))
        check_fields(self.params_cls, values, f"model ({self.kind})")
        # User values get the same type checks as [train] ones ("model.l2 must be a number").
        defaults = self.params_cls()
        merged.update({k: coerce_value(v, getattr(defaults, k), f"model.{k}") for k, v in values.items()})
        try:
            return self.params_cls(**merged)
        except ConfigError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: hidden = [inf]
            raise ConfigError(f"model ({self.kind}): a setting has the wrong type or value ({exc}); got {values}") from None

    def resolve(self, config: Config) -> tuple[Any, TrainConfig, RunConfig]:
        """``config``'s (model params, TrainConfig, RunConfig) after this family's defaults and preset."""
        params = self.resolve_params(config.model)
        train = build_train_config(self.resolve_train(config.model.get("preset"), config.train))
        return params, train, config.resolve_run()

    def resolve_train(self, preset: str | None, values: dict[str, Any]) -> dict[str, Any]:
        merged = {"checkpoint_budget": CHECKPOINT_BUDGET, **self.train}
        if preset is not None:
            merged.update(self.preset(preset).get("train", {}))
        merged.update(values)
        return merged

    def preset(self, name: str) -> dict[str, dict[str, Any]]:
        if not isinstance(name, str) or name not in self.presets:  # a TOML list or table is no name
            known = ", ".join(sorted(self.presets)) or "none"
            raise ConfigError(f"model {self.kind!r} has no preset {name!r}; its presets: {known}")
        return self.presets[name]

    def build(self, params: Any, n_inputs: int) -> nn.Module:
        try:
            return (self.builder or type(params).build)(params, n_inputs)
        except (RuntimeError, MemoryError, OverflowError, TypeError) as exc:
            # torch's answers to model.hidden = [10**12] (cannot allocate) or [2**63] (overflow).
            text = str(exc)
            if "allocate" not in text and "Overflow" not in text and not isinstance(exc, MemoryError):
                raise
            sizes = getattr(params, "hidden", "?")
            raise TrainingError(
                f"a {self.kind} network with {n_inputs} inputs and hidden layers {sizes} does not fit in memory "
                f"({text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__}); use smaller model.hidden"
            ) from None


FAMILIES: dict[str, Family] = {}


def _register(family: Family) -> Family:
    FAMILIES[family.kind] = family
    return family


_register(
    Family(
        kind="sae",
        summary="the course's stacked autoencoder, n-20-10-20-n, sigmoid",
        source="SuperDataScience, Deep Learning A-Z: AutoEncoders (the MovieLens stacked AE tutorial)",
        params={"hidden": [20, 10, 20], "activation": "sigmoid", "orientation": "user"},
        train={"optimizer": "rmsprop", "lr": 0.01, "weight_decay": 0.0, "batch_size": 32, "epochs": 200, "patience": 20},
        presets={
            # The course: one user per update, RMSprop lr 0.01, weight decay 0.5, 200 epochs,
            # nn.MSELoss over the whole vector (blanks set to 0 count in the mean), no validation,
            # users in index order, and no optimizer.zero_grad() (gradients accumulate).
            "course": {
                "model": {"hidden": [20, 10, 20], "activation": "sigmoid", "orientation": "user"},
                "train": {
                    "optimizer": "rmsprop", "lr": 0.01, "weight_decay": 0.5, "batch_size": 1, "epochs": 200,
                    "loss_normalization": "all", "validation": 0.0, "shuffle": False, "accumulate_gradients": True,
                },
            }
        },
    )
)

_register(
    Family(
        kind="autorec",
        summary="I-AutoRec / U-AutoRec: 500 sigmoid units, identity decoder, L2",
        source="Sedhain, Menon, Sanner, Xie. AutoRec: Autoencoders Meet Collaborative Filtering. WWW 2015",
        params={"hidden": [500], "activation": "sigmoid", "orientation": "item", "l2": 100.0, "baseline": True},
        # Chosen on a validation carve of ML-100K u1.base (docs/benchmarks.md): L-BFGS on the whole
        # matrix, 5 iterations an "epoch" so early stopping can pick a fine point, patience 6; then
        # a refit on all the training ratings (better on held-out training ratings, 3 of 3 carvings).
        train={"optimizer": "lbfgs", "batch_size": 0, "lbfgs_iterations": 5, "epochs": 40, "patience": 6, "lr": 1.0,
               "refit": True},
        presets={
            "i-autorec": {"model": {"orientation": "item"}},
            "u-autorec": {"model": {"orientation": "user"}},
        },
    )
)

_register(
    Family(
        kind="deep",
        summary="deep autoencoder: SELU, dropout on the code, dense re-feeding",
        source="Kuchaiev & Ginsburg. Training Deep AutoEncoders for Collaborative Filtering. arXiv:1708.01715 (2017)",
        params={
            "hidden": [512, 512, 1024, 512, 512], "activation": "selu", "output_activation": "selu",
            "orientation": "user", "code_dropout": 0.8,
        },
        train={"optimizer": "momentum", "lr": 0.001, "momentum": 0.9, "batch_size": 128, "epochs": 100, "dense_refeeding": 1},
    )
)

_register(
    Family(
        kind="dae",
        summary="denoising autoencoder: input dropout (or Gaussian noise) on observed ratings",
        source="Vincent et al. 2008, Extracting and composing robust features with denoising autoencoders; Keras autoencoder catalogue",
        params={"hidden": [500], "activation": "sigmoid", "orientation": "item", "l2": 30.0, "input_dropout": 0.2},
        train={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 100, "patience": 10},
    )
)

_register(
    Family(
        kind="sparse",
        summary="sparse autoencoder: L1 activity penalty on the code",
        source="Ng, Sparse autoencoder (CS294A notes, 2011); Keras autoencoder catalogue (activity_regularizer)",
        params={"hidden": [500], "activation": "sigmoid", "orientation": "item", "l2": 100.0, "code_l1": 1e-3},
        train={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 100, "patience": 10},
    )
)


DEFAULT_EXPLICIT = "autorec"


def default_kind(*, implicit: bool) -> str | None:
    """The family ``aerec train`` uses without ``--model``: the strongest default
    for the data's kind. ``None`` when there is no default for that kind (yet)."""
    if implicit:
        from aerec.implicit.families import DEFAULT_IMPLICIT  # the implicit families build on this module

        return DEFAULT_IMPLICIT
    return DEFAULT_EXPLICIT


def get_family(kind: str) -> Family:
    if kind not in FAMILIES:
        from aerec.implicit.families import IMPLICIT_FAMILIES  # it imports this module: not at the top

        if kind in IMPLICIT_FAMILIES:
            raise ConfigError(f"{kind!r} is a top-N model for implicit feedback, not a rating model: use "
                              "ImplicitRecommender (on the command line: aerec train --implicit --model "
                              f"{kind})")
        raise ConfigError(f"unknown model {kind!r}; rating models: {', '.join(sorted(FAMILIES))}; top-N models "
                          f"(--implicit): {', '.join(sorted(IMPLICIT_FAMILIES))}")
    return FAMILIES[kind]


def params_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)
