// The operator console: play both sides of a chat and watch what the endpoints do.
//
// Like Olark's chat box, an operator line starting with !lead, !case or !webhook
// is a command: the transcript so far is posted, and each endpoint's answer comes
// back here — its integrationUrl as a link, or why it failed. The answers arrive
// as Server-Sent Events from .../conversations/{id}/events.

import { api, itemsOf, query, sitePath } from "./api.js";
import { byId, externalLink, h, say } from "./dom.js";
import { endpointName as nameOf, formatShortTime } from "./format.js";
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

function scrollToEnd() {
  chatLog.scrollTop = chatLog.scrollHeight;
}

function addMessage(who, role, body, time) {
  chatLog.append(h("div", { class: `msg msg-${role}` },
    h("span", { class: "who" }, who, time ? ` · ${formatShortTime(time)}` : ""),
    body));
  scrollToEnd();
}

function addNotice(kind, ...content) {
  const item = h("div", { class: `notice notice-${kind}` }, ...content);
  chatLog.append(item);
  scrollToEnd();
  return item;
}

/** A transcript item as the API returns it (Olark's wire form). */
function addItem(item) {
  const time = item.timestamp ? Number(item.timestamp) : null;
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

/** Show (or update) what happened to one delivery of this chat. */
function showDelivery(delivery) {
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
      ? [`${what}${command} to ${where} failed: ${reason}. Will retry `
        + `(attempt ${delivery.attempt_count ?? "?"} failed); see the `, logLink, "."]
      : [`${what}${command} to ${where} failed: ${reason}. Gave up; redeliver it from the `,
        logLink, "."];
  } else {
    content = [`${what}${command} queued for ${where}…`];
  }
  const existing = state.notices.get(id);
  // An API answer says "queued"; the event stream may have reported the outcome already.
  if (existing && kind === "pending") return;
  const fresh = h("div", { class: `notice notice-${kind}`, dataset: { deliveryId: id } }, ...content);
  if (existing) existing.replaceWith(fresh);
  else {
    chatLog.append(fresh);
    scrollToEnd();
  }
  state.notices.set(id, fresh);
}

function showQueued(deliveries, whatWhenNone) {
  if (!deliveries.length) {
    if (whatWhenNone) addNotice("info", whatWhenNone);
    return;
  }
  for (const delivery of deliveries) showDelivery(delivery);
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
    addNotice("info", `Chat started with ${visitor.fullName || "a visitor"}.`);
    showQueued(created.deliveries ?? []);
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
      addMessage(operator().nickname || "Operator", "command", body.trim());
      showQueued(result.deliveries ?? [],
        "No enabled endpoint to post to: add one on the Settings page.");
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
    addNotice("info", "Chat closed.");
    showQueued(result.deliveries ?? [], "No endpoint gets the final transcript.");
  });
}

/** Reopen the chat named in the address (after a reload), with its transcript so far. */
async function resume(id) {
  await guarded(async () => {
    const conversation = await api(sitePath("conversations", id));
    resetLog();
    setChat(conversation.id, conversation.state === "open");
    for (const item of conversation.transcript?.items ?? []) addItem(item);
    if (conversation.state !== "open") addNotice("info", "This chat is closed.");
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
