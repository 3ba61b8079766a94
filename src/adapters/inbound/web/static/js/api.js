// The HTTP API under /api/v1 with the signed-in bearer token. Bodies are sent as JSON text
// built by the caller when exact numbers matter (see rawJson); answers are parsed with
// JSON.parse, and every amount in them is a decimal string already.

import { getToken } from "./session.js";

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || null;
  }

  get fields() {
    return (this.details && this.details.fields) || {};
  }

  describe() {
    const reasons = this.details && Array.isArray(this.details.reasons) ? `: ${this.details.reasons.join("; ")}` : "";
    return `${this.status} ${this.code}: ${this.message}${reasons}`;
  }
}

// A JSON text kept exactly as the user typed it (after JSON.parse checked it), spliced into a
// body by rawJson so that numbers such as 0.95 or 12345678901234567890 are sent as typed.
export class RawJson {
  constructor(text) {
    JSON.parse(text);
    this.text = text.trim();
  }
}

export function rawJson(value) {
  if (value instanceof RawJson) return value.text;
  if (Array.isArray(value)) return `[${value.map(rawJson).join(",")}]`;
  if (value && typeof value === "object") {
    const parts = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}:${rawJson(v)}`);
    return `{${parts.join(",")}}`;
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) {
    throw new Error("amounts are sent as strings, never as floating point numbers");
  }
  return JSON.stringify(value);
}

export async function call(method, path, { body, headers = {}, auth = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers } };
  const token = getToken();
  if (auth && token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = typeof body === "string" ? body : rawJson(body);
  }
  let response;
  try {
    response = await fetch(`${API}${path}`, init);
  } catch (err) {
    throw new ApiError(0, "network_error", `the service did not answer (${err.message})`);
  }
  const text = await response.text();
  let payload = null;
  if (text) {
    try {
      payload = JSON.parse(text);
    } catch {
      throw new ApiError(response.status, "bad_answer", "the answer was not JSON");
    }
  }
  if (!response.ok) {
    const error = (payload && payload.error) || {};
    if (response.status === 401 && auth && token) {
      // the token is bad or expired: the page goes back to the sign-in form (main.js)
      window.dispatchEvent(new CustomEvent("rwa:unauthenticated", { detail: error.message || "" }));
    }
    throw new ApiError(response.status, error.code || "error", error.message || response.statusText, error.details);
  }
  return payload;
}

export const get = (path, opts) => call("GET", path, opts);
export const post = (path, body, opts = {}) => call("POST", path, { ...opts, body });
export const del = (path, opts) => call("DELETE", path, opts);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const enc = encodeURIComponent;

// Token symbols by id (tokens are few; read once per page, again when an id is unknown).
let symbols = null;
export async function tokenSymbol(id) {
  if (!symbols || !symbols.has(id)) {
    const answer = await get(`/tokens${query({ limit: 100 })}`, { auth: false });
    symbols = new Map(answer.data.map((t) => [t.id, t.symbol]));
  }
  return symbols.get(id) || id;
}
