// The signing secret of a saved endpoint: reveal it again, copy it, rotate it.
// The API keeps it sealed; it is fetched only when asked for, never with the list.

import { api, sitePath } from "./api.js";
import { byId, say } from "./dom.js";
import { formatFullTime } from "./format.js";

/** The endpoint the panel is about: null hides it. */
let current = null;

/** Copy an input's text to the clipboard and say so in `status`. */
export async function copyInput(input, status) {
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand("copy");
  }
  say(status, "Copied.");
}

function hideSecret() {
  byId("revealed").hidden = true;
  byId("revealed-secret").value = "";
  byId("reveal-secret").textContent = "Reveal secret";
  byId("reveal-secret").setAttribute("aria-expanded", "false");
  say(byId("copy-revealed-status"), "");
}

/** Show the panel for a saved, signed endpoint (anything else hides it). */
export function showSigning(endpoint) {
  current = endpoint && endpoint.signed ? endpoint : null;
  byId("signing-box").hidden = current === null;
  byId("rotate-confirm").hidden = true;
  say(byId("signing-status"), "");
  hideSecret();
}

function showSecret(answer) {
  byId("revealed-secret").value = answer.secret ?? "";
  const note = byId("previous-note");
  if (answer.previous_secret && answer.previous_secret_expires_at) {
    note.textContent = `The previous secret ${answer.previous_secret} also signs every delivery until `
      + `${formatFullTime(answer.previous_secret_expires_at)}.`;
    note.hidden = false;
  } else {
    note.hidden = true;
  }
  byId("revealed").hidden = false;
  byId("reveal-secret").textContent = "Hide secret";
  byId("reveal-secret").setAttribute("aria-expanded", "true");
}

async function toggleReveal() {
  if (!current) return;
  if (!byId("revealed").hidden) {
    hideSecret();
    return;
  }
  try {
    showSecret(await api(sitePath("endpoints", current.id, "secret")));
    byId("revealed-secret").focus();
  } catch (error) {
    say(byId("signing-status"), error.message);
  }
}

function askRotate() {
  byId("rotate-confirm").hidden = false;
  byId("rotate-grace").focus();
}

function cancelRotate() {
  byId("rotate-confirm").hidden = true;
  byId("rotate-secret").focus();
}

async function rotate() {
  if (!current) return;
  const button = byId("rotate-confirm-yes");
  button.disabled = true;
  try {
    const answer = await api(sitePath("endpoints", current.id, "rotate-secret"), {
      method: "POST",
      body: { grace_seconds: Number(byId("rotate-grace").value) },
    });
    byId("rotate-confirm").hidden = true;
    showSecret(answer);
    say(byId("signing-status"), "Rotated: the new secret signs from now on.");
    byId("revealed-secret").focus();
  } catch (error) {
    say(byId("signing-status"), error.message);
  } finally {
    button.disabled = false;
  }
}

/** Wire the panel's buttons once, when the page starts. */
export function startSigning() {
  byId("reveal-secret").addEventListener("click", toggleReveal);
  byId("rotate-secret").addEventListener("click", askRotate);
  byId("rotate-cancel").addEventListener("click", cancelRotate);
  byId("rotate-confirm-yes").addEventListener("click", rotate);
  byId("copy-revealed").addEventListener("click",
    () => copyInput(byId("revealed-secret"), byId("copy-revealed-status")));
}
