// The dashboard: share of voice, net sentiment over time and the latest mentions of the
// tracked brands, refreshed every few seconds. Charts are inline SVG drawn here, with no
// library and nothing loaded from elsewhere (Sentimon runs offline).
//
// Mention texts, author names and bios are hostile input: everything from the API goes
// into the page as text nodes (textContent / createTextNode), never as markup.
(function () {
  "use strict";

  const RANGES = {
    "24h": { hours: 24, interval: "1h", label: "Last 24 hours", bucket: "hourly" },
    "7d": { hours: 24 * 7, interval: "6h", label: "Last 7 days", bucket: "6-hour" },
    "30d": { hours: 24 * 30, interval: "1d", label: "Last 30 days", bucket: "daily" },
  };
  // Okabe–Ito based, readable on light and dark backgrounds and for most colour blindness.
  const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00",
    "#7f6bd6", "#8c8c2a", "#b8475d", "#3d8a8a"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const MENTIONS_LIMIT = 24;
  const ALERTS_LIMIT = 8;
  const KIND_NAMES = {
    negative_spike: "Negative spike",
    negative_share: "Negative share",
    volume_spike: "Volume spike",
  };

  const $ = (id) => document.getElementById(id);
  const main = $("dashboard");
  const refreshMs = 1000 * Number(main.dataset.refreshSeconds || 15);
  // Analysts and admins may acknowledge alerts (the API says so too: 403 for others).
  const canAcknowledge = main.dataset.canAcknowledge === "true";
  const askedRange = new URLSearchParams(location.search).get("range");
  const state = {
    range: Object.hasOwn(RANGES, askedRange) ? askedRange : "7d",
    mode: "share",
    sov: null,
    colours: new Map(),
    timer: null,
    generation: 0,
  };

  // --- DOM helpers: attributes and text only, never HTML strings ------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    return fill(node, attrs, children);
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    return fill(node, attrs, children);
  }

  function fill(node, attrs, children) {
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function swatch(brand) {
    const s = el("span", { class: "swatch", "aria-hidden": "true" });
    s.style.backgroundColor = colourOf(brand);
    return s;
  }

  function colourOf(brand) {
    if (!state.colours.has(brand)) {
      state.colours.set(brand, PALETTE[state.colours.size % PALETTE.length]);
    }
    return state.colours.get(brand);
  }

  // --- Formatting ------------------------------------------------------------------------

  const intFmt = new Intl.NumberFormat("en-US");
  const compactFmt = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });
  const fmtInt = (n) => intFmt.format(n);
  const fmtShare = (s) => (s === null ? "–" : (s * 100).toFixed(1) + "%");

  function fmtNet(v) {
    if (v === null) return "–";
    const pct = Math.round(v * 100);
    return (pct > 0 ? "+" : pct < 0 ? "−" : "") + Math.abs(pct) + "%";
  }

  // The net sentiment shown for a row: the spot-check-corrected one where there is one.
  function netShown(row) {
    const a = row.adjusted && row.adjusted.net_sentiment;
    return a ? a.value : row.net_sentiment;
  }

  function halfInterval(fig) {
    return Math.round((fig.ci95[1] - fig.ci95[0]) * 50);
  }

  // "−46% ± 9 from 263 labels" with the interval and the raw figure on hover, or the raw
  // figure marked "raw" with the reason there is no correction.
  function netCell(row) {
    const a = row.adjusted && row.adjusted.net_sentiment;
    if (a) {
      return el("td", {
        class: "num col-net adjusted " + netClass(a.value),
        title: "95% interval " + fmtNet(a.ci95[0]) + " to " + fmtNet(a.ci95[1]) +
          "; automated (raw) " + fmtNet(row.net_sentiment),
      }, el("span", { class: "value" }, fmtNet(a.value)),
      el("span", { class: "ci" }, " ± " + halfInterval(a)),
      el("small", { class: "labels" }, " from " + fmtInt(row.adjusted.labels) + " labels"));
    }
    return el("td", {
      class: "num col-net raw " + netClass(row.net_sentiment),
      title: "not corrected: " + (row.adjusted_reason || "no spot checks"),
    }, el("span", { class: "value" }, fmtNet(row.net_sentiment)),
    el("small", { class: "labels" }, row.net_sentiment === null ? "" : " raw"));
  }

  function netClass(v) {
    return v === null ? "" : v > 0.05 ? "pos" : v < -0.05 ? "neg" : "";
  }

  function fmtTick(date, intervalSeconds) {
    if (intervalSeconds < 6 * 3600) {
      return date.toLocaleTimeString(undefined, { hour: "numeric" });
    }
    return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }

  function fmtBucket(date, intervalSeconds) {
    const opts = { month: "short", day: "numeric" };
    if (intervalSeconds < 86400) Object.assign(opts, { hour: "2-digit", minute: "2-digit" });
    return date.toLocaleString(undefined, opts);
  }

  function fmtAgo(date) {
    const s = Math.max(0, (Date.now() - date.getTime()) / 1000);
    if (s < 60) return "just now";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  }

  // --- API -------------------------------------------------------------------------------

  class ApiError extends Error {}

  async function api(path, params) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v) query.set(k, v);
    const url = query.toString() ? path + "?" + query : path;
    let res;
    try {
      res = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    } catch (e) {
      throw new ApiError("cannot reach the Sentimon server (" + e.message + ")");
    }
    if (res.status === 401) {
      location.replace("/login");
      throw new ApiError("the session has ended: log in again");
    }
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      throw new ApiError(path + ": " + (body.detail || res.statusText) + " (HTTP " + res.status + ")");
    }
    return res.json();
  }

  function loadShareOfVoice() {
    const r = RANGES[state.range];
    const from = new Date(Date.now() - r.hours * 3600 * 1000).toISOString();
    return api("/api/v1/share-of-voice", { from: from, interval: r.interval });
  }

  function loadMentions() {
    return api("/api/v1/mentions", {
      brand: $("filter-brand").value,
      label: $("filter-label").value,
      limit: String(MENTIONS_LIMIT),
    });
  }

  function loadAlerts() {
    return api("/api/v1/alerts", { limit: String(ALERTS_LIMIT) });
  }

  // --- Refresh loop ----------------------------------------------------------------------

  async function refresh() {
    clearTimeout(state.timer);
    const generation = ++state.generation;
    const [sov, mentions, alerts] = await Promise.allSettled(
      [loadShareOfVoice(), loadMentions(), loadAlerts()]);
    if (generation !== state.generation) return; // a newer refresh has started
    const errors = [];
    if (alerts.status === "fulfilled") renderAlerts(alerts.value.items);
    else errors.push(alerts.reason.message);
    if (sov.status === "fulfilled") renderShareOfVoice(sov.value);
    else errors.push(sov.reason.message);
    if (mentions.status === "fulfilled") renderMentions(mentions.value.items);
    else errors.push(mentions.reason.message);
    showError(errors);
    const r = RANGES[state.range];
    const when = new Date().toLocaleTimeString();
    $("status").textContent = r.label + " · " + r.bucket + " periods · " +
      (errors.length ? "update failed at " : "updated ") + when +
      " · refreshes every " + refreshMs / 1000 + " s";
    if (!errors.length) main.dataset.updated = String(Date.now());
    if (!document.hidden) state.timer = setTimeout(refresh, refreshMs);
  }

  function showError(messages) {
    const box = $("error");
    box.replaceChildren();
    box.hidden = messages.length === 0;
    if (!messages.length) return;
    box.append(el("strong", {}, "Could not load the latest figures. "));
    messages.forEach((m) => box.append(el("span", {}, m + ". ")));
    box.append(el("span", {}, "Retrying every " + refreshMs / 1000 + " s."));
  }

  // --- Share of voice: legend, totals, charts ---------------------------------------------

  function renderShareOfVoice(sov) {
    state.sov = sov;
    const names = sov.brands.map((b) => b.brand);
    names.forEach(colourOf);
    $("empty").hidden = names.length > 0;
    $("content").hidden = names.length === 0;
    $("no-data").hidden = names.length === 0 || sov.total > 0;
    syncBrandFilter(names);
    renderLegend($("sov-legend"), sov.brands);
    renderTotals(sov);
    drawCharts();
  }

  function renderLegend(list, rows) {
    list.replaceChildren(...rows.map((b) =>
      el("li", {}, swatch(b.brand), el("span", { class: "legend-name" }, b.brand),
        el("span", { class: "legend-value" }, fmtShare(b.share)))));
  }

  function renderTotals(sov) {
    const rows = [...sov.brands].sort((a, b) => b.mentions - a.mentions);
    const tbody = $("totals").tBodies[0];
    tbody.replaceChildren(...rows.map((b) => el("tr", { "data-brand": b.brand },
      el("th", { scope: "row" }, swatch(b.brand), b.brand),
      el("td", { class: "num col-mentions" }, fmtInt(b.mentions)),
      el("td", { class: "num col-share" }, fmtShare(b.share)),
      netCell(b),
      el("td", { class: "num col-raw-net " + netClass(b.net_sentiment) }, fmtNet(b.net_sentiment)),
      el("td", { class: "num col-positive" }, fmtInt(b.positive)),
      el("td", { class: "num col-neutral" }, fmtInt(b.neutral)),
      el("td", { class: "num col-negative" }, fmtInt(b.negative)),
      el("td", { class: "num col-reach", title: fmtInt(b.reach) + " followers" },
        compactFmt.format(b.reach)))));
  }

  function syncBrandFilter(names) {
    const select = $("filter-brand");
    const current = [...select.options].slice(1).map((o) => o.value);
    if (current.join("\n") === names.join("\n")) return;
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "All brands"),
      ...names.map((n) => el("option", { value: n }, n)));
    select.value = names.includes(chosen) ? chosen : "";
  }

  function drawCharts() {
    const sov = state.sov;
    if (!sov || !sov.brands.length) return;
    const label = RANGES[state.range].label.toLowerCase();
    drawShareChart($("sov-chart"), sov, label);
    drawNetChart($("net-chart"), sov, label);
  }

  // A frame shared by both charts: plot area, y grid with labels, x labels per bucket.
  function frame(container, buckets, intervalSeconds, yTicks, yFormat, yMin, yMax, summary) {
    const width = Math.max(260, container.clientWidth);
    const height = width < 520 ? 200 : 240;
    const m = { top: 10, right: 10, bottom: 26, left: 46 };
    const pw = width - m.left - m.right;
    const ph = height - m.top - m.bottom;
    const n = Math.max(1, buckets.length);
    const step = pw / n;
    const root = svg("svg", {
      viewBox: "0 0 " + width + " " + height, width: width, height: height,
      role: "img", "aria-label": summary,
    });
    const y = (v) => m.top + ph - ((v - yMin) / (yMax - yMin)) * ph;
    const x = (i) => m.left + (i + 0.5) * step;
    const grid = svg("g", { class: "grid" });
    for (const t of yTicks) {
      grid.append(svg("line", { x1: m.left, x2: width - m.right, y1: y(t), y2: y(t),
        class: t === 0 && yMin < 0 ? "zero" : null }));
      grid.append(svg("text", { x: m.left - 6, y: y(t) + 4, "text-anchor": "end" }, yFormat(t)));
    }
    let lastRight = -Infinity;
    let lastText = "";
    buckets.forEach((b, i) => {
      const text = fmtTick(new Date(b.start), intervalSeconds);
      const half = text.length * 3.3;
      if (text === lastText || x(i) - half < lastRight + 8 || x(i) + half > width) return;
      grid.append(svg("text", { x: x(i), y: height - 8, "text-anchor": "middle" }, text));
      lastRight = x(i) + half;
      lastText = text;
    });
    root.append(grid);
    container.replaceChildren(root);
    return { root, x, y, step, top: m.top, bottom: m.top + ph, width, height };
  }

  function drawShareChart(container, sov, rangeLabel) {
    const asShare = state.mode === "share";
    const peak = Math.max(1, ...sov.buckets.map((b) => b.total));
    const max = asShare ? 1 : niceCeil(peak);
    const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => t * max);
    const leader = [...sov.brands].sort((a, b) => b.mentions - a.mentions)[0];
    const summary = "Share of voice per " + RANGES[state.range].bucket + " period, " +
      rangeLabel + ". " + sov.brands.map((b) => b.brand + " " + fmtShare(b.share)).join(", ") +
      (leader && leader.mentions ? ". " + leader.brand + " leads." : ". No mentions yet.");
    const f = frame(container, sov.buckets, sov.interval_seconds, ticks,
      asShare ? (t) => Math.round(t * 100) + "%" : (t) => compactFmt.format(t), 0, max, summary);
    const bars = svg("g", { class: "bars" });
    const barWidth = Math.max(1, f.step * 0.78);
    sov.buckets.forEach((bucket, i) => {
      let acc = 0;
      const when = fmtBucket(new Date(bucket.start), sov.interval_seconds);
      for (const row of bucket.brands) {
        if (!row.mentions) continue;
        const value = asShare ? row.mentions / bucket.total : row.mentions;
        const y0 = f.y(acc);
        acc += value;
        const rect = svg("rect", {
          x: f.x(i) - barWidth / 2, y: f.y(acc), width: barWidth, height: Math.max(0, y0 - f.y(acc)),
          fill: colourOf(row.brand),
        }, svg("title", {}, when + " · " + row.brand + ": " + fmtInt(row.mentions) +
          " mentions (" + fmtShare(row.share) + ")"));
        bars.append(rect);
      }
    });
    f.root.append(bars);
    if (!sov.total) noData(f, "No mentions in this range yet");
  }

  function drawNetChart(container, sov, rangeLabel) {
    const summary = "Net sentiment per " + RANGES[state.range].bucket + " period, " + rangeLabel +
      ", from −100% to +100%. Over the range: " +
      sov.brands.map((b) => b.brand + " " + fmtNet(netShown(b)) +
        (b.adjusted && b.adjusted.net_sentiment ? " ± " + halfInterval(b.adjusted.net_sentiment) +
          " (corrected by spot checks)" : "")).join(", ") +
      ". Filled points are corrected by the analysts' spot checks, with their 95% interval; " +
      "hollow ones are the automated scorer's own.";
    const f = frame(container, sov.buckets, sov.interval_seconds, [-1, -0.5, 0, 0.5, 1],
      (t) => fmtNet(t), -1, 1, summary);
    sov.brands.forEach((brand, k) => {
      const colour = colourOf(brand.brand);
      const g = svg("g", { class: "series" });
      let d = "";
      let pen = "M";
      sov.buckets.forEach((bucket, i) => {
        const row = bucket.brands[k];
        const value = netShown(row);
        if (value === null) {
          pen = "M";
          return;
        }
        d += pen + f.x(i).toFixed(1) + " " + f.y(value).toFixed(1) + " ";
        pen = "L";
        const when = fmtBucket(new Date(bucket.start), sov.interval_seconds) + " · " + brand.brand;
        const a = row.adjusted && row.adjusted.net_sentiment;
        if (a) {
          // The 95% interval as an error bar, capped at both ends.
          const x = f.x(i);
          const lo = f.y(a.ci95[0]);
          const hi = f.y(a.ci95[1]);
          g.append(svg("path", {
            class: "error-bar", stroke: colour, "stroke-width": 1.2, fill: "none",
            d: "M" + (x - 3) + " " + hi + "H" + (x + 3) + "M" + x + " " + hi + "V" + lo +
              "M" + (x - 3) + " " + lo + "H" + (x + 3),
          }));
          g.append(svg("circle", { cx: x, cy: f.y(value), r: 2.5, fill: colour, class: "adjusted" },
            svg("title", {}, when + ": net " + fmtNet(value) + " ± " + halfInterval(a) +
              " (95% interval " + fmtNet(a.ci95[0]) + " to " + fmtNet(a.ci95[1]) + ", from " +
              fmtInt(row.adjusted.labels) + " labels; automated " + fmtNet(row.net_sentiment) + ")")));
        } else {
          g.append(svg("circle", {
            cx: f.x(i), cy: f.y(value), r: 2.5, fill: "var(--bg, #fff)", stroke: colour,
            "stroke-width": 1.5, class: "raw",
          }, svg("title", {}, when + ": net " + fmtNet(value) + " raw (" + row.positive +
            " positive, " + row.negative + " negative; not corrected: " +
            (row.adjusted_reason || "no spot checks") + ")")));
        }
      });
      if (d) g.prepend(svg("path", { d: d, stroke: colour, fill: "none", "stroke-width": 2 }));
      f.root.append(g);
    });
    if (!sov.total) noData(f, "No sentiment to show yet");
  }

  function noData(f, text) {
    const y = f.top + (f.bottom - f.top) * 0.375;
    const w = text.length * 7 + 24;
    f.root.append(svg("rect", { x: (f.width - w) / 2, y: y - 16, width: w, height: 24, rx: 4,
      class: "no-data-bg" }));
    f.root.append(svg("text", { x: f.width / 2, y: y, class: "no-data", "text-anchor": "middle" },
      text));
  }

  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const k of [1, 2, 4, 6, 8, 10]) if (k * p >= v) return k * p;
    return 10 * p;
  }

  // --- Recent alerts ---------------------------------------------------------------------

  function renderAlerts(items) {
    const list = $("alerts");
    const ids = items.map((a) => a.id + ":" + (a.acknowledged_at || "")).join("\n");
    if (list.dataset.ids === ids) {
      list.querySelectorAll("time").forEach((t) => {
        t.textContent = fmtAgo(new Date(t.getAttribute("datetime")));
      });
      return;
    }
    list.dataset.ids = ids;
    list.replaceChildren(...items.map(alertItem));
    $("alerts-empty").hidden = items.length > 0;
  }

  function alertItem(a) {
    const start = new Date(a.window.start);
    const severity = a.severity || "medium";
    const summary = a.summary || (KIND_NAMES[a.kind] + " for " + a.brand + ": " +
      a.observed + " against " + Number(a.expected).toFixed(1) + " expected");
    const meta = el("div", { class: "alert-meta" },
      el("span", { class: "brand-chip" }, swatch(a.brand), a.brand),
      el("span", {}, KIND_NAMES[a.kind] || a.kind),
      el("time", { datetime: a.window.start, title: start.toLocaleString() }, fmtAgo(start)),
      el("a", { href: "/alerts/" + encodeURIComponent(a.id) }, "Explain",
        el("span", { class: "visually-hidden" }, " alert " + a.id)));
    if (a.acknowledged_at) {
      const by = (a.acknowledged_by && a.acknowledged_by.name) || "someone";
      const when = new Date(a.acknowledged_at);
      meta.append(el("span", { class: "acknowledged", title: when.toLocaleString() },
        "Acknowledged by " + by + " " + fmtAgo(when)));
    } else if (canAcknowledge) {
      const button = el("button", { type: "button", class: "button-quiet acknowledge" },
        "Acknowledge", el("span", { class: "visually-hidden" }, " alert " + a.id));
      button.addEventListener("click", () => acknowledge(a.id, button));
      meta.append(button);
    }
    return el("li", { class: "alert-item", "data-alert-id": String(a.id),
      "data-acknowledged": a.acknowledged_at ? "true" : "false" },
      el("span", { class: "badge badge-" + severity, title: "p = " + a.p_value }, severity),
      el("p", { class: "alert-summary" }, summary),
      meta);
  }

  async function acknowledge(id, button) {
    button.disabled = true;
    let res = null;
    try {
      res = await fetch("/api/v1/alerts/" + encodeURIComponent(id) + "/ack", {
        method: "POST", credentials: "same-origin", headers: { Accept: "application/json" },
      });
    } catch (e) {
      showError(["cannot reach the Sentimon server (" + e.message + ")"]);
    }
    if (res && !res.ok) {
      const body = await res.json().catch(() => ({}));
      showError(["acknowledge: " + (body.detail || res.statusText) + " (HTTP " + res.status + ")"]);
    }
    button.disabled = false;
    if (res && res.ok) refresh();
  }

  // --- Latest mentions -------------------------------------------------------------------

  function renderMentions(items) {
    const list = $("mentions");
    const ids = items.map((m) => m.source + ":" + m.id).join("\n");
    if (list.dataset.ids === ids) {
      // The same mentions: only their ages change. Keeping the nodes keeps keyboard focus.
      list.querySelectorAll("time").forEach((t) => {
        t.textContent = fmtAgo(new Date(t.getAttribute("datetime")));
      });
      return;
    }
    list.dataset.ids = ids;
    list.replaceChildren(...items.map(mentionItem));
    $("mentions-empty").hidden = items.length > 0;
  }

  function mentionItem(m) {
    const a = m.author || {};
    const label = m.sentiment.label;
    const created = new Date(m.created_at);
    const who = el("div", { class: "author" },
      el("span", { class: "author-name" }, a.name || a.handle),
      el("span", { class: "author-handle" }, "@" + a.handle),
      el("span", { class: "author-followers" }, compactFmt.format(a.followers || 0) + " followers"));
    const meta = el("div", { class: "mention-meta" },
      ...m.brands.map((b) => el("span", { class: "brand-chip" }, swatch(b), b)),
      el("time", { datetime: m.created_at, title: created.toLocaleString() }, fmtAgo(created)),
      el("span", { class: "source" }, "via " + m.source));
    if (m.url && /^https?:\/\//i.test(m.url)) {
      meta.append(el("a", { href: m.url, target: "_blank", rel: "noopener noreferrer nofollow" },
        "Open", el("span", { class: "visually-hidden" }, " the original post")));
    }
    return el("li", { class: "mention", "data-label": label },
      el("div", { class: "mention-head" }, who,
        el("span", { class: "badge badge-" + label, title: "score " + m.sentiment.score }, label)),
      a.description ? el("p", { class: "author-bio" }, a.description) : null,
      el("p", { class: "mention-text" }, m.text),
      meta);
  }

  // --- Controls --------------------------------------------------------------------------

  function init() {
    const rangeInput = $("range-" + state.range);
    if (rangeInput) rangeInput.checked = true;
    $("range").addEventListener("change", (ev) => {
      state.range = ev.target.value;
      const url = new URL(location.href);
      url.searchParams.set("range", state.range);
      history.replaceState(null, "", url);
      refresh();
    });
    $("sov-mode").addEventListener("change", (ev) => {
      state.mode = ev.target.value;
      drawCharts();
    });
    $("mention-filters").addEventListener("change", () => refresh());
    $("mention-filters").addEventListener("submit", (ev) => ev.preventDefault());
    $("logout").addEventListener("click", async () => {
      await fetch("/logout", { method: "POST", credentials: "same-origin" }).catch(() => null);
      location.replace("/login");
    });
    document.addEventListener("visibilitychange", () => {
      if (document.hidden) clearTimeout(state.timer);
      else refresh();
    });
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawCharts, 150);
    });
    refresh();
  }

  init();
})();
