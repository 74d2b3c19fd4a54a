"""Devices and precision (aerec.device): where models train and load, bf16 autocast, and
batches built on the device from their sparse parts.

The CPU tests run everywhere. The CUDA tests (CPU and GPU agree within float tolerance, bf16
close to fp32, a GPU model loads on the CPU) skip on machines without a GPU.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from aerec import training
from aerec.config import Config, RunConfig, load_config
from aerec.data.batches import _coo_parts, dense_rows
from aerec.device import autocast, dense_on_device, loading_device, resolve_precision
from aerec.errors import ConfigError
from aerec.recommender import Recommender
from aerec.testing import planted_ratings, single_thread
from aerec.training import loop  # patched where autocast is used

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def planted():
    return planted_ratings()


def _model(device: str = "cpu", precision: str = "fp32", **train) -> Recommender:
    """A small dropout-free U-AutoRec trained with Adam (deterministic given the device)."""
    config = Config(
        model={"kind": "autorec", "hidden": [16], "orientation": "user", "l2": 0.1},
        train={"optimizer": "adam", "lr": 0.02, "batch_size": 8, "epochs": 15, "validation": 0.1, **train},
        run={"seed": 0, "device": device, "precision": precision},
    )
    return Recommender(config=config)


# ----------------------------------------------------------------------------- loading devices
def test_a_model_trained_on_a_gpu_loads_on_the_cpu(planted, tmp_path, monkeypatch):
    model = _model().fit(planted.train)
    model.save(tmp_path / "m")
    # What a GPU run writes: run.device names the GPU it trained on.
    meta_path = tmp_path / "m" / "model.json"
    meta = json.loads(meta_path.read_text())
    meta["run"]["device"] = "cuda:1"
    meta_path.write_text(json.dumps(meta))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = Recommender.load(tmp_path / "m")
    assert loaded.device_ == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in loaded.net_.parameters())
    users, items = planted.test.frame["user"].to_numpy(), planted.test.frame["item"].to_numpy()
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    assert len(loaded.recommend(users[0], n=3)) == 3


def test_loading_device_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cpu", "cuda", "cuda:0", "cuda:3", "auto"):
        assert loading_device(name) == torch.device("cpu"), name


def test_loading_device_with_fewer_gpus_than_the_training_machine(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert loading_device("cpu") == torch.device("cpu")
    assert loading_device("auto") == torch.device("cuda")
    assert loading_device("cuda:0") == torch.device("cuda:0")
    assert loading_device("cuda:3") == torch.device("cuda")  # that GPU is not here: the current one


def test_cuda_without_a_gpu_is_refused_for_training(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    from aerec.errors import ConfigError

    with pytest.raises(ConfigError, match="no CUDA device is available; use --device cpu or auto"):
        training.resolve_device("cuda")  # a setting this machine cannot honour: exit 2, not 1
    assert training.resolve_device("auto") == torch.device("cpu")


# ----------------------------------------------------------------------------- precision
def test_precision_resolution_on_the_cpu():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None  # fp32 on the CPU unless asked
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    with pytest.raises(ConfigError, match="run.precision must be one of auto, fp32, bf16; got 'fp16'"):
        resolve_precision("fp16", cpu)


def test_precision_resolution_on_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision("auto", torch.device("cuda")) is torch.bfloat16  # on by default on a GPU
    assert resolve_precision("fp32", torch.device("cuda")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla V100")
    assert resolve_precision("auto", torch.device("cuda")) is None  # an older GPU: fp32
    with pytest.raises(ConfigError, match="Tesla V100 does not support bf16; use run.precision=fp32"):
        resolve_precision("bf16", torch.device("cuda"))


def test_run_precision_is_a_checked_setting():
    assert RunConfig().precision == "auto"
    assert load_config(None, ["run.precision=fp32"]).resolve_run().precision == "fp32"
    with pytest.raises(ConfigError, match="run.precision must be auto, fp32 or bf16; got 'half'"):
        load_config(None, ["run.precision=half"])


def test_autocast_runs_the_products_in_bf16_and_the_loss_in_fp32():
    layer = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    with autocast("cpu", torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16
    with autocast("cpu", None):
        assert layer(x).dtype == torch.float32


def test_the_recommender_trains_under_the_precision_it_is_given(planted, monkeypatch):
    seen: list = []
    real = loop.autocast

    def spy(device, dtype):
        seen.append((torch.device(device).type, dtype))
        return real(device, dtype)

    monkeypatch.setattr(loop, "autocast", spy)
    fp32 = _model(precision="auto").fit(planted.train)
    assert seen and set(seen) == {("cpu", None)}  # auto on a CPU: fp32
    seen.clear()
    bf16 = _model(precision="bf16").fit(planted.train)
    assert seen and set(seen) == {("cpu", torch.bfloat16)}
    # bf16 products are coarser (8 bits of mantissa) but learn the same thing.
    users, items = planted.test.frame["user"].to_numpy(), planted.test.frame["item"].to_numpy()
    truth = planted.test.frame["rating"].to_numpy()
    rmse = {name: float(np.sqrt(np.mean((m.predict(users, items) - truth) ** 2))) for name, m in
            (("fp32", fp32), ("bf16", bf16))}
    assert rmse["bf16"] == pytest.approx(rmse["fp32"], abs=0.05), rmse
    assert all(p.dtype == torch.float32 for p in bf16.net_.parameters())  # weights stay fp32


@pytest.mark.parametrize("batch_format", ["sparse", "dense"])
def test_bf16_on_the_sparse_path_says_what_it_does_not_reach(planted, batch_format):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _model(precision="bf16", batch_format=batch_format, epochs=1).fit(planted.train)
    said = [str(w.message) for w in caught if "reaches only the hidden-to-hidden layers" in str(w.message)]
    assert bool(said) == (batch_format == "sparse"), said  # (once a fit: the refit says it again)


def test_lbfgs_ignores_bf16(planted, monkeypatch):
    seen: list = []
    real = loop.autocast
    monkeypatch.setattr(loop, "autocast", lambda d, t: seen.append(t) or real(d, t))
    _model(precision="bf16", optimizer="lbfgs", batch_size=0, lr=1.0, epochs=2).fit(planted.train)
    assert set(seen) <= {None}  # the line search needs the exact objective


# ----------------------------------------------------------------------------- batches on the device
def test_batches_built_on_the_device_equal_the_host_ones(planted):
    rows = planted.train_matrix().rows("user")
    index = np.array([5, 0, 17, 3])
    local, cols, vals = _coo_parts(rows, index)
    x, mask = dense_on_device(local, cols, vals, (len(index), rows.shape[1]), "cpu")
    hx, hmask = dense_rows(rows, index)
    torch.testing.assert_close(x, hx, rtol=0, atol=0)
    torch.testing.assert_close(mask, hmask, rtol=0, atol=0)
    assert mask.sum() == rows[index].nnz  # a stored 0 would count too: the mask is the structure


def test_no_pinned_memory_without_cuda(monkeypatch, planted):
    """pin_memory() needs a CUDA runtime: on the CPU the parts are plain tensors."""
    calls = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *a: calls.append(1) or self)
    rows = planted.train_matrix().rows("user")
    local, cols, vals = _coo_parts(rows, np.arange(3))
    dense_on_device(local, cols, vals, (3, rows.shape[1]), "cpu")
    dense_rows(rows, np.arange(3), device="cpu")
    assert calls == []


# ----------------------------------------------------------------------------- on a GPU
@needs_cuda
def test_gpu_batches_equal_the_host_ones(planted):
    rows = planted.train_matrix().rows("user")
    index = np.arange(rows.shape[0])
    x, mask = dense_rows(rows, index, device="cuda")
    hx, hmask = dense_rows(rows, index)
    assert x.device.type == "cuda"
    torch.testing.assert_close(x.cpu(), hx, rtol=0, atol=0)
    torch.testing.assert_close(mask.cpu(), hmask, rtol=0, atol=0)


@needs_cuda
def test_cpu_and_gpu_give_the_same_model_within_float_tolerance(planted):
    cpu = _model("cpu", "fp32").fit(planted.train)
    gpu = _model("cuda", "fp32").fit(planted.train)
    assert gpu.device_.type == "cuda" and next(gpu.net_.parameters()).device.type == "cuda"
    users, items = planted.test.frame["user"].to_numpy(), planted.test.frame["item"].to_numpy()
    np.testing.assert_allclose(gpu.predict(users, items), cpu.predict(users, items), atol=2e-3)
    assert [r.epoch for r in gpu.history_] == [r.epoch for r in cpu.history_]
    np.testing.assert_allclose([r.loss for r in gpu.history_], [r.loss for r in cpu.history_], rtol=1e-3)


@needs_cuda
def test_bf16_on_a_gpu_is_the_default_and_close_to_fp32(planted):
    fp32 = _model("cuda", "fp32").fit(planted.train)
    auto = _model("cuda", "auto").fit(planted.train)
    users, items = planted.test.frame["user"].to_numpy(), planted.test.frame["item"].to_numpy()
    truth = planted.test.frame["rating"].to_numpy()
    errors = [float(np.sqrt(np.mean((m.predict(users, items) - truth) ** 2))) for m in (fp32, auto)]
    assert errors[1] == pytest.approx(errors[0], abs=0.05)


@needs_cuda
def test_a_gpu_model_predicts_the_same_on_the_cpu(planted, tmp_path, monkeypatch):
    gpu = _model("cuda", "fp32").fit(planted.train)
    gpu.save(tmp_path / "m")
    users, items = planted.test.frame["user"].to_numpy(), planted.test.frame["item"].to_numpy()
    on_gpu = gpu.predict(users, items)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cpu = Recommender.load(tmp_path / "m")
    assert cpu.device_.type == "cpu"
    np.testing.assert_allclose(cpu.predict(users, items), on_gpu, atol=1e-4)

