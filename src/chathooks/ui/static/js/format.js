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

const RELATIVE = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
const RELATIVE_STEPS = [
  [60, "second"], [60, "minute"], [24, "hour"], [30, "day"], [12, "month"], [Infinity, "year"],
];

/** "3 minutes ago" / "in 5 minutes": how far a time is from now, for tables. */
export function formatRelative(value, now = Date.now()) {
  const date = toDate(value);
  if (!date) return formatTime(value);
  let amount = (date.getTime() - now) / 1000;
  for (const [size, unit] of RELATIVE_STEPS) {
    if (Math.abs(amount) < size) return RELATIVE.format(Math.round(amount), unit);
    amount /= size;
  }
  return formatTime(value);
}

/** A time with the date, seconds and the time zone: what a tooltip and a detail show. */
export function formatFullTime(value) {
  const date = toDate(value);
  if (!date) return formatTime(value);
  return date.toLocaleString(undefined, {
    weekday: "short", year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
}

/** The value of a datetime-local input (local time) as ISO-8601 UTC, or "" when empty. */
export function localInputToIso(text) {
  if (!text) return "";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** An ISO-8601 time as the value of a datetime-local input, in local time. */
export function isoToLocalInput(text) {
  const date = toDate(text);
  if (!date) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`
    + `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
