// aerec's web page: search titles, rate a few, watch recommendations update.
// Plain JavaScript, no build step and no third-party code. Everything shown comes from the
// JSON API of the same server (GET /health, GET /v1/items, GET /v1/items/{id}/similar,
// POST /v1/recommendations) and is
// put on the page with textContent, never as HTML.
"use strict";

(() => {
  const SEARCH_DELAY_MS = 200;
  const RECS_DELAY_MS = 80;
  const PAGE_SIZE = 20;
  const N_RECS = 10;
  const N_SIMILAR = 10;
  const N_BECAUSE = 3; // rated items named under each recommendation

  const state = {
    scale: null,
    options: [],          // rating buttons: [{value, label, aria}]
    style: "levels",      // "stars", "binary" or "levels"
    ratings: new Map(),   // item_id -> {item, value}, in the order they were rated
    results: [],
    recs: [],
    similar: [],          // "more like this": the items most like state.similarTo
    similarTo: null,
    similarSeq: 0,
    searchSeq: 0,
    recsSeq: 0,
    searchTimer: null,
    recsTimer: null,
  };

  const $ = (id) => document.getElementById(id);

  // ------------------------------------------------------------------ API
  async function api(path, init) {
    const response = await fetch(path, {
      ...init,
      headers: { "Accept": "application/json", "Content-Type": "application/json" },
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const detail = body && typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`;
      throw new Error(detail);
    }
    return body;
  }

  // ------------------------------------------------------------------ the rating scale
  function formatNumber(x) {
    return Number.isInteger(x) ? String(x) : x.toFixed(1).replace(/\.0$/, "");
  }

  function ratingOptions(scale) {
    if (scale.binary) {
      return {
        style: "binary",
        options: [
          { value: 1, label: "\u{1F44D}", aria: "Like" },
          { value: 0, label: "\u{1F44E}", aria: "Dislike" },
        ],
      };
    }
    let levels = scale.levels;
    if (!levels.length || levels.length > 10) {
      // A continuous or very fine scale: five evenly spaced values.
      levels = [0, 1, 2, 3, 4].map((k) => Math.round((scale.low + (k * (scale.high - scale.low)) / 4) * 100) / 100);
    }
    const stars = scale.step === 1 && scale.low >= 1 && levels.length <= 10;
    return {
      style: stars ? "stars" : "levels",
      options: levels.map((value) => ({
        value,
        label: stars ? "\u2605" : formatNumber(value),
        aria: stars ? `${value} star${value === 1 ? "" : "s"}` : `Rating ${formatNumber(value)}`,
      })),
    };
  }

  function describeScore(score) {
    if (state.style === "binary") return `${Math.round(score * 100)}% like`;
    return `predicted ${score.toFixed(1)}`;
  }

  // ------------------------------------------------------------------ rows
  function itemLabel(item) {
    return item.title || `Item ${item.item_id}`;
  }

  function ratingControl(item) {
    const current = state.ratings.has(item.item_id) ? state.ratings.get(item.item_id).value : null;
    const group = document.createElement("div");
    group.className = `rating rating-${state.style}`;
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", `Rate ${itemLabel(item)}`);
    for (const option of state.options) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "rate";
      button.dataset.value = String(option.value);
      button.textContent = option.label;
      button.title = option.aria;
      button.setAttribute("aria-label", option.aria);
      const pressed = current !== null && current === option.value;
      const lit = current !== null && (state.style === "stars" ? option.value <= current : pressed);
      button.setAttribute("aria-pressed", pressed ? "true" : "false");
      if (lit) button.classList.add("on");
      button.addEventListener("click", () => {
        const list = button.closest("ul, ol");
        if (pressed) unrate(item.item_id);
        else rate(item, option.value);
        keepFocus(list && list.id, item.item_id, option.value);
      });
      group.appendChild(button);
    }
    return group;
  }

  // The lists are redrawn after each rating: put keyboard focus back on the same button.
  function keepFocus(listId, itemId, value) {
    if (!listId) return;
    const row = [...$(listId).children].find((li) => li.dataset.itemId === itemId);
    const button = row && row.querySelector(`button.rate[data-value="${value}"]`);
    if (button) button.focus();
  }

  function itemRow(item, extra) {
    const li = document.createElement("li");
    li.className = "item";
    li.dataset.itemId = item.item_id;
    const main = document.createElement("div");
    main.className = "item-main";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = itemLabel(item);
    main.appendChild(title);
    const details = [];
    if (item.genres && item.genres.length) details.push(item.genres.join(", "));
    // Implicit top-N models score in their own units: the order is what counts, not the number.
    if (extra && typeof extra.score === "number" && !state.implicit) details.push(describeScore(extra.score));
    if (details.length) {
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = details.join(" \u00b7 ");
      main.appendChild(meta);
    }
    // "Because you liked ...": the rated items that pushed this recommendation up most.
    if (extra && Array.isArray(extra.because) && extra.because.length) {
      const why = document.createElement("span");
      why.className = "because";
      why.textContent = "Because you liked " + extra.because.map((b) => b.title || b.item_id).join(", ");
      main.appendChild(why);
    }
    const more = document.createElement("button");
    more.type = "button";
    more.className = "link-button more";
    more.textContent = "More like this";
    more.setAttribute("aria-label", `Titles like ${itemLabel(item)}`);
    more.addEventListener("click", () => showSimilar(item));
    main.appendChild(more);
    li.appendChild(main);
    li.appendChild(ratingControl(item));
    if (extra && extra.removable) {
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = "\u00d7";
      remove.title = "Remove this rating";
      remove.setAttribute("aria-label", `Remove the rating of ${itemLabel(item)}`);
      remove.addEventListener("click", () => unrate(item.item_id));
      li.appendChild(remove);
    }
    return li;
  }

  function fill(list, rows) {
    list.replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ rendering
  function renderResults() {
    fill($("results"), state.results.map((item) => itemRow(item)));
  }

  function renderRated() {
    const entries = [...state.ratings.values()].reverse(); // the latest first
    fill($("rated"), entries.map(({ item }) => itemRow(item, { removable: true })));
    $("rated-empty").hidden = entries.length > 0;
    $("clear").hidden = entries.length === 0;
    $("rated-count").textContent = entries.length ? `(${entries.length})` : "";
  }

  function renderRecs() {
    // Rating models rank by relevance and show the predicted rating; top-N models predict none.
    fill($("recs"), state.recs.map((rec) => itemRow(rec, { score: rec.prediction, because: rec.because })));
  }

  function renderSimilar() {
    fill($("similar"), state.similar.map((item) => itemRow(item)));
  }

  function renderAll() {
    renderResults();
    renderRated();
    renderRecs();
    renderSimilar();
  }

  // The items most like one item, by the item vectors the model learned (cosine similarity).
  async function showSimilar(item) {
    const seq = ++state.similarSeq;
    const status = $("similar-status");
    state.similarTo = item;
    $("similar-panel").hidden = false;
    $("similar-title").textContent = `More like ${itemLabel(item)}`;
    status.textContent = "Looking\u2026";
    try {
      const params = new URLSearchParams({ n: String(N_SIMILAR) });
      const body = await api(`/v1/items/${encodeURIComponent(item.item_id)}/similar?${params}`);
      if (seq !== state.similarSeq) return;
      state.similar = body.similar;
      renderSimilar();
      status.textContent = state.similar.length ? "Most similar first." : "Nothing similar found.";
      $("similar-panel").scrollIntoView({ behavior: "smooth", block: "nearest" });
    } catch (error) {
      if (seq !== state.similarSeq) return;
      state.similar = [];
      renderSimilar();
      status.textContent = `Could not find similar titles: ${error.message}`;
    }
  }

  // ------------------------------------------------------------------ actions
  function rate(item, value) {
    state.ratings.delete(item.item_id); // re-rating moves it to the top of the list
    state.ratings.set(item.item_id, { item, value });
    renderAll();
    scheduleRecs();
  }

  function unrate(itemId) {
    state.ratings.delete(itemId);
    renderAll();
    scheduleRecs();
  }

  function scheduleRecs() {
    clearTimeout(state.recsTimer);
    if (state.ratings.size) $("recs-status").textContent = "Updating\u2026";
    state.recsTimer = setTimeout(updateRecs, RECS_DELAY_MS);
  }

  async function updateRecs() {
    const seq = ++state.recsSeq;
    const status = $("recs-status");
    if (state.ratings.size === 0) {
      state.recs = [];
      renderRecs();
      status.textContent = "Rate a title to see recommendations.";
      return;
    }
    const ratings = {};
    for (const [id, { value }] of state.ratings) ratings[id] = value;
    status.textContent = "Updating\u2026";
    try {
      const body = await api("/v1/recommendations", {
        method: "POST",
        body: JSON.stringify({ ratings, n: N_RECS, explain: true, explain_top: N_BECAUSE }),
      });
      if (seq !== state.recsSeq) return; // a newer request is on its way
      state.recs = body.recommendations;
      renderRecs();
      const n = state.ratings.size;
      status.textContent = state.recs.length
        ? `From your ${n} rating${n === 1 ? "" : "s"}; rate more to refine them.`
        : "Nothing left to recommend.";
    } catch (error) {
      if (seq !== state.recsSeq) return;
      status.textContent = `Could not get recommendations: ${error.message}`;
    }
  }

  async function search(query) {
    const seq = ++state.searchSeq;
    const status = $("search-status");
    try {
      const params = new URLSearchParams({ query, limit: String(PAGE_SIZE) });
      const body = await api(`/v1/items?${params}`);
      if (seq !== state.searchSeq) return;
      state.results = body.items;
      renderResults();
      if (!query.trim()) status.textContent = `The ${body.items.length} most-rated of ${body.total} titles.`;
      else if (body.total === 0) status.textContent = `Nothing matches \u201c${query.trim()}\u201d.`;
      else status.textContent = `${body.total} match${body.total === 1 ? "" : "es"} for \u201c${query.trim()}\u201d` +
        (body.total > body.items.length ? `, the ${body.items.length} most-rated shown.` : ".");
    } catch (error) {
      if (seq !== state.searchSeq) return;
      status.textContent = `Search failed: ${error.message}`;
    }
  }

  // ------------------------------------------------------------------ start
  async function start() {
    $("search").addEventListener("input", (event) => {
      clearTimeout(state.searchTimer);
      const query = event.target.value;
      state.searchTimer = setTimeout(() => search(query), SEARCH_DELAY_MS);
    });
    $("clear").addEventListener("click", () => {
      state.ratings.clear();
      renderAll();
      scheduleRecs();
    });
    try {
      const health = await api("/health");
      state.scale = health.scale;
      state.implicit = health.task === "implicit";
      if (state.implicit) {
        $("score-note").textContent = "Recommendations are in the model's order of preference: a top-N model predicts no ratings.";
      }
      ({ style: state.style, options: state.options } = ratingOptions(health.scale));
      const scaleText = health.scale.binary
        ? "like / dislike"
        : `ratings ${formatNumber(health.scale.low)} to ${formatNumber(health.scale.high)}`;
      $("model-info").textContent =
        `Model: ${health.model}, trained on ${health.users} users and ${health.items} titles (${scaleText}).`;
      document.body.dataset.ready = "true";
      await search("");
    } catch (error) {
      $("model-info").textContent = `The server did not answer: ${error.message}`;
    }
  }

  document.addEventListener("DOMContentLoaded", start);
})();
