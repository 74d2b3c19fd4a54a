"""The sparse training path: the same objective and gradients as the dense one, chosen by the
measured cost rule, and nothing of size rows x columns ever made.

The sparse path (``train.batch_format``, :func:`aerec.training.choose_batch_format`) feeds a
:class:`~aerec.data.batches.SparseBatch` to ``Autoencoder.forward_observed``: the first layer
reads the observed cells only (``embedding_bag``) and the last layer is evaluated at them only
(SDDMM). Stored zeros are observed cells on both paths.
"""

from __future__ import annotations

import json
import os
import time
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from aerec.config import Config, TrainConfig
from aerec.data.batches import dense_rows, observed_targets, sparse_batch
from aerec.errors import ConfigError, TrainingError
from aerec.models.implicit_networks import MultVAE
from aerec.losses import LOSSES
from aerec.models.autoencoder import Autoencoder
from aerec.recommender import Recommender
from aerec.testing import PlantedData, RecommenderContract, planted_ratings, single_thread
from aerec.training import Trainer, batch_format, choose_batch_format, resolve_threads  # batch_format: patched


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


def _random_rows(seed: int = 0, n_rows: int = 12, n_cols: int = 17, density: float = 0.3, binary: bool = False) -> sp.csr_array:
    """A random CSR with an empty row, a stored 0 in every row that has cells, sorted indices."""
    rng = np.random.default_rng(seed)
    observed = rng.random((n_rows, n_cols)) < density
    observed[3] = False  # an empty row: nothing to learn from, still a row of the batch
    r, c = np.nonzero(observed)
    values = (rng.integers(0, 2, len(r)) if binary else rng.integers(1, 6, len(r))).astype(np.float32)
    first = np.unique(r, return_index=True)[1]
    values[first] = 0.0  # stored zeros: real ratings (dislikes), not blanks
    csr = sp.csr_array((values, (r, c)), shape=(n_rows, n_cols))
    csr.sort_indices()
    assert csr.nnz == len(r)  # the zeros stayed in the structure
    return csr


def _net(n: int, seed: int = 0, **kw) -> Autoencoder:
    torch.manual_seed(seed)
    encoder, decoder = kw.pop("encoder", [6]), kw.pop("decoder", None)
    net = Autoencoder(n, encoder, decoder, **kw)
    if net.use_baseline:
        net.set_baseline(3.2, torch.linspace(-0.5, 0.5, n), 4.0)
    return net


# ----------------------------------------------------------------------------- SparseBatch
def test_a_sparse_batch_holds_the_rows_cells_and_reads_like_a_dense_batch():
    csr = _random_rows()
    rows = np.array([5, 3, 0])  # any order, an empty row among them
    batch = sparse_batch(csr, rows)
    x, mask = dense_rows(csr, rows)
    assert batch.shape == tuple(x.shape) and batch.numel() == x.numel() and batch.nnz == int(mask.sum())
    assert batch.counts().tolist() == mask.sum(1).tolist()
    assert torch.equal(batch.values, x[mask > 0]) and torch.equal(batch.cols, torch.nonzero(mask)[:, 1])
    assert torch.equal(batch.row_ids, torch.nonzero(mask)[:, 0])
    assert (batch.values == 0).any()  # the stored zeros came along
    target, ones = observed_targets(batch, None)
    assert torch.equal(target, batch.values) and bool((ones == 1).all())
    dense_target, dense_mask = observed_targets(x, mask)
    assert dense_target is x and dense_mask is mask


# ----------------------------------------------------------------------------- equivalence
VARIANTS = {
    "plain": {},
    "baseline": {"baseline": True},
    "mask_input": {"mask_input": True},
    "tied": {"tied": True, "encoder": [8, 4]},
    "deep": {"encoder": [8, 4], "decoder": [8], "activation": "selu", "output_activation": "selu"},
    "code_dropout in eval": {"code_dropout": 0.5},
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_outputs_at_observed_cells_equal_the_dense_forward(variant):
    csr = _random_rows()
    net = _net(csr.shape[1], **VARIANTS[variant]).eval()
    x, mask = dense_rows(csr, np.arange(csr.shape[0]))
    with torch.no_grad():
        dense_out = net(x, mask)[mask > 0]
        sparse_out = net(sparse_batch(csr, np.arange(csr.shape[0])))  # forward -> forward_observed
        code = net.encode_sparse(sparse_batch(csr, np.arange(csr.shape[0])))
    torch.testing.assert_close(sparse_out, dense_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(code, net.encode(x, mask), rtol=1e-5, atol=1e-6)


def _objective_and_grads(trainer, net, x, mask, loss, l2, n_obs, code_l1):
    net.zero_grad(set_to_none=True)
    objective, err, count = trainer._objective(net, x, mask, LOSSES[loss], l2, n_obs, code_l1)
    objective.backward()
    return float(objective.detach()), float(err.detach()), float(count), {k: p.grad.clone() for k, p in net.named_parameters()}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("loss,normalization,l2,code_l1", [
    ("mse", "observed", 0.0, 0.0), ("mse", "all", 0.5, 0.0), ("mse", "observed", 0.0, 0.01), ("bce", "observed", 0.1, 0.0),
])
def test_the_trainer_objective_and_its_gradients_are_the_same_on_both_paths(variant, loss, normalization, l2, code_l1):
    csr = _random_rows(seed=1, binary=loss == "bce")
    kw = dict(VARIANTS[variant])
    if loss == "bce":
        kw.pop("baseline", None)  # a rating-scale bias makes no sense on logits
    net = _net(csr.shape[1], seed=2, **kw).eval()  # eval: no dropout draws, so both see the same function
    trainer = Trainer(TrainConfig(loss_normalization=normalization))
    rows = np.arange(csr.shape[0])
    x, mask = dense_rows(csr, rows)
    dense = _objective_and_grads(trainer, net, x, mask, loss, l2, csr.nnz, code_l1)
    sparse = _objective_and_grads(trainer, net, sparse_batch(csr, rows), None, loss, l2, csr.nnz, code_l1)
    assert sparse[:3] == pytest.approx(dense[:3], rel=1e-5)
    assert dense[2] == csr.nnz  # the stored zeros count as observed cells
    for name, grad in dense[3].items():
        torch.testing.assert_close(sparse[3][name], grad, rtol=1e-4, atol=1e-6, msg=f"gradient of {name}")


def test_the_observed_product_has_the_right_gradients():
    from aerec.models.autoencoder import _ObservedProduct

    rows = _random_rows(seed=6, n_rows=5, n_cols=7, density=0.5)
    for batch in (sparse_batch(rows, np.arange(5)), sparse_batch(rows, np.arange(5), by_column=True)):
        h = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
        weight = torch.randn(7, 3, dtype=torch.float64, requires_grad=True)
        out = _ObservedProduct.apply(h, weight, batch)
        torch.testing.assert_close(out, (h @ weight.T)[batch.row_ids, batch.cols])
        assert torch.autograd.gradcheck(lambda a, b: _ObservedProduct.apply(a, b, batch), (h, weight))
        tied = torch.randn(3, 7, dtype=torch.float64, requires_grad=True)  # a tied decoder reads a transposed view
        assert torch.autograd.gradcheck(lambda a, b: _ObservedProduct.apply(a, b.t(), batch), (h, tied))


@pytest.mark.parametrize("mask_input", [False, True])
def test_a_batch_with_its_column_pattern_gives_the_same_network_function(mask_input):
    # Full-batch chunks carry their column pattern (CSR products); minibatches don't (embedding_bag).
    rows = _random_rows(seed=8)
    net = _net(rows.shape[1], mask_input=mask_input)
    results = []
    for by_column in (False, True):
        net.zero_grad()
        out = net(sparse_batch(rows, np.arange(rows.shape[0]), by_column=by_column))
        (out ** 2).sum().backward()
        results.append((out.detach(), [p.grad.clone() for p in net.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b)


def test_the_input_product_is_the_dense_product_with_its_gradient():
    from aerec.models.autoencoder import _SparseInputProduct

    csr = _random_rows(seed=7, n_rows=6, n_cols=9, density=0.4)
    rows = np.array([4, 0, 5, 2])  # a batch in any row order
    batch = sparse_batch(csr, rows, by_column=True)
    dense = torch.from_numpy(csr.toarray()[rows]).double()  # (4, 9)
    table = torch.randn(9, 3, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(_SparseInputProduct.apply(table, batch.values, batch), dense @ table)
    assert torch.autograd.gradcheck(lambda t: _SparseInputProduct.apply(t, batch.values, batch), (table,))
    col_offsets, cell_rows, order = batch.by_column
    assert torch.equal(torch.diff(col_offsets), torch.bincount(batch.cols, minlength=9))
    assert torch.equal(batch.cols[order], torch.sort(batch.cols, stable=True).values)
    assert torch.equal(cell_rows, batch.row_ids[order])


def test_corruption_drops_or_rescales_observed_values_only():
    net = _net(10, input_dropout=0.5).train()
    values = torch.arange(1.0, 2001.0)
    torch.manual_seed(0)
    out = net.corrupt_values(values)
    kept = out != 0
    torch.testing.assert_close(out[kept], values[kept] * 2.0)  # inverted dropout
    assert 0.4 < float(kept.float().mean()) < 0.6
    assert torch.equal(net.eval().corrupt_values(values), values)  # nothing at prediction time
    noisy = _net(10, input_noise=0.1).train().corrupt_values(values)
    assert 0.05 < float((noisy - values).std()) < 0.15


@pytest.mark.parametrize("optimizer,batch_size", [("sgd", 4), ("adam", 5), ("lbfgs", 0)])
def test_an_epoch_trains_to_the_same_weights_on_both_paths(optimizer, batch_size):
    csr = _random_rows(seed=3, n_rows=20, n_cols=15)
    weights = {}
    for fmt in ("dense", "sparse"):
        net = _net(csr.shape[1], seed=4, baseline=True)
        cfg = TrainConfig(optimizer=optimizer, lr=0.05 if optimizer != "lbfgs" else 1.0, batch_size=batch_size,
                          epochs=2, lbfgs_iterations=3, batch_format=fmt)
        trainer = Trainer(cfg, seed=7)
        trainer.fit(net, csr, l2=0.1)
        assert trainer.batch_format == fmt
        weights[fmt] = net.state_dict()
    for name, value in weights["dense"].items():
        torch.testing.assert_close(weights["sparse"][name], value, rtol=1e-4, atol=1e-5, msg=name)


def test_every_row_of_a_batch_is_trained_also_with_shuffling_and_several_lbfgs_chunks(monkeypatch):
    monkeypatch.setattr(batch_format, "SPARSE_CHUNK_CELLS", 7)  # many small chunks of the full-batch pass
    csr = _random_rows(seed=5, n_rows=30, n_cols=9)
    net = _net(9, seed=0)
    trainer = Trainer(TrainConfig(optimizer="lbfgs", batch_size=0, epochs=1, lbfgs_iterations=2, batch_format="sparse"))
    cache = batch_format.SparseCache(csr, torch.device("cpu"))
    assert len(cache.chunks) > 3
    assert sorted(np.concatenate(cache.chunks).tolist()) == list(range(30))
    assert sum(b.nnz for b, _ in cache) == csr.nnz
    result = trainer.fit(net, csr)
    assert result.history[0].train_rmse > 0  # sse and cells summed over every chunk
    assert result.history and np.isfinite(result.history[0].loss)


# ----------------------------------------------------------------------------- the choice
def _cfg(**kw) -> TrainConfig:
    return TrainConfig(**kw)


def test_auto_takes_the_sparse_path_for_sparse_matrices_and_the_dense_one_for_dense_matrices(monkeypatch):
    monkeypatch.setattr(batch_format, "SPARSE_MIN_WORK", 0)  # tiny batches: see the next test
    net = _net(17)
    sparse_rows = _random_rows(density=0.05)
    dense_rows_ = _random_rows(density=0.6)
    assert choose_batch_format(net, sparse_rows, config=_cfg(), loss="mse") == "sparse"
    assert choose_batch_format(net, dense_rows_, config=_cfg(), loss="mse") == "dense"
    assert choose_batch_format(net, dense_rows_, config=_cfg(batch_format="sparse"), loss="mse") == "sparse"
    assert choose_batch_format(net, sparse_rows, config=_cfg(batch_format="dense"), loss="mse") == "dense"
    # Not on a GPU, nor in a group of processes (not measured there), unless asked for.
    assert choose_batch_format(net, sparse_rows, config=_cfg(), loss="mse", device="meta") == "dense"
    assert choose_batch_format(net, sparse_rows, config=_cfg(), loss="mse", distributed=True) == "dense"


def test_auto_keeps_small_batches_of_small_networks_dense(monkeypatch):
    rows = _random_rows(density=0.05)  # 12 x 17
    monkeypatch.setattr(batch_format, "SPARSE_MIN_WORK", 12 * 17 * 6)  # one full batch of the 6-unit network
    assert choose_batch_format(_net(17), rows, config=_cfg(batch_size=0), loss="mse") == "sparse"
    assert choose_batch_format(_net(17), rows, config=_cfg(batch_size=6), loss="mse") == "dense"  # half the work
    assert choose_batch_format(_net(17, encoder=[12]), rows, config=_cfg(batch_size=6), loss="mse") == "sparse"


def test_auto_takes_the_sparse_path_when_a_dense_batch_would_be_too_large(monkeypatch):
    monkeypatch.setattr(batch_format, "DENSE_BATCH_CELLS", 100)
    rows = _random_rows(density=0.6)  # 12 x 17: dense enough for the dense path...
    assert choose_batch_format(_net(17), rows, config=_cfg(batch_size=4), loss="mse") == "dense"  # 68 cells
    assert choose_batch_format(_net(17), rows, config=_cfg(batch_size=8), loss="mse") == "sparse"  # 136 cells
    assert choose_batch_format(_net(17), rows, config=_cfg(batch_size=0), loss="mse") == "sparse"  # all 12 rows


def test_objectives_that_read_every_cell_stay_dense_and_asking_otherwise_is_an_error():
    rows = _random_rows(density=0.05)
    vae = MultVAE(17, [8, 4])
    assert choose_batch_format(vae, rows, config=_cfg(), loss="multinomial") == "dense"
    with pytest.raises(TrainingError, match="no sparse path"):
        choose_batch_format(vae, rows, config=_cfg(batch_format="sparse"), loss="multinomial")
    assert choose_batch_format(_net(17), rows, config=_cfg(dense_refeeding=1), loss="mse") == "dense"
    with pytest.raises(TrainingError, match="dense re-feeding"):
        choose_batch_format(_net(17), rows, config=_cfg(dense_refeeding=1, batch_format="sparse"), loss="mse")


def test_batch_format_is_checked_in_the_config():
    with pytest.raises(ConfigError, match="train.batch_format must be auto, dense or sparse"):
        TrainConfig(batch_format="csr")
    assert Config.from_dict({"train": {"batch_format": "sparse"}}).train["batch_format"] == "sparse"


# ----------------------------------------------------------------------------- threads
def test_run_threads_zero_is_an_informed_choice(monkeypatch):
    from aerec.training import runtime

    assert resolve_threads(3) == 3  # an explicit count is taken as it is
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert resolve_threads(0) == 5  # the user's environment wins over the guess
    monkeypatch.delenv("OMP_NUM_THREADS")
    cpus = len(os.sched_getaffinity(0))
    for busy, expected in [(0.0, cpus), (0.4, cpus), (cpus + 3.0, 1), (cpus / 2, max(1, cpus - cpus // 2))]:
        monkeypatch.setattr(runtime, "busy_elsewhere", lambda cpus, b=busy: b)
        assert resolve_threads(0) == expected, busy
    # Where /proc/stat cannot be read, the 1-minute load average (this process counted as one).
    monkeypatch.setattr(runtime, "busy_elsewhere", lambda cpus: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.0, 1.0, 1.0))
    assert resolve_threads(0) == cpus
    monkeypatch.setattr(os, "getloadavg", lambda: (cpus + 3.0, 1.0, 1.0))
    assert resolve_threads(0) == 1


def test_busy_elsewhere_sees_a_process_that_keeps_a_core_busy():
    import subprocess
    import sys

    from aerec import _cpus

    cpus = _cpus.usable_cpus()
    quiet = _cpus.busy_elsewhere(cpus, window=0.3, reuse=0)
    spin = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.5)
        loaded = _cpus.busy_elsewhere(cpus, window=0.5, reuse=0)
    finally:
        spin.kill()
        spin.wait()
    assert 0.0 <= quiet <= len(cpus) and 0.0 <= loaded <= len(cpus)
    assert loaded >= quiet + 0.5 or loaded >= 0.9, (quiet, loaded)  # one more busy core, give or take
    assert _cpus.busy_elsewhere(cpus, window=5.0, reuse=60) == loaded  # reused, not measured again


def test_busy_elsewhere_does_not_count_this_processs_own_threads():
    # After a fit, torch's OpenMP threads spin a moment before they sleep: the next fit's
    # measurement must not take them for another job.
    import threading

    from aerec import _cpus

    cpus = _cpus.usable_cpus()
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    quiet = _cpus.busy_elsewhere(cpus, window=0.3, reuse=0)
    worker = threading.Thread(target=spin)
    worker.start()
    try:
        time.sleep(0.1)
        spinning = _cpus.busy_elsewhere(cpus, window=0.5, reuse=0)
    finally:
        stop.set()
        worker.join()
    assert spinning < quiet + 0.5, (quiet, spinning)


def test_a_window_opened_early_counts_the_start_up_and_saves_the_sleep(monkeypatch):
    # The aerec command opens the window as it starts; its own start-up work (here: this
    # thread spinning) must not count, another process's must, and no sleep is needed then.
    import subprocess
    import sys

    from aerec import _cpus

    cpus = _cpus.usable_cpus()

    def busy_for(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass

    quiet = _cpus.busy_elsewhere(cpus, window=0.4, reuse=0)
    _cpus.open_window(cpus)
    busy_for(0.4)
    slept: list[float] = []
    monkeypatch.setattr(_cpus.time, "sleep", slept.append)
    own = _cpus.busy_elsewhere(cpus, window=0.3, reuse=0)
    assert slept == [] and own < quiet + 0.5, (quiet, own)
    spin = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 5\nwhile time.time() < end: pass"])
    try:
        monkeypatch.undo()
        time.sleep(0.5)
        _cpus.open_window(cpus)
        time.sleep(0.4)
        loaded = _cpus.busy_elsewhere(cpus, window=0.3, reuse=0)
    finally:
        spin.kill()
        spin.wait()
    assert loaded >= own + 0.5 or loaded >= 0.9, (own, loaded)
    _cpus.open_window(cpus)
    monkeypatch.setattr(_cpus.time, "monotonic", lambda: 1e9)  # much later: the old window is stale
    monkeypatch.setattr(_cpus.time, "sleep", slept.append)
    _cpus.busy_elsewhere(cpus, window=0.3, reuse=0)
    assert slept == [0.3]  # a fresh window, slept through


# ----------------------------------------------------------------------------- the whole estimator
_SPARSE = {"batch_format": "sparse"}
_FAST_ADAM = {"optimizer": "adam", "lr": 0.01, "batch_size": 8, "epochs": 60, "patience": 15, **_SPARSE}


def _model(kind: str, train: dict, **params) -> Recommender:
    return Recommender(config=Config(model={"kind": kind, **params}, train=dict(train)))


class TestSparsePathItemAutoRec(RecommenderContract):
    """The default family's settings, shrunk, on the sparse path (L-BFGS over sparse chunks)."""

    def make_model(self) -> Recommender:
        return _model("autorec", {"epochs": 8, "lbfgs_iterations": 10, "patience": 3, **_SPARSE},
                      preset="i-autorec", hidden=[16], l2=1.0)


class TestSparsePathUserAutoRecMaskInput(RecommenderContract):
    def make_model(self) -> Recommender:
        return _model("autorec", {"epochs": 8, "lbfgs_iterations": 10, "patience": 3, **_SPARSE},
                      preset="u-autorec", hidden=[16], l2=1.0, mask_input=True)


class TestSparsePathDenoising(RecommenderContract):
    """Input dropout drawn on the observed values."""

    def make_model(self) -> Recommender:
        return _model("dae", _FAST_ADAM, hidden=[16], l2=1.0, input_dropout=0.2)


class TestSparsePathSparseFamily(RecommenderContract):
    def make_model(self) -> Recommender:
        return _model("sparse", _FAST_ADAM, hidden=[16], l2=1.0, code_l1=1e-3)


class TestSparsePathTiedDeep(RecommenderContract):
    def make_model(self) -> Recommender:
        return _model("deep", {**_FAST_ADAM, "dense_refeeding": 0}, hidden=[16, 8, 16], code_dropout=0.5, tied=True)


class TestSparsePathLikeDislikeStackedAutoencoder(RecommenderContract):
    """Binary cross-entropy at observed cells; the zeros are ratings."""

    accuracy_ratio = 0.6

    def make_model(self) -> Recommender:
        return _model("sae", {"optimizer": "rmsprop", "lr": 0.01, "batch_size": 8, "epochs": 60, "patience": 20, **_SPARSE},
                      hidden=[20, 10, 20])

    def planted(self) -> PlantedData:
        return planted_ratings(binary=True)


# ----------------------------------------------------------------------------- memory
_MEMORY_CHECK = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, scipy.sparse as sp, torch
    from aerec.config import TrainConfig
    from aerec.models.autoencoder import Autoencoder
    from aerec.training import Trainer

    torch.set_num_threads(1)
    n_rows, n_cols, per_row = 20_000, 1_000_000, 3  # dense: 2 * 10^10 cells (80 GB); one batch of 512: 4 GB
    rng = np.random.default_rng(0)
    rows = np.repeat(np.arange(n_rows), per_row)
    cols = rng.integers(0, n_cols, len(rows))
    csr = sp.csr_array((rng.integers(1, 6, len(rows)).astype(np.float32), (rows, cols)), shape=(n_rows, n_cols))
    csr.sum_duplicates()
    torch.manual_seed(0)
    net = Autoencoder(n_cols, [2], baseline=True)
    net.set_baseline(3.0, torch.zeros(n_cols), 5.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {"before_mib": before}
    for name, cfg in {"adam": TrainConfig(optimizer="adam", batch_size=512, epochs=1),
                      "lbfgs": TrainConfig(optimizer="lbfgs", batch_size=0, epochs=1, lbfgs_iterations=2)}.items():
        trainer = Trainer(cfg)
        result = trainer.fit(net, csr)
        out[name] = {"format": trainer.batch_format, "loss": result.history[0].loss,
                     "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_training_never_allocates_anything_of_rows_times_columns():
    """20,000 rows x 1,000,000 columns with 60,000 cells: one dense batch of 512 rows would be
    4 GB (values and mask), the matrix 80 GB. An epoch of Adam and then one of L-BFGS in a fresh
    process must stay within 500 MiB of what the process held before training. What does grow
    is of the size of the weights (24 MB with the baseline's buffers): their gradients, Adam's
    two moments, a transposed copy per batch, L-BFGS's flat vectors and its (s, y) history;
    measured: +190 MiB after Adam, +290 MiB after both."""
    done = subprocess.run([sys.executable, "-c", _MEMORY_CHECK], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    for name in ("adam", "lbfgs"):
        assert out[name]["format"] == "sparse"
        assert np.isfinite(out[name]["loss"])
        grew = out[name]["peak_mib"] - out["before_mib"]
        assert grew < 500, f"{name}: the peak grew by {grew:.0f} MiB during training"


def test_the_gradients_repeat_bit_for_bit_on_two_threads():
    # The output bias used to be read as bias[cols]: its gradient was then summed from both
    # threads at once (index_put_ with accumulation), in an order that changed from one call
    # to the next, so two-thread fits did not repeat. One batch's gradients, five times over.
    csr = _random_rows(seed=3, n_rows=400, n_cols=300, density=0.4)  # ~48,000 cells: split across threads
    net = _net(csr.shape[1], seed=4, baseline=True).eval()
    batch = sparse_batch(csr, np.arange(csr.shape[0]))
    weights = torch.randn(batch.values.shape[0], generator=torch.Generator().manual_seed(5))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = []
        for _ in range(5):
            net.zero_grad(set_to_none=True)
            (net(batch) * weights).sum().backward()
            grads.append({name: p.grad.clone() for name, p in net.named_parameters()})
    finally:
        torch.set_num_threads(before)
    for other in grads[1:]:
        for name, grad in grads[0].items():
            assert torch.equal(grad, other[name]), name
