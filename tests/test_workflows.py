"""`aerec.workflows`: the command line's train / evaluate / predict / recommend as library calls.

The CLI tests pin flags, messages and JSON keys; these check that the same work runs without
the CLI (as the server or a notebook would call it) and returns result objects. Tiny runs only.
"""

from __future__ import annotations

import pytest

from aerec import workflows
from aerec.config import Config
from aerec.data.synthetic import synthetic_ratings
from aerec.errors import ConfigError, DataError
from aerec.testing import single_thread

FAST = {"epochs": 2}
RUN = {"threads": 1, "device": "cpu"}


def _data(tmp_path, n: int = 2000):
    path = tmp_path / "ratings.csv"
    synthetic_ratings(n).frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model directory, TrainResult) of a rating model trained on a random split."""
    tmp = tmp_path_factory.mktemp("workflows")
    data = workflows.read_train_data(_data(tmp), split="random:0.2", seed=0)
    with single_thread():
        result = workflows.train(Config(model={"kind": "autorec"}, train=FAST, run=RUN), data, out=tmp / "m")
    return tmp / "m", result


def test_read_train_data_splits_a_file(tmp_path):
    data = workflows.read_train_data(_data(tmp_path, 500), split="random:0.2", seed=0)
    assert data.test is not None and len(data.test) > 0
    assert data.split.startswith("random:0.2") and data.test_source == data.split
    assert len(data.train) + len(data.test) + (0 if data.validation is None else len(data.validation)) == 500


def test_plan_checks_settings_before_any_work(tmp_path):
    data = workflows.read_train_data(_data(tmp_path, 500))
    config = Config(model={"kind": "autorec"}, train={"optimizer": "lbfgs", "batch_size": 8})
    with pytest.raises(ConfigError, match="L-BFGS"):
        workflows.plan_training(config, data)
    assert not (tmp_path / "m").exists()


def test_plan_fills_in_the_default_kind(tmp_path):
    data = workflows.read_train_data(_data(tmp_path, 500))
    config = Config(model={}, train=FAST, run=RUN)
    plan = workflows.plan_training(config, data)
    assert plan.kind == "autorec" and not plan.implicit and plan.matrix.nnz == 500


def test_train_saves_the_model_with_its_report(trained):
    out, result = trained
    assert (out / "model.json").is_file()
    assert result.tested and result.metrics["model"] == "autorec" and result.metrics["n"] > 0
    assert result.metrics["epochs_run"] == 2
    assert not workflows.default_checkpoint_dir(out).exists()  # removed after the save


def test_evaluate_a_saved_model_on_the_same_split(trained, tmp_path):
    from aerec.loading import load_model

    out, result = trained
    model = load_model(out)
    test, source = workflows.read_test_data(model, data=str(_data(tmp_path)), split="random:0.2", name=str(out))
    assert " split random:0.2" in source
    metrics = workflows.evaluate(model, test)
    assert metrics["rmse"] == pytest.approx(result.metrics["rmse"], rel=1e-5)
    assert {"fallback_fraction", "n_unknown_users", "n_unknown_items"} <= set(metrics)


def test_recommend_known_and_new_users(trained):
    from aerec.loading import load_model

    model = load_model(trained[0])
    user = model.users_.label([0])[0]
    known = workflows.recommend(model, user=user, n=5)
    assert len(known.items) == 5 and known.has_predictions
    item = model.items_.label([0])[0]
    with pytest.warns(UserWarning, match="does not know"):  # unknown items are dropped, with a warning
        new = workflows.recommend(model, new_ratings={item: 5.0, "no such item": 1.0}, n=3)
    assert len(new.items) == 3 and new.ratings_used == 1
    assert item not in [rec["item_id"] for rec in new.items]


def test_predict_file(trained, tmp_path):
    from aerec.loading import load_model

    model = load_model(trained[0])
    user, item = model.users_.label([0])[0], model.items_.label([0])[0]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"user,item\n{user},{item}\nnobody,{item}\n")
    frame, n_fallback = workflows.predict_file(model, pairs)
    assert list(frame.columns) == ["user", "item", "prediction", "fallback"]
    assert len(frame) == 2 and n_fallback == 1


def test_read_test_data_refuses_an_empty_test_part(trained, tmp_path):
    from aerec.loading import load_model

    model = load_model(trained[0])
    empty = tmp_path / "empty.csv"
    empty.write_text("user,item,rating\n")
    with pytest.raises(DataError):
        workflows.read_test_data(model, test_file=empty)


def test_the_default_blends_i_and_u_autorec_where_items_have_few_ratings():
    from aerec.data.synthetic import synthetic_ratings
    from aerec.ensemble import EnsembleRecommender
    from aerec.recommender import Recommender
    from aerec.workflows import default_preset

    thin = synthetic_ratings(2_000, n_users=300, n_items=400, seed=0)  # 5 ratings per item
    thick = synthetic_ratings(2_000, n_users=100, n_items=50, seed=0)  # 40 per item
    assert default_preset(thin, {}) == "blend" and default_preset(thick, {}) is None
    # Anything the user chose about the model is theirs: no preset is added.
    for chosen in ({"kind": "sae"}, {"preset": "i-autorec"}, {"l2": 50.0}, {"orientation": "user"}):
        assert default_preset(thin, chosen) is None, chosen
    plan = workflows.plan_training(Config(model={}, train=FAST, run=RUN), workflows.TrainData(thin, None, None, "thin", None))
    assert isinstance(plan.model, EnsembleRecommender)
    assert plan.model.resolved()[0].members == ["i-autorec", "u-autorec"]
    plan = workflows.plan_training(Config(model={}, train=FAST, run=RUN), workflows.TrainData(thick, None, None, "thick", None))
    assert type(plan.model) is Recommender
