// Turning API values into words people read.

/** A time from the API (ISO-8601 text or epoch seconds) in the reader's locale. */
export function formatTime(value) {
  if (value === null || value === undefined || value === "") return "—";
  const date = toDate(value);
  if (!date) return String(value);
  return date.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

/** A compact time for tables: the time of day today, else the date and time. */
export function formatShortTime(value) {
  const date = toDate(value);
  if (!date) return formatTime(value);
  const today = new Date();
  const sameDay = date.toDateString() === today.toDateString();
  return date.toLocaleString(undefined, sameDay
    ? { hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "87 ms" / "2.4 s". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || ms === "") return "—";
  const value = Number(ms);
  if (!Number.isFinite(value)) return String(ms);
  return value < 1000 ? `${Math.round(value)} ms` : `${(value / 1000).toFixed(1)} s`;
}

/** Pretty-print a body that is JSON, leave any other text as it is. */
export function prettyBody(text) {
  if (text === null || text === undefined || text === "") return "(empty)";
  if (typeof text !== "string") return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

const PAYLOAD_NAMES = {
  transcript: "Transcript",
  offline_message: "Offline message",
  event: "Event",
  test: "Test",
};

export function payloadName(kind) {
  return PAYLOAD_NAMES[kind] ?? String(kind ?? "—");
}

/** What to call an endpoint in a sentence: its description, else its URL. */
export function endpointName(endpoint) {
  if (!endpoint) return "an endpoint";
  return endpoint.description || endpoint.url;
}

/** The label of an endpoint in lists: its description and URL. */
export function endpointLabel(endpoint) {
  if (!endpoint) return "—";
  return endpoint.description ? `${endpoint.description} (${endpoint.url})` : endpoint.url;
}
