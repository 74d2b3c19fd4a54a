"""The networks of the implicit-feedback families: Mult-DAE, Mult-VAE, CDAE and RecVAE.

Each is a plain ``nn.Module`` that reads a user's row of positives ``x (batch, n_items)`` (0/1)
and returns one score per item (logits). The trainer calls ``training_loss`` (the model's own
objective, see :mod:`aerec.training`); ``scores`` is the read-out used for ranking, in eval mode.

* :class:`MultDAE`, :class:`MultVAE`: Liang, Krishnan, Hoffman, Jebara. "Variational
  Autoencoders for Collaborative Filtering", WWW 2018. The input row is L2-normalised, then
  dropped out (p = 0.5); tanh layers; the output is a softmax over all items and the loss the
  multinomial log-likelihood ``-sum_i x_i log softmax(logits)_i``. The VAE adds a Gaussian code
  and a KL term whose weight ``beta`` grows linearly with the *total* number of updates up to a
  cap (:func:`kl_beta`); at prediction time the code is its mean.
* :class:`CDAE`: Wu, DuBois, Zheng, Ester. "Collaborative Denoising Auto-Encoders for Top-N
  Recommender Systems", WSDM 2016. One hidden layer whose input adds a learned vector per
  training user (the "user node") to the corrupted row; sigmoid hidden units; logistic loss
  on every item, or on the positives and ``negatives`` sampled non-positives per positive
  (the paper's negative sampling). A user unseen in training has no node of their own and gets the mean of the
  learned ones (about zero: the nodes start at zero and are L2-penalised).
* :class:`RecVAE`: Shenbin, Alekseev, Tutubalina, Malykh, Nikolenko. "RecVAE: a New
  Variational Autoencoder for Top-N Recommendations with Implicit Feedback", WSDM 2020.
  Mult-VAE's likelihood with a densely connected 5-layer encoder, a linear decoder, a
  composite prior that includes the previous epoch's posterior, a KL weight proportional to
  each user's number of positives, and alternating encoder / decoder updates.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aerec.errors import ConfigError
from aerec.models.autoencoder import activation as get_activation

__all__ = ["CDAE", "MultDAE", "MultVAE", "RecVAE", "RecVAEEncoder", "kl_beta", "log_normal"]


def kl_beta(step: int, anneal_cap: float, total_anneal_steps: int) -> float:
    """The KL weight after ``step`` updates: ``min(anneal_cap, step / total_anneal_steps)``.

    ``step`` counts updates over the whole run, across epochs (Liang et al.'s ``update_count``),
    so beta keeps growing where the last epoch left it. ``total_anneal_steps = 0`` means no
    annealing: beta is the cap from the first update.
    """
    if total_anneal_steps <= 0:
        return float(anneal_cap)
    return float(min(anneal_cap, step / total_anneal_steps))


def _init(layer: nn.Linear) -> nn.Linear:
    # The paper's initialisation: Xavier weights, small normal biases.
    nn.init.xavier_uniform_(layer.weight)
    nn.init.normal_(layer.bias, std=0.001)
    return layer


def _check(hidden: Sequence[int], dropout: float) -> list[int]:
    hidden = [int(h) for h in hidden]
    if not hidden or min(hidden) < 1:
        raise ConfigError(f"model.hidden must list positive layer sizes; got {hidden}")
    if not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout must be in [0, 1); got {dropout}")
    return hidden


class _Multinomial(nn.Module):
    """What Mult-DAE and Mult-VAE share: normalised, dropped-out input; tanh; softmax output."""

    def __init__(self, n_items: int, hidden: Sequence[int], dropout: float, activation: str, l2: float) -> None:
        super().__init__()
        self.hidden = _check(hidden, dropout)
        self.n_items, self.dropout, self.l2 = n_items, dropout, l2
        self.act = get_activation(activation)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, n_items)`` -> unit-length rows, dropped out in training (inverted dropout)."""
        return F.dropout(F.normalize(x, dim=1), self.dropout, training=self.training)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.decoder):
            z = layer(z)
            if k < len(self.decoder) - 1:
                z = self.act(z)
        return z  # (batch, n_items) logits

    def item_factors(self) -> torch.Tensor:
        """Each item's row of the output layer ``(n_items, d)``, less the mean row: its score is
        this row's dot product with the last hidden layer (plus a bias). The softmax over items
        is blind to a vector added to every row (it adds one number to every logit), so the
        rows' common part is arbitrary, left to initialisation and weight decay; only the
        centred rows say how items differ."""
        weight = self.decoder[-1].weight
        return weight - weight.mean(0, keepdim=True)

    def weight_norm2(self) -> torch.Tensor:
        """Sum of squared weights (biases excluded)."""
        return sum(m.weight.pow(2).sum() for m in self.modules() if isinstance(m, nn.Linear))

    def _nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Mean over rows of the multinomial negative log-likelihood."""
        return -(F.log_softmax(logits, dim=1) * x).sum(1).mean()


class MultDAE(_Multinomial):
    """``n -> hidden... -> code -> ...hidden -> n`` with a multinomial likelihood (Mult-DAE).

    Args:
        n_items: input and output size.
        hidden: encoder sizes up to the code, e.g. ``(600, 200)``; the decoder mirrors them.
        dropout: input dropout (training only).
        activation: hidden activation (tanh in the paper).
        l2: weight penalty ``l2 * ||W||^2`` added to the mean loss of a batch (the paper's 0.01).
    """

    def __init__(self, n_items: int, hidden: Sequence[int] = (600, 200), *, dropout: float = 0.5,
                 activation: str = "tanh", l2: float = 0.01) -> None:
        super().__init__(n_items, hidden, dropout, activation, l2)
        sizes = [n_items, *self.hidden]
        self.encoder = nn.ModuleList(_init(nn.Linear(a, b)) for a, b in zip(sizes[:-1], sizes[1:]))
        back = sizes[::-1]
        self.decoder = nn.ModuleList(_init(nn.Linear(a, b)) for a, b in zip(back[:-1], back[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._input(x)
        for layer in self.encoder:
            h = self.act(layer(h))
        return self._decode(h)

    def scores(self, x: torch.Tensor, user_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Ranking scores (logits) ``(batch, n_items)`` of rows ``x``."""
        return self(x)

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, *, step: int, rows=None) -> torch.Tensor:
        loss = self._nll(self(x), x)
        return loss + self.l2 * self.weight_norm2() if self.l2 > 0 else loss


class MultVAE(_Multinomial):
    """The variational version (Mult-VAE^PR): a Gaussian code and an annealed KL term.

    Args:
        n_items: input and output size.
        hidden: encoder sizes; the last is the code size (``(600, 200)``: n-600-200-600-n).
        dropout: input dropout (training only).
        activation: hidden activation (tanh).
        l2: weight penalty as in :class:`MultDAE`.
        anneal_cap: the largest KL weight.
        total_anneal_steps: updates over which beta rises from 0 to 1 (capped at ``anneal_cap``).
    """

    def __init__(self, n_items: int, hidden: Sequence[int] = (600, 200), *, dropout: float = 0.5,
                 activation: str = "tanh", l2: float = 0.0, anneal_cap: float = 0.2,
                 total_anneal_steps: int = 200_000) -> None:
        super().__init__(n_items, hidden, dropout, activation, l2)
        if anneal_cap < 0 or total_anneal_steps < 0:
            raise ConfigError(f"model.anneal_cap and model.total_anneal_steps must be >= 0; got {anneal_cap}, "
                              f"{total_anneal_steps}")
        self.anneal_cap, self.total_anneal_steps = anneal_cap, total_anneal_steps
        sizes = [n_items, *self.hidden]
        self.code_size = sizes[-1]
        # The last encoder layer gives the code's mean and log-variance side by side.
        enc = [*zip(sizes[:-2], sizes[1:-1]), (sizes[-2], 2 * sizes[-1])]
        self.encoder = nn.ModuleList(_init(nn.Linear(a, b)) for a, b in enc)
        back = sizes[::-1]
        self.decoder = nn.ModuleList(_init(nn.Linear(a, b)) for a, b in zip(back[:-1], back[1:]))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the code, each ``(batch, code)``."""
        h = self._input(x)
        for k, layer in enumerate(self.encoder):
            h = layer(h)
            if k < len(self.encoder) - 1:
                h = self.act(h)
        return h[:, : self.code_size], h[:, self.code_size :]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits ``(batch, n_items)``, and the code's mean and log-variance."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return self._decode(z), mu, logvar

    def scores(self, x: torch.Tensor, user_rows: torch.Tensor | None = None) -> torch.Tensor:
        return self(x)[0]

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, *, step: int, rows=None) -> torch.Tensor:
        logits, mu, logvar = self(x)
        kl = 0.5 * (torch.exp(logvar) + mu.pow(2) - 1.0 - logvar).sum(1).mean()
        loss = self._nll(logits, x) + kl_beta(step, self.anneal_cap, self.total_anneal_steps) * kl
        return loss + self.l2 * self.weight_norm2() if self.l2 > 0 else loss


class CDAE(nn.Module):
    """Collaborative denoising autoencoder: ``sigmoid(W x~ + V_u + b) -> W' h + b'`` (logits).

    Args:
        n_items: input and output size.
        n_users: training users (one learned vector each: the user node).
        hidden: the hidden size (the paper's K; 50 there).
        corruption: input dropout probability ``q`` (inverted: kept entries scale by 1/(1-q)).
        activation: hidden activation (sigmoid).
        l2: penalty ``l2 / 2 * (||W||^2 + ||W'||^2 + ||V||^2)`` per batch, V the user nodes of the batch.
        negatives: non-positive items drawn per positive for the loss (about; 0 = all items).
    """

    def __init__(self, n_items: int, n_users: int, hidden: int = 50, *, corruption: float = 0.2,
                 activation: str = "sigmoid", l2: float = 0.01, negatives: float = 0.0) -> None:
        super().__init__()
        _check([hidden], corruption)
        if negatives < 0:
            raise ConfigError(f"model.negatives must be >= 0; got {negatives}")
        self.n_items, self.corruption, self.l2, self.negatives = n_items, corruption, l2, negatives
        self.act = get_activation(activation)
        self.encoder = _init(nn.Linear(n_items, hidden))
        self.decoder = _init(nn.Linear(hidden, n_items))
        self.user_node = nn.Embedding(max(n_users, 1), hidden)
        nn.init.zeros_(self.user_node.weight)

    def _node(self, user_rows: torch.Tensor | None, batch: int) -> torch.Tensor:
        """The user nodes ``(batch, hidden)``; rows -1 (new users) get the mean node."""
        mean = self.user_node.weight.mean(0, keepdim=True)  # (1, hidden)
        if user_rows is None:
            return mean.expand(batch, -1)
        known = user_rows >= 0
        nodes = self.user_node(user_rows.clamp_min(0))
        return torch.where(known[:, None], nodes, mean)

    def forward(self, x: torch.Tensor, user_rows: torch.Tensor | None = None) -> torch.Tensor:
        x = F.dropout(x, self.corruption, training=self.training)
        h = self.act(self.encoder(x) + self._node(user_rows, x.shape[0]))
        return self.decoder(h)

    def scores(self, x: torch.Tensor, user_rows: torch.Tensor | None = None) -> torch.Tensor:
        return self(x, user_rows)

    def item_factors(self) -> torch.Tensor:
        """Each item's row of the output layer ``(n_items, hidden)`` (as :meth:`MultDAE.item_factors`)."""
        return self.decoder.weight

    def weight_norm2(self) -> torch.Tensor:
        return self.encoder.weight.pow(2).sum() + self.decoder.weight.pow(2).sum()

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, *, step: int, rows=None) -> torch.Tensor:
        logits = self(x, rows)
        weight = torch.ones_like(x)
        if self.negatives > 0:
            # Each non-positive enters with probability negatives * n_pos / n_neg: about
            # ``negatives`` of them per positive, drawn afresh every update.
            n_pos = x.sum(1, keepdim=True)
            rate = (self.negatives * n_pos / (x.shape[1] - n_pos).clamp_min(1.0)).clamp(max=1.0)
            weight = torch.where(x > 0, weight, (torch.rand_like(x) < rate).to(x.dtype))
        loss = (F.binary_cross_entropy_with_logits(logits, x, reduction="none") * weight).sum(1).mean()
        if self.l2 > 0:
            nodes = self.user_node(rows).pow(2).sum() / x.shape[0] if rows is not None else 0.0
            loss = loss + 0.5 * self.l2 * (self.weight_norm2() + nodes)
        return loss


# ----------------------------------------------------------------------------- RecVAE
def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Log-density of ``N(mu, exp(logvar))`` at ``z``, per coordinate (shapes broadcast)."""
    return -0.5 * (logvar + math.log(2 * math.pi) + (z - mu).pow(2) / torch.exp(logvar))


class RecVAEEncoder(nn.Module):
    """RecVAE's encoder: five densely connected ``Linear -> swish -> LayerNorm`` layers.

    Layer ``k`` reads the previous layer and adds the sum of *all* earlier layers' outputs
    before its activation: ``h_k = LN(swish(W_k h_{k-1} + b_k + h_1 + ... + h_{k-1}))``. The
    input row is L2-normalised and dropped out (``dropout``, training only); ``mu`` and
    ``logvar`` are two linear read-outs of ``h_5``, each ``(batch, latent)``.
    """

    def __init__(self, n_items: int, hidden: int, latent: int, *, depth: int = 5, eps: float = 0.1) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(n_items if k == 0 else hidden, hidden) for k in range(depth))
        # LayerNorm's eps of 0.1 is the authors' (their code), not torch's 1e-5.
        self.norms = nn.ModuleList(nn.LayerNorm(hidden, eps=eps) for _ in range(depth))
        self.mu = nn.Linear(hidden, latent)
        self.logvar = nn.Linear(hidden, latent)

    def forward(self, x: torch.Tensor, dropout: float) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.dropout(F.normalize(x, dim=1), dropout, training=self.training and dropout > 0)
        earlier = None  # the running sum h_1 + ... + h_{k-1}, (batch, hidden)
        for layer, norm in zip(self.layers, self.norms):
            pre = layer(h) if earlier is None else layer(h) + earlier
            h = norm(F.silu(pre))  # silu is swish with beta = 1, the authors' swish
            earlier = h if earlier is None else earlier + h
        return self.mu(h), self.logvar(h)


class RecVAE(_Multinomial):
    """RecVAE (Shenbin, Alekseev, Tutubalina, Malykh, Nikolenko, WSDM 2020).

    ``n -> [5 dense layers of hidden] -> Gaussian code (latent) -> n`` with a single linear
    decoder and the multinomial likelihood of Mult-VAE. What RecVAE adds:

    * the encoder of :class:`RecVAEEncoder` (dense connections, layer norm, swish);
    * a *composite prior* for the code, per coordinate (as the authors' code does it):
      ``p(z | x) = w0 N(z | 0, 1) + w1 q_old(z | x) + w2 N(z | 0, e^10)``, weights 3/20, 3/4,
      1/10, where ``q_old`` is the posterior of ``encoder_old``, a frozen copy of the encoder
      taken once per epoch (:meth:`update_prior`);
    * a KL weight per user, ``beta_u = gamma * |x_u|`` (``|x_u|`` the user's positives); the KL
      term is the one-sample estimate ``log q(z|x) - log p(z|x)`` at the sampled code;
    * alternating updates: each epoch the encoder trains for ``n_enc_epochs`` passes (input
      dropout on), the old encoder is refreshed, then the decoder trains for ``n_dec_epochs``
      passes without input dropout. The trainer runs the passes :meth:`epoch_passes` lists and
      announces each with :meth:`begin_pass` (:mod:`aerec.training`).

    Args:
        n_items: input and output size.
        hidden: width of the five encoder layers (600 in the paper).
        latent: code size (200).
        dropout: input dropout of the encoder passes (0.5).
        gamma: the KL weight per positive of a user (0.005).
        n_enc_epochs, n_dec_epochs: passes per epoch over the training rows for each part (3, 1).
        mixture: weights of the standard, old-posterior and wide normals of the prior.
        wide_logvar: log-variance of the wide normal (10).
    """

    PASSES = ("encoder", "decoder", "joint")

    def __init__(self, n_items: int, hidden: int = 600, latent: int = 200, *, dropout: float = 0.5,
                 gamma: float = 0.005, n_enc_epochs: int = 3, n_dec_epochs: int = 1,
                 mixture: Sequence[float] = (3 / 20, 3 / 4, 1 / 10), wide_logvar: float = 10.0) -> None:
        super().__init__(n_items, [hidden, latent], dropout, "swish", 0.0)
        mixture = [float(w) for w in mixture]
        if gamma < 0:
            raise ConfigError(f"model.gamma must be >= 0; got {gamma}")
        if n_enc_epochs < 1 or n_dec_epochs < 1:
            raise ConfigError(f"model.n_enc_epochs and model.n_dec_epochs must be >= 1; got {n_enc_epochs}, "
                              f"{n_dec_epochs}")
        if len(mixture) != 3 or min(mixture) <= 0 or abs(sum(mixture) - 1.0) > 1e-6:
            raise ConfigError(f"model.mixture must be three positive weights that sum to 1; got {mixture}")
        self.gamma, self.n_enc_epochs, self.n_dec_epochs = gamma, n_enc_epochs, n_dec_epochs
        self.log_mixture = [math.log(w) for w in mixture]
        self.wide_logvar = float(wide_logvar)
        self.code_size = latent
        self.encoder = RecVAEEncoder(n_items, hidden, latent)
        # The prior's encoder: never trained, overwritten by the encoder once per epoch. It is
        # part of the state (checkpoints resume with it); the authors start it at its own random
        # draw, as here.
        self.encoder_old = RecVAEEncoder(n_items, hidden, latent).requires_grad_(False)
        self.decoder = nn.ModuleList([nn.Linear(latent, n_items)])  # one layer: _decode adds no activation
        self.phase = "joint"  # what training_loss trains: encoder, decoder, or both (outside the trainer)

    # ---------------------------------------------------------------- the alternating schedule
    def epoch_passes(self) -> list[str]:
        """The passes over the training rows one epoch makes, in order (the trainer reads this)."""
        return ["encoder"] * self.n_enc_epochs + ["decoder"] * self.n_dec_epochs

    def begin_pass(self, name: str) -> None:
        """Called by the trainer before each pass: the first decoder pass after encoder passes
        refreshes the old encoder (the authors' ``update_prior``, between the two halves)."""
        if name not in self.PASSES:
            raise ValueError(f"unknown RecVAE pass {name!r}")
        if name == "decoder" and self.phase == "encoder":
            self.update_prior()
        # Gradients left by the other part must not reach the optimiser: a parameter whose
        # .grad is None is not stepped (Adam keeps separate moments per parameter, so one
        # optimiser then acts as the authors' two).
        for p in self.parameters():
            p.grad = None
        self.phase = name

    @torch.no_grad()
    def update_prior(self) -> None:
        """Copy the encoder's weights into ``encoder_old`` (the composite prior's posterior)."""
        self.encoder_old.load_state_dict(self.encoder.state_dict())

    # ---------------------------------------------------------------- the model
    def encode(self, x: torch.Tensor, dropout: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the code, each ``(batch, latent)``."""
        return self.encoder(x, self.dropout if dropout is None else dropout)

    def prior_log_density(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``log p(z | x)`` of the composite prior, per coordinate ``(batch, latent)``."""
        with torch.no_grad():
            old_mu, old_logvar = self.encoder_old(x, 0.0)
        zero = torch.zeros((), dtype=z.dtype, device=z.device)
        parts = [
            log_normal(z, zero, zero) + self.log_mixture[0],
            log_normal(z, old_mu, old_logvar) + self.log_mixture[1],
            log_normal(z, zero, zero + self.wide_logvar) + self.log_mixture[2],
        ]
        return torch.logsumexp(torch.stack(parts, dim=-1), dim=-1)

    # Mult-VAE's read-out over this encoder: logits (batch, n_items), the code's mean and
    # log-variance (eval: logits of the mean); ranking scores are those logits.
    forward = MultVAE.forward
    scores = MultVAE.scores

    def kl_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``beta_u = gamma * |x_u|`` per row ``(batch,)``: users with more positives get more KL."""
        return self.gamma * x.sum(1)

    def training_loss(self, x: torch.Tensor, mask: torch.Tensor, *, step: int, rows=None) -> torch.Tensor:
        """Negative ELBO, mean over rows: ``-log-lik + beta_u (log q(z|x) - log p(z|x))``.

        In an encoder pass only the encoder gets gradients; in a decoder pass only the decoder,
        and its input is not dropped out; ``joint`` trains both.
        """
        encoder_only, decoder_only = self.phase == "encoder", self.phase == "decoder"
        with torch.set_grad_enabled(torch.is_grad_enabled() and not decoder_only):
            mu, logvar = self.encode(x, 0.0 if decoder_only else None)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            kl = (log_normal(z, mu, logvar) - self.prior_log_density(x, z)).sum(1)  # (batch,)
        if encoder_only:  # the decoder's weights act as constants
            layer = self.decoder[0]
            logits = F.linear(z, layer.weight.detach(), layer.bias.detach())
        else:
            logits = self._decode(z)
        return self._nll(logits, x) + (self.kl_weights(x) * kl).mean()
