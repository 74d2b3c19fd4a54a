"""RecVAE (Shenbin et al., WSDM 2020): its prior, its per-user KL weight, its alternating schedule.

The shared contract of implicit recommenders (fit, top-N, new users, save/load, seeds) runs in
tests/test_implicit_contract.py (``TestRecVAE``); here are the parts RecVAE adds, checked
against hand computations, plus the command line with a checkpoint resume.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from typer.testing import CliRunner

from aerec.cli import app
from aerec.config import build_train_config
from aerec.errors import ConfigError
from aerec.implicit import ImplicitRecommender
from aerec.models.implicit_networks import RecVAE, log_normal
from aerec.testing import planted_implicit, single_thread
from aerec.training import Trainer

N_ITEMS = 12


def _net(**kw) -> RecVAE:
    torch.manual_seed(0)
    return RecVAE(N_ITEMS, hidden=16, latent=4, **kw)


def _rows(n_users: int = 24, seed: int = 0) -> sp.csr_array:
    """A random 0/1 users x items CSR where every user has at least two positives."""
    rng = np.random.default_rng(seed)
    x = (rng.random((n_users, N_ITEMS)) < 0.3).astype(np.float32)
    x[np.arange(n_users), rng.integers(0, N_ITEMS, n_users)] = 1.0
    x[np.arange(n_users), (np.arange(n_users) % N_ITEMS)] = 1.0
    return sp.csr_array(x)


def _normal_pdf(z: float, mean: float, var: float) -> float:
    return math.exp(-((z - mean) ** 2) / (2 * var)) / math.sqrt(2 * math.pi * var)


# ----------------------------------------------------------------------------- the prior
def test_composite_prior_density_matches_a_hand_computation():
    net = _net().double()
    # Make the old encoder's posterior N(0.5, 0.25) for every user and coordinate.
    with torch.no_grad():
        net.encoder_old.mu.weight.zero_()
        net.encoder_old.mu.bias.fill_(0.5)
        net.encoder_old.logvar.weight.zero_()
        net.encoder_old.logvar.bias.fill_(math.log(0.25))
    x = torch.from_numpy(_rows(3).toarray())
    values = [0.5, -2.0, 40.0, 0.0]  # 40: only the wide normal (variance e^10) is not negligible
    z = torch.tensor(values, dtype=torch.float64).repeat(3, 1)  # (3 users, 4 coordinates)
    got = net.prior_log_density(x.double(), z)
    for k, v in enumerate(values):
        hand = 3 / 20 * _normal_pdf(v, 0, 1) + 3 / 4 * _normal_pdf(v, 0.5, 0.25) + 1 / 10 * _normal_pdf(v, 0, math.exp(10))
        np.testing.assert_allclose(got[:, k].numpy(), math.log(hand), rtol=1e-12)


def test_log_normal_is_the_gaussian_log_density():
    z, mu, logvar = torch.tensor([0.3, -1.0]), torch.tensor([0.0, 2.0]), torch.tensor([0.0, math.log(4.0)])
    hand = [math.log(_normal_pdf(0.3, 0, 1)), math.log(_normal_pdf(-1.0, 2.0, 4.0))]
    np.testing.assert_allclose(log_normal(z, mu, logvar).numpy(), hand, rtol=1e-6)


# ----------------------------------------------------------------------------- the KL weight
def test_kl_weight_is_gamma_times_each_users_positives():
    net = _net(gamma=0.01)
    x = torch.zeros(3, N_ITEMS)
    x[0, :2], x[1, :5], x[2, :9] = 1.0, 1.0, 1.0
    np.testing.assert_allclose(net.kl_weights(x).numpy(), [0.02, 0.05, 0.09], rtol=1e-6)


def test_the_loss_weights_each_users_kl_by_beta_u():
    """loss = NLL + mean_u(gamma |x_u| KL_u), KL_u = sum_d log q(z_d|x) - log p(z_d|x) at the drawn z."""
    x = torch.from_numpy(_rows(5).toarray())

    def loss(gamma: float) -> float:
        net = _net(gamma=gamma).eval()  # eval: no input dropout, but the code is still drawn
        torch.manual_seed(7)
        return float(net.training_loss(x, torch.ones_like(x), step=0).detach())

    net = _net().eval()
    torch.manual_seed(7)
    mu, logvar = net.encode(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    kl = (log_normal(z, mu, logvar) - net.prior_log_density(x, z)).sum(1)  # (users,)
    nll = -(torch.log_softmax(net.decoder[0](z), dim=1) * x).sum(1).mean()
    for gamma in (0.0, 0.005, 0.02):
        hand = nll + (gamma * x.sum(1) * kl).mean()
        assert loss(gamma) == pytest.approx(float(hand.detach()), rel=1e-5)
    # Linear in gamma: the KL part doubles with gamma.
    assert loss(0.02) - loss(0.0) == pytest.approx(2 * (loss(0.01) - loss(0.0)), rel=1e-4)


# ----------------------------------------------------------------------------- the passes
def _grads(module: torch.nn.Module) -> list[bool]:
    return [p.grad is not None for p in module.parameters()]


def test_each_pass_trains_only_its_part_and_the_decoder_pass_drops_nothing():
    net = _net().train()
    x = torch.from_numpy(_rows(6).toarray())
    seen = []
    forward = net.encoder.forward
    net.encoder.forward = lambda rows, dropout: seen.append(dropout) or forward(rows, dropout)  # spy
    for phase, enc, dec in (("encoder", True, False), ("decoder", False, True), ("joint", True, True)):
        net.begin_pass(phase)
        seen.clear()
        net.training_loss(x, torch.ones_like(x), step=0).backward()
        assert _grads(net.encoder) == [enc] * len(_grads(net.encoder)), phase
        assert _grads(net.decoder) == [dec] * len(_grads(net.decoder)), phase
        assert not any(_grads(net.encoder_old)), "the old encoder is never trained"
        assert seen == ([0.0] if phase == "decoder" else [0.5]), (phase, seen)
    with pytest.raises(ValueError):
        net.begin_pass("sideways")


def test_old_encoder_is_frozen_and_refreshed_once_per_epoch_between_the_halves():
    net = _net(n_enc_epochs=2, n_dec_epochs=1)
    assert not any(p.requires_grad for p in net.encoder_old.parameters())
    snapshots = []  # (pass name, copies of the encoder, old encoder and decoder) after begin_pass
    begin, refresh = net.begin_pass, net.update_prior
    refreshes = []

    def spy_begin(name):
        begin(name)
        snapshots.append((name, *[[p.detach().clone() for p in m.parameters()]
                                  for m in (net.encoder, net.encoder_old, net.decoder)]))

    net.begin_pass, net.update_prior = spy_begin, lambda: refreshes.append(1) or refresh()
    cfg = build_train_config({"optimizer": "adam", "lr": 0.01, "batch_size": 8, "epochs": 3, "patience": 0})
    Trainer(cfg, seed=1).fit(net, _rows(), loss="multinomial")

    same = lambda a, b: all(torch.equal(p, q) for p, q in zip(a, b))
    assert [s[0] for s in snapshots] == ["encoder", "encoder", "decoder"] * 3 and len(refreshes) == 3
    for k, (name, enc, old, dec) in enumerate(snapshots):
        if name == "decoder":  # just refreshed: the encoder as its passes left it
            assert same(old, enc)
        if k > 0:
            prev = snapshots[k - 1]
            # The old encoder changes only when a decoder pass begins.
            assert same(old, prev[2]) == (name != "decoder")
            # What the previous pass trained changed; the rest did not.
            assert same(enc, prev[1]) == (prev[0] == "decoder")
            assert same(dec, prev[3]) == (prev[0] == "encoder")
    # Ended on a decoder pass: the old encoder still equals the encoder.
    assert same(list(net.encoder_old.parameters()), list(net.encoder.parameters()))


def test_settings_are_checked():
    for bad in ({"gamma": -1.0}, {"n_enc_epochs": 0}, {"n_dec_epochs": 0}, {"mixture": (0.5, 0.5, 0.5)}):
        with pytest.raises(ConfigError):
            _net(**bad)
    with pytest.raises(ConfigError):
        ImplicitRecommender("recvae", latent=0).resolved()


# ----------------------------------------------------------------------------- fits
def test_seeded_fit_repeats_exactly_and_early_stopping_restores_the_best_epoch():
    data = planted_implicit()
    train = {"lr": 0.01, "batch_size": 8, "epochs": 8, "patience": 2, "validation": 0.3}

    def fit(seed: int) -> ImplicitRecommender:
        model = ImplicitRecommender("recvae", hidden=16, latent=4)
        model.config.train.update(train)
        model.config.run.update(seed=seed, device="cpu")
        with single_thread():
            return model.fit(data.train)

    a, b, c = fit(3), fit(3), fit(4)
    scores = lambda m: m.recommend("a0", n=10, exclude_rated=False)["score"].to_numpy()
    np.testing.assert_array_equal(scores(a), scores(b))
    assert np.abs(scores(a) - scores(c)).max() > 1e-6
    history = a.history_frame()
    best = int(history["val_ndcg@100"].idxmax())
    assert a.train_result_.best_epoch == history["epoch"][best]
    assert a.train_result_.best_val == history["val_ndcg@100"].max()


def test_cli_trains_recvae_and_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    data = planted_implicit()
    path = tmp_path / "planted.csv"
    pd.concat([data.train.frame, data.test.frame], ignore_index=True).to_csv(path, index=False)
    runner = CliRunner()

    def ok(*args):
        r = runner.invoke(app, [str(a) for a in args])
        assert r.exit_code == 0, r.output
        return json.loads(r.stdout)

    common = ("train", "--train", path, "--implicit", "--model", "recvae", "--split", "user:8:val=8",
              "--set", "model.hidden=16", "--set", "model.latent=4", "--set", "train.batch_size=8",
              "--set", "train.lr=0.01", "--no-progress", "--threads", "1", "--json")
    whole = ok(*common, "--epochs", "4", "--out", tmp_path / "whole")
    ckpt = tmp_path / "ckpt"
    ok(*common, "--epochs", "2", "--checkpoint-dir", ckpt, "--out", tmp_path / "half")
    resumed = ok(*common, "--epochs", "4", "--checkpoint-dir", ckpt, "--resume", "--out", tmp_path / "resumed")
    assert whole["model"] == "recvae" and resumed["epochs_run"] == whole["epochs_run"] == 4
    for key in ("best_val_ndcg@100", "ndcg@100", "recall@20"):
        assert resumed[key] == whole[key], key
