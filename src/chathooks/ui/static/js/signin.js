// Sign in: check the site id and key against the API, then keep them for this tab.

import { api } from "./api.js";
import { byId, say } from "./dom.js";
import { saveSession } from "./session.js";

const form = byId("signin-form");
const errorBox = byId("signin-error");

/** Only paths of this UI are followed after sign-in (no open redirect). */
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") || "";
  return /^\/ui\/[A-Za-z0-9_\-/?=&%.]*$/.test(next) && !next.startsWith("/ui/signin")
    ? next
    : "/ui/settings";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const site = byId("signin-site").value.trim();
  const key = byId("signin-key").value.trim();
  if (!site || !key) {
    say(errorBox, "Enter both the site ID and the API key.");
    return;
  }
  say(errorBox, "");
  try {
    await api(`/api/v1/sites/${encodeURIComponent(site)}/endpoints`, { key, signInOn401: false });
  } catch (error) {
    const wrong = [401, 403, 404].includes(error.status);
    say(errorBox, wrong ? "That site ID and API key do not match a site." : error.message);
    return;
  }
  saveSession(site, key);
  location.assign(nextPage());
});
document.body.dataset.ready = "true";
