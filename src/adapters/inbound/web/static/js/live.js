// The WebSocket at /api/v1/ws: one connection for the page, authenticated with the signed-in
// token, that keeps its subscriptions across drops. On every (re)connect it authenticates,
// subscribes again and so receives a fresh snapshot of each channel. A channel the service
// does not offer (yet) is reported to its subscriber, which then reads the REST endpoints.
// The state (connecting, live, reconnecting, offline) is shown by whoever listens to onState.

import { getToken } from "./session.js";

const HEARTBEAT_TIMEOUT_MS = 15000;
const MAX_BACKOFF_MS = 10000;
const CALL_TIMEOUT_MS = 15000;

// The answer of an op refused by the service ({type: "error", code, message}), or an op that
// got no answer: code not_connected, connection_lost or timeout (the caller may retry it over
// HTTP; an order carries its clientOrderId, so a retry returns the same order).
export class LiveError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
    this.unanswered = ["not_connected", "connection_lost", "timeout"].includes(code);
  }

  describe() {
    return `${this.code}: ${this.message}`;
  }
}

export class LiveSocket {
  constructor(path = "/api/v1/ws") {
    this.url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
    this.subs = new Map(); // key -> {params, handler, onUnavailable, live}
    this.pending = new Map(); // reqId -> key
    this.calls = new Map(); // reqId -> {resolve, reject, timer}: ops waiting for their answer
    this.stateListeners = new Set();
    this.state = "offline";
    this.attempt = 0;
    this.nextReq = 1;
    this.socket = null;
    this.watchdog = null;
    this.retryTimer = null;
    this.stopped = true;
  }

  onState(listener) {
    this.stateListeners.add(listener);
    listener(this.state, this);
  }

  setState(state) {
    this.state = state;
    for (const listener of this.stateListeners) listener(state, this);
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  // Closes and reconnects at once, as a dropped connection would (for the connection panel).
  restart() {
    if (this.socket) this.socket.close(4000, "reconnect");
  }

  stop() {
    this.stopped = true;
    this.failCalls("connection_lost", "signed out");
    clearTimeout(this.retryTimer);
    clearTimeout(this.watchdog);
    if (this.socket) this.socket.close(1000, "bye");
    this.socket = null;
    this.setState("offline");
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.attempt = 0;
      this.feed();
      const token = getToken();
      if (token) this.send({ op: "auth", token, reqId: this.reqId(null) });
      for (const key of this.subs.keys()) this.sendSubscribe(key);
      this.setState("live");
    });
    socket.addEventListener("message", (event) => {
      this.feed();
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      this.dispatch(frame);
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearTimeout(this.watchdog);
      for (const sub of this.subs.values()) {
        sub.live = false;
        sub.refreshing = false;
      }
      for (const sub of this.subs.values()) if (sub.onDown) sub.onDown();
      this.failCalls("connection_lost", "the connection dropped before the answer");
      if (!this.stopped) this.scheduleRetry();
    });
  }

  scheduleRetry() {
    this.attempt += 1;
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.attempt - 1, 5));
    this.setState("reconnecting");
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // A silent connection (no frame, not even the 5 s heartbeat) is treated as dropped.
  feed() {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (this.socket) this.socket.close(4001, "silent");
    }, HEARTBEAT_TIMEOUT_MS);
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  reqId(key) {
    const id = this.nextReq;
    this.nextReq += 1;
    if (key !== null) this.pending.set(id, key);
    return id;
  }

  static key(params) {
    return [params.channel, params.pair || "", params.depth || "", params.interval || ""].join("|");
  }

  // handler(frame) gets every frame of the subscription: snapshot, update, gap, subscribed.
  // onUnavailable(code, message): the service refused it (channel_unavailable, ...).
  // onDown(): the connection dropped; a fresh snapshot follows the reconnect.
  subscribe(params, handler, { onUnavailable, onDown } = {}) {
    const key = LiveSocket.key(params);
    this.subs.set(key, { params, handler, onUnavailable, onDown, live: false, aliases: new Set([params.pair]) });
    this.sendSubscribe(key);
    return () => this.unsubscribe(key);
  }

  unsubscribe(key) {
    const sub = this.subs.get(key);
    if (!sub) return;
    this.subs.delete(key);
    this.send({ op: "unsubscribe", ...sub.params });
  }

  // After a gap or a bad checksum: drop the subscription and take it again, for a snapshot.
  resubscribe(params) {
    const key = LiveSocket.key(params);
    const sub = this.subs.get(key);
    if (!sub) return;
    sub.live = false;
    this.send({ op: "unsubscribe", ...sub.params });
    this.sendSubscribe(key);
  }

  // An op with one answer (order.submit, order.cancel): resolves with the answer frame (an
  // ack), rejects with a LiveError (the service's error frame, or no answer).
  call(frame, timeoutMs = CALL_TIMEOUT_MS) {
    if (this.state !== "live") return Promise.reject(new LiveError("not_connected", "the live connection is not up"));
    const reqId = `call-${this.nextReq}`;
    this.nextReq += 1;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(reqId);
        reject(new LiveError("timeout", "no answer in time"));
      }, timeoutMs);
      this.calls.set(reqId, { resolve, reject, timer });
      if (!this.send({ ...frame, reqId })) {
        clearTimeout(timer);
        this.calls.delete(reqId);
        reject(new LiveError("not_connected", "the live connection is not up"));
      }
    });
  }

  failCalls(code, message) {
    for (const { reject, timer } of this.calls.values()) {
      clearTimeout(timer);
      reject(new LiveError(code, message));
    }
    this.calls.clear();
  }

  // A fresh snapshot of a subscription that is fine (balances after a fill): the channel stays
  // live meanwhile, so the page keeps its data and does not fall back to HTTP.
  refresh(params) {
    const key = LiveSocket.key(params);
    const sub = this.subs.get(key);
    if (!sub || !sub.live || this.state !== "live") return;
    sub.refreshing = true;
    this.send({ op: "unsubscribe", ...sub.params });
    this.sendSubscribe(key);
  }

  sendSubscribe(key) {
    const sub = this.subs.get(key);
    if (sub) this.send({ op: "subscribe", reqId: this.reqId(key), ...sub.params });
  }

  isLive(params) {
    const sub = this.subs.get(LiveSocket.key(params));
    return Boolean(sub && sub.live && this.state === "live");
  }

  dispatch(frame) {
    const call = frame.reqId !== undefined && this.calls.get(frame.reqId);
    if (call) {
      this.calls.delete(frame.reqId);
      clearTimeout(call.timer);
      if (frame.type === "error") call.reject(new LiveError(frame.code, frame.message));
      else call.resolve(frame);
      return;
    }
    if (frame.type === "error") {
      const key = this.pending.get(frame.reqId);
      this.pending.delete(frame.reqId);
      const sub = key && this.subs.get(key);
      if (sub && frame.code !== "already_subscribed") {
        sub.live = false;
        if (sub.onUnavailable) sub.onUnavailable(frame.code, frame.message);
      }
      return;
    }
    if (!frame.channel) return; // pong, heartbeat, authenticated, ack: nothing to route
    if (frame.reqId !== undefined) this.pending.delete(frame.reqId);
    const candidates = [...this.subs.values()].filter((sub) => sub.params.channel === frame.channel);
    // A frame may name its pair by id where the subscription named the symbol: with one
    // subscription of the channel, that name becomes an alias of it.
    if (frame.pair && candidates.length === 1 && !candidates[0].aliases.has(frame.pair)) {
      candidates[0].aliases.add(frame.pair);
    }
    for (const sub of candidates) {
      const p = sub.params;
      if (p.pair && frame.pair && !sub.aliases.has(frame.pair)) continue;
      if (p.interval && frame.interval && p.interval !== frame.interval) continue;
      if (frame.type === "snapshot") sub.live = true;
      if (frame.type === "unsubscribed" && sub.refreshing) {
        sub.refreshing = false; // our own refresh: the snapshot follows
        continue;
      }
      if (frame.type === "unsubscribed") sub.live = false; // the service ended it (token expired)
      sub.handler(frame);
    }
  }
}

export const live = new LiveSocket();
