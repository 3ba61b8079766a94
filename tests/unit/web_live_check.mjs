// Driven by test_web_live.py: node web_live_check.mjs <the web app's js folder>
const sockets = [];
class FakeSocket {
  static OPEN = 1;
  constructor(url) { this.url = url; this.sent = []; this.readyState = 0; this.listeners = {}; sockets.push(this); }
  addEventListener(type, fn) { (this.listeners[type] ||= []).push(fn); }
  emit(type, event = {}) { for (const fn of this.listeners[type] || []) fn(event); }
  send(text) { this.sent.push(JSON.parse(text)); }
  close() { this.readyState = 3; this.emit("close", {}); }
  open() { this.readyState = 1; this.emit("open"); }
  frame(obj) { this.emit("message", { data: JSON.stringify(obj) }); }
}
const store = new Map([["rwa.token", "a.b.c"]]);
globalThis.WebSocket = FakeSocket;
globalThis.location = { protocol: "http:", host: "127.0.0.1:8000" };
globalThis.sessionStorage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
const { pathToFileURL } = await import("node:url");
const { LiveSocket } = await import(pathToFileURL(`${process.argv[2]}/live.js`).href);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const live = new LiveSocket();
const states = [];
live.onState((s) => states.push(s));
const got = { markets: [], book: [], refused: [], downs: 0 };
live.subscribe({ channel: "markets" }, (f) => got.markets.push(f.type), { onDown: () => { got.downs += 1; } });
live.subscribe({ channel: "book", pair: "LUX-USDC", depth: 25 }, (f) => got.book.push([f.type, f.seq]),
  { onUnavailable: (code) => got.refused.push(code) });
live.start();
const first = sockets[0];
first.open();
const firstSent = first.sent.map((f) => [f.op, f.channel ?? null, f.token ?? null]);
const bookReq = first.sent.find((f) => f.channel === "book").reqId;
first.frame({ type: "subscribed", channel: "markets" });
first.frame({ type: "snapshot", channel: "markets", markets: [] });
first.frame({ type: "snapshot", channel: "book", pair: "pair-id-7", seq: 4, bids: [], asks: [] });
first.frame({ type: "update", channel: "book", pair: "pair-id-7", seq: 5, bids: [], asks: [] });
const liveBefore = [live.isLive({ channel: "markets" }), live.isLive({ channel: "book", pair: "LUX-USDC", depth: 25 })];
first.frame({ type: "error", reqId: bookReq, code: "channel_unavailable", message: "not yet" });
first.frame({ type: "heartbeat" });
first.close();
const liveAfterDrop = live.isLive({ channel: "markets" });
await sleep(700);
const second = sockets[1];
second.open();
const secondSent = second.sent.map((f) => [f.op, f.channel ?? null]);
second.frame({ type: "snapshot", channel: "markets", markets: [] });
// a refresh (the trader's balances after a fill): a fresh snapshot, live throughout
const sentBefore = second.sent.length;
live.refresh({ channel: "markets" });
const refreshSent = second.sent.slice(sentBefore).map((f) => [f.op, f.channel]);
second.frame({ type: "unsubscribed", channel: "markets" });
const liveDuringRefresh = live.isLive({ channel: "markets" });
second.frame({ type: "subscribed", channel: "markets" });
second.frame({ type: "snapshot", channel: "markets", markets: [] });
// ops with one answer: an ack resolves, an error frame rejects with its code, a stop fails
// what is still waiting
const acked = live.call({ op: "order.submit", side: "BUY" });
const ackReq = second.sent[second.sent.length - 1];
second.frame({ type: "ack", reqId: ackReq.reqId, order: { id: "o-1" } });
const refusedCall = live.call({ op: "order.cancel", orderId: "o-2" });
second.frame({ type: "error", reqId: second.sent[second.sent.length - 1].reqId, code: "order_not_open", message: "no" });
const waiting = live.call({ op: "order.cancel", orderId: "o-3" });
const calls = { sentOp: ackReq.op, ackedId: (await acked).order.id,
  refused: await refusedCall.then(() => null, (e) => [e.code, e.unanswered]) };
const downsBeforeStop = got.downs;
live.stop();
calls.lost = await waiting.then(() => null, (e) => [e.code, e.unanswered]);
calls.offline = await live.call({ op: "ping" }).then(() => null, (e) => e.code);
console.log(JSON.stringify({ calls, refreshSent, liveDuringRefresh, downsBeforeStop, url: first.url, states, got, firstSent, secondSent, liveBefore, liveAfterDrop,
  liveAgain: live.isLive({ channel: "markets" }), sockets: sockets.length }));
