"""The HTTP API (through FastAPI's TestClient), the serving engine, its limits and `aerec serve`.

Models are tiny AutoRecs fitted on :func:`aerec.testing.planted_ratings` (two user groups with
opposite tastes for two item groups), saved and loaded back as the server does, so the answers
can be checked against the library's own and against the planted structure.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'aerec[serve]'")

with warnings.catch_warnings():  # starlette may say it prefers another httpx; it works as is
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import aerec  # noqa: E402
from aerec.config import Config  # noqa: E402
from aerec.data.synthetic import synthetic_ratings  # noqa: E402
from aerec.errors import ConfigError  # noqa: E402
from aerec.recommender import Recommender  # noqa: E402
from aerec.serve import ServeSettings, ServingModel, UnknownIdError, create_app  # noqa: E402
from aerec.serve.app import MODEL_ENV, app_from_env  # noqa: E402
from aerec.testing import PlantedData, planted_ratings, single_thread  # noqa: E402

def _fit(ratings, **model) -> Recommender:
    config = Config(
        model={"kind": "autorec", "hidden": [16], "l2": 1.0, **model},
        train={"epochs": 4, "lbfgs_iterations": 10},
    )
    with single_thread():
        return Recommender(config=config).fit(ratings)


def _titles(data: PlantedData) -> pd.DataFrame:
    """Movie-like metadata: the x items are space operas, the y items quiet dramas."""
    rows = [(x, f"Space Opera {k} ({1970 + k})", "Sci-Fi|Adventure") for k, x in enumerate(data.x_items)]
    rows += [(y, f"Quiet Drama {k} ({1980 + k})", "Drama") for k, y in enumerate(data.y_items)]
    return pd.DataFrame(rows, columns=["item", "title", "genres"]).set_index("item")


@pytest.fixture(scope="module")
def planted() -> PlantedData:
    return planted_ratings()


@pytest.fixture(scope="module")
def model_dir(planted, tmp_path_factory) -> Path:
    """An item-based AutoRec with titles, saved to disk."""
    train = dataclasses.replace(planted.train, item_info=_titles(planted))
    return _fit(train).save(tmp_path_factory.mktemp("serve") / "model")


@pytest.fixture(scope="module")
def model(model_dir) -> Recommender:
    return Recommender.load(model_dir)


@pytest.fixture(scope="module")
def client(model) -> TestClient:
    return TestClient(create_app(model, ServeSettings(max_ratings=20, max_n=25, max_pairs=50, max_body_bytes=4096)))


@pytest.fixture(scope="module")
def variants(planted) -> dict[str, Recommender]:
    """The other read paths: user-based, and like/dislike data (sigmoid outputs) both ways."""
    binary = planted_ratings(binary=True)
    return {
        "user": _fit(planted.train, orientation="user"),
        "binary-item": _fit(binary.train),
        "binary-user": _fit(binary.train, orientation="user"),
    }


def _ids(answer: dict) -> list[str]:
    return [r["item_id"] for r in answer["recommendations"]]


# ----------------------------------------------------------------------------- health and items
def test_health_names_the_model(client, model):
    body = client.get("/health").json()
    assert body["status"] == "ok"
    assert body["model"] == "autorec"
    assert (body["users"], body["items"]) == (len(model.users_), len(model.items_))
    assert body["aerec_version"] == aerec.__version__
    assert body["scale"] == {"low": 1.0, "high": 5.0, "step": 1.0, "binary": False, "levels": [1.0, 2.0, 3.0, 4.0, 5.0]}
    assert body["titles"] is True
    assert body["limits"]["max_n"] == 25


def test_items_search_titles_case_insensitively_most_rated_first(client, model):
    body = client.get("/v1/items", params={"query": "space OPERA", "limit": 5}).json()
    assert body["total"] == 15
    assert len(body["items"]) == 5
    assert all(item["title"].startswith("Space Opera") for item in body["items"])
    assert all(item["genres"] == ["Sci-Fi", "Adventure"] for item in body["items"])
    counts = [item["ratings"] for item in body["items"]]
    assert counts == sorted(counts, reverse=True)
    # The counts are the training counts.
    assert counts[0] == int(model.item_counts_[model.items_.index([body["items"][0]["item_id"]])[0]])


def test_items_without_a_query_list_the_most_rated(client, model):
    body = client.get("/v1/items", params={"limit": 25}).json()
    assert body["total"] == len(model.items_)
    counts = [item["ratings"] for item in body["items"]]
    assert counts == sorted(counts, reverse=True) and counts[0] == int(model.item_counts_.max())


def test_items_search_matches_an_exact_id_and_reports_no_match(client):
    assert [i["item_id"] for i in client.get("/v1/items", params={"query": "y3"}).json()["items"]] == ["y3"]
    assert client.get("/v1/items", params={"query": "no such film"}).json() == {"items": [], "total": 0}


@pytest.mark.parametrize(
    "params, words",
    [({"limit": 26}, "at most 25"), ({"limit": 0}, "greater than or equal to 1"), ({"query": "x" * 201}, "at most 200")],
)
def test_items_limits(client, params, words):
    response = client.get("/v1/items", params=params)
    assert response.status_code == 422
    assert words in response.json()["detail"]


# ----------------------------------------------------------------------------- known users
def test_recommendations_for_a_known_user_match_the_library(client, model, planted):
    user = planted.a_users[0]
    body = client.get(f"/v1/users/{user}/recommendations", params={"n": 5}).json()
    expected = model.recommend(user, n=5)
    assert body["user_id"] == user
    assert _ids(body) == [str(i) for i in expected["item"]]
    assert [r["score"] for r in body["recommendations"]] == pytest.approx(expected["score"].tolist(), abs=1e-4)
    assert not set(_ids(body)) & planted.rated(user)
    assert body["recommendations"][0]["title"] is not None


def test_unknown_user_is_404_naming_it(client):
    response = client.get("/v1/users/nobody-here/recommendations")
    assert response.status_code == 404
    assert "'nobody-here'" in response.json()["detail"]


def test_known_user_n_limit(client, planted):
    response = client.get(f"/v1/users/{planted.a_users[0]}/recommendations", params={"n": 26})
    assert response.status_code == 422
    assert "at most 25" in response.json()["detail"] and "--max-n" in response.json()["detail"]


# ----------------------------------------------------------------------------- new users
def test_new_user_gets_their_groups_items_and_not_what_they_rated(client, planted):
    ratings = {planted.x_items[0]: 5, planted.x_items[1]: 5, planted.x_items[2]: 4, planted.y_items[0]: 1}
    body = client.post("/v1/recommendations", json={"ratings": ratings, "n": 5}).json()
    ids = _ids(body)
    assert len(ids) == 5
    assert not set(ids) & set(ratings)
    assert set(ids) <= set(planted.x_items), ids  # the planted taste: space operas
    scores = [r["score"] for r in body["recommendations"]]
    assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)  # relevance
    assert all(1 <= r["prediction"] <= 5 for r in body["recommendations"])  # the predicted rating beside it
    assert set(body["recommendations"][0]) == {"item_id", "score", "prediction", "title", "genres"}
    assert body["recommendations"][0]["title"].startswith("Space Opera")


def test_new_user_of_the_other_group_gets_the_other_items(client, planted):
    ratings = {planted.y_items[0]: 5, planted.y_items[1]: 5, planted.x_items[0]: 1}
    assert set(_ids(client.post("/v1/recommendations", json={"ratings": ratings, "n": 5}).json())) <= set(planted.y_items)


@pytest.mark.parametrize("which", ["item", "user", "binary-item", "binary-user"])
def test_fold_in_gives_the_librarys_answers(which, model, variants, planted):
    """The engine's fast fold-in (k x k dual for item-based models) equals Recommender.recommend_new."""
    m = model if which == "item" else variants[which]
    high, low = (1, 0) if which.startswith("binary") else (5, 1)
    ratings = {planted.x_items[3]: high, planted.y_items[4]: low, planted.x_items[7]: high}
    engine = ServingModel(m)
    got = engine.recommend_new(ratings, n=len(m.items_))
    expected = m.recommend_new(ratings, n=len(m.items_))
    assert [s.item_id for s in got] == [str(i) for i in expected["item"]]
    assert [s.score for s in got] == pytest.approx(expected["score"].tolist(), abs=1e-4)


def test_no_ratings_gives_the_librarys_cold_start_list(client, model):
    body = client.post("/v1/recommendations", json={"ratings": {}, "n": 4}).json()
    assert _ids(body) == [str(i) for i in model.recommend_new({}, n=4)["item"]]


def test_unknown_item_is_404_naming_it(client, planted):
    response = client.post("/v1/recommendations", json={"ratings": {planted.x_items[0]: 5, "not-an-item": 4}})
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "'not-an-item'" in detail and "GET /v1/items" in detail


@pytest.mark.parametrize("value", [6, 0.5, -1])
def test_rating_off_the_scale_is_422_naming_item_and_value(client, planted, value):
    response = client.post("/v1/recommendations", json={"ratings": {planted.x_items[2]: value}})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert planted.x_items[2] in detail and str(float(value)) in detail and "1 to 5" in detail


@pytest.mark.parametrize(
    "body, words",
    [
        ('{"ratings": {"x0": 5}', "not valid JSON"),
        ('{"ratings": {"x0": "5"}}', "ratings.x0: Input should be a valid number"),
        ('{"ratings": {"x0": true}}', "ratings.x0: Input should be a valid number"),
        ('{"ratings": {"x0": NaN}}', "ratings.x0: Input should be a finite number"),
        ('{"ratings": {"x0": Infinity}}', "ratings.x0: Input should be a finite number"),
        ('{"ratings": [["x0", 5]]}', "ratings: Input should be a valid dictionary"),
        ('{"ratings": {"x0": 5}, "n": "ten"}', "n: Input should be a valid integer"),
        ('{"ratings": {"x0": 5}, "n": 0}', "n: Input should be greater than or equal to 1"),
        ('{"ratings": {"x0": 5}, "user": "me"}', "user: Extra inputs are not permitted"),
        ("[1, 2]", "Input should be a valid dictionary"),
    ],
)
def test_malformed_bodies_are_422_with_a_readable_detail(client, body, words):
    response = client.post("/v1/recommendations", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    payload = response.json()
    assert words in payload["detail"]
    assert isinstance(payload["errors"], list) and payload["errors"]


def test_too_many_ratings_and_too_large_n_are_422_naming_the_limit(client, planted):
    many = {i: 4 for i in planted.x_items + planted.y_items[:6]}  # 21 > max_ratings 20
    response = client.post("/v1/recommendations", json={"ratings": many})
    assert response.status_code == 422
    assert "at most 20" in response.json()["detail"] and "AEREC_SERVE_MAX_RATINGS" in response.json()["detail"]
    response = client.post("/v1/recommendations", json={"ratings": {"x0": 5}, "n": 26})
    assert response.status_code == 422 and "at most 25" in response.json()["detail"]


def test_oversized_bodies_are_413_declared_or_streamed(client):
    big = json.dumps({"ratings": {f"item-{k}": 3 for k in range(400)}}).encode()
    assert len(big) > 4096
    response = client.post("/v1/recommendations", content=big, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit must hold while reading
        for k in range(0, len(big), 1000):
            yield big[k : k + 1000]

    response = client.post("/v1/recommendations", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"]


# ----------------------------------------------------------------------------- predict
def test_predict_matches_the_library(client, model, planted):
    pairs = [[planted.a_users[0], planted.y_items[1]], [planted.b_users[2], planted.x_items[0]]]
    body = client.post("/v1/predict", json={"pairs": pairs}).json()
    expected = model.predict_pairs([p[0] for p in pairs], [p[1] for p in pairs])
    got = body["predictions"]
    assert [(p["user_id"], p["item_id"]) for p in got] == [tuple(p) for p in pairs]
    assert [p["rating"] for p in got] == pytest.approx(expected.values.tolist(), abs=1e-4)
    assert [p["fallback"] for p in got] == [False, False]


def test_predict_unknown_ids_fall_back_per_pair(client, model, planted):
    known = [planted.a_users[0], planted.x_items[0]]
    pairs = [known, [planted.a_users[0], "nope"], ["ghost-user", planted.x_items[0]], ["ghost-user", "nope"]]
    response = client.post("/v1/predict", json={"pairs": pairs})
    assert response.status_code == 200, response.text
    got = response.json()["predictions"]
    assert [p["fallback"] for p in got] == [False, True, True, True]
    assert [[p["user_id"], p["item_id"]] for p in got] == pairs
    # The known pair is answered as if alone; the others as the command line answers them.
    alone = client.post("/v1/predict", json={"pairs": [known]}).json()["predictions"][0]
    assert got[0] == alone
    expected = model.predict_pairs([p[0] for p in pairs], [p[1] for p in pairs])
    assert [p["rating"] for p in got] == pytest.approx(expected.values.tolist(), abs=1e-4)


def test_unknown_user_elsewhere_is_a_404_that_says_what_to_send(client):
    response = client.get("/v1/users/ghost-user/recommendations")
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "unknown user id 'ghost-user'" in detail and "POST /v1/recommendations" in detail


def test_predict_errors(client, planted):
    response = client.post("/v1/predict", json={"pairs": [[planted.a_users[0], planted.x_items[0], 3]]})
    assert response.status_code == 422
    response = client.post("/v1/predict", json={"pairs": [[planted.a_users[0], planted.x_items[0]]] * 51})
    assert response.status_code == 422 and "at most 50" in response.json()["detail"]
    assert client.post("/v1/predict", json={"pairs": []}).json() == {"predictions": []}


def test_integer_ids_are_strings_in_urls_and_json_and_numbers_are_accepted_in_pairs(tmp_path):
    ratings = synthetic_ratings(n_ratings=3000, seed=1)
    m = _fit(ratings)
    client = TestClient(create_app(m))
    user = str(ratings.frame["user"].iloc[0])
    item = str(ratings.frame["item"].iloc[0])
    body = client.get(f"/v1/users/{user}/recommendations", params={"n": 3}).json()
    assert [r["title"] for r in body["recommendations"]] == [None] * 3  # no metadata: no titles
    assert all(isinstance(r["item_id"], str) for r in body["recommendations"])
    body = client.post("/v1/recommendations", json={"ratings": {item: 5}, "n": 3}).json()
    assert item not in _ids(body) and len(_ids(body)) == 3
    by_number = client.post("/v1/predict", json={"pairs": [[int(user), int(item)]]}).json()
    by_text = client.post("/v1/predict", json={"pairs": [[user, item]]}).json()
    assert by_number["predictions"][0]["rating"] == by_text["predictions"][0]["rating"]
    assert by_number["predictions"][0]["user_id"] == user
    # Ids are exact: "0042" is not item 42.
    assert client.post("/v1/recommendations", json={"ratings": {"00" + item: 5}}).status_code == 404


# ----------------------------------------------------------------------------- concurrency
def test_concurrent_requests_get_the_same_answers_as_one_at_a_time(client, planted):
    rng = np.random.default_rng(0)
    items = planted.x_items + planted.y_items
    bodies = []
    for _ in range(40):
        chosen = rng.choice(items, size=int(rng.integers(1, 8)), replace=False)
        bodies.append({"ratings": {str(i): int(rng.integers(1, 6)) for i in chosen}, "n": 5})
    expected = [client.post("/v1/recommendations", json=b).json() for b in bodies]
    got: dict[int, dict] = {}
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        try:
            for k in range(offset, len(bodies), 8):
                got[k] = client.post("/v1/recommendations", json=bodies[k]).json()
                user = planted.a_users[k % len(planted.a_users)]
                client.get(f"/v1/users/{user}/recommendations")  # the locked library path, interleaved
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [got[k] for k in range(len(bodies))] == expected


# ----------------------------------------------------------------------------- page, docs, security
def test_the_page_and_its_files_are_served_with_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/app.js"' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    from aerec.serve.app import MAX_QUERY_CHARS

    assert f'maxlength="{MAX_QUERY_CHARS}"' in page.text  # the box cannot ask what the API refuses
    for name, kind in [("app.js", "text/javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg+xml")]:
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert len(response.content) > 100


@pytest.mark.parametrize(
    "path",
    [
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e%2fapp.py",
        "/static/..%5capp.py",
        "/static/app.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
    ],
)
def test_no_file_outside_the_page_can_be_fetched(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "import" not in response.text and "root:" not in response.text


def test_openapi_docs_list_the_endpoints(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/v1/items", "/v1/items/{item_id}/similar", "/v1/users/{user_id}/recommendations",
            "/v1/recommendations", "/v1/predict"} <= set(paths)


def test_cors_is_off_by_default_and_on_for_named_origins(model):
    origin = {"Origin": "https://elsewhere.example"}
    plain = TestClient(create_app(model, ServeSettings()))
    assert "access-control-allow-origin" not in plain.get("/health", headers=origin).headers
    preflight = {**origin, "Access-Control-Request-Method": "POST"}
    assert "access-control-allow-origin" not in plain.options("/v1/recommendations", headers=preflight).headers
    allowed = TestClient(create_app(model, ServeSettings(cors_origins=("https://elsewhere.example",))))
    assert allowed.get("/health", headers=origin).headers["access-control-allow-origin"] == "https://elsewhere.example"
    other = {"Origin": "https://evil.example"}
    assert "access-control-allow-origin" not in allowed.get("/health", headers=other).headers


# ----------------------------------------------------------------------------- settings and factory
def test_settings_from_env_and_overrides():
    env = {
        "AEREC_SERVE_MAX_N": "7",
        "AEREC_SERVE_MAX_BODY_BYTES": "2_048",
        "AEREC_SERVE_CORS_ORIGINS": "https://a.example, https://b.example",
    }
    s = ServeSettings.from_env(env)
    assert (s.max_n, s.max_body_bytes, s.max_ratings) == (7, 2048, ServeSettings().max_ratings)
    assert s.cors_origins == ("https://a.example", "https://b.example")
    assert ServeSettings.from_env(env, max_n=9, max_pairs=None).max_n == 9
    assert ServeSettings.from_env(s.to_env()) == s
    with pytest.raises(ConfigError, match="AEREC_SERVE_MAX_N must be a positive whole number; got 'lots'"):
        ServeSettings.from_env({"AEREC_SERVE_MAX_N": "lots"})
    with pytest.raises(ConfigError, match="max_ratings must be a positive whole number; got 0"):
        ServeSettings(max_ratings=0)


def test_app_from_env_loads_the_model_directory(model_dir, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, str(model_dir))
    monkeypatch.setenv("AEREC_SERVE_MAX_N", "3")
    client = TestClient(app_from_env())
    assert client.get("/health").json()["limits"]["max_n"] == 3
    monkeypatch.delenv(MODEL_ENV)
    with pytest.raises(ConfigError, match=MODEL_ENV):
        app_from_env()


def test_engine_unknown_ids_name_them(model):
    engine = ServingModel(model)
    with pytest.raises(UnknownIdError, match=r"unknown item ids 'p', 'q': the model knows 30 items"):
        engine.item_index(["x0", "p", "q"])


def test_engine_needs_a_fitted_model():
    with pytest.raises(aerec.NotFittedError):
        ServingModel(Recommender("autorec"))


# ----------------------------------------------------------------------------- the command
@pytest.fixture
def captured_run(monkeypatch):
    """Replace uvicorn.run: record what `aerec serve` would start."""
    import uvicorn

    calls: list[tuple[tuple, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def _free_port() -> int:
    """A port nothing listens on now (the command checks it can bind before starting)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_command_binds_localhost_by_default(model_dir, captured_run, monkeypatch):
    from aerec.cli import app

    monkeypatch.delenv("AEREC_SERVE_MAX_N", raising=False)
    port = _free_port()
    result = CliRunner().invoke(app, ["serve", str(model_dir), "--port", str(port), "--max-n", "12"])
    assert result.exit_code == 0, result.output
    (args, kwargs), = captured_run
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == port
    served = TestClient(args[0])
    assert served.get("/health").json()["limits"]["max_n"] == 12
    assert "warning" not in result.output


def test_serve_command_warns_when_listening_on_every_network(model_dir, captured_run):
    from aerec.cli import app

    result = CliRunner().invoke(app, ["serve", str(model_dir), "--host", "0.0.0.0", "--port", str(_free_port())])
    assert result.exit_code == 0, result.output
    assert "no authentication" in " ".join(result.output.split())
    assert captured_run[0][1]["host"] == "0.0.0.0"


def test_serve_command_with_workers_passes_the_model_through_the_environment(model_dir, captured_run, monkeypatch):
    import os

    from aerec.cli import app

    monkeypatch.setattr(os, "environ", dict(os.environ))  # the command writes to it
    result = CliRunner().invoke(app, ["serve", str(model_dir), "--workers", "2", "--max-ratings", "9",
                                      "--port", str(_free_port())])
    assert result.exit_code == 0, result.output
    (args, kwargs), = captured_run
    assert args == ("aerec.serve.app:app_from_env",) and kwargs["factory"] is True and kwargs["workers"] == 2
    assert os.environ[MODEL_ENV] == str(model_dir.resolve()) and os.environ["AEREC_SERVE_MAX_RATINGS"] == "9"


def test_serve_command_refuses_a_missing_model(tmp_path, captured_run):
    from aerec.cli import app

    result = CliRunner().invoke(app, ["serve", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "nothing" in result.output
    assert not captured_run


def test_serve_command_refuses_a_port_in_use_before_announcing_anything(model_dir, captured_run):
    import socket

    from aerec.cli import app

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", str(model_dir), "--port", str(port)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"cannot listen on 127.0.0.1:{port}" in text and "pick another --port" in text
    assert "serving" not in text and not captured_run
    bad_host = CliRunner().invoke(app, ["serve", str(model_dir), "--host", "no-such-host.invalid"])
    assert bad_host.exit_code == 2 and "check --host" in bad_host.output and not captured_run


def test_is_loopback():
    from aerec.cli.serve import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.org"))


def test_no_warnings_escape_the_read_path(model, planted):
    engine = ServingModel(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine.recommend_new({planted.x_items[0]: 5}, n=3)
        engine.recommend_user(planted.a_users[0], n=3)
        engine.predict([(planted.a_users[0], planted.x_items[0])])


def test_worker_listener_is_marked_tcp_so_replies_are_not_delayed():
    """uvicorn's own listener for --workers has proto 0, which leaves Nagle on (uvicorn #3149)."""
    import socket

    import uvicorn

    from aerec.cli.serve import _listener_with_tcp_nodelay

    original = uvicorn.config.Config.bind_socket
    with _listener_with_tcp_nodelay(uvicorn):
        sock = uvicorn.config.Config(app="x:y", host="127.0.0.1", port=0).bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.family == socket.AF_INET
        sock.listen()
        with socket.create_connection(sock.getsockname()):
            conn, _ = sock.accept()
            with conn:  # what asyncio looks at before setting TCP_NODELAY on a connection
                assert conn.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
    assert uvicorn.config.Config.bind_socket is original


# ----------------------------------------------------------------------------- explanations
def test_explain_names_the_known_users_liked_items(client, model, planted):
    user = planted.a_users[0]
    body = client.get(f"/v1/users/{user}/recommendations", params={"n": 5, "explain": "true", "explain_top": 2}).json()
    expected = model.recommend(user, n=5, explain=True, explain_top=2)
    assert _ids(body) == [str(i) for i in expected["item"]]
    for rec, because in zip(body["recommendations"], expected["because"]):
        assert [b["item_id"] for b in rec["because"]] == [str(b) for b in because]
        assert 1 <= len(rec["because"]) <= 2
        for b in rec["because"]:
            assert b["item_id"] in planted.x_items and b["item_id"] in planted.rated(user)  # what they loved
            assert b["rating"] >= 4 and b["contribution"] > 0 and b["title"].startswith("Space Opera")


def test_explain_for_a_new_user_names_only_what_they_liked(client, planted):
    ratings = {planted.x_items[0]: 5, planted.x_items[1]: 4, planted.y_items[0]: 1}
    body = client.post("/v1/recommendations", json={"ratings": ratings, "n": 5, "explain": True}).json()
    reasons = [b["item_id"] for rec in body["recommendations"] for b in rec["because"]]
    assert reasons and set(reasons) <= {planted.x_items[0], planted.x_items[1]}  # never the disliked drama
    assert set(body["recommendations"][0]) == {"item_id", "score", "prediction", "title", "genres", "because"}


def test_without_explain_no_because_field(client, planted):
    got = client.get(f"/v1/users/{planted.a_users[0]}/recommendations", params={"n": 3}).json()
    assert all("because" not in rec for rec in got["recommendations"])
    body = client.post("/v1/recommendations", json={"ratings": {planted.x_items[0]: 5}, "n": 3}).json()
    assert all("because" not in rec for rec in body["recommendations"])


@pytest.mark.parametrize("query, body", [
    ({"explain": "true", "explain_top": 0}, {"explain": True, "explain_top": 0}),
    ({"explain": "true", "explain_top": 26}, {"explain": True, "explain_top": 26}),
    ({"explain": "maybe"}, {"explain": "yes"}),
])
def test_bad_explain_is_422(client, planted, query, body):
    got = client.get(f"/v1/users/{planted.a_users[0]}/recommendations", params=query)
    assert got.status_code == 422, got.text
    posted = client.post("/v1/recommendations", json={"ratings": {planted.x_items[0]: 5}, **body})
    assert posted.status_code == 422, posted.text
    assert "explain" in got.json()["detail"] and "explain" in posted.json()["detail"]


def test_explain_on_an_implicit_model(planted):
    from aerec import ImplicitRecommender

    with single_thread():
        model = ImplicitRecommender("ease").fit(planted.train)
    client = TestClient(create_app(model))
    body = client.post("/v1/recommendations", json={"ratings": {planted.x_items[0]: 5, planted.x_items[1]: 5},
                                                    "n": 3, "explain": True}).json()
    for rec in body["recommendations"]:
        assert rec["because"] and all(b["rating"] is None and b["contribution"] > 0 for b in rec["because"])


def test_the_page_asks_for_and_shows_the_reasons(client):
    script = client.get("/static/app.js").text
    assert "explain: true" in script and "Because you liked" in script and "rec.because" in script
