"""Training on several processes (aerec.distributed): sharding, loss scaling, and 2 real CPU
processes (gloo on 127.0.0.1) that must end with the weights of one process training alone.

The loss-scaling tests run in this process: they rebuild what DDP computes (the mean of every
process's gradient) by hand. The end-to-end tests start 2 worker processes with the
environment torchrun would give them (RANK, WORLD_SIZE, MASTER_ADDR, ...), running this very
file as a script, and one real ``torchrun --nproc-per-node 2 -m aerec train``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from aerec import distributed
from aerec.config import TrainConfig
from aerec.data.batches import dense_rows
from aerec.distributed import Group, Launch, Share
from aerec.errors import ConfigError
from aerec.models.implicit_networks import CDAE, MultDAE
from aerec.losses import LOSSES
from aerec.models.autoencoder import Autoencoder
from aerec.training import Trainer

WORLD = 2
TOLERANCE = 1e-5  # float32 sums in another order; far below any real difference


# ----------------------------------------------------------------------------- data and models
def _ratings(n_rows: int = 49) -> sp.csr_array:
    """User rows of a small MovieLens-like matrix. With 49 rows and batches of 16 the last global
    batch holds one row, so one of two processes gets an empty share."""
    from aerec.data.synthetic import synthetic_matrix

    csr = synthetic_matrix(3000, seed=1).rows("user")
    return sp.csr_array(csr[:n_rows])


def _positives(rows: sp.csr_array) -> sp.csr_array:
    out = rows.copy()
    out.data = np.ones_like(out.data)
    return out


def _autoencoder(n: int, **kw) -> Autoencoder:
    torch.manual_seed(0)
    return Autoencoder(n, [12], **kw)


def _validator(rows: sp.csr_array):
    """Validation RMSE: deterministic, so rank 0's figure is the single process's figure."""

    @torch.no_grad()
    def validate(net) -> float:
        x, mask = dense_rows(rows, np.arange(rows.shape[0]))
        err, count = LOSSES["mse"](net(x, mask), x, mask)
        return float(torch.sqrt(err / count))

    return validate


# ----------------------------------------------------------------------------- scenarios
# Each scenario trains the same way alone (in the test process) and in every worker; it
# returns the final weights and the history (without wall-clock times).
def _result(net, result) -> dict:
    history = [{k: v for k, v in dataclasses.asdict(r).items() if k != "seconds"} for r in result.history]
    return {
        "weights": {k: v.detach().clone() for k, v in net.state_dict().items()},
        "history": history, "stopped": result.stopped, "best_epoch": result.best_epoch,
    }


def scenario_adam(tmp: Path) -> dict:
    """Mini-batches of 16 (the last global batch: 1 row), Adam, L2, validation each epoch."""
    rows = _ratings()
    net = _autoencoder(rows.shape[1], baseline=False)
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=16, epochs=4, patience=0)
    validate = _validator(rows)
    if distributed.current().rank != 0:
        def validate(net) -> float:  # never called: rank 0's figure is broadcast
            return float("nan")
    result = Trainer(cfg, seed=3).fit(net, rows, l2=0.5, code_l1=0.01, validate=validate)
    return _result(net, result)


def scenario_sparse(tmp: Path) -> dict:
    """The sparse path (outputs at observed cells only) on shares of the global batch."""
    rows = _ratings()
    net = _autoencoder(rows.shape[1])
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=16, epochs=3, batch_format="sparse")
    return _result(net, Trainer(cfg, seed=3).fit(net, rows, l2=0.5, code_l1=0.01))


def scenario_stop(tmp: Path) -> dict:
    """Early stopping: rank 0 decides (no later epoch beats epoch 1 by 10), every rank stops."""
    rows = _ratings()
    net = _autoencoder(rows.shape[1])
    cfg = TrainConfig(optimizer="sgd", lr=0.01, batch_size=16, epochs=6, patience=1, min_delta=10.0)
    result = Trainer(cfg, seed=3).fit(net, rows, validate=_validator(rows))
    return _result(net, result)


def scenario_all_cells(tmp: Path) -> dict:
    """Per-cell normalisation (the course's), momentum, dense re-feeding."""
    rows = _ratings()
    net = _autoencoder(rows.shape[1])
    cfg = TrainConfig(optimizer="momentum", lr=0.05, batch_size=16, epochs=2, loss_normalization="all",
                      dense_refeeding=1)
    return _result(net, Trainer(cfg, seed=3).fit(net, rows))


def scenario_lbfgs(tmp: Path) -> dict:
    """Full-batch L-BFGS: the objective's chunks are split between the processes."""
    rows = _ratings()
    net = _autoencoder(rows.shape[1], baseline=True)
    net.set_baseline(3.5, torch.zeros(rows.shape[1]), 5.0)
    cfg = TrainConfig(optimizer="lbfgs", lr=1.0, batch_size=0, epochs=2, lbfgs_iterations=5)
    return _result(net, Trainer(cfg, seed=3).fit(net, rows, l2=1.0))


def scenario_multdae(tmp: Path) -> dict:
    """A network with its own objective (a mean over rows), with an empty share on one process."""
    rows = _positives(_ratings())
    torch.manual_seed(0)
    net = MultDAE(rows.shape[1], [16], dropout=0.0, l2=0.01)
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=16, epochs=3)
    return _result(net, Trainer(cfg, seed=3).fit(net, rows, loss="multinomial"))


def scenario_cdae(tmp: Path) -> dict:
    """CDAE reads the batch's row ids (its user nodes)."""
    rows = _positives(_ratings())
    torch.manual_seed(0)
    net = CDAE(rows.shape[1], rows.shape[0], hidden=8, corruption=0.0, l2=0.01)
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=16, epochs=3)
    return _result(net, Trainer(cfg, seed=3).fit(net, rows, loss="multinomial"))


def scenario_resume(tmp: Path) -> dict:
    """2 epochs with checkpoints, then a fresh start of every process resuming to 4 epochs."""
    rows = _ratings()
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=16, epochs=2)
    ckpt = tmp / "ckpt"
    Trainer(cfg, seed=3, checkpoint_dir=ckpt).fit(_autoencoder(rows.shape[1]), rows, l2=0.5)
    net = _autoencoder(rows.shape[1])  # the weights come from the checkpoint
    cfg = dataclasses.replace(cfg, epochs=4)
    result = Trainer(cfg, seed=3, checkpoint_dir=ckpt).fit(net, rows, l2=0.5, resume=True)
    return _result(net, result)


SCENARIOS = {
    "adam": scenario_adam, "sparse": scenario_sparse, "stop": scenario_stop, "all_cells": scenario_all_cells, "lbfgs": scenario_lbfgs,
    "multdae": scenario_multdae, "cdae": scenario_cdae, "resume": scenario_resume,
}


def _uninterrupted_resume(tmp: Path) -> dict:
    """What scenario_resume must equal: 4 epochs in one go."""
    rows = _ratings()
    net = _autoencoder(rows.shape[1])
    cfg = TrainConfig(optimizer="adam", lr=0.01, batch_size=16, epochs=4)
    return _result(net, Trainer(cfg, seed=3).fit(net, rows, l2=0.5))


# ----------------------------------------------------------------------------- the worker
def _worker(out: Path) -> None:
    """One process of the group (run as ``python tests/test_distributed.py OUT``)."""
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    launch = distributed.init_from_env("cpu")
    assert launch is not None, "the worker needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT"
    rank = launch.rank
    for name, run in SCENARIOS.items():
        scratch = out / name  # the same folder for every rank: checkpoints are shared
        if rank == 0:
            scratch.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        found = run(scratch)
        save_file({k: v.contiguous() for k, v in found["weights"].items()}, str(out / f"{name}-rank{rank}.safetensors"))
        facts = {k: v for k, v in found.items() if k != "weights"}
        (out / f"{name}-rank{rank}.json").write_text(json.dumps(facts, default=float), encoding="utf-8")
    distributed.shutdown()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _launch_workers(out: Path, timeout: float = 240.0) -> None:
    """Start WORLD workers with torchrun's environment; fail with their output if one fails."""
    port = _free_port()
    procs = []
    for rank in range(WORLD):
        env = {
            **os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(WORLD),
            "LOCAL_WORLD_SIZE": str(WORLD), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
            "OMP_NUM_THREADS": "1",
        }
        log = open(out / f"worker{rank}.log", "w")  # noqa: SIM115 - closed once the worker ends
        procs.append((subprocess.Popen([sys.executable, __file__, str(out)], env=env, stdout=log,
                                       stderr=subprocess.STDOUT), log))
    deadline = time.monotonic() + timeout
    try:
        for proc, _ in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    finally:
        for proc, log in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
    for rank, (proc, _) in enumerate(procs):
        if proc.returncode != 0:
            text = (out / f"worker{rank}.log").read_text()
            raise AssertionError(f"worker {rank} exited with {proc.returncode}:\n{text[-4000:]}")


@pytest.fixture(scope="module")
def group_run(tmp_path_factory) -> Path:
    """The results of every scenario on 2 processes (one launch for all of them)."""
    out = tmp_path_factory.mktemp("dist")
    _launch_workers(out)
    return out


def _load(out: Path, name: str, rank: int) -> dict:
    from safetensors.torch import load_file

    facts = json.loads((out / f"{name}-rank{rank}.json").read_text())
    return {**facts, "weights": load_file(str(out / f"{name}-rank{rank}.safetensors"))}


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


def _assert_history_close(ours: list[dict], alone: list[dict]) -> None:
    assert len(ours) == len(alone)
    for mine, ref in zip(ours, alone):
        for key, value in ref.items():
            if value is None or isinstance(value, str):
                assert mine[key] == value, key
            else:
                assert mine[key] == pytest.approx(value, rel=1e-4, abs=1e-6, nan_ok=True), (key, mine, ref)


# ----------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_two_processes_end_with_the_weights_of_one(group_run, name, tmp_path):
    torch.set_num_threads(1)
    alone = _uninterrupted_resume(tmp_path) if name == "resume" else SCENARIOS[name](tmp_path)
    for rank in range(WORLD):
        ours = _load(group_run, name, rank)
        diff = _max_diff(ours["weights"], alone["weights"])
        assert diff < TOLERANCE, f"{name}, rank {rank}: weights differ by {diff:.2e} from one process's"
        _assert_history_close(ours["history"], alone["history"])
        assert (ours["stopped"], ours["best_epoch"]) == (alone["stopped"], alone["best_epoch"])


def test_the_weights_actually_moved(group_run):
    """The comparison above would pass vacuously if nothing trained."""
    start = _autoencoder(_ratings().shape[1]).state_dict()
    moved = _max_diff(_load(group_run, "adam", 0)["weights"], start)
    assert moved > 100 * TOLERANCE


def test_every_process_takes_rank_0s_stopping_decision(group_run):
    for rank in range(WORLD):
        ours = _load(group_run, "stop", rank)
        assert ours["stopped"] == "early_stopping" and len(ours["history"]) == 2 and ours["best_epoch"] == 1
    # Rank 1's own validate() would say NaN (and stop training with an error): it was never asked.
    adam = _load(group_run, "adam", 1)
    assert all(np.isfinite(r["val_rmse"]) for r in adam["history"])


def test_only_rank_0_writes_checkpoints(group_run):
    ckpt = group_run / "resume" / "ckpt"
    assert (ckpt / "latest" / "checkpoint.json").is_file()
    assert not list(ckpt.glob(".ckpt-*")) and not (ckpt / ".latest-old").exists()
    assert json.loads((ckpt / "latest" / "checkpoint.json").read_text())["epoch"] == 4


# ----------------------------------------------------------------------------- the CLI under torchrun
def _torchrun() -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run"]


@pytest.mark.slow
def test_torchrun_trains_from_the_command_line_and_rank_0_saves_once(tmp_path):
    out = tmp_path / "model"
    cmd = [
        *_torchrun(), "--nproc-per-node", str(WORLD), "--master-addr", "127.0.0.1", "--master-port",
        str(_free_port()), "-m", "aerec", "train", "--data", "synthetic", "--n-ratings", "4000",
        "--model", "autorec", "--set", "train.optimizer=adam", "--set", "train.lr=0.01", "--batch-size", "32",
        "--epochs", "3", "--device", "cpu", "--seed", "5", "--out", str(out), "--json",
    ]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    reports = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1, done.stdout  # one process reports (and saved) the model
    report = json.loads(reports[0])
    assert report["epochs_run"] == 3 and report["out"] == str(out)
    # The folder holds the model and nothing was left half-written beside it.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert {"model.json", "model.safetensors", "history.csv"} <= {p.name for p in out.iterdir()}

    from aerec.loading import load_model

    model = load_model(out)
    assert model.device_.type == "cpu"
    user, item = model.users_.label(np.arange(3)), model.items_.label(np.arange(3))
    preds = model.predict(user, item)
    assert preds.shape == (3,) and np.all(np.isfinite(preds))


# ----------------------------------------------------------------------------- in this process
def test_alone_everything_is_a_no_op(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.init_from_env("cpu") is None
    group = distributed.current()
    assert (group.rank, group.world_size, group.active, group.is_main) == (0, 1, False, True)
    rows = np.arange(10)
    assert group.shard(rows) is rows and group.share(3, 10, 40) is None
    assert group.broadcast_float(1.5) == 1.5 and group.agree(True) and group.same(3)
    with distributed.main_first():
        distributed.barrier()
    assert distributed.is_main()


def test_launch_reads_torchruns_environment():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}
    assert Launch.from_env(env) == Launch(rank=3, world_size=4, local_rank=1)
    assert Launch.from_env({}) is None
    assert Launch.from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None  # one process trains alone


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"WORLD_SIZE": "two", "RANK": "0"}, "WORLD_SIZE must be a whole number; got 'two'"),
        ({"WORLD_SIZE": "2"}, "RANK is not set"),
        ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "a", "MASTER_PORT": "1"}, "RANK=2 must be below WORLD_SIZE=2"),
        ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK must be >= 0"),
        ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_PORT": "1"}, "MASTER_ADDR is not"),
    ],
)
def test_a_broken_launch_environment_is_named(env, match):
    with pytest.raises(ConfigError, match=match):
        Launch.from_env(env)


@pytest.mark.parametrize("n", [0, 1, 5, 16, 17])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_shards_cover_a_batch_once_in_order_and_evenly(n, world):
    batch = np.random.default_rng(n).permutation(100)[:n]
    parts = [Group(r, world).shard(batch) for r in range(world)]
    assert np.array_equal(np.concatenate(parts), batch)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1


def test_a_global_batch_smaller_than_the_group_is_refused():
    with pytest.raises(ConfigError, match="fewer than the 4 processes.*--batch-size 4"):
        Group(0, 4).check_batch_size(2, 100)
    with pytest.raises(ConfigError, match="only 3 row"):
        Group(0, 4).check_batch_size(0, 3)
    Group(0, 4).check_batch_size(4, 100)
    Group(0, 4).check_batch_size(0, 100)  # full batch: split in 4


def _grads(net) -> dict[str, torch.Tensor]:
    return {k: p.grad.detach().clone() for k, p in net.named_parameters() if p.grad is not None}


def _group_gradient(trainer, net, rows, batch, world, **kw):
    """What DDP computes: the mean over ``world`` processes of each share's gradient."""
    total: dict[str, torch.Tensor] = {}
    for rank in range(world):
        group = Group(rank, world)
        mine, share = trainer._shard(group, rows, batch)
        x, mask = dense_rows(rows, mine)
        row_ids = torch.from_numpy(mine) if hasattr(net, "training_loss") else None
        if share.rows == 0 and row_ids is not None:  # as the trainer does for an empty share
            x, mask, row_ids = x.new_zeros(1, x.shape[1]), mask.new_zeros(1, x.shape[1]), row_ids.new_zeros(1)
        net.zero_grad(set_to_none=True)
        objective, _, _ = trainer._objective(net, x, mask, rows=row_ids, share=share, **kw)
        objective.backward()
        for k, g in _grads(net).items():
            total[k] = total.get(k, 0) + g / world
    return total


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("normalization", ["observed", "all"])
@pytest.mark.parametrize("batch", [[3, 0, 7, 9, 12], [4]], ids=["5 rows", "1 row"])
def test_scaled_shares_give_the_gradient_of_the_global_batch(world, normalization, batch):
    rows = _ratings(20)
    trainer = Trainer(TrainConfig(loss_normalization=normalization))
    net = _autoencoder(rows.shape[1])
    kw = {"loss_fn": LOSSES["mse"], "l2": 0.3, "n_obs": rows.nnz, "code_l1": 0.05}
    batch = np.asarray(batch)
    net.zero_grad(set_to_none=True)
    x, mask = dense_rows(rows, batch)
    trainer._objective(net, x, mask, **kw)[0].backward()
    alone = _grads(net)
    together = _group_gradient(trainer, net, rows, batch, world, **kw)
    assert alone.keys() == together.keys()
    for k in alone:
        torch.testing.assert_close(together[k], alone[k], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("kind", ["multdae", "cdae"])
@pytest.mark.parametrize("batch", [[3, 0, 7, 9, 12], [4]], ids=["5 rows", "1 row"])
def test_scaled_shares_of_a_mean_over_rows_give_the_global_gradient(kind, batch):
    rows = _positives(_ratings(20))
    torch.manual_seed(0)
    net = (MultDAE(rows.shape[1], [8], dropout=0.0, l2=0.01) if kind == "multdae"
           else CDAE(rows.shape[1], rows.shape[0], hidden=6, corruption=0.0, l2=0.01))
    trainer = Trainer(TrainConfig())
    kw = {"loss_fn": LOSSES["multinomial"], "l2": 0.0, "n_obs": rows.nnz}
    batch = np.asarray(batch)
    x, mask = dense_rows(rows, batch)
    net.zero_grad(set_to_none=True)
    trainer._objective(net, x, mask, rows=torch.from_numpy(batch), **kw)[0].backward()
    alone = _grads(net)
    together = _group_gradient(trainer, net, rows, batch, 2, **kw)
    for k in alone:
        torch.testing.assert_close(together[k], alone[k], rtol=1e-5, atol=1e-7)


def test_a_share_scales_so_the_mean_is_the_global_figure():
    shares = [Group(r, 3).share(n, 7, 70) for r, n in enumerate([2, 3, 2])]
    assert all(isinstance(s, Share) for s in shares)
    assert sum(s.weight for s in shares) / 3 == pytest.approx(1.0)
    assert {s.denom for s in shares} == {70 / 3}


def test_each_process_takes_its_own_gpu():
    from aerec.distributed import _local_gpu

    assert [_local_gpu(r, 4) for r in range(4)] == [0, 1, 2, 3]
    assert _local_gpu(3, 1) == 0  # the scheduler gave this process one GPU
    with pytest.raises(ConfigError, match="LOCAL_RANK=2 but this machine has 2 GPU"):
        _local_gpu(2, 2)


def test_a_fixed_gpu_index_is_refused_under_torchrun(monkeypatch):
    env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ConfigError, match="give --device cuda"):
        distributed.init_from_env("cuda:1")


if __name__ == "__main__":  # a worker process: python tests/test_distributed.py OUT
    _worker(Path(sys.argv[1]))
