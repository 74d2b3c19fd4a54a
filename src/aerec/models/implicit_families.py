"""The implicit-feedback model families: hyper-parameters, defaults and sources.

======================  =================================================================
``multvae``             Mult-VAE^PR (Liang et al., WWW 2018): multinomial likelihood, KL
                        annealed over total updates, capped; by default no hidden layer
                        (n-300-n, the paper's n-600-200-600-n is the ``paper`` preset).
``multdae``             Mult-DAE (same paper): the same network without the Gaussian code
                        (by default n-300-n: one tanh layer, the code).
``cdae``                CDAE (Wu et al., WSDM 2016): one sigmoid layer plus a user node,
                        logistic loss on every item (or on sampled negatives).
``recvae``              RecVAE (Shenbin et al., WSDM 2020): dense 5-layer encoder, linear
                        decoder, composite prior, per-user KL weight, alternating updates.
``ease``                EASE^R (Steck, WWW 2019): the closed-form linear autoencoder
                        ``B = I - P diag(1/diag(P))``, ``P = (X'X + l2 I)^-1``
                        (solved in :mod:`aerec.models.ease`).
``popularity``          the most-liked items, for every user alike (a reference).
======================  =================================================================

Defaults were chosen on validation users of ML-100K (ratings >= 4) by
``benchmarks/implicit_topn.py --tune``; the papers' settings are the ``paper`` presets. See
docs/benchmarks.md, "Implicit top-N: strong generalization".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from aerec.errors import ConfigError
from aerec.models.family import Family

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "DEFAULT_IMPLICIT",
    "IMPLICIT_FAMILIES",
    "CDAEParams",
    "EASEParams",
    "MultParams",
    "PopularityParams",
    "RecVAEParams",
    "NEURAL",
    "default_implicit_kind",
]


@dataclass
class MultParams:
    """Mult-DAE / Mult-VAE: encoder sizes up to the code, input dropout, activation, weight L2.

    ``anneal_cap`` and ``total_anneal_steps`` are the VAE's KL schedule (ignored by the DAE):
    beta = ``min(anneal_cap, updates / total_anneal_steps)``, updates counted over the whole run.
    """

    hidden: list[int] = field(default_factory=lambda: [600, 200])
    dropout: float = 0.5
    activation: str = "tanh"
    l2: float = 0.0
    anneal_cap: float = 0.2
    total_anneal_steps: int = 200_000

    def __post_init__(self) -> None:
        if isinstance(self.hidden, int):
            self.hidden = [self.hidden]
        if self.l2 < 0:
            raise ConfigError(f"model.l2 must be >= 0; got {self.l2}")


@dataclass
class CDAEParams:
    """CDAE: hidden size (the paper's K), input corruption q, activation, L2 (the paper's lambda)
    and ``negatives`` sampled per positive in the logistic loss (0 = every item)."""

    hidden: int = 50
    corruption: float = 0.2
    activation: str = "sigmoid"
    l2: float = 0.01
    negatives: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list) and len(self.hidden) == 1:
            self.hidden = int(self.hidden[0])
        if self.l2 < 0:
            raise ConfigError(f"model.l2 must be >= 0; got {self.l2}")


@dataclass
class RecVAEParams:
    """RecVAE: encoder width and code size, input dropout, ``gamma`` (the KL weight of a user
    is ``gamma`` times their number of positives), the encoder and decoder passes per epoch."""

    hidden: int = 600
    latent: int = 200
    dropout: float = 0.5
    gamma: float = 0.01  # the paper's 0.005 did worse on ML-100K's validation users (docs/benchmarks.md)
    n_enc_epochs: int = 3
    n_dec_epochs: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.hidden, list) and len(self.hidden) == 1:
            self.hidden = int(self.hidden[0])
        if isinstance(self.hidden, list) or self.hidden < 1 or self.latent < 1:
            raise ConfigError(f"model.hidden and model.latent must be positive sizes; got {self.hidden}, {self.latent}")


@dataclass
class EASEParams:
    """EASE: ``l2`` is the ridge weight lambda. When the model is fitted with validation data
    and ``l2`` was not set by the user, lambda is chosen among ``l2_grid`` on validation."""

    l2: float = 200.0
    l2_grid: list[float] = field(default_factory=lambda: [10.0, 30.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 3000.0])

    def __post_init__(self) -> None:
        if not self.l2 > 0 or any(not g > 0 for g in self.l2_grid):
            raise ConfigError(
                f"model.l2 and model.l2_grid must be > 0 (EASE's ridge weight); got {self.l2}, {self.l2_grid}"
            )


@dataclass
class PopularityParams:
    """No hyper-parameters: items are ranked by how many training users liked them."""


# The networks (torch) are imported when one is built: the registry, which the command line's
# help and the docs read, lists these families without loading torch.
def _build_mult(vae: bool):
    def build(params: MultParams, n_items: int, n_users: int) -> nn.Module:
        from aerec.models.implicit_networks import MultDAE, MultVAE

        common = dict(dropout=params.dropout, activation=params.activation, l2=params.l2)
        if vae:
            return MultVAE(n_items, params.hidden, anneal_cap=params.anneal_cap,
                           total_anneal_steps=params.total_anneal_steps, **common)
        return MultDAE(n_items, params.hidden, **common)

    return build


def _build_cdae(params: CDAEParams, n_items: int, n_users: int) -> nn.Module:
    from aerec.models.implicit_networks import CDAE

    return CDAE(n_items, n_users, params.hidden, corruption=params.corruption, activation=params.activation,
                l2=params.l2, negatives=params.negatives)


def _build_recvae(params: RecVAEParams, n_items: int, n_users: int) -> nn.Module:
    from aerec.models.implicit_networks import RecVAE

    return RecVAE(n_items, params.hidden, params.latent, dropout=params.dropout, gamma=params.gamma,
                  n_enc_epochs=params.n_enc_epochs, n_dec_epochs=params.n_dec_epochs)


# Mult-VAE's default has no hidden layer: on ML-100K's 743 training users the input goes straight
# to the Gaussian code (n -> 2 x 300 -> n, both maps linear) and the paper's tanh layers of 600
# only add weights to fit; validation NDCG@100 0.472 against 0.456 for n-600-100-600-n (seeds 0-4,
# docs/benchmarks.md "Implicit top-N"). Mult-DAE's the same: 0.469 against 0.455 for n-600-200-600-n.
# Mult-VAE/DAE on MovieLens-sized data: small batches so that a few hundred users still make
# many updates an epoch (24 for ML-100K's 743 training users); the KL weight rises over the
# first 1,000 updates and reaches its cap of 0.2 after 200 (the "paper" preset: 200,000).
_MULT_TRAIN = {"optimizer": "adam", "lr": 1e-3, "batch_size": 32, "epochs": 200, "patience": 20,
               "validation": 0.1, "min_delta": 0.0}

# RecVAE: the paper's lr 5e-4 and batches of 500 (the "paper" preset) make 2 updates a pass on
# ML-100K's 743 training users; one epoch is 3 encoder passes plus 1 decoder pass. Batches of 64
# at lr 1e-3 reached validation NDCG@100 0.445 / 0.453 (seeds 0, 1) within 10 epochs.
RECVAE_TRAIN = {**_MULT_TRAIN, "lr": 1e-3, "batch_size": 64}

IMPLICIT_FAMILIES: dict[str, Family] = {
    "multvae": Family(
        kind="multvae",
        feedback="implicit",
        summary="Mult-VAE: n-300-n (Gaussian code of 300), multinomial likelihood, annealed KL",
        source="Liang, Krishnan, Hoffman, Jebara. Variational Autoencoders for Collaborative Filtering. WWW 2018",
        params={"hidden": [300], "dropout": 0.3, "l2": 0.0, "anneal_cap": 0.2, "total_anneal_steps": 1000},
        train=dict(_MULT_TRAIN),
        presets={
            "paper": {"model": {"hidden": [600, 200], "dropout": 0.5, "total_anneal_steps": 200_000},
                      "train": {"batch_size": 500}},
        },
        params_cls=MultParams,
        builder=_build_mult(vae=True),
    ),
    "multdae": Family(
        kind="multdae",
        feedback="implicit",
        summary="Mult-DAE: n-300-n (one tanh layer, the code), multinomial likelihood, input dropout",
        source="Liang, Krishnan, Hoffman, Jebara. Variational Autoencoders for Collaborative Filtering. WWW 2018",
        params={"hidden": [300], "dropout": 0.3, "l2": 0.001},
        train=dict(_MULT_TRAIN),
        presets={"paper": {"model": {"hidden": [600, 200], "dropout": 0.5, "l2": 0.01}, "train": {"batch_size": 500}}},
        params_cls=MultParams,
        builder=_build_mult(vae=False),
    ),
    "cdae": Family(
        kind="cdae",
        feedback="implicit",
        summary="CDAE: one sigmoid layer plus a per-user node, corrupted input, logistic loss",
        source="Wu, DuBois, Zheng, Ester. Collaborative Denoising Auto-Encoders for Top-N Recommender Systems. "
        "WSDM 2016",
        params={"hidden": 200, "corruption": 0.2, "l2": 0.01, "negatives": 0.0},
        train={**_MULT_TRAIN, "lr": 3e-3},
        presets={"paper": {"model": {"hidden": 50, "negatives": 5.0}}},
        params_cls=CDAEParams,
        builder=_build_cdae,
    ),
    "recvae": Family(
        kind="recvae",
        feedback="implicit",
        summary="RecVAE: dense 5-layer encoder, linear decoder, composite prior, alternating updates",
        source="Shenbin, Alekseev, Tutubalina, Malykh, Nikolenko. RecVAE: a New Variational Autoencoder for Top-N "
        "Recommendations with Implicit Feedback. WSDM 2020",
        params={"hidden": 600, "latent": 200, "dropout": 0.5, "gamma": 0.01, "n_enc_epochs": 3, "n_dec_epochs": 1},
        train=RECVAE_TRAIN,
        presets={"paper": {"model": {"gamma": 0.005}, "train": {"lr": 5e-4, "batch_size": 500}}},
        params_cls=RecVAEParams,
        builder=_build_recvae,
    ),
    "ease": Family(
        kind="ease",
        feedback="implicit",
        summary="EASE: closed-form linear item-item autoencoder with a zero diagonal",
        source="Steck. Embarrassingly Shallow Autoencoders for Sparse Data. WWW 2019",
        params={},
        train={"validation": 0.1},
        params_cls=EASEParams,
    ),
    "popularity": Family(
        kind="popularity",
        feedback="implicit",
        summary="the most-liked items, the same for everyone (a reference)",
        source="the usual baseline of top-N evaluations",
        params={},
        train={"validation": 0.0},
        params_cls=PopularityParams,
    ),
}

DEFAULT_IMPLICIT = "ease"
"""The family ``aerec train`` uses on implicit data without ``--model``: the strongest measured on
ML-100K under strong generalization, and the fastest (docs/benchmarks.md). Past
``DEFAULT_EASE_MAX_ITEMS`` items :func:`default_implicit_kind` switches to ``multvae``."""
DEFAULT_EASE_MAX_ITEMS = 20_000  # EASE's items x items float32 matrices: about 6 GiB at 20,000 items


def default_implicit_kind(n_items: int | None = None) -> str:
    """The default implicit family for a catalogue of ``n_items``: ``ease``, or ``multvae``
    when EASE's items x items matrices would be too large for a default (> 20,000 items)."""
    if n_items is not None and n_items > DEFAULT_EASE_MAX_ITEMS:
        return "multvae"
    return DEFAULT_IMPLICIT

NEURAL = ("multvae", "multdae", "cdae", "recvae")
