// Trader: a pair's book (depth, spread), recent trades and candles; the order ticket (limit,
// market, stop-limit, time in force, post-only) checked against tick and lot with exact
// decimal strings; open orders with cancel; fills; balances; the deposit address and
// withdrawals. The book, trades, open orders, fills and balances come from the WebSocket
// (book, trades, orders, fills, balances channels: a snapshot, then updates applied here); the
// chart is seeded over HTTP and kept by the candles channel, or by the trades channel where the
// service has no candles channel yet. While a channel is not live (before its snapshot, while
// the connection is down) its panel is read over HTTP every few seconds; each panel's
// data-source says which ("live" or "http").

import { ApiError, del, enc, get, post, query, tokenSymbol } from "./api.js";
import { Book, checksum } from "./book.js";
import { add, checkOrder, compare, isDecimal, multiply, subtract, trim } from "./decimal.js";
import { field, h, replace, say, setFieldError, table, uid, when } from "./dom.js";
import { LiveError, live } from "./live.js";

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
  return err instanceof ApiError || err instanceof LiveError ? err.describe() : err.message;
}

// An order op over the WebSocket when it is live (order.submit, order.cancel: the same checks
// and codes as HTTP, answered once durable), else, or when it got no answer, over HTTP. An
// order carries its clientOrderId, so a submit retried over HTTP returns the same order.
async function orderOp(frame, viaHttp) {
  if (live.state === "live") {
    try {
      const ack = await live.call(frame);
      return { order: ack.order, via: "WebSocket" };
    } catch (err) {
      if (!(err instanceof LiveError) || !err.unanswered) throw err;
    }
  }
  const answer = await viaHttp();
  return { order: answer.data, message: answer.message, via: "HTTP" };
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
    if (channelLive(bookParams())) return; // the channel is newer
    book.load(snapshot);
    markSource(bidsBox, "http");
    renderBook(`over HTTP every ${POLL_MS / 1000} s`);
  }

  function onBookFrame(frame) {
    if (frame.type === "snapshot") {
      book.load(frame);
      if (!book.verify(frame.checksum)) {
        live.resubscribe(bookParams());
        return;
      }
      markSource(bidsBox, "live");
      renderBook("live (book channel)");
    } else if (frame.type === "update") {
      if (!book.apply(frame)) {
        bookState.textContent = "Out of step with the live book: asking for a fresh snapshot";
        live.resubscribe(bookParams());
        return;
      }
      markSource(bidsBox, "live");
      renderBook("live (book channel)");
    } else if (frame.type === "gap") {
      live.resubscribe(bookParams());
    }
  }

  // -- the panels' data: seeded by a channel's snapshot, kept by its updates ------------------
  // (or, while a channel is not live, read over HTTP by the poll below)
  let trades = []; // the pair's trades, newest first
  const openOrders = new Map(); // id -> order, every pair
  let fills = []; // the user's fills, newest first
  let balances = [];
  let candles = []; // the chart's candles, oldest first, exact strings
  let candleSource = "";
  const TRADES_KEPT = 50;
  const OPEN = new Set(OPEN_STATUSES.split(","));

  function markSource(box, source) {
    box.dataset.source = source; // "live" (a WebSocket channel) or "http" (the fallback poll)
  }

  function renderTrades() {
    const rows = trades.map((t) => h("tr", { class: `side-${t.takerSide === "BUY" ? "buy" : "sell"}`, dataset: { price: t.price, quantity: t.quantity, tradeId: t.id } },
      h("td", { text: when(t.createdAt || t.executedAt) }), h("td", { class: "num", text: t.price }), h("td", { class: "num", text: t.quantity }), h("td", { text: t.takerSide })));
    replace(tradesBox, rows.length ? table(`Trades of ${pair.symbol}, newest first`, ["Time", "Price", "Quantity", "Taker"], rows) : h("p", { text: "No trades yet." }));
  }

  let newestTrade = null;
  async function loadTrades() {
    const answer = await get(`/trading/pairs/${enc(pair.symbol)}/trades${query({ limit: 30 })}`);
    if (channelLive({ channel: "trades", pair: pair.symbol })) return; // the channel is newer
    const newest = answer.data.length ? answer.data[0].id : "";
    // polling: a new trade on the pair may be one of ours, and moves the stats and the chart
    if (newestTrade !== null && newest !== newestTrade) {
      refreshAccount(false);
      loadStats().catch(() => {});
      loadCandles().catch(() => {});
    }
    newestTrade = newest;
    trades = answer.data;
    markSource(tradesBox, "http");
    renderTrades();
  }

  function onTradesFrame(frame) {
    if (frame.type === "snapshot") {
      trades = frame.trades.slice(0, TRADES_KEPT);
      newestTrade = trades.length ? trades[0].id : "";
    } else if (frame.type === "update" && frame.trade) {
      if (trades.some((t) => t.id === frame.trade.id)) return; // a repeat (at-least-once)
      trades = [frame.trade, ...trades].slice(0, TRADES_KEPT);
      newestTrade = frame.trade.id;
      if (!channelLive(candleParams())) foldTrade(frame.trade);
      if (!channelLive({ channel: "ticker", pair: pair.symbol })) statsSoon();
    } else return;
    markSource(tradesBox, "live");
    renderTrades();
  }

  let statsTimer = null;
  function statsSoon() {
    clearTimeout(statsTimer);
    statsTimer = setTimeout(() => loadStats().catch(() => {}), 200);
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
      const last = trades[0];
      stats.textContent = `${pair.symbol} (${pair.status}): ${last ? `last ${last.price}` : "no trades yet"}. Tick ${pair.tickSize}, lot ${pair.lotSize}.`;
      return;
    }
    if (channelLive({ channel: "ticker", pair: pair.symbol })) return; // the channel is newer
    markSource(stats, "http");
    showStats(s);
  }

  function showStats(s) {
    stats.textContent = s.last === null || s.last === undefined
      ? `${pair.symbol} (${pair.status}): no trades yet. Tick ${pair.tickSize}, lot ${pair.lotSize}.`
      : `${pair.symbol} (${pair.status}): last ${s.last}, 24 h change ${s.changePercent} %, high ${s.high}, low ${s.low}, volume ${s.volume}. Tick ${pair.tickSize}, lot ${pair.lotSize}.`;
  }

  function onTickerFrame(frame) {
    if ((frame.type === "snapshot" || frame.type === "update") && frame.ticker) {
      showStats(frame.ticker); // whole tickers: a newer one simply replaces the older
      markSource(stats, "live");
    }
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

  async function drawCandles() {
    await ensureChart();
    const interval = intervalSelect.value;
    // the chart library draws with numbers: display only, every amount sent stays a string
    candleSeries.setData(candles.map((c) => ({
      time: Math.floor(Date.parse(c.openTime) / 1000),
      open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close),
    })));
    const last = candles[candles.length - 1];
    const summary = last
      ? `${candles.length} candles of ${interval}${candleSource}; last opened ${when(last.openTime)}: open ${last.open}, high ${last.high}, low ${last.low}, close ${last.close}, volume ${last.volume}.`
      : `No ${interval} candles yet.`;
    chartNote.textContent = summary;
    chartBox.setAttribute("aria-label", `Candle chart of ${pair.symbol}: ${summary}`);
    chartBox.dataset.candles = String(candles.length);
  }

  // The chart's seed over HTTP (GET .../candles); live updates come from the candles channel
  // when the service has it, else each trade of the trades channel is folded in (foldTrade).
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
      const recent = (await get(`/trading/pairs/${enc(pair.symbol)}/trades${query({ limit: 100 })}`)).data;
      answer = { data: candlesFromTrades(recent, interval) };
      source = ` (built from the latest ${recent.length} trades)`;
    }
    if (interval !== intervalSelect.value || channelLive(candleParams())) return;
    candles = answer.data.map((c) => ({ ...c }));
    candleSource = source;
    markSource(chartBox, "http");
    await drawCandles();
  }

  // One trade of the trades channel into the chart, exactly (strings, BigInt arithmetic).
  function foldTrade(trade) {
    const size = SECONDS[intervalSelect.value] * 1000;
    const start = Math.floor(Date.parse(trade.executedAt || trade.createdAt) / size) * size;
    if (Number.isNaN(start)) return;
    const last = candles[candles.length - 1];
    const lastStart = last ? Date.parse(last.openTime) : null;
    if (last && lastStart === start) {
      if (compare(trade.price, last.high) > 0) last.high = trade.price;
      if (compare(trade.price, last.low) < 0) last.low = trade.price;
      last.close = trade.price;
      last.volume = add(last.volume, trade.quantity);
    } else if (!last || start > lastStart) {
      candles.push({ openTime: new Date(start).toISOString(), open: trade.price, high: trade.price, low: trade.price, close: trade.price, volume: trade.quantity });
    } else return; // older than the chart's last candle: the seed holds it
    drawCandles().catch(() => {});
  }

  let candleSeq = null;
  function onCandlesFrame(frame) {
    if (frame.interval && frame.interval !== intervalSelect.value) return;
    if (frame.type === "snapshot" && Array.isArray(frame.candles)) {
      candles = frame.candles.map((c) => ({ ...c }));
      candleSeq = typeof frame.seq === "number" ? frame.seq : null;
    } else if (frame.type === "update" && frame.candle) {
      // whole candles, one seq up per message: after a jump a candle may be missing entirely
      const first = typeof frame.fromSeq === "number" ? frame.fromSeq : frame.seq;
      if (candleSeq !== null && typeof first === "number" && first !== candleSeq + 1) {
        candleSeq = null;
        live.resubscribe(candleParams());
        return;
      }
      if (typeof frame.seq === "number") candleSeq = frame.seq;
      const i = candles.findIndex((c) => c.openTime === frame.candle.openTime);
      if (i >= 0) candles[i] = { ...frame.candle };
      else candles.push({ ...frame.candle });
      candles.sort((a, b) => Date.parse(a.openTime) - Date.parse(b.openTime));
    } else return;
    candleSource = " (live candles channel)";
    markSource(chartBox, "live");
    drawCandles().catch(() => {});
  }

  function renderOrders() {
    const shown = [...openOrders.values()].filter((o) => !pair || o.symbol === pair.symbol)
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
    const rows = shown.map((o) => h("tr", { dataset: { orderId: o.id } },
      h("td", { class: `side-${o.side.toLowerCase()}`, text: o.side }), h("td", { text: o.type }),
      h("td", { class: "num", text: o.price || "market" }), h("td", { class: "num", text: o.quantity || "" }),
      h("td", { class: "num", text: o.filledQuantity }), h("td", { text: o.status }),
      h("td", {}, h("button", { type: "button", class: "small danger", "aria-label": `Cancel ${o.side} ${o.quantity} at ${o.price || "market"}`, on: { click: () => cancel(o) } }, "Cancel"))));
    replace(ordersBox, rows.length ? table(`Your open orders on ${pair ? pair.symbol : "every pair"}`, ["Side", "Type", "Price", "Quantity", "Filled", "Status", ""], rows) : h("p", { text: "No open orders." }));
  }

  async function loadOrders() {
    const answer = await get(`/trading/users/${enc(me)}/orders${query({ status: OPEN_STATUSES, limit: 100 })}`);
    if (channelLive({ channel: "orders" })) return;
    openOrders.clear();
    for (const o of answer.data) openOrders.set(o.id, o);
    markSource(ordersBox, "http");
    renderOrders();
  }

  function onOrdersFrame(frame) {
    if (frame.type === "snapshot") {
      openOrders.clear();
      for (const o of frame.orders) openOrders.set(o.id, o);
    } else if (frame.type === "update" && frame.order) {
      const o = frame.order;
      const known = openOrders.get(o.id);
      if (known && Date.parse(known.updatedAt) > Date.parse(o.updatedAt)) return; // an older repeat
      if (OPEN.has(o.status)) openOrders.set(o.id, o);
      else openOrders.delete(o.id);
      balancesSoon(); // an order locks or unlocks funds
    } else return;
    markSource(ordersBox, "live");
    renderOrders();
  }

  async function cancel(order) {
    try {
      const done = await orderOp({ op: "order.cancel", orderId: order.id }, () => del(`/trading/orders/${enc(order.id)}`));
      say(orderStatus, `Order cancelled: ${done.order.side} ${done.order.quantity} at ${done.order.price} (${done.via}).`, "ok");
    } catch (err) {
      say(orderStatus, describeError(err), "error");
    }
    refreshAccount(false);
  }

  function renderFills() {
    const rows = fills.map((t) => h("tr", { dataset: { price: t.price, quantity: t.quantity } },
      h("td", { text: when(t.createdAt || t.executedAt) }), h("td", { text: t.symbol || "" }), h("td", { class: `side-${(t.side || "").toLowerCase()}`, text: t.side }),
      h("td", { class: "num", text: t.price }), h("td", { class: "num", text: t.quantity }), h("td", { text: (t.liquidity || "").toUpperCase() }), h("td", { class: "num", text: t.fee })));
    replace(fillsBox, rows.length ? table("Your fills, newest first", ["Time", "Pair", "Side", "Price", "Quantity", "Role", "Fee"], rows) : h("p", { text: "No fills yet." }));
  }

  async function loadFills() {
    const answer = await get(`/trading/users/${enc(me)}/trades${query({ limit: 30 })}`);
    if (channelLive({ channel: "fills" })) return;
    fills = answer.data;
    markSource(fillsBox, "http");
    renderFills();
  }

  const fillKey = (f) => `${f.id || f.tradeId}|${f.orderId || ""}`;
  function onFillsFrame(frame) {
    if (frame.type === "snapshot") {
      fills = frame.fills.slice(0, TRADES_KEPT);
    } else if (frame.type === "update" && frame.fill) {
      const pairId = (frame.stream || "").replace(/^pair:/, "");
      const of = pairs.find((p) => p.id === pairId);
      const fill = { ...frame.fill, id: frame.fill.tradeId, symbol: of ? of.symbol : "" };
      if (fills.some((f) => fillKey(f) === fillKey(fill))) return;
      fills = [fill, ...fills].slice(0, TRADES_KEPT);
      balancesSoon(); // a fill moves both tokens and the fee
    } else return;
    markSource(fillsBox, "live");
    renderFills();
  }

  function renderBalances() {
    const rows = balances.map((b) => h("tr", { dataset: { symbol: b.symbol } },
      h("th", { scope: "row", text: b.symbol }), h("td", { class: "num available", text: b.available }),
      h("td", { class: "num locked", text: b.locked }), h("td", { class: "num", text: b.total })));
    replace(balancesBox, rows.length ? table("Your balances", ["Token", "Available", "Locked", "Total"], rows) : h("p", { text: "No balances yet." }));
  }

  async function loadBalances() {
    const answer = await get(`/tokens/balances/${enc(me)}`);
    if (channelLive({ channel: "balances" })) return;
    balances = answer.data;
    markSource(balancesBox, "http");
    renderBalances();
  }

  // The balances channel sends the ledger's snapshot, and balance.* updates where a producer
  // emits them; an order or a fill of ours (orders, fills channels) asks it for a fresh
  // snapshot, over the same connection.
  let balancesTimer = null;
  function balancesSoon() {
    clearTimeout(balancesTimer);
    balancesTimer = setTimeout(() => live.refresh({ channel: "balances" }), 100);
  }

  function onBalancesFrame(frame) {
    if (frame.type === "snapshot" || (frame.type === "update" && Array.isArray(frame.balances))) {
      balances = frame.balances; // a snapshot, or an update holding every balance again
    } else if (frame.type === "update") {
      const d = frame.data || {};
      const i = balances.findIndex((b) => b.tokenId === d.tokenId);
      if (i >= 0 && isDecimal(d.available) && isDecimal(d.locked) && isDecimal(d.total)) {
        balances[i] = { ...balances[i], available: d.available, locked: d.locked, total: d.total };
      } else {
        balancesSoon(); // an update this page cannot apply: a fresh snapshot
        return;
      }
    } else return;
    markSource(balancesBox, "live");
    renderBalances();
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
    if (!channelLive({ channel: "balances" })) loadBalances().catch(() => {});
    else balancesSoon();
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
      const done = await orderOp({ op: "order.submit", ...body }, () => post("/trading/orders", body));
      const placed = done.order;
      const reason = placed.rejectReason ? ` (${placed.rejectReason})` : "";
      say(orderStatus, `${done.message || "Order placed"} (${done.via}): ${placed.side} ${placed.quantity || placed.quoteAmount} ${placed.type} — ${placed.status}${reason}, filled ${placed.filledQuantity}.`, placed.status === "REJECTED" ? "error" : "ok");
    } catch (err) {
      for (const [name, message] of Object.entries(err.fields || {})) if (controls[name]) setFieldError(controls[name], message);
      const byCode = { price_off_tick: price, too_many_decimals: quantity, quantity_off_lot: quantity, quantity_below_min: quantity, quantity_above_max: quantity, insufficient_funds: quantity, price_required: price, stop_price_required: stopPrice, post_only_not_gtc: tif };
      if (byCode[err.code]) setFieldError(byCode[err.code], err.message);
      say(orderStatus, `Not placed: ${describeError(err)}`, "error");
    }
    refreshAccount(false);
    refreshMarket(false);
  });

  // -- live channels and the poll ----------------------------------------------------------
  const bookParams = () => ({ channel: "book", pair: pair.symbol, depth: DEPTH });
  const candleParams = () => ({ channel: "candles", pair: pair.symbol, interval: intervalSelect.value });
  const channelLive = (params) => live.isLive(params);

  function errorsTo(box) {
    return (err) => replace(box, h("p", { class: "error", text: describeError(err) }));
  }

  // Every panel follows its channel; while a channel is not live (before its snapshot, while
  // the connection is down, or when the service does not offer it) the poll reads its REST
  // endpoint, keeping under the API's per-client rate limit: book and trades every tick,
  // stats every third, the account every second. force: read them all now.
  function refreshMarket(force = true, slow = true) {
    if (!pair) return;
    if (force || !channelLive(bookParams())) loadBookRest().catch(errorsTo(bidsBox));
    if (force || !channelLive({ channel: "trades", pair: pair.symbol })) loadTrades().catch(errorsTo(tradesBox));
    if (!slow) return;
    if (force || !channelLive({ channel: "ticker", pair: pair.symbol })) loadStats().catch(() => {});
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
      // the connection dropped: HTTP keeps the panels current until the fresh snapshots
      onDown: () => {
        markDown();
        refreshMarket();
        refreshAccount();
      },
    }));
    if (pair) {
      on(bookParams(), onBookFrame);
      on({ channel: "trades", pair: pair.symbol }, onTradesFrame);
      on({ channel: "ticker", pair: pair.symbol }, onTickerFrame);
      on(candleParams(), onCandlesFrame);
    }
    on({ channel: "orders" }, onOrdersFrame);
    on({ channel: "fills" }, onFillsFrame);
    on({ channel: "balances" }, onBalancesFrame);
  }

  function markDown() {
    for (const box of [bidsBox, tradesBox, ordersBox, fillsBox, balancesBox, chartBox, stats]) markSource(box, "http");
  }

  let ticks = 0;
  function tick() {
    if (!visible) return;
    ticks += 1;
    if (!pair && ticks % 3 === 0) loadPairs().catch(() => {});
    refreshMarket(false, ticks % 3 === 0);
    if (ticks % 2 === 0) refreshAccount(false);
    // balances also move without an order or a fill of ours (a mint, a deposit, a withdrawal
    // sent): while the channel carries no balance.* updates, a fresh snapshot every 10 s
    if (ticks % 5 === 0 && channelLive({ channel: "balances" })) live.refresh({ channel: "balances" });
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
      trades = [];
      candles = [];
      if (chartApi) candleSeries.setData([]);
      subscribeAll();
      if (pair) loadCandles().catch((err) => { chartNote.textContent = describeError(err); });
    }
    syncTicket();
    if (pair) renderOrders();
    refreshMarket(false);
    refreshAccount(false);
  }

  pairSelect.addEventListener("change", () => selectPair(pairSelect.value));
  pairSelect.addEventListener("focus", () => loadPairs().catch(() => {}));
  intervalSelect.addEventListener("change", () => {
    candles = [];
    subscribeAll();
    loadCandles().catch((err) => { chartNote.textContent = describeError(err); });
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
