/* The dashboard's data access: everything the page knows about the server's endpoints and
 * document shapes is here (docs/metrics-api.md).
 *
 * MetricsSource delivers the /metrics/json document (restricted to FAMILIES), as it is at
 * each moment, to onDocument(doc, how):
 *   - live over the WebSocket /metrics/stream: a snapshot, then JSON Merge Patches (RFC 7386)
 *     applied here, one per interval;
 *   - while the socket is down, by polling GET /metrics/json every interval, and reconnecting
 *     the socket with a growing back-off (1 s doubling to 15 s); the first snapshot of a new
 *     socket stops the polling.
 * history() reads the server's recent history (GET /metrics/history) to fill the charts when
 * the page opens; readHistoryFile() parses an exported JSONL history for replay. Entries of
 * both have the document's shape.
 */
"use strict";

const FAMILIES = ["requests", "tokens", "recent", "errors", "streaming", "throughput",
                  "cluster", "gpus", "faults", "rate_limits"];
const INTERVAL_S = 1;
const BACKOFF_MAX_MS = 15000;

/** RFC 7386: apply a merge patch to target (objects merge, null removes, anything else replaces). */
function mergePatch(target, patch) {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out = target !== null && typeof target === "object" && !Array.isArray(target) ? target : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

class MetricsSource {
  constructor({ onDocument, onState, headers = () => ({}), key = () => "" }) {
    this.onDocument = onDocument;  // (doc, "live" | "polling")
    this.onState = onState;        // ("connecting" | "live" | "polling" | "down", detail)
    this.headers = headers;        // extra HTTP headers (the key, when auth is on)
    this.key = key;                // the key for the socket (?api_key=, browsers cannot set headers)
    this.socket = null;
    this.doc = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.backoff = 1000;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this._connect();
  }

  stop() {
    this.stopped = true;
    this._stopPolling();
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close();
    this.socket = null;
  }

  _url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const params = new URLSearchParams({ families: FAMILIES.join(","), interval: String(INTERVAL_S) });
    const key = this.key();
    if (key) params.set("api_key", key);
    return `${scheme}//${location.host}/metrics/stream?${params}`;
  }

  _connect() {
    if (this.stopped) return;
    this.onState(this.pollTimer ? "polling" : "connecting", "");
    let socket;
    try {
      socket = new WebSocket(this._url());
    } catch (e) {
      this._dropped(String(e));
      return;
    }
    this.socket = socket;
    socket.onmessage = (event) => {
      if (this.socket === socket) this._message(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket === socket) this._dropped(event.reason || `closed (${event.code})`);
    };
  }

  _message(text) {
    let msg;
    try { msg = JSON.parse(text); } catch (e) { return; }
    if (msg.type === "snapshot") {
      this.doc = msg.data;
      this.backoff = 1000;
      this._stopPolling();
      this.onState("live", "");
    } else if (msg.type === "delta" && this.doc) {
      this.doc = mergePatch(this.doc, msg.patch);
    } else {
      if (msg.type === "error") this.onState("live", msg.message || msg.code);
      return;
    }
    if (typeof msg.time === "number") this.doc.time = msg.time;
    this.onDocument(this.doc, "live");
  }

  _dropped(reason) {
    this.socket = null;
    this.doc = null;
    if (this.stopped) return;
    this._startPolling();
    this.retryTimer = setTimeout(() => this._connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, BACKOFF_MAX_MS);
    this.onState("polling", reason);
  }

  _startPolling() {
    if (this.pollTimer) return;
    const poll = async () => {
      try {
        const response = await fetch(`/metrics/json?families=${FAMILIES.join(",")}`, { headers: this.headers() });
        if (!response.ok) {
          const hint = response.status === 401 || response.status === 403 ? " (enter an API key above)" : "";
          throw new Error(`GET /metrics/json: ${response.status}${hint}`);
        }
        const doc = await response.json();
        if (this.pollTimer) {
          this.onDocument(doc, "polling");
          this.onState("polling", "");
        }
      } catch (e) {
        if (this.pollTimer) this.onState("down", e.message);
      }
    };
    this.pollTimer = setInterval(poll, INTERVAL_S * 1000);
    poll();
  }

  _stopPolling() {
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  /** The server's recent history entries (oldest first), or [] when it keeps none. */
  async history(limit) {
    try {
      const response = await fetch(`/metrics/history?limit=${limit}`, { headers: this.headers() });
      if (!response.ok) return [];
      return (await response.json()).data || [];
    } catch (e) {
      return [];
    }
  }
}

/** The entries of an exported history (JSONL text): one document per line, blank lines skipped. */
function readHistoryFile(text) {
  const entries = [];
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line);
    if (entry && typeof entry.time === "number") entries.push(entry);
  }
  return entries;
}

window.MetricsSource = MetricsSource;
window.mergePatch = mergePatch;
window.readHistoryFile = readHistoryFile;
