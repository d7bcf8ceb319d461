// The settings page's alerts: where the site's operational alerts go (its alert URL:
// set, change, clear) and the alerts recently sent there, with how each one went.
// Its own module: the endpoint editor (settings.js) knows nothing of it, and each
// asks before leaving about its own unsaved changes.

import { ApiError, api, query, sitePath } from "./api.js";
import { byId, fill, h, say } from "./dom.js";
import { formatFullTime, formatRelative } from "./format.js";
import { requireSession } from "./session.js";
import { clearFieldErrors, showFieldError } from "./shell.js";

const PAGE_SIZE = 10;
const LEAVE_QUESTION = "The alert URL has unsaved changes. Leave without saving them?";

const form = byId("alert-form");
const input = byId("alert-url");
const state = {
  /** The alert URL as stored ("" for none): unsaved is any difference from it. */
  saved: "",
  /** next_cursor of the last page shown, or null. */
  cursor: null,
};

// -- the alert URL ---------------------------------------------------------------------

function isDirty() {
  return input.value.trim() !== state.saved;
}

function updateDirty() {
  const dirty = isDirty();
  byId("alert-dirty-note").hidden = !dirty;
}

/** Set once the user agreed to leave, so the browser does not ask a second time. */
let leaving = false;

function mayLeave() {
  return !isDirty() || window.confirm(LEAVE_QUESTION);
}

async function save(event) {
  event.preventDefault();
  clearFieldErrors(form);
  const url = input.value.trim();
  const button = byId("save-alert-url");
  button.disabled = true;
  say(byId("alert-status"), "Saving…");
  try {
    const site = await api(sitePath(), { method: "PATCH", body: { alert_url: url || null } });
    state.saved = site.alert_url ?? "";
    input.value = state.saved;
    const secretBox = byId("alert-secret-box");
    secretBox.hidden = !site.alert_secret;
    byId("alert-secret-value").value = site.alert_secret ?? "";
    say(byId("alert-status"), state.saved ? "Saved: alerts go to this address." : "Saved: no alerts are sent.");
    await showAlerts();
  } catch (error) {
    say(byId("alert-status"), "");
    if (error instanceof ApiError) showFieldError(form, error);
    else throw error;
  } finally {
    button.disabled = false;
    updateDirty();
  }
}

// -- recent alerts ---------------------------------------------------------------------

/** What became of the alert: delivered, waiting for a retry, or given up on. */
function outcome(alert) {
  const code = alert.last_status_code ? `HTTP ${alert.last_status_code}` : null;
  if (alert.status === "succeeded") return `delivered${code ? ` (${code})` : ""}`;
  if (alert.status === "failed") return `not delivered: ${alert.last_error || code || "failed"}`;
  if (alert.status === "retrying") {
    const next = alert.next_attempt_at ? `, tried again ${formatRelative(alert.next_attempt_at)}` : "";
    return `failed (${alert.last_error || code || "no answer"})${next}`;
  }
  if (alert.status === "held") return "held: the alert URL is switched off";
  return alert.status === "delivering" ? "being sent" : "waiting to be sent";
}

function alertItem(alert) {
  const when = h("time", { datetime: alert.created_at, title: formatFullTime(alert.created_at) },
    formatRelative(alert.created_at));
  const pill = alert.status === "succeeded" ? "succeeded" : alert.status === "failed" ? "failed" : "retrying";
  return h("li", { dataset: { alertId: alert.id } },
    h("div", { class: "alert-line" },
      h("span", { class: "alert-type" }, alert.type || "alert"),
      h("span", { class: `pill pill-${pill}` }, outcome(alert)),
      when),
    alert.endpoint_url
      ? h("p", { class: "alert-meta" }, `About ${alert.endpoint_url}`,
        alert.reason ? `: ${alert.reason}` : "")
      : null,
    h("p", { class: "alert-meta" },
      `Sent to ${alert.url}`,
      alert.attempt_count > 1 ? `, ${alert.attempt_count} attempts` : ""));
}

/** The newest alerts (again), or with `older` the page after those shown. */
async function showAlerts({ older = false } = {}) {
  const list = byId("recent-alerts");
  const page = await api(sitePath("alerts") + query({
    limit: PAGE_SIZE,
    cursor: older ? state.cursor : null,
  }));
  const items = page.items.map(alertItem);
  if (older) list.append(...items);
  else fill(list, items);
  state.cursor = page.next_cursor;
  byId("older-alerts").hidden = !state.cursor;
  byId("recent-alerts-empty").hidden = list.children.length > 0;
}

async function shown(work) {
  try {
    await work();
  } catch (error) {
    say(byId("alert-status"), `Could not read the alerts: ${error.message || error}`);
  }
}

async function main() {
  await requireSession();
  form.addEventListener("submit", (event) => shown(() => save(event)));
  input.addEventListener("input", updateDirty);
  byId("refresh-alerts").addEventListener("click", () => shown(() => showAlerts()));
  byId("older-alerts").addEventListener("click", () => shown(() => showAlerts({ older: true })));
  window.addEventListener("beforeunload", (event) => {
    if (leaving || !isDirty()) return;
    event.preventDefault();
    event.returnValue = "";
  });
  // A link of the page (or Sign out) asks first; one another question already stopped is left be.
  document.addEventListener("click", (event) => {
    const link = event.target instanceof Element ? event.target.closest("a[href], #sign-out") : null;
    if (!link || link.target === "_blank" || event.defaultPrevented) return;
    if (!mayLeave()) {
      event.preventDefault();
      event.stopImmediatePropagation();
      return;
    }
    leaving = true;
  }, true);

  await shown(async () => {
    const site = await api(sitePath());
    state.saved = site.alert_url ?? "";
    input.value = state.saved;
    updateDirty();
    await showAlerts();
  });
  byId("alerts").dataset.ready = "true";
}

main();
