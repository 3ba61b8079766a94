// Issuer: register a market with every field of the seeds' body, see each refused field's
// message next to it, and follow the market's lifecycle (the `markets` channel when it is
// live, else a short poll) with its event timeline and, once active, its contract address.

import { ApiError, RawJson, enc, get, post, query } from "./api.js";
import { field, h, replace, say, setFieldError, table, when } from "./dom.js";
import { live } from "./live.js";

// The status a market is in after each lifecycle event (DESIGN §4).
export const EVENT_STATUS = {
  "market.registered": "draft",
  "market.approval_requested": "pending_approval",
  "market.approved": "approved",
  "market.rejected": "rejected",
  "market.activation_started": "activating",
  "market.activated": "active",
  "market.activation_failed": "approved",
  "market.paused": "paused",
  "market.resumed": "active",
  "market.archived": "archived",
};

export const ASSET_TYPES = [
  "real_estate",
  "corporate_stock",
  "government_bond",
  "commodity",
  "private_equity",
  "art_collectible",
  "carbon_credit",
  "other",
];
const POLL_MS = 2000;

function input(name, attrs = {}) {
  return h("input", { name, id: `reg-${name.replace(/\./g, "-")}`, type: "text", dataset: { field: name }, ...attrs });
}

function textarea(name, attrs = {}) {
  return h("textarea", { name, id: `reg-${name.replace(/\./g, "-")}`, rows: 3, dataset: { field: name }, ...attrs });
}

export function mount(section, who) {
  const c = {};
  c.name = input("name", { required: true, maxlength: 200 });
  c.issuerId = input("issuerId", { value: who.sub, maxlength: 200 });
  c.assetType = h("select", { name: "assetType", id: "reg-assetType", dataset: { field: "assetType" } },
    ASSET_TYPES.map((t) => h("option", { value: t, text: t.replace(/_/g, " ") })));
  c.tokenSymbol = input("tokenSymbol", { required: true, maxlength: 11, autocapitalize: "characters" });
  c.tokenName = input("tokenName", { required: true, maxlength: 100 });
  c.totalSupply = input("totalSupply", { required: true, inputmode: "numeric" });
  c.entityId = input("entityId", { value: who.entityId || "", maxlength: 200 });
  c.valuation = input("assetDetails.valuation", { inputmode: "decimal" });
  c.currency = input("assetDetails.currency", { value: "USD", maxlength: 3 });
  c.location = input("assetDetails.location", { maxlength: 200 });
  c.description = textarea("assetDetails.description", { maxlength: 5000 });
  c.complianceDocuments = textarea("assetDetails.complianceDocuments", { value: "[]" });
  c.regulatoryInfo = textarea("assetDetails.regulatoryInfo", { value: "{}" });
  c.attributes = textarea("assetDetails.attributes", { value: "{}" });
  c.tickSize = input("tickSize", { inputmode: "decimal" });
  c.lotSize = input("lotSize", { inputmode: "decimal" });
  c.makerFeeBps = input("makerFeeBps", { inputmode: "numeric" });
  c.takerFeeBps = input("takerFeeBps", { inputmode: "numeric" });
  c.accreditedInvestorsOnly = h("input", { type: "checkbox", name: "accreditedInvestorsOnly", id: "reg-accreditedInvestorsOnly", dataset: { field: "accreditedInvestorsOnly" } });
  c.allowedCountries = input("allowedCountries", { placeholder: "US, PT" });
  // textContent of a textarea is its initial value
  for (const key of ["complianceDocuments", "regulatoryInfo", "attributes"]) {
    c[key].textContent = c[key].getAttribute("value");
    c[key].removeAttribute("value");
  }

  const formStatus = h("p", { id: "register-status", role: "status", "aria-live": "polite" });
  const form = h(
    "form",
    { id: "register-form", novalidate: true, "aria-labelledby": "register-title" },
    h("h2", { id: "register-title", text: "Register a market" }),
    h("fieldset", {}, h("legend", { text: "Market and token" }),
      field("Name", c.name),
      field("Issuer id", c.issuerId, "Your own id; an admin may register for any issuer."),
      field("Asset type", c.assetType),
      field("Token symbol", c.tokenSymbol, "2 to 11 capital letters or digits, such as LUXAPT."),
      field("Token name", c.tokenName),
      field("Total supply", c.totalSupply, "Whole tokens, such as 1000000."),
      field("Entity id", c.entityId, "The entity in the Entity Permissions Core.")),
    h("fieldset", {}, h("legend", { text: "Asset details" }),
      field("Valuation", c.valuation, "A decimal such as 15000000 or 15000000.50."),
      field("Currency", c.currency, "ISO 4217, such as USD."),
      field("Location", c.location),
      field("Description", c.description),
      field("Compliance documents (JSON)", c.complianceDocuments, 'A JSON array of ids or {"name", "url", "sha256", "documentType"} objects.'),
      field("Regulatory information (JSON)", c.regulatoryInfo, 'A JSON object, such as {"jurisdiction": "US", "regulator": "SEC"}.'),
      field("Attributes (JSON)", c.attributes, "A JSON object; numbers are sent exactly as typed.")),
    h("details", {}, h("summary", { text: "Trading options (optional)" }),
      field("Tick size", c.tickSize, "Price step in the quote token, such as 0.01."),
      field("Lot size", c.lotSize, "Quantity step in tokens, such as 1."),
      field("Maker fee (bps)", c.makerFeeBps),
      field("Taker fee (bps)", c.takerFeeBps),
      h("div", { class: "field checkbox" }, c.accreditedInvestorsOnly, h("label", { for: c.accreditedInvestorsOnly.id, text: "Accredited investors only" })),
      field("Allowed countries", c.allowedCountries, "ISO 3166 alpha-2 codes, comma-separated; empty allows all.")),
    h("div", { class: "actions" }, h("button", { type: "submit", text: "Register market" })),
    formStatus,
  );

  const listStatus = h("p", { role: "status", "aria-live": "polite" });
  const listBox = h("div", { id: "issuer-markets" });
  const detail = h("div", { id: "market-detail", "aria-live": "polite" });
  const markets = h("section", { "aria-labelledby": "issuer-markets-title" },
    h("h2", { id: "issuer-markets-title", text: "Your markets" }), listStatus, listBox);
  const follow = h("section", { "aria-labelledby": "follow-title" },
    h("h2", { id: "follow-title", text: "Lifecycle" }), detail);

  replace(section, h("h1", { id: "issuer-title", text: "Issuer" }), h("div", { class: "columns" }, form, h("div", {}, follow, markets)));

  let followed = null;
  let pollTimer = null;
  let unsubscribe = null;
  let visible = false;

  function clearErrors() {
    for (const control of Object.values(c)) setFieldError(control, "");
  }

  function controlFor(name) {
    // "assetDetails.attributes.sqft" -> the attributes field; "asset.x" -> "assetDetails.x"
    const normalised = name.replace(/^asset\./, "assetDetails.");
    let best = null;
    for (const control of Object.values(c)) {
      const f = control.dataset.field;
      if (normalised === f || normalised.startsWith(`${f}.`) || normalised.startsWith(`${f}[`)) {
        if (!best || f.length > best.dataset.field.length) best = control;
      }
    }
    if (!best && normalised === "assetDetails") best = c.valuation;
    return best;
  }

  function jsonField(control, kind) {
    const text = control.value.trim();
    if (!text) return undefined;
    let parsed;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new FieldProblem(control, `Not valid JSON: ${err.message}`);
    }
    const ok = kind === "array" ? Array.isArray(parsed) : parsed !== null && typeof parsed === "object" && !Array.isArray(parsed);
    if (!ok) throw new FieldProblem(control, kind === "array" ? "Must be a JSON array" : "Must be a JSON object");
    return new RawJson(text);
  }

  function numberText(control) {
    const text = control.value.trim();
    return text === "" ? undefined : text;
  }

  function buildBody() {
    const v = (control) => {
      const text = control.value.trim();
      return text === "" ? undefined : text;
    };
    const assetDetails = {
      valuation: numberText(c.valuation),
      currency: v(c.currency),
      location: v(c.location),
      description: v(c.description),
      complianceDocuments: jsonField(c.complianceDocuments, "array"),
      regulatoryInfo: jsonField(c.regulatoryInfo, "object"),
      attributes: jsonField(c.attributes, "object"),
    };
    const fee = (control) => {
      const text = v(control);
      if (text === undefined) return undefined;
      if (!/^\d{1,5}$/.test(text)) throw new FieldProblem(control, "A whole number of basis points, 0 to 10000");
      return Number(text);
    };
    const countries = v(c.allowedCountries);
    return {
      name: v(c.name),
      issuerId: v(c.issuerId),
      assetType: c.assetType.value,
      tokenSymbol: v(c.tokenSymbol),
      tokenName: v(c.tokenName),
      totalSupply: numberText(c.totalSupply),
      entityId: v(c.entityId),
      assetDetails,
      tickSize: numberText(c.tickSize),
      lotSize: numberText(c.lotSize),
      makerFeeBps: fee(c.makerFeeBps),
      takerFeeBps: fee(c.takerFeeBps),
      accreditedInvestorsOnly: c.accreditedInvestorsOnly.checked ? true : undefined,
      allowedCountries: countries ? countries.split(",").map((s) => s.trim()).filter(Boolean) : undefined,
    };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    let body;
    try {
      body = buildBody();
    } catch (err) {
      if (err instanceof FieldProblem) {
        setFieldError(err.control, err.message);
        err.control.focus();
        say(formStatus, "Please correct the marked field.", "error");
        return;
      }
      throw err;
    }
    say(formStatus, "Registering…");
    try {
      const answer = await post("/markets/register", body);
      const market = answer.data.market;
      say(formStatus, `${answer.message || "Registered"}: ${market.name} (${market.tokenSymbol}), status ${market.status}.`, "ok");
      followMarket(market.id);
      refreshList();
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      const unplaced = [];
      let first = null;
      for (const [name, message] of Object.entries(err.fields)) {
        const control = controlFor(name);
        if (control) {
          setFieldError(control, control.dataset.field === name ? message : `${name}: ${message}`);
          first = first || control;
        } else unplaced.push(`${name}: ${message}`);
      }
      if (first) first.focus();
      say(formStatus, `Not registered. ${err.describe()}${unplaced.length ? ` (${unplaced.join("; ")})` : ""}`, "error");
    }
  });

  async function refreshList() {
    try {
      const answer = await get(`/markets${query({ issuerId: who.sub, limit: 50 })}`);
      const rows = answer.data.map((m) =>
        h("tr", { dataset: { marketId: m.id } },
          h("td", { text: m.name }), h("td", { text: m.tokenSymbol }),
          h("td", {}, h("span", { class: `status status-${m.status}`, text: m.status })),
          h("td", {}, h("button", { type: "button", class: "small", "aria-label": `Follow ${m.name}`, on: { click: () => followMarket(m.id) } }, "Follow"))));
      replace(listBox, rows.length ? table("Markets you registered, newest first", ["Name", "Symbol", "Status", ""], rows) : h("p", { text: "No markets yet." }));
      say(listStatus, "");
    } catch (err) {
      say(listStatus, `Could not load your markets: ${err.message}`, "error");
    }
  }

  // The followed market and its timeline: read over HTTP when followed (and after a snapshot
  // or a gap of the channel), then kept by the `markets` channel's updates: each event is
  // added to the timeline and moves the status (and, at activation, the contract address).
  let followedMarket = null;
  let followedEvents = [];

  async function renderFollowed() {
    if (!followed) {
      replace(detail, h("p", { text: "Register a market, or follow one of yours, to see its lifecycle here." }));
      return;
    }
    const id = followed;
    try {
      const [m, ev] = await Promise.all([get(`/markets/${enc(id)}`), get(`/markets/${enc(id)}/events?order=asc`)]);
      if (id !== followed) return;
      followedMarket = m.data;
      followedEvents = ev.data;
      drawFollowed();
    } catch (err) {
      replace(detail, h("p", { class: "error", text: `Could not load the market: ${err.message}` }));
    }
  }

  function drawFollowed() {
    const market = followedMarket;
    if (!market) return;
    const items = followedEvents.map((e) =>
      h("li", { dataset: { eventId: e.id } }, h("span", { class: "event-type", text: e.eventType }), " ",
        h("time", { datetime: e.createdAt, text: when(e.createdAt) }),
        ` by ${e.actorId || "system"} (${e.actorType || "?"})`,
        e.reason ? ` — ${e.reason}` : ""));
    const isLive = live.isLive({ channel: "markets" });
    detail.dataset.source = isLive ? "live" : "http";
    replace(detail,
      h("dl", { class: "facts" },
        h("dt", { text: "Market" }), h("dd", { text: `${market.name} (${market.tokenSymbol})` }),
        h("dt", { text: "Status" }), h("dd", {}, h("span", { id: "followed-status", class: `status status-${market.status}`, text: market.status })),
        h("dt", { text: "Contract address" }), h("dd", { id: "followed-contract", class: "mono", text: market.contractAddress || "not deployed yet" }),
        market.activationError ? [h("dt", { text: "Activation error" }), h("dd", { text: market.activationError })] : null,
        h("dt", { text: "Updates" }), h("dd", { id: "followed-updates", text: isLive ? "live (markets channel)" : `polled every ${POLL_MS / 1000} s` })),
      h("h3", { text: "Event timeline" }),
      h("ol", { id: "followed-events", class: "timeline" }, items));
  }

  function followMarket(id) {
    followed = id;
    followedMarket = null;
    followedEvents = [];
    renderFollowed();
  }

  // One lifecycle event of the channel on the followed market.
  function applyEvent(event) {
    if (!followedMarket || followedEvents.some((e) => e.id === event.id)) return;
    followedEvents = [...followedEvents, event];
    const status = EVENT_STATUS[event.eventType];
    if (status) followedMarket = { ...followedMarket, status };
    const meta = event.metadata || {};
    if (meta.contractAddress) followedMarket = { ...followedMarket, contractAddress: meta.contractAddress };
    if (event.eventType === "market.activated") followedMarket = { ...followedMarket, activationError: null };
    drawFollowed();
    // the event does not carry the deployment's error: the market is read for it
    if (event.eventType === "market.activation_failed") renderFollowed();
  }

  function applyToList(marketId, status) {
    const cell = listBox.querySelector(`tr[data-market-id="${CSS.escape(marketId)}"] .status`);
    if (!cell || !status) return false;
    cell.className = `status status-${status}`;
    cell.textContent = status;
    return true;
  }

  function onMarkets(frame) {
    if (frame.type === "update" && frame.event) {
      const event = frame.event;
      if (followed && event.marketId === followed) applyEvent(event);
      // a market of ours the list does not show yet (registered elsewhere): read the list
      if (!applyToList(event.marketId, EVENT_STATUS[event.eventType]) && event.eventType === "market.registered") refreshList();
    } else if (frame.type === "snapshot") {
      for (const m of frame.markets || []) {
        if (followedMarket && m.id === followed) followedMarket = { ...followedMarket, ...m };
        applyToList(m.id, m.status);
      }
      if (followed) renderFollowed(); // the timeline may have missed events while not live
    }
  }

  // The poll runs whenever the markets channel is not live: before it answers, while the
  // connection is down, or when the service does not offer it.
  function tick() {
    if (!visible) return;
    if (!live.isLive({ channel: "markets" })) {
      renderFollowed();
      refreshList();
    }
    pollTimer = setTimeout(tick, POLL_MS);
  }

  // the "Updates" line follows the connection: polled while it is down, live after a snapshot
  live.onState(() => {
    if (visible) drawFollowed();
  });

  return {
    show() {
      visible = true;
      if (!unsubscribe) unsubscribe = live.subscribe({ channel: "markets" }, onMarkets);
      renderFollowed();
      refreshList();
      clearTimeout(pollTimer);
      pollTimer = setTimeout(tick, POLL_MS);
    },
    hide() {
      visible = false;
      clearTimeout(pollTimer);
      if (unsubscribe) unsubscribe();
      unsubscribe = null;
    },
  };
}

class FieldProblem extends Error {
  constructor(control, message) {
    super(message);
    this.control = control;
  }
}
