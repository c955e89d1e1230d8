// rfm-agent dashboard. Everything from data or from an LLM is put on the page as text
// (textContent, never innerHTML), so names and emails cannot inject markup.
"use strict";

const state = { config: null, current: null, timer: null, runs: [] };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function $(id) { return document.getElementById(id); }

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
  if (message) box.scrollIntoView({ block: "nearest" });
}

async function api(path, options) {
  let resp;
  try {
    resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options || {}));
  } catch (e) {
    throw new Error("The service cannot be reached. Is it still running?");
  }
  if (resp.status === 401) {
    window.location.href = "/";
    throw new Error("Please sign in again.");
  }
  if (resp.status === 204) return null;
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const said = body && body.error ? body.error : `the service answered ${resp.status}`;
    throw new Error(said.charAt(0).toUpperCase() + said.slice(1));
  }
  return body;
}

const number = new Intl.NumberFormat("en-GB");
function money(v) {
  const cur = (state.config && state.config.defaults.currency) || "";
  return cur + new Intl.NumberFormat("en-GB", { maximumFractionDigits: 0 }).format(v);
}
function pct(v) { return `${Math.round(v * 100)} %`; }
function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

// ---- set-up -------------------------------------------------------------

async function init() {
  try {
    state.config = await api("/v1/config");
  } catch (e) {
    showError(e.message);
    return;
  }
  const c = state.config;
  $("sign-out").hidden = !c.token_required;
  $("file-hint").textContent +=
    ` Up to ${number.format(c.limits.max_upload_mb)} MB.`;
  const k = $("k");
  k.append(el("option", { value: "auto" }, c.choices.k.auto_label));
  for (let i = c.choices.k.min; i <= c.choices.k.max; i++) k.append(el("option", { value: i }, String(i)));
  k.value = String(c.defaults.k);
  for (const f of c.choices.frequency) $("frequency").append(el("option", { value: f.value }, f.label));
  $("frequency").value = c.defaults.frequency;
  for (const select of [$("llm"), $("rewrite-llm")]) {
    for (const b of c.llm_backends) {
      select.append(el("option", { value: b.name, disabled: !b.ready },
        b.ready ? b.label : `${b.label} (not set up on this service)`));
    }
  }
  const ready = c.llm_backends.filter((b) => b.ready && b.name !== "rules");
  $("llm").value = c.defaults.llm === "auto" ? (ready.length ? ready[0].name : "rules") : c.defaults.llm;
  if ($("llm").selectedOptions.length && $("llm").selectedOptions[0].disabled) $("llm").value = "rules";
  const cols = $("columns");
  for (const { role, label } of c.choices.columns) {
    const id = `col-${role}`;
    cols.append(el("div", { class: "field" },
      el("label", { for: id }, label),
      el("input", { id, "data-role": role, type: "text", placeholder: c.columns[role] || "(none)" })));
  }
  for (const p of c.choices.presets) $("preset").append(el("option", { value: p }, p));
  $("file").addEventListener("change", recognise);
  $("preset").addEventListener("change", recognise);
  $("run-form").addEventListener("submit", (e) => { e.preventDefault(); startRun("file"); });
  $("run-sample").addEventListener("click", () => startRun("sample"));
  for (const name of c.sources) $("source").append(el("option", { value: name }, name));
  $("source-field").hidden = $("run-source").hidden = !c.sources.length;
  $("run-source").addEventListener("click", () => startRun("source"));
  $("rewrite").addEventListener("click", rewrite);
  $("compare-form").addEventListener("submit", (e) => { e.preventDefault(); compareRuns(); });
  await refreshRuns();
  const fromHash = window.location.hash.slice(1);
  if (/^[0-9a-f]{16}$/.test(fromHash)) openRun(fromHash);
}

// The export the chosen file's header is recognised as (the service decides, with the
// same rules as a run), and the column each role will be read from.
async function recognise() {
  const found = $("preset-found");
  const file = $("file").files[0];
  found.hidden = true;
  for (const input of document.querySelectorAll("#columns input")) {
    input.placeholder = state.config.columns[input.dataset.role] || "(none)";
  }
  if (!file || /\.(gz|xlsx|parquet)$/i.test(file.name)) return;
  const head = await file.slice(0, 65536).text();
  const header = head.split(/\r?\n/)[0];
  let r;
  try {
    r = await api("/v1/columns", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ header, preset: $("preset").value }),
    });
  } catch (e) {
    return;
  }
  found.textContent = r.label
    ? `Recognised: ${r.label} (preset ${r.preset}).`
    : "No known export recognised: map the columns below if the run cannot find them.";
  if (r.error) found.textContent += ` ${r.error}`;
  found.hidden = false;
  for (const [role, header] of Object.entries(r.columns || {})) {
    const input = $(`col-${role}`);
    if (input) input.placeholder = header;
  }
}

// ---- starting and following a run ---------------------------------------

async function startRun(kind) {
  showError("");
  const form = new FormData();
  const file = $("file").files[0];
  if (kind === "sample") {
    form.append("sample", "true");
  } else if (kind === "source") {
    form.append("source", $("source").value);
  } else if (!file) {
    showError("Choose a file first, or try the built-in sample.");
    return;
  } else if (file.size > state.config.limits.max_upload_mb * 1048576) {
    showError(`${file.name} is ${number.format(Math.ceil(file.size / 1048576))} MB, ` +
      `and this service takes files of up to ${number.format(state.config.limits.max_upload_mb)} MB. ` +
      "Upload a smaller export (a CSV compressed as .csv.gz is much smaller), " +
      "or ask whoever runs the service to raise [server] max_upload_mb.");
    return;
  } else {
    form.append("file", file, file.name);
  }
  form.append("k", $("k").value);
  form.append("frequency", $("frequency").value);
  form.append("llm", $("llm").value);
  const cols = [...document.querySelectorAll("#columns input")]
    .filter((i) => i.value.trim())
    .map((i) => `${i.dataset.role}=${i.value.trim()}`);
  if (cols.length) form.append("columns", cols.join(","));
  form.append("preset", $("preset").value);
  if ($("currency").value.trim()) form.append("currency", $("currency").value.trim());
  setBusy(true);
  try {
    const r = await api("/v1/runs", { method: "POST", body: form });
    follow(r.id);
  } catch (e) {
    setBusy(false);
    showError(e.message);
  }
}

function setBusy(busy) {
  for (const id of ["run-file", "run-sample", "run-source", "rewrite"]) $(id).disabled = busy;
}

function follow(id) {
  state.current = id;
  window.location.hash = id;
  $("results").hidden = true;
  $("progress").hidden = false;
  $("progress-bar").value = 0;
  $("progress-text").textContent = "Starting…";
  if (state.timer) clearTimeout(state.timer);
  poll(id);
}

async function poll(id) {
  if (state.current !== id) return;
  let detail;
  try {
    detail = await api(`/v1/runs/${id}`);
  } catch (e) {
    setBusy(false);
    $("progress").hidden = true;
    showError(e.message);
    return;
  }
  const run = detail.run;
  if (run.status === "queued" || run.status === "running") {
    $("progress-bar").value = run.percent;
    const step = run.progress ? run.progress.charAt(0).toUpperCase() + run.progress.slice(1) : "Working";
    $("progress-text").textContent = run.status === "queued"
      ? "Waiting for a free slot: other analyses are running."
      : `${step}… (${run.percent} %)`;
    state.timer = setTimeout(() => poll(id), 500);
    return;
  }
  setBusy(false);
  $("progress").hidden = true;
  refreshRuns();
  if (run.status === "failed") {
    showError(`The analysis of ${run.input_name} failed: ${run.error || "no reason given"}`);
    return;
  }
  render(detail);
}

async function openRun(id) {
  showError("");
  state.current = id;
  try {
    const detail = await api(`/v1/runs/${id}`);
    if (detail.run.status === "queued" || detail.run.status === "running") {
      setBusy(true);
      follow(id);
    } else if (detail.run.status === "failed") {
      $("results").hidden = true;
      showError(`The analysis of ${detail.run.input_name} failed: ${detail.run.error || "no reason given"}`);
    } else {
      window.location.hash = id;
      render(detail);
    }
  } catch (e) {
    showError(e.message);
  }
}

async function rewrite() {
  if (!state.current) return;
  showError("");
  setBusy(true);
  try {
    await api(`/v1/runs/${state.current}/campaigns`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ llm: $("rewrite-llm").value }),
    });
    follow(state.current);
  } catch (e) {
    setBusy(false);
    showError(e.message);
  }
}

// ---- results --------------------------------------------------------------

function render(detail) {
  const run = detail.run;
  const clusters = (detail.clusters && detail.clusters.clusters) || [];
  const doc = detail.campaigns || { campaigns: [], summary: {} };
  state.frequency = detail.clusters && detail.clusters.params ? detail.clusters.params.frequency : "invoices";
  const byCluster = new Map(doc.campaigns.map((c) => [c.cluster, c]));
  $("results").hidden = false;
  $("results-title").textContent = `Results for ${run.input_name}`;
  const ledger = detail.ledger || {};
  const s = doc.summary || {};
  const writer = s.backend === "rules" ? "the rule-based agent"
    : `${s.backend}${s.model ? ` (${s.model})` : ""}: ${s.from_llm} written, ${s.fallbacks} fell back to the rules`;
  $("results-summary").textContent =
    `${number.format(ledger.customers || 0)} customers in ${clusters.length} segments, ` +
    `from ${number.format(ledger.rows_kept || 0)} of ${number.format(ledger.rows_in || 0)} rows. ` +
    `Campaigns by ${writer}. Finished ${when(run.updated)}.`;

  const grid = $("segments");
  clear(grid);
  const order = [...clusters].sort((a, b) => b.revenue - a.revenue);
  const predict = detail.clusters && detail.clusters.predict;
  const fitted = predict && predict.status === "fitted" ? predict : null;
  const predicted = new Map(fitted ? fitted.segments.map((p) => [p.cluster, p]) : []);
  for (const c of order) grid.append(segmentCard(c, byCluster.get(c.id), predicted.get(c.id), fitted));
  $("predict-note").textContent = predict && predict.status === "skipped"
    ? `No predicted value: ${predict.reason}.` : "";

  const charts = $("charts");
  clear(charts);
  const titles = { customer_segments: "Customers by recency and spend",
    cluster_boxplots: "Recency, frequency and spend by segment",
    segment_value: "Share of customers and of revenue", elbow: "How many segments fit (elbow)",
    predicted_value: "Predicted value by segment" };
  for (const ch of detail.charts) {
    charts.append(el("figure", { class: "card" },
      el("a", { href: ch.svg, target: "_blank", rel: "noopener" },
        el("img", { src: ch.png, alt: titles[ch.name] || ch.name })),
      el("figcaption", {}, titles[ch.name] || ch.name)));
  }

  const table = $("ledger");
  clear(table);
  table.append(el("thead", {}, el("tr", {}, el("th", {}, "Step"), el("th", { class: "num" }, "Rows"),
    el("th", { class: "num" }, "Revenue"))));
  const body = el("tbody");
  body.append(el("tr", {}, el("td", {}, "Rows in the file"), el("td", { class: "num" }, number.format(ledger.rows_in || 0)),
    el("td", { class: "num" }, money(ledger.revenue_in || 0))));
  for (const r of ledger.removed || []) {
    body.append(el("tr", {}, el("td", {}, `Removed: ${r.rule}`), el("td", { class: "num" }, `− ${number.format(r.rows)}`),
      el("td", { class: "num" }, money(r.revenue))));
  }
  body.append(el("tr", { class: "total" }, el("td", {}, "Rows used"), el("td", { class: "num" }, number.format(ledger.rows_kept || 0)),
    el("td", { class: "num" }, money(ledger.revenue_kept || 0))));
  table.append(body);

  const list = $("downloads");
  clear(list);
  const describe = { "report.html": "Full report (opens in a new tab)", "customers.csv": "Every customer with their segment",
    "campaigns.json": "Campaigns (JSON)", "clusters.json": "Segment figures (JSON)", "report.md": "Report (Markdown)" };
  for (const f of detail.files) {
    if (/\.(png|svg)$/.test(f.name)) continue;
    const label = describe[f.name] || (f.name.startsWith("segments/") ? `Email list: ${f.name.slice(9)}` : f.name);
    const attrs = f.name.endsWith(".html") ? { href: f.url, target: "_blank", rel: "noopener" } : { href: f.url, download: "" };
    list.append(el("li", {}, el("a", attrs, label), el("span", { class: "hint" }, ` ${kb(f.bytes)}`)));
  }
}

function kb(bytes) {
  return bytes < 1024 ? `${bytes} B` : `${number.format(Math.round(bytes / 1024))} KB`;
}

function segmentCard(c, campaign, predicted, fitted) {
  const name = campaign ? campaign.name : `Cluster ${c.id}`;
  const freqUnit = state.frequency === "lines" ? " order lines" : " orders";
  const kpis = el("dl", { class: "kpis" },
    kpi("Customers", `${number.format(c.size)} (${pct(c.share)})`),
    kpi("Revenue", `${money(c.revenue)} (${pct(c.revenue_share)})`),
    kpi("Last purchase", `${number.format(c.recency.median)} days ago (median)`),
    kpi("Purchases", `${number.format(c.frequency.median)}${freqUnit} (median)`),
    kpi("Spend", `${money(c.monetary.median)} (median)`));
  if (predicted && predicted.customers > 0) {
    const days = fitted.model.horizon_days;
    const each = predicted.expected_purchases / predicted.customers;
    kpis.append(
      kpi("Still active", `${pct(predicted.mean_p_alive)} (mean P(alive))`),
      kpi(`Next ${days} days`, `${each.toFixed(1)} purchases each, ${money(predicted.expected_revenue)} expected`),
      kpi("Predicted value", `${money(predicted.clv)} (CLV, ${days} days)`));
  }
  const card = el("article", { class: "card segment", "data-cluster": c.id },
    el("h3", { class: "segment-name" }, name),
    kpis);
  if (!campaign) return card;
  if (campaign.source === "fallback") {
    card.append(el("p", { class: "note" }, `Written by the rules: ${(campaign.fallback && campaign.fallback.message) || "the LLM's answer was not usable"}`));
  }
  const email = campaign.email;
  const emailText = `Subject: ${email.subject}\n\n${email.body}\n\n${email.footer}`;
  const copy = el("button", { type: "button", class: "secondary copy" }, "Copy email");
  copy.addEventListener("click", () => copyText(emailText, copy));
  card.append(
    el("h4", {}, "Why this segment"), el("p", { class: "rationale" }, campaign.rationale),
    el("h4", {}, "Strategy"), el("p", { class: "strategy" }, campaign.strategy),
    el("p", { class: "hint" }, `Channels: ${campaign.channels.join(", ")}`),
    el("h4", {}, "Draft email"),
    el("div", { class: "email" },
      el("p", { class: "subject" }, el("strong", {}, "Subject: "), email.subject),
      email.preheader ? el("p", { class: "hint" }, email.preheader) : null,
      el("pre", { class: "body" }, email.body),
      el("p", { class: "hint footer" }, email.footer)),
    copy);
  return card;
}

function kpi(label, value) {
  return el("div", {}, el("dt", {}, label), el("dd", {}, value));
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (e) {
    const area = el("textarea", { class: "offscreen" });
    area.value = text;
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy email"; }, 1500);
}

// ---- earlier runs and compare -----------------------------------------------

async function refreshRuns() {
  let list;
  try {
    list = await api("/v1/runs");
  } catch (e) {
    showError(e.message);
    return;
  }
  state.runs = list.runs;
  const table = $("runs");
  clear(table);
  $("runs-empty").hidden = list.runs.length > 0;
  if (!list.runs.length) return;
  table.append(el("thead", {}, el("tr", {}, el("th", {}, "Started"), el("th", {}, "File"),
    el("th", {}, "Options"), el("th", {}, "Status"), el("th", {}, ""))));
  const body = el("tbody");
  const statusWords = { queued: "Waiting", running: "Running", done: "Finished", failed: "Failed" };
  for (const r of list.runs) {
    const opts = r.options || {};
    const summary = [`k ${opts.k || "default"}`, opts.frequency ? `frequency: ${opts.frequency}` : null,
      opts.llm ? `campaigns: ${opts.llm}` : null].filter(Boolean).join(", ");
    const open = el("button", { type: "button", class: "quiet" }, "Open");
    open.addEventListener("click", () => openRun(r.id));
    const del = el("button", { type: "button", class: "quiet danger" }, "Delete");
    del.addEventListener("click", () => deleteRun(r.id, r.input_name));
    body.append(el("tr", { "data-run": r.id },
      el("td", {}, when(r.created)), el("td", { class: "file" }, r.input_name), el("td", {}, summary),
      el("td", { title: r.error || "" }, statusWords[r.status] || r.status),
      el("td", { class: "buttons" }, open, del)));
  }
  table.append(body);
  for (const [id, pick] of [["before", 1], ["after", 0]]) {
    const select = $(id);
    const keep = select.value;
    clear(select);
    const done = list.runs.filter((r) => r.status === "done");
    for (const r of done) select.append(el("option", { value: r.id }, `${when(r.created)} · ${r.input_name}`));
    if (keep && done.some((r) => r.id === keep)) select.value = keep;
    else if (done[pick]) select.value = done[pick].id;
  }
}

async function deleteRun(id, name) {
  if (!window.confirm(`Delete the run of ${name} and all its files?`)) return;
  try {
    await api(`/v1/runs/${id}`, { method: "DELETE" });
    if (state.current === id) { state.current = null; $("results").hidden = true; }
    refreshRuns();
  } catch (e) {
    showError(e.message);
  }
}

async function compareRuns() {
  showError("");
  const before = $("before").value, after = $("after").value;
  const out = $("migration");
  clear(out);
  if (!before || !after) {
    showError("Compare needs two finished runs.");
    return;
  }
  let m;
  try {
    m = await api(`/v1/compare?before=${encodeURIComponent(before)}&after=${encodeURIComponent(after)}`);
  } catch (e) {
    showError(e.message);
    return;
  }
  if (m.warning) out.append(el("p", { class: "note" }, m.warning));
  const table = el("table", { class: "matrix" });
  table.append(el("thead", {}, el("tr", {}, el("th", {}, "Before ↓ / After →"),
    m.after_segments.map((s) => el("th", { class: "num" }, s)))));
  const body = el("tbody");
  m.before_segments.forEach((s, i) => {
    body.append(el("tr", {}, el("th", {}, s), m.matrix[i].map((n, j) =>
      el("td", { class: m.matched[i] === j ? "num same" : "num" }, number.format(n)))));
  });
  table.append(body);
  out.append(table, el("p", { class: "hint" },
    `${number.format(m.customers_in_both)} customers are in both runs; ` +
    `${number.format(m.only_before)} only before, ${number.format(m.only_after)} only after. ` +
    "Highlighted cells: customers who stayed in the matching segment."));
}

document.addEventListener("DOMContentLoaded", init);
