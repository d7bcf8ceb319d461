// What every signed-in page shares: the session, the header, the page-wide error banner.

import { byId, say } from "./dom.js";
import { clearSession, requireSession } from "./session.js";

/** Wait for a session (or go to sign in), then fill in the header. */
export async function startPage() {
  const session = await requireSession();
  byId("session-site").textContent = session.site;
  byId("sign-out").addEventListener("click", () => {
    clearSession();
    location.assign("/ui/signin");
  });
  return session;
}

/** Show an error that belongs to no field (e.g. the service is down). */
export function pageError(message) {
  say(byId("page-error"), message);
}

/** Run `work`, showing its ApiError in the page banner instead of failing silently. */
export async function guarded(work) {
  try {
    pageError("");
    return await work();
  } catch (error) {
    pageError(error.message || String(error));
    return undefined;
  }
}

/**
 * Put each error message next to the field it names (elements with data-error-for
 * inside `form`); an unknown field falls back to the form's general error slot.
 */
export function showFieldError(form, error) {
  clearFieldErrors(form);
  const field = error && error.field ? String(error.field) : "";
  const slots = [...form.querySelectorAll("[data-error-for]")];
  const slot = slots.find((s) => s.dataset.errorFor === field)
    ?? slots.find((s) => s.dataset.errorFor === field.split(".").pop())
    ?? slots.find((s) => s.dataset.errorFor === "");
  const message = error ? error.message || String(error) : "";
  if (slot) {
    // The API starts messages with the field's name ("url: ..."); next to the field it is noise.
    const own = slot.dataset.errorFor !== "";
    const shown = own && message.startsWith(`${field}: `) ? message.slice(field.length + 2) : message;
    say(slot, shown);
    const input = slot.id ? form.querySelector(`[aria-describedby~="${slot.id}"]`) : null;
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  } else {
    pageError(message);
  }
}

export function clearFieldErrors(form) {
  for (const slot of form.querySelectorAll("[data-error-for]")) say(slot, "");
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}
