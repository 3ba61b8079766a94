// A pair's order book as the `book` channel sends it: a snapshot, then updates whose sizes
// are absolute ("0" deletes a level), each with seq = previous + 1 and a Kraken-style CRC32
// checksum of the top 10 asks and bids. A gap or a checksum that does not match means the
// copy is wrong: the caller resubscribes for a fresh snapshot.

import { compare } from "./decimal.js";

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(text) {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function part(text) {
  return text.replace(".", "").replace(/^0+/, "");
}

// levels: [[price, size], ...], asks lowest first and bids highest first.
export function checksum(asks, bids) {
  let text = "";
  for (const [price, size] of asks.slice(0, 10)) text += part(price) + part(size);
  for (const [price, size] of bids.slice(0, 10)) text += part(price) + part(size);
  return crc32(text);
}

export class Book {
  constructor() {
    this.reset();
  }

  reset() {
    this.bids = new Map();
    this.asks = new Map();
    this.seq = null;
  }

  load(snapshot) {
    this.reset();
    for (const [p, s] of snapshot.bids) this.bids.set(p, s);
    for (const [p, s] of snapshot.asks) this.asks.set(p, s);
    this.seq = snapshot.seq;
  }

  sorted() {
    const bids = [...this.bids.entries()].sort((a, b) => compare(b[0], a[0]));
    const asks = [...this.asks.entries()].sort((a, b) => compare(a[0], b[0]));
    return { bids, asks };
  }

  // Applies an update; false when it cannot be trusted (a gap or a wrong checksum).
  apply(update) {
    if (this.seq === null || update.seq !== this.seq + 1) return false;
    for (const [side, levels] of [[this.bids, update.bids || []], [this.asks, update.asks || []]]) {
      for (const [price, size] of levels) {
        if (/^0*\.?0*$/.test(size)) side.delete(price);
        else side.set(price, size);
      }
    }
    this.seq = update.seq;
    return this.verify(update.checksum);
  }

  verify(expected) {
    if (expected === undefined || expected === null) return true;
    const { bids, asks } = this.sorted();
    return checksum(asks, bids) === Number(expected);
  }
}
