/* The dashboard: turns each metrics document (data.js) into chart points, tiles and tables.
 *
 * Rates the document does not give (router decisions, faults and rate-limit rejections per
 * second) are the difference of its counters between two documents over their time apart.
 * window.dashboard exposes the charts and counters (the browser test reads them).
 */
"use strict";

const HISTORY_POINTS = 300;  // 5 minutes at one document a second
const $ = (id) => document.getElementById(id);

const charts = {};
const dashboard = { charts, documents: 0, mode: "connecting", last: null };
window.dashboard = dashboard;

function makeCharts() {
  const chart = (id, options) => (charts[id] = new LiveChart($("chart-" + id), { window: HISTORY_POINTS, ...options }));
  chart("throughput", { unit: "/s" });
  chart("requests", { unit: "/s" });
  chart("ttft", { unit: " ms" });
  chart("itl", { unit: " ms" });
  chart("queue", {});
  chart("batch", {});
  chart("kv", { unit: " %" });
  chart("hit", { unit: " %", max: 100 });
  chart("router", { unit: "/s" });
  chart("gpu-util", { unit: " %", max: 100 });
  chart("gpu-power", { unit: " W" });
  chart("gpu-temp", { unit: " °C", min: 20 });
  chart("gpu-mem", { unit: " GiB" });
  chart("errors", { unit: "/s" });
  chart("ratelimit", { unit: "/s" });
}

// -- numbers ---------------------------------------------------------------------------------

const ms = (s) => (s === null || s === undefined ? null : s * 1000);
const pct = (x) => (x === null || x === undefined ? null : x * 100);
const get = (obj, ...path) => path.reduce((o, k) => (o === null || o === undefined ? undefined : o[k]), obj);

function fmt(v, unit = "") {
  return v === null || v === undefined ? "–" : formatNumber(v) + unit;
}

/** Per-second rates of the counters in `now` against `before` (objects of name -> count). */
function rates(now, before, dt, prefix = "") {
  const out = {};
  if (!now || !before || !(dt > 0)) return out;
  for (const [name, value] of Object.entries(now)) {
    out[prefix + name] = Math.max(0, (value - (before[name] || 0)) / dt);
  }
  return out;
}

function quantiles(q) {
  return { p50: ms(get(q, "p50")), p90: ms(get(q, "p90")), p99: ms(get(q, "p99")) };
}

// -- one document ------------------------------------------------------------------------------

function render(doc, previous) {
  const t = doc.time;
  const dt = previous ? t - previous.time : 0;
  const workers = get(doc, "cluster", "workers") || {};
  const gpus = doc.gpus || {};
  const tp = doc.throughput || {};

  charts.throughput.push(t, { "output tokens": tp.completion_tokens_per_s, "prompt tokens": tp.prompt_tokens_per_s });
  charts.requests.push(t, { "requests": tp.requests_per_s, "completed": tp.completed_per_s });
  charts.ttft.push(t, quantiles(get(doc, "recent", "ttft")));
  charts.itl.push(t, quantiles(get(doc, "recent", "itl")));

  const by = (fn) => Object.fromEntries(Object.entries(workers).map(([id, w]) => ["w" + id, fn(w)]));
  charts.queue.push(t, by((w) => w.waiting));
  charts.batch.push(t, by((w) => w.running));
  charts.kv.push(t, by((w) => pct(get(w, "kv", "usage"))));
  charts.hit.push(t, { all: pct(get(doc, "cluster", "kv", "hit_rate")), ...by((w) => pct(get(w, "kv", "hit_rate"))) });
  const decisions = get(doc, "cluster", "router", "decisions");
  charts.router.push(t, rates(decisions, get(previous, "cluster", "router", "decisions"), dt, "w"));

  const perGpu = (fn) => Object.fromEntries(Object.entries(gpus).map(([id, g]) => ["gpu" + id, fn(g)]));
  charts["gpu-util"].push(t, perGpu((g) => pct(g.util)));
  charts["gpu-power"].push(t, perGpu((g) => g.power_w));
  charts["gpu-temp"].push(t, perGpu((g) => g.temp_c));
  charts["gpu-mem"].push(t, perGpu((g) => (g.memory_used_mib === undefined ? null : g.memory_used_mib / 1024)));

  const faults = rates(get(doc, "faults", "by_type"), get(previous, "faults", "by_type"), dt, "fault ");
  charts.errors.push(t, { errors: tp.errors_per_s, ...faults });
  const rejected = rates({ rejected: get(doc, "rate_limits", "rejected") },
                         { rejected: get(previous, "rate_limits", "rejected") }, dt);
  charts.ratelimit.push(t, { "429 rate_limit_exceeded": rejected.rejected });

  renderTiles(doc);
  renderWorkers(workers);
  renderGpus(gpus);
  renderFaults(doc.faults, doc.rate_limits);
}

function renderTiles(doc) {
  const tp = doc.throughput || {};
  $("tile-rps").textContent = fmt(tp.requests_per_s);
  $("tile-tps").textContent = fmt(tp.completion_tokens_per_s);
  $("tile-active").textContent = fmt(get(doc, "streaming", "active"));
  $("tile-queue").textContent = `${fmt(get(doc, "cluster", "running"))} / ${fmt(get(doc, "cluster", "waiting"))}`;
  const pair = (q) => `${fmt(ms(get(q, "p50")))} / ${fmt(ms(get(q, "p99")), " ms")}`;
  $("tile-ttft").textContent = pair(get(doc, "recent", "ttft"));
  $("tile-itl").textContent = pair(get(doc, "recent", "itl"));
  $("tile-errors").textContent = fmt(tp.errors_per_s);
  $("tile-hit").textContent = fmt(pct(get(doc, "cluster", "kv", "hit_rate")), " %");
}

function fillRows(tbody, rows) {
  tbody.replaceChildren(...rows.map(({ key, cells }) => {
    const tr = document.createElement("tr");
    tr.dataset.key = key;
    for (const { field, text, busy } of cells) {
      const td = document.createElement("td");
      if (field) td.dataset.field = field;
      if (busy) td.className = "busy";
      td.textContent = text;
      tr.appendChild(td);
    }
    return tr;
  }));
}

function renderWorkers(workers) {
  fillRows($("workers").tBodies[0], Object.entries(workers).map(([id, w]) => ({
    key: id,
    cells: [
      { text: id }, { text: w.model + (w.status === "draining" ? " (draining)" : "") }, { text: w.role },
      { field: "running", text: String(w.running), busy: w.running >= w.max_num_seqs },
      { field: "waiting", text: String(w.waiting), busy: w.waiting > 0 },
      { field: "kv", text: fmt(pct(get(w, "kv", "usage")), " %") },
      { field: "hit", text: fmt(pct(get(w, "kv", "hit_rate")), " %") },
    ],
  })));
}

function renderGpus(gpus) {
  fillRows($("gpus").tBodies[0], Object.entries(gpus).map(([id, g]) => ({
    key: id,
    cells: [
      { text: id }, { text: `w${g.worker}` },
      { field: "util", text: fmt(pct(g.util), " %") }, { field: "power", text: fmt(g.power_w, " W") },
      { field: "temp", text: fmt(g.temp_c, " °C") },
      { field: "memory", text: `${fmt(g.memory_used_mib / 1024)} / ${fmt(g.memory_total_mib / 1024, " GiB")}` },
    ],
  })));
}

function renderFaults(faults, limits) {
  const rows = Object.entries(get(faults, "by_type") || {}).map(([kind, n]) => ({
    key: kind, cells: [{ text: kind }, { field: "count", text: String(n) }],
  }));
  rows.unshift({ key: "total", cells: [{ text: get(faults, "active") ? "total (injecting)" : "total" },
                                       { field: "count", text: fmt(get(faults, "total")) }] });
  fillRows($("faults").tBodies[0], rows);
  const state = $("ratelimit-state");
  if (!limits || !limits.enabled) {
    state.textContent = "rate limits: off";
    return;
  }
  const p = limits.policy || {};
  const policy = ["tier", "rpm", "tpm", "rpd", "tpd"].filter((k) => p[k] !== null && p[k] !== undefined)
    .map((k) => `${k} ${p[k]}`).join(", ");
  const seen = [];
  for (const [key, models] of Object.entries(limits.keys || {})) {
    for (const [model, s] of Object.entries(models)) {
      seen.push(`${key} · ${model}: ${s.requests_remaining}/${s.requests_limit} req, ` +
                `${s.tokens_remaining}/${s.tokens_limit} tok left`);
    }
  }
  state.textContent = `rate limits: ${policy || "on"}; ${limits.rejected} rejected` +
                      (seen.length ? "\n" + seen.slice(0, 6).join("\n") : "");
}

// -- live and replay ---------------------------------------------------------------------------

function setStatus(state, detail) {
  const el = $("status");
  dashboard.mode = state;
  el.dataset.state = state;
  const text = { connecting: "connecting…", live: "live (WebSocket)", polling: "polling /metrics/json",
                 down: "no data", replay: "replay" }[state] || state;
  el.textContent = detail ? `${text}: ${detail}` : text;
}

function consume(doc) {
  if (typeof doc.time !== "number") return;
  if (dashboard.last && doc.time <= dashboard.last.time) return;  // a repeat (history, then live)
  render(doc, dashboard.last);
  // keep the counters only: the next document's rates need nothing else
  dashboard.last = { time: doc.time, cluster: { router: { decisions: { ...get(doc, "cluster", "router", "decisions") } } },
                     faults: { by_type: { ...get(doc, "faults", "by_type") } },
                     rate_limits: { rejected: get(doc, "rate_limits", "rejected") } };
  dashboard.documents += 1;
}

function resetCharts() {
  for (const c of Object.values(charts)) c.clear();
  dashboard.last = null;
}

async function startLive(source) {
  resetCharts();
  for (const entry of await source.history(HISTORY_POINTS)) consume(entry);
  source.start();
}

function replay(source, entries, speed) {
  source.stop();
  resetCharts();
  const run = (dashboard.replays = (dashboard.replays || 0) + 1);
  let i = 0;
  const step = () => {
    if (dashboard.mode !== "replay" || dashboard.replays !== run) return;  // back to live, or another file
    consume(entries[i]);
    setStatus("replay", `${i + 1}/${entries.length} at ×${speed}`);
    i += 1;
    if (i < entries.length) setTimeout(step, Math.max(0, (entries[i].time - entries[i - 1].time) * 1000 / speed));
  };
  dashboard.mode = "replay";
  if (entries.length) step();
}

function bindReplay(source) {
  const input = $("replay-file");
  input.addEventListener("change", async () => {
    const file = input.files[0];
    if (!file) return;
    let entries;
    try {
      entries = readHistoryFile(await file.text());
    } catch (e) {
      setStatus(dashboard.mode, `cannot read ${file.name}: ${e.message}`);
      return;
    }
    $("live").hidden = false;
    replay(source, entries, Number($("replay-speed").value));
  });
  $("live").addEventListener("click", () => {
    $("live").hidden = true;
    input.value = "";
    dashboard.mode = "connecting";
    startLive(source);
  });
}

function main() {
  makeCharts();
  const source = new MetricsSource({
    onDocument: (doc) => consume(doc),
    onState: setStatus,
    headers: () => bearer("api-key"),
    key: () => storedKey("api-key"),
  });
  dashboard.source = source;
  bindKey("api-key", () => {
    if (dashboard.mode === "replay") return;  // used when going back to live
    source.stop();
    startLive(source);
  });
  bindControls();
  bindReplay(source);
  startLive(source);
}

main();
