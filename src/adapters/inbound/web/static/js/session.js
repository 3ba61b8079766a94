// Sign-in: a bearer token pasted into the form, or handed over in a development link
// (/#token=...). It is kept in sessionStorage only (gone with the tab) and never logged.

const KEY = "rwa.token";

export function getToken() {
  return sessionStorage.getItem(KEY) || "";
}

export function setToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
}

function base64UrlDecode(part) {
  const padded = part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

// The token's claims, read for display and navigation only: the service checks the token.
export function claims(token = getToken()) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const payload = JSON.parse(base64UrlDecode(parts[1]));
    if (typeof payload.sub !== "string") return null;
    const roles = Array.isArray(payload.roles) ? payload.roles : [payload.roles].filter(Boolean);
    return { sub: payload.sub, roles, exp: payload.exp, entityId: payload.entity_id || null };
  } catch {
    return null;
  }
}

// A development sign-in link puts the token in the fragment: take it, then drop it from the
// address bar and history.
export function takeTokenFromLink() {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match) return false;
  setToken(decodeURIComponent(match[1]));
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  return true;
}
