// The delivery log: every POST chathooks made or will make for the site, newest
// first, with each attempt's answer, so "did my CRM get that chat?" has an answer.

import { api, itemsOf, query, sitePath } from "./api.js";
import { byId, externalLink, fill, h, say } from "./dom.js";
import {
  endpointLabel,
  endpointName as nameOf,
  formatDuration,
  formatShortTime,
  formatTime,
  payloadName,
  prettyBody,
} from "./format.js";
import { guarded, startPage } from "./shell.js";

/** Rows per page; ?limit= in the address changes it (1-500, the API's range). */
const PAGE_SIZE = pageSize(new URLSearchParams(location.search).get("limit"));

function pageSize(text) {
  const wanted = Number.parseInt(text ?? "", 10);
  return Number.isInteger(wanted) ? Math.min(Math.max(wanted, 1), 500) : 50;
}

const state = {
  endpoints: new Map(),
  nextCursor: null,
  /** The delivery whose detail is open. */
  openId: null,
  /** Identifies the one loop following the open delivery (see watch()). */
  watcher: null,
};

function filters() {
  return {
    status: byId("filter-status").value,
    endpoint_id: byId("filter-endpoint").value,
  };
}

/** Keep the filters in the address so a filtered view can be bookmarked or shared. */
function rememberFilters() {
  const url = new URL(location.href);
  for (const [name, value] of Object.entries(filters())) {
    if (value) url.searchParams.set(name, value);
    else url.searchParams.delete(name);
  }
  history.replaceState(null, "", url);
}

function restoreFilters() {
  const params = new URLSearchParams(location.search);
  byId("filter-status").value = params.get("status") ?? "";
  const endpoint = params.get("endpoint_id") ?? "";
  if (endpoint && !state.endpoints.has(endpoint)) {
    byId("filter-endpoint").append(h("option", { value: endpoint }, endpoint));
  }
  byId("filter-endpoint").value = endpoint;
}

function statusPill(status) {
  return h("span", { class: `pill pill-${status}` }, status);
}

/** Short, for the table; the detail shows the URL too. */
function endpointName(id) {
  const endpoint = state.endpoints.get(id);
  return endpoint ? nameOf(endpoint) : id;
}

// -- the list ------------------------------------------------------------------------

function row(delivery) {
  const lastCode = delivery.last_status_code ? ` · HTTP ${delivery.last_status_code}` : "";
  return h("tr", { dataset: { deliveryId: delivery.id } },
    h("td", { class: "nowrap" },
      h("time", { datetime: delivery.created_at, title: formatTime(delivery.created_at) },
        formatShortTime(delivery.created_at))),
    h("td", {}, statusPill(delivery.status)),
    h("td", {}, payloadName(delivery.payload_kind),
      delivery.trigger ? h("span", { class: "muted small" }, ` · ${delivery.trigger}`) : null),
    h("td", { class: "truncate", title: endpointLabel(state.endpoints.get(delivery.endpoint_id)) },
      endpointName(delivery.endpoint_id)),
    h("td", { class: "truncate", title: delivery.conversation_id ?? "" },
      h("code", {}, delivery.conversation_id ?? "—")),
    h("td", { class: "nowrap" }, `${delivery.attempt_count ?? 0}${lastCode}`),
    h("td", {}, h("button", {
      type: "button",
      class: "link-button",
      "aria-label": `Details of delivery ${delivery.id}`,
      onclick: () => openDetail(delivery.id),
    }, "Details")));
}

async function loadPage({ reset }) {
  const rows = byId("delivery-rows");
  const params = { ...filters(), limit: PAGE_SIZE, cursor: reset ? null : state.nextCursor };
  const page = await api(sitePath("deliveries") + query(params));
  const items = itemsOf(page);
  if (reset) rows.replaceChildren();
  rows.append(...items.map(row));
  state.nextCursor = page && page.next_cursor ? page.next_cursor : null;
  byId("load-more").hidden = !state.nextCursor;
  byId("deliveries-empty").hidden = rows.children.length > 0;
}

function reload() {
  rememberFilters();
  return guarded(() => loadPage({ reset: true }));
}

// -- the detail ----------------------------------------------------------------------

function fact(name, value) {
  return [h("dt", {}, name), h("dd", {}, value)];
}

function attemptItem(attempt) {
  const ok = attempt.outcome === "succeeded";
  return h("li", { class: `attempt attempt-${attempt.outcome}` },
    h("div", { class: "attempt-head" },
      h("strong", {}, `Attempt ${attempt.number}`),
      statusPill(attempt.outcome),
      h("span", {}, attempt.status_code ? `HTTP ${attempt.status_code}` : "no response"),
      h("span", { class: "muted" }, formatTime(attempt.started_at)),
      h("span", { class: "muted" }, formatDuration(attempt.duration_ms))),
    // The error often just repeats the status code shown above.
    attempt.error && attempt.error !== `HTTP ${attempt.status_code}`
      ? h("p", { class: ok ? "" : "error-text" }, attempt.error) : null,
    attempt.integration_url
      ? h("p", {}, "integrationUrl: ", externalLink(attempt.integration_url))
      : null,
    attempt.response_body !== null && attempt.response_body !== undefined
      ? h("details", {}, h("summary", {}, "Response body"),
        h("pre", { class: "code", tabindex: "0" }, prettyBody(attempt.response_body)))
      : null);
}

function renderDetail(delivery) {
  byId("detail-heading").textContent = `Delivery ${delivery.id}`;
  fill(byId("detail-facts"),
    fact("Status", statusPill(delivery.status)),
    fact("Payload", `${payloadName(delivery.payload_kind)} (${delivery.trigger ?? "api"})`),
    fact("Endpoint", state.endpoints.has(delivery.endpoint_id)
      ? endpointLabel(state.endpoints.get(delivery.endpoint_id)) : delivery.endpoint_id),
    fact("Conversation", delivery.conversation_id ?? "—"),
    fact("Created", formatTime(delivery.created_at)),
    delivery.finished_at ? fact("Finished", formatTime(delivery.finished_at)) : [],
    ["pending", "retrying"].includes(delivery.status) && delivery.next_attempt_at
      ? fact("Next attempt", formatTime(delivery.next_attempt_at)) : [],
    delivery.last_error ? fact("Last error", delivery.last_error) : [],
    fact("integrationUrl", delivery.integration_url
      ? externalLink(delivery.integration_url) : h("span", { class: "muted" }, "none")));
  const attempts = Array.isArray(delivery.attempts) ? delivery.attempts : [];
  fill(byId("attempts"), attempts.map(attemptItem));
  byId("attempts-empty").hidden = attempts.length > 0;
  const payload = delivery.payload ?? null;
  byId("payload-box").hidden = payload === null;
  byId("payload").textContent = payload === null ? "" : prettyBody(payload);
}

async function openDetail(id) {
  await guarded(async () => {
    const delivery = await api(sitePath("deliveries", id));
    state.openId = id;
    say(byId("redeliver-status"), "");
    renderDetail(delivery);
    for (const tr of byId("delivery-rows").children) {
      tr.classList.toggle("selected", tr.dataset.deliveryId === id);
    }
    const detail = byId("detail");
    detail.hidden = false;
    byId("detail-heading").setAttribute("tabindex", "-1");
    byId("detail-heading").focus();
    if (!SETTLED.has(delivery.status) && delivery.status !== "retrying") watch(id);
  });
}

/** Statuses after which nothing more happens without someone asking. */
const SETTLED = new Set(["succeeded", "failed", "superseded"]);
const WATCH_INTERVAL_MS = 1000;
const WATCH_LIMIT_MS = 60_000;

/**
 * Follow the open delivery until it settles, so the new attempt shows up
 * without the user pressing Refresh. Retries scheduled minutes away are not
 * waited for: a "retrying" delivery counts as settled for watching.
 */
async function watch(id) {
  const token = {};
  state.watcher = token;
  const watching = () => state.openId === id && state.watcher === token;
  const until = Date.now() + WATCH_LIMIT_MS;
  while (watching() && Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, WATCH_INTERVAL_MS));
    if (!watching()) return;
    const delivery = await api(sitePath("deliveries", id)).catch(() => null);
    if (!delivery || !watching()) return;
    renderDetail(delivery);
    replaceRow(delivery);
    if (SETTLED.has(delivery.status) || delivery.status === "retrying") return;
  }
}

function replaceRow(delivery) {
  for (const tr of byId("delivery-rows").children) {
    if (tr.dataset.deliveryId === delivery.id) {
      const fresh = row(delivery);
      fresh.classList.toggle("selected", tr.classList.contains("selected"));
      tr.replaceWith(fresh);
      return;
    }
  }
}

async function redeliver() {
  const id = state.openId;
  if (!id) return;
  const button = byId("redeliver");
  button.disabled = true;
  try {
    const delivery = await api(sitePath("deliveries", id, "redeliver"), { method: "POST" });
    if (delivery && delivery.id === id) {
      renderDetail(delivery);
      replaceRow(delivery);
    }
    say(byId("redeliver-status"), "Queued to be sent again (same webhook-id, so receivers can dedupe).");
    await watch(id);
  } catch (error) {
    say(byId("redeliver-status"), error.message);
  } finally {
    button.disabled = false;
  }
}

// -- start ---------------------------------------------------------------------------

async function main() {
  await startPage();
  await guarded(async () => {
    const endpoints = itemsOf(await api(sitePath("endpoints") + query({ limit: 500 })));
    const select = byId("filter-endpoint");
    for (const endpoint of endpoints) {
      state.endpoints.set(endpoint.id, endpoint);
      select.append(h("option", { value: endpoint.id }, endpointLabel(endpoint)));
    }
  });
  restoreFilters();
  byId("filter-status").addEventListener("change", reload);
  byId("filter-endpoint").addEventListener("change", reload);
  byId("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    reload();
  });
  byId("refresh").addEventListener("click", reload);
  byId("load-more").addEventListener("click", () => guarded(() => loadPage({ reset: false })));
  byId("redeliver").addEventListener("click", redeliver);
  byId("close-detail").addEventListener("click", () => {
    byId("detail").hidden = true;
    state.openId = null;
  });
  await reload();
  const wanted = new URLSearchParams(location.search).get("delivery");
  if (wanted) await openDetail(wanted);
  document.body.dataset.ready = "true";
}

main();
