"""Models saved by an older aerec still load and answer the same (the model directory format is
a promise to users: a model trained once keeps working after an upgrade).

tests/data/fixtures holds a tiny explicit AutoRec and a tiny implicit EASE written by aerec
before the estimators shared a base class, and ``expected.json``, their answers recorded at
save time by ``make_model_fixtures.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import aerec

FIXTURES = Path(__file__).parent / "data" / "fixtures"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))


def _same_list(frame, recorded: dict) -> None:
    assert [str(i) for i in frame["item"].tolist()] == recorded["item"]
    np.testing.assert_allclose(frame["score"].to_numpy(), recorded["score"], rtol=1e-5, atol=1e-6)
    if "prediction" in recorded:
        np.testing.assert_allclose(frame["prediction"].to_numpy(), recorded["prediction"], rtol=1e-5, atol=1e-5)


@pytest.fixture(params=["load_model", "Recommender.load"])
def explicit(request, tmp_path):
    if request.param == "load_model":
        return aerec.load_model(FIXTURES / "explicit_autorec")
    return aerec.Recommender.load(FIXTURES / "explicit_autorec")


def test_an_explicit_model_saved_by_an_older_aerec_answers_the_same(explicit):
    recorded = EXPECTED["explicit_autorec"]
    assert type(explicit) is aerec.Recommender and explicit.config.kind == "autorec"
    for user, lists in recorded["recommend"].items():
        _same_list(explicit.recommend(user, n=3), lists)
    new = recorded["recommend_new"]
    _same_list(explicit.recommend_new(new["ratings"], n=3), new)
    pairs = recorded["predict"]
    np.testing.assert_allclose(explicit.predict(pairs["users"], pairs["items"]), pairs["values"], rtol=1e-5, atol=1e-5)


def test_an_implicit_model_saved_by_an_older_aerec_answers_the_same():
    recorded = EXPECTED["implicit_ease"]
    model = aerec.load_model(FIXTURES / "implicit_ease")
    assert type(model) is aerec.ImplicitRecommender and model.config.kind == "ease"
    assert type(aerec.ImplicitRecommender.load(FIXTURES / "implicit_ease")) is aerec.ImplicitRecommender
    for user, lists in recorded["recommend"].items():
        _same_list(model.recommend(user, n=3), lists)
    new = recorded["recommend_new"]
    _same_list(model.recommend_new(new["items"], n=3), new)
