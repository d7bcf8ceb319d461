// The operator console: play both sides of a chat and watch what the endpoints do.
//
// Like Olark's chat box, an operator line starting with !lead, !case or !webhook
// is a command: the transcript so far is posted, and each endpoint's answer comes
// back here — its integrationUrl as a link, or why it failed. The answers arrive
// as Server-Sent Events from .../conversations/{id}/events.

import { api, itemsOf, query, sitePath } from "./api.js";
import { byId, externalLink, h, say } from "./dom.js";
import { endpointName as nameOf, formatFullTime, formatShortTime } from "./format.js";
import { clearFieldErrors, guarded, pageError, showFieldError, startPage } from "./shell.js";
import { listenForEvents } from "./sse.js";

const OPERATOR_STORAGE_KEY = "chathooks.console.operator";
const COMMAND = /^\s*!(lead|case|webhook|trigger)(?=\s|$)/i;

const state = {
  endpoints: new Map(),
  conversationId: null,
  open: false,
  /** Stops the event stream of the current chat. */
  stopListening: null,
  /** The notice element of each delivery, so later events update it in place. */
  notices: new Map(),
  /** Where a delivery's notice goes in time: the line that made it (a command, a close). */
  noticeAt: new Map(),
  /** What each notice last showed, to draw it again at another place in time. */
  shown: new Map(),
};

const chatLog = byId("chat-log");
const startForm = byId("start-form");
const composer = byId("composer");
const operatorForm = byId("operator-form");

// -- the operator's identity -----------------------------------------------------------

const operatorInputs = {
  id: byId("operator-id"),
  username: byId("operator-username"),
  nickname: byId("operator-nickname"),
  emailAddress: byId("operator-email"),
};

function operator() {
  const who = {};
  for (const [name, input] of Object.entries(operatorInputs)) {
    const value = input.value.trim();
    if (value) who[name] = value;
  }
  return who;
}

/** The operator fields survive a reload of the tab, like the session does. */
function rememberOperator() {
  sessionStorage.setItem(OPERATOR_STORAGE_KEY, JSON.stringify(operator()));
}

function restoreOperator() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(OPERATOR_STORAGE_KEY) || "null");
    if (saved && typeof saved === "object") {
      for (const [name, input] of Object.entries(operatorInputs)) {
        if (typeof saved[name] === "string") input.value = saved[name];
      }
    }
  } catch {
    // Nothing saved, or damaged: keep the defaults.
  }
}

// -- the chat log ----------------------------------------------------------------------
//
// Every line carries its time (data-at, epoch seconds) and goes in time order, so a
// reload, which rebuilds the log from the API, shows the same lines in the same order.

/** Epoch seconds of an API time (ISO text or epoch seconds), or now. */
function secondsOf(value) {
  if (typeof value === "number" && Number.isFinite(value)) return value;
  if (typeof value === "string" && value) {
    const number = Number(value);
    if (Number.isFinite(number)) return number;
    const parsed = Date.parse(value);
    if (!Number.isNaN(parsed)) return parsed / 1000;
  }
  return Date.now() / 1000;
}

function atBottom() {
  return chatLog.scrollHeight - chatLog.scrollTop - chatLog.clientHeight < 8;
}

function scrollToEnd() {
  chatLog.scrollTop = chatLog.scrollHeight;
}

/**
 * Change the log, keeping it scrolled to the newest line if the user was there;
 * someone who scrolled up to read stays where they are.
 */
function changeLog(change) {
  const follow = atBottom();
  const result = change();
  if (follow) scrollToEnd();
  return result;
}

/** Put `line` in the log after every line at or before its time. */
function insertLine(line, at) {
  line.dataset.at = String(at);
  changeLog(() => {
    let before = null;
    for (let node = chatLog.lastElementChild; node; node = node.previousElementSibling) {
      if (Number(node.dataset.at) <= at) break;
      before = node;
    }
    chatLog.insertBefore(line, before);
  });
  return line;
}

function timeLabel(at) {
  return h("time", { datetime: new Date(at * 1000).toISOString(), title: formatFullTime(at) },
    formatShortTime(at));
}

function addMessage(who, role, body, at) {
  return insertLine(h("div", { class: `msg msg-${role}` },
    h("span", { class: "who" }, who, " · ", timeLabel(at)),
    body), at);
}

function addNotice(kind, at, ...content) {
  return insertLine(h("div", { class: `notice notice-${kind}` },
    h("span", { class: "when" }, timeLabel(at), " "), ...content), at);
}

/** A transcript item as the API returns it (Olark's wire form). */
function addItem(item) {
  const time = secondsOf(item.timestamp);
  if (item.kind === "MessageToVisitor") {
    addMessage(item.nickname || "Operator", "operator", item.body, time);
  } else {
    addMessage(item.visitor_nickname || item.nickname || "Visitor", "visitor", item.body, time);
  }
}

function endpointName(id) {
  return state.endpoints.has(id) ? nameOf(state.endpoints.get(id)) : id;
}

const WHAT = {
  start: "Start event",
  command: "Transcript",
  completion: "Final transcript",
};

/** Show (or update) what happened to one delivery of this chat; a delivery that waits
 * also has its endpoint's health read again, to say what it waits for. */
function showDelivery(delivery, { healthRead = false } = {}) {
  const id = delivery.delivery_id ?? delivery.id;
  const what = WHAT[delivery.trigger] ?? "Payload";
  const command = delivery.command ? ` (!${delivery.command})` : "";
  const where = endpointName(delivery.endpoint_id);
  const code = delivery.status_code ? `HTTP ${delivery.status_code}` : null;
  let kind = "pending";
  let content;
  if (delivery.status === "succeeded") {
    kind = "succeeded";
    content = [
      `${what}${command} delivered to ${where}`, code ? ` (${code})` : "", ". ",
      delivery.integration_url
        ? h("span", {}, "integrationUrl: ", externalLink(delivery.integration_url))
        : h("span", { class: "muted" }, "No integrationUrl in the answer."),
    ];
  } else if (delivery.status === "retrying" || delivery.status === "failed") {
    kind = "failed";
    // The error is often just "HTTP 500"; say it once.
    const error = delivery.error && delivery.error !== code ? delivery.error : null;
    const reason = [code, error].filter(Boolean).join(": ") || "no answer";
    const logLink = h("a", { href: `/ui/deliveries?${new URLSearchParams({ delivery: id })}` },
      "delivery log");
    content = delivery.status === "retrying"
      ? [`${what}${command} to ${where} failed: ${reason}. ${waitingFor(delivery, where)} `
        + `(attempt ${delivery.attempt_count ?? "?"} failed); see the `, logLink, "."]
      : [`${what}${command} to ${where} failed: ${reason}. Gave up; redeliver it from the `,
        logLink, "."];
  } else if (delivery.status === "superseded") {
    kind = "superseded";
    content = [`${what}${command} to ${where} was not sent: a newer transcript of this chat `
      + "was delivered there."];
  } else if (delivery.status === "held") {
    kind = "held";
    content = [`${what}${command} to ${where} is held: the endpoint is disabled. It is sent `
      + "once the endpoint is enabled again."];
  } else {
    content = [`${what}${command} queued for ${where}${queuedBecause(delivery, where)}…`];
  }
  if (!healthRead && (kind === "pending" || delivery.status === "retrying")) {
    readHealth(delivery.endpoint_id, id);
  }
  const existing = state.notices.get(id);
  // An API answer says "queued"; the event stream may have reported the outcome already.
  if (existing && kind === "pending" && !healthRead) return;
  state.shown.set(id, delivery);
  const at = state.noticeAt.get(id) ?? secondsOf(delivery.posted_at);
  state.noticeAt.set(id, at);
  const fresh = h("div", { class: `notice notice-${kind}`, dataset: { deliveryId: id, at } },
    h("span", { class: "when" }, timeLabel(at), " "), ...content);
  if (existing) changeLog(() => existing.replaceWith(fresh));
  else insertLine(fresh, at);
  state.notices.set(id, fresh);
}

/** The endpoint's health as last read: its breaker state, next probe, failures in a row. */
function healthOf(endpointId) {
  return state.endpoints.get(endpointId)?.health ?? null;
}

/** The later of two API times (either may be missing), for when a waiting delivery goes. */
function later(first, second) {
  if (!first || !second) return first || second || null;
  return secondsOf(first) >= secondsOf(second) ? first : second;
}

/**
 * What a retrying delivery waits for: its next attempt at a time; or, while its endpoint's
 * circuit breaker is open, the endpoint to answer a probe (only one request goes at a time,
 * not before the next probe); or the endpoint to be enabled again.
 */
function waitingFor(delivery, where) {
  const health = healthOf(delivery.endpoint_id);
  if (health?.state === "disabled") {
    return `${where} is disabled, so this is held and sent once it is enabled again`;
  }
  if (health?.state === "failing") {
    const next = later(delivery.next_attempt_at, health.next_probe_at);
    const failures = health.consecutive_failures;
    return `${where} is failing (${failures} failed attempt${failures === 1 ? "" : "s"} in a row), `
      + `so it is tried again only once it answers a probe: next at ${formatShortTime(next)}`;
  }
  if (delivery.next_attempt_at) {
    return `Will retry at ${formatShortTime(delivery.next_attempt_at)}`;
  }
  return "Will retry";
}

/** Why a delivery is not sent yet, when the service says. */
function queuedBecause(delivery, where) {
  const health = healthOf(delivery.endpoint_id);
  if (delivery.error === "endpoint disabled" || health?.state === "disabled") {
    return " (the endpoint is disabled: held until it is enabled again)";
  }
  if (health?.state === "failing") {
    return ` (${where} is failing: it is tried next at ${formatShortTime(health.next_probe_at)},`
      + " when the endpoint answers a probe)";
  }
  return "";
}

/** Read the endpoint's health again, then redraw the notice of `deliveryId` with it. */
async function readHealth(endpointId, deliveryId) {
  let endpoint;
  try {
    endpoint = await api(sitePath("endpoints", endpointId));
  } catch {
    return; // the notice keeps what it said; the event stream brings the next change
  }
  state.endpoints.set(endpointId, endpoint);
  const shown = state.shown.get(deliveryId);
  if (shown) showDelivery(shown, { healthRead: true });
}

/** Notices for deliveries an action queued at `at` (they go right after its line). */
function showQueued(deliveries, at, whatWhenNone) {
  if (!deliveries.length) {
    if (whatWhenNone) addNotice("info", at, whatWhenNone);
    return;
  }
  for (const delivery of deliveries) {
    const id = delivery.delivery_id ?? delivery.id;
    if (!state.noticeAt.has(id)) state.noticeAt.set(id, at);
    showDelivery(delivery);
  }
}

// -- chat state ------------------------------------------------------------------------

function setChat(id, open) {
  state.conversationId = id;
  state.open = open;
  const chatState = byId("chat-state");
  chatState.textContent = id ? (open ? "Open" : "Closed") : "No chat";
  chatState.className = `pill ${open ? "pill-open" : ""}`;
  byId("chat-id").textContent = id ? `Conversation ${id}` : "";
  byId("message").disabled = !open;
  byId("send-message").disabled = !open;
  byId("close-chat").disabled = !open;
  const url = new URL(location.href);
  if (id) url.searchParams.set("conversation", id);
  else url.searchParams.delete("conversation");
  history.replaceState(null, "", url);
}

function listen(id) {
  if (state.stopListening) state.stopListening();
  state.stopListening = listenForEvents(sitePath("conversations", id, "events"), {
    onEvent(name, data) {
      if (name === "delivery" && state.conversationId === id) showDelivery(data);
    },
    onError(error) {
      pageError(`The event stream stopped: ${error.message}`);
    },
  });
}

function resetLog() {
  chatLog.replaceChildren();
  state.notices.clear();
  state.noticeAt.clear();
  state.shown.clear();
}

/**
 * Give `queued` deliveries the time `at` of the line that made them; any notice of
 * theirs already shown (the stream can be quicker than the API's answer) is taken
 * out, and its last state returned to be shown again after that line.
 */
function takeNotices(queued, at) {
  const early = [];
  for (const delivery of queued) {
    const notice = state.notices.get(delivery.id);
    if (notice) {
      notice.remove();
      state.notices.delete(delivery.id);
      early.push(state.shown.get(delivery.id));
    }
    state.noticeAt.set(delivery.id, at);
  }
  return early.filter(Boolean);
}

/**
 * The service's time of the command that queued `queued`, as a reload will show it
 * (the conversation's integrations); this browser's clock if the service does not say.
 */
async function commandTime(queued) {
  if (!queued.length) return Date.now() / 1000;
  const view = await api(sitePath("conversations", state.conversationId)).catch(() => null);
  const wanted = queued[0].id;
  for (const integration of view?.integrations ?? []) {
    if (integration.deliveries.some((delivery) => delivery.delivery_id === wanted)) {
      return secondsOf(integration.at);
    }
  }
  return Date.now() / 1000;
}

function startedWith(visitor) {
  return `Chat started with ${visitor.fullName || "a visitor"}.`;
}

// -- actions ---------------------------------------------------------------------------

async function startChat(event) {
  event.preventDefault();
  clearFieldErrors(startForm);
  const visitor = { kind: "Visitor" };
  for (const [name, input] of [
    ["fullName", byId("visitor-name")],
    ["emailAddress", byId("visitor-email")],
    ["conversationBeginPage", byId("visitor-page")],
  ]) {
    const value = input.value.trim();
    if (value) visitor[name] = value;
  }
  const button = byId("start-chat");
  button.disabled = true;
  try {
    const created = await api(sitePath("conversations"), { method: "POST", body: { visitor } });
    resetLog();
    setChat(created.id, true);
    const at = secondsOf(created.created_at);
    addNotice("info", at, startedWith(visitor));
    showQueued(created.deliveries ?? [], at);
    listen(created.id);
    byId("message").focus();
  } catch (error) {
    showFieldError(startForm, error);
  } finally {
    button.disabled = false;
  }
}

async function sendMessage(event) {
  event.preventDefault();
  clearFieldErrors(composer);
  const input = byId("message");
  const body = input.value;
  if (!body.trim() || !state.open) return;
  const from = composer.querySelector('input[name="from"]:checked').value;
  const message = { from, body };
  if (from === "operator") message.operator = operator();
  const button = byId("send-message");
  button.disabled = true;
  try {
    const result = await api(sitePath("conversations", state.conversationId, "messages"),
      { method: "POST", body: message });
    input.value = "";
    if (result.command) {
      const queued = result.deliveries ?? [];
      // The line as the service keeps it: a reload shows it with this time and text.
      const at = result.line ? secondsOf(result.line.at) : await commandTime(queued);
      // The stream may have told an outcome already: its notice goes after the command.
      const early = takeNotices(queued, at);
      addMessage(result.line?.nickname || operator().nickname || "Operator", "command",
        result.line?.body ?? `!${result.command}`, at);
      for (const delivery of early) showDelivery(delivery);
      showQueued(queued, at, "No enabled endpoint to post to: add one on the Settings page.");
    } else if (result.item) {
      addItem(result.item);
    }
  } catch (error) {
    if (error.code === "conversation_closed") setChat(state.conversationId, false);
    showFieldError(composer, error);
  } finally {
    button.disabled = !state.open;
    input.focus();
  }
}

async function closeChat() {
  if (!state.conversationId) return;
  await guarded(async () => {
    const result = await api(sitePath("conversations", state.conversationId, "close"),
      { method: "POST" });
    setChat(state.conversationId, false);
    const view = await api(sitePath("conversations", state.conversationId)).catch(() => null);
    const at = secondsOf(view?.closed_at);
    // As for a command: outcomes the stream told already go after the line that made them.
    const early = takeNotices(result.deliveries ?? [], at);
    addNotice("info", at, "Chat closed.");
    for (const delivery of early) showDelivery(delivery);
    showQueued(result.deliveries ?? [], at, "No endpoint gets the final transcript.");
  });
}

/** Reopen the chat named in the address (after a reload), with its transcript so far. */
async function resume(id) {
  await guarded(async () => {
    const conversation = await api(sitePath("conversations", id));
    resetLog();
    setChat(conversation.id, conversation.state === "open");
    addNotice("info", secondsOf(conversation.created_at),
      startedWith(conversation.transcript?.visitor ?? {}));
    for (const item of conversation.transcript?.items ?? []) addItem(item);
    // Commands are not transcript items: the API keeps them as typed, with their time.
    for (const line of conversation.commands ?? []) {
      addMessage(line.nickname || "Operator", "command", line.body, secondsOf(line.at));
    }
    for (const integration of conversation.integrations ?? []) {
      if (integration.trigger !== "command") continue;
      const at = secondsOf(integration.at);
      for (const delivery of integration.deliveries) state.noticeAt.set(delivery.delivery_id, at);
    }
    if (conversation.state !== "open" && conversation.closed_at) {
      const at = secondsOf(conversation.closed_at);
      addNotice("info", at, "Chat closed.");
      for (const integration of conversation.integrations ?? []) {
        if (integration.trigger !== "completion") continue;
        for (const delivery of integration.deliveries) state.noticeAt.set(delivery.delivery_id, at);
      }
    }
    scrollToEnd();
    listen(conversation.id);
  });
}

// -- start -----------------------------------------------------------------------------

async function main() {
  await startPage();
  restoreOperator();
  operatorForm.addEventListener("input", rememberOperator);
  operatorForm.addEventListener("submit", (event) => event.preventDefault());
  startForm.addEventListener("submit", startChat);
  composer.addEventListener("submit", sendMessage);
  byId("close-chat").addEventListener("click", closeChat);
  byId("message").addEventListener("input", () => {
    // A hint, not a rule: commands only count when sent as the operator.
    const isCommand = COMMAND.test(byId("message").value);
    say(composer.querySelector('[data-error-for="body"]'),
      isCommand && composer.querySelector('input[name="from"]:checked').value !== "operator"
        ? "Commands such as !lead only work when sent as the operator."
        : "");
  });
  await guarded(async () => {
    const endpoints = itemsOf(await api(sitePath("endpoints") + query({ limit: 500 })));
    for (const endpoint of endpoints) state.endpoints.set(endpoint.id, endpoint);
  });
  const wanted = new URLSearchParams(location.search).get("conversation");
  setChat(null, false);
  if (wanted) await resume(wanted);
  document.body.dataset.ready = "true";
}

main();
