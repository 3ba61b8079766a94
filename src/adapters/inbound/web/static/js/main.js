// The page: sign-in, the section chosen by the address's fragment (#/issuer, #/admin,
// #/trader), and the live connection's state in the header.

import { $, h, replace, setFieldError } from "./dom.js";
import { live } from "./live.js";
import { claims, clearToken, getToken, setToken, takeTokenFromLink } from "./session.js";

const VIEWS = {
  issuer: () => import("./issuer.js"),
  admin: () => import("./admin.js"),
  trader: () => import("./trader.js"),
};
const mounted = new Map();
let current = null;

const STATE_TEXT = {
  connecting: "Live updates: connecting",
  live: "Live updates: connected",
  reconnecting: "Live updates: reconnecting (showing the last data, refreshed over HTTP)",
  offline: "Live updates: offline",
};

function showConnection(state) {
  const el = $("#connection-state");
  el.textContent = STATE_TEXT[state] || state;
  document.body.dataset.connection = state;
}

function defaultView(who) {
  if (who.roles.includes("issuer")) return "issuer";
  if (who.roles.includes("admin")) return "admin";
  return "trader";
}

function renderWho(who) {
  const box = $("#who");
  if (!who) {
    replace(box);
    return;
  }
  replace(
    box,
    h("span", { id: "signed-in-as", text: `Signed in as ${who.sub} (${who.roles.join(", ") || "no role"})` }),
    h("button", { type: "button", class: "small", on: { click: () => signOut() } }, "Sign out"),
  );
}

function signOut(message = "") {
  clearToken();
  live.stop();
  for (const view of mounted.values()) view.hide();
  mounted.clear();
  for (const id of ["view-issuer", "view-admin", "view-trader"]) replace(document.getElementById(id));
  current = null;
  location.hash = "#/";
  route();
  setFieldError($("#signin-token"), message);
}

async function route() {
  const who = claims();
  renderWho(who);
  const signin = $("#signin");
  const sections = { issuer: $("#view-issuer"), admin: $("#view-admin"), trader: $("#view-trader") };
  if (!who) {
    signin.hidden = false;
    for (const s of Object.values(sections)) s.hidden = true;
    return;
  }
  signin.hidden = true;
  live.start();
  let name = (location.hash.match(/^#\/(\w+)/) || [])[1];
  if (!VIEWS[name]) {
    name = defaultView(who);
    history.replaceState(null, "", `#/${name}`);
  }
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (current && current !== name && mounted.has(current)) mounted.get(current).hide();
  for (const [key, section] of Object.entries(sections)) section.hidden = key !== name;
  current = name;
  if (!mounted.has(name)) {
    const module = await VIEWS[name]();
    mounted.set(name, module.mount(sections[name], who));
  }
  mounted.get(name).show();
}

function signIn(event) {
  event.preventDefault();
  const input = $("#signin-token");
  const token = input.value.trim();
  if (!claims(token)) {
    setFieldError(input, "This is not a bearer token (three dot-separated parts with a sub claim).");
    input.focus();
    return;
  }
  setFieldError(input, "");
  setToken(token);
  input.value = "";
  route();
}

function boot() {
  takeTokenFromLink();
  live.onState(showConnection);
  $("#reconnect").addEventListener("click", () => {
    if (getToken()) live.restart();
  });
  $("#signin-form").addEventListener("submit", signIn);
  window.addEventListener("hashchange", route);
  window.addEventListener("rwa:unauthenticated", (event) => {
    if (getToken()) signOut(`The service refused this token (${event.detail || "unauthenticated"}); sign in again.`);
  });
  route();
}

boot();
