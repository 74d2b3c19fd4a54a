"""The explicit-rating model families: what each builds, its defaults, and where it comes from.

Each family is a hyper-parameter dataclass plus a :class:`~aerec.models.family.Family` record
(feedback ``"explicit"``) saying how to build its network, which rows it reads (users or items), its default training settings (chosen by a
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

Look families up through :mod:`aerec.registry`, which also knows the implicit ones.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aerec.errors import ConfigError
from aerec.models.family import CHECKPOINT_BUDGET, Family

if TYPE_CHECKING:
    from torch import nn

__all__ = ["CHECKPOINT_BUDGET", "DEFAULT_EXPLICIT", "FAMILIES", "AutoencoderParams", "Family", "split_hidden"]


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
    ``kernel_dim`` > 0 gates every weight by a learned kernel of points in that many
    dimensions, penalised by ``kernel_l2 * ||K||^2`` (GLocal-K's local kernel,
    :mod:`aerec.models.kernel`).
    ``members`` (empty: one network) makes the model an ensemble of the named networks
    (:data:`aerec.models.members.MEMBERS`) blended by weights fitted on validation ratings
    (:mod:`aerec.ensemble`); the ``accurate`` preset of ``autorec`` sets it. ``bags`` > 1 fits
    such an ensemble that many times, each with its own validation carve and seeds, and
    averages them (bagging; about ``bags`` times the time).
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
    kernel_dim: int = 0
    kernel_l2: float = 0.0
    members: list[str] = field(default_factory=list)
    bags: int = 1

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
        if self.kernel_dim < 0 or not self.kernel_l2 >= 0:
            raise ConfigError(f"model.kernel_dim and model.kernel_l2 must be >= 0; got {self.kernel_dim}, {self.kernel_l2}")
        if self.kernel_dim and self.tied:
            raise ConfigError("model.kernel_dim (kernelised weights) needs an untied decoder: set model.tied = false")
        if self.loss not in ("auto", "mse", "bce"):
            raise ConfigError(f"model.loss must be auto, mse or bce; got {self.loss!r}")
        self._check_members()

    def _check_members(self) -> None:
        from aerec.models.members import MEMBERS, member_names

        if isinstance(self.members, str):
            self.members = [self.members]
        if not isinstance(self.members, (list, tuple)) or any(m not in MEMBERS for m in self.members):
            raise ConfigError(f"model.members must list network names out of {member_names()}; got {self.members!r}")
        self.members = list(self.members)
        if isinstance(self.bags, bool) or not isinstance(self.bags, int) or self.bags < 1:
            raise ConfigError(f"model.bags must be a whole number >= 1; got {self.bags!r}")
        if self.bags > 1 and not self.members:
            raise ConfigError("model.bags averages fits of an ensemble: set model.members too, or use "
                              "--preset accurate (--set model.bags=3)")

    def build(self, n_inputs: int) -> nn.Module:
        from aerec.models.autoencoder import Autoencoder  # torch: only when a network is built

        encoder, decoder = split_hidden(self.hidden)
        network, kernel = Autoencoder, {}
        if self.kernel_dim:
            from aerec.models.kernel import KernelAutoencoder

            network, kernel = KernelAutoencoder, {"kernel_dim": self.kernel_dim, "kernel_l2": self.kernel_l2, "l2": self.l2}
        return network(
            n_inputs,
            encoder,
            decoder,
            **kernel,
            activation=self.activation,
            output_activation=self.output_activation,
            code_dropout=self.code_dropout,
            input_dropout=self.input_dropout,
            input_noise=self.input_noise,
            tied=self.tied,
            mask_input=self.mask_input,
            baseline=self.baseline,
        )


ACCURATE_MEMBERS = ("i-autorec", "u-autorec", "i-kernel", "i-dae")
"""The networks of the ``accurate`` preset (see :mod:`aerec.models.members` for why these)."""

FAMILIES: dict[str, Family] = {}
"""The rating-model families by kind (:mod:`aerec.registry` holds these and the top-N ones)."""


def _register(family: Family) -> Family:
    FAMILIES[family.kind] = family
    return family


_register(
    Family(
        kind="sae",
        feedback="explicit",
        params_cls=AutoencoderParams,
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
        feedback="explicit",
        params_cls=AutoencoderParams,
        summary="I-AutoRec / U-AutoRec: 500 sigmoid units, identity decoder, L2",
        source="Sedhain, Menon, Sanner, Xie. AutoRec: Autoencoders Meet Collaborative Filtering. WWW 2015",
        params={"hidden": [500], "activation": "sigmoid", "orientation": "item", "l2": 100.0, "baseline": True},
        # Chosen on a validation carve of ML-100K u1.base (docs/benchmarks.md): L-BFGS on the whole
        # matrix, 5 iterations an "epoch" so early stopping can pick a fine point; then a refit on
        # all the training ratings (better on held-out training ratings, 3 of 3 carvings). Patience
        # 4 epochs (6 until 2026-12): I- and U-AutoRec's validation curves rise cleanly after their
        # best epoch, and 4 picked the same one as 6 on all 30 curves of u1..u5 and ten synthetic
        # shapes (3 did not, once), two epochs sooner (docs/benchmarks.md, "Command speed").
        # The refit continues the selection run's best weights for a third of their epochs
        # (2026-12-07): as accurate on held-out training ratings as a fresh network, a third of the
        # time (docs/training.md, "The refit"); so do the L-BFGS members of the ensembles (2026-12-08).
        train={"optimizer": "lbfgs", "batch_size": 0, "lbfgs_iterations": 5, "epochs": 40, "patience": 4, "lr": 1.0,
               "refit": True, "refit_start": "selected"},
        presets={
            "i-autorec": {"model": {"orientation": "item"}},
            "u-autorec": {"model": {"orientation": "user"}},
            # An ensemble blended on validation ratings, fitted three times on their own carves and
            # averaged (bagging: 0.0010 lower on outer validation of ML-100K u1..u5.base than one
            # fit); about 27 times the default's training time (docs/models.md, "The accurate preset").
            "accurate": {"model": {"members": list(ACCURATE_MEMBERS), "bags": 3}},
            # I- and U-AutoRec blended on validation: what aerec train uses by default where items
            # have few ratings each (aerec.workflows.default_preset), about twice the time.
            "blend": {"model": {"members": ["i-autorec", "u-autorec"]}},
        },
    )
)

_register(
    Family(
        kind="deep",
        feedback="explicit",
        params_cls=AutoencoderParams,
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
        feedback="explicit",
        params_cls=AutoencoderParams,
        summary="denoising autoencoder: input dropout (or Gaussian noise) on observed ratings",
        source="Vincent et al. 2008, Extracting and composing robust features with denoising autoencoders; Keras autoencoder catalogue",
        params={"hidden": [500], "activation": "sigmoid", "orientation": "item", "l2": 30.0, "input_dropout": 0.2},
        train={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 100, "patience": 10},
    )
)

_register(
    Family(
        kind="sparse",
        feedback="explicit",
        params_cls=AutoencoderParams,
        summary="sparse autoencoder: L1 activity penalty on the code",
        source="Ng, Sparse autoencoder (CS294A notes, 2011); Keras autoencoder catalogue (activity_regularizer)",
        params={"hidden": [500], "activation": "sigmoid", "orientation": "item", "l2": 100.0, "code_l1": 1e-3},
        train={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 100, "patience": 10},
    )
)


DEFAULT_EXPLICIT = "autorec"


def params_dict(params: Any) -> dict[str, Any]:
    return dataclasses.asdict(params)
