"""The server under hostile requests: a schemathesis run against its OpenAPI schema finds no 5xx,
the work one request can ask for is bounded, no path reaches a file outside the page, and
CORS stays off unless asked for. tests/test_serve.py checks each limit's message and the basic
traversal and CORS cases; this file adds the generated requests and the harder cases.

schemathesis drives the ASGI app in-process (no socket): for each operation, requests that
fit the schema ("positive") and requests that break it ("negative": wrong types, missing
fields, out-of-range values). CI runs ``AEREC_SCHEMATHESIS_EXAMPLES`` (default 25) of each
kind per operation; the figures of docs/reliability.md come from::

    AEREC_SCHEMATHESIS_EXAMPLES=1000 python -m pytest tests/test_reliability_server.py -k schemathesis
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time
import warnings

import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'aerec[serve]'")
schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (in the test extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient  # noqa: E402

from aerec.config import Config  # noqa: E402
from aerec.recommender import Recommender  # noqa: E402
from aerec.serve import ServeSettings, create_app  # noqa: E402
from aerec.testing import planted_ratings, single_thread  # noqa: E402

EXAMPLES = int(os.environ.get("AEREC_SCHEMATHESIS_EXAMPLES", "25"))
LIMITS = ServeSettings(max_ratings=20, max_n=25, max_pairs=50, max_body_bytes=4096)


@pytest.fixture(scope="module")
def model() -> Recommender:
    data = planted_ratings()
    titles = pd.DataFrame(
        [(x, f"Space Opera {k}", "Sci-Fi") for k, x in enumerate(data.x_items)]
        + [(y, f"Quiet Drama {k}", "Drama") for k, y in enumerate(data.y_items)],
        columns=["item", "title", "genres"],
    ).set_index("item")
    config = Config(model={"kind": "autorec", "hidden": [16], "l2": 1.0}, train={"epochs": 4, "lbfgs_iterations": 10})
    with single_thread():
        return Recommender(config=config).fit(dataclasses.replace(data.train, item_info=titles))


@pytest.fixture(scope="module")
def app(model):
    return create_app(model, LIMITS)


@pytest.fixture(scope="module")
def client(app) -> TestClient:
    return TestClient(app)


# ----------------------------------------------------------------------------- schemathesis
def _operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_schemathesis_finds_no_server_error(app, mode):
    generation = schemathesis.GenerationMode(mode)
    seen: dict[str, collections.Counter] = {}
    for operation in _operations(app):
        codes = seen.setdefault(operation.label, collections.Counter())
        if mode == "negative" and operation.label == "GET /health":
            continue  # it takes no input: there is nothing to get wrong

        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=generation))
        def call(case):
            response = case.call()
            codes[response.status_code] += 1  # noqa: B023 - called at once, in this iteration
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text}"
            kind = response.headers.get("content-type") or [""]
            assert (kind[0] if isinstance(kind, list) else kind).startswith("application/json")  # never a stack trace page

        call()
    print(mode, {label: dict(codes) for label, codes in seen.items()})  # -s shows the figures
    assert len(seen) == 6 and sum(sum(c.values()) for c in seen.values()) >= 4 * min(EXAMPLES, 10)


# ----------------------------------------------------------------------------- work per request
def test_the_largest_requests_the_default_limits_allow_finish_quickly(model):
    """Rate of work: each request is bounded by max_pairs, max_ratings, max_n and the body size;
    at the default limits (not the test's small ones) the worst accepted request stays fast."""
    client = TestClient(create_app(model, ServeSettings()))
    defaults = ServeSettings()
    users, items = model.users_.to_list(), model.items_.to_list()
    pairs = [[users[k % len(users)], items[k % len(items)]] for k in range(defaults.max_pairs)]
    started = time.perf_counter()
    response = client.post("/v1/predict", json={"pairs": pairs})
    assert response.status_code == 200 and len(response.json()["predictions"]) == defaults.max_pairs
    assert time.perf_counter() - started < 10
    over = client.post("/v1/predict", json={"pairs": pairs + [pairs[0]]})
    assert over.status_code in (413, 422)  # past max_pairs, or past the body limit first
    ratings = {str(i): 3 for i in items}
    started = time.perf_counter()
    assert client.post("/v1/recommendations", json={"ratings": ratings, "n": defaults.max_n}).status_code == 200
    assert client.get("/v1/items", params={"limit": defaults.max_n, "query": "a" * 200}).status_code == 200
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "path",
    ["/v1/items?limit=100000000000000000000000000000", "/v1/items?limit=-1", "/v1/items?limit=1e3",
     "/v1/items?limit=nan", "/v1/users/a0/recommendations?n=99999999999999999999", "/v1/users/a0/recommendations?n=0",
     "/v1/items?query=" + "x" * 201],
)
def test_absurd_numbers_in_the_query_are_422_not_500(client, path):
    response = client.get(path)
    assert response.status_code == 422 and response.json()["detail"]


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"ratings": ' + b"[" * 2000, b'{"pairs": [[' + b"1," * 1500 + b"1]]}"])
def test_deeply_nested_or_long_bodies_are_refused_cleanly(client, body):
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 413, 422), response.text


# ----------------------------------------------------------------------------- static files
@pytest.mark.parametrize(
    "path",
    ["/static/%2e%2e/%2e%2e/pyproject.toml", "/static/..%2F..%2F..%2Fetc%2Fpasswd", "/static/%252e%252e%252fapp.py",
     "/static/.%2e/app.py", "/static/index.html%00.js", "/static/..;/app.py", "/%2e%2e/pyproject.toml",
     "/static/%c0%ae%c0%ae/app.py", "/static/.", "/static/..", "/static/", "/static/app.js/../app.py",
     "/static/APP.JS", "/static/app.js%20", "/static/~/.ssh/id_rsa", "/static/%5c..%5capp.py"],
)
def test_no_file_outside_the_page_through_any_encoding(client, path):
    response = client.get(path)
    # 200 only where the client itself resolved the dot segments to a page URL ("/static/.." is "/").
    pages = {client.get(p).content for p in ("/", "/static/app.js", "/static/style.css", "/static/favicon.svg")}
    assert response.status_code in (404, 405) or response.content in pages, (path, response.status_code)
    for secret in ("[project]", "import ", "root:", "PRIVATE KEY"):
        assert secret not in response.text


# ----------------------------------------------------------------------------- CORS
def test_cors_never_sends_a_wildcard_or_credentials(model):
    allowed = TestClient(create_app(model, ServeSettings(cors_origins=("https://app.example",))))
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    answer = allowed.options("/v1/recommendations", headers=preflight)
    assert answer.headers.get("access-control-allow-origin") == "https://app.example"
    assert "access-control-allow-credentials" not in answer.headers
    assert set(answer.headers["access-control-allow-methods"].replace(" ", "").split(",")) <= {"GET", "POST"}
    for origin in ("https://evil.example", "null", "https://app.example.evil.example"):
        reply = allowed.get("/health", headers={"Origin": origin})
        assert reply.headers.get("access-control-allow-origin") in (None,), origin
    plain = TestClient(create_app(model, ServeSettings()))
    for method in ("GET", "POST", "DELETE", "PUT"):
        reply = plain.options("/v1/predict", headers={**preflight, "Access-Control-Request-Method": method})
        assert "access-control-allow-origin" not in reply.headers
