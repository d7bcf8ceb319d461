// The delivery log: every POST chathooks made or will make for the site, newest
// first, with each attempt's answer, so "did my CRM get that chat?" has an answer.

import { api, itemsOf, query, sitePath } from "./api.js";
import { byId, externalLink, fill, h, say } from "./dom.js";
import {
  endpointLabel,
  endpointName as nameOf,
  formatDuration,
  formatFullTime,
  formatRelative,
  isoToLocalInput,
  localInputToIso,
  payloadName,
  prettyBody,
} from "./format.js";
import { guarded, showFieldError, startPage } from "./shell.js";

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
  /** The delivery whose redelivery's outcome the status line is waiting to tell. */
  redelivering: null,
  /** Pages of rows shown (1 until Load more). */
  pages: 0,
  counts: null,
  countedOnce: false,
};

/** The filters as the API's query parameters (and the page's address) spell them. */
function filters() {
  const conversation = byId("filter-conversation").value.trim();
  const prefix = byId("filter-prefix").checked;
  return {
    status: byId("filter-status").value,
    endpoint_id: byId("filter-endpoint").value,
    conversation_id: prefix ? "" : conversation,
    conversation_prefix: prefix ? conversation : "",
    created_from: localInputToIso(byId("filter-from").value),
    created_to: localInputToIso(byId("filter-to").value),
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
  const prefix = params.get("conversation_prefix") ?? "";
  byId("filter-prefix").checked = Boolean(prefix);
  byId("filter-conversation").value = prefix || (params.get("conversation_id") ?? "");
  byId("filter-from").value = isoToLocalInput(params.get("created_from"));
  byId("filter-to").value = isoToLocalInput(params.get("created_to"));
}

function clearFilters() {
  for (const id of ["filter-status", "filter-endpoint", "filter-conversation", "filter-from",
    "filter-to"]) byId(id).value = "";
  byId("filter-prefix").checked = false;
  return reload();
}

function statusPill(status) {
  return h("span", { class: `pill pill-${status}` }, status);
}

/** Its name, and under it the whole URL (endpoints often differ only in their path). */
function endpointCell(id) {
  const endpoint = state.endpoints.get(id);
  if (!endpoint) return h("code", {}, id);
  return [
    endpoint.description ? h("span", {}, nameOf(endpoint)) : null,
    h("span", { class: "endpoint-url" }, endpoint.url),
  ];
}

/** "5 minutes ago", with the full local date and time on hover and for screen readers. */
function timeCell(value) {
  return h("time", { datetime: value, title: formatFullTime(value), class: "relative-time" },
    formatRelative(value));
}

/** The relative times move on while the page is open. */
function refreshRelativeTimes() {
  for (const node of document.querySelectorAll("time.relative-time")) {
    node.textContent = formatRelative(node.getAttribute("datetime"));
  }
}

// -- the list ------------------------------------------------------------------------

function row(delivery) {
  const lastCode = delivery.last_status_code ? ` · HTTP ${delivery.last_status_code}` : "";
  return h("tr", { dataset: { deliveryId: delivery.id } },
    h("td", { class: "nowrap" }, timeCell(delivery.created_at)),
    h("td", {}, statusPill(delivery.status)),
    h("td", {}, payloadName(delivery.payload_kind),
      delivery.trigger ? h("span", { class: "muted small" }, ` · ${delivery.trigger}`) : null),
    h("td", { class: "endpoint-cell" }, endpointCell(delivery.endpoint_id)),
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
  if (reset) {
    rows.replaceChildren();
    state.pages = 0;
  }
  state.pages += 1;
  rows.append(...items.map((delivery) => {
    const tr = row(delivery);
    tr.classList.toggle("selected", delivery.id === state.openId);
    return tr;
  }));
  state.nextCursor = page && page.next_cursor ? page.next_cursor : null;
  byId("load-more").hidden = !state.nextCursor;
  byId("deliveries-empty").hidden = rows.children.length > 0;
}

async function reload() {
  const form = byId("filters");
  try {
    await loadPage({ reset: true });
    rememberFilters();
    showFieldError(form, null);
  } catch (error) {
    // A bad bound (the API names it) is the user's to fix, next to the filters.
    showFieldError(form, error);
  }
  await refreshCounters();
}

// -- the counters ----------------------------------------------------------------------

const COUNTER_POLL_MS = 3000;

/** Pending, retrying, held (where the service has that status) and failed, live. */
async function refreshCounters() {
  const endpoint = byId("filter-endpoint").value;
  let answer;
  try {
    answer = await api(sitePath("delivery-counts") + query({ endpoint_id: endpoint }));
  } catch {
    byId("counters-updated").textContent = "Could not count; trying again.";
    return;
  }
  const counts = answer && answer.counts ? answer.counts : {};
  const changed = JSON.stringify(counts) !== JSON.stringify(state.counts);
  state.counts = counts;
  for (const status of ["pending", "retrying", "held", "failed"]) {
    const link = byId(`counter-${status}`);
    const known = Object.hasOwn(counts, status);
    link.parentElement.hidden = !known;
    const filter = byId("filter-status");
    if (known && ![...filter.options].some((option) => option.value === status)) {
      // A status this page does not list yet (held, where the service has it) becomes filterable.
      filter.append(h("option", { value: status }, status[0].toUpperCase() + status.slice(1)));
    }
    link.querySelector("strong").textContent = known ? String(counts[status]) : "–";
    const url = new URL(location.href);
    url.searchParams.set("status", status);
    url.searchParams.delete("delivery");
    link.setAttribute("href", url.pathname + url.search);
  }
  byId("counters-updated").textContent = `${endpoint ? "For this endpoint" : "For every endpoint"}`
    + `, updated ${new Date().toLocaleTimeString()}.`;
  refreshRelativeTimes();
  // Only the first page follows by itself: rows a user paged to stay where they are.
  if (changed && state.countedOnce && state.pages <= 1) {
    await loadPage({ reset: true }).catch(() => {});
  }
  state.countedOnce = true;
}

async function pollCounters() {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, COUNTER_POLL_MS));
    if (!document.hidden) await refreshCounters();
  }
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
      h("span", { class: "muted" }, formatFullTime(attempt.started_at)),
      h("span", { class: "muted" }, formatDuration(attempt.duration_ms))),
    // The error often just repeats the status code shown above.
    attempt.error && attempt.error !== `HTTP ${attempt.status_code}`
      ? h("p", { class: ok ? "" : "error-text" }, attempt.error) : null,
    attempt.integration_url
      ? h("p", {}, "integrationUrl: ", externalLink(attempt.integration_url))
      : null,
    attempt.request_headers
      ? h("details", { class: "exchange" }, h("summary", {}, "Request sent"),
        headerList(attempt.request_headers, "Request headers"),
        attempt.request_body !== null && attempt.request_body !== undefined
          ? [h("h4", {}, "Body, exactly as sent"),
            h("pre", { class: "code", tabindex: "0" }, attempt.request_body)]
          : null,
        h("p", { class: "muted small" },
          "The signature and the endpoint's own headers are masked."))
      : null,
    attempt.response_headers
      ? h("details", { class: "exchange" }, h("summary", {}, "Response headers"),
        headerList(attempt.response_headers, "Response headers"))
      : null,
    attempt.response_body !== null && attempt.response_body !== undefined
      ? h("details", {}, h("summary", {}, "Response body"),
        h("pre", { class: "code", tabindex: "0" }, prettyBody(attempt.response_body)))
      : null);
}

/** Headers as a name/value list, in the order they were sent or received. */
function headerList(headers, label) {
  return h("dl", { class: "headers", "aria-label": label },
    Object.entries(headers).flatMap(([name, value]) => [
      h("dt", {}, name), h("dd", {}, h("code", {}, value))]));
}

function renderDetail(delivery) {
  byId("detail-heading").textContent = `Delivery ${delivery.id}`;
  fill(byId("detail-facts"),
    fact("Status", statusPill(delivery.status)),
    fact("Payload", `${payloadName(delivery.payload_kind)} (${delivery.trigger ?? "api"})`),
    fact("Endpoint", state.endpoints.has(delivery.endpoint_id)
      ? endpointLabel(state.endpoints.get(delivery.endpoint_id)) : delivery.endpoint_id),
    fact("Conversation", delivery.conversation_id ?? "—"),
    fact("Created", formatFullTime(delivery.created_at)),
    delivery.finished_at ? fact("Finished", formatFullTime(delivery.finished_at)) : [],
    ["pending", "retrying"].includes(delivery.status) && delivery.next_attempt_at
      ? fact("Next attempt", formatFullTime(delivery.next_attempt_at)) : [],
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
    let clicked = null;
    for (const tr of byId("delivery-rows").children) {
      tr.classList.toggle("selected", tr.dataset.deliveryId === id);
      if (tr.dataset.deliveryId === id) clicked = tr;
    }
    const rowTop = clicked ? clicked.getBoundingClientRect().top : null;
    renderDetail(delivery);
    const detail = byId("detail");
    detail.hidden = false;
    // Beside the detail the list is narrower and its rows taller: scroll by what the
    // clicked row moved, so it stays under the pointer.
    if (clicked && rowTop !== null) window.scrollBy(0, clicked.getBoundingClientRect().top - rowTop);
    byId("detail-heading").setAttribute("tabindex", "-1");
    // Focus for keyboard and screen reader users, without moving the page under the pointer;
    // on a narrow screen the detail sits below the list, so bring it into view there.
    byId("detail-heading").focus({ preventScroll: true });
    const box = detail.getBoundingClientRect();
    if (box.top > window.innerHeight || box.bottom < 0) detail.scrollIntoView({ block: "start" });
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
    if (SETTLED.has(delivery.status) || delivery.status === "retrying") {
      if (state.redelivering === id) {
        state.redelivering = null;
        say(byId("redeliver-status"), sentAgain(delivery));
      }
      return;
    }
  }
}

/** What became of a redelivery, once it is known. */
function sentAgain(delivery) {
  const code = delivery.last_status_code ? ` (HTTP ${delivery.last_status_code})` : "";
  if (delivery.status === "succeeded") return `Sent again: delivered${code}.`;
  if (delivery.status === "retrying") {
    return `Sent again: failed${code}; next try ${formatFullTime(delivery.next_attempt_at)}.`;
  }
  return `Sent again: failed${code}.`;
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
    state.redelivering = id;
    await watch(id);
  } catch (error) {
    say(byId("redeliver-status"), error.message);
  } finally {
    button.disabled = false;
  }
}

// -- recover ---------------------------------------------------------------------------

/** What the confirmation will do: {endpoint, since, count}, set by the preview. */
let recoverPlan = null;

async function previewRecover(event) {
  event.preventDefault();
  const endpointId = byId("recover-endpoint").value;
  const since = localInputToIso(byId("recover-since").value);
  say(byId("recover-status"), "");
  byId("recover-confirm").hidden = true;
  if (!endpointId || !since) {
    say(byId("recover-status"), "Choose the endpoint and the time the outage began.");
    return;
  }
  try {
    const answer = await api(sitePath("delivery-counts")
      + query({ endpoint_id: endpointId, created_from: since }));
    const count = answer.counts.failed ?? 0;
    const where = endpointLabel(state.endpoints.get(endpointId));
    if (!count) {
      say(byId("recover-status"), `No failed delivery to ${where} since ${formatFullTime(since)}.`);
      return;
    }
    recoverPlan = { endpointId, since, count };
    byId("recover-summary").textContent = `Resend ${count} failed `
      + `${count === 1 ? "delivery" : "deliveries"} to ${where} made since `
      + `${formatFullTime(since)}? Each keeps its webhook-id, so receivers can dedupe.`;
    byId("recover-go").textContent = `Resend ${count} ${count === 1 ? "delivery" : "deliveries"}`;
    byId("recover-confirm").hidden = false;
    byId("recover-go").focus();
  } catch (error) {
    say(byId("recover-status"), error.message);
  }
}

async function runRecover() {
  const plan = recoverPlan;
  if (!plan) return;
  recoverPlan = null;
  byId("recover-confirm").hidden = true;
  try {
    const answer = await api(sitePath("endpoints", plan.endpointId, "recover"),
      { method: "POST", body: { since: plan.since } });
    const count = itemsOf(answer?.deliveries ?? []).length;
    say(byId("recover-status"),
      `${count} ${count === 1 ? "delivery" : "deliveries"} queued to be sent again.`);
  } catch (error) {
    say(byId("recover-status"), error.message);
  }
  await reload();
}

function cancelRecover() {
  recoverPlan = null;
  byId("recover-confirm").hidden = true;
  say(byId("recover-status"), "Nothing was resent.");
  byId("recover-preview").focus();
}

// -- start ---------------------------------------------------------------------------

async function main() {
  await startPage();
  await guarded(async () => {
    const endpoints = itemsOf(await api(sitePath("endpoints") + query({ limit: 500 })));
    const select = byId("filter-endpoint");
    const recoverTo = byId("recover-endpoint");
    for (const endpoint of endpoints) {
      state.endpoints.set(endpoint.id, endpoint);
      select.append(h("option", { value: endpoint.id }, endpointLabel(endpoint)));
      recoverTo.append(h("option", { value: endpoint.id }, endpointLabel(endpoint)));
    }
  });
  byId("time-zone").textContent = Intl.DateTimeFormat().resolvedOptions().timeZone ?? "local";
  restoreFilters();
  if (byId("filter-endpoint").value) byId("recover-endpoint").value = byId("filter-endpoint").value;
  byId("filter-status").addEventListener("change", reload);
  byId("filter-endpoint").addEventListener("change", () => {
    if (byId("filter-endpoint").value) {
      byId("recover-endpoint").value = byId("filter-endpoint").value;
    }
    return reload();
  });
  byId("filter-prefix").addEventListener("change", reload);
  byId("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    reload();
  });
  byId("clear-filters").addEventListener("click", clearFilters);
  byId("refresh").addEventListener("click", reload);
  byId("load-more").addEventListener("click", () => guarded(() => loadPage({ reset: false })));
  byId("redeliver").addEventListener("click", redeliver);
  byId("close-detail").addEventListener("click", () => {
    byId("detail").hidden = true;
    state.openId = null;
  });
  byId("recover-form").addEventListener("submit", previewRecover);
  byId("recover-go").addEventListener("click", runRecover);
  byId("recover-cancel").addEventListener("click", cancelRecover);
  await reload();
  const wanted = new URLSearchParams(location.search).get("delivery");
  if (wanted) await openDetail(wanted);
  document.body.dataset.ready = "true";
  pollCounters();
}

main();
