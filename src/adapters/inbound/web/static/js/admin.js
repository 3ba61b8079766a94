// Admin: the approval queue (approve, or reject with a reason), every market with pause,
// resume, archive and a retried activation, compliance records per user, mints, withdrawals
// waiting for approval (every user's, and one user's), the latest reconciliation run with its drift, and the audit log.

import { ApiError, enc, get, post, query, tokenSymbol } from "./api.js";
import { field, h, replace, say, setFieldError, table, uid, when } from "./dom.js";
import { live } from "./live.js";

const POLL_MS = 3000;
const STATUSES = ["", "pending_approval", "approved", "activating", "active", "paused", "rejected", "archived"];
const ACTIONS_BY_STATUS = {
  approved: ["activate"],
  active: ["pause", "archive"],
  paused: ["resume", "archive"],
};

function describeError(err) {
  return err instanceof ApiError ? err.describe() : err.message;
}

export function mount(section, who) {
  const status = h("p", { id: "admin-status", role: "status", "aria-live": "polite" });

  // -- the approval queue ------------------------------------------------------------------
  const queueBox = h("div", { id: "approval-queue" });
  const queue = h("section", { "aria-labelledby": "queue-title" }, h("h2", { id: "queue-title", text: "Approval queue" }), queueBox);

  async function decide(market, decision, reasonInput) {
    const reason = reasonInput.value.trim();
    if (decision === "reject" && !reason) {
      setFieldError(reasonInput, "A rejection needs a reason.");
      reasonInput.focus();
      return;
    }
    setFieldError(reasonInput, "");
    try {
      const answer = await post(`/markets/${enc(market.id)}/approve`, { decision, reason: reason || undefined });
      say(status, `${answer.message || decision}: ${market.name} is ${answer.data.status}.`, "ok");
    } catch (err) {
      say(status, `${market.name}: ${describeError(err)}`, "error");
    }
    refresh();
  }

  async function loadQueue() {
    const answer = await get(`/markets${query({ status: "pending_approval", limit: 100 })}`);
    const rows = answer.data.map((m) => {
      const reason = h("input", { type: "text", id: uid("reason"), maxlength: 2000 });
      return h("tr", { dataset: { marketId: m.id } },
        h("td", { text: m.name }), h("td", { text: m.tokenSymbol }), h("td", { text: m.assetType }),
        h("td", { text: m.issuerId }), h("td", { text: m.totalSupply }),
        h("td", {}, h("label", { for: reason.id, class: "visually-hidden", text: `Reason for ${m.name}` }), reason,
          h("p", { class: "field-error", id: `${reason.id}-error` })),
        h("td", { class: "row-actions" },
          h("button", { type: "button", class: "small", "aria-label": `Approve ${m.name}`, on: { click: () => decide(m, "approve", reason) } }, "Approve"),
          h("button", { type: "button", class: "small danger", "aria-label": `Reject ${m.name}`, on: { click: () => decide(m, "reject", reason) } }, "Reject")));
    });
    replace(queueBox, rows.length
      ? table("Markets waiting for approval", ["Name", "Symbol", "Type", "Issuer", "Supply", "Reason", "Decision"], rows)
      : h("p", { text: "Nothing waits for approval." }));
  }

  // -- every market ------------------------------------------------------------------------
  const filter = h("select", { id: "markets-filter" }, STATUSES.map((s) => h("option", { value: s, text: s || "any status" })));
  const marketsBox = h("div", { id: "admin-markets" });
  const marketsSection = h("section", { "aria-labelledby": "markets-title" },
    h("h2", { id: "markets-title", text: "Markets" }), field("Status", filter), marketsBox);
  filter.addEventListener("change", () => loadMarkets());

  async function act(market, action) {
    try {
      const answer = await post(`/markets/${enc(market.id)}/${action}`, action === "activate" ? undefined : {});
      const m = answer.data && answer.data.status ? answer.data : null;
      say(status, `${action}: ${market.name}${m ? ` is ${m.status}` : " requested"}.`, "ok");
    } catch (err) {
      say(status, `${action} ${market.name}: ${describeError(err)}`, "error");
    }
    refresh();
  }

  async function loadMarkets() {
    const answer = await get(`/markets${query({ status: filter.value, limit: 100 })}`);
    const rows = answer.data.map((m) =>
      h("tr", { dataset: { marketId: m.id } },
        h("td", { text: m.name }), h("td", { text: m.tokenSymbol }),
        h("td", {}, h("span", { class: `status status-${m.status}`, text: m.status })),
        h("td", { class: "mono", text: m.contractAddress || "" }),
        h("td", { class: "row-actions" }, (ACTIONS_BY_STATUS[m.status] || []).map((a) =>
          h("button", { type: "button", class: a === "archive" ? "small danger" : "small", "aria-label": `${a} ${m.name}`, on: { click: () => act(m, a) } }, a)))));
    replace(marketsBox, rows.length ? table("Markets, newest first", ["Name", "Symbol", "Status", "Contract", "Actions"], rows) : h("p", { text: "No markets." }));
  }

  // -- compliance --------------------------------------------------------------------------
  const cUser = h("input", { id: "compliance-user", type: "text", required: true });
  const cKyc = h("select", { id: "compliance-kyc" }, ["APPROVED", "PENDING", "REJECTED", "EXPIRED"].map((s) => h("option", { value: s, text: s })));
  const cWhite = h("input", { id: "compliance-whitelisted", type: "checkbox", checked: true });
  const cAccredited = h("input", { id: "compliance-accredited", type: "checkbox" });
  const cJurisdiction = h("input", { id: "compliance-jurisdiction", type: "text", value: "US", maxlength: 2 });
  const cExpires = h("input", { id: "compliance-expires", type: "text", value: `${new Date().getUTCFullYear() + 1}-12-31T00:00:00Z` });
  const cToken = h("input", { id: "compliance-token", type: "text" });
  const cStatus = h("p", { role: "status", "aria-live": "polite" });
  const cRecords = h("div", { id: "compliance-records" });
  const complianceControls = { userId: cUser, kycStatus: cKyc, whitelisted: cWhite, accredited: cAccredited, jurisdiction: cJurisdiction, expiresAt: cExpires, tokenId: cToken };
  const complianceForm = h("form", { id: "compliance-form", novalidate: true },
    field("User id", cUser), field("KYC status", cKyc),
    h("div", { class: "field checkbox" }, cWhite, h("label", { for: cWhite.id, text: "Whitelisted" })),
    h("div", { class: "field checkbox" }, cAccredited, h("label", { for: cAccredited.id, text: "Accredited" })),
    field("Jurisdiction", cJurisdiction, "ISO 3166 alpha-2, such as US."),
    field("Expires at", cExpires, "ISO 8601 in UTC, such as 2027-12-31T00:00:00Z."),
    field("Token (optional)", cToken, "A token id or symbol for a token-specific record."),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "secondary", on: { click: () => loadCompliance() } }, "Show records"),
      h("button", { type: "submit" }, "Save record")),
    cStatus, cRecords);

  async function loadCompliance() {
    const user = cUser.value.trim();
    if (!user) {
      setFieldError(cUser, "Enter a user id.");
      return;
    }
    setFieldError(cUser, "");
    try {
      const answer = await get(`/tokens/compliance/${enc(user)}`);
      const rows = answer.data.map((r) => h("tr", {},
        h("td", { text: r.tokenId || "all tokens" }), h("td", { text: r.kycStatus }), h("td", { text: r.whitelisted ? "yes" : "no" }),
        h("td", { text: r.accredited ? "yes" : "no" }), h("td", { text: r.jurisdiction }), h("td", { text: when(r.expiresAt) }), h("td", { text: r.version })));
      replace(cRecords, rows.length ? table(`Compliance records of ${user}`, ["Token", "KYC", "Whitelisted", "Accredited", "Jurisdiction", "Expires", "Version"], rows) : h("p", { text: `${user} has no record.` }));
    } catch (err) {
      replace(cRecords, h("p", { class: "error", text: describeError(err) }));
    }
  }

  complianceForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const control of Object.values(complianceControls)) setFieldError(control, "");
    const user = cUser.value.trim();
    if (!user) {
      setFieldError(cUser, "Enter a user id.");
      return;
    }
    try {
      await post(`/tokens/compliance/${enc(user)}`, {
        kycStatus: cKyc.value, whitelisted: cWhite.checked, accredited: cAccredited.checked,
        jurisdiction: cJurisdiction.value.trim(), expiresAt: cExpires.value.trim(), tokenId: cToken.value.trim() || undefined,
      });
      say(cStatus, `Compliance record of ${user} saved.`, "ok");
      loadCompliance();
    } catch (err) {
      for (const [name, message] of Object.entries(err.fields || {})) if (complianceControls[name]) setFieldError(complianceControls[name], message);
      say(cStatus, describeError(err), "error");
    }
  });

  // -- mint --------------------------------------------------------------------------------
  const mToken = h("input", { id: "mint-token", type: "text", value: "USDC" });
  const mUser = h("input", { id: "mint-user", type: "text" });
  const mAmount = h("input", { id: "mint-amount", type: "text", inputmode: "decimal" });
  const mStatus = h("p", { role: "status", "aria-live": "polite" });
  const mintForm = h("form", { id: "mint-form", novalidate: true },
    field("Token", mToken, "Id or symbol."), field("User id", mUser), field("Amount", mAmount, "Whole tokens as a decimal, such as 1000.50."),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Mint")), mStatus);
  mintForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const control of [mToken, mUser, mAmount]) setFieldError(control, "");
    try {
      const answer = await post(`/tokens/${enc(mToken.value.trim())}/mint`, { userId: mUser.value.trim(), amount: mAmount.value.trim() },
        { headers: { "Idempotency-Key": crypto.randomUUID() } });
      say(mStatus, `Mint ${answer.data.id}: ${answer.data.amount} to ${answer.data.userId}, ${answer.data.status}.`, "ok");
    } catch (err) {
      const map = { userId: mUser, amount: mAmount };
      for (const [name, message] of Object.entries(err.fields || {})) if (map[name]) setFieldError(map[name], message);
      say(mStatus, describeError(err), "error");
    }
  });

  // -- withdrawals -------------------------------------------------------------------------
  const wUser = h("input", { id: "withdrawals-user", type: "text" });
  const wBox = h("div", { id: "admin-withdrawals" });
  const wStatus = h("p", { role: "status", "aria-live": "polite" });
  const pendingBox = h("div", { id: "pending-withdrawals" });
  const wForm = h("form", { id: "withdrawals-form", novalidate: true }, wStatus, pendingBox,
    h("h3", { text: "One user's withdrawals" }), field("User id", wUser),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Show withdrawals")), wBox);

  function decisionButtons(w) {
    return w.status === "PENDING_APPROVAL" ? [
      h("button", { type: "button", class: "small", "aria-label": `Approve withdrawal of ${w.amount} by ${w.userId}`, on: { click: () => decideWithdrawal(w, "approve") } }, "Approve"),
      h("button", { type: "button", class: "small danger", "aria-label": `Reject withdrawal of ${w.amount} by ${w.userId}`, on: { click: () => decideWithdrawal(w, "reject") } }, "Reject"),
    ] : null;
  }

  // Every user's withdrawals waiting for a decision (GET /withdrawals), oldest first.
  async function loadPendingWithdrawals() {
    try {
      const answer = await get(`/withdrawals${query({ status: "PENDING_APPROVAL", limit: 50 })}`);
      const names = await Promise.all(answer.data.map((w) => tokenSymbol(w.tokenId)));
      const rows = answer.data.map((w, i) => h("tr", { dataset: { withdrawalId: w.id } },
        h("td", { text: when(w.createdAt) }), h("td", { text: w.userId }), h("td", { text: names[i] }), h("td", { class: "num", text: w.amount }),
        h("td", { class: "mono", text: w.toAddress }), h("td", { class: "row-actions" }, decisionButtons(w))));
      const more = answer.pagination && answer.pagination.hasMore ? h("p", { class: "hint", text: "More are waiting: decide these first." }) : null;
      replace(pendingBox, rows.length ? table("Withdrawals waiting for approval, oldest first", ["Requested", "User", "Token", "Amount", "To", "Decision"], rows) : h("p", { text: "No withdrawal is waiting for approval." }), more);
    } catch (err) {
      replace(pendingBox, h("p", { class: "error", text: describeError(err) }));
    }
  }

  async function loadWithdrawals() {
    const user = wUser.value.trim();
    if (!user) return;
    try {
      const answer = await get(`/users/${enc(user)}/withdrawals${query({ limit: 50 })}`);
      const names = await Promise.all(answer.data.map((w) => tokenSymbol(w.tokenId)));
      const rows = answer.data.map((w, i) => h("tr", { dataset: { withdrawalId: w.id } },
        h("td", { text: when(w.createdAt) }), h("td", { text: names[i] }), h("td", { text: w.amount }),
        h("td", { class: "mono", text: w.toAddress }), h("td", { text: w.status }),
        h("td", { class: "row-actions" }, decisionButtons(w))));
      replace(wBox, rows.length ? table(`Withdrawals of ${user}`, ["Requested", "Token", "Amount", "To", "Status", "Decision"], rows) : h("p", { text: `${user} has no withdrawals.` }));
    } catch (err) {
      replace(wBox, h("p", { class: "error", text: describeError(err) }));
    }
  }

  async function decideWithdrawal(w, decision) {
    try {
      const answer = await post(`/withdrawals/${enc(w.id)}/${decision}`, undefined);
      say(wStatus, `Withdrawal ${w.id} ${answer.data.status}.`, "ok");
    } catch (err) {
      say(wStatus, describeError(err), "error");
    }
    loadWithdrawals();
    loadPendingWithdrawals();
  }
  wForm.addEventListener("submit", (event) => {
    event.preventDefault();
    loadWithdrawals();
  });

  // -- reconciliation: the latest run of `rwa-market reconcile` or the reconcile job --------
  const rBox = h("div", { id: "reconciliation", "aria-live": "polite" });
  const rSection = h("section", { "aria-labelledby": "reconciliation-title" },
    h("h2", { id: "reconciliation-title", text: "Reconciliation" }),
    h("p", { class: "hint", text: "The chain against the ledger, per holder address for market tokens and in total for the stablecoin. Amounts in base units." }),
    rBox,
    h("div", { class: "actions" }, h("button", { type: "button", class: "secondary", id: "reconciliation-refresh", on: { click: () => loadReconciliation() } }, "Show the latest run")));

  async function loadReconciliation() {
    try {
      const r = (await get("/reconciliation")).data;
      const summary = h("p", { id: "reconciliation-summary", class: r.driftCount ? "error" : "ok", dataset: { driftCount: String(r.driftCount) },
        text: `Last run ${when(r.at)}: ${r.tokens} tokens, ${r.accounts} accounts compared; ${r.driftCount ? `${r.driftCount} drift${r.driftCount === 1 ? "" : "s"}` : "no drift"}.` });
      const rows = r.drifts.map((d) => h("tr", { dataset: { symbol: d.symbol, difference: d.difference } },
        h("td", { text: d.symbol }), h("td", { text: d.scope }), h("td", { text: d.owner }), h("td", { class: "mono", text: d.address || "" }),
        h("td", { class: "num", text: d.ledger }), h("td", { class: "num", text: d.chain }), h("td", { class: "num", text: d.difference.startsWith("-") ? d.difference : `+${d.difference}` })));
      replace(rBox, summary, rows.length ? table("Drift of the latest run (chain minus ledger)", ["Token", "Scope", "Owner", "Address", "Ledger", "Chain", "Difference"], rows) : null);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) replace(rBox, h("p", { id: "reconciliation-summary", text: "No reconciliation run is recorded yet (run rwa-market reconcile, or set RWA_RECONCILE_SECONDS)." }));
      else replace(rBox, h("p", { class: "error", text: describeError(err) }));
    }
  }

  // -- audit log ---------------------------------------------------------------------------
  const aActor = h("input", { id: "audit-actor", type: "text" });
  const aAction = h("input", { id: "audit-action", type: "text", placeholder: "market.approve" });
  const aBox = h("div", { id: "audit-log" });
  const aForm = h("form", { id: "audit-form", novalidate: true }, field("Actor id", aActor), field("Action", aAction),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Show entries")), aBox);
  let auditCursor = null;

  async function loadAudit(more = false) {
    try {
      const answer = await get(`/audit${query({ actorId: aActor.value.trim(), action: aAction.value.trim(), limit: 50, cursor: more ? auditCursor : "" })}`);
      auditCursor = answer.pagination && answer.pagination.hasMore ? answer.pagination.nextCursor : null;
      const rows = answer.data.map((e) => h("tr", {},
        h("td", { text: when(e.at) }), h("td", { text: e.actorId }), h("td", { text: e.action }), h("td", { text: e.subject }),
        h("td", {}, h("code", { text: e.after === null ? "" : JSON.stringify(e.after) }))));
      const body = more && aBox.querySelector("tbody");
      if (body) body.append(...rows);
      else replace(aBox, table("Audit log, newest first", ["At", "Actor", "Action", "Subject", "After"], rows));
      aBox.querySelector(".more")?.remove();
      if (auditCursor) aBox.append(h("button", { type: "button", class: "secondary more", on: { click: () => loadAudit(true) } }, "More entries"));
    } catch (err) {
      replace(aBox, h("p", { class: "error", text: describeError(err) }));
    }
  }
  aForm.addEventListener("submit", (event) => {
    event.preventDefault();
    loadAudit(false);
  });

  replace(section,
    h("h1", { id: "admin-title", text: "Admin" }),
    status,
    queue,
    marketsSection,
    h("div", { class: "columns" },
      h("section", { "aria-labelledby": "compliance-title" }, h("h2", { id: "compliance-title", text: "Compliance records" }), complianceForm),
      h("section", { "aria-labelledby": "mint-title" }, h("h2", { id: "mint-title", text: "Mint" }), mintForm)),
    h("section", { "aria-labelledby": "withdrawals-title" }, h("h2", { id: "withdrawals-title", text: "Withdrawals to approve" }), wForm),
    rSection,
    h("section", { "aria-labelledby": "audit-title" }, h("h2", { id: "audit-title", text: "Audit log" }), aForm));

  let timer = null;
  let visible = false;
  let unsubscribe = null;

  async function refresh() {
    try {
      await Promise.all([loadQueue(), loadMarkets()]);
    } catch (err) {
      say(status, `Could not load markets: ${describeError(err)}`, "error");
    }
  }

  function tick() {
    if (!visible) return;
    if (!live.isLive({ channel: "markets" })) refresh();
    loadPendingWithdrawals(); // no channel carries withdrawals: read every few seconds
    timer = setTimeout(tick, POLL_MS);
  }

  return {
    show() {
      visible = true;
      if (!unsubscribe) unsubscribe = live.subscribe({ channel: "markets" }, (frame) => {
        if (frame.type === "update" || frame.type === "gap" || frame.type === "snapshot") refresh();
      });
      refresh();
      loadAudit(false);
      loadReconciliation();
      loadPendingWithdrawals();
      clearTimeout(timer);
      timer = setTimeout(tick, POLL_MS);
    },
    hide() {
      visible = false;
      clearTimeout(timer);
      if (unsubscribe) unsubscribe();
      unsubscribe = null;
    },
  };
}
