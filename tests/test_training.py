"""The trainer: optimisers, online and full-batch updates, divergence, early stopping,
schedules, and checkpoints that resume to the very same numbers."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from aerec.config import TrainConfig
from aerec.data.batches import dense_rows
from aerec.errors import ModelFileError, TrainingError
from aerec.evaluation import rmse
from aerec.losses import masked_mse
from aerec.models.autoencoder import Autoencoder
from aerec.testing import planted_ratings, single_thread
from aerec.training import Trainer, checkpoints, has_checkpoint, loop, read_checkpoint  # the modules: patched where names are used


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def planted():
    return planted_ratings()


@pytest.fixture(scope="module")
def item_rows(planted) -> sp.csr_array:
    """31 item rows x 40 users; the last row (the ``ghost`` item) is empty."""
    return planted.train_matrix().rows("item")


@pytest.fixture(scope="module")
def split(planted):
    """User rows of the planted training data with 25% of the cells held out for validation."""
    matrix = planted.train_matrix()
    fit, val = matrix.split_cells(np.random.default_rng(1).random(matrix.nnz) < 0.25)
    return fit.csr, val.csr


def _net(n: int, hidden=(8,), seed: int = 0, **kw) -> Autoencoder:
    torch.manual_seed(seed)
    return Autoencoder(n, list(hidden), **kw)


def _mse(net, rows) -> float:
    """Mean squared error over every observed cell, in eval mode."""
    net.eval()
    with torch.no_grad():
        x, mask = dense_rows(rows, np.arange(rows.shape[0]))
        sse, n = masked_mse(net(x, mask), x, mask)
    return float(sse / n)


def _validator(fit_rows, val_rows):
    """Validation RMSE of the held-out cells, reading each row's fit part as the input."""
    r = np.repeat(np.arange(val_rows.shape[0]), np.diff(val_rows.indptr))
    c, truth = val_rows.indices, val_rows.data

    @torch.no_grad()
    def validate(net) -> float:
        x, mask = dense_rows(fit_rows, np.arange(fit_rows.shape[0]))
        out = net(x, mask).numpy()
        return rmse(np.clip(out[r, c], 1, 5), truth)

    return validate


def _weights(net) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


def _history(result) -> list[dict]:
    """History without wall-clock times (the only thing allowed to differ between runs)."""
    return [{k: v for k, v in dataclasses.asdict(r).items() if k != "seconds"} for r in result.history]


# ----------------------------------------------------------------------------- optimisers
@pytest.mark.parametrize(
    ("optimizer", "lr", "batch_size"),
    [
        ("sgd", 0.05, 8), ("momentum", 0.01, 8), ("rmsprop", 0.01, 8),
        ("adam", 0.02, 8), ("adamw", 0.02, 8), ("lbfgs", 1.0, 0),
    ],
)
def test_each_optimizer_runs_and_lowers_the_training_loss(item_rows, optimizer, lr, batch_size):
    net = _net(item_rows.shape[1])
    before = _mse(net, item_rows)
    cfg = TrainConfig(optimizer=optimizer, lr=lr, batch_size=batch_size, epochs=10, lbfgs_iterations=5)
    result = Trainer(cfg).fit(net, item_rows)
    after = _mse(net, item_rows)
    assert len(result.history) == 10 and result.stopped == "epochs"
    assert after < 0.5 * before, f"{optimizer}: training MSE {before:.3f} -> {after:.3f}"
    assert all(math.isfinite(r.loss) and math.isfinite(r.train_rmse) for r in result.history)


def test_weight_decay_is_refused_with_lbfgs(item_rows):
    with pytest.raises(TrainingError, match="model.l2"):
        Trainer(TrainConfig(optimizer="lbfgs", batch_size=0, weight_decay=0.1)).fit(_net(item_rows.shape[1]), item_rows)


def _count_steps(monkeypatch) -> list[int]:
    steps: list[int] = []
    real = Trainer._step

    def counting(self, net, optimizer):
        steps.append(1)
        real(self, net, optimizer)

    monkeypatch.setattr(Trainer, "_step", counting)
    return steps


def test_online_mode_makes_one_update_per_row_with_data(item_rows, monkeypatch):
    steps = _count_steps(monkeypatch)
    with_data = int((np.diff(item_rows.indptr) > 0).sum())
    assert with_data == item_rows.shape[0] - 1  # the ghost row has nothing to learn
    Trainer(TrainConfig(optimizer="sgd", lr=0.01, batch_size=1, epochs=2)).fit(_net(item_rows.shape[1]), item_rows)
    assert len(steps) == 2 * with_data


def test_batch_size_zero_is_one_update_per_epoch(item_rows, monkeypatch):
    steps = _count_steps(monkeypatch)
    Trainer(TrainConfig(optimizer="adam", batch_size=0, epochs=3)).fit(_net(item_rows.shape[1]), item_rows)
    assert len(steps) == 3


def test_minibatches_and_dense_refeeding_count(item_rows, monkeypatch):
    steps = _count_steps(monkeypatch)
    Trainer(TrainConfig(batch_size=8, epochs=1, dense_refeeding=1)).fit(_net(item_rows.shape[1]), item_rows)
    assert len(steps) == 2 * math.ceil(30 / 8)  # each batch: one update on the data, one re-fed


def test_dense_refeeding_of_like_dislike_data_feeds_probabilities(monkeypatch):
    """With binary cross-entropy the network outputs logits; re-fed, they must become 0..1."""
    rows = planted_ratings(binary=True).train_matrix().rows("user")
    targets: list[torch.Tensor] = []
    real = loop.LOSSES["bce"]

    def spy(out, target, mask):
        targets.append(target.detach().clone())
        return real(out, target, mask)

    monkeypatch.setitem(loop.LOSSES, "bce", spy)
    Trainer(TrainConfig(batch_size=8, epochs=2, dense_refeeding=1)).fit(_net(rows.shape[1]), rows, loss="bce")
    assert len(targets) == 2 * 2 * math.ceil(40 / 8)
    refed = targets[1::2]  # data, re-fed, data, re-fed, ...
    assert all(0 <= float(t.min()) and float(t.max()) <= 1 for t in refed)
    assert any(0 < float(t.min()) < 1 for t in refed)  # soft targets, not the 0/1 data


def test_lbfgs_always_uses_the_whole_matrix(item_rows):
    # batch_size keeps its default (64): L-BFGS must not depend on it.
    a, b = _net(item_rows.shape[1]), _net(item_rows.shape[1])
    Trainer(TrainConfig(optimizer="lbfgs", lr=1.0, epochs=2, lbfgs_iterations=4)).fit(a, item_rows)
    Trainer(TrainConfig(optimizer="lbfgs", lr=1.0, epochs=2, lbfgs_iterations=4, batch_size=0)).fit(b, item_rows)
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_lbfgs_applies_the_code_penalty(item_rows):
    """The sparse family's L1 activity penalty also acts under L-BFGS."""
    codes = []
    for code_l1 in (0.0, 10.0):
        net = _net(item_rows.shape[1])
        cfg = TrainConfig(optimizer="lbfgs", lr=1.0, epochs=3, lbfgs_iterations=10)
        Trainer(cfg).fit(net, item_rows, code_l1=code_l1)
        with torch.no_grad():
            x, _ = dense_rows(item_rows, np.arange(item_rows.shape[0]))
            codes.append(float(net.encode(x).abs().mean()))
    assert codes[1] < 0.5 * codes[0]


# ----------------------------------------------------------------------------- divergence
def test_divergence_raises_a_training_error_naming_the_learning_rate(item_rows):
    cfg = TrainConfig(optimizer="sgd", lr=1e6, batch_size=8, epochs=3)
    with pytest.raises(TrainingError, match=r"train\.lr \(now 1000000\.0\)"):
        Trainer(cfg).fit(_net(item_rows.shape[1]), item_rows)


def test_lbfgs_divergence_is_caught_too(item_rows):
    # A NaN weight makes every L-BFGS objective NaN.
    net = _net(item_rows.shape[1])
    with torch.no_grad():
        net.encoder[0].weight[0, 0] = float("nan")
    with pytest.raises(TrainingError, match=r"train\.lr"):
        Trainer(TrainConfig(optimizer="lbfgs", batch_size=0, epochs=1)).fit(net, item_rows)


def test_a_non_finite_validation_score_stops_training(item_rows):
    with pytest.raises(TrainingError, match=r"validation RMSE became nan at epoch 1.*train\.lr"):
        Trainer(TrainConfig(epochs=3)).fit(_net(item_rows.shape[1]), item_rows, validate=lambda net: float("nan"))


# ----------------------------------------------------------------------------- early stopping
def test_early_stopping_keeps_the_best_weights(split):
    fit_rows, val_rows = split
    validate = _validator(fit_rows, val_rows)
    # A wide net with no regulariser and a large step overfits 40 users quickly.
    net = _net(fit_rows.shape[1], hidden=(64,))
    cfg = TrainConfig(optimizer="adam", lr=0.05, batch_size=4, epochs=200, patience=5)
    result = Trainer(cfg).fit(net, fit_rows, validate=validate)
    vals = [r.val_rmse for r in result.history]
    assert result.stopped == "early_stopping"
    assert len(vals) == result.best_epoch + cfg.patience < cfg.epochs
    assert result.best_val == min(vals) == vals[result.best_epoch - 1]
    assert all(v > result.best_val for v in vals[result.best_epoch:]), "later epochs are worse"
    assert vals[-1] > result.best_val + 0.01  # it really did get worse: the restore matters
    assert validate(net) == pytest.approx(result.best_val, abs=1e-6)  # the best net is back
    assert not net.training


def test_without_validation_the_last_weights_are_kept(item_rows):
    result = Trainer(TrainConfig(epochs=3)).fit(_net(item_rows.shape[1]), item_rows)
    assert result.best_epoch is None and result.best_val is None and len(result.history) == 3
    assert all(r.val_rmse is None for r in result.history)


# ----------------------------------------------------------------------------- schedules
def _lrs(item_rows, **kw) -> list[float]:
    cfg = TrainConfig(optimizer="sgd", lr=0.1, batch_size=16, patience=0, **kw)
    result = Trainer(cfg).fit(_net(item_rows.shape[1]), item_rows, validate=lambda net: 1.0)
    return [r.lr for r in result.history]


def test_step_schedule(item_rows):
    lrs = _lrs(item_rows, schedule="step", step_size=2, gamma=0.5, epochs=5)
    assert lrs == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_cosine_schedule(item_rows):
    expected = [0.05 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]
    assert _lrs(item_rows, schedule="cosine", epochs=4) == pytest.approx(expected)


def test_plateau_schedule_cuts_the_rate_when_validation_stalls(item_rows):
    # Constant validation: epoch 1 is the best, and with patience max(1, 0 // 2) = 1 the rate
    # is cut after every second epoch without improvement.
    assert _lrs(item_rows, schedule="plateau", gamma=0.5, epochs=6) == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025])


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_plateau_schedule_follows_the_direction_of_the_metric(item_rows, higher_is_better):
    # A validation figure that improves every epoch (falling RMSE, or rising NDCG) never cuts
    # the rate; read in the wrong direction, it would be cut after the second epoch.
    figures = iter(range(1, 10))

    def validate(net) -> float:
        step = next(figures)
        return step if higher_is_better else 1.0 / step

    cfg = TrainConfig(optimizer="sgd", lr=0.1, batch_size=16, patience=0, schedule="plateau", epochs=5)
    result = Trainer(cfg).fit(_net(item_rows.shape[1]), item_rows, validate=validate,
                              higher_is_better=higher_is_better)
    assert [r.lr for r in result.history] == pytest.approx([0.1] * 5)


def test_constant_schedule(item_rows):
    assert _lrs(item_rows, epochs=3) == [0.1, 0.1, 0.1]


# ----------------------------------------------------------------------------- checkpoints
_RESUMABLE = {
    # Input dropout makes every epoch draw random masks: the resume must redraw the same ones.
    "adam": (TrainConfig(optimizer="adam", lr=0.02, batch_size=8, epochs=6, patience=0), {"input_dropout": 0.2}),
    "lbfgs": (TrainConfig(optimizer="lbfgs", lr=1.0, batch_size=0, epochs=6, lbfgs_iterations=5, patience=0), {}),
}


@pytest.mark.parametrize("name", sorted(_RESUMABLE))
def test_a_resumed_run_equals_one_that_never_stopped(split, tmp_path, name):
    cfg, net_kw = _RESUMABLE[name]
    fit_rows, val_rows = split
    validate = _validator(fit_rows, val_rows)

    def run(epochs, checkpoint_dir=None, resume=False):
        net = _net(fit_rows.shape[1], **net_kw)
        trainer = Trainer(dataclasses.replace(cfg, epochs=epochs), seed=5, checkpoint_dir=checkpoint_dir)
        result = trainer.fit(net, fit_rows, l2=0.5, validate=validate, resume=resume)
        return net, result

    whole_net, whole = run(6)
    run(3, tmp_path)  # "crashes" after epoch 3, leaving its checkpoint
    _, meta = read_checkpoint(tmp_path)
    assert meta["epoch"] == 3
    resumed_net, resumed = run(6, tmp_path, resume=True)
    assert _history(resumed) == _history(whole)
    assert (resumed.best_epoch, resumed.best_val) == (whole.best_epoch, whole.best_val)
    for key, value in whole_net.state_dict().items():
        assert torch.equal(resumed_net.state_dict()[key], value), key


def test_resuming_an_early_stopped_run_trains_no_further(split, tmp_path):
    fit_rows, val_rows = split
    cfg = TrainConfig(optimizer="adam", lr=0.05, batch_size=4, epochs=200, patience=3)
    validate = _validator(fit_rows, val_rows)
    net = _net(fit_rows.shape[1], hidden=(64,))
    first = Trainer(cfg, checkpoint_dir=tmp_path).fit(net, fit_rows, validate=validate)
    assert first.stopped == "early_stopping"
    net = _net(fit_rows.shape[1], hidden=(64,), seed=9)
    again = Trainer(cfg, checkpoint_dir=tmp_path).fit(net, fit_rows, validate=validate, resume=True)
    assert _history(again) == _history(first) and again.stopped == "early_stopping"
    assert validate(net) == pytest.approx(first.best_val, abs=1e-6)
    # A more patient resume goes on from where the first run stopped.
    patient = dataclasses.replace(cfg, patience=cfg.patience + 2)
    more = Trainer(patient, checkpoint_dir=tmp_path).fit(_net(fit_rows.shape[1], hidden=(64,)), fit_rows,
                                                         validate=validate, resume=True)
    assert _history(more)[: len(first.history)] == _history(first)
    assert len(more.history) > len(first.history)


def test_resuming_with_another_seed_is_refused(item_rows, tmp_path):
    cfg = TrainConfig(epochs=2)
    Trainer(cfg, seed=1, checkpoint_dir=tmp_path).fit(_net(item_rows.shape[1]), item_rows)
    with pytest.raises(TrainingError, match="seed 1, not 2"):
        Trainer(cfg, seed=2, checkpoint_dir=tmp_path).fit(_net(item_rows.shape[1]), item_rows, resume=True)


def test_resuming_needs_a_checkpoint(item_rows, tmp_path):
    with pytest.raises(ModelFileError, match="no checkpoint"):
        Trainer(TrainConfig(epochs=2), checkpoint_dir=tmp_path).fit(_net(item_rows.shape[1]), item_rows, resume=True)
    with pytest.raises(TrainingError, match="checkpoint directory"):
        Trainer(TrainConfig(epochs=2)).fit(_net(item_rows.shape[1]), item_rows, resume=True)


def test_a_tampered_checkpoint_is_refused(item_rows, tmp_path):
    Trainer(TrainConfig(epochs=1), checkpoint_dir=tmp_path).fit(_net(item_rows.shape[1]), item_rows)
    weights = tmp_path / "latest" / "checkpoint.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="checksum"):
        Trainer(TrainConfig(epochs=2), checkpoint_dir=tmp_path).fit(_net(item_rows.shape[1]), item_rows, resume=True)


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name != "latest")


def test_checkpoints_are_complete_folders(item_rows, tmp_path):
    Trainer(TrainConfig(epochs=3), checkpoint_dir=tmp_path).fit(_net(item_rows.shape[1]), item_rows)
    assert sorted(p.name for p in (tmp_path / "latest").iterdir()) == ["checkpoint.json", "checkpoint.safetensors"]
    assert _leftovers(tmp_path) == []
    tensors, meta = read_checkpoint(tmp_path)
    assert meta["epoch"] == 3 and len(meta["history"]) == 3 and "net.encoder.0.weight" in tensors


def test_a_crash_while_writing_keeps_the_previous_checkpoint(item_rows, tmp_path, monkeypatch):
    real_save = checkpoints.save_file
    calls: list[int] = []

    def crashing_save(tensors, path):
        calls.append(1)
        if len(calls) == 3:  # epoch 3: half a file, then the "power cut"
            Path(path).write_bytes(b"\x00" * 10)
            raise OSError("disk full")
        real_save(tensors, path)

    monkeypatch.setattr(checkpoints, "save_file", crashing_save)
    cfg = TrainConfig(optimizer="adam", batch_size=8, epochs=5)
    with pytest.raises(OSError, match="disk full"):
        Trainer(cfg, checkpoint_dir=tmp_path).fit(_net(item_rows.shape[1]), item_rows)
    _, meta = read_checkpoint(tmp_path)  # verified against its checksum
    assert meta["epoch"] == 2
    assert _leftovers(tmp_path) == []  # the half-written folder is gone
    monkeypatch.setattr(checkpoints, "save_file", real_save)
    whole_net = _net(item_rows.shape[1])
    Trainer(cfg).fit(whole_net, item_rows)
    resumed_net = _net(item_rows.shape[1])
    Trainer(cfg, checkpoint_dir=tmp_path).fit(resumed_net, item_rows, resume=True)
    assert all(torch.equal(resumed_net.state_dict()[k], v) for k, v in whole_net.state_dict().items())


def test_a_crash_inside_the_swap_falls_back_to_the_previous_checkpoint(item_rows, tmp_path, monkeypatch):
    real_replace = checkpoints.os.replace
    swaps: list[str] = []

    def crashing_replace(src, dst):
        src, dst = Path(src), Path(dst)
        if src.name.startswith(".ckpt-") and dst.name == "latest":
            swaps.append(src.name)
            if len(swaps) == 2:  # the second checkpoint: the old one was moved aside, then the crash
                raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(checkpoints.os, "replace", crashing_replace)
    with pytest.raises(OSError, match="power cut"):
        Trainer(TrainConfig(epochs=3), checkpoint_dir=tmp_path).fit(_net(item_rows.shape[1]), item_rows)
    monkeypatch.setattr(checkpoints.os, "replace", real_replace)
    assert not (tmp_path / "latest").exists() and (tmp_path / ".latest-old").is_dir()
    _, meta = read_checkpoint(tmp_path)
    assert meta["epoch"] == 1
    trainer = Trainer(TrainConfig(epochs=3), checkpoint_dir=tmp_path)
    result = trainer.fit(_net(item_rows.shape[1]), item_rows, resume=True)
    assert [r.epoch for r in result.history] == [1, 2, 3]
    assert read_checkpoint(tmp_path)[1]["epoch"] == 3


# ----------------------------------------------------------------------------- torch.compile
@pytest.mark.slow
def test_a_compiled_network_trains_to_the_eager_weights_and_keeps_its_names(item_rows, monkeypatch):
    """``compile=True`` trains through a compiled view of the network: same objective, so the
    same weights (up to the compiler's float reassociation), and a state dict a fresh eager
    network loads. Dynamo's ``suppress_errors`` is on during the fit only."""
    import torch._dynamo

    cfg = TrainConfig(optimizer="adam", lr=0.02, batch_size=8, epochs=3, batch_format="dense")
    eager, compiled = _net(item_rows.shape[1]), _net(item_rows.shape[1])
    Trainer(cfg, seed=4).fit(eager, item_rows)
    views, during = [], []
    real_compile = torch.compile

    def spy(module, *args, **kwargs):
        view = real_compile(module, *args, **kwargs)
        views.append((module, view))
        real_forward = view.forward

        def forward(*a, **k):
            during.append(torch._dynamo.config.suppress_errors)
            return real_forward(*a, **k)

        view.forward = forward
        return view

    monkeypatch.setattr(torch, "compile", spy)
    before = torch._dynamo.config.suppress_errors
    Trainer(cfg, seed=4, compile=True).fit(compiled, item_rows)
    assert [m for m, _ in views] == [compiled] and during and all(during)  # the passes went through it
    assert torch._dynamo.config.suppress_errors == before  # the user's setting is back
    assert getattr(compiled, "_compiled_call_impl", None) is None  # the network itself stays eager
    fresh = _net(item_rows.shape[1])
    fresh.load_state_dict(compiled.state_dict())  # no "_orig_mod." prefixes
    for name, value in eager.state_dict().items():
        torch.testing.assert_close(compiled.state_dict()[name], value, atol=1e-5, rtol=1e-4)


def test_run_compile_is_a_boolean_setting():
    from aerec.config import RunConfig
    from aerec.errors import ConfigError

    assert RunConfig(compile=True).compile is True
    with pytest.raises(ConfigError, match="run.compile"):
        RunConfig(compile="yes")


def _epochs_checkpointed(monkeypatch, tmp_path, rate: float, **trainer_options) -> list[int]:
    """The epochs a small Adam fit (5 epochs, budget 0.05) checkpoints into ``tmp_path / "ckpt"``
    when a checkpoint is costed at ``rate`` bytes a second before any has been timed."""
    monkeypatch.setattr(loop, "CHECKPOINT_BYTES_PER_SECOND", rate)
    written = []
    save = Trainer._save_checkpoint

    def counted(self, net, optimizer, scheduler, state):
        written.append(state.epoch)
        save(self, net, optimizer, scheduler, state)

    monkeypatch.setattr(Trainer, "_save_checkpoint", counted)
    rng = np.random.default_rng(0)
    rows = sp.csr_array(rng.integers(1, 6, size=(30, 20)).astype(np.float32) * (rng.random((30, 20)) < 0.3))
    torch.manual_seed(0)
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=8, epochs=5, validation=0.0, checkpoint_budget=0.05)
    Trainer(cfg, seed=0, checkpoint_dir=tmp_path / "ckpt", **trainer_options).fit(Autoencoder(rows.shape[1], (4,)), rows)
    return written


@pytest.mark.parametrize("rate, first", [(1e12, 1), (1.0, 5)])
def test_the_first_checkpoint_waits_for_its_estimated_cost_and_the_last_is_always_written(
        tmp_path, monkeypatch, rate, first):
    # A checkpoint's cost before any has been timed: its bytes at CHECKPOINT_BYTES_PER_SECOND.
    # Cheap (a fast disk): the first after epoch 1. Dear (1 byte/s): none until the last
    # epoch, which a run that asked for checkpoints always leaves.
    written = _epochs_checkpointed(monkeypatch, tmp_path, rate)
    assert written[0] == first, written  # dear: the only one, the last epoch's
    assert read_checkpoint(tmp_path / "ckpt") is not None


@pytest.mark.parametrize("rate, first", [(1e12, 1), (1.0, None)])
def test_without_a_final_checkpoint_the_budget_alone_decides(tmp_path, monkeypatch, rate, first):
    # final_checkpoint=False (aerec train into its default folder): cheap, the first after
    # epoch 1 as before; dear (1 byte/s), none at all, not even the last epoch's.
    written = _epochs_checkpointed(monkeypatch, tmp_path, rate, final_checkpoint=False)
    assert (written[0] if written else None) == first, written
    assert has_checkpoint(tmp_path / "ckpt") == (first is not None)


def test_an_lbfgs_checkpoint_is_costed_at_its_full_size_from_the_first_epoch(item_rows, tmp_path):
    # After one epoch L-BFGS holds a few of its stored pairs; its checkpoints will hold them all.
    from aerec.training.optimizers import LBFGS_HISTORY

    cfg = TrainConfig(optimizer="lbfgs", lr=1.0, batch_size=0, lbfgs_iterations=2, epochs=1, validation=0.0)
    net = _net(item_rows.shape[1])
    Trainer(cfg, seed=0).fit(net, item_rows)
    optimizer = torch.optim.LBFGS(net.parameters(), max_iter=2, history_size=LBFGS_HISTORY)
    def closure():
        optimizer.zero_grad()
        loss = sum((p ** 2).sum() for p in net.parameters())
        loss.backward()
        return loss
    optimizer.step(closure)
    state = loop.LoopState()
    weights = sum(p.numel() * p.element_size() for p in net.parameters())
    now = loop._state_bytes(net, optimizer, state)
    assert now < weights * (2 + 2 * LBFGS_HISTORY)  # a couple of pairs so far
    assert loop._expected_checkpoint_bytes(net, optimizer, state, cfg) >= weights * (2 + 2 * LBFGS_HISTORY)
    adam = TrainConfig(optimizer="adam")
    assert loop._expected_checkpoint_bytes(net, optimizer, state, adam) == now
