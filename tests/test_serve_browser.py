"""The web page in a real headless browser: open it, rate three movies, see recommendations.

Drives Debian's chromium (``apt-get install chromium``; another binary with ``AEREC_CHROMIUM``)
through Playwright for Python (``pip install playwright``; ``playwright install`` is not needed,
and cannot download browsers offline). Skipped, saying which is missing, without them. The
server is a real uvicorn on a free port of 127.0.0.1, in a thread of this process.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'aerec[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'aerec[serve]'")
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed: pip install playwright"
)

from aerec.config import Config  # noqa: E402
from aerec.recommender import Recommender  # noqa: E402
from aerec.serve import create_app  # noqa: E402
from aerec.testing import PlantedData, planted_ratings, single_thread  # noqa: E402

CHROMIUM = os.environ.get("AEREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]
TIMEOUT_MS = 15_000

pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)),
    reason=f"no chromium at {CHROMIUM}: apt-get install chromium (or set AEREC_CHROMIUM to a Chromium binary)",
)


def _fit(ratings) -> Recommender:
    config = Config(model={"kind": "autorec", "hidden": [16], "l2": 1.0}, train={"epochs": 4, "lbfgs_iterations": 10})
    with single_thread():
        return Recommender(config=config).fit(ratings)


def _with_titles(data: PlantedData):
    """The x items are space operas, the y items quiet dramas (the planted tastes)."""
    rows = [(x, f"Space Opera {k}", "Sci-Fi|Adventure") for k, x in enumerate(data.x_items)]
    rows += [(y, f"Quiet Drama {k}", "Drama") for k, y in enumerate(data.y_items)]
    info = pd.DataFrame(rows, columns=["item", "title", "genres"]).set_index("item")
    return dataclasses.replace(data.train, item_info=info)


class _Server:
    """uvicorn on a free port of 127.0.0.1, run in a thread."""

    def __init__(self, app) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP: asyncio sets NODELAY
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh page that records script errors and failed API calls."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.problems = []
    page.on("pageerror", lambda exc: page.problems.append(f"script error: {exc}"))
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"))
    page.on("response", lambda r: r.status >= 400 and page.problems.append(f"HTTP {r.status} {r.url}"))
    try:
        yield page
    finally:
        context.close()


def _rate(page, item_id: str, value: int, where: str = "#results") -> None:
    page.locator(f'{where} li.item[data-item-id="{item_id}"] button.rate[data-value="{value}"]').click()


def test_rate_three_movies_and_see_recommendations(page):
    data = planted_ratings()
    with _Server(create_app(_fit(_with_titles(data)))) as server:
        page.goto(server.url + "/")
        results = page.locator("#results li.item")
        playwright_api.expect(results).to_have_count(20)  # the most-rated titles, before any search
        playwright_api.expect(page.locator("#model-info")).to_contain_text("autorec")
        playwright_api.expect(page.locator("#recs li.item")).to_have_count(0)

        # Search, then rate two space operas 5 stars and one drama 1 star.
        page.fill("#search", "space opera")
        playwright_api.expect(page.locator("#search-status")).to_contain_text("15 matches")
        playwright_api.expect(results.first).to_contain_text("Space Opera")
        operas = results.evaluate_all("rows => rows.map(r => r.dataset.itemId)")
        assert all(i in data.x_items for i in operas)
        _rate(page, operas[0], 5)
        _rate(page, operas[1], 5)
        page.fill("#search", "drama")
        playwright_api.expect(results.first).to_contain_text("Quiet Drama")
        drama = results.first.get_attribute("data-item-id")
        _rate(page, drama, 1)

        playwright_api.expect(page.locator("#rated li.item")).to_have_count(3)
        playwright_api.expect(page.locator("#recs-status")).to_contain_text("From your 3 ratings")
        recs = page.locator("#recs li.item")
        playwright_api.expect(recs).to_have_count(10)
        shown = recs.evaluate_all("rows => rows.map(r => r.dataset.itemId)")
        assert not set(shown) & {operas[0], operas[1], drama}  # nothing already rated
        titles = recs.locator(".title").all_inner_texts()
        assert all(t.startswith("Space Opera") for t in titles[:5]), titles  # the planted taste
        assert "predicted" in recs.first.locator(".meta").inner_text()
        # "Because you liked ...": the operas rated 5 stars, never the drama rated 1.
        playwright_api.expect(recs.first.locator(".because")).to_contain_text("Because you liked Space Opera")
        assert not any("Quiet Drama" in t for t in recs.locator(".because").all_inner_texts())
        playwright_api.expect(page.locator("#score-note")).to_contain_text("predicted ratings")
        # The stars show the rating given.
        lit = page.locator(f'#rated li.item[data-item-id="{operas[0]}"] button.rate.on')
        playwright_api.expect(lit).to_have_count(5)

        # Removing a rating updates the recommendations again.
        page.locator(f'#rated li.item[data-item-id="{drama}"] button.remove').click()
        playwright_api.expect(page.locator("#rated li.item")).to_have_count(2)
        playwright_api.expect(page.locator("#recs-status")).to_contain_text("From your 2 ratings")
    assert page.problems == []


def test_more_like_this_shows_the_items_group(page):
    data = planted_ratings()
    with _Server(create_app(_fit(_with_titles(data)))) as server:
        page.goto(server.url + "/")
        playwright_api.expect(page.locator("#results li.item")).to_have_count(20)
        assert page.locator("#similar-panel").is_hidden()
        page.fill("#search", "space opera 3")
        row = page.locator('#results li.item[data-item-id="x3"]')
        row.locator("button.more").click()
        playwright_api.expect(page.locator("#similar-title")).to_contain_text("More like Space Opera 3")
        similar = page.locator("#similar li.item")
        playwright_api.expect(similar).to_have_count(10)
        titles = similar.locator(".title").all_inner_texts()
        assert all(t.startswith("Space Opera") for t in titles[:5]) and "Space Opera 3" not in titles, titles
        # A similar title can be rated from there.
        first = similar.first.get_attribute("data-item-id")
        _rate(page, first, 5, "#similar")
        playwright_api.expect(page.locator("#rated li.item")).to_have_count(1)
    assert page.problems == []


def test_like_dislike_data_gets_thumbs(page):
    data = planted_ratings(binary=True)
    with _Server(create_app(_fit(_with_titles(data)))) as server:
        page.goto(server.url + "/")
        first = page.locator("#results li.item").first
        playwright_api.expect(first.locator("button.rate")).to_have_count(2)
        assert first.locator("button.rate").evaluate_all("bs => bs.map(b => b.getAttribute('aria-label'))") == ["Like", "Dislike"]
        _rate(page, first.get_attribute("data-item-id"), 1)
        recs = page.locator("#recs li.item")
        playwright_api.expect(recs).to_have_count(10)
        assert recs.first.locator(".meta").inner_text().endswith("% like")
    assert page.problems == []


def test_a_top_n_model_shows_no_rating_scores(page):
    from aerec import ImplicitRecommender

    data = planted_ratings()
    with single_thread():
        model = ImplicitRecommender("ease").fit(_with_titles(data))
    with _Server(create_app(model)) as server:
        page.goto(server.url + "/")
        playwright_api.expect(page.locator("#score-note")).to_contain_text("predicts no ratings")
        _rate(page, page.locator("#results li.item").first.get_attribute("data-item-id"), 5)
        recs = page.locator("#recs li.item")
        playwright_api.expect(recs).to_have_count(10)
        assert "predicted" not in recs.first.locator(".meta").inner_text()
    assert page.problems == []


@pytest.mark.parametrize("width", [1280, 390])
def test_half_star_scale_lays_out_inside_each_row(page, width, tmp_path):
    """Ten half-star levels (0.5..5) fit their rows on a wide screen and on a phone: no button
    runs out of its row or off the page, and the title keeps room to be read."""
    from aerec.data.ratings import Ratings
    from aerec.data.scale import RatingScale

    data = planted_ratings()
    train = _with_titles(data)
    frame = train.frame.copy()
    frame["rating"] = (frame["rating"] - 0.5 * (frame.index.to_numpy() % 2)).clip(lower=0.5)
    half = Ratings.from_frame(frame, scale=RatingScale(0.5, 5, 0.5), item_info=train.item_info)
    page.set_viewport_size({"width": width, "height": 900})
    with _Server(create_app(_fit(half))) as server:
        page.goto(server.url + "/")
        rows = page.locator("#results li.item")
        playwright_api.expect(rows).to_have_count(20)
        playwright_api.expect(rows.first.locator("button.rate")).to_have_count(10)
        _rate(page, rows.first.get_attribute("data-item-id"), 4.5)
        playwright_api.expect(page.locator("#rated li.item")).to_have_count(1)
        playwright_api.expect(page.locator("#recs li.item")).to_have_count(10)  # every panel drawn
        page.screenshot(path=str(tmp_path / f"half-stars-{width}.png"), full_page=True)
        layout = page.evaluate("""() => {
            const box = (el) => el.getBoundingClientRect();
            const rows = [...document.querySelectorAll("li.item")].map((li) => {
                const r = box(li), title = box(li.querySelector(".title"));
                const buttons = [...li.querySelectorAll("button.rate")].map(box);
                return {
                    outside: buttons.filter((b) => b.left < r.left - 1 || b.right > r.right + 1).length,
                    overlapping: buttons.filter((b, k) => k > 0 && b.top === buttons[k - 1].top
                                                && b.left < buttons[k - 1].right - 1).length,
                    titleWidth: title.width,
                };
            });
            return {rows, pageWidth: document.documentElement.scrollWidth, viewport: window.innerWidth};
        }""")
    assert layout["pageWidth"] <= layout["viewport"], layout["pageWidth"]  # no sideways scrolling
    assert layout["rows"], "no rows drawn"
    for row in layout["rows"]:
        assert row["outside"] == 0 and row["overlapping"] == 0, row
        assert row["titleWidth"] >= 100, row  # the title is not squeezed to a sliver
    assert page.problems == []
