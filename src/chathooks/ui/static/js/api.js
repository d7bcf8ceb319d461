// The JSON API, as the pages use it: bearer auth, JSON in and out, and errors
// turned into ApiError with the field the server named.

import { clearSession, currentSession, goToSignIn } from "./session.js";

export class ApiError extends Error {
  constructor(status, code, field, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.body = body;
  }
}

/** The path of a site's resource: sitePath("endpoints", id) → /api/v1/sites/<site>/endpoints/<id>. */
export function sitePath(...parts) {
  const session = currentSession();
  const site = session ? session.site : "";
  return `/api/v1/sites/${[site, ...parts].map((p) => encodeURIComponent(String(p))).join("/")}`;
}

/** A query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Call the API. Resolves to the decoded JSON body (null when empty); rejects with
 * ApiError. A 401 means the key is wrong or revoked: back to the sign-in page.
 */
export async function api(path, { method = "GET", body, key, signInOn401 = true } = {}) {
  const session = currentSession();
  const headers = { Accept: "application/json" };
  const bearer = key ?? (session ? session.key : null);
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    throw new ApiError(0, "network", null, `The service did not answer (${error.message}).`, null);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (response.ok) return data;
  if (response.status === 401 && signInOn401) {
    clearSession();
    goToSignIn();
  }
  throw toApiError(response.status, data);
}

/** Read {"error","field","message"} (ours) or FastAPI's {"detail": ...} shapes. */
function toApiError(status, data) {
  if (data && typeof data === "object") {
    if (typeof data.message === "string" || typeof data.error === "string") {
      return new ApiError(status, data.error ?? null, data.field ?? null,
        data.message ?? data.error, data);
    }
    const detail = data.detail;
    if (Array.isArray(detail) && detail.length) {
      const first = detail[0];
      const loc = Array.isArray(first.loc) ? first.loc.filter((p) => p !== "body") : [];
      return new ApiError(status, "invalid", loc.join(".") || null, first.msg ?? "Invalid input.", data);
    }
    if (typeof detail === "string") return new ApiError(status, null, null, detail, data);
  }
  const fallback = typeof data === "string" && data ? data.slice(0, 300) : `HTTP ${status}`;
  return new ApiError(status, null, null, `The request failed: ${fallback}`, data);
}

/** Items of a list answer, whether it is a bare array or {"items": [...]}. */
export function itemsOf(data) {
  if (Array.isArray(data)) return data;
  if (data && Array.isArray(data.items)) return data.items;
  return [];
}
