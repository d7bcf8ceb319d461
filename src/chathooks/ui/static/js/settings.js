// Webhook settings: Olark's page (URL to post to, Save, Send test, the three
// switches) for each of the site's endpoints, plus what Olark never had: several
// endpoints, signing secrets, a JSON format and the sender's egress ranges.

import { api, itemsOf, sitePath } from "./api.js";
import { byId, externalLink, fill, h, say } from "./dom.js";
import { formatDuration, formatTime, prettyBody } from "./format.js";
import { clearFieldErrors, guarded, showFieldError, startPage } from "./shell.js";
import { copyInput, showSigning, startSigning } from "./signing.js";

const NEW = "new";
const DEFAULTS = {
  url: "",
  description: "",
  enabled: true,
  auto_send: true,
  send_offline: true,
  send_events: false,
  format: "form",
  signed: true,
  headers: {},
};

const form = byId("endpoint-form");
const inputs = {
  url: byId("endpoint-url"),
  description: byId("endpoint-description"),
  enabled: byId("endpoint-enabled"),
  auto_send: byId("endpoint-auto-send"),
  send_offline: byId("endpoint-send-offline"),
  send_events: byId("endpoint-send-events"),
  format: byId("endpoint-format"),
  signed: byId("endpoint-signed"),
};

const state = {
  endpoints: [],
  /** The id being edited, or NEW for an endpoint not saved yet. */
  selected: null,
  /** The values the form had when loaded or saved: "dirty" is any difference. */
  saved: null,
};

// -- the endpoint list ---------------------------------------------------------------

function renderList() {
  const list = byId("endpoint-list");
  fill(list, state.endpoints.map((endpoint) => {
    const current = endpoint.id === state.selected;
    const status = endpoint.disabled_reason ? "switched off" : endpoint.enabled ? "on" : "off";
    return h("li", {},
      h("button", {
        type: "button",
        class: "endpoint-item",
        "aria-current": current ? "true" : null,
        dataset: { endpointId: endpoint.id },
        onclick: () => select(endpoint.id),
      },
      h("span", { class: "endpoint-url" }, endpoint.url),
      endpoint.description ? h("span", { class: "muted small" }, endpoint.description) : null,
      h("span", { class: `pill pill-${status.replace(" ", "-")}` }, status),
      endpoint.health ? h("span", { class: "muted small endpoint-health" }, healthText(endpoint.health)) : null));
  }));
  byId("endpoint-list-empty").hidden = state.endpoints.length > 0;
}

/** One line of how the endpoint has been answering: its state, failures, 24 h success rate. */
function healthText(health) {
  const parts = [health.state];
  if (health.consecutive_failures > 0) {
    parts.push(`${health.consecutive_failures} failed in a row`);
    if (health.last_failure_reason) parts.push(health.last_failure_reason);
  }
  if (health.success_rate_24h !== null) {
    parts.push(`${Math.round(health.success_rate_24h * 100)}% ok in 24 h`);
  }
  return parts.join(" · ");
}

// -- the editor ----------------------------------------------------------------------

function valuesOf(endpoint) {
  if (!endpoint) return { ...DEFAULTS, headers: {} };
  const values = {};
  for (const name of Object.keys(DEFAULTS)) values[name] = endpoint[name] ?? DEFAULTS[name];
  values.headers = { ...(endpoint.headers ?? {}) };
  return values;
}

function readForm() {
  const values = {};
  for (const [name, input] of Object.entries(inputs)) {
    values[name] = input.type === "checkbox" ? input.checked : input.value;
  }
  values.url = values.url.trim();
  values.headers = readHeaders();
  return values;
}

function writeForm(values) {
  for (const [name, input] of Object.entries(inputs)) {
    if (input.type === "checkbox") input.checked = Boolean(values[name]);
    else input.value = values[name] ?? "";
  }
  writeHeaders(values.headers ?? {});
}

// -- custom request headers ------------------------------------------------------------

let headerRowCount = 0;

function headerRow(name = "", value = "") {
  headerRowCount += 1;
  const n = headerRowCount;
  const nameInput = h("input", {
    id: `header-name-${n}`, class: "header-name", value: name, spellcheck: "false",
    autocomplete: "off", placeholder: "X-Token",
  });
  const valueInput = h("input", {
    id: `header-value-${n}`, class: "header-value", value, spellcheck: "false",
    autocomplete: "off",
  });
  const item = h("li", { class: "header-row" },
    h("div", { class: "field" }, h("label", { for: nameInput.id }, "Header name"), nameInput),
    h("div", { class: "field" }, h("label", { for: valueInput.id }, "Header value"), valueInput));
  const remove = h("button", {
    type: "button",
    class: "link-button",
    onclick: () => {
      item.remove();
      updateDirty();
      byId("add-header").focus();
    },
  }, "Remove");
  const label = () => remove.setAttribute("aria-label",
    `Remove header ${nameInput.value.trim() || n}`);
  nameInput.addEventListener("input", label);
  label();
  item.append(remove);
  return item;
}

/** The header rows as the API's ``headers`` object; rows without a name are left out. */
function readHeaders() {
  const headers = {};
  for (const item of byId("header-rows").children) {
    const name = item.querySelector(".header-name").value.trim();
    if (name) headers[name] = item.querySelector(".header-value").value;
  }
  return headers;
}

function writeHeaders(headers) {
  fill(byId("header-rows"), Object.entries(headers).map(([name, value]) => headerRow(name, value)));
}

function addHeader() {
  const item = headerRow();
  byId("header-rows").append(item);
  item.querySelector(".header-name").focus();
}

// -- unsaved changes -------------------------------------------------------------------

function isDirty() {
  if (state.selected === null || byId("editor").hidden) return false;
  return JSON.stringify(readForm()) !== JSON.stringify(state.saved);
}

/** Mark the editor while what is on screen differs from what is stored. */
function updateDirty() {
  const dirty = isDirty();
  byId("dirty-note").hidden = !dirty;
  byId("save-endpoint").textContent = dirty ? "Save changes" : "Save";
}

/** Set once the user agreed to leave, so the browser does not ask a second time. */
let leaving = false;

const LEAVE_QUESTION = "This endpoint has unsaved changes. Leave without saving them?";

/** True when nothing would be lost, or the user agreed to lose it. */
function mayLeave() {
  return !isDirty() || window.confirm(LEAVE_QUESTION);
}

function selectedEndpoint() {
  return state.endpoints.find((endpoint) => endpoint.id === state.selected) ?? null;
}

function select(id) {
  if (id !== state.selected && !mayLeave()) return;
  state.selected = id;
  const endpoint = selectedEndpoint();
  state.saved = valuesOf(endpoint);
  writeForm(state.saved);
  clearFieldErrors(form);
  say(byId("save-status"), "");
  byId("test-result").hidden = true;
  byId("secret-box").hidden = true;
  resetDelete();

  byId("editor").hidden = false;
  byId("editor-heading").textContent = id === NEW ? "New endpoint" : "Endpoint";
  byId("editor-id").textContent = endpoint
    ? `${endpoint.id} · created ${formatTime(endpoint.created_at)} · updated ${formatTime(endpoint.updated_at)}`
    : "Not saved yet.";
  byId("delete-endpoint").hidden = id === NEW;
  renderHealth(endpoint);
  showSigning(endpoint);
  say(byId("disabled-reason"), endpoint && endpoint.disabled_reason
    ? `chathooks switched this endpoint off: ${endpoint.disabled_reason}. Fix the receiver, then tick Enabled and Save.`
    : "");
  say(byId("signed-note"), endpoint && !endpoint.signed
    ? "Ticking this makes a new secret, shown after Save."
    : endpoint ? "Unticking this removes the secret; a new one is made if you sign again." : "");
  if (id === NEW) byId("advanced").open = true;
  renderList();
  const url = new URL(location.href);
  if (endpoint) url.searchParams.set("endpoint", endpoint.id);
  else url.searchParams.delete("endpoint");
  history.replaceState(null, "", url);
  updateDirty();
  inputs.url.focus();
}

// -- health --------------------------------------------------------------------------

const HEALTH_NAMES = { healthy: "Healthy", failing: "Failing", disabled: "Disabled" };

/** How the endpoint has been answering, from the workers' own bookkeeping. */
function renderHealth(endpoint) {
  const box = byId("health-box");
  const health = endpoint ? endpoint.health : null;
  box.hidden = !health;
  say(byId("reenable-status"), "");
  if (!health) return;
  const pill = { healthy: "pill-on", failing: "pill-retrying", disabled: "pill-failed" };
  const rate = health.success_rate_24h === null || health.success_rate_24h === undefined
    ? "no attempts"
    : `${Math.round(health.success_rate_24h * 1000) / 10}% of ${health.attempts_24h} attempts`;
  const facts = [
    ["State", h("span", { class: `pill ${pill[health.state] ?? ""}` },
      HEALTH_NAMES[health.state] ?? health.state)],
    ["Consecutive failures", String(health.consecutive_failures)],
    ["Last success", health.last_success_at ? formatTime(health.last_success_at) : "never"],
    ["Success in 24 h", rate],
  ];
  if (health.last_failure_reason) {
    facts.push(["Last failure", `${formatTime(health.last_failure_at)}: ${health.last_failure_reason}`]);
  }
  if (health.state === "failing" && health.next_probe_at) {
    facts.push(["Next probe", formatTime(health.next_probe_at)]);
  }
  fill(byId("health-facts"), facts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]).flat());
  byId("reenable").hidden = health.state !== "disabled" && endpoint.enabled;
}

async function reenable() {
  const endpoint = selectedEndpoint();
  if (!endpoint) return;
  const button = byId("reenable");
  button.disabled = true;
  try {
    const stored = await api(sitePath("endpoints", endpoint.id),
      { method: "PATCH", body: { enabled: true } });
    const index = state.endpoints.findIndex((e) => e.id === stored.id);
    if (index >= 0) state.endpoints[index] = stored;
    const edits = isDirty() ? readForm() : null;
    state.selected = null; // the stored endpoint changed under the form: reload it
    select(stored.id);
    if (edits) {
      writeForm({ ...edits, enabled: true });
      updateDirty();
    }
    say(byId("reenable-status"), "Enabled: held deliveries are being sent, in order.");
  } catch (error) {
    say(byId("reenable-status"), error.message);
  } finally {
    button.disabled = false;
  }
}

// -- saving --------------------------------------------------------------------------

/** A Standard Webhooks secret made in the browser (for signing an unsigned endpoint). */
function newSecret() {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

function requestBody(values, endpoint) {
  const body = {
    url: values.url,
    description: values.description,
    enabled: values.enabled,
    auto_send: values.auto_send,
    send_offline: values.send_offline,
    send_events: values.send_events,
    format: values.format,
    headers: values.headers,
  };
  if (!endpoint) {
    // Omitted: the server makes a secret. null: an unsigned endpoint.
    if (!values.signed) body.secret = null;
  } else if (values.signed !== endpoint.signed) {
    body.secret = values.signed ? newSecret() : null;
  }
  return body;
}

/** Save the form; resolves to the saved endpoint, or null when the API refused it. */
async function save() {
  clearFieldErrors(form);
  const values = readForm();
  const endpoint = selectedEndpoint();
  const body = requestBody(values, endpoint);
  const button = byId("save-endpoint");
  button.disabled = true;
  try {
    const saved = endpoint
      ? await api(sitePath("endpoints", endpoint.id), { method: "PATCH", body })
      : await api(sitePath("endpoints"), { method: "POST", body });
    // A new endpoint's answer holds its secret; a secret made here for an existing one is ours.
    const { secret: answered, ...stored } = saved;
    const secret = answered ?? body.secret ?? null;
    const index = state.endpoints.findIndex((e) => e.id === stored.id);
    if (index >= 0) state.endpoints[index] = stored;
    else state.endpoints.push(stored);
    const showSecret = Boolean(secret) && (!endpoint || "secret" in body);
    state.saved = readForm(); // saved: switching to it must not ask about losing changes
    select(stored.id);
    if (showSecret) revealSecret(secret);
    say(byId("save-status"), `Saved at ${formatTime(new Date().toISOString())}.`);
    return stored;
  } catch (error) {
    showFieldError(form, error);
    return null;
  } finally {
    button.disabled = false;
  }
}

function revealSecret(secret) {
  byId("secret-value").value = secret;
  say(byId("copy-status"), "");
  byId("secret-box").hidden = false;
}

function copySecret() {
  return copyInput(byId("secret-value"), byId("copy-status"));
}

// -- Send test -----------------------------------------------------------------------

/**
 * Test what is on the screen, saved or not: edits go with the request for this test
 * only, and the result says which settings were tried. Nothing is saved.
 */
async function sendTest() {
  clearFieldErrors(form);
  const values = readForm();
  const endpoint = selectedEndpoint();
  const kind = byId("test-kind").value;
  const body = { kind, url: values.url, format: values.format, headers: values.headers };
  const button = byId("send-test");
  button.disabled = true;
  say(byId("save-status"), `Sending the test ${KIND_NAMES[kind] ?? kind}…`);
  try {
    const result = endpoint
      ? await api(sitePath("endpoints", endpoint.id, "test"), { method: "POST", body })
      : await api(sitePath("endpoints", "test"), { method: "POST", body });
    showTestResult(result);
    say(byId("save-status"), "");
  } catch (error) {
    say(byId("save-status"), "");
    showFieldError(form, error);
  } finally {
    button.disabled = false;
  }
}

const KIND_NAMES = {
  transcript: "transcript",
  offline_message: "offline message",
  start_event: "start event",
};

function showTestResult(result) {
  const ok = Boolean(result.ok);
  const status = result.status_code === null || result.status_code === undefined
    ? "no response"
    : `HTTP ${result.status_code}`;
  fill(byId("test-status"),
    h("span", { class: `pill ${ok ? "pill-succeeded" : "pill-failed"}` }, ok ? "Succeeded" : "Failed"),
    " ", status);
  fill(byId("test-time"), `${formatDuration(result.duration_ms)} (sent ${formatTime(new Date().toISOString())})`);
  fill(byId("test-integration-url"),
    result.integration_url ? externalLink(result.integration_url) : h("span", { class: "muted" }, "none in the response"));
  fill(byId("test-error"), result.error ? result.error : h("span", { class: "muted" }, "none"));
  byId("test-body").textContent = prettyBody(result.response_body);
  const what = `Test ${KIND_NAMES[result.kind] ?? "transcript"} posted to ${result.url ?? "the endpoint"}`;
  byId("test-what").textContent = result.saved_settings === false
    ? `${what} with the settings on screen, which are not saved: Save to keep them.`
    : `${what} with the saved settings.`;
  byId("test-result").hidden = false;
}

// -- delete --------------------------------------------------------------------------

function resetDelete() {
  const button = byId("delete-endpoint");
  button.textContent = "Delete endpoint";
  delete button.dataset.confirming;
}

async function deleteEndpoint() {
  const button = byId("delete-endpoint");
  const endpoint = selectedEndpoint();
  if (!endpoint) return;
  // Two clicks instead of confirm(): no modal, and the second click is deliberate.
  if (!button.dataset.confirming) {
    button.dataset.confirming = "1";
    button.textContent = "Confirm delete";
    say(byId("save-status"), "Deleting also removes this endpoint's delivery log. Click again to confirm.");
    return;
  }
  await guarded(async () => {
    await api(sitePath("endpoints", endpoint.id), { method: "DELETE" });
    state.endpoints = state.endpoints.filter((e) => e.id !== endpoint.id);
    state.selected = null; // deleted: nothing of it is left to lose
    select(state.endpoints.length ? state.endpoints[0].id : NEW);
    say(byId("save-status"), "");
  });
}

// -- egress ranges -------------------------------------------------------------------

function renderEgress(meta) {
  const cidrs = meta && Array.isArray(meta.egress_cidrs) ? meta.egress_cidrs : [];
  fill(byId("egress-cidrs"), cidrs.map((cidr) => h("li", {}, h("code", {}, cidr))));
  byId("egress-none").hidden = cidrs.length > 0;
}

// -- start ---------------------------------------------------------------------------

async function main() {
  await startPage();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  byId("send-test").addEventListener("click", sendTest);
  byId("delete-endpoint").addEventListener("click", deleteEndpoint);
  byId("add-endpoint").addEventListener("click", () => select(NEW));
  byId("copy-secret").addEventListener("click", copySecret);
  byId("reenable").addEventListener("click", reenable);
  startSigning();
  byId("add-header").addEventListener("click", () => {
    addHeader();
    updateDirty();
  });
  form.addEventListener("input", updateDirty);
  form.addEventListener("change", updateDirty);
  // Leaving the page (closing the tab, reloading, typing an address) asks the browser's question.
  window.addEventListener("beforeunload", (event) => {
    if (leaving || !isDirty()) return;
    event.preventDefault();
    event.returnValue = "";
  });
  // Leaving by a link of the page asks first too.
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[href]") : null;
    if (!link || link.target === "_blank" || event.defaultPrevented) return;
    if (!mayLeave()) {
      event.preventDefault();
      return;
    }
    leaving = true;
  }, true);
  byId("sign-out").addEventListener("click", (event) => {
    if (!mayLeave()) event.stopImmediatePropagation();
    else leaving = true;
  }, true);

  await guarded(async () => {
    const [endpoints, meta] = await Promise.all([
      api(sitePath("endpoints")),
      api("/api/v1/meta").catch(() => null),
    ]);
    state.endpoints = itemsOf(endpoints);
    renderEgress(meta);
    const wanted = new URLSearchParams(location.search).get("endpoint");
    const first = state.endpoints.find((e) => e.id === wanted) ?? state.endpoints[0];
    // A new site starts with an empty "URL to post to", as Olark's page does.
    select(first ? first.id : NEW);
    inputs.url.blur();
  });
  document.body.dataset.ready = "true";
}

main();
