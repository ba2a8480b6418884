/* The control panel: each form PATCHes the admin API (its data-endpoint) with the options
 * named by its fields, and shows the server's answer: what changed, or the error's message.
 *
 * Fields take the options' own names (docs/configuration.md). An empty field of an option
 * that may be unset (ttft_ms, itl_ms, rate limits) sends null, which restores the default;
 * an empty field of any other option is left out.
 *
 * With authentication on, the page needs two keys, kept in sessionStorage (this tab only)
 * and sent as Bearer tokens: an API key to read the metrics, the admin key for the panel.
 */
"use strict";

const NULLABLE = new Set(["ttft_ms", "itl_ms", "jitter", "rate_limit_tier", "rate_limit_rpm", "rate_limit_tpm"]);

/** The key of a header field ("api-key" or "admin-key"), as stored for this tab. */
function storedKey(name) {
  return sessionStorage.getItem("fakeai." + name) || "";
}

function bearer(name) {
  const key = storedKey(name);
  return key ? { Authorization: "Bearer " + key } : {};
}

/** Keep a key field in sessionStorage; onChange() after each change. */
function bindKey(name, onChange) {
  const input = document.getElementById(name);
  input.value = storedKey(name);
  input.addEventListener("change", () => {
    if (input.value) sessionStorage.setItem("fakeai." + name, input.value);
    else sessionStorage.removeItem("fakeai." + name);
    onChange();
  });
}

/** fetch with the admin key; resolves to {ok, status, body} (body: parsed JSON or null). */
async function adminFetch(method, path, body) {
  const init = { method, headers: bearer("admin-key") };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    return { ok: false, status: 0, body: { error: { message: "server unreachable: " + e.message } } };
  }
  let parsed = null;
  try { parsed = await response.json(); } catch (e) { /* not JSON */ }
  return { ok: response.ok, status: response.status, body: parsed };
}

function errorText(result) {
  const message = result.body && result.body.error && result.body.error.message;
  return (result.status ? result.status + ": " : "") + (message || "request failed");
}

/** The option values of a form, typed for the API. */
function formValues(form) {
  const values = {};
  const types = new Map();
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") {
      if (!types.has(el.name)) { types.set(el.name, "list"); values[el.name] = []; }
      if (el.checked) values[el.name].push(el.value);
      continue;
    }
    const raw = el.value.trim();
    if (raw === "") {
      if (NULLABLE.has(el.name)) values[el.name] = null;
      continue;
    }
    if (el.type === "number") {
      const n = Number(raw);
      values[el.name] = el.step === "1" ? Math.trunc(n) : n;
    } else {
      values[el.name] = raw;
    }
  }
  return values;
}

/** Put the current settings into a form's fields. */
function fillForm(form, settings) {
  for (const el of form.elements) {
    if (!el.name || !(el.name in settings)) continue;
    const v = settings[el.name];
    if (el.type === "checkbox") el.checked = Array.isArray(v) && v.includes(el.value);
    else el.value = v === null || v === undefined ? "" : String(v);
  }
}

function feedback(form, state, text) {
  const out = form.querySelector(".feedback");
  out.dataset.state = state;
  out.textContent = text;
}

async function loadSettings(forms) {
  const result = await adminFetch("GET", "/admin/config");
  if (!result.ok) {
    const hint = result.status === 401 || result.status === 403 ? " (enter the admin key above)" : "";
    for (const form of forms) feedback(form, "error", "cannot read settings: " + errorText(result) + hint);
    return null;
  }
  for (const form of forms) fillForm(form, result.body.settings);
  return result.body.settings;
}

function bindControls() {
  const forms = [...document.querySelectorAll("#controls form")];
  bindKey("admin-key", () => {
    for (const form of forms) feedback(form, "", "");
    loadSettings(forms);
  });
  for (const form of forms) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const values = formValues(form);
      const button = form.querySelector("button");
      button.disabled = true;
      feedback(form, "busy", "applying…");
      const result = await adminFetch("PATCH", form.dataset.endpoint, values);
      button.disabled = false;
      if (!result.ok) {
        feedback(form, "error", errorText(result));
        return;
      }
      const shown = Object.entries(values).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ");
      feedback(form, "ok", `applied at ${new Date().toLocaleTimeString()}: ${shown}`);
      const settings = await adminFetch("GET", "/admin/config");
      if (settings.ok) fillForm(form, settings.body.settings);
    });
  }
  loadSettings(forms);
}

window.storedKey = storedKey;
window.bearer = bearer;
window.bindKey = bindKey;
window.bindControls = bindControls;
