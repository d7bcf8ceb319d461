// The signed-in site: its id and API key, kept in sessionStorage.
//
// sessionStorage dies with the tab, so a key typed on a shared machine does not
// outlive the visit, and nothing is sent to the server except as a request header.

const STORAGE_KEY = "chathooks.session";

/** {site, key} or null. */
export function currentSession() {
  try {
    const value = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    if (value && typeof value.site === "string" && typeof value.key === "string") return value;
  } catch {
    // A damaged entry is the same as none.
  }
  return null;
}

export function saveSession(site, key) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify({ site, key }));
}

export function clearSession() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** Send the user to the sign-in page, coming back here afterwards. */
export function goToSignIn() {
  const next = location.pathname + location.search;
  location.assign(`/ui/signin?next=${encodeURIComponent(next)}`);
}

/** The session, or a redirect to sign in (then never resolves). */
export function requireSession() {
  const session = currentSession();
  if (!session) {
    goToSignIn();
    return new Promise(() => {});
  }
  return Promise.resolve(session);
}
