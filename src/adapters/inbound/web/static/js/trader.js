// Trader: a pair's book (depth, spread), recent trades and candles; the order ticket (limit,
// market, stop-limit, time in force, post-only) checked against tick and lot with exact
// decimal strings; open orders with cancel; fills; balances; the deposit address and
// withdrawals. Each panel follows its WebSocket channel when the service offers it and the
// connection is up, and otherwise reads its REST endpoint every few seconds.

import { ApiError, del, enc, get, post, query, tokenSymbol } from "./api.js";
import { Book, checksum } from "./book.js";
import { add, checkOrder, compare, isDecimal, multiply, subtract, trim } from "./decimal.js";
import { field, h, replace, say, setFieldError, table, uid, when } from "./dom.js";
import { live } from "./live.js";

const POLL_MS = 2000;
const DEPTH = 25;
const INTERVALS = ["1m", "5m", "15m", "1h", "4h", "1d"];
const OPEN_STATUSES = "OPEN,PARTIALLY_FILLED,PENDING_TRIGGER";
const SECONDS = { "1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14400, "1d": 86400 };

// Candles of `interval` from trades (newest first, as the trades endpoint answers), with
// exact strings: used only when the service has no candles endpoint.
export function candlesFromTrades(trades, interval) {
  const size = SECONDS[interval] * 1000;
  const buckets = new Map();
  for (const t of [...trades].reverse()) {
    const start = Math.floor(Date.parse(t.createdAt) / size) * size;
    const c = buckets.get(start);
    if (!c) {
      buckets.set(start, { openTime: new Date(start).toISOString(), open: t.price, high: t.price, low: t.price, close: t.price, volume: t.quantity });
      continue;
    }
    if (compare(t.price, c.high) > 0) c.high = t.price;
    if (compare(t.price, c.low) < 0) c.low = t.price;
    c.close = t.price;
    c.volume = add(c.volume, t.quantity);
  }
  return [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
}

function describeError(err) {
  return err instanceof ApiError ? err.describe() : err.message;
}

function radio(name, value, label, checked) {
  const input = h("input", { type: "radio", name, value, id: uid(name), checked });
  return h("span", {}, input, h("label", { for: input.id, text: ` ${label}` }));
}

export function mount(section, who) {
  const me = who.sub;
  let pairs = [];
  let pair = null; // the selected pair object
  let visible = false;
  let timer = null;
  let subscriptions = [];
  let chartApi = null;
  let candleSeries = null;
  const book = new Book();
  // endpoints this service answered with a route 404 (not yet built): not asked again
  const missing = { stats: false, candles: false };

  // -- pair and market data -------------------------------------------------------------
  const pairSelect = h("select", { id: "pair-select" });
  const intervalSelect = h("select", { id: "candle-interval" }, INTERVALS.map((i) => h("option", { value: i, text: i })));
  const stats = h("p", { id: "pair-stats", "aria-live": "polite" });
  const bookState = h("p", { id: "book-state", class: "hint" });
  const spread = h("p", { id: "spread", class: "spread" });
  const bidsBox = h("div", { id: "book-bids" });
  const asksBox = h("div", { id: "book-asks" });
  const tradesBox = h("div", { id: "recent-trades" });
  const chartBox = h("div", { id: "candle-chart", class: "chart", role: "img", "aria-label": "Candle chart: no candles yet" });
  const chartNote = h("p", { id: "candle-summary", class: "hint" });

  // -- the order ticket -----------------------------------------------------------------
  const sideGroup = h("fieldset", { class: "radio-group" }, h("legend", { text: "Side" }),
    radio("order-side", "BUY", "Buy", true), radio("order-side", "SELL", "Sell", false));
  const type = h("select", { id: "order-type" }, [["LIMIT", "Limit"], ["MARKET", "Market"], ["STOP_LIMIT", "Stop-limit"]].map(([v, t]) => h("option", { value: v, text: t })));
  const price = h("input", { id: "order-price", type: "text", inputmode: "decimal", autocomplete: "off" });
  const stopPrice = h("input", { id: "order-stop-price", type: "text", inputmode: "decimal", autocomplete: "off" });
  const quantity = h("input", { id: "order-quantity", type: "text", inputmode: "decimal", autocomplete: "off" });
  const quoteAmount = h("input", { id: "order-quote-amount", type: "text", inputmode: "decimal", autocomplete: "off" });
  const tif = h("select", { id: "order-tif" }, [["GTC", "Good till cancelled"], ["IOC", "Immediate or cancel"], ["FOK", "Fill or kill"]].map(([v, t]) => h("option", { value: v, text: t })));
  const postOnly = h("input", { id: "order-post-only", type: "checkbox" });
  const notional = h("p", { id: "order-notional", class: "hint", "aria-live": "polite" });
  const orderStatus = h("p", { id: "order-status", role: "status", "aria-live": "polite" });
  const controls = { price, stopPrice, quantity, quoteAmount, timeInForce: tif, postOnly, type };
  const priceField = field("Price", price);
  const stopField = field("Stop price", stopPrice, "The order enters the book when the last trade reaches it.");
  const fundsField = field("Funds (market buy)", quoteAmount, "Optional instead of quantity: the most to spend, fee included.");
  const ticket = h("form", { id: "order-ticket", novalidate: true, "aria-labelledby": "ticket-title" },
    h("h2", { id: "ticket-title", text: "Order ticket" }),
    sideGroup, field("Type", type), priceField, stopField, field("Quantity", quantity), fundsField,
    field("Time in force", tif),
    h("div", { class: "field checkbox" }, postOnly, h("label", { for: postOnly.id, text: "Post-only (maker only)" })),
    h("p", { class: "field-error", id: `${postOnly.id}-error` }),
    notional,
    h("div", { class: "actions" }, h("button", { type: "submit", id: "order-submit" }, "Place order")),
    orderStatus);
  postOnly.setAttribute("aria-describedby", `${postOnly.id}-error`);

  // -- account ---------------------------------------------------------------------------
  const ordersBox = h("div", { id: "open-orders" });
  const fillsBox = h("div", { id: "fills" });
  const balancesBox = h("div", { id: "balances" });
  const walletBox = h("div", { id: "deposit-address" });
  const wToken = h("input", { id: "withdraw-token", type: "text" });
  const wAmount = h("input", { id: "withdraw-amount", type: "text", inputmode: "decimal" });
  const wAddress = h("input", { id: "withdraw-address", type: "text", spellcheck: "false" });
  const wStatus = h("p", { role: "status", "aria-live": "polite" });
  const withdrawalsBox = h("div", { id: "withdrawals" });
  const wForm = h("form", { id: "withdraw-form", novalidate: true },
    field("Token", wToken, "Id or symbol."), field("Amount", wAmount), field("To address", wAddress, "0x followed by 40 hex digits."),
    h("div", { class: "actions" }, h("button", { type: "submit" }, "Request withdrawal")), wStatus, withdrawalsBox);

  replace(section,
    h("h1", { id: "trader-title", text: "Trader" }),
    h("div", { class: "panel" }, field("Pair", pairSelect), stats),
    h("div", { class: "columns" },
      h("section", { "aria-labelledby": "book-title" }, h("h2", { id: "book-title", text: "Order book" }), spread, bookState,
        h("div", { class: "book" }, bidsBox, asksBox)),
      h("section", { "aria-labelledby": "chart-title" }, h("h2", { id: "chart-title", text: "Candles" }), field("Interval", intervalSelect), chartBox, chartNote),
      ticket),
    h("div", { class: "columns wide" },
      h("section", { "aria-labelledby": "trades-title" }, h("h2", { id: "trades-title", text: "Recent trades" }), tradesBox),
      h("section", { "aria-labelledby": "orders-title" }, h("h2", { id: "orders-title", text: "Open orders" }), ordersBox),
      h("section", { "aria-labelledby": "fills-title" }, h("h2", { id: "fills-title", text: "Your fills" }), fillsBox)),
    h("div", { class: "columns" },
      h("section", { "aria-labelledby": "balances-title" }, h("h2", { id: "balances-title", text: "Balances" }), balancesBox),
      h("section", { "aria-labelledby": "wallet-title" }, h("h2", { id: "wallet-title", text: "Deposit address" }), walletBox),
      h("section", { "aria-labelledby": "withdraw-title" }, h("h2", { id: "withdraw-title", text: "Withdrawals" }), wForm)));

  // -- rendering ---------------------------------------------------------------------------
  function renderBook(source) {
    const { bids, asks } = book.sorted();
    const row = (side) => ([p, s]) => h("tr", { class: `side-${side}`, dataset: { price: p, size: s } }, h("td", { class: "num", text: p }), h("td", { class: "num", text: s }));
    replace(bidsBox, table(`Bids (buyers), ${bids.length} levels`, ["Price", "Size"], bids.slice(0, DEPTH).map(row("buy"))));
    replace(asksBox, table(`Asks (sellers), ${asks.length} levels`, ["Price", "Size"], asks.slice(0, DEPTH).map(row("sell"))));
    if (bids.length && asks.length) spread.textContent = `Spread ${subtract(asks[0][0], bids[0][0])} (best bid ${bids[0][0]}, best ask ${asks[0][0]})`;
    else spread.textContent = "Spread: no two-sided market";
    bookState.textContent = `Sequence ${book.seq ?? "?"}, checksum verified, ${source}`;
  }

  async function loadBookRest() {
    const answer = await get(`/trading/pairs/${enc(pair.symbol)}/orderbook${query({ depth: 100 })}`);
    const snapshot = answer.data;
    const sortedAsks = snapshot.asks;
    if (checksum(sortedAsks, snapshot.bids) !== Number(snapshot.checksum)) {
      bookState.textContent = "The book's checksum did not match: reloading";
      return;
    }
    book.load(snapshot);
    renderBook(`over HTTP every ${POLL_MS / 1000} s`);
  }

  function onBookFrame(frame) {
    if (frame.type === "snapshot") {
      book.load(frame);
      if (!book.verify(frame.checksum)) {
        live.resubscribe(bookParams());
        return;
      }
      renderBook("live (book channel)");
    } else if (frame.type === "update") {
      if (!book.apply(frame)) {
        bookState.textContent = "Out of step with the live book: asking for a fresh snapshot";
        live.resubscribe(bookParams());
        return;
      }
      renderBook("live (book channel)");
    } else if (frame.type === "gap") {
      live.resubscribe(bookParams());
    }
  }

  let newestTrade = null;
  async function loadTrades() {
    const answer = await get(`/trading/pairs/${enc(pair.symbol)}/trades${query({ limit: 30 })}`);
    const newest = answer.data.length ? answer.data[0].id : "";
    // a new trade on the pair may be one of ours: orders, fills and balances are read again
    // (the balances channel carries ledger events, which a fill need not be announced by)
    if (newestTrade !== null && newest !== newestTrade) {
      refreshAccount();
      loadStats().catch(() => {});
      loadCandles().catch(() => {});
    }
    newestTrade = newest;
    const rows = answer.data.map((t) => h("tr", { class: `side-${t.takerSide === "BUY" ? "buy" : "sell"}`, dataset: { price: t.price, quantity: t.quantity } },
      h("td", { text: when(t.createdAt) }), h("td", { class: "num", text: t.price }), h("td", { class: "num", text: t.quantity }), h("td", { text: t.takerSide })));
    replace(tradesBox, rows.length ? table(`Trades of ${pair.symbol}, newest first`, ["Time", "Price", "Quantity", "Taker"], rows) : h("p", { text: "No trades yet." }));
  }

  async function loadStats() {
    let s = null;
    try {
      if (!missing.stats) s = (await get(`/trading/pairs/${enc(pair.symbol)}/stats`)).data;
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404 || err.code !== "not_found") throw err;
      missing.stats = true;
    }
    if (s === null) {
      // no stats endpoint on this service: the last trade is the news
      const last = (await get(`/trading/pairs/${enc(pair.symbol)}/trades${query({ limit: 1 })}`)).data[0];
      stats.textContent = `${pair.symbol} (${pair.status}): ${last ? `last ${last.price}` : "no trades yet"}. Tick ${pair.tickSize}, lot ${pair.lotSize}.`;
      return;
    }
    stats.textContent = s.last === null
      ? `${pair.symbol} (${pair.status}): no trades yet. Tick ${pair.tickSize}, lot ${pair.lotSize}.`
      : `${pair.symbol} (${pair.status}): last ${s.last}, 24 h change ${s.changePercent} %, high ${s.high}, low ${s.low}, volume ${s.volume}. Tick ${pair.tickSize}, lot ${pair.lotSize}.`;
  }

  async function ensureChart() {
    if (chartApi) return;
    const lib = await import("../vendor/lightweight-charts.standalone.production.mjs");
    chartApi = lib.createChart(chartBox, {
      autoSize: true,
      layout: { attributionLogo: false, textColor: "#1a1a1a", background: { color: "#ffffff" } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
    candleSeries = chartApi.addSeries(lib.CandlestickSeries, { upColor: "#1b6e20", downColor: "#a4161a", borderVisible: false, wickUpColor: "#1b6e20", wickDownColor: "#a4161a" });
  }

  async function loadCandles() {
    const interval = intervalSelect.value;
    let answer = null;
    let source = "";
    try {
      if (!missing.candles) answer = await get(`/trading/pairs/${enc(pair.symbol)}/candles${query({ interval, limit: 500 })}`);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 404 || err.code !== "not_found") throw err;
      missing.candles = true;
    }
    if (answer === null) {
      // this service has no candles endpoint: the chart is built from the latest trades
      const trades = (await get(`/trading/pairs/${enc(pair.symbol)}/trades${query({ limit: 100 })}`)).data;
      answer = { data: candlesFromTrades(trades, interval) };
      source = ` (built from the latest ${trades.length} trades)`;
    }
    await ensureChart();
    // the chart library draws with numbers: display only, every amount sent stays a string
    candleSeries.setData(answer.data.map((c) => ({
      time: Math.floor(Date.parse(c.openTime) / 1000),
      open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close),
    })));
    const last = answer.data[answer.data.length - 1];
    const summary = last
      ? `${answer.data.length} candles of ${interval}${source}; last opened ${when(last.openTime)}: open ${last.open}, high ${last.high}, low ${last.low}, close ${last.close}, volume ${last.volume}.`
      : `No ${interval} candles yet.`;
    chartNote.textContent = summary;
    chartBox.setAttribute("aria-label", `Candle chart of ${pair.symbol}: ${summary}`);
    chartBox.dataset.candles = String(answer.data.length);
  }

  async function loadOrders() {
    const answer = await get(`/trading/users/${enc(me)}/orders${query({ status: OPEN_STATUSES, pair: pair ? pair.symbol : "", limit: 50 })}`);
    const rows = answer.data.map((o) => h("tr", { dataset: { orderId: o.id } },
      h("td", { class: `side-${o.side.toLowerCase()}`, text: o.side }), h("td", { text: o.type }),
      h("td", { class: "num", text: o.price || "market" }), h("td", { class: "num", text: o.quantity || "" }),
      h("td", { class: "num", text: o.filledQuantity }), h("td", { text: o.status }),
      h("td", {}, h("button", { type: "button", class: "small danger", "aria-label": `Cancel ${o.side} ${o.quantity} at ${o.price || "market"}`, on: { click: () => cancel(o) } }, "Cancel"))));
    replace(ordersBox, rows.length ? table(`Your open orders on ${pair ? pair.symbol : "every pair"}`, ["Side", "Type", "Price", "Quantity", "Filled", "Status", ""], rows) : h("p", { text: "No open orders." }));
  }

  async function cancel(order) {
    try {
      const answer = await del(`/trading/orders/${enc(order.id)}`);
      say(orderStatus, `Order cancelled: ${answer.data.side} ${answer.data.quantity} at ${answer.data.price}.`, "ok");
    } catch (err) {
      say(orderStatus, describeError(err), "error");
    }
    refreshAccount();
  }

  async function loadFills() {
    const answer = await get(`/trading/users/${enc(me)}/trades${query({ limit: 30 })}`);
    const rows = answer.data.map((t) => h("tr", { dataset: { price: t.price, quantity: t.quantity } },
      h("td", { text: when(t.createdAt) }), h("td", { text: t.symbol }), h("td", { class: `side-${(t.side || "").toLowerCase()}`, text: t.side }),
      h("td", { class: "num", text: t.price }), h("td", { class: "num", text: t.quantity }), h("td", { text: t.liquidity }), h("td", { class: "num", text: t.fee })));
    replace(fillsBox, rows.length ? table("Your fills, newest first", ["Time", "Pair", "Side", "Price", "Quantity", "Role", "Fee"], rows) : h("p", { text: "No fills yet." }));
  }

  async function loadBalances() {
    const answer = await get(`/tokens/balances/${enc(me)}`);
    const rows = answer.data.map((b) => h("tr", { dataset: { symbol: b.symbol } },
      h("th", { scope: "row", text: b.symbol }), h("td", { class: "num available", text: b.available }),
      h("td", { class: "num locked", text: b.locked }), h("td", { class: "num", text: b.total })));
    replace(balancesBox, rows.length ? table("Your balances", ["Token", "Available", "Locked", "Total"], rows) : h("p", { text: "No balances yet." }));
  }

  async function loadWallet() {
    try {
      const w = (await get(`/users/${enc(me)}/wallet`)).data;
      replace(walletBox, h("dl", { class: "facts" },
        h("dt", { text: "Address" }), h("dd", { class: "mono", id: "wallet-address", text: w.address }),
        h("dt", { text: "Custody" }), h("dd", { text: w.custody === "platform" ? "held by the platform" : "your own wallet" }),
        h("dt", { text: "Verified on chain" }), h("dd", { text: w.verifiedOnChain ? "yes" : "not yet" })),
      h("p", { class: "hint", text: "Send the quote stablecoin or your tokens to this address; deposits count after the chain's confirmations." }));
    } catch (err) {
      replace(walletBox, h("p", { class: "error", text: describeError(err) }));
    }
  }

  async function loadWithdrawals() {
    const answer = await get(`/users/${enc(me)}/withdrawals${query({ limit: 20 })}`);
    const names = await Promise.all(answer.data.map((w) => tokenSymbol(w.tokenId)));
    const rows = answer.data.map((w, i) => h("tr", { dataset: { withdrawalId: w.id } }, h("td", { text: when(w.createdAt) }),
      h("td", { text: names[i] }), h("td", { class: "num", text: w.amount }),
      h("td", { class: "mono", text: w.toAddress }), h("td", { text: w.status })));
    replace(withdrawalsBox, rows.length ? table("Your withdrawals", ["Requested", "Token", "Amount", "To", "Status"], rows) : h("p", { text: "No withdrawals." }));
  }

  wForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const map = { tokenId: wToken, amount: wAmount, toAddress: wAddress };
    for (const control of Object.values(map)) setFieldError(control, "");
    if (!isDecimal(wAmount.value.trim())) {
      setFieldError(wAmount, "A plain decimal such as 10.5");
      return;
    }
    try {
      const answer = await post("/withdrawals", { tokenId: wToken.value.trim(), amount: wAmount.value.trim(), toAddress: wAddress.value.trim() });
      say(wStatus, `Withdrawal of ${answer.data.amount} requested: ${answer.data.status}.`, "ok");
    } catch (err) {
      for (const [name, message] of Object.entries(err.fields || {})) if (map[name]) setFieldError(map[name], message);
      if (err.code === "invalid_amount" || err.code === "insufficient_funds") setFieldError(wAmount, err.message);
      if (err.code === "invalid_address") setFieldError(wAddress, err.message);
      say(wStatus, describeError(err), "error");
    }
    loadWithdrawals().catch(() => {});
    loadBalances().catch(() => {});
  });

  // -- the ticket --------------------------------------------------------------------------
  function currentOrder() {
    return {
      side: section.querySelector('input[name="order-side"]:checked').value,
      type: type.value,
      price: price.value.trim(),
      stopPrice: stopPrice.value.trim(),
      quantity: quantity.value.trim(),
      quoteAmount: quoteAmount.value.trim(),
      timeInForce: tif.value,
      postOnly: postOnly.checked,
    };
  }

  function syncTicket() {
    const o = currentOrder();
    priceField.hidden = o.type === "MARKET";
    stopField.hidden = o.type !== "STOP_LIMIT";
    fundsField.hidden = !(o.type === "MARKET" && o.side === "BUY");
    if (pair && o.type !== "MARKET" && isDecimal(o.price) && isDecimal(o.quantity)) {
      notional.textContent = `Notional ${trim(multiply(o.price, o.quantity))} ${pair.symbol.split("-")[1]} before fees`;
    } else notional.textContent = "";
  }
  for (const el of [type, price, quantity, ...sideGroup.querySelectorAll("input")]) {
    el.addEventListener("input", syncTicket);
    el.addEventListener("change", syncTicket);
  }

  ticket.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const control of Object.values(controls)) setFieldError(control, "");
    if (!pair) {
      say(orderStatus, "Choose a pair first.", "error");
      return;
    }
    const o = currentOrder();
    const errors = checkOrder(pair, o);
    const names = Object.keys(errors);
    if (names.length) {
      for (const name of names) setFieldError(controls[name], errors[name]);
      controls[names[0]].focus();
      say(orderStatus, "Please correct the marked fields.", "error");
      return;
    }
    const byFunds = o.type === "MARKET" && o.side === "BUY" && o.quoteAmount;
    const body = {
      tradingPairId: pair.symbol,
      side: o.side,
      type: o.type,
      price: o.type === "MARKET" ? undefined : o.price,
      stopPrice: o.type === "STOP_LIMIT" ? o.stopPrice : undefined,
      quantity: byFunds ? undefined : o.quantity,
      quoteAmount: byFunds ? o.quoteAmount : undefined,
      timeInForce: o.timeInForce,
      postOnly: o.postOnly || undefined,
      clientOrderId: `web-${crypto.randomUUID()}`,
    };
    say(orderStatus, "Placing…");
    try {
      const answer = await post("/trading/orders", body);
      const placed = answer.data;
      const reason = placed.rejectReason ? ` (${placed.rejectReason})` : "";
      say(orderStatus, `${answer.message || "Order placed"}: ${placed.side} ${placed.quantity || placed.quoteAmount} ${placed.type} — ${placed.status}${reason}, filled ${placed.filledQuantity}.`, placed.status === "REJECTED" ? "error" : "ok");
    } catch (err) {
      for (const [name, message] of Object.entries(err.fields || {})) if (controls[name]) setFieldError(controls[name], message);
      const byCode = { price_off_tick: price, too_many_decimals: quantity, quantity_off_lot: quantity, quantity_below_min: quantity, quantity_above_max: quantity, insufficient_funds: quantity, price_required: price, stop_price_required: stopPrice, post_only_not_gtc: tif };
      if (byCode[err.code]) setFieldError(byCode[err.code], err.message);
      say(orderStatus, `Not placed: ${describeError(err)}`, "error");
    }
    refreshAccount();
    refreshMarket();
  });

  // -- live channels and the poll ----------------------------------------------------------
  const bookParams = () => ({ channel: "book", pair: pair.symbol, depth: DEPTH });
  const channelLive = (params) => live.isLive(params);

  function errorsTo(box) {
    return (err) => replace(box, h("p", { class: "error", text: describeError(err) }));
  }

  // Polling keeps under the API's per-client rate limit: the book and trades every tick,
  // stats and candles every third (and at once after a new trade), the account every second.
  function refreshMarket(force = true, slow = true) {
    if (!pair) return;
    if (force || !channelLive(bookParams())) loadBookRest().catch(errorsTo(bidsBox));
    if (force || !channelLive({ channel: "trades", pair: pair.symbol })) loadTrades().catch(errorsTo(tradesBox));
    if (!slow) return;
    if (force || !channelLive({ channel: "ticker", pair: pair.symbol })) loadStats().catch(() => {});
    if (force || !channelLive({ channel: "candles", pair: pair.symbol, interval: intervalSelect.value })) loadCandles().catch((err) => {
      chartNote.textContent = describeError(err);
    });
  }

  function refreshAccount(force = true) {
    if (force || !channelLive({ channel: "orders" })) loadOrders().catch(errorsTo(ordersBox));
    if (force || !channelLive({ channel: "fills" })) loadFills().catch(errorsTo(fillsBox));
    if (force || !channelLive({ channel: "balances" })) loadBalances().catch(errorsTo(balancesBox));
  }

  function subscribeAll() {
    for (const off of subscriptions) off();
    subscriptions = [];
    const on = (params, handler) => subscriptions.push(live.subscribe(params, handler, {
      onDown: () => {
        refreshMarket();
        refreshAccount();
      },
    }));
    if (pair) {
      on(bookParams(), onBookFrame);
      on({ channel: "trades", pair: pair.symbol }, () => loadTrades().catch(errorsTo(tradesBox)));
      on({ channel: "ticker", pair: pair.symbol }, () => loadStats().catch(() => {}));
      on({ channel: "candles", pair: pair.symbol, interval: intervalSelect.value }, () => loadCandles().catch(() => {}));
    }
    on({ channel: "orders" }, () => loadOrders().catch(errorsTo(ordersBox)));
    on({ channel: "fills" }, () => loadFills().catch(errorsTo(fillsBox)));
    on({ channel: "balances" }, () => loadBalances().catch(errorsTo(balancesBox)));
  }

  let ticks = 0;
  function tick() {
    if (!visible) return;
    ticks += 1;
    if (!pair && ticks % 3 === 0) loadPairs().catch(() => {});
    refreshMarket(false, ticks % 3 === 0);
    if (ticks % 2 === 0) refreshAccount(false);
    timer = setTimeout(tick, POLL_MS);
  }

  async function loadPairs() {
    const answer = await get("/trading/pairs");
    pairs = answer.data;
    const chosen = pair ? pair.symbol : pairSelect.value;
    replace(pairSelect, pairs.length ? pairs.map((p) => h("option", { value: p.symbol, text: `${p.symbol} (${p.status})` })) : h("option", { value: "", text: "no pairs yet" }));
    const keep = pairs.find((p) => p.symbol === chosen) || pairs[pairs.length - 1] || null;
    if (keep) pairSelect.value = keep.symbol;
    selectPair(keep ? keep.symbol : "");
  }

  function selectPair(symbol) {
    const next = pairs.find((p) => p.symbol === symbol) || null;
    const changed = (next && next.symbol) !== (pair && pair.symbol);
    pair = next;
    if (changed) {
      book.reset();
      newestTrade = null;
      if (chartApi) candleSeries.setData([]);
      subscribeAll();
    }
    syncTicket();
    refreshMarket();
    refreshAccount();
  }

  pairSelect.addEventListener("change", () => selectPair(pairSelect.value));
  pairSelect.addEventListener("focus", () => loadPairs().catch(() => {}));
  intervalSelect.addEventListener("change", () => {
    subscribeAll();
    loadCandles().catch(() => {});
  });

  return {
    show() {
      visible = true;
      subscribeAll();
      loadPairs().catch((err) => say(stats, `Could not load pairs: ${describeError(err)}`, "error"));
      loadWallet();
      loadWithdrawals().catch(errorsTo(withdrawalsBox));
      clearTimeout(timer);
      timer = setTimeout(tick, POLL_MS);
    },
    hide() {
      visible = false;
      clearTimeout(timer);
      for (const off of subscriptions) off();
      subscriptions = [];
    },
  };
}
