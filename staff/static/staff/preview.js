// The homepage preview's "why" panel: a click on a tile shows why the engine put that title there.
(function () {
  "use strict";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function section(body, title) {
    var block = el("section", { "class": "why-section" });
    block.appendChild(el("h4", {}, title));
    body.appendChild(block);
    return block;
  }

  function table(rows, headers) {
    var t = el("table", { "class": "why-table" });
    if (headers) {
      var head = el("tr");
      headers.forEach(function (h) { head.appendChild(el("th", {}, h)); });
      t.appendChild(head);
    }
    rows.forEach(function (cells) {
      var tr = el("tr");
      cells.forEach(function (c) { tr.appendChild(el("td", {}, c)); });
      t.appendChild(tr);
    });
    return t;
  }

  function fmt(value) {
    if (value === null || value === undefined) { return "—"; }
    return typeof value === "number" ? String(Math.round(value * 10000) / 10000) : String(value);
  }

  function show(tile, data, panel) {
    var id = tile.getAttribute("data-content-id");
    var info = data[id] || {};
    var body = panel.querySelector(".why-body");
    body.textContent = "";
    body.appendChild(el("h3", { "class": "why-title" }, info.title || tile.getAttribute("title")));
    var facts = [(info.genres || []).join(" · "), info.maturity, info.is_original ? "Original" : ""].filter(Boolean);
    body.appendChild(el("p", { "class": "why-facts" }, facts.join(" — ")));
    body.appendChild(el("p", { "class": "why-reason" },
      "“" + tile.getAttribute("data-reason") + "” in " + tile.getAttribute("data-row-title")));

    var sources = section(body, "Candidate sources");
    var scores = info.sources || {};
    var names = Object.keys(scores);
    if (names.length) {
      sources.appendChild(table(names.map(function (n) { return [n, fmt(scores[n])]; }), ["source", "score"]));
    } else {
      sources.appendChild(el("p", {}, tile.getAttribute("data-sources") || "—"));
    }

    var scoring = section(body, "Scores");
    if (info.explained) {
      scoring.appendChild(table([
        ["ranker score", fmt(info.ranker_score)],
        ["final score (after rules)", fmt(info.final_score)],
        ["rank by relevance", fmt(info.rank_by_relevance)]
      ]));
    } else {
      scoring.appendChild(el("p", {}, "score " + tile.getAttribute("data-score") +
        " (the comparison page is not explained: open the tile on the served page)"));
    }

    var features = info.top_features || [];
    var contributions = section(body, "Top features");
    if (features.length) {
      contributions.appendChild(table(features.map(function (f) {
        return [f.feature, fmt(f.value), (f.contribution > 0 ? "+" : "") + fmt(f.contribution)];
      }), ["feature", "value", "contribution"]));
    } else {
      contributions.appendChild(el("p", { "class": "why-note" }, info.explained
        ? "No ranker is active: the page is ordered by the candidate sources' scores, so no feature weighs in."
        : "Not explained on this side."));
    }

    var rules = section(body, "Rules");
    var list = el("ul", { "class": "why-rules" });
    if (info.boosted) { list.appendChild(el("li", { "class": "rule-boosted" }, "Boosted: a boost raised its score")); }
    (info.rules || []).forEach(function (r) { list.appendChild(el("li", {}, r)); });
    if (!list.children.length) { list.appendChild(el("li", {}, "No boost, tier rule or suppression matches this title")); }
    rules.appendChild(list);

    document.querySelectorAll(".tile.selected").forEach(function (t) { t.classList.remove("selected"); });
    tile.classList.add("selected");
    panel.hidden = false;
    panel.setAttribute("data-content-id", id);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var source = document.getElementById("why-data");
    var panel = document.getElementById("why");
    if (!source || !panel) { return; }
    var data = JSON.parse(source.textContent);
    document.querySelectorAll(".tile").forEach(function (tile) {
      tile.addEventListener("click", function () { show(tile, data, panel); });
    });
    panel.querySelector(".why-close").addEventListener("click", function () { panel.hidden = true; });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { panel.hidden = true; }
    });
  });
})();
