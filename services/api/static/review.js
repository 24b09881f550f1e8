// The spot-check page: claim a mention, label it from the keyboard, see the measured
// accuracy move. Mention texts, author names and brands are hostile input: they go into
// the page as text (textContent), never as markup.
(function () {
  "use strict";

  const API = "/api/v1/review";
  const POLL_MS = 15000;
  const KEYS = { "1": "positive", "2": "neutral", "3": "negative", "4": "irrelevant", s: "skip", u: "undo" };
  const LABEL_TEXT = { positive: "Positive", neutral: "Neutral", negative: "Negative" };

  const $ = (id) => document.getElementById(id);
  const main = $("review");
  const state = { item: null, session: 0, busy: false, poll: null };
  const intFmt = new Intl.NumberFormat("en-US");
  const pct = (v) => (v * 100).toFixed(1) + "%";

  function text(id, value) {
    $(id).textContent = value === null || value === undefined ? "" : String(value);
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  async function call(method, path, body) {
    const init = { method: method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(API + path, init);
    if (res.status === 401) {
      window.location.assign("/login");
      throw new Error("not logged in");
    }
    if (res.status === 204) return null;
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = new Error(data.detail || "HTTP " + res.status);
      err.status = res.status;
      throw err;
    }
    return data;
  }

  function render(result) {
    const item = result.item;
    state.item = item;
    $("item").hidden = !item;
    $("empty").hidden = !!item;
    if (item) {
      text("item-brand", item.brand);
      text("item-text", item.text);
      text("item-author-name", item.author.name || item.author.handle);
      text("item-author-handle", "@" + item.author.handle + (item.author.verified ? " ✓" : ""));
      text("item-reach", intFmt.format(item.author.followers) + " followers");
      text("item-source", item.source);
      const time = $("item-time");
      time.dateTime = item.created_at;
      time.textContent = new Date(item.created_at).toLocaleString();
      const link = $("item-url");
      const safe = typeof item.url === "string" && /^https?:\/\//.test(item.url);
      link.hidden = !safe;
      if (safe) link.href = item.url;
      else link.removeAttribute("href");
      text("item-brands", item.brands.join(", "));
      const auto = $("item-auto-label");
      auto.textContent = LABEL_TEXT[item.automated.label] || item.automated.label;
      auto.className = "badge badge-" + item.automated.label;
      text(
        "item-auto-detail",
        item.automated.method + ", confidence " + item.automated.confidence.toFixed(2)
      );
      let reason = item.reason === "uncertainty" ? "near a decision threshold" : "random sample";
      if (item.reviews_required > 1) reason += " · checked by two analysts";
      text("item-reason", reason);
      main.dataset.itemId = String(item.id);
    } else {
      delete main.dataset.itemId;
    }
    const p = result.progress;
    text(
      "progress",
      "This session: " + state.session + " labelled · " + intFmt.format(p.open_items) +
        " open in the queue · " + intFmt.format(p.labelled_by_you) + " by you in all"
    );
    main.dataset.session = String(state.session);
    clearTimeout(state.poll);
    if (!item) state.poll = setTimeout(() => run(() => call("POST", "/claim")), POLL_MS);
  }

  function renderStats(stats) {
    const o = stats.overall;
    const est = (e) => (e ? pct(e.value) + " (95% CI " + pct(e.ci95[0]) + "–" + pct(e.ci95[1]) + ")" : "–");
    text("stat-accuracy", est(o.accuracy));
    text("stat-kappa", o.kappa ? o.kappa.value.toFixed(2) : "–");
    text("stat-n", intFmt.format(o.n));
    text("stat-brand-precision", est(stats.brand_match_precision));
    text("stat-human", stats.human_agreement.accuracy ? est(stats.human_agreement.accuracy) : "–");
    main.dataset.statsN = String(o.n);
    main.dataset.updated = String(Date.now());
  }

  function signed(v) {
    const p = Math.round(v * 100);
    return (p > 0 ? "+" : p < 0 ? "−" : "") + Math.abs(p) + "%";
  }

  // Per brand: the corrected net sentiment ± half its interval, the labels behind it and
  // about how many more would bring it to the target; or why there is no figure yet.
  function renderBrands(progress) {
    const rows = progress.brands.map((b) => {
      const tr = document.createElement("tr");
      tr.dataset.brand = b.brand;
      const cell = (value, cls, title) => {
        const td = document.createElement("td");
        td.className = cls || "";
        td.textContent = value;
        if (title) td.title = title;
        return td;
      };
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = b.brand;
      tr.append(th);
      if (b.net_sentiment) {
        const n = b.net_sentiment;
        tr.append(cell(signed(n.value) + " ± " + Math.round(b.half_width * 100), "num col-net",
          "95% interval " + signed(n.ci95[0]) + " to " + signed(n.ci95[1])));
      } else {
        tr.append(cell("–", "num col-net", b.reason || ""));
      }
      tr.append(cell(intFmt.format(b.labels), "num col-labels"));
      tr.append(cell(b.labels_to_target === null ? "?" : b.labels_to_target === 0 ? "✓" :
        "+" + intFmt.format(b.labels_to_target), "num col-to-target",
      b.labels_to_target === null ? (b.reason || "") : ""));
      return tr;
    });
    $("brand-progress").tBodies[0].replaceChildren(...rows);
  }

  async function refreshStats() {
    const [stats, progress] = await Promise.all([call("GET", "/stats"), call("GET", "/brands")]);
    renderBrands(progress);
    renderStats(stats);
  }

  // One action at a time: a key pressed while one is under way is dropped, so a label
  // can only go to the item on screen. The stats refresh after, without holding keys up.
  async function run(step) {
    if (state.busy) return;
    setBusy(true);
    let ok = false;
    try {
      const result = await step();
      showError("");
      render(result);
      ok = true;
    } catch (e) {
      showError(e.message);
      if (e.status === 409) {
        try {
          render(await call("POST", "/claim"));
        } catch (again) {
          showError(again.message);
        }
      }
    } finally {
      setBusy(false);
    }
    if (ok) {
      try {
        await refreshStats();
      } catch (e) {
        showError(e.message);
      }
    }
  }

  function setBusy(busy) {
    state.busy = busy;
    main.dataset.busy = busy ? "1" : "0";
    main.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function act(action) {
    if (action === "undo") {
      return run(async () => {
        const result = await call("POST", "/undo");
        state.session = Math.max(0, state.session - 1);
        return result;
      });
    }
    const item = state.item;
    if (!item) return undefined;
    if (action === "skip") {
      return run(async () => {
        await call("POST", "/items/" + item.id + "/skip");
        return call("POST", "/claim");
      });
    }
    return run(async () => {
      await call("POST", "/items/" + item.id + "/label", { label: action });
      state.session += 1;
      return call("POST", "/claim");
    });
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat) return;
    const target = ev.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) return;
    const action = KEYS[ev.key.toLowerCase()];
    if (!action) return;
    ev.preventDefault();
    act(action);
  });

  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => act(button.dataset.action));
  }

  text("poll-seconds", POLL_MS / 1000);
  run(() => call("POST", "/claim"));
})();
