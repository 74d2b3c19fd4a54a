"""Hostile model directories: truncated, tampered or too-new files give a clear ModelFileError,
and loading never runs code (safetensors and JSON only).

tests/test_persistence.py covers the round trip, the checksum, missing files and a newer
format version. Here the attacker is smarter: they edit model.json or the tensors *and
recompute the checksum* (``_tamper`` rewrites the directory with write_model_dir), so only
the loader's own checks stand between a hostile file and a traceback, a huge allocation or
NaN answers. A hypothesis property then replaces any value of model.json with any JSON value.

    AEREC_FUZZ_EXAMPLES=10000 python -m pytest tests/test_reliability_model_files.py
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aerec.cli import app
from aerec.config import Config
from aerec.errors import AerecError, ModelFileError
from aerec.persistence import read_model_dir, write_model_dir
from aerec.recommender import Recommender
from aerec.testing import planted_ratings, single_thread
from aerec.training import read_checkpoint, write_checkpoint

EXAMPLES = int(os.environ.get("AEREC_FUZZ_EXAMPLES", "150"))
# torch says so when building the shape-only network of a tampered n_inputs = 0: expected here.
pytestmark = pytest.mark.filterwarnings("ignore:Initializing zero-element tensors:UserWarning")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    config = Config(model={"kind": "autorec", "hidden": [8], "l2": 1.0}, train={"epochs": 2, "lbfgs_iterations": 3})
    with single_thread():
        model = Recommender(config=config).fit(planted_ratings().train)
    return model.save(tmp_path_factory.mktemp("source") / "model")


def _tamper(source: Path, target: Path, change: Callable[[dict[str, torch.Tensor], dict[str, Any]], Any]) -> Path:
    """A copy of ``source`` with ``change(tensors, meta)`` applied and a valid checksum."""
    tensors, meta = read_model_dir(source)
    meta = {k: v for k, v in meta.items() if k not in ("format_version", "weights_sha256")}
    change(tensors, meta)
    shutil.rmtree(target, ignore_errors=True)
    return write_model_dir(target, tensors, meta, extras={"history.csv": (source / "history.csv").read_text()})


def _use(model: Recommender) -> None:
    """What a server does with a loaded model; every answer must be a finite number."""
    users, items = model.users_.to_list()[:3], model.items_.to_list()[:3]
    assert np.isfinite(model.predict(users, items)).all()
    assert np.isfinite(model.recommend(users[0], n=3)["score"].to_numpy(dtype=float)).all()
    assert np.isfinite(model.recommend_new({items[0]: float(model.scale_.high)}, n=3)["score"].to_numpy(dtype=float)).all()


def _net(prefix: str = "net."):
    return lambda tensors: [k for k in tensors if k.startswith(prefix)]


TAMPERINGS = {
    "negative n_inputs": (lambda t, m: m.update(n_inputs=-1), "do not fit together"),
    "zero n_inputs": (lambda t, m: m.update(n_inputs=0), "do not fit together"),
    "a billion inputs": (lambda t, m: m.update(n_inputs=10**9), "do not fit together.*instead of"),
    "a billion hidden units": (lambda t, m: m["model"].update(hidden=[10**9]), "do not fit together.*instead of"),
    "one user too few": (lambda t, m: m.update(users=m["users"][:-1]), "do not fit together"),
    "one item too many": (lambda t, m: m.update(items=m["items"] + ["intruder"]), "do not fit together"),
    "a repeated user": (lambda t, m: m.update(users=m["users"][:-1] + m["users"][:1]), "duplicate user"),
    "a user id past int64": (lambda t, m: m.update(users=list(range(len(m["users"]) - 1)) + [-(2**70)]),
                             "do not fit together"),
    "items not a list": (lambda t, m: m.update(items=5), "do not fit together"),
    "scale upside down": (lambda t, m: m.update(scale={"low": 5, "high": 1}), "scale"),
    "unknown kind": (lambda t, m: m.update(kind="trojan"), "unknown model"),
    "item info not a table": (lambda t, m: m.update(item_info=[1, 2]), "do not fit together"),
    "item info naming an item twice": (lambda t, m: m.update(item_info={"item": m["items"][:1] * 2, "title": ["a", "b"]}),
                                       "twice"),
    "an unknown loss": (lambda t, m: m.update(loss="weird"), "loss 'weird' is none of mse, bce"),
    "an unknown orientation": (lambda t, m: m.update(orientation="diagonal"), "orientation"),
    "weights of the wrong shape": (lambda t, m: t.update({k: torch.zeros(3, 3) for k in _net()(t) if k.endswith("weight")}),
                                   "instead of"),
    "weights missing": (lambda t, m: [t.pop(k) for k in _net()(t)], "missing"),
    "an extra tensor": (lambda t, m: t.update({"net.backdoor": torch.zeros(2)}), "unexpected"),
    "NaN weights": (lambda t, m: t.update({k: torch.full_like(t[k], math.nan) for k in _net()(t)}), "NaN or infinite"),
    "infinite ratings": (lambda t, m: t.update({"data.values": torch.full_like(t["data.values"], math.inf)}), "NaN or infinite"),
    "rating indices out of range": (lambda t, m: t.update({"data.indices": t["data.indices"] + 1}), "do not fit together"),
    "a short bias model": (lambda t, m: t.update({k: t[k][:1] for k in _net("bias.")(t) if t[k].ndim}), "bias model"),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_a_tampered_model_with_a_valid_checksum_is_refused_by_name(source, tmp_path, name):
    change, message = TAMPERINGS[name]
    target = _tamper(source, tmp_path / "model", change)
    with pytest.raises(ModelFileError, match=message) as caught:
        Recommender.load(target)
    assert str(target) in str(caught.value)


@pytest.mark.parametrize("history", ["epoch,loss,foo\n1,2,3\n", "epoch,loss,train_rmse,val_rmse,lr,seconds\n1,x,1,1,1,1\n",
                                     "epoch,loss,train_rmse,val_rmse,lr,seconds\n,1,1,1,1,1\n", "\xff\xfe", ""])
def test_a_damaged_history_only_costs_the_curves(source, tmp_path, history):
    """history.csv has no checksum and only draws curves: damage warns, and the model loads."""
    target = tmp_path / "model"
    shutil.copytree(source, target)
    (target / "history.csv").write_bytes(history.encode("latin-1"))
    with pytest.warns(UserWarning, match="history.csv is damaged"):
        model = Recommender.load(target)
    assert model.history_ == [] and len(model.history_frame()) == 0
    assert len(Recommender.load(source).history_) == 2  # the undamaged one reads back
    _use(model)


def test_the_tampering_helper_alone_changes_nothing(source, tmp_path):
    """The tests above fail for what they change, not for how they rewrite the directory."""
    _use(Recommender.load(_tamper(source, tmp_path / "same", lambda t, m: None)))


@pytest.mark.parametrize("version, message", [(2, "newer than this aerec reads"), (10**6, "newer"),
                                              (0, "which no aerec writes"), (-1, "which no aerec writes"),
                                              ("1", "which no aerec writes"), (True, "which no aerec writes"),
                                              (None, "which no aerec writes")])
def test_format_versions_this_aerec_did_not_write_are_refused_by_name(source, tmp_path, version, message):
    target = Path(shutil.copytree(source, tmp_path / "model"))
    meta = json.loads((target / "model.json").read_text())
    meta["format_version"] = version
    (target / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match=f"format_version|format version.*{message}|{message}"):
        Recommender.load(target)


def test_a_checkpoint_from_a_newer_aerec_or_not_a_checkpoint_is_refused(tmp_path):
    write_checkpoint(tmp_path, {"w": torch.zeros(2)}, {"format_version": 1, "epoch": 1})
    meta_path = tmp_path / "latest" / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format_version": 2}))
    with pytest.raises(ModelFileError, match="newer aerec"):
        read_checkpoint(tmp_path)
    for foreign in ("[1, 2]", '{"format_version": "x"}', "null"):
        meta_path.write_text(foreign)
        with pytest.raises(ModelFileError, match="checkpoint"):
            read_checkpoint(tmp_path)


@pytest.mark.parametrize("name", ["model.safetensors", "model.json"])
def test_a_file_cut_anywhere_is_refused(source, tmp_path, name):
    data = (source / name).read_bytes()
    for cut in sorted({0, 1, 7, 8, 9, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1}):
        target = Path(shutil.copytree(source, tmp_path / f"cut{cut}"))
        (target / name).write_bytes(data[:cut])
        with pytest.raises(ModelFileError):
            Recommender.load(target)


class _Payload:
    """Unpickling this writes a marker file: the proof that code ran."""

    marker: Path

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_a_pickle_in_place_of_the_weights_is_never_run(source, tmp_path, how):
    """Even with a matching checksum, a pickle (or torch.save file) is rejected unread."""
    _Payload.marker = tmp_path / "marker"
    target = Path(shutil.copytree(source, tmp_path / "model"))
    weights = target / "model.safetensors"
    if how == "pickle":
        weights.write_bytes(pickle.dumps(_Payload()))
    else:
        torch.save({"net.encoder.0.weight": _Payload()}, weights)
    from aerec.persistence import sha256_file

    meta = json.loads((target / "model.json").read_text())
    meta["weights_sha256"] = sha256_file(weights)
    (target / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError):
        Recommender.load(target)
    assert not _Payload.marker.exists(), "loading ran code from the weights file"
    assert not list(tmp_path.rglob("marker"))


def test_the_command_line_says_what_is_wrong_with_exit_code_2(source, tmp_path):
    target = _tamper(source, tmp_path / "model", TAMPERINGS["a billion inputs"][0])
    result = CliRunner().invoke(app, ["recommend", str(target), "--user", "a0"])
    assert result.exit_code == 2 and "do not fit together" in result.output and "Traceback" not in result.output


# ----------------------------------------------------------------------------- any value
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([2**63, -(2**70), 10**9]),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=2)),
    max_leaves=5,
)
_PATHS = ["kind", "model", "train", "run", "orientation", "loss", "n_inputs", "scale", "users", "items", "fingerprint",
          "item_info", "preset", "model.hidden", "model.activation", "model.output_activation", "model.orientation",
          "model.baseline", "model.tied", "model.mask_input", "model.code_dropout", "model.loss", "run.device",
          "run.seed", "scale.low", "scale.high", "scale.step", "users.0", "items.-1", "train.lr"]


def _set(meta: dict, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = meta
    for key in parents:
        node = node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


def test_any_value_anywhere_in_model_json_loads_cleanly_or_is_refused(source, tmp_path):
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
    @given(changes=st.lists(st.tuples(st.sampled_from(_PATHS), _JSON), min_size=1, max_size=3))
    def check(changes):
        def change(tensors, meta):
            for path, value in changes:
                try:
                    _set(meta, path, value)
                except (KeyError, IndexError, TypeError, ValueError):
                    pass  # an earlier change replaced the parent
        target = _tamper(source, tmp_path / "model", change)
        try:
            model = Recommender.load(target)
        except ModelFileError:
            return
        try:
            _use(model)
        except AerecError:
            pass  # a documented error (e.g. a rating the tampered scale refuses) is fine

    check()


@pytest.mark.parametrize("kind", ["multvae", "ease", "easedae"])
@pytest.mark.parametrize("change", ["an extra item", "a billion users", "indices out of range"])
def test_a_tampered_implicit_model_is_refused_by_name(tmp_path, kind, change):

    from aerec import ImplicitRecommender
    from aerec.config import Config
    from aerec.data.synthetic import synthetic_ratings
    from aerec.persistence import sha256_file
    from safetensors.torch import load_file, save_file

    train = {} if kind == "ease" else {"epochs": 1}  # EASE has no epochs and refuses them
    model = ImplicitRecommender(config=Config(model={"kind": kind}, train=train)).fit(synthetic_ratings(3000, seed=1))
    directory = tmp_path / "model"
    model.save(directory)
    meta = json.loads((directory / "model.json").read_text())
    if change == "an extra item":
        meta["items"] = meta["items"] + [10**9]
    elif change == "a billion users":
        meta["users"] = list(range(10**6)) if kind == "ease" else meta["users"]
        meta.setdefault("model", {})["hidden"] = [10**9] if kind != "ease" else meta["model"].get("hidden")
    else:
        tensors = load_file(str(directory / "model.safetensors"))
        tensors["data.indices"] = tensors["data.indices"] + 10**6
        save_file(tensors, str(directory / "model.safetensors"))
        meta["weights_sha256"] = sha256_file(directory / "model.safetensors")
    (directory / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelFileError, match="do not fit together|not valid|model.json"):
        ImplicitRecommender.load(directory)


@pytest.mark.parametrize("kind", ["multdae", "ease"])
def test_a_damaged_implicit_history_only_costs_the_curves(tmp_path, kind):
    from aerec import ImplicitRecommender
    from aerec.data.synthetic import synthetic_ratings

    config = Config(model={"kind": kind}, train={} if kind == "ease" else {"epochs": 2}, run={"threads": 1})
    model = ImplicitRecommender(config=config).fit(synthetic_ratings(3000, seed=1))
    directory = model.save(tmp_path / "model")
    again = ImplicitRecommender.load(directory)
    assert [r.val_rmse for r in again.history_] == pytest.approx([r.val_rmse for r in model.history_])
    (directory / "history.csv").write_text("epoch,loss,foo\n1,2,3\n")
    with pytest.warns(UserWarning, match="history.csv is damaged"):
        damaged = ImplicitRecommender.load(directory)
    assert damaged.history_ == []
    assert damaged.recommend_new([model.items_.labels[0]], n=3).equals(model.recommend_new([model.items_.labels[0]], n=3))
