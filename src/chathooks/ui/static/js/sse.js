// Server-Sent Events over fetch(), so the API key travels in the Authorization
// header. The browser's EventSource cannot send headers, which would force the
// key into the URL, and URLs end up in access logs and proxy logs.
//
// Behaves like EventSource where it matters: parses the text/event-stream
// format, remembers the last event id and sends it back as Last-Event-ID when it
// reconnects after the connection drops.

import { clearSession, currentSession, goToSignIn } from "./session.js";

const RETRY_MS = 1000;
const MAX_RETRY_MS = 15000;

/**
 * Listen to `path` until the returned function is called.
 * `onEvent(name, data)` gets each event (data parsed as JSON when it is JSON);
 * `onError(error)` is told when the stream cannot be opened at all (404...).
 */
export function listenForEvents(path, { onEvent, onError = () => {} }) {
  const controller = new AbortController();
  run(path, controller.signal, onEvent, onError);
  return () => controller.abort();
}

async function run(path, signal, onEvent, onError) {
  let lastEventId = null;
  let retry = RETRY_MS;
  while (!signal.aborted) {
    try {
      const session = currentSession();
      const headers = { Accept: "text/event-stream" };
      if (session) headers.Authorization = `Bearer ${session.key}`;
      if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
      const response = await fetch(path, { headers, signal, cache: "no-store" });
      if (response.status === 401) {
        clearSession();
        goToSignIn();
        return;
      }
      if (!response.ok) {
        const text = await response.text();
        let message = `HTTP ${response.status}`;
        try {
          message = JSON.parse(text).message ?? message;
        } catch {
          // Not our JSON error body: keep the status.
        }
        onError(new Error(message));
        return;
      }
      retry = RETRY_MS;
      for await (const event of events(response.body, signal)) {
        if (event.id !== null) lastEventId = event.id;
        if (event.retry !== null) retry = event.retry;
        if (event.data !== null) onEvent(event.name, parseData(event.data));
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    // The server closed the stream or the network dropped: reconnect, like EventSource.
    await sleep(retry, signal);
    retry = Math.min(retry * 2, MAX_RETRY_MS);
  }
}

function parseData(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}

/** The events of a text/event-stream body, as {name, data, id, retry}. */
async function* events(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}), { once: true });
  let buffer = "";
  let event = blank();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const newline = buffer.startsWith("\r\n", end) ? 2 : 1;
      // A lone "\r" at the end of a chunk may be half of "\r\n": wait for more.
      if (buffer[end] === "\r" && newline === 1 && end === buffer.length - 1) break;
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + newline);
      if (line === "") {
        if (event.dataLines.length) {
          yield { name: event.name || "message", data: event.dataLines.join("\n"), id: event.id, retry: event.retry };
        } else if (event.id !== null || event.retry !== null) {
          yield { name: "", data: null, id: event.id, retry: event.retry };
        }
        event = blank();
        continue;
      }
      if (line.startsWith(":")) continue; // a comment (keep-alive)
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? "" : line.slice(colon + 1);
      if (text.startsWith(" ")) text = text.slice(1);
      if (field === "data") event.dataLines.push(text);
      else if (field === "event") event.name = text;
      else if (field === "id" && !text.includes("\0")) event.id = text;
      else if (field === "retry" && /^\d+$/.test(text)) event.retry = Number(text);
    }
  }
}

function blank() {
  return { name: "", dataLines: [], id: null, retry: null };
}
